//! Convolutions with few channels on one side (a discriminator's RGB input, a
//! generator's RGB output), computed directly instead of by im2col + GEMM.
//!
//! With three channels on one side the GEMM has three rows (or a `[K, 3]` factor) and
//! runs at a few GFLOP/s, while its cols, nine times the wide side's activations, are
//! written and read again: SNDCGAN32's last layer of G took 30 ms for ∂x and 16 ms for
//! ∂w at batch 64, more than layers with fifty times its FLOPs. Here each image's
//! planes are padded once and every kernel tap is one multiply-add of a whole shifted
//! plane into an accumulator that stays in the L1 cache.
//!
//! Each tap is one contiguous run through the wide layout of [`crate::wide`].

use rayon::prelude::*;

use crate::conv::{Epilogue, Geometry, sum_over_shares};
use crate::wide::{Wide, pad};

/// Whether a convolution goes here: at most four channels on one side, and ∂x a
/// convolution too ([`Geometry::adjoint`]: stride 1, padding smaller than the kernel).
pub fn applies(g: &Geometry) -> bool {
    g.c.min(g.o) <= 4 && g.adjoint().is_some()
}

/// The convolution itself, `[n, o, ho, wo]`, with the bias and ReLU of `then`.
pub fn forward(x: &[f32], weight: &[f32], then: Epilogue, g: &Geometry) -> Vec<f32> {
    let wide = Wide::of(g);
    let (ho, wo) = (g.out_h(), g.out_w());
    let taps = g.kh * g.kw;
    let mut y = vec![0.0; g.n * g.o * ho * wo];
    y.par_chunks_mut(g.o * ho * wo).enumerate().for_each_init(
        || (vec![0.0; g.c * wide.plane()], vec![0.0; wide.len]),
        |(padded, acc), (m, image)| {
            pad(
                &x[m * g.c * g.h * g.w..][..g.c * g.h * g.w],
                g,
                &wide,
                padded,
            );
            for (oc, out) in image.chunks_mut(ho * wo).enumerate() {
                acc.fill(0.0);
                for ic in 0..g.c {
                    let plane = &padded[ic * wide.plane()..][..wide.plane()];
                    let w = &weight[(oc * g.c + ic) * taps..][..taps];
                    for (tap, &wv) in w.iter().enumerate() {
                        let shift = wide.shift(tap / g.kw, tap % g.kw);
                        axpy(acc, wv, &plane[shift..][..wide.len]);
                    }
                }
                for (row, wide_row) in out.chunks_mut(wo).zip(acc.chunks(wide.wp)) {
                    then.write(oc, &wide_row[..wo], row);
                }
            }
        },
    );
    y
}

/// ∂loss/∂x from ∂loss/∂y, as a convolution of ∂y (see [`Geometry::adjoint`]).
pub fn grad_x(weight: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let adjoint = g.adjoint().expect("thin convolutions have stride 1");
    forward(dy, &g.flip(weight), Epilogue::NONE, &adjoint)
}

/// ∂loss/∂weight from ∂loss/∂y: per image, the dot product of each output channel's
/// wide ∂y with each input plane under each tap, summed over shares of the images
/// ([`sum_over_shares`]).
pub fn grad_weight(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let wide = Wide::of(g);
    let (ho, wo) = (g.out_h(), g.out_w());
    let taps = g.kh * g.kw;
    sum_over_shares(g.n, g.o * g.c * taps, |images, dw| {
        let mut padded = vec![0.0; g.c * wide.plane()];
        // The garbage columns between wide rows stay zero.
        let mut dy_wide = vec![0.0; g.o * wide.len];
        for m in images {
            pad(
                &x[m * g.c * g.h * g.w..][..g.c * g.h * g.w],
                g,
                &wide,
                &mut padded,
            );
            let image = &dy[m * g.o * ho * wo..][..g.o * ho * wo];
            for (plane, dst) in image.chunks(ho * wo).zip(dy_wide.chunks_mut(wide.len)) {
                for (line, row) in plane.chunks(wo).zip(dst.chunks_mut(wide.wp)) {
                    row[..wo].copy_from_slice(line);
                }
            }
            for (oc, grad) in dy_wide.chunks(wide.len).enumerate() {
                for ic in 0..g.c {
                    let plane = &padded[ic * wide.plane()..][..wide.plane()];
                    let dw = &mut dw[(oc * g.c + ic) * taps..][..taps];
                    for (tap, d) in dw.iter_mut().enumerate() {
                        let shift = wide.shift(tap / g.kw, tap % g.kw);
                        *d += dot(grad, &plane[shift..][..wide.len]);
                    }
                }
            }
        }
    })
}

/// `acc += a·x`, with fused multiply-adds where the processor has them.
fn axpy(acc: &mut [f32], a: f32, x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has the features the function is compiled for.
        unsafe { axpy_fma(acc, a, x) };
        return;
    }
    acc.iter_mut().zip(x).for_each(|(s, &v)| *s += a * v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn axpy_fma(acc: &mut [f32], a: f32, x: &[f32]) {
    acc.iter_mut()
        .zip(x)
        .for_each(|(s, &v)| *s = v.mul_add(a, *s));
}

/// `Σ a·b` over sixteen running sums (so that it vectorizes), with fused
/// multiply-adds where the processor has them.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has the features the function is compiled for.
        return unsafe { dot_fma(a, b) };
    }
    dot_lanes(a, b, |x, y, s| s + x * y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_fma(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b, f32::mul_add)
}

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32], madd: impl Fn(f32, f32, f32) -> f32) -> f32 {
    const LANES: usize = 16;
    let mut sums = [0.0f32; LANES];
    let (a_body, a_tail) = a.split_at(a.len() / LANES * LANES);
    let b_body = &b[..a_body.len()];
    for (x, y) in a_body.chunks_exact(LANES).zip(b_body.chunks_exact(LANES)) {
        for l in 0..LANES {
            sums[l] = madd(x[l], y[l], sums[l]);
        }
    }
    let tail = a_tail
        .iter()
        .zip(&b[a_body.len()..])
        .fold(0.0, |s, (&x, &y)| madd(x, y, s));
    sums.iter().sum::<f32>() + tail
}
