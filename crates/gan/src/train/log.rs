//! The training's JSON-lines logs in the work folder (losses per iteration, FID per
//! evaluation), cut back to the checkpoint's step when a run resumes.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::TrainError;
use crate::GanError;

/// The file of every evaluation's score, beside [`LOSSES`].
pub const SCORES: &str = "fid.jsonl";
/// The training log: step, losses and seconds, one line per iteration.
pub const LOSSES: &str = "metrics.jsonl";

/// The JSON-lines log of every iteration, cut back to the checkpoint on resume.
pub(super) struct MetricsLog {
    file: std::fs::File,
    path: PathBuf,
}

impl MetricsLog {
    /// Opens the log for appending, and returns the lines it kept.
    pub fn open(path: &Path, keep_until: u64) -> Result<(MetricsLog, String), TrainError> {
        let io = |e| TrainError::Gan(GanError::io(path, e));
        let kept: String = match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .filter(|line| {
                    serde_json::from_str::<serde_json::Value>(line)
                        .is_ok_and(|l| l["step"].as_u64().is_some_and(|s| s <= keep_until))
                })
                .map(|line| format!("{line}\n"))
                .collect(),
            Err(_) => String::new(),
        };
        std::fs::write(path, &kept).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io)?;
        let log = MetricsLog {
            file,
            path: path.to_path_buf(),
        };
        Ok((log, kept))
    }

    pub fn append(&mut self, entry: &impl Serialize) -> Result<(), TrainError> {
        let line = serde_json::to_string(entry).unwrap();
        writeln!(self.file, "{line}").map_err(|e| TrainError::Gan(GanError::io(&self.path, e)))
    }
}
