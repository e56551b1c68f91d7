//! The canonical parameters of every stage of the shipped pipelines, pinned in
//! `tests/keys.txt`: the part of each key a kind controls. A change that moves one reruns
//! that stage for every user; it must be deliberate. The rules (the `contract` crate's
//! documentation): a new field defaults to the old behaviour and is skipped at that
//! default; a change of meaning bumps the kind's `VERSION`. After either, rerun with
//! `PIPE_BLESS=1` to write the new pins.

mod common;

use std::path::{Path, PathBuf};

fn pipelines() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    files
}

/// `file stage kind vVERSION digest-of-canonical-params`, one line per stage.
fn pins() -> String {
    let mut lines = Vec::new();
    for file in pipelines() {
        let pipeline = pipe::pipeline::Pipeline::load(&file, &common::registry())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for stage in &pipeline.stages {
            let params = serde_json::to_string(&stage.params.value()).unwrap();
            let digest = blake3::hash(params.as_bytes()).to_hex();
            lines.push(format!(
                "{name} {} {} v{} {}",
                stage.name,
                stage.kind,
                stage.kind_version,
                &digest[..16]
            ));
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn canonical_parameters_of_the_shipped_pipelines_are_pinned() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys.txt");
    let got = pins();
    if std::env::var_os("PIPE_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "`{}`: {e}; run with PIPE_BLESS=1 to write it",
            path.display()
        )
    });
    let pinned: std::collections::BTreeSet<&str> = pinned.lines().collect();
    let moved: Vec<&str> = got.lines().filter(|l| !pinned.contains(l)).collect();
    assert!(
        moved.is_empty(),
        "the canonical parameters (and so the keys) of these stages changed:\n  {}\n\
         A new field must be skipped at its default (`skip_serializing_if`); a change of \
         meaning bumps the kind's VERSION. Then rerun with PIPE_BLESS=1.",
        moved.join("\n  ")
    );
}
