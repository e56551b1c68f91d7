//! Which key each stage of a pipeline last completed with: what `why`, `status`, `show`
//! and `cache gc` start from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Lock, Result, Store, read_json, write_json};
use crate::digest::{Digest, StageKey};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Refs {
    pub stages: BTreeMap<String, Digest<StageKey>>,
}

impl Store {
    fn refs_path(&self, pipeline: &str) -> PathBuf {
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

    pub fn refs(&self, pipeline: &str) -> Result<Refs> {
        Ok(read_json(&self.refs_path(pipeline))?.unwrap_or_default())
    }

    /// Points stages at new keys, merging with what concurrent runs wrote.
    pub fn update_refs(
        &self,
        pipeline: &str,
        updates: &BTreeMap<String, Digest<StageKey>>,
    ) -> Result<()> {
        let current = self.refs(pipeline)?;
        if updates
            .iter()
            .all(|(stage, key)| current.stages.get(stage) == Some(key))
        {
            return Ok(());
        }
        let _lock = Lock::exclusive(&self.root.join("locks").join("refs.lock"))?;
        let mut refs = self.refs(pipeline)?;
        refs.stages
            .extend(updates.iter().map(|(s, k)| (s.clone(), *k)));
        write_json(&self.refs_path(pipeline), &refs)
    }

    /// Every pipeline's refs, for `cache gc` and lineage.
    pub fn all_refs(&self) -> Result<BTreeMap<String, Refs>> {
        let dir = self.root.join("refs");
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(super::StoreError::io("list", &dir))? {
            let path = entry.map_err(super::StoreError::io("list", &dir))?.path();
            if let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                && !name.starts_with('.')
            {
                out.insert(name.to_string(), read_json(&path)?.unwrap_or_default());
            }
        }
        Ok(out)
    }
}
