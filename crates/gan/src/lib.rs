//! The GANs of the paper on burn: its three backbones (SNDCGAN, SNResGAN, BigGAN at 32
//! and 64 pixels) with its three ways of conditioning (ACGAN, projection, ContraGAN),
//! the losses, the training loop, and import of the authors' checkpoints.
//!
//! A network's state is a set of named tensors ([`tensors::Tensors`]) under the names
//! of the authors' PyTorch state dicts; the layers ([`layers`]) are functions that read
//! that state, so one forward pass serves building, importing, training and sampling,
//! on any burn backend.

pub mod adam;
pub mod bias_act;
pub mod classifier;
pub mod config;
pub mod discriminator;
pub mod evaluate;
pub mod generator;
pub mod import;
pub mod init;
pub mod layers;
pub mod loss;
pub mod sample;
pub mod stylegan2;
pub mod tensors;
pub mod train;
pub mod upfirdn2d;

use std::path::Path;

pub use config::{AdvLoss, Architecture, Conditioning, ModelConfig, TrainConfig};

#[derive(Debug, thiserror::Error)]
pub enum GanError {
    /// A data set that does not suit the model.
    #[error("{0}")]
    Unsuited(String),
    #[error("{file}: {message}")]
    Format { file: String, message: String },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl GanError {
    pub fn io(path: &Path, source: std::io::Error) -> GanError {
        GanError::Io {
            file: path.display().to_string(),
            source,
        }
    }

    pub fn format(file: impl std::fmt::Display, message: impl Into<String>) -> GanError {
        GanError::Format {
            file: file.to_string(),
            message: message.into(),
        }
    }
}
