//! The packed image format: one file that training, statistics and sampling map into
//! memory and read without decoding.
//!
//! ```text
//! offset 0        b"PIPEPACK", u32 LE version (1), u32 LE 0           16 bytes
//! 16              pixels: n × height × width × channels u8, NHWC, row-major
//! 16 + n·h·w·c    labels: n × u32 LE
//! then            header: UTF-8 JSON (see `Header`)
//! end − 16        u64 LE length of the header, b"PACKEND\0"
//! ```
//!
//! The header is written last so that images stream to disk as they are read from an
//! archive; a reader finds it from the trailer.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DataError;

const MAGIC: &[u8; 8] = b"PIPEPACK";
const TRAILER: &[u8; 8] = b"PACKEND\0";
const VERSION: u32 = 1;
const PIXELS_OFFSET: u64 = 16;

/// What a packed file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub count: u64,
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    /// Always `u8`, NHWC.
    pub dtype: String,
    pub classes: Vec<String>,
    /// Images per class, in class order.
    pub counts: Vec<u64>,
    pub pixels_offset: u64,
    pub labels_offset: u64,
    /// Where the images came from, e.g. `CIFAR-10 train`.
    pub description: String,
}

impl Header {
    pub fn image_len(&self) -> usize {
        (self.height * self.width * self.channels) as usize
    }
}

/// Writes a packed file, image by image.
pub struct PackWriter {
    path: PathBuf,
    out: BufWriter<File>,
    header: Header,
    labels: Vec<u32>,
}

impl PackWriter {
    pub fn create(
        path: &Path,
        height: u32,
        width: u32,
        classes: Vec<String>,
        description: &str,
    ) -> Result<PackWriter, DataError> {
        let file = File::create(path).map_err(DataError::io(path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC).map_err(DataError::io(path))?;
        out.write_all(&VERSION.to_le_bytes())
            .map_err(DataError::io(path))?;
        out.write_all(&0u32.to_le_bytes())
            .map_err(DataError::io(path))?;
        let counts = vec![0; classes.len()];
        Ok(PackWriter {
            path: path.to_path_buf(),
            out,
            header: Header {
                version: VERSION,
                count: 0,
                height,
                width,
                channels: 3,
                dtype: "u8".into(),
                classes,
                counts,
                pixels_offset: PIXELS_OFFSET,
                labels_offset: 0,
                description: description.into(),
            },
            labels: Vec::new(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Appends one RGB image (height × width × 3 bytes, row-major) with its label.
    pub fn push(&mut self, pixels: &[u8], label: u32) -> Result<(), DataError> {
        assert_eq!(
            pixels.len(),
            self.header.image_len(),
            "image size fixed by the writer"
        );
        let classes = self.header.classes.len();
        let count = self.header.counts.get_mut(label as usize).unwrap_or_else(|| {
            panic!("label {label} outside the {classes} classes: readers check labels before pushing")
        });
        *count += 1;
        self.out
            .write_all(pixels)
            .map_err(DataError::io(&self.path))?;
        self.labels.push(label);
        self.header.count += 1;
        Ok(())
    }

    /// Writes labels, header and trailer, and syncs the file.
    pub fn finish(mut self) -> Result<Header, DataError> {
        let io = DataError::io(&self.path);
        self.header.labels_offset =
            PIXELS_OFFSET + self.header.count * self.header.image_len() as u64;
        let labels: Vec<u8> = self.labels.iter().flat_map(|l| l.to_le_bytes()).collect();
        let header = serde_json::to_vec(&self.header).expect("header serializes");
        let write = |out: &mut BufWriter<File>| -> std::io::Result<()> {
            out.write_all(&labels)?;
            out.write_all(&header)?;
            out.write_all(&(header.len() as u64).to_le_bytes())?;
            out.write_all(TRAILER)?;
            out.flush()?;
            out.get_ref().sync_data()
        };
        write(&mut self.out).map_err(io)?;
        Ok(self.header)
    }
}

/// A packed file mapped into memory.
pub struct Packed {
    map: memmap2::Mmap,
    header: Header,
    path: PathBuf,
}

impl Packed {
    pub fn open(path: &Path) -> Result<Packed, DataError> {
        let file = File::open(path).map_err(DataError::io(path))?;
        // SAFETY: packed files live in the read-only store; nobody truncates them while
        // they are mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(DataError::io(path))?;
        let bad = |message: String| DataError::bad(path.display().to_string(), None, message);
        let len = map.len() as u64;
        if len < 32 || &map[..8] != MAGIC || &map[map.len() - 8..] != TRAILER {
            return Err(bad("not a packed image file (bad magic or trailer)".into()));
        }
        let version = u32::from_le_bytes(map[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(bad(format!(
                "packed format version {version}, this build reads {VERSION}"
            )));
        }
        let header_len = u64::from_le_bytes(
            map[map.len() - 16..map.len() - 8]
                .try_into()
                .expect("8 bytes"),
        );
        let header_start = len
            .checked_sub(16 + header_len)
            .filter(|&s| s >= PIXELS_OFFSET);
        let Some(header_start) = header_start else {
            return Err(bad(format!(
                "header length {header_len} does not fit a file of {len} bytes"
            )));
        };
        let header: Header =
            serde_json::from_slice(&map[header_start as usize..(len - 16) as usize])
                .map_err(|e| bad(format!("unreadable header: {e}")))?;
        let pixels_end = header.pixels_offset + header.count * header.image_len() as u64;
        if header.labels_offset != pixels_end
            || header.labels_offset + 4 * header.count != header_start
        {
            return Err(bad(
                "header offsets do not match the file's size (truncated?)".into(),
            ));
        }
        Ok(Packed {
            map,
            header,
            path: path.to_path_buf(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.header.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.header.count == 0
    }

    /// Image `i`, height × width × channels bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.header.image_len();
        let start = self.header.pixels_offset as usize + i * n;
        &self.map[start..start + n]
    }

    pub fn label(&self, i: usize) -> u32 {
        let at = self.header.labels_offset as usize + 4 * i;
        u32::from_le_bytes(self.map[at..at + 4].try_into().expect("4 bytes"))
    }

    pub fn labels(&self) -> Vec<u32> {
        (0..self.len()).map(|i| self.label(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pack");
        let mut w = PackWriter::create(&path, 2, 3, vec!["a".into(), "b".into()], "test").unwrap();
        let img: Vec<u8> = (0..18).collect();
        w.push(&img, 1).unwrap();
        w.push(&[7; 18], 0).unwrap();
        let header = w.finish().unwrap();
        assert_eq!(header.counts, [1, 1]);
        let p = Packed::open(&path).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.image(0), img.as_slice());
        assert_eq!(p.image(1), &[7; 18]);
        assert_eq!(p.labels(), [1, 0]);
        assert_eq!(p.header().classes, ["a", "b"]);
    }

    #[test]
    fn truncated_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pack");
        let mut w = PackWriter::create(&path, 1, 1, vec!["a".into()], "test").unwrap();
        w.push(&[1, 2, 3], 0).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = Packed::open(&path).err().unwrap().to_string();
        assert!(err.contains("not a packed image file"), "{err}");
    }
}
