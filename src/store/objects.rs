//! Files and folders in and out of the store.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::statcache::{Stat, hash_file};
use super::{Result, Store, StoreError, read_json, unique_suffix, write_json};
use crate::digest::{Digest, Object};

/// A folder's manifest: its files (at any depth) with their digests, sorted by path.
/// Its digest is that of its encoding, so a tree digest names the whole folder (a
/// one-level Merkle tree: a changed file changes the folder's digest and nothing else).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub entries: Vec<TreeEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// Relative, `/`-separated.
    pub path: String,
    pub digest: Digest<Object>,
    pub size: u64,
}

impl Tree {
    pub fn digest(&self) -> Digest<Object> {
        let mut h = blake3::Hasher::new();
        h.update(b"pipe-tree-v1");
        h.update(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            h.update(&(e.path.len() as u64).to_le_bytes());
            h.update(e.path.as_bytes());
            h.update(e.digest.as_bytes());
            h.update(&e.size.to_le_bytes());
        }
        Digest::from_hash(h.finalize())
    }

    pub fn size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}

/// What [`Store::check_tree`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum TreeState {
    Intact,
    /// The manifest or an object is gone (e.g. after `cache gc`).
    Missing,
    /// A file's content no longer matches its digest; the object was set aside.
    Corrupt {
        path: String,
    },
}

/// The regular files under `dir`, sorted by relative path.
fn walk(dir: &Path, follow_links: bool) -> Result<Vec<(String, PathBuf, std::fs::Metadata)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).map_err(StoreError::io("list", &folder))? {
            let path = entry.map_err(StoreError::io("list", &folder))?.path();
            let meta = if follow_links {
                std::fs::metadata(&path)
            } else {
                std::fs::symlink_metadata(&path)
            }
            .map_err(StoreError::io("stat", &path))?;
            if meta.is_symlink() {
                return Err(StoreError::Symlink { path });
            } else if meta.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("walk stays inside dir");
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path, meta));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

impl Store {
    /// The digest of an external file (its bytes) or folder (its tree), through the
    /// stat cache.
    pub fn digest_path(&self, path: &Path) -> Result<Digest<Object>> {
        let meta = std::fs::metadata(path).map_err(StoreError::io("read", path))?;
        let mut stat = self.stat().write().expect("stat cache poisoned");
        if !meta.is_dir() {
            return stat.digest(path, &meta);
        }
        let mut entries = Vec::new();
        for (rel, abs, meta) in walk(path, true)? {
            entries.push(TreeEntry {
                path: rel,
                digest: stat.digest(&abs, &meta)?,
                size: meta.size(),
            });
        }
        Ok(Tree { entries }.digest())
    }

    /// Moves one file into the objects (deduplicated by content) and returns its digest.
    pub fn commit_file(&self, file: &Path) -> Result<Digest<Object>> {
        let meta = std::fs::metadata(file).map_err(StoreError::io("stat", file))?;
        let digest = hash_file(file, meta.size())?;
        self.place(file, &digest)?;
        Ok(digest)
    }

    /// Moves a file that should hold `expected` (e.g. one downloaded) into the objects
    /// if its content has that digest; otherwise leaves it where it is and returns the
    /// digest it has.
    pub fn adopt_object(
        &self,
        file: &Path,
        expected: &Digest<Object>,
    ) -> Result<Result<(), Digest<Object>>> {
        let meta = std::fs::metadata(file).map_err(StoreError::io("stat", file))?;
        let actual = hash_file(file, meta.size())?;
        if actual != *expected {
            return Ok(Err(actual));
        }
        self.place(file, expected)?;
        Ok(Ok(()))
    }

    /// Whether the object is present and unchanged (rehashed only if its stat changed).
    pub fn has_object(&self, digest: &Digest<Object>) -> Result<bool> {
        let object = self.object_path(digest);
        let Ok(meta) = std::fs::metadata(&object) else {
            return Ok(false);
        };
        let mut stat = self.stat().write().expect("stat cache poisoned");
        Ok(stat.digest(&object, &meta)? == *digest)
    }

    /// Moves `file`, whose content has `digest`, into the objects, read-only; if an
    /// intact copy is there already, removes `file` instead.
    fn place(&self, file: &Path, digest: &Digest<Object>) -> Result<()> {
        if self.has_object(digest)? {
            return std::fs::remove_file(file).map_err(StoreError::io("remove", file));
        }
        let object = self.object_path(digest);
        let dir = object.parent().expect("objects have a parent");
        std::fs::create_dir_all(dir).map_err(StoreError::io("create", dir))?;
        let read_only = std::fs::Permissions::from_mode(0o444);
        std::fs::set_permissions(file, read_only).map_err(StoreError::io("protect", file))?;
        std::fs::rename(file, &object).map_err(StoreError::io("store", &object))?;
        let meta = std::fs::metadata(&object).map_err(StoreError::io("stat", &object))?;
        let mut stat = self.stat().write().expect("stat cache poisoned");
        stat.remember(&object, &meta, *digest);
        Ok(())
    }

    /// Moves every file under `dir` into the store and materializes the folder under
    /// `trees/`. Symbolic links are refused: their targets would escape the hash.
    pub fn commit_tree(&self, dir: &Path) -> Result<(Digest<Object>, Tree)> {
        let files = walk(dir, false)?;
        let mut entries = Vec::with_capacity(files.len());
        for (rel, abs, meta) in files {
            entries.push(TreeEntry {
                path: rel,
                digest: self.commit_file(&abs)?,
                size: meta.size(),
            });
        }
        let tree = Tree { entries };
        let digest = self.adopt_tree(&tree)?;
        Ok((digest, tree))
    }

    /// Writes a tree's manifest and materializes its folder; every object it names must
    /// be in the store already.
    pub fn adopt_tree(&self, tree: &Tree) -> Result<Digest<Object>> {
        let digest = tree.digest();
        write_json(&self.tree_manifest_path(&digest), tree)?;
        let folder = self.tree_path(&digest);
        if !self.links_intact(tree, &folder) {
            self.materialize(tree, &folder)?;
        }
        Ok(digest)
    }

    pub fn tree(&self, digest: &Digest<Object>) -> Result<Option<Tree>> {
        read_json(&self.tree_manifest_path(digest))
    }

    /// Checks a committed tree before its folder is reused: every object present and
    /// unchanged (rehashed only when its stat changed), every link in place (relinked if
    /// not). A corrupt object is moved to `corrupt/` so that nothing uses it again.
    pub fn check_tree(&self, digest: &Digest<Object>) -> Result<TreeState> {
        match self.tree(digest)? {
            Some(tree) => self.check_entries(digest, &tree),
            None => Ok(TreeState::Missing),
        }
    }

    /// [`Store::check_tree`] with the manifest known already (a copy in an index), used
    /// if it hashes to `digest`. A rerun checks every output: where each file of the
    /// tree's folder has the metadata the stat cache trusts for its object (a hard link
    /// shares its object's inode, so a change through either shows), that is one `stat`
    /// a file, and the folder is known to hold the tree; else the tree is checked in
    /// full. (Whether the object's own name is still there is left to `cache verify`.)
    pub(super) fn check_known_tree(
        &self,
        digest: &Digest<Object>,
        tree: &Tree,
    ) -> Result<TreeState> {
        if tree.digest() != *digest {
            return self.check_tree(digest);
        }
        let linked = self.trees_folder().is_some_and(|trees| {
            let stat = self.stat().read().expect("stat cache poisoned");
            tree.entries.iter().all(|e| {
                let relative = format!("{}/{}", digest.hex(), e.path);
                std::ffi::CString::new(relative)
                    .ok()
                    .and_then(|relative| Stat::of_file_at(trees, &relative))
                    .is_some_and(|file| {
                        stat.trusted_stat(&self.object_path(&e.digest), file) == Some(e.digest)
                    })
            })
        });
        if linked {
            return Ok(TreeState::Intact);
        }
        self.check_entries(digest, tree)
    }

    fn check_entries(&self, digest: &Digest<Object>, tree: &Tree) -> Result<TreeState> {
        let mut objects = Vec::with_capacity(tree.entries.len());
        for entry in &tree.entries {
            let object = self.object_path(&entry.digest);
            let Ok(meta) = std::fs::metadata(&object) else {
                return Ok(TreeState::Missing);
            };
            objects.push((meta.dev(), meta.ino()));
            // Shared while the stat cache answers, as it does for every object of a
            // rerun: the lookups of every core go on side by side.
            let trusted = self
                .stat()
                .read()
                .expect("stat cache poisoned")
                .trusted(&object, &meta);
            let actual = match trusted {
                Some(digest) => digest,
                None => self
                    .stat()
                    .write()
                    .expect("stat cache poisoned")
                    .digest(&object, &meta)?,
            };
            if actual != entry.digest {
                self.set_aside(&entry.digest)?;
                let folder = self.tree_path(digest);
                std::fs::remove_dir_all(&folder).map_err(StoreError::io("remove", &folder))?;
                return Ok(TreeState::Corrupt {
                    path: entry.path.clone(),
                });
            }
        }
        let folder = self.tree_path(digest);
        if !self.links_to(tree, &folder, &objects) {
            self.materialize(tree, &folder)?;
        }
        Ok(TreeState::Intact)
    }

    /// Moves a corrupt object out of the way, keeping it for inspection.
    pub(super) fn set_aside(&self, digest: &Digest<Object>) -> Result<PathBuf> {
        let object = self.object_path(digest);
        let dir = self.root.join("corrupt");
        std::fs::create_dir_all(&dir).map_err(StoreError::io("create", &dir))?;
        let dest = dir.join(format!("{digest}.{}", unique_suffix()));
        std::fs::rename(&object, &dest).map_err(StoreError::io("set aside", &object))?;
        self.stat()
            .write()
            .expect("stat cache poisoned")
            .forget(&object);
        Ok(dest)
    }

    fn links_intact(&self, tree: &Tree, folder: &Path) -> bool {
        let objects: Option<Vec<(u64, u64)>> = tree
            .entries
            .iter()
            .map(|e| {
                let meta = std::fs::metadata(self.object_path(&e.digest)).ok()?;
                Some((meta.dev(), meta.ino()))
            })
            .collect();
        objects.is_some_and(|objects| self.links_to(tree, folder, &objects))
    }

    /// Whether each file of the tree in `folder` is a hard link to its object, whose
    /// (device, inode) `objects` gives in the order of the entries.
    fn links_to(&self, tree: &Tree, folder: &Path, objects: &[(u64, u64)]) -> bool {
        tree.entries.iter().zip(objects).all(|(e, &(dev, ino))| {
            std::fs::symlink_metadata(folder.join(&e.path))
                .is_ok_and(|linked| linked.dev() == dev && linked.ino() == ino)
        })
    }

    /// Builds the folder of hard links beside its final place, then renames it there.
    fn materialize(&self, tree: &Tree, folder: &Path) -> Result<()> {
        let staging = folder.with_extension(format!("tmp-{}", unique_suffix()));
        for e in &tree.entries {
            let link = staging.join(&e.path);
            let parent = link.parent().expect("entries are inside the folder");
            std::fs::create_dir_all(parent).map_err(StoreError::io("create", parent))?;
            let object = self.object_path(&e.digest);
            if std::fs::hard_link(&object, &link).is_err() {
                std::fs::copy(&object, &link).map_err(StoreError::io("copy", &object))?;
            }
        }
        std::fs::create_dir_all(&staging).map_err(StoreError::io("create", &staging))?;
        if folder.exists() {
            std::fs::remove_dir_all(folder).map_err(StoreError::io("replace", folder))?;
        }
        match std::fs::rename(&staging, folder) {
            Ok(()) => Ok(()),
            // Another process materialized the same tree first: theirs is as good.
            Err(_) if folder.exists() => {
                std::fs::remove_dir_all(&staging).map_err(StoreError::io("remove", &staging))
            }
            Err(e) => Err(StoreError::io("materialize", folder)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_dedups_and_check_detects_a_flipped_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("cache")).unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(out.join("sub")).unwrap();
        std::fs::write(out.join("a.txt"), "same").unwrap();
        std::fs::write(out.join("sub/b.txt"), "same").unwrap();
        let (digest, tree) = store.commit_tree(&out).unwrap();
        assert_eq!(tree.entries.len(), 2);
        assert_eq!(tree.entries[0].digest, tree.entries[1].digest);
        let folder = store.tree_path(&digest);
        assert_eq!(
            std::fs::read_to_string(folder.join("sub/b.txt")).unwrap(),
            "same"
        );
        assert_eq!(store.check_tree(&digest).unwrap(), TreeState::Intact);

        let object = store.object_path(&tree.entries[0].digest);
        std::fs::set_permissions(&object, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&object, "samE").unwrap();
        assert_eq!(
            store.check_tree(&digest).unwrap(),
            TreeState::Corrupt {
                path: "a.txt".into()
            }
        );
        assert!(!object.exists(), "the corrupt object is set aside");
        assert_eq!(store.check_tree(&digest).unwrap(), TreeState::Missing);
    }

    #[test]
    fn folder_digest_follows_content_not_mtime() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("cache")).unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("x"), "1").unwrap();
        let first = store.digest_path(&data).unwrap();
        std::fs::write(data.join("x"), "1").unwrap();
        assert_eq!(store.digest_path(&data).unwrap(), first);
        std::fs::write(data.join("x"), "2").unwrap();
        assert_ne!(store.digest_path(&data).unwrap(), first);
    }
}
