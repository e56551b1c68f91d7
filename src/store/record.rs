//! Records: one per successfully executed key, written last and atomically.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::objects::TreeState;
use super::{Result, Store, list_json_stems, read_json, write_json};
use crate::digest::{Digest, Object, StageKey};
use crate::key::KeyInputs;

/// Why an output in `state` cannot be reused, if it cannot.
pub(super) fn damage(state: TreeState) -> Option<String> {
    match state {
        TreeState::Intact => None,
        TreeState::Missing => Some("its cached output is gone".into()),
        TreeState::Corrupt { path } => Some(format!("its cached output `{path}` is corrupt")),
    }
}

/// What a successful execution of a key produced, and from what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema: u32,
    pub key: Digest<StageKey>,
    pub pipeline: String,
    /// The stage's name when it ran (keys do not depend on names).
    pub stage: String,
    /// The manifest of everything the key was computed from.
    pub inputs: KeyInputs,
    /// Which stages the upstream digests came from, for lineage.
    pub sources: Vec<Source>,
    /// External files by role, as written in the pipeline.
    pub files: BTreeMap<String, PathBuf>,
    pub output: Digest<Object>,
    pub output_files: usize,
    pub output_bytes: u64,
    pub metrics: BTreeMap<String, f64>,
    /// The conditions the metrics were measured under (the stage kind's own words).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub protocol: BTreeMap<String, String>,
    pub summary: Option<String>,
    /// RFC 3339, UTC.
    pub started: String,
    pub duration_s: f64,
    /// `cpu`, or the GPU ids the stage was given.
    pub device: String,
    pub host: String,
    /// The cluster's job that ran the stage (a Slurm job id), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_job: Option<String>,
    pub log: Option<Digest<Object>>,
}

impl Record {
    /// External inputs: role, path as written, and the digest the key used.
    pub fn file_inputs(
        &self,
    ) -> impl Iterator<Item = (&str, &std::path::Path, Option<Digest<Object>>)> {
        self.files.iter().map(|(role, path)| {
            (
                role.as_str(),
                path.as_path(),
                self.inputs.files.get(role).copied(),
            )
        })
    }
}

/// What later stages and reports need of a stage that completed: its key, output and
/// metrics. A run or a status holds this for every stage, not whole records (whose
/// parameters and sources are most of their bytes, and of a rerun's time to read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completed {
    pub key: Digest<StageKey>,
    pub output: Digest<Object>,
    pub metrics: BTreeMap<String, f64>,
}

impl From<&Record> for Completed {
    fn from(record: &Record) -> Completed {
        Completed {
            key: record.key,
            output: record.output,
            metrics: record.metrics.clone(),
        }
    }
}

/// One upstream stage a record read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub role: String,
    pub stage: String,
    pub key: Digest<StageKey>,
    pub output: Digest<Object>,
}

/// The last failure of a key. Kept apart from records: a failure is never a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub key: Digest<StageKey>,
    pub pipeline: String,
    pub stage: String,
    pub error: String,
    pub when: String,
    pub log: Option<PathBuf>,
}

/// Whether a key's result can be reused.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Hit(Box<Record>),
    Miss,
    /// There is a record but its output is damaged or gone: the stage must run again.
    Damaged {
        record: Box<Record>,
        why: String,
    },
}

impl Store {
    pub fn record(&self, key: &Digest<StageKey>) -> Result<Option<Record>> {
        read_json(&self.record_path(key))
    }

    /// The record of `key` if its output is intact (checked through the stat cache).
    pub fn lookup(&self, key: &Digest<StageKey>) -> Result<Lookup> {
        self.lookup_with(key, &|tree| self.check_tree(tree))
    }

    /// [`Store::lookup`], with outputs checked by `check`.
    pub(super) fn lookup_with(
        &self,
        key: &Digest<StageKey>,
        check: &dyn Fn(&Digest<Object>) -> Result<TreeState>,
    ) -> Result<Lookup> {
        let Some(record) = self.record(key)? else {
            return Ok(Lookup::Miss);
        };
        Ok(match damage(check(&record.output)?) {
            None => Lookup::Hit(Box::new(record)),
            Some(why) => Lookup::Damaged {
                record: Box::new(record),
                why,
            },
        })
    }

    pub fn write_record(&self, record: &Record) -> Result<()> {
        write_json(&self.record_path(&record.key), record)?;
        let failure = self.failure_path(&record.key);
        if failure.exists() {
            let _ = std::fs::remove_file(&failure);
        }
        Ok(())
    }

    pub fn record_keys(&self) -> Result<Vec<Digest<StageKey>>> {
        let dir = self.root.join("records");
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(super::StoreError::io("list", &dir))? {
            let entry = entry.map_err(super::StoreError::io("list", &dir))?;
            keys.extend(list_json_stems(&entry.path())?);
        }
        keys.sort();
        Ok(keys)
    }

    pub fn records(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for key in self.record_keys()? {
            out.extend(self.record(&key)?);
        }
        Ok(out)
    }

    pub fn failure(&self, key: &Digest<StageKey>) -> Result<Option<Failure>> {
        read_json(&self.failure_path(key))
    }

    pub fn write_failure(&self, failure: &Failure) -> Result<()> {
        write_json(&self.failure_path(&failure.key), failure)
    }
}
