//! Digests of files remembered by (device, inode, size, mtime), so that large unchanged
//! inputs and stored objects are not read again on every run.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Result, StoreError, read_json, write_json};
use crate::digest::{Digest, Object};

/// A file modified less than this long before it was hashed may change again within the
/// same mtime tick without its stat changing ("racily clean"): its entry is not trusted.
const RACY_WINDOW_NS: i128 = 2_000_000_000;

/// Files at least this large are hashed through a memory map, sparing a copy.
const MMAP_THRESHOLD: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Stat {
    fn of(meta: &std::fs::Metadata) -> Stat {
        Stat {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    stat: Stat,
    digest: Digest<Object>,
    hashed_at_ns: i128,
}

#[derive(Debug, Default)]
pub struct StatCache {
    entries: HashMap<PathBuf, Entry>,
    dirty: bool,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    entries: HashMap<PathBuf, Entry>,
}

impl StatCache {
    /// Loads the cache; a missing or unreadable one starts empty (it is only a hint).
    pub fn load(path: &Path) -> StatCache {
        match read_json::<OnDisk>(path) {
            Ok(Some(disk)) if disk.version == 1 => StatCache {
                entries: disk.entries,
                dirty: false,
            },
            Ok(_) => StatCache::default(),
            Err(e) => {
                tracing::warn!("ignoring the stat cache: {e}");
                StatCache::default()
            }
        }
    }

    pub fn save(&mut self, path: &Path) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let mut merged = StatCache::load(path).entries;
        merged.extend(self.entries.drain());
        write_json(
            path,
            &OnDisk {
                version: 1,
                entries: merged,
            },
        )?;
        self.dirty = false;
        Ok(())
    }

    /// The digest of a file whose metadata is `meta`, hashing it unless a trusted entry
    /// matches.
    pub fn digest(&mut self, path: &Path, meta: &std::fs::Metadata) -> Result<Digest<Object>> {
        let stat = Stat::of(meta);
        if let Some(entry) = self.entries.get(path)
            && entry.stat == stat
            && entry.hashed_at_ns - stat.mtime_ns >= RACY_WINDOW_NS
        {
            return Ok(entry.digest);
        }
        let digest = hash_file(path, stat.size)?;
        self.remember(path, meta, digest);
        Ok(digest)
    }

    /// Records a digest computed elsewhere (e.g. while storing the file).
    pub fn remember(&mut self, path: &Path, meta: &std::fs::Metadata, digest: Digest<Object>) {
        let entry = Entry {
            stat: Stat::of(meta),
            digest,
            hashed_at_ns: now_ns(),
        };
        self.entries.insert(path.to_path_buf(), entry);
        self.dirty = true;
    }

    pub fn forget(&mut self, path: &Path) {
        if self.entries.remove(path).is_some() {
            self.dirty = true;
        }
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// blake3 of a file's bytes.
pub fn hash_file(path: &Path, size: u64) -> Result<Digest<Object>> {
    let mut hasher = blake3::Hasher::new();
    if size >= MMAP_THRESHOLD {
        hasher
            .update_mmap(path)
            .map_err(StoreError::io("hash", path))?;
    } else {
        let bytes = std::fs::read(path).map_err(StoreError::io("read", path))?;
        hasher.update(&bytes);
    }
    Ok(Digest::from_hash(hasher.finalize()))
}
