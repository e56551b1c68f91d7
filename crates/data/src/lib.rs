//! Data sets: readers of the published archives and of image folders, a synthetic
//! set, the packed format they are all turned into, and the loader that feeds training.
//!
//! Every reader yields RGB images of one size with labels in a fixed class order and
//! streams them into a [`PackWriter`]; nothing is extracted to disk. Errors name the
//! file (and the member of the archive) and, where it applies, the record or line.

pub mod archive;
pub mod cifar;
pub mod download;
pub mod folder;
mod image_io;
pub mod imagenet;
pub mod loader;
pub mod packed;
mod pickle;
pub mod preview;
pub mod synthetic;
pub mod testutil;
pub mod tiny;
pub mod views;

use explain::Explain;
use std::path::{Path, PathBuf};

pub use archive::Location;
pub use image_io::{Filter, decode_rgb};
pub use loader::{Batch, Loader, LoaderConfig};
pub use packed::{Header, PackWriter, Packed};

/// Which part of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Explain)]
pub enum Split {
    Train,
    /// The evaluation split: CIFAR's test batch, Tiny ImageNet's validation images.
    Test,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("`{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Content that does not fit the format: the file (or archive member), where in it,
    /// and what is wrong.
    #[error("{file}{}: {message}", at.as_ref().map(|a| format!(" ({a})")).unwrap_or_default())]
    Bad {
        file: String,
        at: Option<String>,
        message: String,
    },
    #[error("{file}: {algorithm} is {actual}, expected {expected}")]
    Checksum {
        file: String,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    #[error("cannot download {url}: {message}\n  = help: {hint}")]
    Download {
        url: String,
        message: String,
        hint: String,
    },
    #[error("cancelled")]
    Cancelled,
}

impl DataError {
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + use<> {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    }

    pub fn bad(
        file: impl Into<String>,
        at: Option<String>,
        message: impl Into<String>,
    ) -> DataError {
        DataError::Bad {
            file: file.into(),
            at,
            message: message.into(),
        }
    }
}

/// Content that does not read as what it should (a pickle, an image, a checksum as
/// written), in words; callers add which file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

impl From<&str> for Malformed {
    fn from(message: &str) -> Malformed {
        Malformed(message.to_string())
    }
}

impl From<String> for Malformed {
    fn from(message: String) -> Malformed {
        Malformed(message)
    }
}

/// RGB pixels (height × width × 3, row-major) and a class index.
pub type LabelledImage = (Vec<u8>, u32);

/// A data set being read: its classes, image size and the images in order.
pub struct Images {
    pub classes: Vec<String>,
    pub height: u32,
    pub width: u32,
    /// E.g. `CIFAR-10 train (binary)`.
    pub description: String,
    pub count: usize,
    pub iter: Box<dyn Iterator<Item = Result<LabelledImage, DataError>> + Send>,
}

/// Writes every image into a packed file, reporting `(done, total)` as it goes.
pub fn pack(
    images: Images,
    path: &Path,
    progress: &dyn Fn(u64, u64),
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<Header, DataError> {
    let mut writer = PackWriter::create(
        path,
        images.height,
        images.width,
        images.classes,
        &images.description,
    )?;
    let total = images.count as u64;
    for (i, image) in images.iter.enumerate() {
        let (pixels, label) = image?;
        writer.push(&pixels, label)?;
        if i % 1024 == 0 {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(DataError::Cancelled);
            }
            progress(i as u64, total);
        }
    }
    progress(total, total);
    writer.finish()
}
