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
//!
//! In a [`Scope::tangent`] the ws are stacked over their tangents and the images come
//! with their derivatives along them (what path length regularization takes): the
//! learned constant and the noise have none, the styles' follow the affine layers, and
//! modulation and demodulation follow the product rule.

use burn::prelude::*;
use kernels::Kernels;
use rng::Rng;

use super::layers::{
    Resample, activate, conv2d_resample, fully_connected, resample_filter, scale_channels,
};
use crate::bias_act::{Activation, BiasAct};
use crate::init::Init;
use crate::layers::{Scope, halves, stacked, without_tangent};
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
                let c = without_tangent(&s, c);
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
    let (styles, weight) = modulation(&mut s, w, [out, inp, 3, 3]);
    let constant = s.tensor(
        "noise_const",
        &[res, res],
        Role::Buffer,
        Init::Normal { std: 1.0 },
    );
    let strength = s
        .tensor("noise_strength", &[], Role::Param, Init::Zeros)
        .reshape([1, 1, 1, 1]);
    let images = if s.is_tangent() { n / 2 } else { n };
    let noise = match noise {
        Noise::Random(streams) => {
            let n = images;
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
    let x = modulated_conv2d(&s, x, weight, styles, resample, true);
    // Noise is added to the images, not to their tangents.
    let x = match noise {
        Some(noise) if s.is_tangent() => {
            let (values, tangents) = halves(x);
            stacked(values + noise, tangents)
        }
        Some(noise) => x + noise,
        None => x,
    };
    let bias = s.tensor("bias", &[out], Role::Param, Init::Zeros);
    activate(&s, x, Some(bias), &BiasAct::default_for(Activation::Lrelu))
}

/// A modulated layer's styles (its `affine` of w, biases starting at one: every
/// channel starts unscaled) and its weight of `shape`, `[out, in, k, k]`.
fn modulation<B: Kernels>(
    s: &mut Scope<B>,
    w: Tensor<B, 2>,
    shape: [usize; 4],
) -> (Tensor<B, 2>, Tensor<B, 4>) {
    let linear = Activation::Linear;
    let styles = fully_connected(s, "affine", w, shape[1], linear, 1.0, Some(Init::Ones));
    let weight = s
        .tensor("weight", &shape, Role::Param, Init::Normal { std: 1.0 })
        .reshape(shape);
    (styles, weight)
}

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
    let (styles, weight) = modulation(&mut s, w, [img_channels, inp, 1, 1]);
    let resample = Resample::of_layer(1, 1, 1);
    let x = modulated_conv2d(&s, x, weight, styles * gain, resample, false);
    let bias = s.tensor("bias", &[img_channels], Role::Param, Init::Zeros);
    activate(&s, x, Some(bias), &BiasAct::default_for(Activation::Linear))
}

/// `modulated_conv2d` as its unfused path computes it; in forward mode, with its
/// derivative by the product rule.
fn modulated_conv2d<B: Kernels>(
    s: &Scope<B>,
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    styles: Tensor<B, 2>,
    resample: Resample,
    demodulate: bool,
) -> Tensor<B, 4> {
    let [_, inp] = styles.dims();
    let [out, _, kh, kw] = weight.dims();
    let per_channel = scale_channels::<B>;
    // The activations scaled by the styles: (x·s)' = ẋ·s + x·ṡ.
    let (scaled, values) = if s.is_tangent() {
        let ((x, dx), (st, dst)) = (halves(x), halves(styles.clone()));
        let value = per_channel(x.clone(), st.clone());
        let tangent = per_channel(dx, st.clone()) + per_channel(x, dst.clone());
        (stacked(value, tangent), Some((st, dst)))
    } else {
        (per_channel(x, styles.clone()), None)
    };
    let y = conv2d_resample(scaled, weight.clone(), resample);
    if !demodulate {
        return y;
    }
    // Σ_{i,k} (w[o,i,k]·s[n,i])² = (s² · (Σ_k w²)ᵀ)[n, o].
    let squares = weight
        .powi_scalar(2)
        .reshape([out, inp, kh * kw])
        .sum_dim(2)
        .reshape([out, inp])
        .transpose();
    let coefficients =
        |st: Tensor<B, 2>| (product(st.powi_scalar(2), squares.clone()) + 1e-8).powf_scalar(-0.5);
    match values {
        None => per_channel(y, coefficients(styles)),
        Some((st, dst)) => {
            // d' = −d³ · (s·ṡ) (Σ_k w²)ᵀ.
            let d = coefficients(st.clone());
            let dd = -(d.clone().powi_scalar(3)) * product(st * dst, squares);
            let (y, dy) = halves(y);
            let value = per_channel(y.clone(), d.clone());
            stacked(value, per_channel(dy, d) + per_channel(y, dd))
        }
    }
}

/// a · b for the demodulation's small products. burn 0.21's fused matmul computes some
/// of them wrong when autodiff tracks them (on wgpu, the backend CUDA shares its fusion
/// with: images thousands of tolerances off, found by the parity tests), so on fused
/// backends they are broadcast products summed.
fn product<B: Kernels>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    if !B::FUSED {
        return a.matmul(b);
    }
    let ([n, k], [_, m]) = (a.dims(), b.dims());
    (a.reshape([n, k, 1]) * b.reshape([1, k, m]))
        .sum_dim(1)
        .reshape([n, m])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{Initializer, Scheme};
    use crate::layers::Mode;
    use crate::stylegan2::tests::draw;
    use crate::tensors::Tensors;
    use burn::backend::{Autodiff, Flex};

    /// The synthesis network's forward mode in w against its reverse mode,
    /// ⟨y, J·d⟩ = ⟨Jᵀ·y, d⟩, with biases and noise strengths that are not zero.
    #[test]
    fn forward_mode_agrees_with_reverse_mode() {
        let device = Default::default();
        let net = Synthesis {
            w_dim: 6,
            resolution: 16,
            img_channels: 3,
            channel_base: 64,
            channel_max: 8,
        };
        let n = 2;
        let ws = draw(1, [n, net.num_ws(), net.w_dim]);
        let mut tensors = Tensors::<Flex>::new(&device);
        let mut init = Initializer::new(Scheme::N02, 3);
        forward(
            &mut Scope::building(&mut tensors, &mut init),
            &net,
            ws.clone(),
            &mut Noise::Const,
        );
        let shifted: Vec<(String, usize)> = tensors
            .iter()
            .filter(|(name, _)| name.ends_with("bias") || name.ends_with("noise_strength"))
            .map(|(name, e)| (name.clone(), e.shape.iter().product::<usize>().max(1)))
            .collect();
        for (k, (name, len)) in shifted.into_iter().enumerate() {
            tensors.set(&name, draw(10 + k as u64, [len]) * 0.3);
        }
        let direction = draw(2, [n, net.num_ws(), net.w_dim]);
        let y = draw(3, [n, 3, 16, 16]);
        let stacked = Tensor::cat(vec![ws.clone(), direction.clone()], 0);
        let mut scope = Scope::tangent(&mut tensors, Mode::REPLAY);
        let images = forward(&mut scope, &net, stacked, &mut Noise::Const);
        let along = (images.narrow(0, n, n) * y.clone()).sum().into_scalar();

        let mut constant = Tensors::<Autodiff<Flex>>::from_inner(tensors.clone(), false);
        let leaf = Tensor::<Autodiff<Flex>, 3>::from_inner(ws).require_grad();
        let mut scope = Scope::new(&mut constant, Mode::REPLAY);
        let images = forward(&mut scope, &net, leaf.clone(), &mut Noise::Const);
        let g = leaf
            .grad(&(images * Tensor::from_inner(y)).sum().backward())
            .unwrap();
        let reverse = (g * direction).sum().into_scalar();
        let scale = along.abs().max(reverse.abs()).max(1e-3);
        assert!(
            (along - reverse).abs() / scale < 1e-4,
            "forward {along}, reverse {reverse}"
        );
    }
}
