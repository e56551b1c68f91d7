//! A temporary project folder with a pipeline, and the `pipe` binary run on it.
#![allow(dead_code)] // each test file uses a different part

pub mod browser;
pub mod http;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// `pipe --cache <dir>/cache ARGS` in the project folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pipe"));
        command
            .current_dir(self.dir.path())
            .arg("--cache")
            .arg(self.path("cache"))
            .args(args)
            .env_remove("PIPE_CACHE")
            .env_remove("RUST_LOG");
        command
    }

    pub fn pipe(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("pipe runs")
    }

    /// Runs `pipe ARGS --json`, expecting exit code `code`, and parses stdout.
    pub fn json(&self, args: &[&str], code: i32) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.pipe(&all);
        assert_eq!(
            out.status.code(),
            Some(code),
            "pipe {all:?}\nstdout:\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&out.stdout)))
    }

    /// `pipe run FILE ARGS --json` → stage name → action.
    pub fn run(&self, file: &str, args: &[&str], code: i32) -> Value {
        let mut all = vec!["run", file];
        all.extend_from_slice(args);
        self.json(&all, code)
    }
}

/// A fixture folder (`$PIPE_FIXTURES/<sub>`, by default `shared/fixtures` beside the
/// repository); a missing folder fails the test, saying where it looked.
#[allow(unused_imports)]
pub use fixtures::dir as fixtures;

/// The FID Inception weight file of the fixtures: whichever `.pth` `fid-inception/` holds.
pub fn inception_weights() -> PathBuf {
    fixtures::file_with_extension("fid-inception", "pth")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `[(stage, action)]` of a `pipe run --json` report, in run order.
pub fn actions(report: &Value) -> Vec<(String, String)> {
    report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Stage names whose action is `action`.
pub fn with_action(report: &Value, action: &str) -> Vec<String> {
    actions(report)
        .into_iter()
        .filter(|(_, a)| a == action)
        .map(|(s, _)| s)
        .collect()
}

pub fn stage<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name}"))
}

/// Waits up to 10 s for a file to appear.
pub fn wait_for(path: &Path) {
    wait_for_secs(path, 10);
}

/// Waits up to `seconds` for a file to appear.
pub fn wait_for_secs(path: &Path, seconds: u64) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed().as_secs() < seconds,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A chain a → b → c and an independent d, each writing a file.
pub const CHAIN: &str = r#"
Pipeline(
    name: "chain",
    stages: {
        "a": Command(argv: ["sh", "-c", "echo A > {out}/a.txt"]),
        "b": Command(argv: ["sh", "-c", "cat {in.a}/a.txt > {out}/b.txt; echo B >> {out}/b.txt"], deps: {"a": "a"}),
        "c": Command(argv: ["sh", "-c", "cat {in.b}/b.txt > {out}/c.txt; echo C >> {out}/c.txt"], deps: {"b": "b"}),
        "d": Command(argv: ["sh", "-c", "echo D > {out}/d.txt"]),
    },
)
"#;

/// The length of a JSON array (0 if it is not one).
pub fn len(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

/// Every kind of the binary: the engine's own and those of the `stages` crate.
#[cfg(feature = "kinds")]
pub fn registry() -> contract::Registry {
    contract::Registry::new(pipe::kinds().into_iter().chain(stages::kinds()).collect())
}
