//! Where a feature network's tensors come from: a weight file, or a listing of the
//! names and shapes a reference implementation's state dict has, to check that a
//! full-size release file would load without holding one.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use torchfile::TorchFile;

use super::MetricError;

pub trait Tensors {
    /// Tensor `key`'s values, which must have `shape`; errors name the key and both
    /// shapes.
    fn take(&self, key: &str, shape: &[usize]) -> Result<Vec<f64>, MetricError>;
}

/// A weight file whose names may carry a prefix, as a checkpoint saved from
/// `DistributedDataParallel` does (`module.`).
pub struct WeightFile {
    file: TorchFile,
    prefix: &'static str,
}

impl WeightFile {
    /// Opens a file whose names are the network's own.
    pub fn open(path: &std::path::Path) -> Result<WeightFile, MetricError> {
        Ok(WeightFile {
            file: TorchFile::open(path)?,
            prefix: "",
        })
    }

    /// Opens a file whose names may carry `prefix`: they are taken with it if the file
    /// has `probe` with it.
    pub fn open_prefixed(
        path: &std::path::Path,
        prefix: &'static str,
        probe: &str,
    ) -> Result<WeightFile, MetricError> {
        let file = TorchFile::open(path)?;
        let prefix = if file.contains(&format!("{prefix}{probe}")) {
            prefix
        } else {
            ""
        };
        Ok(WeightFile { file, prefix })
    }
}

impl Tensors for WeightFile {
    fn take(&self, key: &str, shape: &[usize]) -> Result<Vec<f64>, MetricError> {
        Ok(self.file.take(&format!("{}{key}", self.prefix), shape)?)
    }
}

/// Names and shapes only: every tensor taken is zeros of its shape (or, for speed
/// measurements, small random values), and the listing remembers which names were
/// taken, so that a test can say which were left.
pub struct Listing {
    shapes: BTreeMap<String, Vec<usize>>,
    prefix: String,
    taken: RefCell<BTreeSet<String>>,
    random: Option<RefCell<rng::Rng>>,
}

impl Listing {
    pub fn new(shapes: BTreeMap<String, Vec<usize>>, prefix: &str) -> Listing {
        Listing {
            shapes,
            prefix: prefix.to_string(),
            taken: RefCell::default(),
            random: None,
        }
    }

    /// Tensors of N(0, 0.02²) values drawn from `seed`: a full-size network to time
    /// without its release.
    pub fn random(shapes: BTreeMap<String, Vec<usize>>, prefix: &str, seed: u64) -> Listing {
        Listing {
            random: Some(RefCell::new(rng::Rng::new(seed))),
            ..Listing::new(shapes, prefix)
        }
    }

    /// The listed names never taken.
    pub fn left(&self) -> Vec<String> {
        let taken = self.taken.borrow();
        self.shapes
            .keys()
            .filter(|k| !taken.contains(*k))
            .cloned()
            .collect()
    }
}

impl Tensors for Listing {
    fn take(&self, key: &str, shape: &[usize]) -> Result<Vec<f64>, MetricError> {
        let key = format!("{}{key}", self.prefix);
        let found = self.shapes.get(&key).ok_or_else(|| {
            MetricError::format(
                "listing",
                format!("missing tensor `{key}` (shape {shape:?})"),
            )
        })?;
        if found != shape {
            return Err(MetricError::format(
                "listing",
                format!("tensor `{key}` has shape {found:?}, the network needs {shape:?}"),
            ));
        }
        self.taken.borrow_mut().insert(key);
        let n = shape.iter().product();
        Ok(match &self.random {
            Some(rng) => {
                let mut rng = rng.borrow_mut();
                (0..n).map(|_| 0.02 * rng.normal()).collect()
            }
            None => vec![0.0; n],
        })
    }
}
