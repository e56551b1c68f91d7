//! Failures and faults: failing commands, missing inputs, killed runs, concurrent runs,
//! corrupt objects, Ctrl-C. After each, the store stays consistent.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::*;

#[test]
fn a_failing_command_skips_downstream_and_is_shown_by_status() {
    let p = Project::new();
    p.write(
        "p.ron",
        r#"Pipeline(name: "f", stages: {
            "bad": Command(argv: ["sh", "-c", "echo partial > {out}/x; echo something broke >&2; exit 7"]),
            "after": Command(argv: ["true"], deps: {"b": "bad"}),
        })"#,
    );
    let report = p.run("p.ron", &[], 1);
    let bad = stage(&report, "bad");
    assert_eq!(bad["action"], "failed");
    assert!(
        bad["error"].as_str().unwrap().contains("exit status: 7"),
        "{bad}"
    );
    let log = std::fs::read_to_string(bad["log"].as_str().unwrap()).unwrap();
    assert_eq!(log, "something broke\n");
    assert_eq!(stage(&report, "after")["action"], "skipped");
    assert!(
        p.path("cache/records").read_dir().unwrap().next().is_none(),
        "a failure is never recorded as a result"
    );

    let status = p.json(&["status", "p.ron"], 1);
    assert_eq!(status["stages"][0]["status"]["state"], "failed");
    assert_eq!(status["stages"][1]["status"]["state"], "never_run");
    let text = text(&p.pipe(&["status", "p.ron"]).stdout);
    assert!(
        text.contains(
            "failed     bad    `sh` exited with exit status: 7\n  = log ends: something broke (log: "
        ),
        "{text}"
    );

    // Fixing the command clears the failure.
    p.write("p.ron", &p.read("p.ron").replace("exit 7", "exit 0"));
    assert_eq!(
        with_action(&p.run("p.ron", &[], 0), "ran"),
        ["bad", "after"]
    );
}

#[test]
fn a_missing_input_file_fails_that_stage_with_its_location() {
    let p = Project::new();
    p.write("p.ron", "Pipeline(name: \"m\", stages: {\n  \"s\": Command(argv: [\"true\"], files: {\"d\": \"data/none.csv\"}),\n})");
    let out = p.pipe(&["run", "p.ron"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("failed      s  error: input `data/none.csv` does not exist"),
        "{stdout}"
    );
    assert!(stdout.contains("--> p.ron:2:45"), "{stdout}");
    let status = text(&p.pipe(&["status", "p.ron"]).stdout);
    assert!(
        status.starts_with("broken     s  input `data/none.csv` does not exist"),
        "{status}"
    );
}

const SLOW: &str = r#"Pipeline(name: "slow", stages: {
    "first": Command(argv: ["sh", "-c", "echo 1 > {out}/o"]),
    "slow": Command(argv: ["sh", "-c", "echo run >> ../runs.log; touch ../started; sleep 2; cat {in.f}/o > {out}/o"], deps: {"f": "first"}),
    "last": Command(argv: ["sh", "-c", "cat {in.s}/o > {out}/o"], deps: {"s": "slow"}),
})"#;

#[test]
fn kill_9_in_the_middle_of_a_stage_leaves_no_record_and_the_next_run_redoes_it() {
    let p = Project::new();
    p.write("run/p.ron", SLOW);
    let mut child = p
        .command(&["run", "run/p.ron"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&p.path("started"));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let status = p.json(&["status", "run/p.ron"], 1);
    let states: Vec<&str> = status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["up_to_date", "never_run", "never_run"]);
    // The stage that finished before the kill is referenced at once, so gc keeps it.
    p.json(&["cache", "gc", "run/p.ron"], 0);
    let status = p.json(&["status", "run/p.ron"], 1);
    assert_eq!(status["stages"][0]["status"]["state"], "up_to_date");

    let report = p.run("run/p.ron", &[], 0);
    assert_eq!(
        actions(&report)
            .into_iter()
            .map(|(_, a)| a)
            .collect::<Vec<_>>(),
        ["cached", "ran", "ran"]
    );
    assert_eq!(p.read("runs.log"), "run\nrun\n");
    assert!(
        p.path("cache/tmp").read_dir().unwrap().next().is_none(),
        "the dead run's folder was cleaned up"
    );
    assert_eq!(with_action(&p.run("run/p.ron", &[], 0), "cached").len(), 3);
}

#[test]
fn a_program_dies_with_a_killed_run_and_one_that_cannot_start_is_named() {
    let p = Project::new();
    // `exec`: the stage's own process is the sleep, whose pid the file names.
    p.write(
        "p.ron",
        r#"Pipeline(name: "k", stages: {
            "sleeps": Command(argv: ["sh", "-c", "echo $$ > pid.tmp; mv pid.tmp pid; exec sleep 60"]),
        })"#,
    );
    let mut run = p
        .command(&["run", "p.ron"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&p.path("pid"));
    let pid = p.read("pid").trim().to_string();
    run.kill().unwrap(); // SIGKILL: no handler of ours runs
    run.wait().unwrap();
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    };
    let start = std::time::Instant::now();
    while alive() {
        assert!(
            start.elapsed().as_secs() < 5,
            "the stage's program {pid} outlived the run"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    p.write(
        "p.ron",
        r#"Pipeline(name: "k", stages: {"absent": Command(argv: ["no-such-program-here", "x"])})"#,
    );
    let report = p.run("p.ron", &[], 1);
    let absent = stage(&report, "absent");
    assert!(
        absent["error"]
            .as_str()
            .unwrap()
            .contains("exit status: 127 (the program was not found"),
        "{absent}"
    );
    let log = std::fs::read_to_string(absent["log"].as_str().unwrap()).unwrap();
    assert!(
        log.contains("cannot run `no-such-program-here`: No such file"),
        "{log}"
    );
}

#[test]
fn two_runs_at_once_execute_every_key_once_and_both_finish() {
    let p = Project::new();
    p.write("run/p.ron", SLOW);
    let spawn = || {
        p.command(&["run", "run/p.ron", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        text(&a.stderr),
        text(&b.stderr)
    );
    assert_eq!(p.read("runs.log"), "run\n", "the slow stage ran once");
    let a: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    let slow = [
        stage(&a, "slow")["action"].as_str().unwrap(),
        stage(&b, "slow")["action"].as_str().unwrap(),
    ];
    assert!(
        slow.contains(&"ran") && (slow.contains(&"reused") || slow.contains(&"cached")),
        "{slow:?}"
    );
    assert_eq!(stage(&a, "last")["output"], stage(&b, "last")["output"]);
}

fn flip_a_byte(path: &std::path::Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_flipped_byte_is_reported_by_verify_and_recomputed_by_the_next_run() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    let report = p.run("p.ron", &[], 0);
    let b_file = format!("{}/b.txt", stage(&report, "b")["output"].as_str().unwrap());
    let object = std::fs::canonicalize(&b_file).unwrap();
    // The tree entry is a hard link to the object: find the object itself.
    let b_digest = blake3_hex(&std::fs::read(&object).unwrap());
    let object = p.path(&format!("cache/objects/{}/{}", &b_digest[..2], b_digest));
    flip_a_byte(&object);

    let verify = p.json(&["cache", "verify"], 1);
    assert_eq!(verify["corrupt"].as_array().unwrap().len(), 1);
    assert_eq!(verify["corrupt"][0]["digest"], b_digest);

    let rerun = p.run("p.ron", &[], 0);
    assert_eq!(with_action(&rerun, "ran"), ["b"]);
    assert_eq!(stage(&rerun, "b")["reasons"][0]["reason"], "output_damaged");
    assert_eq!(
        with_action(&rerun, "cached"),
        ["a", "c", "d"],
        "same bytes again: c is cut off"
    );
    assert_eq!(std::fs::read_to_string(&b_file).unwrap(), "A\nB\n");
    assert_eq!(len(&p.json(&["cache", "verify"], 0)["corrupt"]), 0);
}

#[test]
fn a_flipped_byte_is_caught_by_the_next_run_even_without_verify() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    let report = p.run("p.ron", &[], 0);
    let a = format!("{}/a.txt", stage(&report, "a")["output"].as_str().unwrap());
    let digest = blake3_hex(b"A\n");
    flip_a_byte(&p.path(&format!("cache/objects/{}/{}", &digest[..2], digest)));
    assert_eq!(
        std::fs::read_to_string(&a).unwrap(),
        "a\n",
        "the output folder shares the object"
    );
    let rerun = p.run("p.ron", &[], 0);
    assert_eq!(with_action(&rerun, "ran"), ["a"]);
    assert!(
        stage(&rerun, "a")["reasons"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("`a.txt` is corrupt")
    );
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "A\n");
}

#[test]
fn ctrl_c_stops_the_running_stage_and_records_nothing() {
    let p = Project::new();
    p.write("run/p.ron", SLOW);
    let mut child = p
        .command(&["run", "run/p.ron", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&p.path("started"));
    // SAFETY: signalling our own child.
    unsafe { libc_kill(child.id() as i32, 2) };
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert_eq!(status.code(), Some(130), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["interrupted"], true);
    assert_eq!(stage(&report, "slow")["action"], "interrupted");
    assert_eq!(stage(&report, "last")["action"], "skipped");
    assert_eq!(
        with_action(&p.run("run/p.ron", &[], 0), "ran"),
        ["slow", "last"]
    );
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[test]
fn a_failure_the_store_cannot_record_is_still_named_first() {
    let p = Project::new();
    p.write(
        "p.ron",
        r#"Pipeline(name: "f", stages: {
            "bad": Command(argv: ["sh", "-c", "exit 7"]),
        })"#,
    );
    let first = p.run("p.ron", &[], 1);
    let key = stage(&first, "bad")["key"].as_str().unwrap().to_string();
    // Where the failure record goes, something the store cannot replace (as a full
    // disk would refuse it).
    let record = p.path(&format!("cache/failures/{key}.json"));
    std::fs::remove_file(&record).unwrap();
    std::fs::create_dir(&record).unwrap();
    let second = p.run("p.ron", &[], 1);
    let error = stage(&second, "bad")["error"].as_str().unwrap().to_string();
    let own = error.find("exit status: 7").expect("the stage's own error");
    let note = error
        .find("the failure could not be recorded either")
        .expect("the store's error, as a note");
    assert!(own < note, "{error}");
    assert_eq!(len(&p.json(&["cache", "verify"], 0)["corrupt"]), 0);
}

/// A small tmpfs mounted over a folder, unmounted when dropped: a disk that fills.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test fills a real disk: it mounts a {size} tmpfs, which needs root (CI \
             runs as root): {}",
            text(&out.stderr)
        );
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_fails_the_stage_with_its_own_error_and_leaves_the_store_consistent() {
    let p = Project::new();
    let _disk = SmallDisk::mount(&p.path("cache"), "2m");
    p.write(
        "p.ron",
        r#"Pipeline(name: "full", stages: {
            "small": Command(argv: ["sh", "-c", "echo fits > {out}/o"]),
            "big": Command(argv: ["sh", "-c", "head -c 4000000 /dev/zero > {out}/big"]),
        })"#,
    );
    let report = p.run("p.ron", &["--keep-going", "-j", "1"], 1);
    assert_eq!(stage(&report, "small")["action"], "ran", "{report}");
    let big = stage(&report, "big");
    assert_eq!(big["action"], "failed", "{report}");
    let error = big["error"].as_str().unwrap();
    // The stage's own failure comes first (its log could take nothing more), then
    // what is wrong with the disk, whatever the store could or could not write after.
    let own = error
        .find("exited with exit status: 1")
        .unwrap_or_else(|| panic!("{error}"));
    let disk = error
        .find("the store's disk is full")
        .unwrap_or_else(|| panic!("{error}"));
    assert!(own < disk, "{error}");
    if let Some(note) = error.find("the failure could not be recorded either") {
        assert!(own < note, "{error}");
    }
    assert_eq!(len(&p.json(&["cache", "verify"], 0)["corrupt"]), 0);
    let status = p.pipe(&["status", "p.ron"]);
    let status = text(&status.stdout);
    assert!(status.contains("up to date small"), "{status}");
    assert!(!status.contains("up to date big"), "{status}");
    // Nothing half-written is left behind in the store's scratch space.
    let tmp = std::fs::read_dir(p.path("cache/tmp")).unwrap().count();
    assert_eq!(tmp, 0, "leftovers in cache/tmp");
}
