//! Every pipeline and config of the repository is RON as the `ron` crate reads it, so
//! editors, linters and scripts that use `ron` read our files too. The README says
//! where our dialect differs (`Include(...)`, `ForEach(...)` and `{var}` are meanings
//! we give to ordinary RON, not syntax of our own).

use std::path::{Path, PathBuf};

fn ron_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            ron_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "ron") {
            out.push(path);
        }
    }
}

#[test]
fn every_pipeline_and_config_reads_as_ron() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["pipelines", "configs", "benches"] {
        ron_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 20, "found only {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        if let Err(e) = ron::from_str::<ron::Value>(&text) {
            failures.push(format!("{}: {e}", file.display()));
        }
        let mut sources = ronspan::Sources::default();
        let id = sources.add(file.display().to_string(), &text);
        if let Err(e) = ronspan::parse(id, &text) {
            failures.push(format!("{} (ronspan): {}", file.display(), e.message()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Where the two readers part: what the README's "dialect" paragraph states.
#[test]
fn the_dialect_differences_are_as_documented() {
    let ours = |text: &str| ronspan::parse(ronspan::FileId(0), text).is_ok();
    let theirs = |text: &str| ron::from_str::<ron::Value>(text).is_ok();
    for (text, ours_reads, ron_reads) in DIFFERENCES {
        assert_eq!(
            (ours(text), theirs(text)),
            (*ours_reads, *ron_reads),
            "`{text}`: (ronspan, ron)"
        );
    }
}

/// (text, ronspan reads it, ron reads it)
const DIFFERENCES: &[(&str, bool, bool)] = &[
    ("(a: 1, b: [1, 2], c: {\"k\": Some(3)})", true, true),
    ("r#\"raw\"#", true, true),
    ("'c'", true, true),
    ("0x1F", true, true),
    ("1_000", true, true),
    ("#![enable(implicit_some)] (a: 1)", true, true),
    ("/* block */ 1", true, true),
    ("/* /* nested */ */ 1", true, true),
    ("(a: 1) trailing", false, false),
    // Refused by us: byte strings (no parameter takes bytes), and a field written twice
    // (which value would count is a question we answer with an error).
    ("b\"bytes\"", false, true),
    ("(a: 1, a: 2)", false, true),
    ("{\"k\": 1, \"k\": 2}", false, true),
];
