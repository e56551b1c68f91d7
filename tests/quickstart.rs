//! The quickstart end to end, reduced (same stages and configs, tiny data, a few steps):
//! everything runs, a second run runs nothing, changing one Score's count reruns that
//! Score and the report only, the report holds the records' metrics, and the report's
//! lineage reaches every stage.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

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
    assert!(html.contains("curves/train-method=contragan-seed=1-losses.png"));
    assert!(html.contains("curves/train-method=contragan-seed=1-fid.png"));
    assert!(
        Path::new(&out)
            .join("grids/samples-method=acgan-seed=0.png")
            .exists()
    );

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
