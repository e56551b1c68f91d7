//! The layers StyleGAN2's networks are built of, as v0.4's `models/stylegan2.py` and
//! `utils/style_ops/conv2d_resample.py` define them: fully connected and convolution
//! layers with equalized learning rate, and convolution with FIR up- or downsampling.
//!
//! The layers are linear in their inputs but for the activations, which map tangents
//! by their slope ([`activate`]), so D runs in forward mode as the seed's networks do
//! (see [`crate::layers`]).
//!
//! Equalized learning rate: a weight is stored as drawn, N(0, 1/lr_multiplier²), and
//! scaled by lr_multiplier/√fan_in when used; a bias is scaled by lr_multiplier. Adam
//! then moves each layer as if its learning rate were multiplied, which is what the
//! authors' checkpoints hold and import name for name.

use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use kernels::{Kernels, channel_affine, conv2d, deconv2d};

use crate::bias_act::{Activation, BiasAct, bias_act, bias_act_tangent};
use crate::init::Init;
use crate::layers::{Scope, halves, stacked};
use crate::tensors::Role;
use crate::upfirdn2d::{Filter, Resampling, down_padding, up_padding, upfirdn2d};

/// The low-pass filter of every resampling in StyleGAN2 (`resample_filter=[1, 3, 3, 1]`,
/// normalized to sum 1 in 2-D; as separable taps, each pass sums to 1).
pub fn resample_filter() -> Filter {
    Filter::Separable(vec![1.0 / 8.0, 3.0 / 8.0, 3.0 / 8.0, 1.0 / 8.0])
}

/// `FullyConnectedLayer(in, out, bias, activation, lr_multiplier, bias_init)`; `bias`
/// is the initial value (`Init::Zeros`, or `Init::Ones` for the style affines), `None`
/// for a layer without one.
pub fn fully_connected<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    x: Tensor<B, 2>,
    out: usize,
    act: Activation,
    lr_multiplier: f64,
    bias: Option<Init>,
) -> Tensor<B, 2> {
    let mut s = s.at(name);
    let inp = x.dims()[1];
    let init = Init::Normal {
        std: 1.0 / lr_multiplier,
    };
    let w = s
        .tensor("weight", &[out, inp], Role::Param, init)
        .reshape([out, inp]);
    let w = w * (lr_multiplier / (inp as f64).sqrt());
    let b = bias.map(|init| s.tensor("bias", &[out], Role::Param, init) * lr_multiplier);
    activate(&s, x.matmul(w.transpose()), b, &BiasAct::default_for(act))
}

/// [`bias_act`] along the channels (dimension 1); in a [`Scope::tangent`] the values
/// take it and the tangents its slope ([`bias_act_tangent`]). The bias goes in through
/// the per-channel kernel, not a broadcast addition (a strided loop on the CPU).
pub fn activate<B: Kernels, const D: usize>(
    s: &Scope<B>,
    x: Tensor<B, D>,
    bias: Option<Tensor<B, 1>>,
    spec: &BiasAct,
) -> Tensor<B, D> {
    let biased = |x: Tensor<B, D>| match bias.clone() {
        Some(b) => add_channel_bias(x, b),
        None => x,
    };
    if !s.is_tangent() {
        return bias_act(biased(x), None, 1, spec);
    }
    let (values, tangents) = halves(x);
    let values = biased(values);
    let tangents = bias_act_tangent(values.clone(), tangents, None, 1, spec);
    stacked(bias_act(values, None, 1, spec), tangents)
}

/// `x + b` along dimension 1 of `x` (`[n, c, …]`).
fn add_channel_bias<B: Kernels, const D: usize>(x: Tensor<B, D>, b: Tensor<B, 1>) -> Tensor<B, D> {
    let dims = x.dims();
    let (n, c) = (dims[0], dims[1]);
    let rest = dims[2..].iter().product::<usize>();
    let b = b.reshape([1, c]);
    let flat = x.reshape([n, c, rest, 1]);
    channel_affine(flat, b.ones_like(), b).reshape(dims)
}

/// `x · s` per image and channel: x `[n, c, h, w]`, s `[n, c]`.
pub fn scale_channels<B: Kernels>(x: Tensor<B, 4>, s: Tensor<B, 2>) -> Tensor<B, 4> {
    channel_affine(x, s.clone(), s.zeros_like())
}

/// Each row scaled to unit mean square (`normalize_2nd_moment`, eps 1e-8).
pub fn normalize_2nd_moment<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let scale = (x.clone().powi_scalar(2).mean_dim(1) + 1e-8).sqrt().recip();
    x * scale
}

/// How [`conv2d_resample`] resamples around its convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resample {
    pub up: usize,
    pub down: usize,
    /// Zeros around the (upsampled) image, on every side.
    pub padding: usize,
    /// Correlate as `conv2d` does (else convolve: the kernel is flipped).
    pub flip_weight: bool,
}

impl Resample {
    /// A layer's resampling: `padding` k/2, and the reference's `flip_weight = up == 1`.
    pub fn of_layer(kernel: usize, up: usize, down: usize) -> Resample {
        Resample {
            up,
            down,
            padding: kernel / 2,
            flip_weight: up == 1,
        }
    }
}

/// `conv2d_resample(x, w, f, up, down, padding, flip_weight)` with the resample filter:
/// the same sequence of operations the reference picks for each case (its fast paths),
/// so that padding and rounding match it exactly.
pub fn conv2d_resample<B: Kernels>(x: Tensor<B, 4>, w: Tensor<B, 4>, r: Resample) -> Tensor<B, 4> {
    let f = resample_filter();
    let [_, _, kh, kw] = w.dims();
    // The filter and the kernel are square: one padding serves both axes.
    let taps = f.size().0;
    let p = r.padding as isize;
    let (mut px0, mut px1) = (p, p);
    if r.up > 1 {
        let (before, after) = up_padding(taps, r.up);
        px0 += before;
        px1 += after;
    }
    if r.down > 1 {
        let (before, after) = down_padding(taps, r.down);
        px0 += before;
        px1 += after;
    }
    let fir = |x, up, down, (p0, p1): (isize, isize), gain| {
        let r = Resampling {
            up: (up, up),
            down: (down, down),
            padding: (p0, p1, p0, p1),
            flip_filter: false,
            gain,
        };
        upfirdn2d(x, &f, &r)
    };
    let conv = |x, w: Tensor<B, 4>, stride: usize, padding: usize| {
        let w = if !r.flip_weight && (kh > 1 || kw > 1) {
            w.flip([2, 3])
        } else {
            w
        };
        let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
        conv2d(x, w, None, options)
    };
    let up_gain = (r.up * r.up) as f64;
    let pointwise = kh == 1 && kw == 1;
    if pointwise && r.down > 1 && r.up == 1 {
        let x = fir(x, 1, r.down, (px0, px1), 1.0);
        return conv(x, w, 1, 0);
    }
    if pointwise && r.up > 1 && r.down == 1 {
        let x = conv(x, w, 1, 0);
        return fir(x, r.up, 1, (px0, px1), up_gain);
    }
    if r.down > 1 && r.up == 1 {
        let x = fir(x, 1, 1, (px0, px1), 1.0);
        return conv(x, w, r.down, 0);
    }
    if r.up > 1 {
        // A transposed strided convolution, then the filter over what it spread.
        px0 -= kw as isize - 1;
        px1 -= (kw - r.up) as isize;
        let pt = (-px0).min(-px1).max(0);
        let w = if r.flip_weight && (kh > 1 || kw > 1) {
            w.flip([2, 3])
        } else {
            w
        };
        let x = deconv2d(x, w.swap_dims(0, 1), r.up, pt as usize);
        let x = fir(x, 1, 1, (px0 + pt, px1 + pt), up_gain);
        return match r.down {
            1 => x,
            down => fir(x, 1, down, (0, 0), 1.0),
        };
    }
    conv(x, w, 1, px0 as usize)
}

/// `Conv2dLayer(in, out, kernel, bias, activation, up, down)` called with `gain`:
/// equalized learning rate (weight scaled by 1/√(in·k²)), the activation's gain times
/// `gain`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_layer<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    x: Tensor<B, 4>,
    out: usize,
    kernel: usize,
    bias: bool,
    act: Activation,
    (up, down): (usize, usize),
    gain: f64,
) -> Tensor<B, 4> {
    let mut s = s.at(name);
    let inp = x.dims()[1];
    let shape = [out, inp, kernel, kernel];
    let w = s
        .tensor("weight", &shape, Role::Param, Init::Normal { std: 1.0 })
        .reshape(shape);
    let w = w * (1.0 / ((inp * kernel * kernel) as f64).sqrt());
    let b = bias.then(|| s.tensor("bias", &[out], Role::Param, Init::Zeros));
    let x = conv2d_resample(x, w, Resample::of_layer(kernel, up, down));
    let spec = BiasAct {
        gain: Some(act.default_gain() * gain),
        ..BiasAct::default_for(act)
    };
    activate(&s, x, b, &spec)
}
