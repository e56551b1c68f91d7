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

/// One axis of [`upfirdn2d`] with a separable filter, on the host: `signal` upsampled
/// by `up`, padded by `padding` (negative crops), convolved with `taps` scaled by
/// `gain` (correlated with `flip_filter`), every `down`-th sample kept. Linear maps
/// of a known size are cheaper as matrices ([`axis_matrix`], [`along_axes`]) than as
/// convolutions.
pub fn upfirdn1d(
    signal: &[f64],
    taps: &[f64],
    (up, down): (usize, usize),
    (before, after): (isize, isize),
    flip_filter: bool,
    gain: f64,
) -> Vec<f64> {
    let upsampled = signal.len() * up;
    let padded = (upsampled as isize + before + after).max(0) as usize;
    let at = |j: usize| -> f64 {
        let source = j as isize - before;
        match usize::try_from(source) {
            Ok(s) if s < upsampled && s % up == 0 => signal[s / up],
            _ => 0.0,
        }
    };
    let k = taps.len();
    let tap = |t: usize| {
        gain * if flip_filter {
            taps[t]
        } else {
            taps[k - 1 - t]
        }
    };
    (0..(padded + 1).saturating_sub(k))
        .step_by(down)
        .map(|o| (0..k).map(|t| at(o + t) * tap(t)).sum())
        .collect()
}

/// The matrix of a linear map of signals of `len` samples, from its action on each
/// unit vector: `[out, len]` row-major, and `out`.
pub fn axis_matrix(len: usize, map: impl Fn(&[f64]) -> Vec<f64>) -> (Vec<f64>, usize) {
    let mut unit = vec![0.0; len];
    let columns: Vec<Vec<f64>> = (0..len)
        .map(|i| {
            unit[i] = 1.0;
            let column = map(&unit);
            unit[i] = 0.0;
            column
        })
        .collect();
    let out = columns.first().map_or(0, Vec::len);
    let rows = (0..out)
        .flat_map(|o| columns.iter().map(move |column| column[o]))
        .collect();
    (rows, out)
}

/// `x` (`[n, c, h, w]`) mapped along y and along x by matrices of [`axis_matrix`]
/// (`[ho, h]`, `[wo, w]`): two matrix products, whose backward is two more, and no
/// transposition of the images.
pub fn along_axes<B: Backend>(
    x: Tensor<B, 4>,
    (ys, ho): (&[f64], usize),
    (xs, wo): (&[f64], usize),
) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let matrix = |m: &[f64]| {
        let m: Vec<f32> = m.iter().map(|&v| v as f32).collect();
        Tensor::<B, 1>::from_floats(m.as_slice(), &device)
    };
    let ys = matrix(ys).reshape([1, ho, h]);
    let xs = matrix(xs).reshape([wo, w]).transpose();
    let x = ys.matmul(x.reshape([n * c, h, w]));
    x.reshape([n * c * ho, w])
        .matmul(xs)
        .reshape([n, c, ho, wo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    /// A separable [`upfirdn2d`] and the same along each axis by the matrices of
    /// [`upfirdn1d`] agree, for up- and downsampling, padding and cropping, both filter
    /// orientations and a gain.
    #[test]
    fn upfirdn_along_axes_is_upfirdn2d() {
        let device = Default::default();
        let mut rng = rng::Rng::new(7);
        let (n, c, h, w) = (2, 3, 7, 9);
        let values: Vec<f32> = (0..n * c * h * w).map(|_| rng.normal() as f32).collect();
        let x = Tensor::<Flex, 1>::from_floats(values.as_slice(), &device).reshape([n, c, h, w]);
        let taps = [0.1, -0.3, 0.7, 0.2, 0.05];
        let cases = [
            ((2, 1), (3, 2), false, 4.0),
            ((1, 2), (-1, 1), true, 1.0),
            ((2, 2), (2, -3), true, 2.0),
        ];
        for (ratio @ (up, down), padding, flip_filter, gain) in cases {
            let r = Resampling {
                up: (up, up),
                down: (down, down),
                padding: (padding.0, padding.1, padding.0, padding.1),
                flip_filter,
                gain,
            };
            let want = upfirdn2d(x.clone(), &Filter::Separable(taps.to_vec()), &r);
            let axis = |len| {
                axis_matrix(len, |v| {
                    upfirdn1d(v, &taps, ratio, padding, flip_filter, gain.sqrt())
                })
            };
            let ((ys, ho), (xs, wo)) = (axis(h), axis(w));
            let got = along_axes(x.clone(), (&ys, ho), (&xs, wo));
            assert_eq!(got.dims(), want.dims(), "{r:?}");
            let diff: f32 = (got - want).abs().max().into_scalar();
            assert!(diff < 1e-5, "{r:?}: {diff}");
        }
    }
}
