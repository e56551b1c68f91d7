use std::fs::{File, OpenOptions};
use std::path::Path;

use super::{Result, StoreError};

/// An flock held until dropped; the kernel releases it if the process dies.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Waits for the lock.
    pub fn exclusive(path: &Path) -> Result<Lock> {
        let file = open(path)?;
        file.lock().map_err(StoreError::io("lock", path))?;
        Ok(Lock { _file: file })
    }

    /// Takes the lock if nobody holds it.
    pub fn try_exclusive(path: &Path) -> Result<Option<Lock>> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Lock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io("lock", path)(e)),
        }
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(StoreError::io("open the lock file", path))
}

impl Lock {
    /// Waits for a shared hold: many may hold it, none while someone holds it exclusively.
    pub fn shared(path: &Path) -> Result<Lock> {
        let file = open(path)?;
        file.lock_shared().map_err(StoreError::io("lock", path))?;
        Ok(Lock { _file: file })
    }
}
