//! `pipe run --executor slurm` against a real Slurm cluster: `.ci/slurm up` starts a
//! single-node one on this machine (CI does). Without one these tests fail, saying how
//! to get it; they never pass without having run.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{Project, actions, stage, text, with_action};
use serde_json::Value;

/// The tests share one small cluster: one at a time, so that none waits for another's
/// jobs and timing-dependent states (pending, running) are each test's own.
static CLUSTER: Mutex<()> = Mutex::new(());

fn cluster() -> MutexGuard<'static, ()> {
    let guard = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let answer = Command::new("sinfo")
        .args(["--noheader", "--format=%T"])
        .output();
    let up = answer.as_ref().is_ok_and(|out| {
        let states = text(&out.stdout);
        out.status.success()
            && states
                .lines()
                .any(|s| ["idle", "mixed", "allocated"].contains(&s.trim()))
    });
    if !up {
        let said = match &answer {
            Ok(out) => format!("{}{}", text(&out.stdout), text(&out.stderr)),
            Err(e) => e.to_string(),
        };
        panic!(
            "no Slurm cluster with a usable node answers here (sinfo: {})\n\
             start the single-node test cluster with `.ci/slurm up` (as root, or with \
             sudo: it installs Debian's slurmctld, slurmd, slurm-client and munge, writes \
             /etc/slurm/slurm.conf for this machine and starts the daemons)",
            said.trim()
        );
    }
    guard
}

/// `pipe run FILE --executor slurm ARGS --json`, polling often.
fn slurm_run(project: &Project, args: &[&str], code: i32) -> Value {
    let mut all = vec!["--executor", "slurm", "--poll", "0.2"];
    all.extend_from_slice(args);
    project.run("p.ron", &all, code)
}

/// The same, left running.
fn spawn_run(project: &Project, args: &[&str]) -> Child {
    project
        .command(&[
            "run",
            "p.ron",
            "--executor",
            "slurm",
            "--poll",
            "0.2",
            "--json",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pipe runs")
}

fn finish(child: Child, code: i32) -> Value {
    let out = child.wait_with_output().expect("pipe ends");
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

/// `pipe status --json` → the stage's entry.
fn status_of(project: &Project, name: &str) -> Value {
    let out = project.pipe(&["status", "p.ron", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", text(&out.stdout)));
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no stage {name}"))
}

/// Waits (up to a minute) until `pipe status` shows the stage's job in `state`.
fn job_in_state(project: &Project, name: &str, state: &str) -> u64 {
    let start = Instant::now();
    loop {
        let entry = status_of(project, name);
        if entry["slurm"]["state"] == state {
            return entry["slurm"]["job"].as_u64().expect("a job id");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "`{name}` never reached {state}: {entry}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Slurm's state of a job now (`squeue`, finished jobs included).
fn slurm_state(job: u64) -> String {
    let out = Command::new("squeue")
        .args([
            "--noheader",
            "--states=all",
            "--format=%T",
            &format!("--jobs={job}"),
        ])
        .output()
        .expect("squeue runs");
    text(&out.stdout).trim().to_string()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited a minute for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A stage that waits for `flag` (outside the store, so not in its key) to exist.
fn waiting_for(flag: &Path, out: &str) -> String {
    format!(
        r#"Command(argv: ["sh", "-c", "while [ ! -e {} ]; do sleep 0.1; done; echo done > {{out}}/{out}"])"#,
        flag.display()
    )
}

#[test]
fn a_pipeline_runs_as_slurm_jobs_and_enters_the_store_as_a_local_run_does() {
    let _cluster = cluster();
    let project = Project::new();
    let chain = common::CHAIN.replace(
        "    stages: {",
        "    resources: {\"*\": (cpus: 1, time: \"10:00\"), \"c\": (sbatch: [\"--comment=third\"])},\n    stages: {",
    );
    project.write("p.ron", &chain);

    // `a` locally first: the cluster run must not compute it again.
    project.run("p.ron", &["a"], 0);
    let report = slurm_run(&project, &[], 0);
    assert_eq!(with_action(&report, "cached"), ["a"]);
    assert_eq!(with_action(&report, "ran").len(), 3, "{report}");
    assert_eq!(report["scheduler_calls"]["sbatch"], 3);
    let c = stage(&report, "c");
    let out = Path::new(c["output"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(out.join("c.txt")).unwrap(),
        "A\nB\nC\n"
    );

    // The record says which job ran it; the ref was moved by the job itself.
    let shown = project.json(&["show", "p.ron", "c"], 0);
    let job = shown["record"]["cluster_job"].as_str().expect("a job id");
    assert!(job.parse::<u64>().is_ok(), "{shown}");
    let log = project.path("cache/slurm/logs");
    let logs: Vec<_> = std::fs::read_dir(&log).unwrap().flatten().collect();
    assert_eq!(logs.len(), 3, "one log per job");

    // Nothing is submitted again, on the cluster or here.
    let again = slurm_run(&project, &[], 0);
    assert_eq!(with_action(&again, "cached").len(), 4, "{again}");
    assert!(again.get("scheduler_calls").is_none() || again["scheduler_calls"]["sbatch"] == 0);
    let local = project.run("p.ron", &[], 0);
    assert_eq!(with_action(&local, "cached").len(), 4);
    let status = project.pipe(&["status", "p.ron"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stdout));

    // `cache gc` keeping only `a` (run here) takes the jobs' scripts and logs away.
    let only_a = chain
        .replace("\"b\": Command", "\"x\": Command")
        .lines()
        .filter(|l| !l.contains("\"x\"") && !l.contains("\"c\"") && !l.contains("\"d\""))
        .collect::<Vec<_>>()
        .join("\n");
    project.write("a.ron", &only_a);
    let gc = project.pipe(&["cache", "gc", "a.ron"]);
    assert!(gc.status.success(), "{}", text(&gc.stderr));
    for dir in ["logs", "scripts"] {
        let left = std::fs::read_dir(project.path("cache/slurm").join(dir))
            .unwrap()
            .count();
        assert_eq!(left, 0, "slurm/{dir} after gc");
    }
}

#[test]
fn a_failing_stage_is_named_with_slurm_state_and_log() {
    let _cluster = cluster();
    let project = Project::new();
    project.write(
        "p.ron",
        r#"Pipeline(name: "p", stages: {
            "bad": Command(argv: ["sh", "-c", "echo boom >&2; exit 3"]),
            "after": Command(argv: ["sh", "-c", "echo > {out}/x"], deps: {"bad": "bad"}),
        })"#,
    );
    let report = slurm_run(&project, &[], 1);
    let bad = stage(&report, "bad");
    assert_eq!(bad["action"], "failed");
    let error = bad["error"].as_str().unwrap();
    assert!(
        error.contains("exited with exit status: 3"),
        "the stage's own error: {error}"
    );
    assert!(
        error.contains("FAILED (exit code 1)"),
        "Slurm's state: {error}"
    );
    assert!(
        error.contains("cache/slurm/logs/"),
        "the job's output: {error}"
    );
    assert!(
        bad["log"]
            .as_str()
            .is_some_and(|l| text(&std::fs::read(l).unwrap()).contains("boom"))
    );
    assert_eq!(stage(&report, "after")["action"], "skipped");

    let status = project.pipe(&["status", "p.ron"]);
    let said = text(&status.stdout);
    assert!(
        said.contains("failed") && said.contains("exited with exit status: 3"),
        "{said}"
    );
}

#[test]
fn a_job_cancelled_with_scancel_is_reported_as_cancelled_and_runs_again() {
    let _cluster = cluster();
    let project = Project::new();
    let flag = project.path("go");
    project.write(
        "p.ron",
        &format!(
            r#"Pipeline(name: "p", stages: {{ "slow": {} }})"#,
            waiting_for(&flag, "x")
        ),
    );
    let run = spawn_run(&project, &[]);
    let job = job_in_state(&project, "slow", "RUNNING");
    let status = project.pipe(&["status", "p.ron"]);
    let said = text(&status.stdout);
    assert!(
        said.starts_with("running") && said.contains(&format!("Slurm job {job}")),
        "{said}"
    );
    assert!(
        Command::new("scancel")
            .arg(job.to_string())
            .status()
            .unwrap()
            .success()
    );
    let report = finish(run, 1);
    let slow = stage(&report, "slow");
    assert_eq!(slow["action"], "interrupted", "{slow}");
    let error = slow["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("Slurm job {job} CANCELLED")),
        "{error}"
    );
    assert!(error.contains("runs again next time"), "{error}");
    assert_eq!(status_of(&project, "slow")["status"]["state"], "never_run");

    std::fs::write(&flag, "").unwrap();
    let again = slurm_run(&project, &[], 0);
    assert_eq!(actions(&again), [("slow".to_string(), "ran".to_string())]);
}

#[test]
fn ctrl_c_cancels_the_runs_jobs_running_and_pending_and_records_nothing() {
    let _cluster = cluster();
    let project = Project::new();
    let flag = project.path("never");
    // `--exclusive`: one job holds the node, so the other waits in the queue.
    project.write(
        "p.ron",
        &format!(
            r#"Pipeline(name: "p", resources: {{"*": (sbatch: ["--exclusive"])}}, stages: {{ "one": {}, "two": {} }})"#,
            waiting_for(&flag, "x"),
            waiting_for(&flag, "y"),
        ),
    );
    let run = spawn_run(&project, &[]);
    wait_until("one job running and one pending", || {
        let states: Vec<Value> = ["one", "two"]
            .iter()
            .map(|s| status_of(&project, s)["slurm"]["state"].clone())
            .collect();
        states.contains(&"RUNNING".into()) && states.contains(&"PENDING".into())
    });
    let jobs: Vec<u64> = ["one", "two"]
        .iter()
        .map(|s| status_of(&project, s)["slurm"]["job"].as_u64().unwrap())
        .collect();
    let pid = run.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let report = finish(run, 130);
    assert!(report["interrupted"].as_bool().unwrap());
    for job in jobs {
        wait_until("the job to end", || {
            let state = slurm_state(job);
            state.is_empty() || state == "CANCELLED"
        });
    }
    for name in ["one", "two"] {
        let entry = status_of(&project, name);
        assert_eq!(entry["status"]["state"], "never_run", "{entry}");
        assert!(entry.get("slurm").is_none(), "{entry}");
    }
}

#[test]
fn two_runs_at_once_compute_each_key_once() {
    let _cluster = cluster();
    let project = Project::new();
    let count = project.path("count");
    let stage = |n: u32| {
        format!(
            r#""s{n}": Command(argv: ["sh", "-c", "echo s{n} >> {}; sleep 1; echo {n} > {{out}}/n"])"#,
            count.display()
        )
    };
    project.write(
        "p.ron",
        &format!(
            r#"Pipeline(name: "p", stages: {{ {}, {}, {} }})"#,
            stage(1),
            stage(2),
            stage(3)
        ),
    );
    let first = spawn_run(&project, &[]);
    let second = spawn_run(&project, &[]);
    let reports = [finish(first, 0), finish(second, 0)];
    let mut lines: Vec<String> = std::fs::read_to_string(&count)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        ["s1", "s2", "s3"],
        "each stage ran once: {reports:?}"
    );
    let submitted: u64 = reports
        .iter()
        .map(|r| r["scheduler_calls"]["sbatch"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(submitted, 3, "{reports:?}");
}

#[test]
fn a_requeued_job_runs_again_and_resumes_from_its_work_folder() {
    let _cluster = cluster();
    let project = Project::new();
    let started = project.path("started");
    let flag = project.path("go");
    // The first attempt counts itself in the work folder and waits; the second finds
    // the count and finishes.
    project.write(
        "p.ron",
        &format!(
            r#"Pipeline(name: "p", stages: {{ "resumable": Command(argv: ["sh", "-c",
            "n=$(cat {{work}}/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > {{work}}/n; if [ $n -eq 1 ]; then touch {started}; while [ ! -e {flag} ]; do sleep 0.1; done; fi; echo $n > {{out}}/attempts"]) }})"#,
            started = started.display(),
            flag = flag.display(),
        ),
    );
    let run = spawn_run(&project, &[]);
    common::wait_for_secs(&started, 60);
    let job = status_of(&project, "resumable")["slurm"]["job"]
        .as_u64()
        .unwrap();
    let requeue = Command::new("scontrol")
        .args(["requeue", &job.to_string()])
        .output()
        .unwrap();
    assert!(requeue.status.success(), "{}", text(&requeue.stderr));
    // Slurm makes a requeued job wait two minutes; the test has no need to.
    wait_until("the requeued job to wait in the queue", || {
        slurm_state(job) == "PENDING"
    });
    let now = Command::new("scontrol")
        .args(["update", &format!("jobid={job}"), "StartTime=now"])
        .output()
        .unwrap();
    assert!(now.status.success(), "{}", text(&now.stderr));
    let report = finish(run, 0);
    let resumable = stage(&report, "resumable");
    assert_eq!(resumable["action"], "ran", "{resumable}");
    let out = Path::new(resumable["output"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(out.join("attempts")).unwrap(),
        "2\n"
    );
}
