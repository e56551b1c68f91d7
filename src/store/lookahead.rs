//! Lookups done ahead, in parallel, for the keys a pipeline's stages had last time.
//!
//! A stage's key is known only once its upstreams' records are read, so a run or a
//! status reads records one stage after another. But where little changed, nearly every
//! stage's key is the one its ref names: those records (and the checks of their
//! outputs) are read first, on every core, and the walk down the graph then finds them
//! in memory. A key that changed is looked up when it is known, as before.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Lookup, Result, Store, TreeState};
use crate::digest::{Digest, Object, StageKey};

pub struct Lookahead {
    found: HashMap<Digest<StageKey>, Lookup>,
}

impl Store {
    /// Looks up `keys` on every core. A key whose lookup fails is left out: it is
    /// looked up again, and its error reported, when it is needed.
    pub fn look_ahead(&self, keys: Vec<Digest<StageKey>>) -> Lookahead {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = keys.len().div_ceil(threads).max(1);
        // Stages of a sweep often share one output (a hundred thousand empty ones):
        // each tree is checked once here.
        let checked: Mutex<HashMap<Digest<Object>, TreeState>> = Mutex::default();
        let check = |tree: &Digest<Object>| {
            if let Some(state) = checked.lock().expect("not poisoned").get(tree) {
                return Ok(state.clone());
            }
            let state = self.check_tree(tree)?;
            let mut checked = checked.lock().expect("not poisoned");
            checked.insert(*tree, state.clone());
            Ok(state)
        };
        let found = std::thread::scope(|scope| {
            let workers: Vec<_> = keys
                .chunks(chunk)
                .map(|keys| {
                    let check = &check;
                    scope.spawn(move || {
                        keys.iter()
                            .filter_map(|key| Some((*key, self.lookup_with(key, check).ok()?)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("lookups do not panic"))
                .collect()
        });
        Lookahead { found }
    }
}

impl Lookahead {
    /// No lookups done ahead.
    pub fn none() -> Lookahead {
        Lookahead {
            found: HashMap::new(),
        }
    }

    /// The lookup of `key`: the one done ahead, if any (once), else one done now.
    pub fn lookup(&mut self, store: &Store, key: &Digest<StageKey>) -> Result<Lookup> {
        match self.found.remove(key) {
            Some(found) => Ok(found),
            None => store.lookup(key),
        }
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
    fn answers_as_lookups_do_and_looks_up_what_it_was_not_given() {
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
        // The output of the last record loses its object: damaged.
        let damaged = store.record(&keys[3]).unwrap().unwrap();
        let tree = store.tree(&damaged.output).unwrap().unwrap();
        std::fs::remove_file(store.object_path(&tree.entries[0].digest)).unwrap();

        let mut ahead = store.look_ahead(keys[1..].to_vec());
        for key in &keys {
            let expected = store.lookup(key).unwrap();
            assert_eq!(ahead.lookup(&store, key).unwrap(), expected);
        }
        assert!(matches!(
            ahead.lookup(&store, &keys[0]).unwrap(),
            Lookup::Hit(_)
        ));
        assert!(matches!(
            ahead.lookup(&store, &keys[3]).unwrap(),
            Lookup::Damaged { .. }
        ));
        assert_eq!(ahead.lookup(&store, &keys[4]).unwrap(), Lookup::Miss);
    }
}
