//! Which key each stage of a pipeline last completed with: what `why`, `status`, `show`
//! and `cache gc` start from.
//!
//! `refs/<pipeline>.json` holds them as of the end of the last run; while a run goes
//! on, each stage that finishes is appended to `refs/<pipeline>.journal` (a line, at
//! once, so that a run killed later leaves nothing it finished unreferenced), which
//! readers replay over the JSON and the end of the run folds into it. Rewriting the
//! whole JSON for each stage made a first run of 10,000 stages quadratic.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Lock, Result, Store, read_json, write_json};
use crate::digest::{Digest, StageKey};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Refs {
    pub stages: BTreeMap<String, Digest<StageKey>>,
}

impl Store {
    pub(super) fn refs_path(&self, pipeline: &str) -> PathBuf {
        let safe: String = pipeline
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.root.join("refs").join(format!("{safe}.json"))
    }

    fn journal_path(&self, pipeline: &str) -> PathBuf {
        self.refs_path(pipeline).with_extension("journal")
    }

    pub(super) fn refs_lock(&self) -> Result<Lock> {
        Lock::exclusive(&self.root.join("locks").join("refs.lock"))
    }

    pub fn refs(&self, pipeline: &str) -> Result<Refs> {
        let mut refs: Refs = read_json(&self.refs_path(pipeline))?.unwrap_or_default();
        let journal = self.journal_path(pipeline);
        let text = match std::fs::read_to_string(&journal) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(refs),
            Err(e) => return Err(super::StoreError::io("read", &journal)(e)),
        };
        // A line cut short by a crash is the only malformed one there can be: skipped.
        for line in text.lines() {
            if let Some((key, stage)) = line.split_once(' ')
                && let Ok(key) = key.parse()
            {
                refs.stages.insert(stage.to_string(), key);
            }
        }
        Ok(refs)
    }

    /// Points one stage at a new key at once: a line appended to the journal.
    pub fn append_ref(&self, pipeline: &str, stage: &str, key: &Digest<StageKey>) -> Result<()> {
        let _lock = self.refs_lock()?;
        let path = self.journal_path(pipeline);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(super::StoreError::io("open", &path))?;
        file.write_all(format!("{key} {stage}\n").as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(super::StoreError::io("append to", &path))
    }

    /// Points stages at new keys, merging with what concurrent runs wrote.
    pub fn update_refs(
        &self,
        pipeline: &str,
        updates: &BTreeMap<String, Digest<StageKey>>,
    ) -> Result<()> {
        let current = self.refs(pipeline)?;
        if !self.journal_path(pipeline).exists()
            && updates
                .iter()
                .all(|(stage, key)| current.stages.get(stage) == Some(key))
        {
            return Ok(());
        }
        let _lock = self.refs_lock()?;
        let mut refs = self.refs(pipeline)?;
        refs.stages
            .extend(updates.iter().map(|(s, k)| (s.clone(), *k)));
        write_json(&self.refs_path(pipeline), &refs)?;
        // Folded into the JSON just written, under the lock appends take too.
        match std::fs::remove_file(self.journal_path(pipeline)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(super::StoreError::io(
                "remove",
                &self.journal_path(pipeline),
            )(e)),
            _ => Ok(()),
        }
    }

    /// Every pipeline's refs, for `cache gc` and lineage.
    pub fn all_refs(&self) -> Result<BTreeMap<String, Refs>> {
        let dir = self.root.join("refs");
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(super::StoreError::io("list", &dir))? {
            let path = entry.map_err(super::StoreError::io("list", &dir))?.path();
            if let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| {
                n.strip_suffix(".json")
                    .or_else(|| n.strip_suffix(".journal"))
            }) && !name.starts_with('.')
            {
                out.insert(name.to_string(), self.refs(name)?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_stages_are_journalled_then_folded_into_the_refs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cache")).unwrap();
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        store.append_ref("p", "one", &a).unwrap();
        store.append_ref("p", "two", &a).unwrap();
        store.append_ref("p", "one", &b).unwrap();
        // A line cut short by a crash.
        let journal = store.journal_path("p");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap();
        file.write_all(b"12ab").unwrap();
        let refs = store.refs("p").unwrap();
        assert_eq!(
            refs.stages,
            BTreeMap::from([("one".into(), b), ("two".into(), a)])
        );
        assert_eq!(
            store.all_refs().unwrap()["p"],
            refs,
            "gc sees journalled stages"
        );

        store
            .update_refs("p", &BTreeMap::from([("three".into(), a)]))
            .unwrap();
        assert!(!journal.exists());
        let folded = store.refs("p").unwrap();
        assert_eq!(folded.stages.len(), 3);
        assert_eq!(folded.stages["one"], b);
    }
}
