//! Engine benchmarks, run with `cargo bench --bench engine`:
//!
//! 1. A generated pipeline of 500 chained `Command` stages: the first run (time per
//!    trivial stage), then a no-op rerun and `pipe status` (target: under 100 ms).
//! 2. Hashing a 1 GiB input from the page cache on one core (target: at least 3 GB/s).
//! 3. Sweep scale, at 1,000, 10,000 and 100,000 stages, as a chain and as a `ForEach`
//!    over four variables: the dry run, `status`, `--downstream`, `--until` and `dag
//!    --json` of a pipeline never run (targets at 100,000: under 1 s, under 1 GiB), and
//!    the first run and no-op rerun up to `PIPE_BENCH_NOOP_STAGES` (default 10,000:
//!    a first run costs about 8 ms a stage), each with the largest peak RSS so far.
//!
//! `PIPE_BENCH_STAGES`, `PIPE_BENCH_HASH_MIB` and `PIPE_BENCH_SCALE` (the largest
//! size) change the sizes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn pipe(dir: &Path, args: &[&str]) -> Duration {
    pipe_exiting(dir, args, &[0])
}

/// `pipe ARGS` in `dir`, which must exit with one of `codes` (`status` exits 1 while a
/// stage is stale).
fn pipe_exiting(dir: &Path, args: &[&str], codes: &[i32]) -> Duration {
    let clock = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .current_dir(dir)
        .args(["--cache", "cache", "-q"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("pipe runs");
    let elapsed = clock.elapsed();
    assert!(
        out.status.code().is_some_and(|c| codes.contains(&c)),
        "pipe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

/// The largest peak resident memory of a `pipe` this benchmark has waited for, in MiB.
fn children_peak_mib() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` stages, each writing one more than the number its upstream wrote (outputs of a
/// constant size: copying the upstream's output and appending made 100,000 stages
/// write 30 GB).
fn chained_pipeline(n: usize) -> String {
    let mut text = String::from("Pipeline(name: \"bench\", stages: {\n");
    text.push_str("    \"s0\": Command(argv: [\"sh\", \"-c\", \"echo 0 > {out}/o\"]),\n");
    for i in 1..n {
        text.push_str(&format!(
            "    \"s{i}\": Command(argv: [\"sh\", \"-c\", \"read -r up < {{in.up}}/o; echo $((up + 1)) > {{out}}/o\"], deps: {{\"up\": \"s{}\"}}),\n",
            i - 1
        ));
    }
    text.push_str("})\n");
    text
}

/// `n` stages from one `ForEach` over four variables (10 × 10 × 10 × n/1000), reading
/// one root stage, and a last stage reading them all through a list file.
fn sweep_pipeline(n: usize) -> String {
    let values = |k: usize| (0..k).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    let (small, last) = if n >= 1000 { (10, n / 1000) } else { (1, n) };
    format!(
        r#"Pipeline(name: "sweep", stages: {{
    "root": Command(argv: ["true"]),
    "t": ForEach(a: [{}], b: [{}], c: [{}], d: [{}], stage: Command(argv: ["true"], env: {{"X": "{{a}}{{b}}{{c}}{{d}}"}}, deps: {{"up": "root"}})),
    "report": Command(argv: ["sh", "-c", "wc -l < {{in.all.list}} > {{out}}/n"], deps: {{"all": "t"}}),
}})
"#,
        values(small),
        values(small),
        values(small),
        values(last)
    )
}

fn bench_scale(largest: usize, noop_up_to: usize) {
    let seconds = |d: Duration| d.as_secs_f64();
    let mut n = 1000.min(largest);
    loop {
        for (shape, text, last) in [
            ("chain", chained_pipeline(n), format!("s{}", n - 1)),
            ("sweep", sweep_pipeline(n), "report".to_string()),
        ] {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(dir.path().join("p.ron"), text).expect("write pipeline");
            let d = dir.path();
            let first = if shape == "chain" { "s1" } else { "root" };
            let times = [
                pipe(d, &["run", "p.ron", "--dry-run"]),
                pipe_exiting(d, &["status", "p.ron"], &[1]),
                pipe(d, &["run", "p.ron", "--dry-run", "--downstream", first]),
                pipe(d, &["run", "p.ron", "--dry-run", "--until", &last]),
                pipe(d, &["dag", "p.ron", "--json"]),
            ];
            println!(
                "{n} stages ({shape}), never run: dry run {:.3} s, status {:.3} s, \
                 --downstream {:.3} s, --until {:.3} s, dag --json {:.3} s; peak RSS so far {:.0} MiB",
                seconds(times[0]),
                seconds(times[1]),
                seconds(times[2]),
                seconds(times[3]),
                seconds(times[4]),
                children_peak_mib()
            );
            if n <= noop_up_to {
                let first_run = pipe(d, &["run", "p.ron"]);
                std::thread::sleep(Duration::from_millis(2100));
                pipe(d, &["run", "p.ron"]);
                let noop = median((0..3).map(|_| pipe(d, &["run", "p.ron"])).collect());
                let status = pipe(d, &["status", "p.ron"]);
                println!(
                    "{n} stages ({shape}), run: first {:.1} s ({:.1} ms a stage), no-op rerun \
                     {:.3} s (median of 3), status {:.3} s; peak RSS so far {:.0} MiB",
                    seconds(first_run),
                    seconds(first_run) * 1e3 / n as f64,
                    seconds(noop),
                    seconds(status),
                    children_peak_mib()
                );
            }
        }
        if n >= largest {
            break;
        }
        n = (n * 10).min(largest);
    }
}

fn bench_noop(stages: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("p.ron"), chained_pipeline(stages)).expect("write pipeline");
    let first = pipe(dir.path(), &["run", "p.ron"]);
    println!(
        "first run of {stages} chained Command stages: {:.2} s ({:.1} ms per stage)",
        first.as_secs_f64(),
        first.as_secs_f64() * 1e3 / stages as f64
    );
    // Outputs written less than 2 s ago are rehashed on purpose (racy stat entries);
    // measure the steady state a user sees.
    std::thread::sleep(Duration::from_millis(2100));
    pipe(dir.path(), &["run", "p.ron"]);
    let noop = median(
        (0..7)
            .map(|_| pipe(dir.path(), &["run", "p.ron"]))
            .collect(),
    );
    let status = median(
        (0..7)
            .map(|_| pipe(dir.path(), &["status", "p.ron"]))
            .collect(),
    );
    println!(
        "no-op `pipe run` of {stages} stages: {:.1} ms (median of 7, whole process)",
        noop.as_secs_f64() * 1e3
    );
    println!(
        "`pipe status` of {stages} stages: {:.1} ms (median of 7, whole process)",
        status.as_secs_f64() * 1e3
    );
}

fn bench_hash(mib: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("input.bin");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        let mut block = vec![0u8; 1 << 20];
        for i in 0..mib {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (i * 31 + j * 7) as u8;
            }
            file.write_all(&block).expect("write");
        }
    }
    let bytes = (mib << 20) as f64;
    let mut best = f64::MAX;
    for round in 0..4 {
        // A fresh store each time: nothing in its stat cache, so the file is read.
        let store =
            pipe::store::Store::open(&dir.path().join(format!("cache{round}"))).expect("store");
        let clock = Instant::now();
        let digest = store.digest_path(&path).expect("hash");
        let secs = clock.elapsed().as_secs_f64();
        if round > 0 {
            best = best.min(secs); // round 0 warms the page cache
        }
        std::hint::black_box(digest);
    }
    println!(
        "hashing a {mib} MiB input from the page cache: {:.2} GB/s (best of 3, one thread)",
        bytes / best / 1e9
    );
    let store = pipe::store::Store::open(&dir.path().join("cache0")).expect("store");
    // An entry is trusted once the file is older than the racy window when hashed.
    std::thread::sleep(Duration::from_millis(2100));
    store.digest_path(&path).expect("hash");
    let clock = Instant::now();
    store.digest_path(&path).expect("hash");
    println!(
        "the same input again through the stat cache: {:.3} ms",
        clock.elapsed().as_secs_f64() * 1e3
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: keep that quick.
    let full = std::env::args().any(|a| a == "--bench");
    let (stages, mib, scale, noop) = if full {
        (500, 1024, 100_000, 10_000)
    } else {
        (20, 16, 100, 100)
    };
    bench_noop(env_usize("PIPE_BENCH_STAGES", stages));
    // Before hashing, whose 1 GiB input would be the peak memory the scale reports.
    bench_scale(
        env_usize("PIPE_BENCH_SCALE", scale),
        env_usize("PIPE_BENCH_NOOP_STAGES", noop),
    );
    bench_hash(env_usize("PIPE_BENCH_HASH_MIB", mib));
}
