//! A Ctrl-C during feature extraction is an interruption, not a failure: the kinds that
//! run the Inception network return `StageError::Cancelled`, which the engine records
//! as nothing (the next run starts the stage again).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use contract::{Context, Input, Kind, Progress, StageError, Typed};
use stages::data::PackWriter;
use stages::kinds::inception_stats::InceptionStats;

/// Sets the cancellation flag at the first progress report, as Ctrl-C would mid-way.
struct CancelAtFirstReport<'a>(&'a AtomicBool);

impl Progress for CancelAtFirstReport<'_> {
    fn report(&self, _: u64, _: Option<u64>, _: &str) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn input(path: &Path, kind: &str) -> Vec<Input> {
    vec![Input {
        from: path.display().to_string(),
        kind: Some(kind.into()),
        path: path.to_path_buf(),
        metrics: BTreeMap::new(),
        protocol: BTreeMap::new(),
    }]
}

#[test]
fn ctrl_c_during_inception_stats_is_an_interruption() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut pack =
        PackWriter::create(&data.join("images.pack"), 32, 32, vec!["a".into()], "test").unwrap();
    for i in 0..6u8 {
        pack.push(&vec![i * 40; 32 * 32 * 3], 0).unwrap();
    }
    pack.finish().unwrap();
    // Any weight file of the fixture folder: a `Weights` stage's output holds one.
    let weights = fixtures::file_with_extension("fid-inception", "pth");
    let weights_dir = tmp.path().join("weights");
    std::fs::create_dir(&weights_dir).unwrap();
    std::fs::copy(&weights, weights_dir.join(weights.file_name().unwrap())).unwrap();

    let inputs = BTreeMap::from([
        ("data".to_string(), input(&data, "Dataset")),
        ("weights".to_string(), input(&weights_dir, "Weights")),
    ]);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let log = std::fs::File::create(tmp.path().join("log")).unwrap();
    let cancel = AtomicBool::new(false);
    let progress = CancelAtFirstReport(&cancel);
    let ctx = Context {
        stage: "stats",
        out: &out,
        work: tmp.path(),
        base_dir: tmp.path(),
        inputs: &inputs,
        gpus: &[],
        threads: 2,
        log: &log,
        cancel: &cancel,
        progress: &progress,
    };
    let params =
        serde_json::json!({"data": "data", "weights": "weights", "batch": 2, "device": "Cpu"});
    let result = Typed::<InceptionStats>::default().run(&params, &ctx);
    assert!(cancel.load(Ordering::Relaxed), "no batch was reported");
    match result {
        Err(StageError::Cancelled) => {}
        Err(other) => panic!("recorded as a failure: {}", other.chain()),
        Ok(_) => panic!("finished although cancelled after the first batch"),
    }
}
