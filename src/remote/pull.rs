//! Bringing records and their outputs from a remote into the store, verified.

use std::collections::BTreeMap;

use super::{Meter, Remote, RemoteError, Result, object_path, parallel, record_path, tree_path};
use crate::digest::{Digest, Object, StageKey};
use crate::store::{Record, Scratch, Store, Tree};

impl Remote {
    /// The remote's record of `key`, without its output (enough to know the keys of
    /// the stages below it); `None` if the remote has none.
    pub fn record(&self, key: &Digest<StageKey>) -> Result<Option<Record>> {
        let path = record_path(key);
        let Some(bytes) = self.transport.get(&path)? else {
            return Ok(None);
        };
        let invalid = |why: String| RemoteError::Invalid {
            remote: self.label(),
            path: path.clone(),
            what: "record",
            why,
        };
        let record: Record = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if record.key != *key {
            return Err(invalid(format!("it is the record of key {}", record.key)));
        }
        Ok(Some(record))
    }

    /// Brings `key`'s record and output into the store, for a key the store has no
    /// intact record of (objects it has are not downloaded again); `None` if the remote has no record of it. Every object
    /// and the tree are checked against their digests before they enter the store, and
    /// the record is written last.
    pub fn pull(
        &self,
        store: &Store,
        key: &Digest<StageKey>,
        meter: &dyn Meter,
    ) -> Result<Option<Record>> {
        let Some(record) = self.record(key)? else {
            return Ok(None);
        };
        let path = tree_path(&record.output);
        let invalid = |what, why: String| RemoteError::Invalid {
            remote: self.label(),
            path: path.clone(),
            what,
            why,
        };
        let bytes = self.transport.get(&path)?.ok_or_else(|| {
            invalid(
                "tree",
                format!("it is missing, though record {} names it", key.short()),
            )
        })?;
        let tree: Tree =
            serde_json::from_slice(&bytes).map_err(|e| invalid("tree", e.to_string()))?;
        if tree.digest() != record.output {
            return Err(RemoteError::Corrupt {
                remote: self.label(),
                path,
                expected: record.output,
                found: tree.digest(),
            });
        }
        // Object → whether the remote must have it (a log may have been left behind).
        let mut wanted: BTreeMap<Digest<Object>, (u64, bool)> = tree
            .entries
            .iter()
            .map(|e| (e.digest, (e.size, true)))
            .collect();
        if let Some(log) = record.log {
            wanted.entry(log).or_insert((0, false));
        }
        let mut missing = Vec::new();
        for (digest, (size, required)) in wanted {
            if !store.has_object(&digest)? {
                missing.push((digest, size, required));
            }
        }
        meter.grow(missing.iter().map(|m| m.1).sum());
        let scratch = Scratch::create(store)?;
        let fetched = parallel::for_each(&missing, |&(digest, _, required)| {
            self.fetch_object(store, &scratch, &digest, required, meter)
        });
        scratch.remove();
        fetched?;
        store.adopt_tree(&tree)?;
        store.write_record(&record)?;
        Ok(Some(record))
    }

    fn fetch_object(
        &self,
        store: &Store,
        scratch: &Scratch,
        digest: &Digest<Object>,
        required: bool,
        meter: &dyn Meter,
    ) -> Result<()> {
        let path = object_path(digest);
        let file = scratch.dir().join(digest.hex());
        if !self
            .transport
            .download(&path, &file, &|n| meter.advance(n))?
        {
            if !required {
                return Ok(());
            }
            return Err(RemoteError::Invalid {
                remote: self.label(),
                path,
                what: "object",
                why: "it is missing, though a tree names it".into(),
            });
        }
        match store.adopt_object(&file, digest)? {
            Ok(()) => Ok(()),
            Err(found) => Err(RemoteError::Corrupt {
                remote: self.label(),
                path,
                expected: *digest,
                found,
            }),
        }
    }
}
