//! Lookups done ahead, in parallel, for the keys a pipeline's stages had last time.
//!
//! A stage's key is known only once its upstreams' outputs are, so a run or a status
//! looks stages up one after another. But where little changed, nearly every stage's
//! key is the one its ref names: those (and the checks of their outputs) are looked up
//! first, on every core, from the pipeline's index where it has them (else from their
//! records), and the walk down the graph then finds them in memory. A key that changed
//! is looked up when it is known, as before.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use super::{Completed, Lookup, Refs, Result, Store, TreeState};
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
    /// Reads the refs of `pipeline` and looks up every key they name, for the next
    /// [`Store::refs_looked_ahead`] of that pipeline to take instead of reading and
    /// looking up its own. For a caller that learns the pipeline's name before it has
    /// loaded the pipeline: this runs beside the loading. The caller holds the store's
    /// shared lock from before this until then, so that `cache gc` cannot remove what
    /// the lookups found.
    pub fn prepare_look_ahead(&self, pipeline: &str) -> Result<()> {
        let refs = self.refs(pipeline)?;
        let ahead = self.look_ahead(pipeline, refs.stages.values().copied().collect());
        *self.prepared.lock().expect("not poisoned") = Some((pipeline.to_string(), refs, ahead));
        Ok(())
    }

    /// The refs of `pipeline` and the lookups ahead of the keys `wanted` picks from
    /// them: those [`Store::prepare_look_ahead`] made, if it was called for this
    /// pipeline (once), else made now.
    pub fn refs_looked_ahead(
        &self,
        pipeline: &str,
        wanted: impl FnOnce(&Refs) -> Vec<Digest<StageKey>>,
    ) -> Result<(Refs, Lookahead)> {
        let mut prepared = self.prepared.lock().expect("not poisoned");
        if prepared.as_ref().is_some_and(|(name, ..)| name == pipeline)
            && let Some((_, refs, ahead)) = prepared.take()
        {
            return Ok((refs, ahead));
        }
        drop(prepared);
        let refs = self.refs(pipeline)?;
        let ahead = self.look_ahead(pipeline, wanted(&refs));
        Ok((refs, ahead))
    }

    /// Looks up `keys`, of `pipeline`'s stages, on every core. A key whose lookup fails
    /// is left out: it is looked up again, and its error reported, when it is needed.
    /// A key not looked up ahead is looked up when it is asked for.
    pub fn look_ahead(&self, pipeline: &str, keys: Vec<Digest<StageKey>>) -> Lookahead {
        // Each key once, though stages may share it.
        let wanted: HashSet<Digest<StageKey>> = keys.into_iter().collect();
        // Stages of a sweep often share one output (a hundred thousand empty ones):
        // each core checks each tree once. (One map for all cores cost more in waits
        // for its lock than the few trees checked twice.)
        type Checked = RefCell<HashMap<Digest<Object>, TreeState>>;
        let check_with =
            |checked: &Checked, tree: &Digest<Object>, check: &dyn Fn() -> Result<TreeState>| {
                if let Some(state) = checked.borrow().get(tree) {
                    return Ok(state.clone());
                }
                let state = check()?;
                checked.borrow_mut().insert(*tree, state.clone());
                Ok(state)
            };
        // The index's entries are checked as each core parses its part of the file.
        let mut found: HashMap<_, _> = self
            .map_index(pipeline, |entries| {
                let checked = Checked::default();
                entries
                    .filter(|entry| wanted.contains(&entry.completed.key))
                    .filter_map(|entry| {
                        let (key, output) = (entry.completed.key, entry.completed.output);
                        let state = check_with(&checked, &output, &|| {
                            self.check_known_tree(&output, &entry.tree)
                        })
                        .ok()?;
                        let ahead = match super::record::damage(state) {
                            None => Ahead::Hit(entry.completed),
                            Some(why) => Ahead::Damaged(why),
                        };
                        Some((key, (ahead, true)))
                    })
                    .collect()
            })
            .into_iter()
            .collect();
        // The keys the index lacks, from their records.
        let rest: Vec<_> = wanted
            .into_iter()
            .filter(|key| !found.contains_key(key))
            .collect();
        let chunk = rest.len().div_ceil(crate::schedule::cores()).max(1);
        let from_records = super::on_every_core(rest.chunks(chunk).collect(), |keys| {
            let checked = Checked::default();
            let check =
                |tree: &Digest<Object>| check_with(&checked, tree, &|| self.check_tree(tree));
            keys.iter()
                .filter_map(|key| Some((*key, (self.lookup_with(key, &check).ok()?.into(), false))))
                .collect()
        });
        found.extend(from_records);
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

    /// Records `key` with an output of one file holding `content`.
    fn recorded(
        store: &Store,
        dir: &std::path::Path,
        key: Digest<StageKey>,
        content: &str,
    ) -> Completed {
        let out = dir.join(format!("out-{}", key.short()));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("f"), content).unwrap();
        store.write_record(&record(store, key, &out)).unwrap();
        Completed::from(&store.record(&key).unwrap().unwrap())
    }

    #[test]
    fn answers_as_lookups_do_from_records_or_the_index() {
        for indexed in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("cache")).unwrap();
            let keys: Vec<Digest<StageKey>> = (0..5u8).map(|i| Digest::of(&[i])).collect();
            for (i, key) in keys.iter().enumerate().take(4) {
                // Two records share one output, as a sweep's stages do.
                recorded(&store, dir.path(), *key, &format!("{}", i.min(2)));
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
            assert_eq!(ahead.lookup(&store, &keys[4]).unwrap(), Ahead::Miss);
        }
    }

    #[test]
    fn no_index_entry_outlives_the_record_gc_removes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cache")).unwrap();
        let keys: Vec<Digest<StageKey>> = (0..2u8).map(|i| Digest::of(&[i])).collect();
        let completed: Vec<Completed> = (keys.iter().enumerate())
            .map(|(i, key)| recorded(&store, dir.path(), *key, &format!("{i}")))
            .collect();
        let refs = [("a".to_string(), keys[0]), ("b".to_string(), keys[1])].into();
        store.update_refs("p", &refs).unwrap();
        store.write_index("p", &completed).unwrap();

        store.gc(&[keys[0]].into(), false).unwrap();
        assert!(!store.index_path("p").exists());
        let mut ahead = store.look_ahead("p", keys.clone());
        assert!(matches!(
            ahead.lookup(&store, &keys[0]).unwrap(),
            Ahead::Hit(_)
        ));
        assert_eq!(ahead.lookup(&store, &keys[1]).unwrap(), Ahead::Miss);
    }

    #[test]
    fn lookups_prepared_for_a_pipeline_are_taken_once_by_its_next_look_ahead() {
        let all = |refs: &Refs| refs.stages.values().copied().collect();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cache")).unwrap();
        let key: Digest<StageKey> = Digest::of(b"k");
        recorded(&store, dir.path(), key, "x");
        store
            .update_refs("p", &[("s".to_string(), key)].into())
            .unwrap();

        store.prepare_look_ahead("p").unwrap();
        // Gone since: only lookups made before this can still find it.
        std::fs::remove_file(store.record_path(&key)).unwrap();
        let (_, mut other) = store.refs_looked_ahead("q", |_| vec![key]).unwrap();
        assert_eq!(other.lookup(&store, &key).unwrap(), Ahead::Miss, "not q's");
        // Changed since: the refs read with the lookups are handed out with them.
        let moved: Digest<StageKey> = Digest::of(b"moved");
        store
            .update_refs("p", &[("s".to_string(), moved)].into())
            .unwrap();
        let (refs, mut prepared) = store.refs_looked_ahead("p", all).unwrap();
        assert_eq!(refs.stages.get("s"), Some(&key));
        assert!(matches!(
            prepared.lookup(&store, &key).unwrap(),
            Ahead::Hit(_)
        ));
        let (_, mut fresh) = store.refs_looked_ahead("p", |_| vec![key]).unwrap();
        assert_eq!(
            fresh.lookup(&store, &key).unwrap(),
            Ahead::Miss,
            "taken once"
        );
    }

    #[test]
    fn two_stages_of_one_key_are_both_answered_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cache")).unwrap();
        let key: Digest<StageKey> = Digest::of(b"shared");
        let completed = recorded(&store, dir.path(), key, "x");
        let refs = [("a".to_string(), key), ("b".to_string(), key)].into();
        store.update_refs("p", &refs).unwrap();
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
