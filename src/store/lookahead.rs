//! Lookups done ahead, in parallel, for the keys a pipeline's stages had last time.
//!
//! A stage's key is known only once its upstreams' outputs are, so a run or a status
//! looks stages up one after another. But where little changed, nearly every stage's
//! key is the one its ref names: those (and the checks of their outputs) are looked up
//! first, on every core, from the pipeline's index where it has them (else from their
//! records), and the walk down the graph then finds them in memory. A key that changed
//! is looked up when it is known, as before.

use std::collections::HashMap;
use std::sync::Mutex;

use super::index::Entry;
use super::{Completed, Lookup, Result, Store, TreeState};
use crate::digest::{Digest, Object, StageKey};

/// Whether a key's result can be reused, as a walk down the graph needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ahead {
    Hit(Completed),
    Miss,
    /// There is a record but its output is damaged or gone: the stage must run again.
    Damaged(String),
}

impl From<Lookup> for Ahead {
    fn from(lookup: Lookup) -> Ahead {
        match lookup {
            Lookup::Hit(record) => Ahead::Hit(Completed::from(&*record)),
            Lookup::Miss => Ahead::Miss,
            Lookup::Damaged { why, .. } => Ahead::Damaged(why),
        }
    }
}

pub struct Lookahead {
    /// Each lookup, and whether the index answered it.
    found: HashMap<Digest<StageKey>, (Ahead, bool)>,
    /// Hits handed out that the index did not answer.
    unindexed_hits: usize,
}

impl Store {
    /// Looks up `keys`, of `pipeline`'s stages, on every core. A key whose lookup fails
    /// is left out: it is looked up again, and its error reported, when it is needed.
    pub fn look_ahead(&self, pipeline: &str, keys: Vec<Digest<StageKey>>) -> Lookahead {
        let mut index = self.read_index(pipeline);
        // Each key once, though stages may share it.
        let mut seen = std::collections::HashSet::new();
        let mut keys: Vec<(Digest<StageKey>, Option<Entry>)> = keys
            .into_iter()
            .filter(|k| seen.insert(*k))
            .map(|k| (k, index.remove(&k)))
            .collect();
        let chunk = keys.len().div_ceil(crate::schedule::cores()).max(1);
        // Stages of a sweep often share one output (a hundred thousand empty ones):
        // each tree is checked once here.
        let checked: Mutex<HashMap<Digest<Object>, TreeState>> = Mutex::default();
        let check_with = |tree: &Digest<Object>, check: &dyn Fn() -> Result<TreeState>| {
            if let Some(state) = checked.lock().expect("not poisoned").get(tree) {
                return Ok(state.clone());
            }
            let state = check()?;
            let mut checked = checked.lock().expect("not poisoned");
            checked.insert(*tree, state.clone());
            Ok(state)
        };
        let lookup = |key: &Digest<StageKey>, entry: Option<Entry>| -> Result<(Ahead, bool)> {
            match entry {
                Some(entry) if self.record_path(key).exists() => {
                    let output = entry.completed.output;
                    let state =
                        check_with(&output, &|| self.check_known_tree(&output, &entry.tree))?;
                    let ahead = match super::record::damage(state) {
                        None => Ahead::Hit(entry.completed),
                        Some(why) => Ahead::Damaged(why),
                    };
                    Ok((ahead, true))
                }
                _ => {
                    let check = |tree: &Digest<Object>| check_with(tree, &|| self.check_tree(tree));
                    Ok((self.lookup_with(key, &check)?.into(), false))
                }
            }
        };
        let parts: Vec<_> = keys.chunks_mut(chunk).collect();
        let found = super::on_every_core(parts, |keys| {
            keys.iter_mut()
                .filter_map(|(key, entry)| Some((*key, lookup(key, entry.take()).ok()?)))
                .collect()
        })
        .into_iter()
        .collect();
        Lookahead {
            found,
            unindexed_hits: 0,
        }
    }
}

impl Lookahead {
    /// The lookup of `key`: the one done ahead, if any, else one done now.
    pub fn lookup(&mut self, store: &Store, key: &Digest<StageKey>) -> Result<Ahead> {
        // A hit is kept for another stage of the same key; a miss is looked up again
        // next time, the key's result may have been computed since.
        let found = match self.found.get(key) {
            Some(hit @ (Ahead::Hit(_), _)) => Some(hit.clone()),
            _ => self.found.remove(key),
        };
        let (ahead, indexed) = match found {
            Some(found) => found,
            None => (store.lookup(key)?.into(), false),
        };
        if !indexed && matches!(ahead, Ahead::Hit(_)) {
            self.unindexed_hits += 1;
        }
        Ok(ahead)
    }

    /// Whether a hit was handed out that the index lacked: it is worth rewriting.
    pub fn index_lacked_a_hit(&self) -> bool {
        self.unindexed_hits > 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::key::KeyInputs;
    use crate::store::Record;

    fn record(store: &Store, key: Digest<StageKey>, output: &std::path::Path) -> Record {
        let (output, _) = store.commit_tree(output).unwrap();
        Record {
            schema: 1,
            key,
            pipeline: "p".into(),
            stage: "s".into(),
            inputs: KeyInputs {
                kind: "Command".into(),
                kind_version: 1,
                params: serde_json::json!({}),
                upstream: BTreeMap::new(),
                files: BTreeMap::new(),
            },
            sources: Vec::new(),
            files: BTreeMap::new(),
            output,
            output_files: 1,
            output_bytes: 1,
            metrics: BTreeMap::new(),
            protocol: BTreeMap::new(),
            summary: None,
            started: String::new(),
            duration_s: 0.0,
            device: "cpu".into(),
            host: String::new(),
            cluster_job: None,
            log: None,
        }
    }

    #[test]
    fn answers_as_lookups_do_from_records_or_the_index() {
        for indexed in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("cache")).unwrap();
            let keys: Vec<Digest<StageKey>> = (0..5u8).map(|i| Digest::of(&[i])).collect();
            for (i, key) in keys.iter().enumerate().take(4) {
                let out = dir.path().join(format!("out{i}"));
                std::fs::create_dir_all(&out).unwrap();
                // Two records share one output, as a sweep's stages do.
                std::fs::write(out.join("f"), format!("{}", i.min(2))).unwrap();
                store.write_record(&record(&store, *key, &out)).unwrap();
            }
            if indexed {
                let refs = keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (format!("s{i}"), *k))
                    .collect();
                store.update_refs("p", &refs).unwrap();
                let completed: Vec<Completed> = keys[..4]
                    .iter()
                    .map(|k| Completed::from(&store.record(k).unwrap().unwrap()))
                    .collect();
                store.write_index("p", &completed).unwrap();
                // A record removed since (by gc): the index's copy is not used.
                std::fs::remove_file(store.record_path(&keys[1])).unwrap();
            }
            // The output of the last record loses its object: damaged.
            let damaged = store.record(&keys[3]).unwrap().unwrap();
            let tree = store.tree(&damaged.output).unwrap().unwrap();
            std::fs::remove_file(store.object_path(&tree.entries[0].digest)).unwrap();

            let mut ahead = store.look_ahead("p", keys[1..].to_vec());
            for key in &keys[1..] {
                let expected = Ahead::from(store.lookup(key).unwrap());
                assert_eq!(ahead.lookup(&store, key).unwrap(), expected, "{indexed}");
            }
            assert!(!ahead.index_lacked_a_hit() || !indexed);
            assert!(matches!(
                ahead.lookup(&store, &keys[0]).unwrap(),
                Ahead::Hit(_)
            ));
            assert!(ahead.index_lacked_a_hit(), "looked up now, not ahead");
            assert!(matches!(
                ahead.lookup(&store, &keys[3]).unwrap(),
                Ahead::Damaged(_)
            ));
            if indexed {
                assert_eq!(store.lookup(&keys[1]).unwrap(), Lookup::Miss);
            }
            assert_eq!(ahead.lookup(&store, &keys[4]).unwrap(), Ahead::Miss);
        }
    }

    #[test]
    fn two_stages_of_one_key_are_both_answered_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cache")).unwrap();
        let key: Digest<StageKey> = Digest::of(b"shared");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("f"), "x").unwrap();
        store.write_record(&record(&store, key, &out)).unwrap();
        let refs = [("a".to_string(), key), ("b".to_string(), key)].into();
        store.update_refs("p", &refs).unwrap();
        let completed = Completed::from(&store.record(&key).unwrap().unwrap());
        store.write_index("p", [&completed]).unwrap();
        let lines = std::fs::read_to_string(store.index_path("p")).unwrap();
        assert_eq!(lines.lines().count(), 1, "written once");

        let mut ahead = store.look_ahead("p", vec![key, key]);
        for _ in 0..2 {
            assert_eq!(
                ahead.lookup(&store, &key).unwrap(),
                Ahead::Hit(completed.clone())
            );
        }
        assert!(
            !ahead.index_lacked_a_hit(),
            "both from the index: nothing to rewrite"
        );
    }
}
