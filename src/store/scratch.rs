//! Scratch folders under `tmp/`, where stages run and downloads land before they are
//! committed: each is locked while it lives, so that `clean_tmp` removes only those
//! whose process died.

use std::path::{Path, PathBuf};

use super::{Lock, Result, Store, StoreError, make_writable, unique_suffix};

pub struct Scratch {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: Lock,
}

impl Scratch {
    pub fn create(store: &Store) -> Result<Scratch> {
        let dir = store.root().join("tmp").join(unique_suffix());
        let lock_path = dir.with_extension("lock");
        let lock = Lock::exclusive(&lock_path)?;
        std::fs::create_dir_all(&dir).map_err(StoreError::io("create", &dir))?;
        Ok(Scratch {
            dir,
            lock_path,
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn remove(self) {
        make_writable(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}
