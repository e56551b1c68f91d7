//! The shipped example pipelines load and run as the README says.

mod common;

use common::*;

#[test]
fn the_quickstart_runs_then_is_cached() {
    let p = Project::new();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/quickstart.ron");
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
