//! The generators of the reference (models/{dcgan32,resgan32,resgan64,resgan128,biggan32,
//! biggan64,biggan128}.py):
//! a linear map of z to a 4×4 grid, upsampling blocks (transposed convolutions for
//! dcgan32, residual blocks otherwise), optional self-attention, a 3×3 convolution to RGB
//! and tanh. Conditioning is through BatchNorm: per-class tables (dcgan, resgan) or
//! BigGAN's shared embedding concatenated with a chunk of z per block.

use burn::prelude::*;

use kernels::Kernels;

use super::config::{Architecture, ModelConfig};
use super::init::Initializer;
use super::layers::{self, BN, Mode, Scope, SumShards};
use super::tensors::Tensors;

/// Channels in and out of each block; a reduced image size drops the first blocks.
fn widths(config: &ModelConfig) -> (Vec<usize>, Vec<usize>) {
    let g = config.g_conv_dim;
    let (mut ins, mut outs) = match config.architecture {
        Architecture::Dcgan32 => (vec![512, 256, 128], vec![256, 128, 64]),
        Architecture::Resgan32 | Architecture::Biggan32 => (vec![4 * g; 3], vec![4 * g; 3]),
        Architecture::Resgan64 | Architecture::Biggan64 => (
            vec![16 * g, 8 * g, 4 * g, 2 * g],
            vec![8 * g, 4 * g, 2 * g, g],
        ),
        Architecture::Resgan128 | Architecture::Biggan128 => (
            vec![16 * g, 16 * g, 8 * g, 4 * g, 2 * g],
            vec![16 * g, 8 * g, 4 * g, 2 * g, g],
        ),
        Architecture::Stylegan2 => unreachable!("{STYLEGAN2}"),
    };
    let dropped = config.dropped_blocks();
    ins.drain(..dropped);
    outs.drain(..dropped);
    (ins, outs)
}

pub fn block_count(architecture: Architecture) -> usize {
    match architecture {
        Architecture::Stylegan2 => unreachable!("{STYLEGAN2}"),
        Architecture::Resgan64 | Architecture::Biggan64 => 4,
        Architecture::Resgan128 | Architecture::Biggan128 => 5,
        _ => 3,
    }
}

/// The reference's names of the last BatchNorm and convolution.
fn tail_names(architecture: Architecture) -> (Option<&'static str>, &'static str) {
    match architecture {
        Architecture::Dcgan32 => (None, "conv4"),
        Architecture::Resgan32 | Architecture::Biggan32 => (Some("bn4"), "conv2d5"),
        Architecture::Resgan64
        | Architecture::Biggan64
        | Architecture::Resgan128
        | Architecture::Biggan128 => (Some("bn6"), "conv2d7"),
        Architecture::Stylegan2 => unreachable!("{STYLEGAN2}"),
    }
}

/// How a block's BatchNorm layers are conditioned.
#[derive(Clone)]
enum Condition<B: Kernels> {
    None,
    Class(Tensor<B, 1, Int>),
    /// BigGAN: `concat(shared(y), z_chunk)`.
    Shared(Tensor<B, 2>),
}

fn norm<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    x: Tensor<B, 4>,
    condition: &Condition<B>,
    config: &ModelConfig,
) -> Tensor<B, 4> {
    match condition {
        Condition::None => layers::batch_norm(s, name, x, true, BN),
        Condition::Class(y) => layers::class_batch_norm(s, name, x, y.clone(), config.num_classes),
        Condition::Shared(c) => {
            layers::shared_batch_norm(s, name, x, c.clone(), config.g_spectral_norm)
        }
    }
}

/// StyleGAN2's networks are its module's; the seed's architectures are this one's.
pub(crate) const STYLEGAN2: &str = "StyleGAN2's networks are built by gan::stylegan2";

/// G(z, y): images in [-1, 1] (StyleGAN2's are not squashed), `[n, 3, size, size]`.
pub fn forward<B: Kernels>(
    s: &mut Scope<B>,
    config: &ModelConfig,
    z: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
) -> Tensor<B, 4> {
    if config.architecture == Architecture::Stylegan2 {
        return crate::stylegan2::generate(s, config, z, y);
    }
    let sn = config.g_spectral_norm;
    let leaky = config.leaky_relu;
    let (ins, outs) = widths(config);
    let n = z.dims()[0];
    let shared = config.architecture.shares_embedding();
    // BigGAN: the first chunk of z feeds the linear layer, the others one block each.
    let (z0, conditions) = if shared {
        let chunk = config.z_dim / (ins.len() + 1);
        let embedded = if config.conditional_g() {
            Some(layers::embedding(
                s,
                "shared",
                y.clone(),
                config.num_classes,
                config.shared_dim,
                false,
            ))
        } else {
            None
        };
        let conditions = (1..=ins.len())
            .map(|k| {
                let part = z.clone().slice([0..n, k * chunk..(k + 1) * chunk]);
                match &embedded {
                    Some(e) => Condition::Shared(Tensor::cat(
                        vec![layers::without_tangent(s, e.clone()), part],
                        1,
                    )),
                    None => Condition::None,
                }
            })
            .collect();
        (z.slice([0..n, 0..chunk]), conditions)
    } else {
        let condition = if config.conditional_g() {
            Condition::Class(y)
        } else {
            Condition::None
        };
        (z, vec![condition; ins.len()])
    };

    let mut x = layers::linear(s, "linear0", z0, ins[0] * 16, true, sn).reshape([n, ins[0], 4, 4]);
    let mut index = 0;
    for (block, (&out, condition)) in outs.iter().zip(&conditions).enumerate() {
        let mut b = s.at(format!("blocks.{index}.0"));
        x = if config.architecture == Architecture::Dcgan32 {
            let h = layers::deconv(&mut b, "deconv0", x, out, 4, 2, 1, sn);
            let h = norm(&mut b, "bn0", h, condition, config);
            layers::activate(&b, h, leaky)
        } else {
            residual_block(&mut b, x, out, condition, config)
        };
        index += 1;
        if config
            .attention
            .is_some_and(|a| a.g_after_block == block + 1)
        {
            x = layers::self_attention(&mut s.at(format!("blocks.{index}.0")), x, sn);
            index += 1;
        }
    }
    let (bn, conv) = tail_names(config.architecture);
    if let Some(bn) = bn {
        x = layers::batch_norm(s, bn, x, true, BN);
        x = layers::activate(s, x, leaky);
    }
    let x = layers::conv(s, conv, x, 3, 3, 1, 1, true, sn);
    layers::tanh(s, x)
}

fn residual_block<B: Kernels>(
    s: &mut Scope<B>,
    x: Tensor<B, 4>,
    out: usize,
    condition: &Condition<B>,
    config: &ModelConfig,
) -> Tensor<B, 4> {
    let (sn, leaky) = (config.g_spectral_norm, config.leaky_relu);
    let h = norm(s, "bn1", x.clone(), condition, config);
    let h = layers::activate(s, h, leaky);
    let h = layers::conv(s, "conv2d1", layers::upsample(h), out, 3, 1, 1, true, sn);
    let h = norm(s, "bn2", h, condition, config);
    let h = layers::activate(s, h, leaky);
    let h = layers::conv(s, "conv2d2", h, out, 3, 1, 1, true, sn);
    let skip = layers::conv(s, "conv2d0", layers::upsample(x), out, 1, 1, 0, true, sn);
    h + skip
}

/// A new generator's state, initialized by `config.g_init` from `seed`.
pub fn build<B: Kernels>(config: &ModelConfig, seed: u64, device: &B::Device) -> Tensors<B> {
    let mut tensors = Tensors::new(device);
    let mut init = Initializer::new(config.g_init, seed);
    let z = Tensor::zeros([2, config.z_dim], device);
    let y = Tensor::zeros([2], device);
    forward(&mut Scope::building(&mut tensors, &mut init), config, z, y);
    tensors
}

/// Runs G in `mode` on `tensors`.
pub fn run<B: Kernels>(
    tensors: &mut Tensors<B>,
    mode: Mode,
    config: &ModelConfig,
    z: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
) -> Tensor<B, 4> {
    run_shard(tensors, mode, config, z, y, None)
}

/// G at `z` in forward mode along `direction` (both `[n, z_dim]`): images of 2n rows,
/// the n values then their n derivatives along `direction` (the forward mode of
/// [`layers`]). BatchNorm normalizes with the values' statistics.
pub fn tangent<B: Kernels>(
    tensors: &mut Tensors<B>,
    mode: Mode,
    config: &ModelConfig,
    z: Tensor<B, 2>,
    direction: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
) -> Tensor<B, 4> {
    let (stacked, y) = layers::tangent_inputs(z, direction, y);
    forward(&mut Scope::tangent(tensors, mode), config, stacked, y)
}

/// Runs G on one shard of a data-parallel step (`sync`: BatchNorm over every shard).
pub fn run_shard<B: Kernels>(
    tensors: &mut Tensors<B>,
    mode: Mode,
    config: &ModelConfig,
    z: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
    sync: Option<&dyn SumShards<B>>,
) -> Tensor<B, 4> {
    forward(&mut Scope::sharded(tensors, mode, sync), config, z, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Conditioning;
    use burn::backend::{Autodiff, Flex};

    /// G's forward mode against its reverse mode, ⟨w, J·d⟩ = ⟨Jᵀ·w, d⟩, for each way G is
    /// built (transposed convolutions, per-class and shared conditional BatchNorm,
    /// self-attention), with running and batch statistics. (Central differences in f32
    /// cross ReLU kinks and converge too slowly to check to better than a few percent.)
    #[test]
    fn forward_mode_agrees_with_reverse_mode() {
        let base = crate::train::tests::configs().0;
        let configs = [
            (Architecture::Dcgan32, Conditioning::Acgan),
            (Architecture::Resgan32, Conditioning::Projection),
            (Architecture::Biggan32, Conditioning::Contrastive),
            (Architecture::Biggan32, Conditioning::None),
        ];
        let device = Default::default();
        let n = 3;
        let draw = |seed: u64, shape: [usize; 2]| {
            let mut rng = rng::Rng::new(seed);
            let values: Vec<f32> = (0..shape[0] * shape[1])
                .map(|_| rng.normal() as f32)
                .collect();
            Tensor::<Flex, 1>::from_floats(values.as_slice(), &device).reshape(shape)
        };
        for (architecture, conditioning) in configs {
            let config = ModelConfig {
                architecture,
                conditioning,
                ..base.clone()
            };
            let mut tensors = build::<Flex>(&config, 3, &device);
            // Biases start at 0, where one wrongly added to a tangent would not show.
            let biases: Vec<(String, usize)> = tensors
                .iter()
                .filter(|(name, _)| name.ends_with("bias"))
                .map(|(name, entry)| (name.clone(), entry.shape.iter().product()))
                .collect();
            for (k, (name, len)) in biases.into_iter().enumerate() {
                tensors.set(&name, draw(10 + k as u64, [1, len]).reshape([len]) * 0.1);
            }
            let (z, direction) = (draw(1, [n, config.z_dim]), draw(2, [n, config.z_dim]));
            let y = Tensor::<Flex, 1, Int>::from_ints([0, 1, 3], &device);
            // Running statistics of this batch, so that eval mode is to scale.
            let settle = Mode {
                momentum: Some(1.0),
                ..Mode::TRAIN
            };
            run(&mut tensors, settle, &config, z.clone(), y.clone());
            for mode in [Mode::EVAL, Mode::REPLAY] {
                let images = tangent(
                    &mut tensors,
                    mode,
                    &config,
                    z.clone(),
                    direction.clone(),
                    y.clone(),
                );
                let along = images.narrow(0, n, n);
                let size = config.image_size();
                let w = draw(3, [n, 3 * size * size]).reshape([n, 3, size, size]);
                let forward = (along * w.clone()).sum().into_scalar();

                let mut constant = Tensors::<Autodiff<Flex>>::from_inner(tensors.clone(), false);
                let leaf = Tensor::<Autodiff<Flex>, 2>::from_inner(z.clone()).require_grad();
                let images = run(
                    &mut constant,
                    mode,
                    &config,
                    leaf.clone(),
                    Tensor::from_inner(y.clone()),
                );
                let pulled = leaf
                    .grad(&(images * Tensor::from_inner(w)).sum().backward())
                    .expect("G's images depend on z");
                let products = pulled * direction.clone();
                let scale = products.clone().abs().sum().into_scalar();
                let reverse = products.sum().into_scalar();
                assert!(
                    (forward - reverse).abs() <= 1e-4 * scale && scale > 0.0,
                    "{architecture:?} {conditioning:?} {mode:?}: ⟨w, J·d⟩ {forward} vs ⟨Jᵀ·w, d⟩ {reverse} (Σ|·| {scale})"
                );
            }
        }
    }
}
