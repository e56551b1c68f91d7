//! StyleGAN2 as StudioGAN v0.4 builds it (`models/stylegan2.py`, a fork of NVIDIA's
//! stylegan2-ada-pytorch): the mapping network, the synthesis network and the
//! discriminator, on the FIR resampling of [`crate::upfirdn2d`] and the fused bias and
//! activation of [`crate::bias_act`]. Tensors carry the names of the authors' state
//! dicts (`mapping.fc0.weight`, `synthesis.b8.conv0.affine.bias`, `b4.fc.weight`…).
//!
//! [`generate`] and [`judge`] are G and D for a [`ModelConfig`] with
//! `architecture: Stylegan2`, as [`crate::generator`] and [`crate::discriminator`]
//! call them.
//!
//! Randomness inside G (the noise inputs, style mixing) comes from one stream per
//! image, seeded by the bits of its latent z: G stays a function of its inputs, so
//! that a data-parallel step (each device a part of the batch) and a replayed pass
//! make the same images as one device and the first pass do. Style mixing is drawn
//! per image (the reference draws one cutoff per batch).

pub mod discriminator;
pub mod layers;
pub mod mapping;
pub mod synthesis;

use burn::prelude::*;
use kernels::Kernels;
use rng::Rng;

use crate::config::{
    AuxClassifier, Conditioning, D_MAPPING_LAYERS, DBlocks, ModelConfig, Stylegan2Model,
};
use crate::layers::{Mode, Scope};
use crate::tensors::Tensors;
use burn::backend::Autodiff;
use discriminator::{Blocks, Discriminator, Head};
use mapping::{Layers, Mapping, Truncation};
use synthesis::{Noise, Synthesis};

/// The reference's decay of G's tracked average w.
const W_AVG_BETA: f64 = 0.998;
/// The reference's lr multiplier of G's mapping network.
const MAPPING_LR: f64 = 0.01;

fn section(config: &ModelConfig) -> &Stylegan2Model {
    config
        .stylegan2
        .as_ref()
        .expect("a Stylegan2 model has its section (ModelConfig::check)")
}

/// G's synthesis and mapping networks for `config`.
pub fn g_networks(config: &ModelConfig) -> (Synthesis, Mapping) {
    let style = section(config);
    let synthesis = Synthesis {
        w_dim: style.w_dim,
        resolution: style.resolution,
        img_channels: 3,
        channel_base: style.channel_base,
        channel_max: style.channel_max,
    };
    let mapping = Mapping {
        layers: Layers {
            c_dim: if config.conditional_g() {
                config.num_classes
            } else {
                0
            },
            w_dim: style.w_dim,
            num_layers: style.mapping_network,
            lr_multiplier: MAPPING_LR,
        },
        num_ws: synthesis.num_ws(),
        w_avg_beta: W_AVG_BETA,
    };
    (synthesis, mapping)
}

/// D's body and head for `config`: `SPD` for projection, `AC` for ACGAN, `2C` and
/// `D2DCE` embeddings (their size `hyper_dim`, normalized by `normalize_embed`).
pub fn d_network(config: &ModelConfig) -> (Discriminator, Head) {
    let style = section(config);
    let body = Discriminator {
        resolution: style.resolution,
        img_channels: 3,
        channel_base: style.channel_base,
        channel_max: style.channel_max,
        blocks: match style.d_architecture {
            DBlocks::Orig => Blocks::Orig,
            DBlocks::Resnet => Blocks::Resnet,
        },
        mbstd_group_size: Some(style.d_epilogue_mbstd_group_size),
        mbstd_num_channels: 1,
    };
    let classes = config.d_classes();
    let head = match config.conditioning {
        Conditioning::None => Head::Plain,
        Conditioning::Projection => Head::Projection {
            classes: config.num_classes,
            mapping_layers: D_MAPPING_LAYERS,
        },
        Conditioning::Acgan => Head::Classifier {
            classes,
            normalize: false,
        },
        Conditioning::Contrastive | Conditioning::D2dce => Head::Embedding {
            classes,
            dim: config.hyper_dim,
            normalize: config.normalize_embed,
        },
    };
    debug_assert!(config.aux_cls_type == AuxClassifier::None || head != Head::Plain);
    (body, head)
}

/// G(z, y) for a Stylegan2 `config`: images `[n, 3, r, r]`. A train-mode pass
/// (`batch_stats`) mixes styles with the section's probability; one that updates state
/// moves the tracked average w.
pub fn generate<B: Kernels>(
    s: &mut Scope<B>,
    config: &ModelConfig,
    z: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
) -> Tensor<B, 4> {
    generate_truncated(s, config, z, y, Truncation::NONE)
}

/// Images of a trained G as v0.4's evaluation makes them (no style mixing, the average
/// w as it is), every w moved toward the average by `psi` (1: not at all).
pub fn sample_images<B: Kernels>(
    g: &mut Tensors<B>,
    config: &ModelConfig,
    z: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
    psi: f64,
) -> Tensor<B, 4> {
    let truncation = Truncation { psi, cutoff: None };
    generate_truncated(&mut Scope::new(g, Mode::EVAL), config, z, y, truncation)
}

fn generate_truncated<B: Kernels>(
    s: &mut Scope<B>,
    config: &ModelConfig,
    z: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
    truncation: Truncation,
) -> Tensor<B, 4> {
    assert!(
        !s.is_tangent(),
        "StyleGAN2's G runs in forward mode from its ws (PathLength), not from z"
    );
    let (synthesis, mapping) = g_networks(config);
    let mut streams = image_streams(&z);
    let ws = styles(s, config, &mapping, z, y, truncation, &mut streams);
    let mut noise = Noise::Random(&mut streams);
    synthesis::forward(&mut s.at("synthesis"), &synthesis, ws, &mut noise)
}

/// The ws of latents `z` and labels `y`: the mapping network's, truncated, mixed with
/// a second latent's in a train-mode pass (its draws from `streams`, one per image).
fn styles<B: Kernels>(
    s: &mut Scope<B>,
    config: &ModelConfig,
    mapping: &Mapping,
    z: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
    truncation: Truncation,
    streams: &mut [Rng],
) -> Tensor<B, 3> {
    let c = config
        .conditional_g()
        .then(|| y.one_hot(config.num_classes).float());
    let update = s.mode.update;
    let ws = mapping::forward(
        &mut s.at("mapping"),
        mapping,
        z.clone(),
        c.clone(),
        truncation,
        update,
    );
    let p = section(config).style_mixing_p;
    if !(s.mode.batch_stats && p > 0.0) {
        return ws;
    }
    let [n, num_ws, _] = ws.dims();
    let z_dim = z.dims()[1];
    let (keep, other) = mixing_draws(streams, num_ws, p, z_dim);
    let device = z.device();
    let keep = Tensor::<B, 3>::from_data(TensorData::new(keep, [n, num_ws, 1]), &device);
    let other = Tensor::<B, 2>::from_data(TensorData::new(other, [n, z_dim]), &device);
    let none = Truncation::NONE;
    let mixed = mapping::forward(&mut s.at("mapping"), mapping, other, c, none, false);
    ws * keep.clone() + mixed * (keep.neg() + 1.0)
}

/// StyleGAN2's path length regularization (v0.4's `PathLengthRegularizer.cal_pl_reg`):
/// for images G(w) and directions y ~ N(0, 1)/√(h·w), the lengths ‖∇_w ⟨G(w), y⟩‖ (the
/// root of the mean over the ws of the squared norms), their running mean moved by
/// `decay` toward this batch's, and `weight` · mean (length − running mean)².
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathLength {
    pub weight: f64,
    pub decay: f64,
}

impl PathLength {
    /// The penalty for G's pass over latents `z` and labels `y` along `directions`
    /// (`[n, 3, r, r]`), as an addend of G's loss whose gradient in G's parameters
    /// (synthesis and, through w, mapping) is the penalty's; and the new running mean.
    ///
    /// The lengths' gradient in the parameters is a gradient of a gradient: ∂/∂θ of
    /// ⟨∇_w⟨G(w), y⟩, v⟩ with v = ∂penalty/∂(∇_w…) held fixed, which is ⟨y, J·v⟩, the
    /// synthesis network's derivative along v in forward mode.
    pub fn addend<B: Kernels>(
        &self,
        g: &mut Tensors<Autodiff<B>>,
        config: &ModelConfig,
        z: Tensor<B, 2>,
        y: Tensor<B, 1, Int>,
        directions: Tensor<B, 4>,
        mean: f64,
    ) -> (Tensor<Autodiff<B>, 1>, f64) {
        let (synthesis, mapping) = g_networks(config);
        let mut streams = image_streams(&z);
        let ws = styles(
            &mut Scope::new(g, Mode::REPLAY),
            config,
            &mapping,
            Tensor::from_inner(z),
            Tensor::from_inner(y),
            Truncation::NONE,
            &mut streams,
        );
        let [n, num_ws, _] = ws.dims();
        let directions = Tensor::<Autodiff<B>, 4>::from_inner(directions);

        // ∇_w ⟨G(w), y⟩, G's parameters held constant.
        let mut constant = Tensors::<Autodiff<B>>::from_inner(g.inner(), false);
        let leaf = Tensor::<Autodiff<B>, 3>::from_inner(ws.clone().inner()).require_grad();
        let img = synthesis::forward(
            &mut Scope::new(&mut constant, Mode::REPLAY).at("synthesis"),
            &synthesis,
            leaf.clone(),
            &mut Noise::Random(&mut streams.clone()),
        );
        let grad = leaf
            .grad(&(img * directions.clone()).sum().backward())
            .expect("the images depend on the ws");

        // [n, 1, 1]
        let lengths = grad.clone().powi_scalar(2).sum_dim(2).mean_dim(1).sqrt();
        let batch_mean = lengths.clone().mean().into_scalar().elem::<f64>();
        let mean = mean + self.decay * (batch_mean - mean);
        let excess = lengths.clone() - mean;
        let value = excess.clone().powi_scalar(2).mean() * self.weight;
        // The penalty's derivative in each length, through the new mean too (the
        // reference detaches the mean it keeps, not the one it uses):
        // 2·weight/n · ((len − mean) − decay · mean(len − mean)); times ∇/(num_ws·len).
        let shift = excess.clone().mean().into_scalar().elem::<f64>() * self.decay;
        let slope = (excess - shift) * (2.0 * self.weight / n as f64);
        let scale = slope / (lengths.clamp_min(1e-30) * num_ws as f64);
        let v = grad * scale;

        let stacked = Tensor::cat(vec![ws, Tensor::from_inner(v)], 0);
        let img = synthesis::forward(
            &mut Scope::tangent(g, Mode::REPLAY).at("synthesis"),
            &synthesis,
            stacked,
            &mut Noise::Random(&mut streams),
        );
        let along = (img.narrow(0, n, n) * directions).sum();
        let value = Tensor::from_inner(value.reshape([1]));
        (along.clone() - along.detach() + value, mean)
    }
}

/// D(x, y) for a Stylegan2 `config`.
pub fn judge<B: Kernels>(
    s: &mut Scope<B>,
    config: &ModelConfig,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
) -> crate::discriminator::Output<B> {
    let (body, head) = d_network(config);
    discriminator::forward(s, &body, &head, x, y)
}

/// One stream per image, seeded by the bits of its latent.
fn image_streams<B: Backend>(z: &Tensor<B, 2>) -> Vec<Rng> {
    let [n, dim] = z.dims();
    let values = z.clone().into_data().convert::<f32>();
    let values = values.as_slice::<f32>().expect("f32 latents");
    (0..n)
        .map(|i| {
            let seed = values[i * dim..(i + 1) * dim]
                .iter()
                .fold(0x5354_594C_4547_414Eu64, |h, v| {
                    Rng::stream(h, v.to_bits() as u64).next_u64()
                });
            Rng::new(seed)
        })
        .collect()
}

/// Per image: whether each w is its own (1) or the second latent's (0), the layers
/// from a cutoff drawn in 1..num_ws on with probability `p`; and the second latent,
/// drawn whatever the outcome (as the reference does).
fn mixing_draws(streams: &mut [Rng], num_ws: usize, p: f64, z_dim: usize) -> (Vec<f32>, Vec<f32>) {
    let mut keep = Vec::with_capacity(streams.len() * num_ws);
    let mut other = Vec::with_capacity(streams.len() * z_dim);
    for rng in streams {
        let cutoff = 1 + rng.below(num_ws as u64 - 1) as usize;
        let cutoff = if rng.f64() < p { cutoff } else { num_ws };
        keep.extend((0..num_ws).map(|i| if i < cutoff { 1.0 } else { 0.0 }));
        other.extend((0..z_dim).map(|_| rng.normal() as f32));
    }
    (keep, other)
}

#[cfg(test)]
pub(crate) mod tests {
    use burn::backend::Flex;
    use burn::prelude::*;
    use rng::Rng;

    /// N(0, 1) values of `shape`, from `seed`.
    pub(crate) fn draw<const D: usize>(seed: u64, shape: [usize; D]) -> Tensor<Flex, D> {
        let mut rng = Rng::new(seed);
        let n = shape.iter().product::<usize>();
        let values: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        Tensor::<Flex, 1>::from_floats(values.as_slice(), &Default::default()).reshape(shape)
    }
}
