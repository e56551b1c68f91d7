//! Tensors from PyTorch files (legacy pickles and zip archives, through burn-store),
//! checked for presence and shape as they are taken, with errors that name the file,
//! the key and both shapes.

use std::collections::BTreeMap;
use std::path::Path;

use burn_store::pytorch::PytorchReader;

/// A problem with a PyTorch file: which file, and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct TorchError {
    pub file: String,
    pub message: String,
}

pub struct TorchFile {
    reader: PytorchReader,
    file: String,
}

impl TorchFile {
    /// Opens a file whose top level is the tensors themselves (a state dict).
    pub fn open(path: &Path) -> Result<TorchFile, TorchError> {
        TorchFile::open_at(path, None)
    }

    /// Opens a file whose tensors sit under `key` of a top-level dict (a checkpoint
    /// with `state_dict`, `optimizer`, …).
    pub fn open_at(path: &Path, key: Option<&str>) -> Result<TorchFile, TorchError> {
        let file = path.display().to_string();
        let fail = |message: String| TorchError {
            file: file.clone(),
            message,
        };
        let len = std::fs::metadata(path)
            .map_err(|_| fail("no such file".into()))?
            .len();
        let reader = match key {
            None => PytorchReader::new(path),
            Some(key) => PytorchReader::with_top_level_key(path, key),
        }
        .map_err(|e| fail(format!("not a readable PyTorch file: {e}")))?;
        // The reader fetches tensor data lazily and does not notice a file cut short:
        // the tensors' bytes must at least fit in the file.
        let needed: u64 = reader
            .tensors()
            .values()
            .map(|t| (t.shape.iter().product::<usize>() * t.dtype.size()) as u64)
            .sum();
        if needed > len {
            return Err(fail(format!(
                "truncated file: its tensors need {needed} bytes, the file has {len}"
            )));
        }
        Ok(TorchFile { reader, file })
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Every tensor's name and shape.
    pub fn shapes(&self) -> BTreeMap<String, Vec<usize>> {
        self.reader
            .tensors()
            .iter()
            .map(|(k, t)| (k.clone(), t.shape.to_vec()))
            .collect()
    }

    /// Whether the file holds a tensor named `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.reader.get(key).is_some()
    }

    fn fail(&self, message: String) -> TorchError {
        TorchError {
            file: self.file.clone(),
            message,
        }
    }

    /// The values of tensor `key`, which must have `shape`.
    pub fn take(&self, key: &str, shape: &[usize]) -> Result<Vec<f64>, TorchError> {
        let snapshot = self
            .reader
            .get(key)
            .ok_or_else(|| self.fail(format!("missing tensor `{key}` (shape {shape:?})")))?;
        let found: Vec<usize> = snapshot.shape.to_vec();
        if found != shape {
            return Err(self.fail(format!(
                "tensor `{key}` has shape {found:?}, the network needs {shape:?}"
            )));
        }
        let values = snapshot
            .to_data()
            .map_err(|e| self.fail(format!("tensor `{key}`: {e:?}")))?
            .convert::<f64>()
            .to_vec::<f64>()
            .map_err(|e| self.fail(format!("tensor `{key}`: {e:?}")))?;
        if values.len() != shape.iter().product::<usize>() {
            return Err(self.fail(format!(
                "tensor `{key}` holds {} values for shape {shape:?} (truncated?)",
                values.len()
            )));
        }
        Ok(values)
    }
}
