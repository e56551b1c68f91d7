//! The Slurm executor's overhead, run with `cargo bench --bench slurm` on a machine
//! that submits to a cluster (`.ci/slurm up` starts a single-node one here):
//!
//! 1. One trivial stage, submitted and waited for five times (`--force`): submit to
//!    done, against Slurm's own submit-to-start on the same cluster (`sbatch` of a job
//!    that only reads the clock).
//! 2. 100 independent trivial stages, then a chain of 100: wall time and how many calls
//!    of each Slurm command the run made (`scheduler_calls` of `pipe run --json`).
//!
//! `PIPE_BENCH_STAGES` changes the 100; `PIPE_BENCH_POLL` the executor's `--poll`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn run(dir: &Path, args: &[&str]) -> (Duration, serde_json::Value) {
    let poll = std::env::var("PIPE_BENCH_POLL").unwrap_or_else(|_| "2".into());
    let clock = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .current_dir(dir)
        .args([
            "--cache",
            "cache",
            "run",
            "p.ron",
            "--executor",
            "slurm",
            "--json",
        ])
        .args(["--poll", &poll])
        .args(args)
        .output()
        .expect("pipe runs");
    let elapsed = clock.elapsed();
    assert!(
        out.status.success(),
        "pipe run {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = serde_json::from_slice(&out.stdout).expect("a JSON report");
    (elapsed, report)
}

fn calls(report: &serde_json::Value) -> String {
    report["scheduler_calls"]
        .as_object()
        .map(|calls| {
            calls
                .iter()
                .filter(|(_, n)| n.as_u64() != Some(0))
                .map(|(program, n)| format!("{n} {program}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn pipeline(stages: &[String]) -> String {
    format!(
        "Pipeline(name: \"bench\", stages: {{\n{}\n}})\n",
        stages.join(",\n")
    )
}

/// Slurm alone: from `sbatch` to the job's first instruction.
fn slurm_start() -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let stamp = dir.path().join("start");
    let clock = std::time::SystemTime::now();
    let out = Command::new("sbatch")
        .args(["--parsable", "--output=/dev/null", "--wrap"])
        .arg(format!("date +%s.%N > {}", stamp.display()))
        .output()
        .expect("sbatch runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let submitted = clock
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(&stamp)
            && let Ok(started) = text.trim().parse::<f64>()
        {
            return Duration::from_secs_f64((started - submitted).max(0.0));
        }
        assert!(Instant::now() < deadline, "the job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() {
    let stages: usize = std::env::var("PIPE_BENCH_STAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);

    let dir = tempfile::tempdir().expect("temp dir");
    let one = vec![r#""one": Command(argv: ["true"])"#.to_string()];
    std::fs::write(dir.path().join("p.ron"), pipeline(&one)).expect("write");
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..5 {
        ours.push(run(dir.path(), &["--force", "one"]).0);
        theirs.push(slurm_start());
    }
    ours.sort();
    theirs.sort();
    println!(
        "one trivial stage, submit to done: median {:.2} s (min {:.2}, max {:.2}); \
         Slurm's own submit to start here: median {:.2} s (min {:.2}, max {:.2})",
        ours[2].as_secs_f64(),
        ours[0].as_secs_f64(),
        ours[4].as_secs_f64(),
        theirs[2].as_secs_f64(),
        theirs[0].as_secs_f64(),
        theirs[4].as_secs_f64(),
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let wide: Vec<String> = (0..stages)
        .map(|i| format!(r#""s{i}": Command(argv: ["sh", "-c", "echo {i} > {{out}}/o"])"#))
        .collect();
    std::fs::write(dir.path().join("p.ron"), pipeline(&wide)).expect("write");
    let (time, report) = run(dir.path(), &[]);
    println!(
        "{stages} independent stages: {:.1} s, scheduler calls: {}",
        time.as_secs_f64(),
        calls(&report)
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let chain: Vec<String> = (0..stages)
        .map(|i| match i {
            0 => r#""s0": Command(argv: ["sh", "-c", "echo 0 > {out}/o"])"#.to_string(),
            _ => format!(
                r#""s{i}": Command(argv: ["sh", "-c", "cat {{in.up}}/o > {{out}}/o"], deps: {{"up": "s{}"}})"#,
                i - 1
            ),
        })
        .collect();
    std::fs::write(dir.path().join("p.ron"), pipeline(&chain)).expect("write");
    let (time, report) = run(dir.path(), &[]);
    println!(
        "a chain of {stages} stages: {:.1} s ({:.2} s a stage), scheduler calls: {}",
        time.as_secs_f64(),
        time.as_secs_f64() / stages as f64,
        calls(&report)
    );
}
