//! Asking the store: status, why, dag, show, lineage, cache ls/du/gc/pin.

mod common;

use common::*;

#[test]
fn status_lists_every_state() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    let before = p.json(&["status", "p.ron"], 1);
    let states = |v: &serde_json::Value| -> Vec<String> {
        v["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"]["state"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(states(&before), ["never_run"; 4]);
    p.run("p.ron", &[], 0);
    assert_eq!(states(&p.json(&["status", "p.ron"], 0)), ["up_to_date"; 4]);
    p.write("p.ron", &CHAIN.replace("echo D", "echo DD"));
    let after = p.json(&["status", "p.ron"], 1);
    assert_eq!(
        states(&after),
        ["up_to_date", "up_to_date", "up_to_date", "stale"]
    );
    let text = text(&p.pipe(&["status", "p.ron"]).stdout);
    assert!(
        text.contains(
            "stale      d  params.argv[2]: \"echo D > {out}/d.txt\" → \"echo DD > {out}/d.txt\""
        ),
        "{text}"
    );
}

#[test]
fn why_prints_what_changed_field_by_field() {
    let p = Project::new();
    p.write("data.txt", "x");
    let text = |argv: &str| {
        format!(
            r#"Pipeline(name: "w", stages: {{
                "up": Command(argv: ["sh", "-c", "{argv}"]),
                "s": Command(argv: ["sh", "-c", "cat {{in.u}}/o {{in.d}} > {{out}}/o"], deps: {{"u": "up"}}, files: {{"d": "data.txt"}}, env: {{"A": "1"}}),
            }})"#
        )
    };
    p.write("p.ron", &text("echo 1 > {out}/o"));
    p.run("p.ron", &[], 0);
    let up_to_date = stdout_of(&p, &["why", "p.ron", "s"]);
    assert!(
        up_to_date.starts_with("`s` is up to date: key "),
        "{up_to_date}"
    );

    p.write(
        "p.ron",
        &text("echo 2 > {out}/o").replace("\"A\": \"1\"", "\"A\": \"2\", \"B\": \"3\""),
    );
    p.write("data.txt", "y");
    let waiting = stdout_of(&p, &["why", "p.ron", "s"]);
    let lines: Vec<&str> = waiting.lines().collect();
    assert_eq!(lines[1], "  upstream `up` has to run first", "{waiting}");
    assert_eq!(lines[2], "  params.env.A: \"1\" → \"2\"", "{waiting}");
    p.run("p.ron", &["up"], 0);
    let why = stdout_of(&p, &["why", "p.ron", "s"]);
    let lines: Vec<&str> = why.lines().collect();
    assert_eq!(lines[0], "`s` will run again:");
    assert_eq!(lines[1], "  params.env.A: \"1\" → \"2\"");
    assert_eq!(lines[2], "  params.env.B: (absent) → \"3\"");
    assert!(
        lines[3].starts_with("  upstream `up` (as `u`) changed: "),
        "{why}"
    );
    assert!(
        lines[4].starts_with("  file `data.txt` (as `d`) changed: "),
        "{why}"
    );
    let json = p.json(&["why", "p.ron", "s"], 0);
    assert_eq!(json["status"]["reasons"][0]["path"], "params.env.A");
}

fn stdout_of(p: &Project, args: &[&str]) -> String {
    let out = p.pipe(args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn dag_as_text_and_dot() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    assert_eq!(
        stdout_of(&p, &["dag", "p.ron"]),
        "a (Command)\nb (Command)\n  <- a: a\nc (Command)\n  <- b: b\nd (Command)\n"
    );
    let dot = stdout_of(&p, &["dag", "p.ron", "--format", "dot"]);
    assert!(dot.starts_with("digraph \"chain\" {"), "{dot}");
    assert!(dot.contains("\"a\" -> \"b\" [label=\"a\"];"), "{dot}");
    // One statement per line: the label's line break is written `\n`.
    assert!(dot.contains("  \"a\" [label=\"a\\nCommand\"];\n"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
}

/// `dag --json` gives the graph upstream first with each stage's state, and the dot
/// graph fills the stages that would run; neither makes a store where there is none.
#[test]
fn dag_as_json_and_dot_marking_what_would_run() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    let json = p.json(&["dag", "p.ron"], 0);
    assert!(!p.path("cache").exists(), "dag made a store");
    assert_eq!(json["schema"], 1);
    let names: Vec<&str> = json["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert_eq!(json["stages"][1]["deps"][0]["stages"][0], "a");
    assert_eq!(json["stages"][0]["state"], serde_json::Value::Null);

    p.run("p.ron", &["a"], 0);
    let json = p.json(&["dag", "p.ron"], 0);
    assert_eq!(json["stages"][0]["state"], "up to date");
    assert_eq!(json["stages"][1]["state"], "never run");
    let dot = stdout_of(&p, &["dag", "p.ron", "--format", "dot"]);
    // A node's statement, label and attributes, up to its `;`.
    let node = |name: &str| {
        let start = dot
            .find(&format!("\"{name}\" [label"))
            .unwrap_or_else(|| panic!("no node {name} in {dot}"));
        dot[start..].split_once(';').unwrap().0.to_string()
    };
    assert!(!node("a").contains("filled"), "{dot}");
    assert!(node("b").contains("style=filled"), "{dot}");
}

/// Without a file, commands read `pipe.ron`; without one, the error says where it
/// looked and which pipelines there are.
#[test]
fn the_default_pipeline_file_is_pipe_ron() {
    let p = Project::new();
    p.write("pipelines/chain.ron", CHAIN);
    let out = p.pipe(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("no pipeline file given, and no `pipe.ron` in"),
        "{err}"
    );
    assert!(err.contains("pipelines here: pipelines/chain.ron"), "{err}");
    assert!(err.contains("`pipe run pipelines/chain.ron`"), "{err}");

    p.write("pipe.ron", CHAIN);
    let report = p.run("b", &[], 0);
    assert_eq!(with_action(&report, "ran"), ["a", "b"]);
    let status = p.pipe(&["status"]);
    assert!(
        text(&status.stdout).contains("never run"),
        "{}",
        text(&status.stdout)
    );
    assert!(stdout_of(&p, &["dag"]).starts_with("a (Command)"));
}

#[test]
fn show_lists_outputs_metrics_timings_and_log() {
    let p = Project::new();
    p.write(
        "p.ron",
        r#"Pipeline(name: "sh", stages: {
            "m": Command(argv: ["sh", "-c", "echo training; echo '{{\"fid\": 12.5, \"is\": 8}}' > {out}/metrics.json; echo '{{\"images\": \"50000\"}}' > {out}/protocol.json; echo w > {out}/weights.bin"]),
        })"#,
    );
    p.run("p.ron", &[], 0);
    let show = stdout_of(&p, &["show", "p.ron", "m"]);
    assert!(
        show.contains("protocol\n          images: 50000\n"),
        "{show}"
    );
    assert!(show.contains("kind      Command v1"), "{show}");
    assert!(show.contains("/weights.bin  2 B"), "{show}");
    assert!(show.contains("          fid = 12.5\n"), "{show}");
    assert!(show.contains("  | training\n"), "{show}");
    let json = p.json(&["show", "p.ron", "m"], 0);
    assert_eq!(json["record"]["metrics"]["fid"], 12.5);
    assert_eq!(json["record"]["protocol"]["images"], "50000");
    assert_eq!(json["outputs"].as_array().unwrap().len(), 3);
    assert!(json["record"]["duration_s"].as_f64().unwrap() > 0.0);
    assert_eq!(json["record"]["device"], "cpu");
}

#[test]
fn lineage_up_and_down_from_a_stage_a_path_or_a_digest() {
    let p = Project::new();
    p.write("raw.txt", "r");
    p.write(
        "p.ron",
        &CHAIN.replace(
            r#""echo A > {out}/a.txt"]"#,
            r#""cat {in.raw} > {out}/a.txt"], files: {"raw": "raw.txt"}"#,
        ),
    );
    let report = p.run("p.ron", &[], 0);

    let up = stdout_of(&p, &["lineage", "p.ron", "c"]);
    let lines: Vec<&str> = up.lines().collect();
    assert!(lines[0].starts_with("c  "), "{up}");
    assert!(lines[1].starts_with("└── b <- b  "), "{up}");
    assert!(lines[2].starts_with("    └── a <- a  "), "{up}");
    assert!(
        lines[3].starts_with("        └── raw <- file raw.txt  "),
        "{up}"
    );

    let c_file = format!("{}/c.txt", stage(&report, "c")["output"].as_str().unwrap());
    assert_eq!(
        stdout_of(&p, &["lineage", "p.ron", &c_file]),
        up,
        "a path inside an output names its producer"
    );
    let c_key = stage(&report, "c")["key"].as_str().unwrap();
    assert_eq!(stdout_of(&p, &["lineage", "p.ron", &c_key[..8]]), up);

    let json = p.json(&["lineage", "p.ron", "c"], 0);
    assert_eq!(
        json["lineage"]["inputs"][0]["producer"]["inputs"][0]["producer"]["stage"],
        "a"
    );

    let down = p.json(&["lineage", "p.ron", "a", "--down"], 0);
    let names: Vec<&str> = down["dependents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["stage"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "c"]);
}

#[test]
fn cache_ls_du_gc_and_pins() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    p.run("p.ron", &[], 0);
    let old_d = stage(&p.run("p.ron", &[], 0), "d")["key"]
        .as_str()
        .unwrap()
        .to_string();
    p.write("p.ron", &CHAIN.replace("echo D", "echo E"));
    p.run("p.ron", &[], 0);

    let ls = p.json(&["cache", "ls"], 0);
    assert_eq!(ls["records"].as_array().unwrap().len(), 5);
    let du = p.json(&["cache", "du"], 0);
    assert!(du["usage"]["objects"][0].as_u64().unwrap() >= 5);

    let dry = p.json(&["cache", "gc", "p.ron", "--dry-run"], 0);
    assert_eq!(dry["gc"]["records"].as_array().unwrap().len(), 1);
    assert_eq!(dry["gc"]["records"][0], old_d);
    assert_eq!(
        p.json(&["cache", "ls"], 0)["records"]
            .as_array()
            .unwrap()
            .len(),
        5,
        "dry run deletes nothing"
    );

    p.pipe(&["cache", "pin", &old_d[..10]]);
    let pinned = p.json(&["cache", "gc", "p.ron"], 0);
    assert_eq!(pinned["gc"]["records"].as_array().unwrap().len(), 0);
    p.pipe(&["cache", "unpin", &old_d]);
    let gc = p.json(&["cache", "gc", "p.ron"], 0);
    assert_eq!(gc["gc"]["records"].as_array().unwrap().len(), 1);
    assert_eq!(
        gc["gc"]["objects"].as_array().unwrap().len(),
        1,
        "D's output and nothing else"
    );
    assert_eq!(
        p.json(&["cache", "ls"], 0)["records"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let jobs = p.path("cache/jobs").read_dir().unwrap().count();
    assert_eq!(jobs, 4, "the removed record's job is gone");
    assert_eq!(
        with_action(&p.run("p.ron", &[], 0), "cached").len(),
        4,
        "what gc kept is intact"
    );
    assert_eq!(len(&p.json(&["cache", "verify"], 0)["corrupt"]), 0);
}

#[test]
fn cache_dir_from_the_environment() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipe"))
        .current_dir(p.dir.path())
        .env("PIPE_CACHE", p.path("elsewhere"))
        .args(["run", "p.ron", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(p.path("elsewhere/records").is_dir());
    assert!(!p.path("cache").exists());
}

/// `pipe completions SHELL` prints a script that knows the subcommands.
#[test]
fn shell_completions() {
    let p = Project::new();
    let bash = stdout_of(&p, &["completions", "bash"]);
    assert!(bash.contains("_pipe()"), "{bash}");
    for sub in ["run", "status", "why", "dag", "lineage", "cache"] {
        assert!(bash.contains(sub), "bash completions lack `{sub}`");
    }
    let fish = stdout_of(&p, &["completions", "fish"]);
    assert!(fish.contains("complete -c pipe"), "{fish}");
    assert!(stdout_of(&p, &["completions", "zsh"]).starts_with("#compdef pipe"));
    assert_eq!(p.pipe(&["completions", "tcsh"]).status.code(), Some(2));
}

/// `pipe metrics`: record metrics with ForEach variables as columns, averaged over a
/// variable with `--mean-over`, as text, JSON and CSV.
#[test]
fn metrics_across_runs() {
    let p = Project::new();
    p.write(
        "p.ron",
        r#"Pipeline(name: "m", stages: {
            "score": ForEach(method: ["a", "b"], seed: [0, 1], stage: Command(
                argv: ["sh", "-c", "echo '{{\"fid\": 1{seed}.5, \"n\": 3}}' > {out}/metrics.json; echo {method} > /dev/null"],
            )),
            "plain": Command(argv: ["true"]),
        })"#,
    );
    p.run("p.ron", &[], 0);
    let json = p.json(&["metrics", "p.ron", "score"], 0);
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{json}");
    assert_eq!(rows[0]["stage"], "score[method=a,seed=0]");
    assert_eq!(rows[0]["vars"]["method"], "a");
    assert_eq!(rows[3]["metrics"]["fid"], 11.5);
    assert_eq!(rows[0]["current"], true);

    let text = stdout_of(&p, &["metrics", "p.ron"]);
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with("stage") && header.contains("method") && header.contains("fid"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 5, "only stages with metrics: {text}");

    let mean = p.json(&["metrics", "p.ron", "score", "--mean-over", "seed"], 0);
    let rows = mean["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{mean}");
    assert_eq!(rows[0]["vars"], serde_json::json!({"method": "a"}));
    assert_eq!(rows[0]["metrics"]["fid"]["mean"], 11.0);
    assert_eq!(rows[0]["metrics"]["fid"]["runs"], 2);
    let sd = rows[0]["metrics"]["fid"]["sd"].as_f64().unwrap();
    assert!((sd - 0.5f64.sqrt()).abs() < 1e-9, "{sd}");

    let csv = stdout_of(
        &p,
        &["metrics", "p.ron", "score", "--mean-over", "seed", "--csv"],
    );
    assert_eq!(
        csv.lines().next().unwrap(),
        "group,method,fid,n,runs (seed)"
    );
    assert!(csv.contains("score,a,11 ± 0.7071,3 ± 0,2"), "{csv}");
}

/// `pipe show --history`: every record of a stage, oldest first, so an earlier result
/// stays findable after the stage reruns.
#[test]
fn show_history_lists_every_record_of_a_stage() {
    let p = Project::new();
    let pipeline = |n: u32| {
        format!(
            r#"Pipeline(name: "h", stages: {{"m": Command(argv: ["sh", "-c", "echo '{{{{\"n\": {n}}}}}' > {{out}}/metrics.json"])}})"#
        )
    };
    for n in [1, 2] {
        p.write("p.ron", &pipeline(n));
        p.run("p.ron", &[], 0);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let json = p.json(&["show", "p.ron", "m", "--history"], 0);
    let records = json["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{json}");
    assert_eq!(records[0]["metrics"]["n"], 1.0);
    assert_eq!(records[1]["metrics"]["n"], 2.0);
    let text = stdout_of(&p, &["show", "p.ron", "m", "--history"]);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().last().unwrap().ends_with("n=2"), "{text}");
}

/// `pipe diff`: parameters and metrics field by field against the record before, a
/// record by key, or another stage.
#[test]
fn diff_against_the_record_before_a_key_or_another_stage() {
    let p = Project::new();
    let pipeline = |n: u32| {
        format!(
            r#"Pipeline(name: "d", stages: {{
                "m": Command(argv: ["sh", "-c", "echo '{{{{\"n\": {n}}}}}' > {{out}}/metrics.json"]),
                "o": Command(argv: ["sh", "-c", "echo '{{{{\"n\": 9}}}}' > {{out}}/metrics.json"]),
            }})"#
        )
    };
    p.write("p.ron", &pipeline(1));
    p.run("p.ron", &[], 0);
    let first = p.json(&["show", "p.ron", "m"], 0)["record"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.write("p.ron", &pipeline(2));
    p.run("p.ron", &[], 0);

    let text = stdout_of(&p, &["diff", "p.ron", "m"]);
    assert!(text.contains("  metrics.n: 1.0 → 2.0"), "{text}");
    assert!(text.contains("params.argv[2]"), "{text}");
    let json = p.json(&["diff", "p.ron", "m", "--rev", &first[..12]], 0);
    assert_eq!(json["old"]["key"], first.as_str());
    assert!(!json["differences"].as_array().unwrap().is_empty());
    let text = stdout_of(&p, &["diff", "p.ron", "m", "o"]);
    assert!(text.contains("  metrics.n: 9.0 → 2.0"), "{text}");
    let out = p.pipe(&["diff", "p.ron", "o"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out.stderr).contains("has no record before"));
}

#[test]
fn expand_prints_the_stages_as_the_engine_reads_them() {
    let p = Project::new();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/words.ron");
    let out = p.pipe(&[
        "expand",
        file,
        "words",
        "count",
        "--set",
        "count.env.LC_ALL=\"C\"",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // The included file's parameters, in place of its `Include`.
    assert!(stdout.contains("\"words\": Command("), "{stdout}");
    assert!(
        stdout.contains("\"corpus\": \"data/corpus.txt\""),
        "{stdout}"
    );
    // Every member of the ForEach, its placeholder filled in and the `--set` applied.
    for n in [3, 6, 9] {
        assert!(
            stdout.contains(&format!("\"count[min_len={n}]\": Command(")),
            "{stdout}"
        );
        assert!(stdout.contains(&format!("awk 'length >= {n}'")), "{stdout}");
    }
    assert!(
        stdout.contains("// --set count.env.LC_ALL=\"C\""),
        "{stdout}"
    );
    assert!(stdout.contains("\"LC_ALL\": \"C\""), "{stdout}");
    assert!(stdout.contains("// words ← words"), "{stdout}");
    // Only the stages named.
    assert!(!stdout.contains("\"report\""), "{stdout}");

    let wrong = p.pipe(&["expand", file, "cuont"]);
    assert!(!wrong.status.success(), "{}", text(&wrong.stderr));
    assert!(
        text(&wrong.stderr).contains("did you mean `count`?"),
        "{}",
        text(&wrong.stderr)
    );
}

#[test]
fn explain_lists_the_kinds_and_explains_a_field() {
    let p = Project::new();
    let kinds = p.pipe(&["explain"]);
    assert!(kinds.status.success(), "{}", text(&kinds.stderr));
    for kind in pipe::kinds() {
        let name = kind.name();
        assert!(
            text(&kinds.stdout).contains(&format!("  {name} ")),
            "{name} not listed:\n{}",
            text(&kinds.stdout)
        );
    }

    let field = p.pipe(&["explain", "Command.env"]);
    assert!(field.status.success(), "{}", text(&field.stderr));
    let stdout = text(&field.stdout);
    assert!(
        stdout.starts_with("Command.env: BTreeMap<String, String>\n"),
        "{stdout}"
    );
    assert!(stdout.contains("default   {}"), "{stdout}");
    // The field's doc comment, as the code has it.
    assert!(
        stdout.contains("Environment variables set for the program"),
        "{stdout}"
    );

    let kind = text(&p.pipe(&["explain", "Command"]).stdout);
    assert!(kind.contains("argv") && kind.contains("required"), "{kind}");

    let wrong = p.pipe(&["explain", "Command.argvv"]);
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("did you mean `Command.argv`?"),
        "{}",
        text(&wrong.stderr)
    );

    // A variant holding a struct leads into its fields (a build with the stage kinds).
    if text(&kinds.stdout).contains("  Dataset ") {
        let variant = text(&p.pipe(&["explain", "Dataset.source.Cifar10.path"]).stdout);
        assert!(
            variant.starts_with("Dataset.source.Cifar10.path: Option<PathBuf>"),
            "{variant}"
        );
    }
}

/// An output stored within the stat cache's racy window is hashed again by the next
/// lookup; a command that only reads (here `status`) keeps what it learned, so the
/// one after it trusts the entry instead of hashing again.
#[test]
fn status_keeps_the_digests_it_had_to_compute_again() {
    let p = Project::new();
    p.write("p.ron", CHAIN);
    p.run("p.ron", &[], 0);
    // Past the racy window (2 s) of the entries the run wrote.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let cache = p.path("cache/stat-cache");
    let after_run = std::fs::read(&cache).unwrap();
    p.json(&["status", "p.ron"], 0);
    let after_status = std::fs::read(&cache).unwrap();
    assert_ne!(after_run, after_status, "the digests hashed again are kept");
    p.json(&["status", "p.ron"], 0);
    assert_eq!(
        std::fs::read(&cache).unwrap(),
        after_status,
        "trusted now: nothing hashed again"
    );
}
