//! StyleGAN2's synthesis network, as v0.4 builds it (`SynthesisNetwork` of
//! `SynthesisBlock`s in the "skip" architecture, the one StudioGAN uses): a learned
//! 4×4 constant, then per resolution an upsampling and a plain modulated convolution,
//! each followed by noise with a learned strength, bias and LeakyReLU; every block's
//! ToRGB adds to the upsampled image of the blocks before.
//!
//! Modulated convolution is computed as the reference does in training (its
//! `fused_modconv=False` path, the same numbers as the grouped one): the activations
//! are scaled by the styles, convolved with the shared weight, then scaled by the
//! demodulation coefficients 1/√(Σ (w·s)² + 1e-8).

use burn::prelude::*;
use kernels::Kernels;
use rng::Rng;

use super::layers::{Resample, activate, conv2d_resample, fully_connected, resample_filter};
use crate::bias_act::{Activation, BiasAct};
use crate::init::Init;
use crate::layers::Scope;
use crate::tensors::Role;
use crate::upfirdn2d::upsample2d;

/// The reference's `SynthesisNetwork` arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synthesis {
    pub w_dim: usize,
    pub resolution: usize,
    pub img_channels: usize,
    /// Channels at resolution r: min(channel_base / r, channel_max).
    pub channel_base: usize,
    pub channel_max: usize,
}

impl Synthesis {
    pub fn channels(&self, resolution: usize) -> usize {
        (self.channel_base / resolution).min(self.channel_max)
    }

    /// 4, 8, …, the image's resolution.
    fn block_resolutions(&self) -> impl Iterator<Item = usize> + use<> {
        let last = self.resolution;
        (2..)
            .map(|log2| 1usize << log2)
            .take_while(move |&r| r <= last)
    }

    /// How many ws the network takes: one per convolution, and one for the last ToRGB
    /// (each block's ToRGB shares the w of the next block's first convolution).
    pub fn num_ws(&self) -> usize {
        self.block_resolutions().map(convolutions).sum::<usize>() + 1
    }
}

/// A block's convolutions: the 4×4 block has no upsampling one.
fn convolutions(resolution: usize) -> usize {
    if resolution == 4 { 1 } else { 2 }
}

/// The noise added after each convolution (the reference's `noise_mode`).
pub enum Noise<'a> {
    /// Fresh N(0, 1) per pixel, drawn from each image's stream in layer order.
    Random(&'a mut [Rng]),
    /// Each layer's stored `noise_const`.
    Const,
    Off,
}

/// The images, `[n, img_channels, resolution, resolution]`, for `ws`
/// (`[n, num_ws, w_dim]`).
pub fn forward<B: Kernels>(
    s: &mut Scope<B>,
    net: &Synthesis,
    ws: Tensor<B, 3>,
    noise: &mut Noise,
) -> Tensor<B, 4> {
    let [n, num_ws, w_dim] = ws.dims();
    assert_eq!(
        (num_ws, w_dim),
        (net.num_ws(), net.w_dim),
        "the ws of this synthesis network"
    );
    let w = |i: usize| ws.clone().narrow(1, i, 1).reshape([n, w_dim]);
    let mut first_w = 0;
    let mut x: Option<Tensor<B, 4>> = None;
    let mut img: Option<Tensor<B, 4>> = None;
    for res in net.block_resolutions() {
        let mut s = s.at(format!("b{res}"));
        let out = net.channels(res);
        let h = match x {
            None => {
                let shape = [out, res, res];
                let c = s.tensor("const", &shape, Role::Param, Init::Normal { std: 1.0 });
                let c = c.reshape([1, out, res, res]).repeat_dim(0, n);
                layer(&mut s, "conv1", c, w(first_w), out, 1, noise)
            }
            Some(x) => {
                let x = layer(&mut s, "conv0", x, w(first_w), out, 2, noise);
                layer(&mut s, "conv1", x, w(first_w + 1), out, 1, noise)
            }
        };
        first_w += convolutions(res);
        let rgb = to_rgb(&mut s, h.clone(), w(first_w), net.img_channels);
        img = Some(match img {
            Some(img) => upsample2d(img, &resample_filter(), 2) + rgb,
            None => rgb,
        });
        x = Some(h);
    }
    img.expect("a synthesis network has a 4×4 block")
}

/// `SynthesisLayer` (3×3, upsampling by `up`): modulated convolution, noise, bias,
/// LeakyReLU with gain √2.
fn layer<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    x: Tensor<B, 4>,
    w: Tensor<B, 2>,
    out: usize,
    up: usize,
    noise: &mut Noise,
) -> Tensor<B, 4> {
    let mut s = s.at(name);
    let [n, inp, h, _] = x.dims();
    let res = h * up;
    let styles = fully_connected(
        &mut s,
        "affine",
        w,
        inp,
        Activation::Linear,
        1.0,
        STYLE_BIAS,
    );
    let shape = [out, inp, 3, 3];
    let weight = s
        .tensor("weight", &shape, Role::Param, Init::Normal { std: 1.0 })
        .reshape(shape);
    let constant = s.tensor(
        "noise_const",
        &[res, res],
        Role::Buffer,
        Init::Normal { std: 1.0 },
    );
    let strength = s
        .tensor("noise_strength", &[], Role::Param, Init::Zeros)
        .reshape([1, 1, 1, 1]);
    let noise = match noise {
        Noise::Random(streams) => {
            assert_eq!(streams.len(), n, "one noise stream per image");
            let draws: Vec<f32> = streams
                .iter_mut()
                .flat_map(|rng| {
                    (0..res * res)
                        .map(|_| rng.normal() as f32)
                        .collect::<Vec<_>>()
                })
                .collect();
            let t =
                Tensor::<B, 4>::from_data(TensorData::new(draws, [n, 1, res, res]), &s.device());
            Some(t * strength)
        }
        Noise::Const => Some(constant.reshape([1, 1, res, res]) * strength),
        Noise::Off => None,
    };
    let resample = Resample::of_layer(3, up, 1);
    let x = modulated_conv2d(x, weight, styles, resample, true);
    let x = match noise {
        Some(noise) => x + noise,
        None => x,
    };
    let bias = s.tensor("bias", &[out], Role::Param, Init::Zeros);
    activate(&s, x, Some(bias), &BiasAct::default_for(Activation::Lrelu))
}

/// The style affines' biases start at one: every channel starts unscaled.
const STYLE_BIAS: Option<Init> = Some(Init::Ones);

/// `ToRGBLayer` (1×1): modulated, not demodulated, convolution and bias.
fn to_rgb<B: Kernels>(
    s: &mut Scope<B>,
    x: Tensor<B, 4>,
    w: Tensor<B, 2>,
    img_channels: usize,
) -> Tensor<B, 4> {
    let mut s = s.at("torgb");
    let inp = x.dims()[1];
    let gain = 1.0 / (inp as f64).sqrt();
    let styles = fully_connected(
        &mut s,
        "affine",
        w,
        inp,
        Activation::Linear,
        1.0,
        STYLE_BIAS,
    );
    let shape = [img_channels, inp, 1, 1];
    let weight = s
        .tensor("weight", &shape, Role::Param, Init::Normal { std: 1.0 })
        .reshape(shape);
    let resample = Resample::of_layer(1, 1, 1);
    let x = modulated_conv2d(x, weight, styles * gain, resample, false);
    let bias = s.tensor("bias", &[img_channels], Role::Param, Init::Zeros);
    activate(&s, x, Some(bias), &BiasAct::default_for(Activation::Linear))
}

/// `modulated_conv2d` as its unfused path computes it.
fn modulated_conv2d<B: Kernels>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    styles: Tensor<B, 2>,
    resample: Resample,
    demodulate: bool,
) -> Tensor<B, 4> {
    let [n, inp] = styles.dims();
    let [out, _, kh, kw] = weight.dims();
    let x = x * styles.clone().reshape([n, inp, 1, 1]);
    let x = conv2d_resample(x, weight.clone(), resample);
    if !demodulate {
        return x;
    }
    // Σ_{i,k} (w[o,i,k]·s[n,i])² = (s² · (Σ_k w²)ᵀ)[n, o].
    let squares = weight
        .powi_scalar(2)
        .reshape([out, inp, kh * kw])
        .sum_dim(2)
        .reshape([out, inp]);
    let dcoefs = (styles.powi_scalar(2).matmul(squares.transpose()) + 1e-8)
        .sqrt()
        .recip();
    x * dcoefs.reshape([n, out, 1, 1])
}
