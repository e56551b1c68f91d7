//! Digests of files remembered by (device, inode, size, mtime), so that large unchanged
//! inputs and stored objects are not read again on every run.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Result, StoreError, write_atomic};
use crate::digest::{Digest, Object};

/// A file modified less than this long before it was hashed may change again within the
/// same mtime tick without its stat changing ("racily clean"): its entry is not trusted.
const RACY_WINDOW_NS: i128 = 2_000_000_000;

/// Files at least this large are hashed through a memory map, sparing a copy.
const MMAP_THRESHOLD: u64 = 1 << 20;

/// What a file's digest is remembered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Stat {
    pub fn of(meta: &std::fs::Metadata) -> Stat {
        Stat {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        }
    }

    /// The stat of the regular file at `relative` inside the folder open as `dir`, not
    /// following a link; `None` for anything else or nothing. A path relative to an
    /// open folder spares the kernel the walk from `/` (a rerun of 100,000 stages stats
    /// 100,000 files: the walk was most of it).
    pub fn of_file_at(dir: &std::fs::File, relative: &std::ffi::CStr) -> Option<Stat> {
        use std::os::fd::AsRawFd;
        // SAFETY: fstatat fills the struct it is given; the path is NUL-terminated.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let done = unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                relative.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        (done == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG).then(|| Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime_ns: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    stat: Stat,
    digest: Digest<Object>,
    hashed_at_ns: i128,
}

#[derive(Debug, Default)]
pub struct StatCache {
    /// By the path's bytes: `Path`'s own hash walks its components, a tenth of the
    /// lookups of a rerun.
    entries: HashMap<OsString, Entry>,
    dirty: bool,
}

impl StatCache {
    /// Loads the cache; a missing or unreadable one starts empty (it is only a hint).
    pub fn load(path: &Path) -> StatCache {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("ignoring the stat cache `{}`: {e}", path.display());
                }
                return StatCache::default();
            }
        };
        match decode(&bytes) {
            Some(entries) => StatCache {
                entries,
                dirty: false,
            },
            None => {
                tracing::warn!(
                    "ignoring the stat cache `{}`: not in this version's format",
                    path.display()
                );
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
        write_atomic(path, &encode(&merged))?;
        self.entries = merged;
        self.dirty = false;
        Ok(())
    }

    /// The digest of a file whose metadata is `meta`, hashing it unless a trusted entry
    /// matches.
    pub fn digest(&mut self, path: &Path, meta: &std::fs::Metadata) -> Result<Digest<Object>> {
        if let Some(digest) = self.trusted(path, meta) {
            return Ok(digest);
        }
        let digest = hash_file(path, meta.size())?;
        self.remember(path, meta, digest);
        Ok(digest)
    }

    /// The digest of the file whose metadata is `meta`, if a trusted entry knows it.
    pub fn trusted(&self, path: &Path, meta: &std::fs::Metadata) -> Option<Digest<Object>> {
        self.trusted_stat(path, Stat::of(meta))
    }

    /// [`StatCache::trusted`] for a file whose [`Stat`] is at hand.
    pub fn trusted_stat(&self, path: &Path, stat: Stat) -> Option<Digest<Object>> {
        self.entries
            .get(path.as_os_str())
            .filter(|entry| {
                entry.stat == stat && entry.hashed_at_ns - stat.mtime_ns >= RACY_WINDOW_NS
            })
            .map(|entry| entry.digest)
    }

    /// Records a digest computed elsewhere (e.g. while storing the file).
    pub fn remember(&mut self, path: &Path, meta: &std::fs::Metadata, digest: Digest<Object>) {
        let entry = Entry {
            stat: Stat::of(meta),
            digest,
            hashed_at_ns: now_ns(),
        };
        self.entries.insert(path.as_os_str().to_owned(), entry);
        self.dirty = true;
    }

    pub fn forget(&mut self, path: &Path) {
        if self.entries.remove(path.as_os_str()).is_some() {
            self.dirty = true;
        }
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// The file's first bytes: its format and version.
const MAGIC: &[u8] = b"pipe stat cache 2\n";

/// Each entry as its path's length (u32) and bytes, then device, inode, size (u64),
/// mtime (i128, ns), digest (32 bytes) and when it was hashed (i128, ns), little-endian.
/// A binary file, for a store of 100,000 objects: read as JSON it took a tenth of a
/// no-op rerun.
fn encode(entries: &HashMap<OsString, Entry>) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = MAGIC.to_vec();
    for (path, e) in entries {
        let path = path.as_bytes();
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path);
        out.extend_from_slice(&e.stat.dev.to_le_bytes());
        out.extend_from_slice(&e.stat.ino.to_le_bytes());
        out.extend_from_slice(&e.stat.size.to_le_bytes());
        out.extend_from_slice(&e.stat.mtime_ns.to_le_bytes());
        out.extend_from_slice(e.digest.as_bytes());
        out.extend_from_slice(&e.hashed_at_ns.to_le_bytes());
    }
    out
}

/// The entries of an encoded cache; `None` if it is not one, or cut short.
fn decode(bytes: &[u8]) -> Option<HashMap<OsString, Entry>> {
    use std::os::unix::ffi::OsStrExt;
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let mut entries = HashMap::new();
    while !rest.is_empty() {
        let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
        let path = std::ffi::OsStr::from_bytes(take(&mut rest, len)?).to_owned();
        let mut u64_at = || Some(u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?));
        let (dev, ino, size) = (u64_at()?, u64_at()?, u64_at()?);
        let mtime_ns = i128::from_le_bytes(take(&mut rest, 16)?.try_into().ok()?);
        let digest = Digest::from_bytes(take(&mut rest, 32)?.try_into().ok()?);
        let hashed_at_ns = i128::from_le_bytes(take(&mut rest, 16)?.try_into().ok()?);
        let stat = Stat {
            dev,
            ino,
            size,
            mtime_ns,
        };
        entries.insert(
            path,
            Entry {
                stat,
                digest,
                hashed_at_ns,
            },
        );
    }
    Some(entries)
}

/// The next `n` bytes of `rest`, if it has them.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = rest.split_at_checked(n)?;
    *rest = tail;
    Some(head)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_save_and_a_damaged_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"contents").unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let mut cache = StatCache::default();
        let digest = cache.digest(&file, &meta).unwrap();
        assert_eq!(digest, Digest::of(b"contents"));
        let path = dir.path().join("stat-cache");
        cache.save(&path).unwrap();
        let loaded = StatCache::load(&path);
        assert_eq!(loaded.entries, cache.entries);
        assert_eq!(loaded.entries.len(), 1);

        // Cut short, or another format (the JSON of earlier versions): empty.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(StatCache::load(&path).entries.is_empty());
        std::fs::write(&path, b"{\"version\": 1, \"entries\": {}}").unwrap();
        assert!(StatCache::load(&path).entries.is_empty());
    }
}
