//! The discriminators of the reference: convolutional blocks (dcgan32) or residual
//! blocks with average-pool downsampling (resgan, biggan), optional self-attention,
//! ReLU and global sum pooling to h, then the head of the conditioning:
//! adversarial logit `linear(h)`, plus ACGAN's class logits, the projection term
//! `⟨embed(y), h⟩`, or ContraGAN's image and class embeddings (L2-normalized). With
//! ADC the class head has two entries per class, and D is given the labels of
//! [`ModelConfig::d_labels`].

use burn::prelude::*;

use kernels::Kernels;

use super::config::{Architecture, Conditioning, ModelConfig};
use super::generator::STYLEGAN2;
use super::init::Initializer;
use super::layers::{self, BN, Mode, Scope, SumShards};
use super::tensors::Tensors;

/// What D says about a batch.
pub struct Output<B: Kernels> {
    /// The pooled activations the heads read, `[n, width]`.
    pub features: Tensor<B, 2>,
    /// One logit per image (including the projection term for cGAN).
    pub adv: Tensor<B, 1>,
    /// ACGAN's class logits.
    pub class_logits: Option<Tensor<B, 2>>,
    /// ContraGAN's image embeddings and the embeddings of the given classes (the
    /// reference's `cls_embed` and `cls_anchor`).
    pub contrastive: Option<(Tensor<B, 2>, Tensor<B, 2>)>,
}

/// (in, out, downsample) of each block; a reduced image size drops the last blocks.
fn blocks(config: &ModelConfig) -> Vec<(usize, usize, bool)> {
    let d = config.d_conv_dim;
    let mut blocks = match config.architecture {
        Architecture::Dcgan32 => vec![(3, 64, true), (64, 128, true), (128, 256, true)],
        Architecture::Resgan32 | Architecture::Biggan32 => vec![
            (3, 2 * d, true),
            (2 * d, 2 * d, true),
            (2 * d, 2 * d, false),
            (2 * d, 2 * d, false),
        ],
        Architecture::Resgan64 | Architecture::Biggan64 => vec![
            (3, d, true),
            (d, 2 * d, true),
            (2 * d, 4 * d, true),
            (4 * d, 8 * d, true),
            (8 * d, 16 * d, false),
        ],
        Architecture::Resgan128 | Architecture::Biggan128 => vec![
            (3, d, true),
            (d, 2 * d, true),
            (2 * d, 4 * d, true),
            (4 * d, 8 * d, true),
            (8 * d, 16 * d, true),
            (16 * d, 16 * d, false),
        ],
        Architecture::Stylegan2 => unreachable!("{STYLEGAN2}"),
    };
    blocks.truncate(blocks.len() - config.dropped_blocks());
    blocks
}

pub fn block_count(architecture: Architecture) -> usize {
    match architecture {
        Architecture::Dcgan32 => 3,
        Architecture::Resgan32 | Architecture::Biggan32 => 4,
        Architecture::Resgan64 | Architecture::Biggan64 => 5,
        Architecture::Resgan128 | Architecture::Biggan128 => 6,
        Architecture::Stylegan2 => unreachable!("{STYLEGAN2}"),
    }
}

/// The reference's names of the head layers: adversarial, embedding/class, nonlinear.
fn head_names(architecture: Architecture) -> [&'static str; 3] {
    match architecture {
        Architecture::Dcgan32 => ["linear5", "linear6", "linear7"],
        Architecture::Resgan32 | Architecture::Biggan32 => ["linear4", "linear5", "linear6"],
        Architecture::Resgan64
        | Architecture::Biggan64
        | Architecture::Resgan128
        | Architecture::Biggan128 => ["linear6", "linear7", "linear8"],
        Architecture::Stylegan2 => unreachable!("{STYLEGAN2}"),
    }
}

pub fn forward<B: Kernels>(
    s: &mut Scope<B>,
    config: &ModelConfig,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
) -> Output<B> {
    if config.architecture == Architecture::Stylegan2 {
        return crate::stylegan2::judge(s, config, x, y);
    }
    let sn = config.d_spectral_norm;
    let leaky = config.leaky_relu;
    let mut h = x;
    let mut index = 0;
    for (block, (_, out, down)) in blocks(config).into_iter().enumerate() {
        let mut b = s.at(format!("blocks.{index}.0"));
        h = match config.architecture {
            Architecture::Dcgan32 => conv_block(&mut b, h, out, config),
            _ if block == 0 => first_residual_block(&mut b, h, out, config),
            _ => residual_block(&mut b, h, out, down, config),
        };
        index += 1;
        if config
            .attention
            .is_some_and(|a| a.d_after_block == block + 1)
        {
            h = layers::self_attention(&mut s.at(format!("blocks.{index}.0")), h, sn);
            index += 1;
        }
    }
    if config.architecture == Architecture::Dcgan32 {
        h = layers::conv(s, "conv3", h, 512, 3, 1, 1, true, sn);
        if !sn {
            h = layers::batch_norm(s, "bn4", h, true, BN);
        }
    }
    let [n, c, _, _] = h.dims();
    let h = layers::activate(s, h, leaky)
        .sum_dims(&[2, 3])
        .reshape([n, c]);

    let [adv_name, embed_name, nonlinear_name] = head_names(config.architecture);
    let adv = layers::linear(s, adv_name, h.clone(), 1, true, sn).reshape([n]);
    let features = h.clone();
    match config.conditioning {
        Conditioning::None => Output {
            features,
            adv,
            class_logits: None,
            contrastive: None,
        },
        Conditioning::Acgan => Output {
            features,
            adv,
            class_logits: Some(layers::linear(
                s,
                embed_name,
                h,
                config.d_classes(),
                true,
                sn,
            )),
            contrastive: None,
        },
        Conditioning::Projection => {
            let e = layers::embedding(s, "embedding", y, config.num_classes, c, sn);
            let projection = (e * h).sum_dim(1).reshape([n]);
            Output {
                features,
                adv: adv + projection,
                class_logits: None,
                contrastive: None,
            }
        }
        Conditioning::Contrastive | Conditioning::D2dce => {
            let dim = config.hyper_dim;
            let anchor = layers::embedding(s, "embedding", y, config.d_classes(), dim, sn);
            let mut embed = layers::linear(s, embed_name, h, dim, true, sn);
            if config.nonlinear_embed {
                embed = layers::activate(s, embed, leaky);
                embed = layers::linear(s, nonlinear_name, embed, dim, true, sn);
            }
            let (embed, anchor) = if config.normalize_embed {
                (
                    layers::normalize_rows(embed),
                    layers::normalize_rows(anchor),
                )
            } else {
                (embed, anchor)
            };
            Output {
                features,
                adv,
                class_logits: None,
                contrastive: Some((embed, anchor)),
            }
        }
    }
}

/// dcgan32: 3×3 conv, 4×4 stride-2 conv, BatchNorm after each when there is no SN.
fn conv_block<B: Kernels>(
    s: &mut Scope<B>,
    x: Tensor<B, 4>,
    out: usize,
    config: &ModelConfig,
) -> Tensor<B, 4> {
    let (sn, leaky) = (config.d_spectral_norm, config.leaky_relu);
    let mut h = layers::conv(s, "conv0", x, out, 3, 1, 1, true, sn);
    if !sn {
        h = layers::batch_norm(s, "bn0", h, true, BN);
    }
    h = layers::activate(s, h, leaky);
    h = layers::conv(s, "conv1", h, out, 4, 2, 1, true, sn);
    if !sn {
        h = layers::batch_norm(s, "bn1", h, true, BN);
    }
    layers::activate(s, h, leaky)
}

/// The first residual block: no activation before the first convolution, and the
/// shortcut pools before its 1×1 convolution.
fn first_residual_block<B: Kernels>(
    s: &mut Scope<B>,
    x: Tensor<B, 4>,
    out: usize,
    config: &ModelConfig,
) -> Tensor<B, 4> {
    let (sn, leaky) = (config.d_spectral_norm, config.leaky_relu);
    let mut h = layers::conv(s, "conv2d1", x.clone(), out, 3, 1, 1, true, sn);
    if !sn {
        h = layers::batch_norm(s, "bn1", h, true, BN);
    }
    h = layers::activate(s, h, leaky);
    h = layers::conv(s, "conv2d2", h, out, 3, 1, 1, true, sn);
    let h = layers::avg_pool(h);
    let mut skip = layers::avg_pool(x);
    if !sn {
        skip = layers::batch_norm(s, "bn0", skip, true, BN);
    }
    h + layers::conv(s, "conv2d0", skip, out, 1, 1, 0, true, sn)
}

fn residual_block<B: Kernels>(
    s: &mut Scope<B>,
    x: Tensor<B, 4>,
    out: usize,
    down: bool,
    config: &ModelConfig,
) -> Tensor<B, 4> {
    let (sn, leaky) = (config.d_spectral_norm, config.leaky_relu);
    let bn = |s: &mut Scope<B>, name: &str, t: Tensor<B, 4>| {
        if sn {
            t
        } else {
            layers::batch_norm(s, name, t, true, BN)
        }
    };
    let inp = x.dims()[1];
    let h = bn(s, "bn1", x.clone());
    let h = layers::activate(s, h, leaky);
    // The reference's in-place ReLU: without BatchNorm in front of it, it overwrites
    // the block's input, so the shortcut sees the activated input too.
    let x = if sn { h.clone() } else { x };
    let h = layers::conv(s, "conv2d1", h, out, 3, 1, 1, true, sn);
    let h = bn(s, "bn2", h);
    let h = layers::activate(s, h, leaky);
    let mut h = layers::conv(s, "conv2d2", h, out, 3, 1, 1, true, sn);
    if down {
        h = layers::avg_pool(h);
    }
    let skip = if down || inp != out {
        let skip = bn(s, "bn0", x);
        let skip = layers::conv(s, "conv2d0", skip, out, 1, 1, 0, true, sn);
        if down { layers::avg_pool(skip) } else { skip }
    } else {
        x
    };
    h + skip
}

/// A new discriminator's state, initialized by `config.d_init` from `seed`.
pub fn build<B: Kernels>(config: &ModelConfig, seed: u64, device: &B::Device) -> Tensors<B> {
    let mut tensors = Tensors::new(device);
    let mut init = Initializer::new(config.d_init, seed);
    let size = config.image_size();
    let x = Tensor::zeros([2, 3, size, size], device);
    let y = Tensor::zeros([2], device);
    forward(&mut Scope::building(&mut tensors, &mut init), config, x, y);
    tensors
}

pub fn run<B: Kernels>(
    tensors: &mut Tensors<B>,
    mode: Mode,
    config: &ModelConfig,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
) -> Output<B> {
    run_shard(tensors, mode, config, x, y, None)
}

/// D on `x` in forward mode along `direction` (both `[n, 3, h, w]`): outputs of 2n rows,
/// the n values then their n derivatives along `direction` (the forward mode of
/// [`layers`]). BatchNorm normalizes with the values' statistics.
pub fn tangent<B: Kernels>(
    tensors: &mut Tensors<B>,
    mode: Mode,
    config: &ModelConfig,
    x: Tensor<B, 4>,
    direction: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
) -> Output<B> {
    let (stacked, y) = layers::tangent_inputs(x, direction, y);
    forward(&mut Scope::tangent(tensors, mode), config, stacked, y)
}

/// Runs D on one shard of a data-parallel step (`sync`: BatchNorm over every shard).
pub fn run_shard<B: Kernels>(
    tensors: &mut Tensors<B>,
    mode: Mode,
    config: &ModelConfig,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
    sync: Option<&dyn SumShards<B>>,
) -> Output<B> {
    forward(&mut Scope::sharded(tensors, mode, sync), config, x, y)
}
