//! `cache du`, `cache gc`, `cache verify`, pins.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::statcache::hash_file;
use super::{Lock, Result, Store, StoreError};
use crate::digest::{Digest, Object, StageKey};

/// Sizes of the parts of the store, in files and bytes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub objects: (u64, u64),
    pub records: (u64, u64),
    pub work: (u64, u64),
    pub tmp: (u64, u64),
}

/// What `cache gc` removes (or would, with `--dry-run`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcPlan {
    pub kept_records: usize,
    pub records: Vec<Digest<StageKey>>,
    pub trees: Vec<Digest<Object>>,
    pub objects: Vec<Digest<Object>>,
    pub work: Vec<String>,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CorruptObject {
    pub digest: Digest<Object>,
    pub actual: Digest<Object>,
    pub moved_to: PathBuf,
}

fn files_and_bytes(dir: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return total;
    };
    for entry in entries.flatten() {
        match entry.metadata() {
            Ok(m) if m.is_dir() => {
                let (f, b) = files_and_bytes(&entry.path());
                total = (total.0 + f, total.1 + b);
            }
            Ok(m) => total = (total.0 + 1, total.1 + m.len()),
            Err(_) => {}
        }
    }
    total
}

/// Every `objects/ab/<hex>` file with its digest as named.
fn object_files(root: &Path) -> Result<Vec<(Digest<Object>, PathBuf)>> {
    let dir = root.join("objects");
    let mut out = Vec::new();
    for shard in std::fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
        let shard = shard.map_err(StoreError::io("list", &dir))?.path();
        for entry in std::fs::read_dir(&shard).map_err(StoreError::io("list", &shard))? {
            let path = entry.map_err(StoreError::io("list", &shard))?.path();
            if let Some(Ok(d)) = path.file_name().and_then(|n| n.to_str()).map(str::parse) {
                out.push((d, path));
            }
        }
    }
    Ok(out)
}

impl Store {
    /// Held by every run; `cache gc` takes it exclusively so as not to delete what a
    /// run is committing.
    pub fn hold_shared(&self) -> Result<Lock> {
        Lock::shared(&self.root.join("locks").join("store.lock"))
    }

    pub fn usage(&self) -> Usage {
        Usage {
            objects: files_and_bytes(&self.root.join("objects")),
            records: files_and_bytes(&self.root.join("records")),
            work: files_and_bytes(&self.root.join("work")),
            tmp: files_and_bytes(&self.root.join("tmp")),
        }
    }

    pub fn pins(&self) -> Result<BTreeSet<Digest<StageKey>>> {
        let dir = self.root.join("pins");
        let mut out = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
            let name = entry.map_err(StoreError::io("list", &dir))?.file_name();
            if let Some(Ok(key)) = name.to_str().map(str::parse) {
                out.insert(key);
            }
        }
        Ok(out)
    }

    pub fn pin(&self, key: &Digest<StageKey>, pinned: bool) -> Result<()> {
        let path = self.root.join("pins").join(key.hex());
        if pinned {
            std::fs::write(&path, b"").map_err(StoreError::io("pin", &path))
        } else {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(StoreError::io("unpin", &path)(e))
                }
                _ => Ok(()),
            }
        }
    }

    /// Removes every record not in `keep`, and every tree, object and work folder that
    /// no kept record references.
    pub fn gc(&self, keep: &BTreeSet<Digest<StageKey>>, dry_run: bool) -> Result<GcPlan> {
        let _exclusive = Lock::exclusive(&self.root.join("locks").join("store.lock"))?;
        let mut plan = GcPlan::default();
        let mut live_trees = BTreeSet::new();
        let mut live_objects = BTreeSet::new();
        for key in self.record_keys()? {
            let Some(record) = self.record(&key)? else {
                continue;
            };
            if keep.contains(&key) {
                plan.kept_records += 1;
                live_trees.insert(record.output);
                live_objects.extend(record.log);
                if let Some(tree) = self.tree(&record.output)? {
                    live_objects.extend(tree.entries.iter().map(|e| e.digest));
                }
            } else {
                plan.records.push(key);
            }
        }
        let trees_dir = self.root.join("trees");
        for entry in std::fs::read_dir(&trees_dir).map_err(StoreError::io("list", &trees_dir))? {
            let name = entry
                .map_err(StoreError::io("list", &trees_dir))?
                .file_name();
            let name = name.to_string_lossy();
            if let Ok(d) = name.trim_end_matches(".json").parse::<Digest<Object>>()
                && !live_trees.contains(&d)
                && name.ends_with(".json")
            {
                plan.trees.push(d);
            }
        }
        for (digest, path) in object_files(&self.root)? {
            if !live_objects.contains(&digest) {
                plan.bytes += std::fs::metadata(&path).map_or(0, |m| m.len());
                plan.objects.push(digest);
            }
        }
        let work_dir = self.root.join("work");
        for entry in std::fs::read_dir(&work_dir).map_err(StoreError::io("list", &work_dir))? {
            let name = entry
                .map_err(StoreError::io("list", &work_dir))?
                .file_name()
                .to_string_lossy()
                .to_string();
            if !name
                .parse::<Digest<StageKey>>()
                .is_ok_and(|k| keep.contains(&k))
            {
                plan.bytes += files_and_bytes(&work_dir.join(&name)).1;
                plan.work.push(name);
            }
        }
        if dry_run {
            return Ok(plan);
        }
        let remove_file = |p: PathBuf| match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError::io("remove", &p)(e))
            }
            _ => Ok(()),
        };
        // An index's entries are trusted without their record and manifest: none may
        // outlive them.
        self.drop_indexes()?;
        for key in &plan.records {
            remove_file(self.record_path(key))?;
        }
        // Jobs, failures, key locks and Slurm's scripts, logs and submissions of every
        // key not kept (failed or interrupted keys have no record): files whose name
        // starts with the key. Removing a lock file is safe here: no run holds the store.
        for dir in [
            "jobs",
            "failures",
            "locks",
            "slurm/scripts",
            "slurm/logs",
            "slurm/submitted",
        ] {
            let dir = self.root.join(dir);
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("list", &dir)(e)),
            };
            for entry in entries {
                let path = entry.map_err(StoreError::io("list", &dir))?.path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let key = name.get(..64).and_then(|k| k.parse().ok());
                if key.is_some_and(|k: Digest<StageKey>| !keep.contains(&k)) {
                    remove_file(path)?;
                }
            }
        }
        for tree in &plan.trees {
            let folder = self.tree_path(tree);
            if folder.exists() {
                std::fs::remove_dir_all(&folder).map_err(StoreError::io("remove", &folder))?;
            }
            remove_file(self.tree_manifest_path(tree))?;
        }
        let mut stat = self.stat().write().expect("stat cache poisoned");
        for object in &plan.objects {
            let path = self.object_path(object);
            stat.forget(&path);
            remove_file(path)?;
        }
        drop(stat);
        for name in &plan.work {
            let path = work_dir.join(name);
            std::fs::remove_dir_all(&path).map_err(StoreError::io("remove", &path))?;
        }
        let corrupt = self.root.join("corrupt");
        if corrupt.exists() {
            std::fs::remove_dir_all(&corrupt).map_err(StoreError::io("remove", &corrupt))?;
        }
        self.save()?;
        Ok(plan)
    }

    /// Rehashes every object, ignoring the stat cache; corrupt ones are set aside so
    /// that the stages needing them run again. Calls `progress(done, total)`.
    pub fn verify(&self, progress: &dyn Fn(u64, u64)) -> Result<(u64, Vec<CorruptObject>)> {
        let objects = object_files(&self.root)?;
        let total = objects.len() as u64;
        let mut corrupt = Vec::new();
        for (i, (digest, path)) in objects.into_iter().enumerate() {
            progress(i as u64, total);
            let meta = std::fs::metadata(&path).map_err(StoreError::io("stat", &path))?;
            let actual = hash_file(&path, meta.len())?;
            if actual != digest {
                let moved_to = self.set_aside(&digest)?;
                corrupt.push(CorruptObject {
                    digest,
                    actual,
                    moved_to,
                });
            } else {
                self.stat()
                    .write()
                    .expect("stat cache poisoned")
                    .remember(&path, &meta, digest);
            }
        }
        progress(total, total);
        self.save()?;
        Ok((total, corrupt))
    }

    /// Removes run folders left by processes that died (their lock is free).
    pub fn clean_tmp(&self) -> Result<()> {
        let tmp = self.root.join("tmp");
        for entry in std::fs::read_dir(&tmp).map_err(StoreError::io("list", &tmp))? {
            let path = entry.map_err(StoreError::io("list", &tmp))?.path();
            if path.extension().is_some_and(|e| e == "lock") {
                continue;
            }
            let lock_path = path.with_extension("lock");
            if let Some(_free) = Lock::try_exclusive(&lock_path)? {
                tracing::debug!("removing the leftover run folder {}", path.display());
                make_writable(&path);
                let _ = std::fs::remove_dir_all(&path);
                let _ = std::fs::remove_file(&lock_path);
            }
        }
        Ok(())
    }
}

/// Stage outputs may be read-only; removing their folder needs write permission on it.
pub(crate) fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            make_writable(&entry.path());
        }
    }
}
