//! Evaluation metrics in f64: FID, Inception Score, KID, precision/recall and
//! density/coverage, the statistics they are computed from, and the `.npy`/`.npz`
//! files that carry features and statistics between tools (pytorch-fid, TTUR,
//! torch-fidelity).

pub mod backbone;
pub mod conv_bn;
pub mod extract;
pub mod fid;
pub mod ifid;
pub mod inception;
pub mod inception_score;
pub mod kid;
pub mod npy;
pub mod prdc;
pub mod resize;
pub mod resnet;
pub mod stats;
pub mod tensors;
pub mod vit;

use std::path::PathBuf;

pub use stats::{Stats, StatsBuilder};

#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    #[error("`{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that is not what it should be.
    #[error("`{file}`: {message}")]
    Format { file: String, message: String },
    /// Inputs that make the metric meaningless.
    #[error("{0}")]
    Invalid(String),
    /// Stopped by the caller's cancellation flag.
    #[error("cancelled")]
    Cancelled,
}

impl MetricError {
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> MetricError + use<> {
        let path = path.to_path_buf();
        move |source| MetricError::Io { path, source }
    }

    pub fn format(file: impl Into<String>, message: impl Into<String>) -> MetricError {
        MetricError::Format {
            file: file.into(),
            message: message.into(),
        }
    }
}

/// A matrix of samples: `rows` samples of `cols` features, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Features {
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Features {
        assert_eq!(data.len(), rows * cols, "features shape");
        Features { rows, cols, data }
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Refuses NaN or infinite values and fewer than `min` samples.
    pub fn check(&self, what: &str, min: usize) -> Result<(), MetricError> {
        if self.rows < min {
            return Err(MetricError::Invalid(format!(
                "{what}: {} samples, at least {min} needed",
                self.rows
            )));
        }
        if let Some(i) = self.data.iter().position(|v| !v.is_finite()) {
            return Err(MetricError::Invalid(format!(
                "{what}: sample {} has a non-finite value ({}) in feature {}",
                i / self.cols,
                self.data[i],
                i % self.cols
            )));
        }
        Ok(())
    }
}
