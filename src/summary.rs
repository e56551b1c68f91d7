//! What a run did, stage by stage: one type, rendered as text lines or as JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::digest::{Digest, StageKey};
use crate::reason::Reason;

/// Version of the JSON shape of `pipe run --json`; bumped on incompatible changes.
pub const RUN_JSON_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Reused from the store.
    Cached,
    Ran,
    /// Another process ran the same key while this run waited for it.
    Reused,
    /// Downloaded from a remote cache (`--remote`) instead of computed.
    Pulled,
    Failed,
    /// Not run because an upstream failed.
    Skipped,
    /// Stopped by Ctrl-C.
    Interrupted,
    /// Not started: the run stopped early (a failure without `--keep-going`, or Ctrl-C).
    NotRun,
    /// `--dry-run`: would run.
    WouldRun,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Action::Cached => "cached",
            Action::Ran => "ran",
            Action::Reused => "reused",
            Action::Pulled => "pulled",
            Action::Failed => "failed",
            Action::Skipped => "skipped",
            Action::Interrupted => "interrupted",
            Action::NotRun => "not run",
            Action::WouldRun => "would run",
        }
    }

    pub fn succeeded(self) -> bool {
        matches!(
            self,
            Action::Cached | Action::Ran | Action::Reused | Action::Pulled
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub stage: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Digest<StageKey>>,
    /// Why the stage ran (empty for cached stages).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// GPU ids the stage was given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<u32>,
}

impl StageReport {
    pub fn new(stage: &str, action: Action) -> StageReport {
        StageReport {
            stage: stage.to_string(),
            action,
            key: None,
            reasons: Vec::new(),
            duration_s: None,
            error: None,
            log: None,
            output: None,
            metrics: BTreeMap::new(),
            gpus: Vec::new(),
        }
    }

    /// One line, as `pipe run` prints it.
    pub fn line(&self) -> String {
        let detail = match self.action {
            Action::Ran | Action::Reused | Action::Pulled => {
                format!("{:.2}s", self.duration_s.unwrap_or_default())
            }
            Action::Cached => self.key.map(|k| k.short()).unwrap_or_default(),
            Action::WouldRun => self
                .reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            Action::Failed | Action::Interrupted => {
                let log = self
                    .log
                    .as_ref()
                    .map(|l| format!(" (log: {})", l.display()))
                    .unwrap_or_default();
                let error = match (&self.error, self.action) {
                    (Some(error), _) => error.as_str(),
                    (None, Action::Failed) => "failed",
                    (None, _) => "",
                };
                format!("{error}{log}")
            }
            _ => self.error.clone().unwrap_or_default(),
        };
        format!("{:<11} {}  {}", self.action.label(), self.stage, detail)
            .trim_end()
            .to_string()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub schema: u32,
    pub pipeline: String,
    pub stages: Vec<StageReport>,
    pub duration_s: f64,
    pub interrupted: bool,
    pub counts: BTreeMap<&'static str, usize>,
    /// Calls made to a cluster's scheduler (`sbatch`, `squeue`, …), by program.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub scheduler_calls: BTreeMap<&'static str, u64>,
}

impl RunReport {
    pub fn new(
        pipeline: &str,
        stages: Vec<StageReport>,
        duration_s: f64,
        interrupted: bool,
    ) -> RunReport {
        let mut counts = BTreeMap::new();
        for s in &stages {
            *counts.entry(s.action.label()).or_insert(0) += 1;
        }
        RunReport {
            schema: RUN_JSON_SCHEMA,
            pipeline: pipeline.to_string(),
            stages,
            duration_s,
            interrupted,
            counts,
            scheduler_calls: BTreeMap::new(),
        }
    }

    pub fn succeeded(&self) -> bool {
        !self.interrupted && self.stages.iter().all(|s| s.action.succeeded())
    }

    /// `3 ran, 5 cached, 1 failed in 4.20s`.
    pub fn summary_line(&self) -> String {
        let order = [
            Action::Ran,
            Action::Pulled,
            Action::Reused,
            Action::Cached,
            Action::Failed,
            Action::Skipped,
            Action::Interrupted,
            Action::NotRun,
            Action::WouldRun,
        ];
        let parts: Vec<String> = order
            .iter()
            .filter_map(|a| {
                self.counts
                    .get(a.label())
                    .map(|n| format!("{n} {}", a.label()))
            })
            .collect();
        let parts = if parts.is_empty() {
            "nothing to do".to_string()
        } else {
            parts.join(", ")
        };
        let calls: Vec<String> = self
            .scheduler_calls
            .iter()
            .filter(|&(_, &n)| n > 0)
            .map(|(program, n)| format!("{n} {program}"))
            .collect();
        let calls = if calls.is_empty() {
            String::new()
        } else {
            format!(" (scheduler calls: {})", calls.join(", "))
        };
        format!(
            "{}: {parts} in {:.2}s{calls}",
            self.pipeline, self.duration_s
        )
    }
}
