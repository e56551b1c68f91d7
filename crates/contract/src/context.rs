use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::StageError;

/// Everything a running stage may touch.
pub struct Context<'a> {
    /// The stage's name in the pipeline, e.g. `train[seed=1]`.
    pub stage: &'a str,
    /// A fresh, empty folder: everything written here becomes the stage's output.
    pub out: &'a Path,
    /// Resumable state: kept across interrupted runs of the same key, never hashed.
    pub work: &'a Path,
    /// The pipeline file's folder; relative paths in parameters start here.
    pub base_dir: &'a Path,
    /// Upstream outputs and external files by role, read-only.
    pub inputs: &'a BTreeMap<String, Vec<Input>>,
    /// GPU ids this stage was given, as many as it declared.
    pub gpus: &'a [u32],
    /// CPU threads for the stage's own parallel work: its share of the machine when
    /// several stages run at once (`pipe run -j`).
    pub threads: usize,
    /// The stage's log, kept with its record.
    pub log: &'a File,
    pub cancel: &'a AtomicBool,
    pub progress: &'a dyn Progress,
}

impl Context<'_> {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The path of the single input of a role.
    pub fn input(&self, role: &str) -> Result<&Path, StageError> {
        Ok(&self.single(role)?.path)
    }

    /// The single input of a role: its path, and the kind of stage that made it.
    pub fn single(&self, role: &str) -> Result<&Input, StageError> {
        match self.inputs.get(role).map(Vec::as_slice) {
            Some([one]) => Ok(one),
            Some(many) => Err(StageError::failed(format!(
                "input `{role}` resolves to {} stages where one was expected",
                many.len()
            ))),
            None => Err(StageError::failed(format!("no input named `{role}`"))),
        }
    }
}

/// One resolved input.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The upstream stage's name, or the external path as written.
    pub from: String,
    /// The kind of the upstream stage (`Train`, `Weights`, …); `None` for external files.
    /// Readers open an upstream by what it is, not by which files it happens to hold.
    pub kind: Option<String>,
    pub path: PathBuf,
    /// The upstream record's metrics (none for external files).
    pub metrics: BTreeMap<String, f64>,
    /// How the upstream's metrics were measured (see [`Outcome::protocol`]).
    pub protocol: BTreeMap<String, String>,
}

/// Progress reports from a running stage to whatever displays them.
pub trait Progress: Sync {
    fn report(&self, done: u64, total: Option<u64>, message: &str);
}

/// What a successful stage returns besides its files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub metrics: BTreeMap<String, f64>,
    pub summary: Option<String>,
    /// The conditions the metrics were measured under, as named facts (what they were
    /// measured against, with what, on how many samples): numbers measured under
    /// different conditions do not compare, and readers of the records (reports,
    /// `pipe show`) say so.
    pub protocol: BTreeMap<String, String>,
}
