//! The shipped example pipelines load and run as the README says.

mod common;

use common::*;

#[test]
fn the_command_example_runs_then_is_cached() {
    let p = Project::new();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/words.ron");
    let first = p.run(file, &[], 0);
    assert_eq!(with_action(&first, "ran").len(), 5);
    assert_eq!(
        stage(&first, "count[min_len=6]")["metrics"]["distinct"],
        15.0
    );
    let second = p.run(file, &[], 0);
    assert_eq!(with_action(&second, "cached").len(), 5);
}

#[test]
fn the_datasets_pipeline_plans_offline() {
    let p = Project::new();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/datasets.ron");
    let plan = p.run(file, &["--dry-run"], 0);
    assert_eq!(with_action(&plan, "would_run").len(), 8);
    assert_eq!(
        stage(&plan, "cifar10_test")["reasons"][0]["stage"],
        "cifar10_archive"
    );
    let shapes = p.run(file, &["shapes_test"], 0);
    assert_eq!(with_action(&shapes, "ran"), ["shapes_test"]);
    assert_eq!(stage(&shapes, "shapes_test")["metrics"]["images"], 1000.0);
}

/// The paper's reproductions plan offline: every configuration × seed trains, samples
/// and scores, each score reading its own samples, and one report gathers them.
#[test]
fn the_table_pipelines_plan_offline() {
    let p = Project::new();
    let tables = [
        ("table1", 157, 36),
        ("table2", 73, 21),
        ("table3", 33, 9),
        ("extended", 69, 21),
        ("wgan", 24, 6),
        ("logan", 24, 6),
    ];
    for (file, stages, trainings) in tables {
        let path = format!("{}/pipelines/{file}.ron", env!("CARGO_MANIFEST_DIR"));
        let plan = p.run(&path, &["--dry-run"], 0);
        let planned = with_action(&plan, "would_run");
        assert_eq!(planned.len(), stages, "{file}");
        let count = |prefix: &str| planned.iter().filter(|s| s.starts_with(prefix)).count();
        assert_eq!(count("train_"), trainings, "{file}");
        assert_eq!(count("samples_"), trainings, "{file}");
        assert_eq!(count("score_"), trainings, "{file}");
        if file == "table1" {
            // FD_DINOv2 of the same samples.
            assert_eq!(count("dinov2_"), trainings, "{file}");
        }
        assert!(planned.contains(&file.to_string()), "{file}: its report");

        let dag = p.pipe(&["dag", &path]);
        assert!(dag.status.success(), "{}", text(&dag.stderr));
        let dag = text(&dag.stdout);
        let mut lines = dag
            .lines()
            .skip_while(|l| !(l.starts_with("score_") && l.contains(",seed=1]")));
        assert!(lines.next().is_some(), "{file}: no score stage in\n{dag}");
        let samples = lines
            .take_while(|l| l.starts_with("  <-"))
            .find(|l| l.contains("<- samples:"))
            .unwrap();
        assert_eq!(samples.matches("samples_").count(), 1, "{file}: {samples}");
        assert!(samples.contains(",seed=1]"), "{file}: {samples}");
    }
}

/// The ImageNet pipeline plans once its images are where it says, and until then names
/// the folder it looked for.
#[test]
fn the_imagenet_pipeline_plans_and_names_its_missing_folder() {
    let p = Project::new();
    let path = format!("{}/pipelines/imagenet.ron", env!("CARGO_MANIFEST_DIR"));
    let plan = p.run(&path, &["--dry-run"], 1);
    assert_eq!(
        with_action(&plan, "failed"),
        ["imagenet_train", "imagenet_val"]
    );
    let out = p.pipe(&["run", &path, "--dry-run"]);
    assert!(
        text(&out.stdout).contains("input `../data/ILSVRC2012` does not exist"),
        "{}",
        text(&out.stdout)
    );
    std::fs::create_dir_all(p.path("ILSVRC2012/train/n01440764")).unwrap();
    let local = p.path("ILSVRC2012").display().to_string();
    let (train, val) = (
        format!("imagenet_train.source.path=\"{local}\""),
        format!("imagenet_val.source.path=\"{local}\""),
    );
    let plan = p.run(&path, &["--dry-run", "--set", &train, "--set", &val], 0);
    let planned = with_action(&plan, "would_run");
    assert_eq!(planned.len(), 11, "{planned:?}");
    let trainings = planned
        .iter()
        .filter(|s| s.starts_with("train_imagenet"))
        .count();
    assert_eq!(trainings, 2);
}
