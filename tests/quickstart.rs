//! The quickstart end to end, reduced (same stages and configs, tiny data, a few steps):
//! everything runs, a second run runs nothing, changing one Score's count reruns that
//! Score and the report only, the report holds the records' metrics, and the report's
//! lineage reaches every stage.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::browser;
use common::*;
use serde_json::Value;

/// Copies `rel` from the repository into the project, with `(from, to)` replacements,
/// each of which must apply.
fn copy(p: &Project, rel: &str, edits: &[(&str, &str)]) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let mut text = std::fs::read_to_string(&source).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{rel} no longer contains {from:?}");
        text = text.replace(from, to);
    }
    std::fs::create_dir_all(p.path(rel).parent().unwrap()).unwrap();
    p.write(rel, &text);
}

fn reduced_quickstart() -> Project {
    let p = Project::new();
    copy(
        &p,
        "pipelines/quickstart.ron",
        &[
            ("per_class: 1000,", "per_class: 8,"),
            ("per_class: 200,", "per_class: 4,"),
            ("steps: 300,", "steps: 3, batch_size: 8,"),
            ("every: 200, count: 250", "every: 2, count: 10"),
            ("checkpoint_every: 200,", "checkpoint_every: 2,"),
            ("count: 1000, generator: Ema", "count: 10, generator: Ema"),
            ("count: 1000),", "count: 12),"),
        ],
    );
    copy(
        &p,
        "configs/quickstart/train.ron",
        &[
            ("\"batch_size\": 16", "\"batch_size\": 4"),
            ("\"total_steps\": 1500", "\"total_steps\": 4"),
            ("start: 750", "start: 2"),
        ],
    );
    for rel in [
        "configs/quickstart/classifier.ron",
        "configs/quickstart/gan.model.ron",
        "configs/quickstart/acgan.ron",
        "configs/quickstart/cgan.ron",
        "configs/quickstart/contragan.ron",
        "configs/common/biggan32.model.ron",
        "configs/common/cifar.train.ron",
    ] {
        copy(&p, rel, &[]);
    }
    p
}

/// Every `stage` named anywhere in a lineage tree.
fn stages_in(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(stage)) = map.get("stage") {
                out.insert(stage.clone());
            }
            map.values().for_each(|v| stages_in(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| stages_in(v, out)),
        _ => {}
    }
}

#[test]
fn the_quickstart_runs_reruns_what_changed_and_reports_with_lineage() {
    let p = reduced_quickstart();
    let file = "pipelines/quickstart.ron";
    let first = p.run(file, &[], 0);
    let ran = with_action(&first, "ran");
    // 2 data sets, classifier, statistics, 6 × (train, samples, score), real, report.
    assert_eq!(ran.len(), 24, "{ran:?}");
    assert!(with_action(&first, "failed").is_empty());

    let second = p.run(file, &[], 0);
    assert_eq!(with_action(&second, "cached").len(), 24);
    assert!(with_action(&second, "ran").is_empty());

    let text = std::fs::read_to_string(p.path(file)).unwrap();
    p.write(file, &text.replace("count: 12),", "count: 10),"));
    let third = p.run(file, &[], 0);
    assert_eq!(
        with_action(&third, "ran"),
        ["score_real[method=real]", "report"]
    );

    // The report's files, and the records' metrics in them.
    let out = stage(&third, "report")["output"]
        .as_str()
        .unwrap()
        .to_string();
    for name in [
        "report.md",
        "report.json",
        "table-1.csv",
        "table-2.csv",
        "index.html",
    ] {
        assert!(Path::new(&out).join(name).exists(), "{name}");
    }
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(&out).join("report.json")).unwrap(),
    )
    .unwrap();
    let cells = report["tables"][0]["cells"].as_array().unwrap();
    for (name, metric) in [
        ("score[method=cgan,seed=1]", "fid"),
        ("score[method=acgan,seed=0]", "accuracy"),
        ("score_real[method=real]", "is_mean"),
    ] {
        let recorded = stage(&third, name)["metrics"][metric].as_f64();
        let recorded = recorded.unwrap_or_else(|| {
            stage(&first, name)["metrics"][metric]
                .as_f64()
                .unwrap_or_else(|| panic!("{name} has no {metric}"))
        });
        let reported = cells
            .iter()
            .filter(|c| c["metric"] == metric)
            .flat_map(|c| c["values"].as_array().unwrap())
            .find(|v| v[0] == name)
            .unwrap_or_else(|| panic!("{name} {metric} is not in the report"))[1]
            .as_f64()
            .unwrap();
        assert_eq!(reported, recorded, "{name} {metric}");
    }
    let markdown = std::fs::read_to_string(Path::new(&out).join("report.md")).unwrap();
    assert!(
        markdown.contains("| method | fid | is_mean | accuracy |"),
        "{markdown}"
    );
    let html = std::fs::read_to_string(Path::new(&out).join("index.html")).unwrap();
    for chart in ["fid", "d_loss", "g_loss"] {
        let name = format!("curves/train-{chart}.svg");
        assert!(html.contains(&name), "{name} is not in index.html");
        let svg = std::fs::read_to_string(Path::new(&out).join(&name)).unwrap();
        for method in ["acgan", "cgan", "contragan"] {
            assert!(
                svg.contains(&format!(">{method} (2 runs)</text>")),
                "{name}: {method}"
            );
        }
    }
    let grid = std::fs::read_to_string(Path::new(&out).join("grids/shapes_test.svg")).unwrap();
    assert_eq!(grid.matches("class=\"label\"").count(), 5, "{grid}");

    // The lineage of the report reaches every other stage.
    let lineage = p.json(&["lineage", file, "report"], 0);
    let mut named = BTreeSet::new();
    stages_in(&lineage["lineage"], &mut named);
    let all: BTreeSet<String> = with_action(&third, "ran")
        .into_iter()
        .chain(with_action(&third, "cached"))
        .collect();
    assert_eq!(named, all);
}

/// The report as a reader sees it: headless Chromium loads `index.html`, every image
/// (the SVG charts and grids) loads, and the tables are there. With
/// `PIPE_REPORT_SCREENSHOT=FILE.png` the page is also saved as a screenshot.
#[test]
fn the_report_loads_in_a_browser() {
    let p = reduced_quickstart();
    let report = p.run("pipelines/quickstart.ron", &["report"], 0);
    let page = Path::new(stage(&report, "report")["output"].as_str().unwrap()).join("index.html");
    let found = browser::inspect(&page);
    let html = std::fs::read_to_string(&page).unwrap();
    let images = found["images"].as_array().unwrap();
    assert_eq!(images.len(), html.matches("<img ").count(), "{found}");
    assert!(images.len() >= 4, "{found}");
    for image in images {
        assert_eq!(image["loaded"], true, "did not load: {image}");
        assert!(image["width"].as_u64().unwrap() > 100, "{image}");
    }
    assert_eq!(found["tables"], 2, "{found}");
    // Header and the three methods (and `real` in the first).
    assert_eq!(found["rows"], 5 + 4, "{found}");
    if let Some(png) = std::env::var_os("PIPE_REPORT_SCREENSHOT") {
        browser::screenshot(&page, Path::new(&png), 1280, 2400);
    }
}

/// A report that asks for what its stages lack says which stage and what. (`charts` is
/// not in the file: `--set` adds it, as writing `charts: (legend: …)` would.)
#[test]
fn report_errors_name_the_stage_and_what_it_lacks() {
    let p = reduced_quickstart();
    let file = "pipelines/quickstart.ron";
    let cases = [
        (
            "report.charts.legend=Some(\"backbone\")",
            "charts: stage `train[method=acgan,seed=0]` has no ForEach variable `backbone` for the legend",
        ),
        (
            "report.grids=[\"train\"]",
            "`train[method=acgan,seed=0]` has no preview.png: `grids` takes Sample or Dataset stages",
        ),
        (
            "report.curves=[\"samples\"]",
            "`samples[method=acgan,seed=0]` has no metrics.jsonl: `curves` takes Train stages",
        ),
    ];
    for (set, expected) in cases {
        let report = p.run(file, &["--set", set, "report"], 1);
        let error = stage(&report, "report")["error"].as_str().unwrap();
        assert!(error.contains(expected), "--set {set}: {error}");
    }
}

/// Without a terminal, progress is plain lines on stderr: each stage's start, and its
/// progress with rate and time left (every `PIPE_PROGRESS_SECS`, here each report).
#[test]
fn progress_without_a_terminal_is_plain_lines() {
    let p = reduced_quickstart();
    // `pipe run` on the quickstart with `args`, reporting every progress: (stdout, stderr).
    let run = |args: &[&str]| {
        let mut all = vec!["run", "pipelines/quickstart.ron"];
        all.extend_from_slice(args);
        let out = p
            .command(&all)
            .env("PIPE_PROGRESS_SECS", "0")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    let (stdout, stderr) = run(&["train[method=acgan,seed=0]"]);
    // shapes_train, classifier (needs shapes_test), test_stats, the training: 5 stages.
    assert!(stderr.contains("[0/5] started "), "{stderr}");
    assert!(
        stderr.contains("[4/5] started train[method=acgan,seed=0]"),
        "{stderr}"
    );
    let last = stderr
        .lines()
        .find(|l| l.starts_with("[4/5] train[method=acgan,seed=0]: 4/4 (100%)"))
        .unwrap_or_else(|| panic!("no final progress line in\n{stderr}"));
    assert!(
        last.contains("/s · D ") || last.contains(" s each · D "),
        "{last}"
    );
    let mid = stderr
        .lines()
        .find(|l| l.contains("train[method=acgan,seed=0]: 3/4 (75%)"))
        .unwrap_or_else(|| panic!("no progress line at step 3 in\n{stderr}"));
    assert!(mid.contains(" left · "), "{mid}");
    assert!(stdout.contains("train[method=acgan,seed=0]"));

    // The same from a stage run by `pipe exec` in a child process.
    let (_, stderr) = run(&["train[method=cgan,seed=0]", "--executor", "process"]);
    assert!(
        stderr.contains("[4/5] train[method=cgan,seed=0]: 4/4 (100%)"),
        "{stderr}"
    );
}
