//! What a pipeline's stages last completed with, in one file: what a rerun reads
//! instead of a record and a manifest per stage.
//!
//! `refs/<pipeline>.index` holds a line of compact JSON for each key the refs name: the
//! key, its output, its metrics and the output's manifest. A no-op rerun of 100,000
//! stages spent most of its time opening and parsing 100,000 records (their parameters
//! and sources are most of their bytes) and as many manifests; it reads this file on
//! every core instead. It is only a copy: an entry is used if its manifest hashes to
//! the output's digest, without looking for the record and the manifest files (two
//! `stat`s a stage), so `cache gc`, the one thing that removes them, removes every index
//! first; a line that does not parse is left out, and a missing index reads as empty.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Completed, Result, Store, StoreError, Tree, write_atomic};
use crate::digest::{Digest, StageKey};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Entry {
    pub completed: Completed,
    pub tree: Tree,
}

impl Store {
    pub(super) fn index_path(&self, pipeline: &str) -> PathBuf {
        self.refs_path(pipeline).with_extension("index")
    }

    /// Removes every pipeline's index (before records or trees are removed).
    pub(super) fn drop_indexes(&self) -> Result<()> {
        let dir = self.root.join("refs");
        let entries = std::fs::read_dir(&dir).map_err(StoreError::io("list", &dir))?;
        for entry in entries {
            let path = entry.map_err(StoreError::io("list", &dir))?.path();
            if path.extension().is_some_and(|e| e == "index") {
                std::fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
            }
        }
        Ok(())
    }

    /// The index's entries by key, parsed on every core.
    pub(super) fn read_index(&self, pipeline: &str) -> HashMap<Digest<StageKey>, Entry> {
        self.map_index(pipeline, |entries| {
            entries.map(|entry| (entry.completed.key, entry)).collect()
        })
        .into_iter()
        .collect()
    }

    /// `per_part` of the index's entries, on every core, each taking a part of the file.
    pub(super) fn map_index<R: Send>(
        &self,
        pipeline: &str,
        per_part: impl Fn(&mut dyn Iterator<Item = Entry>) -> Vec<R> + Sync,
    ) -> Vec<R> {
        let path = self.index_path(pipeline);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("ignoring `{}`: {e}", path.display());
                }
                return Vec::new();
            }
        };
        let parts = split_lines(&text, crate::schedule::cores());
        super::on_every_core(parts, |part| {
            per_part(
                &mut part
                    .split(|&b| b == b'\n')
                    .filter_map(|line| serde_json::from_slice::<Entry>(line).ok()),
            )
        })
    }

    /// Rewrites the index for the keys the refs name now: the entries of `fresh` (what
    /// a run completed with; a manifest it lacks is read), else those of the index as
    /// it was. A key with neither is left out: its record is read when needed.
    pub fn write_index<'a>(
        &self,
        pipeline: &str,
        fresh: impl IntoIterator<Item = &'a Completed>,
    ) -> Result<()> {
        let _lock = self.refs_lock()?;
        let refs = self.refs(pipeline)?;
        let mut old = self.read_index(pipeline);
        let fresh: HashMap<_, _> = fresh.into_iter().map(|c| (c.key, c)).collect();
        let mut text = Vec::new();
        let mut written = std::collections::HashSet::new();
        // Two stages may share a key: its entry is written once.
        for key in refs.stages.values().filter(|k| written.insert(**k)) {
            let entry = match (old.remove(key), fresh.get(key)) {
                (Some(entry), _) => Some(entry),
                (None, Some(completed)) => self.tree(&completed.output)?.map(|tree| Entry {
                    completed: (*completed).clone(),
                    tree,
                }),
                (None, None) => None,
            };
            if let Some(entry) = entry {
                serde_json::to_writer(&mut text, &entry).expect("entries serialize");
                text.push(b'\n');
            }
        }
        write_atomic(&self.index_path(pipeline), &text)
    }
}

/// `text` cut into about `n` parts at line ends.
fn split_lines(text: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = text;
    let size = text.len().div_ceil(n.max(1)).max(1);
    while !rest.is_empty() {
        let end = match rest
            .get(size..)
            .and_then(|t| t.iter().position(|&b| b == b'\n'))
        {
            Some(newline) => size + newline + 1,
            None => rest.len(),
        };
        let (part, after) = rest.split_at(end);
        parts.push(part);
        rest = after;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_at_their_ends_and_none_lost() {
        let text = b"one\ntwo\nthree\nfour\n";
        for n in 1..6 {
            let parts = split_lines(text, n);
            assert!(parts.iter().all(|p| p.ends_with(b"\n")), "{n}: {parts:?}");
            assert_eq!(parts.concat(), text);
        }
        assert!(split_lines(b"", 2).is_empty());
        assert_eq!(split_lines(b"no newline", 3).concat(), b"no newline");
    }
}
