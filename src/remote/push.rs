//! Sending records and their outputs to a remote.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::Serialize;

use super::{
    Meter, Remote, RemoteError, Result, Tally, object_path, parallel, record_path, tree_path,
};
use crate::digest::{Digest, Object};
use crate::store::{Record, Store, TreeState};

/// What a push moved, and what the remote had already.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pushed {
    pub records_sent: u64,
    pub records_present: u64,
    pub objects_sent: u64,
    pub objects_present: u64,
    pub bytes_sent: u64,
}

impl Remote {
    /// Sends the records the remote lacks, each after its output's objects and tree.
    /// A record whose output is not intact here is refused, not sent.
    pub fn push(&self, store: &Store, records: &[Record], meter: &dyn Meter) -> Result<Pushed> {
        let lacking = Mutex::new(Vec::new());
        let records_present = Tally::default();
        parallel::for_each(records, |record| {
            match self.transport.size(&record_path(&record.key))? {
                Some(_) => records_present.there(),
                None => lacking.lock().expect("not poisoned").push(record),
            }
            Ok::<_, RemoteError>(())
        })?;
        let mut lacking = lacking.into_inner().expect("not poisoned");
        lacking.sort_by_key(|r| r.key);

        let mut objects: BTreeMap<Digest<Object>, u64> = BTreeMap::new();
        let mut trees = BTreeSet::new();
        for record in &lacking {
            let why = match store.check_tree(&record.output)? {
                TreeState::Intact => None,
                TreeState::Missing => Some("gone".to_string()),
                TreeState::Corrupt { path } => Some(format!("corrupt (`{path}`)")),
            };
            let tree = match (why, store.tree(&record.output)?) {
                (None, Some(tree)) => tree,
                (why, _) => {
                    return Err(RemoteError::Damaged {
                        stage: record.stage.clone(),
                        key: record.key,
                        why: why.unwrap_or_else(|| "gone".into()),
                    });
                }
            };
            objects.extend(tree.entries.iter().map(|e| (e.digest, e.size)));
            trees.insert(record.output);
            // A log is kept as long as its record, but not checked with the output.
            if let Some(log) = record.log
                && store.has_object(&log)?
                && let Ok(meta) = std::fs::metadata(store.object_path(&log))
            {
                objects.insert(log, meta.len());
            }
        }
        meter.grow(objects.values().sum());
        let sent = Tally::default();
        let objects: Vec<_> = objects.into_iter().collect();
        parallel::for_each(&objects, |(digest, size)| {
            let path = object_path(digest);
            if self.transport.size(&path)? == Some(*size) {
                sent.there();
            } else {
                // Absent, or cut short by a server that stored a partial upload.
                self.transport.upload(&path, &store.object_path(digest))?;
                sent.moved(*size);
            }
            meter.advance(*size);
            Ok::<_, RemoteError>(())
        })?;
        let trees: Vec<_> = trees.into_iter().collect();
        parallel::for_each(&trees, |digest| {
            let path = tree_path(digest);
            if self.transport.size(&path)?.is_none() {
                self.transport
                    .upload(&path, &store.tree_manifest_path(digest))?;
            }
            Ok::<_, RemoteError>(())
        })?;
        // Last: a reader that finds a record finds everything it names.
        parallel::for_each(&lacking, |record| {
            self.transport
                .upload(&record_path(&record.key), &store.record_path(&record.key))?;
            Ok::<_, RemoteError>(())
        })?;
        let (objects_sent, objects_present, bytes_sent) = sent.get();
        Ok(Pushed {
            records_sent: lacking.len() as u64,
            records_present: records_present.get().1,
            objects_sent,
            objects_present,
            bytes_sent,
        })
    }
}
