//! StyleGAN2's FIR resampling, as StudioGAN v0.4 does it (`utils/style_ops/upfirdn2d.py`,
//! its reference path `_upfirdn2d_ref`, the one it takes off CUDA): upsample by
//! inserting zeros, pad (or crop), convolve each channel with a FIR filter, downsample
//! by keeping every n-th pixel. The first piece of the StyleGAN2 family (issue 29): its
//! synthesis network's up- and downsampling and its discriminator's blur all go through
//! it. Every step is a linear map of the images, so the stacked `[x; ẋ]` of forward-mode
//! differentiation passes through unchanged, and burn's autodiff gives the backward.

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};

/// A FIR filter: one tap list applied along x then y (the "separable" filters of
/// `setup_filter`, the usual case), or a full 2-D kernel (rows along y).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Separable(Vec<f64>),
    Full(Vec<Vec<f64>>),
}

impl Filter {
    /// Its taps along x and along y.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Filter::Separable(taps) => (taps.len(), taps.len()),
            Filter::Full(rows) => (rows.first().map_or(0, Vec::len), rows.len()),
        }
    }
}

/// How [`upfirdn2d`] resamples, per axis as `(x, y)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resampling {
    pub up: (usize, usize),
    pub down: (usize, usize),
    /// `(x0, x1, y0, y1)` pixels added after upsampling; negative crops.
    pub padding: (isize, isize, isize, isize),
    /// Correlate rather than convolve (the reference's `flip_filter`).
    pub flip_filter: bool,
    /// The filter is scaled by `gain` overall (its square root per pass when separable).
    pub gain: f64,
}

/// `upfirdn2d(x, f, up, down, padding, flip_filter, gain)` on `[n, c, h, w]` images.
pub fn upfirdn2d<B: Backend>(x: Tensor<B, 4>, filter: &Filter, r: &Resampling) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let (upx, upy) = r.up;
    let device = x.device();
    // Zeros after each pixel: [n, c, h, 1, w, 1] placed in [n, c, h, up_y, w, up_x].
    let x = if (upx, upy) == (1, 1) {
        x
    } else {
        Tensor::<B, 6>::zeros([n, c, h, upy, w, upx], &device)
            .slice_assign(
                [0..n, 0..c, 0..h, 0..1, 0..w, 0..1],
                x.reshape([n, c, h, 1, w, 1]),
            )
            .reshape([n, c, h * upy, w * upx])
    };
    let (x0, x1, y0, y1) = r.padding;
    let grow = |p: isize| p.max(0) as usize;
    let x = x.pad(
        (grow(x0), grow(x1), grow(y0), grow(y1)),
        PadMode::Constant(0.0),
    );
    let [_, _, ph, pw] = x.dims();
    let crop = |p: isize| (-p).max(0) as usize;
    let x = x.slice([0..n, 0..c, crop(y0)..ph - crop(y1), crop(x0)..pw - crop(x1)]);
    // Convolution is correlation with the flipped filter.
    let flipped = |taps: &[f64]| -> Vec<f64> {
        match r.flip_filter {
            true => taps.to_vec(),
            false => taps.iter().rev().copied().collect(),
        }
    };
    let depthwise = |x: Tensor<B, 4>, taps: Vec<f64>, (kh, kw): (usize, usize)| {
        let weight = Tensor::<B, 1>::from_floats(
            taps.iter()
                .map(|&v| v as f32)
                .collect::<Vec<_>>()
                .as_slice(),
            &device,
        )
        .reshape([1, 1, kh, kw])
        .repeat_dim(0, c);
        conv2d(x, weight, None, ConvOptions::new([1, 1], [0, 0], [1, 1], c))
    };
    let x = match filter {
        Filter::Separable(taps) => {
            let scaled: Vec<f64> = taps.iter().map(|v| v * r.gain.sqrt()).collect();
            let k = taps.len();
            let x = depthwise(x, flipped(&scaled), (1, k));
            depthwise(x, flipped(&scaled), (k, 1))
        }
        Filter::Full(rows) => {
            let (kh, kw) = (rows.len(), rows.first().map_or(0, Vec::len));
            let rows: Vec<Vec<f64>> = match r.flip_filter {
                true => rows.clone(),
                false => rows.iter().rev().map(|row| flipped(row)).collect(),
            };
            let taps = rows.concat().iter().map(|v| v * r.gain).collect();
            depthwise(x, taps, (kh, kw))
        }
    };
    downsample(x, r.down)
}

/// `upsample2d(x, f, up)`: `up`× larger, padded so that the output is exactly that.
pub fn upsample2d<B: Backend>(x: Tensor<B, 4>, filter: &Filter, up: usize) -> Tensor<B, 4> {
    let (fw, fh) = filter.size();
    let ((x0, x1), (y0, y1)) = (up_padding(fw, up), up_padding(fh, up));
    let r = Resampling {
        up: (up, up),
        down: (1, 1),
        padding: (x0, x1, y0, y1),
        flip_filter: false,
        gain: (up * up) as f64,
    };
    upfirdn2d(x, filter, &r)
}

/// `downsample2d(x, f, down)`: `down`× smaller, padded so that the output is exactly
/// that.
pub fn downsample2d<B: Backend>(x: Tensor<B, 4>, filter: &Filter, down: usize) -> Tensor<B, 4> {
    let (fw, fh) = filter.size();
    let ((x0, x1), (y0, y1)) = (down_padding(fw, down), down_padding(fh, down));
    let r = Resampling {
        up: (1, 1),
        down: (down, down),
        padding: (x0, x1, y0, y1),
        flip_filter: false,
        gain: 1.0,
    };
    upfirdn2d(x, filter, &r)
}

/// The padding before and after, along an axis of `taps` filter taps, that makes
/// upsampling by `up` give exactly `up` times the pixels.
pub fn up_padding(taps: usize, up: usize) -> (isize, isize) {
    let (taps, up) = (taps as isize, up as isize);
    ((taps + up - 1).div_euclid(2), (taps - up).div_euclid(2))
}

/// The padding before and after, along an axis of `taps` filter taps, that makes
/// downsampling by `down` give exactly a `down`-th of the pixels.
pub fn down_padding(taps: usize, down: usize) -> (isize, isize) {
    let (taps, down) = (taps as isize, down as isize);
    ((taps - down + 1).div_euclid(2), (taps - down).div_euclid(2))
}

/// Every `down`-th pixel from the first, per axis.
fn downsample<B: Backend>(x: Tensor<B, 4>, (downx, downy): (usize, usize)) -> Tensor<B, 4> {
    let device = x.device();
    let every = |size: usize, step: usize| {
        let kept: Vec<i32> = (0..size).step_by(step).map(|i| i as i32).collect();
        Tensor::<B, 1, Int>::from_ints(kept.as_slice(), &device)
    };
    let [_, _, h, w] = x.dims();
    let x = if downy > 1 {
        x.select(2, every(h, downy))
    } else {
        x
    };
    if downx > 1 {
        x.select(3, every(w, downx))
    } else {
        x
    }
}
