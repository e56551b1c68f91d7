//! Import of the authors' checkpoints (`model=G-….pth`, `model=D-….pth`,
//! `model=G_ema-….pth`: a dict whose `state_dict` holds the network, legacy or zip
//! PyTorch format; a bare state dict is read too). Our tensors carry the reference's names, spectral norm's
//! `weight_orig`, `weight_u`, `weight_v` included, so the import is name for name, with
//! every shape checked against the configuration.

use std::path::Path;

use burn::prelude::*;

use kernels::Kernels;

use super::config::{Architecture, ModelConfig};
use super::init::Scheme;
use super::tensors::Tensors;
use super::{GanError, discriminator, generator};
use torchfile::TorchFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Generator,
    Discriminator,
}

/// A network read from a checkpoint.
pub struct Imported<B: Backend> {
    pub tensors: Tensors<B>,
    /// Tensors of the checkpoint the authors' network holds but never uses in this
    /// configuration, left out (see [`unused_by_reference`]), with their sizes.
    pub ignored: Vec<(String, usize)>,
}

/// What the authors' code builds but never uses, for a configuration: their BigGAN
/// generators create the class embedding `shared` even when unconditional.
pub fn unused_by_reference(config: &ModelConfig, network: Network) -> &'static [&'static str] {
    match network {
        Network::Generator if config.architecture.shares_embedding() && !config.conditional_g() => {
            &["shared.weight"]
        }
        _ => &[],
    }
}

/// The fixed filters StyleGAN2's layers keep as buffers (`…resample_filter`,
/// `upfirdn2d.setup_filter([1, 3, 3, 1])`: the 4×4 outer product over 64), which the
/// layers here apply as constants: a checkpoint's must hold exactly these values.
fn fixed_filter(config: &ModelConfig, name: &str) -> Option<Vec<f64>> {
    if config.architecture != Architecture::Stylegan2 || !name.ends_with("resample_filter") {
        return None;
    }
    let taps = [1.0, 3.0, 3.0, 1.0];
    Some(
        taps.iter()
            .flat_map(|a| taps.iter().map(move |b| a * b / 64.0))
            .collect(),
    )
}

/// The network in `path`, as configured by `config`.
pub fn import<B: Kernels>(
    path: &Path,
    network: Network,
    config: &ModelConfig,
    device: &B::Device,
) -> Result<Imported<B>, GanError> {
    // A checkpoint dict holds the network under `state_dict`; a bare state dict is
    // the network itself.
    let file = TorchFile::open_at(path, Some("state_dict"))
        .or_else(|first| TorchFile::open(path).map_err(|_| first))
        .map_err(|e| GanError::format(e.file, e.message))?;
    // Every value is replaced below: build with the cheap initialization, not the QRs
    // of an orthogonal one.
    let skeleton = ModelConfig {
        g_init: Scheme::N02,
        d_init: Scheme::N02,
        ..config.clone()
    };
    let mut tensors = match network {
        Network::Generator => generator::build::<B>(&skeleton, 0, device),
        Network::Discriminator => discriminator::build::<B>(&skeleton, 0, device),
    };
    let mut found = file.shapes();
    let filters: Vec<String> = found
        .keys()
        .filter(|k| fixed_filter(config, k).is_some())
        .cloned()
        .collect();
    for name in filters {
        let expected = fixed_filter(config, &name).expect("a filter's name");
        let values = file
            .take(&name, &found[&name])
            .map_err(|e| GanError::format(e.file, e.message))?;
        if values.len() != expected.len()
            || values
                .iter()
                .zip(&expected)
                .any(|(a, b)| (a - b).abs() > 1e-6)
        {
            return Err(GanError::format(
                path.display(),
                format!(
                    "`{name}` is not StyleGAN2's [1, 3, 3, 1] filter (shape {:?}), which \
                     every layer here uses",
                    found[&name]
                ),
            ));
        }
        found.remove(&name);
    }
    let unused = unused_by_reference(config, network);
    let ignored: Vec<(String, usize)> = found
        .iter()
        .filter(|(k, _)| unused.contains(&k.as_str()) && tensors.get(k).is_none())
        .map(|(k, shape)| (k.clone(), shape.iter().product()))
        .collect();
    let unexpected: Vec<&str> = found
        .keys()
        .filter(|k| {
            !k.ends_with("num_batches_tracked")
                && tensors.get(k).is_none()
                && !unused.contains(&k.as_str())
        })
        .map(String::as_str)
        .collect();
    if !unexpected.is_empty() {
        return Err(GanError::format(
            path.display(),
            format!(
                "the checkpoint has tensors this {network:?} configuration lacks: `{}`; \
                 check architecture, conditioning, spectral norm and attention",
                unexpected.join("`, `")
            ),
        ));
    }
    let names: Vec<(String, Vec<usize>)> = tensors
        .iter()
        .map(|(n, e)| (n.clone(), e.shape.clone()))
        .collect();
    for (name, shape) in names {
        let values = file
            .take(&name, &shape)
            .map_err(|e| GanError::format(e.file, e.message))?;
        let values: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
        let n = values.len();
        tensors.set(
            &name,
            Tensor::from_data(TensorData::new(values, [n]), device),
        );
    }
    Ok(Imported { tensors, ignored })
}
