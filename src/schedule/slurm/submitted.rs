//! Which Slurm job computes a key, written in the store: `slurm/submitted/<key>.json`.
//!
//! A run that is about to submit a key first looks here, under the key's lock: if a
//! job for it is still queued or running (another `pipe run` on the same store, or one
//! that was killed and left its jobs behind), it waits for that job instead of
//! submitting a second. `pipe status` reads the same files to show queued stages.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, StageKey};
use crate::store::{Lock, Store, StoreError, read_json, write_json};

/// A key's job, as the run that submitted it wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlurmJob {
    pub job: u64,
    pub stage: String,
    pub pipeline: String,
    /// RFC 3339, UTC.
    pub submitted: String,
    /// `pid@host` of the `pipe run` that submitted it.
    pub by: String,
    /// The job's stdout and stderr.
    pub log: PathBuf,
}

/// The store's folder for Slurm's files: scripts, logs, exit codes, submissions.
pub fn folder(store: &Store) -> PathBuf {
    store.root().join("slurm")
}

fn path(store: &Store, key: &Digest<StageKey>) -> PathBuf {
    folder(store).join("submitted").join(format!("{key}.json"))
}

/// Held while a run decides whether to submit `key`.
pub fn lock(store: &Store, key: &Digest<StageKey>) -> Result<Lock, StoreError> {
    let path = folder(store).join("submitted").join(format!("{key}.lock"));
    make_parent(&path)?;
    Lock::exclusive(&path)
}

pub fn read(store: &Store, key: &Digest<StageKey>) -> Result<Option<SlurmJob>, StoreError> {
    // A file another run is writing reads as absent (it renames into place).
    match read_json(&path(store, key)) {
        Err(StoreError::Json { .. }) => Ok(None),
        other => other,
    }
}

pub fn write(store: &Store, key: &Digest<StageKey>, job: &SlurmJob) -> Result<(), StoreError> {
    write_json(&path(store, key), job)
}

/// Forgets the key's job if it is still `job` (a newer submission stays).
pub fn forget(store: &Store, key: &Digest<StageKey>, job: u64) {
    let Ok(_lock) = lock(store, key) else {
        return;
    };
    if read(store, key)
        .ok()
        .flatten()
        .is_some_and(|j| j.job == job)
    {
        let _ = std::fs::remove_file(path(store, key));
    }
}

/// The jobs submitted for any of `keys`.
pub fn submitted_jobs<'k>(
    store: &Store,
    keys: impl IntoIterator<Item = &'k Digest<StageKey>>,
) -> Result<Vec<(Digest<StageKey>, SlurmJob)>, StoreError> {
    let mut out = Vec::new();
    if !folder(store).join("submitted").is_dir() {
        return Ok(out);
    }
    for key in keys {
        if let Some(job) = read(store, key)? {
            out.push((*key, job));
        }
    }
    Ok(out)
}

pub fn make_parent(path: &Path) -> Result<(), StoreError> {
    let dir = path.parent().expect("store paths have a parent");
    std::fs::create_dir_all(dir).map_err(StoreError::io("create", dir))
}
