//! `pipe run`: what runs, what is reused, and why.

mod common;

use common::*;

#[test]
fn first_run_executes_every_stage_and_a_second_none() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    let first = p.run("p.ron", &[], 0);
    assert_eq!(with_action(&first, "ran"), ["a", "b", "c", "d"]);
    assert_eq!(first["schema"], 1);
    assert_eq!(stage(&first, "a")["reasons"][0]["reason"], "never_run");
    let c = stage(&first, "c")["output"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("{c}/c.txt")).unwrap(),
        "A\nB\nC\n"
    );

    let second = p.run("p.ron", &[], 0);
    assert_eq!(with_action(&second, "cached"), ["a", "b", "c", "d"]);
    assert!(stage(&second, "a").get("reasons").is_none());
}

#[test]
fn editing_one_value_reruns_that_stage_and_its_dependents_only() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    p.run("p.ron", &[], 0);
    p.write("p.ron", &CHAIN.replace("echo B >>", "echo BB >>"));
    let report = p.run("p.ron", &[], 0);
    assert_eq!(
        actions(&report),
        [("a", "cached"), ("b", "ran"), ("c", "ran"), ("d", "cached")]
            .map(|(s, a)| (s.to_string(), a.to_string()))
    );
    let reason = &stage(&report, "b")["reasons"][0];
    assert_eq!(reason["reason"], "param");
    assert_eq!(reason["path"], "params.argv[2]");
    assert_eq!(stage(&report, "c")["reasons"][0]["reason"], "upstream");
}

#[test]
fn early_cutoff_an_upstream_rerun_with_identical_output_reruns_nothing_below() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    p.run("p.ron", &[], 0);
    p.write(
        "p.ron",
        &CHAIN.replace("echo A > {out}/a.txt", "true; echo A > {out}/a.txt"),
    );
    let report = p.run("p.ron", &[], 0);
    assert_eq!(with_action(&report, "ran"), ["a"]);
    assert_eq!(with_action(&report, "cached"), ["b", "c", "d"]);
}

#[test]
fn layout_comments_field_order_and_included_file_format_change_no_key() {
    let p = Project::new();
    p.write("env.ron", r#"{"GREETING": "hi", "NAME": "x"}"#);
    p.write(
        "p.ron",
        r#"Pipeline(name: "fmt", stages: {"s": Command(argv: ["sh", "-c", "echo $GREETING > {out}/o"], env: Include("env.ron"), gpus: 0)})"#,
    );
    let first = p.run("p.ron", &[], 0);
    assert_eq!(with_action(&first, "ran"), ["s"]);
    p.write(
        "env.ron",
        "// the environment\n{\n    \"NAME\": \"x\", // who\n    \"GREETING\": \"hi\",\n}\n",
    );
    p.write(
        "p.ron",
        r#"
        // reformatted, fields reordered, a comment added
        Pipeline(
            stages: {
                "s": Command(
                    gpus: 0,
                    env: Include(file: "env.ron"),
                    argv: [ "sh", "-c",
                            "echo $GREETING > {out}/o" ],
                ),
            },
            name: "fmt",
        )
        "#,
    );
    assert_eq!(with_action(&p.run("p.ron", &[], 0), "cached"), ["s"]);
    p.write("env.ron", r#"{"GREETING": "hello", "NAME": "x"}"#);
    let changed = p.run("p.ron", &[], 0);
    assert_eq!(with_action(&changed, "ran"), ["s"]);
    assert_eq!(
        stage(&changed, "s")["reasons"][0]["path"],
        "params.env.GREETING"
    );
}

#[test]
fn include_overrides_a_field_of_a_config_file() {
    let p = Project::new();
    p.write(
        "configs/base.ron",
        r#"(argv: ["sh", "-c", "echo $X > {out}/o"], env: {"X": "1"})"#,
    );
    p.write(
        "p.ron",
        r#"Pipeline(name: "inc", stages: {
            "base": Command(Include("configs/base.ron")),
            "tweaked": Command(Include(file: "configs/base.ron", set: {"env.X": "2"})),
        })"#,
    );
    let report = p.run("p.ron", &[], 0);
    let out = |s: &str| {
        std::fs::read_to_string(format!(
            "{}/o",
            stage(&report, s)["output"].as_str().unwrap()
        ))
        .unwrap()
    };
    assert_eq!(out("base"), "1\n");
    assert_eq!(out("tweaked"), "2\n");
}

#[test]
fn foreach_expands_with_stable_names_and_matching_members() {
    let p = Project::new();
    p.write(
        "p.ron",
        r#"Pipeline(name: "fe", stages: {
            "train": ForEach(seed: [1, 2], lr: ["a", "b"], stage: Command(argv: ["sh", "-c", "echo {seed}{lr} > {out}/m"])),
            "score": ForEach(seed: [1, 2], lr: ["a", "b"], stage: Command(
                argv: ["sh", "-c", "cat {in.model}/m > {out}/s"],
                deps: {"model": "train"},
            )),
            "all": Command(argv: ["sh", "-c", "for d in \"$@\"; do cat $d/s; done > {out}/all", "sh", "{in.scores}"], deps: {"scores": "score"}),
        })"#,
    );
    let report = p.run("p.ron", &[], 0);
    let names: Vec<String> = actions(&report).into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        names,
        [
            "train[seed=1,lr=a]",
            "train[seed=1,lr=b]",
            "train[seed=2,lr=a]",
            "train[seed=2,lr=b]",
            "score[seed=1,lr=a]",
            "score[seed=1,lr=b]",
            "score[seed=2,lr=a]",
            "score[seed=2,lr=b]",
            "all"
        ]
    );
    let s = stage(&report, "score[seed=2,lr=a]")["output"]
        .as_str()
        .unwrap();
    assert_eq!(std::fs::read_to_string(format!("{s}/s")).unwrap(), "2a\n");
    let all = stage(&report, "all")["output"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("{all}/all")).unwrap(),
        "1a\n1b\n2a\n2b\n"
    );
}

#[test]
fn external_files_are_hashed_by_content() {
    let p = Project::new();
    p.write("data/x.txt", "1");
    p.write("data/dir/y.txt", "2");
    p.write(
        "p.ron",
        r#"Pipeline(name: "files", stages: {
            "f": Command(argv: ["sh", "-c", "cat {in.x} {in.dir}/y.txt > {out}/o"], files: {"x": "data/x.txt", "dir": "data/dir"}),
        })"#,
    );
    assert_eq!(with_action(&p.run("p.ron", &[], 0), "ran"), ["f"]);
    p.write("data/x.txt", "1"); // same bytes, new mtime
    assert_eq!(with_action(&p.run("p.ron", &[], 0), "cached"), ["f"]);
    p.write("data/dir/y.txt", "3");
    let report = p.run("p.ron", &[], 0);
    assert_eq!(with_action(&report, "ran"), ["f"]);
    assert_eq!(stage(&report, "f")["reasons"][0]["reason"], "file");
    assert_eq!(stage(&report, "f")["reasons"][0]["role"], "dir");
}

#[test]
fn selected_stages_run_with_what_they_need_only() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    let report = p.run("p.ron", &["b"], 0);
    assert_eq!(with_action(&report, "ran"), ["a", "b"]);
    let report = p.run("p.ron", &["c", "d"], 0);
    assert_eq!(actions(&report).len(), 4);
    assert_eq!(with_action(&report, "ran"), ["c", "d"]);
}

#[test]
fn force_reruns_a_cached_stage_and_cuts_off_below_it() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    p.run("p.ron", &[], 0);
    let report = p.run("p.ron", &["--force", "a"], 0);
    assert_eq!(with_action(&report, "ran"), ["a"]);
    assert_eq!(stage(&report, "a")["reasons"][0]["reason"], "forced");
    assert_eq!(with_action(&report, "cached"), ["b", "c", "d"]);
}

#[test]
fn jobs_run_independent_stages_at_once() {
    // Each stage waits for the other's marker: only a parallel run completes.
    let p = Project::new();
    p.write(
        "p.ron",
        r#"Pipeline(name: "par", stages: {
            "x": Command(argv: ["sh", "-c", "touch x.started; for i in $(seq 100); do [ -e y.started ] && exit 0; sleep 0.05; done; exit 1"]),
            "y": Command(argv: ["sh", "-c", "touch y.started; for i in $(seq 100); do [ -e x.started ] && exit 0; sleep 0.05; done; exit 1"]),
        })"#,
    );
    let report = p.run("p.ron", &["-j", "2"], 0);
    assert_eq!(with_action(&report, "ran").len(), 2);
}

#[test]
fn gpu_slots_are_handed_out_without_oversubscription() {
    let p = Project::new();
    let gpu_stage = |n: u32| {
        format!(
            r#""g{n}": Command(argv: ["sh", "-c", "echo start $CUDA_VISIBLE_DEVICES >> ../gpu.log; sleep 0.3; echo end $CUDA_VISIBLE_DEVICES >> ../gpu.log; echo {n} {{gpus}} > {{out}}/ids"], gpus: 1),"#
        )
    };
    p.write(
        "run/p.ron",
        &format!(
            r#"Pipeline(name: "gpu", stages: {{ {} {} {} }})"#,
            gpu_stage(1),
            gpu_stage(2),
            gpu_stage(3)
        ),
    );
    let report = p.run("run/p.ron", &["-j", "3", "--gpus", "4,7"], 0);
    assert_eq!(with_action(&report, "ran").len(), 3);
    let mut busy = std::collections::BTreeSet::new();
    let log = p.read("gpu.log");
    for line in log.lines() {
        let (what, id) = line.split_once(' ').unwrap();
        assert!(id == "4" || id == "7", "{log}");
        match what {
            "start" => assert!(busy.insert(id.to_string()), "GPU {id} given twice:\n{log}"),
            _ => assert!(busy.remove(id)),
        }
    }
    for s in report["stages"].as_array().unwrap() {
        assert_eq!(s["gpus"].as_array().unwrap().len(), 1);
    }

    p.write(
        "run/q.ron",
        r#"Pipeline(name: "gpu2", stages: {"big": Command(argv: ["true"], gpus: 3)})"#,
    );
    let report = p.run("run/q.ron", &["--gpus", "0,1"], 1);
    assert!(
        stage(&report, "big")["error"]
            .as_str()
            .unwrap()
            .contains("needs 3 GPU(s) but 2 given")
    );
}

/// Without `--gpus`, a run takes every visible GPU (`PIPE_VISIBLE_GPUS` stands in for a
/// GPU machine); `--gpus none` takes none; `--stages-per-gpu` lets stages share one.
#[test]
fn gpus_default_to_the_visible_ones_and_are_shared_only_when_asked() {
    let p = Project::new();
    p.write(
        "p.ron",
        r#"Pipeline(name: "vis", stages: {
            "a": Command(argv: ["sh", "-c", "echo {gpus} > {out}/ids"], gpus: 1),
            "b": Command(argv: ["sh", "-c", "echo {gpus} > {out}/ids"], gpus: 1),
            "cpu": Command(argv: ["true"]),
        })"#,
    );
    let run = |args: &[&str]| {
        let mut all = vec!["run", "p.ron", "--json", "-j", "3"];
        all.extend_from_slice(args);
        let out = p
            .command(&all)
            .env("PIPE_VISIBLE_GPUS", "2")
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report
    };
    let ids = |report: &serde_json::Value, name: &str| stage(report, name)["gpus"].clone();
    let report = run(&[]);
    let mut given = vec![ids(&report, "a"), ids(&report, "b")];
    given.sort_by_key(|v| v.to_string());
    assert_eq!(given, [serde_json::json!([0]), serde_json::json!([1])]);
    assert_eq!(ids(&report, "cpu"), serde_json::Value::Null);

    let report = run(&["--force", "a", "--force", "b", "--gpus", "none"]);
    let error = stage(&report, "a")["error"].as_str().unwrap().to_string();
    assert!(error.contains("needs 1 GPU(s) but 0 given"), "{error}");

    let report = run(&[
        "--force",
        "a",
        "--force",
        "b",
        "--gpus",
        "1",
        "--stages-per-gpu",
        "2",
    ]);
    assert_eq!(ids(&report, "a"), serde_json::json!([1]));
    assert_eq!(ids(&report, "b"), serde_json::json!([1]));

    // The run says where it will run before it starts.
    let out = p
        .command(&["run", "p.ron", "--gpus", "0,1"])
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("devices: GPU 0,1 (one stage per GPU)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn keep_going_runs_independent_branches_after_a_failure() {
    let p = Project::new();
    let text = r#"Pipeline(name: "kg", stages: {
        "bad": Command(argv: ["sh", "-c", "echo oops >&2; exit 3"]),
        "below": Command(argv: ["true"], deps: {"b": "bad"}),
        "other": Command(argv: ["sh", "-c", "echo ok > {out}/o"]),
    })"#;
    p.write("p.ron", text);
    // One at a time, so that `other` has not started when `bad` fails.
    let stopped = p.run("p.ron", &["-j", "1"], 1);
    assert_eq!(
        actions(&stopped),
        [
            ("bad", "failed"),
            ("below", "skipped"),
            ("other", "not_run")
        ]
        .map(|(s, a)| (s.to_string(), a.to_string()))
    );
    let going = p.run("p.ron", &["--keep-going"], 1);
    assert_eq!(
        actions(&going),
        [("bad", "failed"), ("below", "skipped"), ("other", "ran")]
            .map(|(s, a)| (s.to_string(), a.to_string()))
    );
}

#[test]
fn the_process_executor_runs_stages_through_pipe_exec() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    let report = p.run("p.ron", &["--executor", "process", "-j", "2"], 0);
    assert_eq!(with_action(&report, "ran").len(), 4);
    let c = stage(&report, "c")["output"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("{c}/c.txt")).unwrap(),
        "A\nB\nC\n"
    );
    assert_eq!(with_action(&p.run("p.ron", &[], 0), "cached").len(), 4);

    // A job stays runnable from the store alone; its key is already recorded.
    let key = stage(&report, "a")["key"].as_str().unwrap();
    let exec = p.json(&["exec", &key[..10]], 0);
    assert_eq!(exec["action"], "reused");

    // `pipe exec` alone points the stage's ref at its key, as `pipe run` does.
    let refs = p.path("cache/refs/chain.json");
    std::fs::remove_file(&refs).unwrap();
    p.json(&["exec", key], 0);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&refs).unwrap()).unwrap();
    assert_eq!(written["stages"]["a"], key, "{written}");
    assert!(written["stages"].get("b").is_none(), "{written}");
}

#[test]
fn the_work_folder_survives_a_failure_and_is_reused() {
    let p = Project::new();
    // Fails the first time after leaving a checkpoint; resumes from it the second.
    p.write(
        "p.ron",
        r#"Pipeline(name: "resume", stages: {
            "long": Command(argv: ["sh", "-c", "if [ -e {work}/ckpt ]; then cat {work}/ckpt > {out}/o; else echo step5 > {work}/ckpt; exit 1; fi"]),
        })"#,
    );
    let first = p.run("p.ron", &[], 1);
    assert_eq!(with_action(&first, "failed"), ["long"]);
    let second = p.run("p.ron", &[], 0);
    let out = stage(&second, "long")["output"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("{out}/o")).unwrap(),
        "step5\n"
    );
    let key = stage(&second, "long")["key"].as_str().unwrap();
    assert!(
        !p.path(&format!("cache/work/{key}")).exists(),
        "work folder removed after success"
    );
}

#[test]
fn dry_run_shows_the_plan_without_running() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    let plan = p.run("p.ron", &["--dry-run"], 0);
    assert_eq!(with_action(&plan, "would_run").len(), 4);
    assert_eq!(
        stage(&plan, "b")["reasons"][0]["reason"],
        "upstream_pending"
    );
    assert!(
        !p.path("cache/records")
            .read_dir()
            .unwrap()
            .any(|e| e.unwrap().path().is_dir())
    );
    p.run("p.ron", &[], 0);
    assert_eq!(with_action(&p.run("p.ron", &["-n"], 0), "cached").len(), 4);
}

/// `--set` changes a parameter as the same edit of the file would: the key is the one
/// the edited file gives, `why` names the override, and a bad one is an error that
/// points into the `--set`.
#[test]
fn set_overrides_a_parameter_as_an_edit_of_the_file_would() {
    let p = Project::new();
    let pipeline = |greeting: &str| {
        format!(
            r#"Pipeline(name: "set", stages: {{
                "hello": Command(argv: ["sh", "-c", "echo $GREETING > {{out}}/o"], env: {{"GREETING": "{greeting}"}}),
                "count": ForEach(n: [1, 2], stage: Command(argv: ["sh", "-c", "echo {{n}} $X > {{out}}/n"])),
            }})"#
        )
    };
    p.write("p.ron", &pipeline("hi"));
    assert_eq!(with_action(&p.run("p.ron", &[], 0), "ran").len(), 3);

    let set = r#"hello.env.GREETING="bye""#;
    let report = p.run("p.ron", &["--set", set], 0);
    assert_eq!(with_action(&report, "ran"), ["hello"]);
    let out = std::path::PathBuf::from(stage(&report, "hello")["output"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(out.join("o")).unwrap(), "bye\n");
    let why = text(&p.pipe(&["why", "p.ron", "hello", "--set", set]).stdout);
    assert!(why.contains("is up to date"), "{why}");
    assert!(
        why.contains(r#"= set on the command line: --set hello.env.GREETING="bye""#),
        "{why}"
    );
    // The same edit in the file gives the same key: nothing runs.
    p.write("p.ron", &pipeline("bye"));
    assert!(with_action(&p.run("p.ron", &[], 0), "ran").is_empty());

    // A group: every member.
    let report = p.run("p.ron", &["--set", r#"count.env={"X": "x"}"#], 0);
    assert_eq!(with_action(&report, "ran"), ["count[n=1]", "count[n=2]"]);

    let error = |set: &str| {
        let out = p.pipe(&["run", "p.ron", "--set", set]);
        assert_eq!(out.status.code(), Some(1), "{set}");
        text(&out.stderr)
    };
    let err = error("hello.env=5");
    assert!(err.contains("--> --set hello.env=5:1:"), "{err}");
    let err = error(r#"helo.env.X="a""#);
    assert!(err.contains("no stage `helo` to set"), "{err}");
    assert!(err.contains("did you mean `hello`?"), "{err}");
    assert!(error("hello=1").contains("no field after the stage"));
    // A field on the way that the stage lacks is added, and the kind judges it.
    let err = error(r#"hello.nev.X="a""#);
    assert!(err.contains("unknown field `nev`"), "{err}");
}

/// `--downstream` runs a stage, everything below it and what they need; `--until` what
/// naming the stage does; `--only` the stage alone, refused while its upstream is not up
/// to date; `--force '*'` reruns everything.
#[test]
fn downstream_until_only_and_force_everything() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    let err = text(&p.pipe(&["run", "p.ron", "--only", "b"]).stderr);
    assert!(
        err.contains("`--only b`: its upstream `a` is never run"),
        "{err}"
    );
    assert_eq!(
        with_action(&p.run("p.ron", &["--until", "a"], 0), "ran"),
        ["a"]
    );
    let report = p.run("p.ron", &["--downstream", "b"], 0);
    assert_eq!(with_action(&report, "ran"), ["b", "c"]);
    assert_eq!(with_action(&report, "cached"), ["a"]);
    let report = p.run("p.ron", &["--only", "d"], 0);
    assert_eq!(with_action(&report, "ran"), ["d"]);
    let report = p.run("p.ron", &["--only", "c", "--force", "c"], 0);
    assert_eq!(actions(&report).len(), 1, "{report}");
    let report = p.run("p.ron", &["--force", "*"], 0);
    assert_eq!(with_action(&report, "ran").len(), 4);

    // `status` and `dag` take the same selections.
    let status = p.json(&["status", "p.ron", "--until", "b"], 0);
    let listed: Vec<&str> = status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["a", "b"]);
    let dag = text(&p.pipe(&["dag", "p.ron", "--downstream", "b"]).stdout);
    let stages: Vec<&str> = dag.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(
        stages,
        ["a (Command)", "b (Command)", "c (Command)"],
        "{dag}"
    );
}

/// A group of `n` Command stages, `part[i=…]`, and `all` reading it through `template`.
fn sweep(n: usize, template: &str) -> String {
    let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!(
        r#"Pipeline(name: "sweep", stages: {{
    "part": ForEach(i: [{}], stage: Command(argv: ["sh", "-c", "echo {{i}} > {{out}}/n"])),
    "all": Command(argv: ["sh", "-c", "{template}"], deps: {{"parts": "part"}}),
}})"#,
        values.join(", ")
    )
}

#[test]
fn a_group_reaches_a_program_as_a_file_of_its_paths() {
    let p = Project::new();
    p.write(
        "p.ron",
        &sweep(
            3,
            r#"while read d; do cat \"$d/n\"; done < {in.parts.list} > {out}/all"#,
        ),
    );
    let report = p.run("p.ron", &[], 0);
    let out = stage(&report, "all")["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(format!("{out}/all")).unwrap(),
        "0\n1\n2\n"
    );
}

#[test]
fn a_command_line_too_long_says_to_pass_the_group_as_a_list() {
    // One argument over Linux's 128 KiB limit for a single argument: 1,000 paths of
    // ~90 bytes, twice, inside `sh -c "…"`.
    let p = Project::new();
    p.write(
        "p.ron",
        &sweep(1000, "echo {in.parts} {in.parts} | wc -w > {out}/n"),
    );
    let out = p.pipe(&["run", "p.ron", "-q"]);
    assert!(!out.status.success());
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("Argument list too long"), "{said}");
    assert!(
        said.contains("`{in.ROLE.list}` in place of `{in.ROLE}`"),
        "{said}"
    );
}
