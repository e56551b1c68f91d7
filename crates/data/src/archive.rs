//! Reading the files of a data set where they are: a `.tar.gz`, a `.zip` or a folder.
//! Nothing is extracted, so no member can be written outside its destination; member
//! names are only matched, never used as paths to write.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::DataError;

/// Receives each member's name and bytes.
pub type Visit<'a> = dyn FnMut(&str, Vec<u8>) -> Result<(), DataError> + 'a;

#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    TarGz(PathBuf),
    Zip(PathBuf),
    Folder(PathBuf),
}

impl Location {
    /// An archive file, a folder holding exactly one archive (a `Download` stage's
    /// output), or a folder of files.
    pub fn detect(path: &Path) -> Result<Location, DataError> {
        let meta = std::fs::metadata(path).map_err(DataError::io(path))?;
        if meta.is_file() {
            return Self::archive(path).ok_or_else(|| {
                DataError::bad(
                    path.display().to_string(),
                    None,
                    "not a .tar.gz or .zip archive, nor a folder",
                )
            });
        }
        let entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(DataError::io(path))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        if let [only] = entries.as_slice()
            && only.is_file()
            && let Some(archive) = Self::archive(only)
        {
            return Ok(archive);
        }
        Ok(Location::Folder(path.to_path_buf()))
    }

    fn archive(path: &Path) -> Option<Location> {
        let mut magic = [0u8; 4];
        File::open(path).ok()?.read_exact(&mut magic).ok()?;
        match magic {
            [0x1f, 0x8b, ..] => Some(Location::TarGz(path.to_path_buf())),
            [b'P', b'K', 3, 4] => Some(Location::Zip(path.to_path_buf())),
            _ => None,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Location::TarGz(p) | Location::Zip(p) | Location::Folder(p) => p,
        }
    }

    /// How a member is named in error messages: `archive.tar.gz:member`.
    pub fn describe(&self, member: &str) -> String {
        format!("{}:{member}", self.path().display())
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> DataError {
        DataError::bad(
            self.path().display().to_string(),
            None,
            format!("truncated or corrupt archive: {e}"),
        )
    }

    /// The names of all files, `/`-separated, relative to the archive or folder root.
    pub fn list(&self) -> Result<Vec<String>, DataError> {
        match self {
            Location::Folder(root) => {
                let mut names = Vec::new();
                walk(root, root, &mut names)?;
                names.sort();
                Ok(names)
            }
            Location::Zip(path) => {
                let zip = open_zip(path).map_err(|e| self.corrupt(e))?;
                let mut names: Vec<String> = zip
                    .file_names()
                    .filter(|n| !n.ends_with('/'))
                    .map(clean)
                    .collect();
                names.sort();
                Ok(names)
            }
            Location::TarGz(_) => Ok(self.read_matching(&|_| true, false)?.into_keys().collect()),
        }
    }

    /// The contents of every file whose name `want` accepts, in one pass.
    pub fn read_matching(
        &self,
        want: &dyn Fn(&str) -> bool,
        keep: bool,
    ) -> Result<BTreeMap<String, Vec<u8>>, DataError> {
        let mut out = BTreeMap::new();
        match self {
            Location::TarGz(path) => {
                let file = File::open(path).map_err(DataError::io(path))?;
                let mut tar =
                    tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
                for entry in tar.entries().map_err(|e| self.corrupt(e))? {
                    let mut entry = entry.map_err(|e| self.corrupt(e))?;
                    if !entry.header().entry_type().is_file() {
                        continue;
                    }
                    let name = clean(&entry.path().map_err(|e| self.corrupt(e))?.to_string_lossy());
                    if want(&name) {
                        let mut bytes = Vec::new();
                        if keep {
                            entry.read_to_end(&mut bytes).map_err(|e| self.corrupt(e))?;
                        }
                        out.insert(name, bytes);
                    }
                }
            }
            _ => {
                let names: Vec<String> = self.list()?.into_iter().filter(|n| want(n)).collect();
                self.read_each(&names, &mut |name, bytes| {
                    out.insert(name.to_string(), if keep { bytes } else { Vec::new() });
                    Ok(())
                })?;
            }
        }
        Ok(out)
    }

    /// Reads the named files in the order given.
    pub fn read_each(&self, names: &[String], f: &mut Visit) -> Result<(), DataError> {
        if let Location::TarGz(_) = self {
            let wanted: std::collections::BTreeSet<&str> =
                names.iter().map(String::as_str).collect();
            let mut found = self.read_matching(&|n| wanted.contains(n), true)?;
            for name in names {
                let bytes = found
                    .remove(name)
                    .ok_or_else(|| self.corrupt(format!("no member `{name}`")))?;
                f(name, bytes)?;
            }
            return Ok(());
        }
        let mut reader = self.reader()?;
        for name in names {
            f(name, reader.read(name)?)?;
        }
        Ok(())
    }

    /// Random access to members, for data sets of many small files (folders and zip
    /// files; a `.tar.gz` can only be read from start to end).
    pub fn reader(&self) -> Result<MemberReader, DataError> {
        match self {
            Location::Folder(root) => Ok(MemberReader::Folder(root.clone())),
            Location::Zip(path) => Ok(MemberReader::Zip(
                open_zip(path).map_err(|e| self.corrupt(e))?,
                path.clone(),
            )),
            Location::TarGz(path) => Err(DataError::bad(
                path.display().to_string(),
                None,
                "this data set cannot be read from a .tar.gz; give the .zip or the extracted folder",
            )),
        }
    }
}

/// Reads members one at a time, by name.
pub enum MemberReader {
    Folder(PathBuf),
    Zip(zip::ZipArchive<std::io::BufReader<File>>, PathBuf),
}

impl MemberReader {
    pub fn read(&mut self, name: &str) -> Result<Vec<u8>, DataError> {
        match self {
            MemberReader::Folder(root) => {
                let path = root.join(name);
                std::fs::read(&path).map_err(DataError::io(&path))
            }
            MemberReader::Zip(zip, path) => {
                let corrupt = |e: String| {
                    DataError::bad(
                        path.display().to_string(),
                        None,
                        format!("truncated or corrupt archive: {e}"),
                    )
                };
                let index = zip
                    .index_for_name(name)
                    .ok_or_else(|| corrupt(format!("no member `{name}`")))?;
                let mut member = zip.by_index(index).map_err(|e| corrupt(e.to_string()))?;
                let mut bytes = Vec::with_capacity(member.size() as usize);
                member
                    .read_to_end(&mut bytes)
                    .map_err(|e| corrupt(format!("{name}: {e}")))?;
                Ok(bytes)
            }
        }
    }
}

fn open_zip(
    path: &Path,
) -> Result<zip::ZipArchive<std::io::BufReader<File>>, zip::result::ZipError> {
    let file = File::open(path)?;
    zip::ZipArchive::new(std::io::BufReader::new(file))
}

fn clean(name: &str) -> String {
    name.trim_start_matches("./").to_string()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), DataError> {
    for entry in std::fs::read_dir(dir).map_err(DataError::io(dir))? {
        let path = entry.map_err(DataError::io(dir))?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).expect("inside root");
            out.push(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_locations_read_alike() {
        let dir = tempfile::tempdir().unwrap();
        let members: &[(&str, &[u8])] = &[("d/a.txt", b"a"), ("d/b.txt", b"bb")];
        std::fs::write(
            dir.path().join("x.tar.gz"),
            crate::testutil::tar_gz(members),
        )
        .unwrap();
        std::fs::write(dir.path().join("x.zip"), crate::testutil::zip(members)).unwrap();
        std::fs::create_dir_all(dir.path().join("f/d")).unwrap();
        std::fs::write(dir.path().join("f/d/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("f/d/b.txt"), "bb").unwrap();
        for path in ["x.tar.gz", "x.zip", "f"] {
            let loc = Location::detect(&dir.path().join(path)).unwrap();
            assert_eq!(loc.list().unwrap(), ["d/a.txt", "d/b.txt"], "{path}");
            let got = loc.read_matching(&|n| n.ends_with("b.txt"), true).unwrap();
            assert_eq!(got["d/b.txt"], b"bb", "{path}");
        }
    }

    #[test]
    fn a_truncated_archive_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar.gz");
        let big = vec![7u8; 100_000];
        std::fs::write(
            &path,
            crate::testutil::tar_gz(&[("a.bin", &big), ("b.bin", &big)]),
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = Location::detect(&path)
            .unwrap()
            .read_matching(&|_| true, true)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}: truncated or corrupt archive", path.display())),
            "{err}"
        );
    }
}
