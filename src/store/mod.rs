//! The store: content-addressed objects, stage records, locks and work folders.
//!
//! ```text
//! cache/
//!   objects/ab/abcd…          file contents by blake3 digest, read-only
//!   trees/abcd….json          a folder's manifest (relative path → object digest)
//!   trees/abcd…/              the folder itself, hard links to objects: what stages read
//!   records/ab/abcd….json     one per executed key: what was hashed, outputs, timings, log
//!   failures/abcd….json       the last failure of a key (never used as a cached result)
//!   jobs/abcd….json           a stage ready to execute, for `pipe exec KEY`
//!   refs/<pipeline>.json      stage name → key of its latest successful record
//!   refs/<pipeline>.index     those keys' outputs, metrics and manifests, for reruns
//!   pins/abcd…                keys kept by `cache gc` whatever the pipelines say
//!   work/abcd…/               resumable state of a key, kept across interruptions
//!   tmp/<run>/                where stages run and downloads land; committed only after success
//!   locks/                    flock files, released by the kernel when a process dies
//!   stat-cache                (device, inode, size, mtime) → digest, binary
//! ```
//!
//! Every file that is read as a whole is written to a temporary name and renamed, so a
//! killed process leaves either the old file or the new one.

mod index;
mod lock;
mod lookahead;
mod maintenance;
mod objects;
mod record;
mod refs;
mod scratch;
mod statcache;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, RwLock};

pub use lock::Lock;
pub use lookahead::{Ahead, Lookahead};
pub(crate) use maintenance::make_writable;
pub use maintenance::{CorruptObject, GcPlan, Usage};
pub use objects::{Tree, TreeEntry, TreeState};
pub use record::{Completed, Failure, Lookup, Record, Source};
pub use refs::Refs;
pub use scratch::Scratch;
pub use statcache::StatCache;

use crate::digest::{Digest, Object, StageKey};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not valid: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{}` is a symbolic link; outputs must be regular files and folders", path.display())]
    Symlink { path: PathBuf },
    #[error("no key in the store starts with `{0}`")]
    UnknownKey(String),
    #[error("`{0}` matches several keys; give more digits")]
    AmbiguousKey(String),
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An open store; cheap to share between threads.
pub struct Store {
    root: PathBuf,
    /// Loaded when first needed ([`Store::stat`]).
    stat: OnceLock<RwLock<StatCache>>,
    /// `trees/`, open for stats relative to it ([`Store::trees_folder`]).
    trees: OnceLock<Option<std::fs::File>>,
    /// Lookups made ahead of a command, by pipeline: [`Store::prepare_look_ahead`].
    prepared: Mutex<Option<(String, Refs, lookahead::Lookahead)>>,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        std::fs::create_dir_all(root).map_err(StoreError::io("create the store", root))?;
        let root = root
            .canonicalize()
            .map_err(StoreError::io("resolve", root))?;
        for dir in [
            "objects", "trees", "records", "failures", "jobs", "refs", "pins", "work", "tmp",
            "locks",
        ] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(StoreError::io("create", &path))?;
        }
        Ok(Store {
            root,
            stat: OnceLock::new(),
            trees: OnceLock::new(),
            prepared: Mutex::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn object_path(&self, digest: &Digest<Object>) -> PathBuf {
        let hex = digest.hex();
        self.root.join("objects").join(&hex[..2]).join(hex)
    }

    /// The folder holding a committed tree, as downstream stages read it.
    pub fn tree_path(&self, digest: &Digest<Object>) -> PathBuf {
        self.root.join("trees").join(digest.hex())
    }

    /// A tree's manifest, the JSON a remote cache holds for it too.
    pub fn tree_manifest_path(&self, digest: &Digest<Object>) -> PathBuf {
        self.root.join("trees").join(format!("{digest}.json"))
    }

    pub fn record_path(&self, key: &Digest<StageKey>) -> PathBuf {
        let hex = key.hex();
        self.root
            .join("records")
            .join(&hex[..2])
            .join(format!("{hex}.json"))
    }

    pub fn failure_path(&self, key: &Digest<StageKey>) -> PathBuf {
        self.root.join("failures").join(format!("{key}.json"))
    }

    pub fn job_path(&self, key: &Digest<StageKey>) -> PathBuf {
        self.root.join("jobs").join(format!("{key}.json"))
    }

    /// The stat cache, read by whichever thread needs it first: a command that looks
    /// its stages up ahead reads it beside the loading of the pipeline, not before it
    /// (100,000 entries are a twentieth of a second).
    fn stat(&self) -> &RwLock<StatCache> {
        self.stat
            .get_or_init(|| RwLock::new(StatCache::load(&self.root.join("stat-cache"))))
    }

    /// The folder of trees, opened once; `None` where it cannot be opened (the
    /// lookups then check each tree in full, and say what is wrong).
    fn trees_folder(&self) -> Option<&std::fs::File> {
        self.trees
            .get_or_init(|| std::fs::File::open(self.root.join("trees")).ok())
            .as_ref()
    }

    pub fn work_path(&self, key: &Digest<StageKey>) -> PathBuf {
        self.root.join("work").join(key.hex())
    }

    /// Writes the stat cache back, merged with what other processes wrote meanwhile.
    pub fn save(&self) -> Result<()> {
        // Never read, so nothing learned to write back.
        let Some(stat) = self.stat.get() else {
            return Ok(());
        };
        let _lock = Lock::exclusive(&self.root.join("locks").join("stat-cache.lock"))?;
        let mut stat = stat.write().expect("stat cache poisoned");
        stat.save(&self.root.join("stat-cache"))?;
        // The JSON form earlier versions wrote, ignored since.
        let _ = std::fs::remove_file(self.root.join("stat-cache.json"));
        Ok(())
    }

    /// Resolves a unique key prefix (as users type them) to a full key.
    pub fn resolve_key(&self, prefix: &str) -> Result<Digest<StageKey>> {
        let matches: Vec<_> = self
            .record_keys()?
            .into_iter()
            .filter(|k| k.hex().starts_with(prefix))
            .collect();
        let jobs: Vec<Digest<StageKey>> = if matches.is_empty() {
            list_json_stems(&self.root.join("jobs"))?
                .into_iter()
                .filter(|k: &Digest<StageKey>| k.hex().starts_with(prefix))
                .collect()
        } else {
            matches
        };
        match jobs.as_slice() {
            [one] => Ok(*one),
            [] => Err(StoreError::UnknownKey(prefix.to_string())),
            _ => Err(StoreError::AmbiguousKey(prefix.to_string())),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("store paths have a parent");
    std::fs::create_dir_all(dir).map_err(StoreError::io("create", dir))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        unique_suffix()
    ));
    let mut file = std::fs::File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
    file.write_all(bytes)
        .map_err(StoreError::io("write", &tmp))?;
    file.sync_data().map_err(StoreError::io("sync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(StoreError::io("rename into", path))
}

pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).expect("store types serialize");
    write_atomic(path, &bytes)
}

/// Reads a JSON file; `None` if it does not exist.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StoreError::Json {
            path: path.to_path_buf(),
            source,
        })
}

/// Parses the digests named by `<hex>.json` files in `dir`.
fn list_json_stems<T>(dir: &Path) -> Result<Vec<Digest<T>>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StoreError::io("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let name = entry.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json"))
            && let Ok(d) = stem.parse()
        {
            out.push(d);
        }
    }
    Ok(out)
}

/// `work` on each of `parts`, each on a thread of its own, the results in order: what
/// the store reads for a whole pipeline at once (its index, the lookups ahead) is cut
/// into a part per core.
fn on_every_core<P: Send, R: Send>(parts: Vec<P>, work: impl Fn(P) -> Vec<R> + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let work = &work;
                scope.spawn(move || work(part))
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("the store's workers do not panic"))
            .collect()
    })
}

/// A name no other process or thread will pick: pid, time and a counter.
pub(crate) fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
