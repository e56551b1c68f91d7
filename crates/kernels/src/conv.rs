//! A 2-D convolution and its gradients on the CPU as im2col + GEMM (faer's f32 kernels):
//! `[out, K] × [K, pixels]` for the output, image by image or a chunk of images at a
//! time (see [`Geometry::by_image`]), with the bias and ReLU applied as it is written;
//! one large GEMM per chunk of images for the gradients, `[K, out] × [out,
//! images·pixels]` for the input and `[out, images·pixels] × [images·pixels, K]` for the
//! weight.
//!
//! Layouts: x `[n, c, h, w]`, weight `[o, c, kh, kw]`, y `[n, o, ho, wo]`, row-major.
//! "cols" is `[c·kh·kw, images·ho·wo]`: row `(c, i, j)` holds, for every output pixel,
//! the input pixel under kernel tap `(i, j)` of channel `c` (0 in the padding).

use std::ops::Range;

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::thin;

/// Shapes and options of one convolution (dilation 1, one group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Geometry {
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding[0] - self.kh) / self.stride[0] + 1
    }

    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding[1] - self.kw) / self.stride[1] + 1
    }

    /// The output columns `lo..hi` (of the first `wo`) whose tap `kj` falls inside the
    /// input line: column `ox` reads input column `ox·stride + kj − padding`, so the
    /// loops over a line need no bounds test per pixel.
    fn valid(&self, kj: usize, wo: usize) -> (usize, usize) {
        let s = self.stride[1];
        let lo = self.padding[1].saturating_sub(kj).div_ceil(s).min(wo);
        let hi = (self.w + self.padding[1])
            .saturating_sub(kj)
            .div_ceil(s)
            .min(wo)
            .max(lo);
        (lo, hi)
    }

    /// The input column of output column `ox` under tap `kj` (inside `valid`'s range).
    fn input_column(&self, ox: usize, kj: usize) -> usize {
        ox * self.stride[1] + kj - self.padding[1]
    }

    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    fn pixels(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// Images per chunk, so that a chunk's cols stay around 16 MiB.
    fn chunk(&self) -> usize {
        (4 << 20) / (self.k() * self.pixels()).max(1)
    }

    /// Whether the forward pass goes image by image, the images spread over the
    /// threads: when there are enough of them to keep every thread busy and each one's
    /// GEMM is large enough to run at full speed alone (measured on the FID network and
    /// BigGAN's discriminator: 1.3–1.6× faster than chunks). Otherwise images go in
    /// chunks, one GEMM on all threads each, which suits the quickstart's small layers.
    fn by_image(&self, threads: usize) -> bool {
        let flops = 2 * self.o * self.k() * self.pixels();
        self.n >= 2 * threads && flops >= 8 << 20
    }

    /// Whether the gradients go image by image, as the forward pass does (see
    /// [`Geometry::by_image`]), when one image's cols stay within 4 MiB (each thread
    /// then keeps them in cache between the GEMM and the pass that reads them) and
    /// it has 64 output pixels or more (narrower GEMMs ran slower than one over a
    /// chunk). Otherwise chunks of images, one GEMM on all threads each.
    fn grads_by_image(&self, threads: usize) -> bool {
        self.by_image(threads) && self.k() * self.pixels() <= 1 << 20 && self.pixels() >= 64
    }

    /// Output rows per tile: the tile's cols fill at most 256 KiB, unless that leaves
    /// fewer than 512 pixels, too narrow a GEMM.
    fn tile_rows(&self) -> usize {
        let within_cache = (64 << 10) / (self.k() * self.out_w()).max(1);
        within_cache
            .max(512 / self.out_w().max(1))
            .clamp(1, self.out_h())
    }

    /// With stride 1 and padding smaller than the kernel, ∂x is itself a convolution:
    /// of ∂y, with the kernel flipped and its channels swapped ([`Geometry::flip`]),
    /// padded by `k − 1 − padding`. This is its geometry.
    pub fn adjoint(&self) -> Option<Geometry> {
        let fits = self.stride == [1, 1] && self.padding[0] < self.kh && self.padding[1] < self.kw;
        fits.then(|| Geometry {
            n: self.n,
            c: self.o,
            h: self.out_h(),
            w: self.out_w(),
            o: self.c,
            kh: self.kh,
            kw: self.kw,
            stride: [1, 1],
            padding: [self.kh - 1 - self.padding[0], self.kw - 1 - self.padding[1]],
        })
    }

    /// The weight of the [`Geometry::adjoint`] convolution: `[c, o, kh, kw]`, each
    /// kernel turned by 180°.
    pub fn flip(&self, weight: &[f32]) -> Vec<f32> {
        let (kh, kw) = (self.kh, self.kw);
        let mut flipped = vec![0.0; weight.len()];
        for oc in 0..self.o {
            for ic in 0..self.c {
                for ki in 0..kh {
                    for kj in 0..kw {
                        flipped[((ic * self.o + oc) * kh + kh - 1 - ki) * kw + kw - 1 - kj] =
                            weight[((oc * self.c + ic) * kh + ki) * kw + kj];
                    }
                }
            }
        }
        flipped
    }

    /// A 1×1 convolution without stride or padding: an image is its own cols.
    fn pointwise(&self) -> bool {
        (self.kh, self.kw, self.stride, self.padding) == (1, 1, [1, 1], [0, 0])
    }
}

fn chunks(g: &Geometry) -> impl Iterator<Item = (usize, usize)> {
    let step = g.chunk().clamp(1, g.n.max(1));
    (0..g.n)
        .step_by(step)
        .map(move |i| (i, (i + step).min(g.n)))
}

/// cols for images `i0..i1`.
fn im2col(x: &[f32], g: &Geometry, i0: usize, i1: usize, cols: &mut [f32]) {
    let len = (i1 - i0) * g.pixels();
    cols[..g.k() * len]
        .par_chunks_mut(len)
        .enumerate()
        .for_each(|(row, dst)| cols_row(x, g, row, i0..i1, 0..g.out_h(), dst));
}

/// Row `row` (channel, tap) of the cols of `images`, restricted to the output rows
/// `out_rows` of each image.
fn cols_row(
    x: &[f32],
    g: &Geometry,
    row: usize,
    images: Range<usize>,
    out_rows: Range<usize>,
    dst: &mut [f32],
) {
    let wo = g.out_w();
    let (ch, tap) = (row / (g.kh * g.kw), row % (g.kh * g.kw));
    let (ki, kj) = (tap / g.kw, tap % g.kw);
    let same = g.stride == [1, 1] && (g.out_h(), wo) == (g.h, g.w);
    let len = out_rows.len() * wo;
    for (m, img) in images.enumerate() {
        let plane = &x[(img * g.c + ch) * g.h * g.w..][..g.h * g.w];
        let dst = &mut dst[m * len..][..len];
        if same {
            shifted_plane(plane, g, (ki, kj), out_rows.start * wo, dst);
            continue;
        }
        for (oy, out) in out_rows.clone().zip(dst.chunks_mut(wo)) {
            let iy = (oy * g.stride[0] + ki) as isize - g.padding[0] as isize;
            if iy < 0 || iy >= g.h as isize {
                out.fill(0.0);
                continue;
            }
            let line = &plane[iy as usize * g.w..][..g.w];
            // One run of the input line (every stride-th pixel), zeros either side.
            let (lo, hi) = g.valid(kj, wo);
            out[..lo].fill(0.0);
            out[hi..].fill(0.0);
            if lo == hi {
                continue;
            }
            let start = g.input_column(lo, kj);
            if g.stride[1] == 1 {
                out[lo..hi].copy_from_slice(&line[start..start + hi - lo]);
            } else {
                let run = line[start..].iter().step_by(g.stride[1]);
                out[lo..hi].iter_mut().zip(run).for_each(|(d, &v)| *d = v);
            }
        }
    }
}

/// The pixels `first..first + out.len()` (whole lines) of one image's cols row of tap
/// `(ki, kj)` when the convolution keeps the image's size (stride 1): the plane shifted
/// by a constant in memory. One copy, then the columns whose tap falls off the line's ends (they
/// picked up the neighbouring line) set to zero; rows off the top or bottom fall
/// outside the copied range. For small planes this replaces a short copy per row.
fn shifted_plane(
    plane: &[f32],
    g: &Geometry,
    (ki, kj): (usize, usize),
    first: usize,
    out: &mut [f32],
) {
    debug_assert_eq!(first % g.w, 0);
    let pixels = (g.h * g.w) as isize;
    let shift =
        (ki as isize - g.padding[0] as isize) * g.w as isize + kj as isize - g.padding[1] as isize;
    let (first, len) = (first as isize, out.len() as isize);
    // Output pixels p (relative to `first`) whose source first + p + shift is inside.
    let lo = (-shift - first).clamp(0, len) as usize;
    let hi = ((pixels - shift - first).clamp(0, len) as usize).max(lo);
    out[..lo].fill(0.0);
    out[hi..].fill(0.0);
    if lo < hi {
        let from = (first + lo as isize + shift) as usize;
        out[lo..hi].copy_from_slice(&plane[from..from + hi - lo]);
    }
    let (valid_lo, valid_hi) = g.valid(kj, g.w);
    for column in (0..valid_lo).chain(valid_hi..g.w) {
        for v in out[column..].iter_mut().step_by(g.w) {
            *v = 0.0;
        }
    }
}

/// Adds cols of images `i0..i1` back onto their input pixels (im2col's adjoint).
fn col2im(cols: &[f32], g: &Geometry, i0: usize, i1: usize, dx: &mut [f32]) {
    let images = i1 - i0;
    dx[i0 * g.c * g.h * g.w..i1 * g.c * g.h * g.w]
        .par_chunks_mut(g.h * g.w)
        .enumerate()
        .for_each(|(p, plane)| add_cols(cols, g, images, (p / g.c, p % g.c), plane));
}

/// Adds the cols of image `m` (of `images` side by side) and channel `ch` onto that
/// channel's input plane.
fn add_cols(cols: &[f32], g: &Geometry, images: usize, (m, ch): (usize, usize), plane: &mut [f32]) {
    let (ho, wo) = (g.out_h(), g.out_w());
    let pixels = ho * wo;
    let taps = g.kh * g.kw;
    for tap in 0..taps {
        let (ki, kj) = (tap / g.kw, tap % g.kw);
        let src = &cols[(ch * taps + tap) * images * pixels + m * pixels..][..pixels];
        let (lo, hi) = g.valid(kj, wo);
        if lo == hi {
            continue;
        }
        let start = g.input_column(lo, kj);
        for oy in 0..ho {
            let iy = (oy * g.stride[0] + ki) as isize - g.padding[0] as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let line = &mut plane[iy as usize * g.w..][..g.w];
            let row = &src[oy * wo..][..wo];
            let run = line[start..].iter_mut().step_by(g.stride[1]);
            run.zip(&row[lo..hi]).for_each(|(d, v)| *d += v);
        }
    }
}

/// `[images, o, pixels]` (NCHW) → `[o, images·pixels]`.
fn to_rows(nchw: &[f32], o: usize, images: usize, pixels: usize, rows: &mut [f32]) {
    rows[..o * images * pixels]
        .par_chunks_mut(images * pixels)
        .enumerate()
        .for_each(|(ch, row)| {
            for m in 0..images {
                row[m * pixels..][..pixels]
                    .copy_from_slice(&nchw[(m * o + ch) * pixels..][..pixels]);
            }
        });
}

/// `[o, images·pixels]` → `[images, o, pixels]` (NCHW), through the epilogue.
fn from_rows(rows: &[f32], then: Epilogue, images: usize, pixels: usize, nchw: &mut [f32]) {
    let o = rows.len() / (images * pixels);
    nchw[..images * o * pixels]
        .par_chunks_mut(pixels)
        .enumerate()
        .for_each(|(plane, out)| {
            let (m, ch) = (plane / o, plane % o);
            then.write(
                ch,
                &rows[ch * images * pixels + m * pixels..][..pixels],
                out,
            );
        });
}

/// `dst = lhs·rhs` (or `+=`), on the current pool's threads or on this one.
fn gemm(dst: MatMut<f32>, accum: Accum, lhs: MatRef<f32>, rhs: MatRef<f32>, par: Par) {
    faer::linalg::matmul::matmul(dst, accum, lhs, rhs, 1.0, par);
}

fn matrix(data: &[f32], rows: usize, cols: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(&data[..rows * cols], rows, cols)
}

fn matrix_mut(data: &mut [f32], rows: usize, cols: usize) -> MatMut<'_, f32> {
    MatMut::from_row_major_slice_mut(&mut data[..rows * cols], rows, cols)
}

/// What happens to the convolution's output as it is written.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

impl Epilogue<'_> {
    pub const NONE: Epilogue<'static> = Epilogue {
        bias: None,
        relu: false,
    };

    /// `dst = epilogue(src)` for a run of channel `channel`'s outputs (the bias and
    /// the choice of ReLU taken once, so that the loop vectorizes).
    pub(crate) fn write(&self, channel: usize, src: &[f32], dst: &mut [f32]) {
        let bias = self.bias.map_or(0.0, |b| b[channel]);
        let pairs = dst.iter_mut().zip(src);
        if self.relu {
            pairs.for_each(|(d, &v)| *d = (v + bias).max(0.0));
        } else {
            pairs.for_each(|(d, &v)| *d = v + bias);
        }
    }

    /// The epilogue of a run of channel `channel`'s outputs, in place.
    fn apply(&self, channel: usize, run: &mut [f32]) {
        let bias = self.bias.map_or(0.0, |b| b[channel]);
        if self.relu {
            run.iter_mut().for_each(|v| *v = (*v + bias).max(0.0));
        } else if bias != 0.0 {
            run.iter_mut().for_each(|v| *v += bias);
        }
    }
}

/// The convolution itself, `[n, o, ho, wo]`, with the bias and ReLU of `then`.
pub fn forward(x: &[f32], weight: &[f32], then: Epilogue, g: &Geometry) -> Vec<f32> {
    if thin::applies(g) {
        thin::forward(x, weight, then, g)
    } else if g.by_image(rayon::current_num_threads()) {
        forward_by_image(x, weight, then, g)
    } else {
        forward_by_chunk(x, weight, then, g)
    }
}

/// Images in parallel, each tile of output rows one GEMM straight into the output. Large
/// images are cut into tiles of output rows: their cols, hundreds of MiB for a batch of
/// the FID network's first layers, would stream through memory twice, while a tile's
/// stay in the core's cache between im2col and the GEMM.
fn forward_by_image(x: &[f32], weight: &[f32], then: Epilogue, g: &Geometry) -> Vec<f32> {
    let (k, pixels, wo) = (g.k(), g.pixels(), g.out_w());
    let w = matrix(weight, g.o, k);
    let rows = g.tile_rows();
    let mut y = vec![0.0; g.n * g.o * pixels];
    y.par_chunks_mut(g.o * pixels).enumerate().for_each_init(
        || vec![0.0; if g.pointwise() { 0 } else { k * rows * wo }],
        |cols, (m, image)| {
            for first in (0..g.out_h()).step_by(rows) {
                let out_rows = first..(first + rows).min(g.out_h());
                let len = out_rows.len() * wo;
                let src = if g.pointwise() {
                    matrix(&x[m * g.c * pixels..], g.c, pixels).subcols(first * wo, len)
                } else {
                    for (row, dst) in cols.chunks_mut(len).take(k).enumerate() {
                        cols_row(x, g, row, m..m + 1, out_rows.clone(), dst);
                    }
                    matrix(cols, k, len)
                };
                let dst = matrix_mut(image, g.o, pixels).subcols_mut(first * wo, len);
                gemm(dst, Accum::Replace, w, src, Par::Seq);
                for (ch, plane) in image.chunks_mut(pixels).enumerate() {
                    then.apply(ch, &mut plane[first * wo..][..len]);
                }
            }
        },
    );
    y
}

/// Chunks of images one after the other, each one GEMM on all threads.
fn forward_by_chunk(x: &[f32], weight: &[f32], then: Epilogue, g: &Geometry) -> Vec<f32> {
    let (k, pixels) = (g.k(), g.pixels());
    let mut y = vec![0.0; g.n * g.o * pixels];
    let step = g.chunk().clamp(1, g.n.max(1));
    let mut cols = vec![0.0; k * step * pixels];
    let mut rows = vec![0.0; g.o * step * pixels];
    let w = matrix(weight, g.o, k);
    for (i0, i1) in chunks(g) {
        let width = (i1 - i0) * pixels;
        im2col(x, g, i0, i1, &mut cols);
        gemm(
            matrix_mut(&mut rows, g.o, width),
            Accum::Replace,
            w,
            matrix(&cols, k, width),
            Par::rayon(0),
        );
        from_rows(
            &rows[..g.o * width],
            then,
            i1 - i0,
            pixels,
            &mut y[i0 * g.o * pixels..],
        );
    }
    y
}

/// ∂loss/∂x from ∂loss/∂y.
pub fn grad_x(weight: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let threads = rayon::current_num_threads();
    if thin::applies(g) {
        thin::grad_x(weight, dy, g)
    } else if let Some(adjoint) = g.adjoint() {
        // A convolution of ∂y: im2col's copies instead of col2im's scattered sums.
        forward(dy, &g.flip(weight), Epilogue::NONE, &adjoint)
    } else if g.grads_by_image(threads) {
        grad_x_by_image(weight, dy, g)
    } else {
        grad_x_by_chunk(weight, dy, g)
    }
}

/// Images in parallel: each one's cols from one GEMM on its thread (its ∂y is already
/// `[o, pixels]`), added back onto its planes while they are still in cache.
fn grad_x_by_image(weight: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, pixels) = (g.k(), g.pixels());
    let wt = matrix(weight, g.o, k).transpose();
    let mut dx = vec![0.0; g.n * g.c * g.h * g.w];
    dx.par_chunks_mut(g.c * g.h * g.w)
        .enumerate()
        .for_each_init(
            || vec![0.0; k * pixels],
            |cols, (m, image)| {
                let dy = matrix(&dy[m * g.o * pixels..], g.o, pixels);
                gemm(
                    matrix_mut(cols, k, pixels),
                    Accum::Replace,
                    wt,
                    dy,
                    Par::Seq,
                );
                for (ch, plane) in image.chunks_mut(g.h * g.w).enumerate() {
                    add_cols(cols, g, 1, (0, ch), plane);
                }
            },
        );
    dx
}

/// Chunks of images one after the other, each one GEMM on all threads.
fn grad_x_by_chunk(weight: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, pixels) = (g.k(), g.pixels());
    let mut dx = vec![0.0; g.n * g.c * g.h * g.w];
    let step = g.chunk().clamp(1, g.n.max(1));
    let mut cols = vec![0.0; k * step * pixels];
    let mut rows = vec![0.0; g.o * step * pixels];
    let wt = matrix(weight, g.o, k).transpose();
    for (i0, i1) in chunks(g) {
        let width = (i1 - i0) * pixels;
        to_rows(&dy[i0 * g.o * pixels..], g.o, i1 - i0, pixels, &mut rows);
        gemm(
            matrix_mut(&mut cols, k, width),
            Accum::Replace,
            wt,
            matrix(&rows, g.o, width),
            Par::rayon(0),
        );
        col2im(&cols, g, i0, i1, &mut dx);
    }
    dx
}

/// ∂loss/∂weight from ∂loss/∂y.
pub fn grad_weight(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    if thin::applies(g) {
        thin::grad_weight(x, dy, g)
    } else if g.grads_by_image(rayon::current_num_threads()) {
        grad_weight_by_image(x, dy, g)
    } else {
        grad_weight_by_chunk(x, dy, g)
    }
}

/// Images in parallel, a fixed share of them per thread: each image's cols and its
/// `[o, pixels]` ∂y go into one GEMM that accumulates into the share's own ∂w.
fn grad_weight_by_image(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, pixels) = (g.k(), g.pixels());
    sum_over_shares(g.n, g.o * k, |images, dw| {
        let mut cols = vec![0.0; k * pixels];
        for m in images {
            for (row, dst) in cols.chunks_mut(pixels).enumerate() {
                cols_row(x, g, row, m..m + 1, 0..g.out_h(), dst);
            }
            let dy = matrix(&dy[m * g.o * pixels..], g.o, pixels);
            let cols_t = matrix(&cols, k, pixels).transpose();
            gemm(matrix_mut(dw, g.o, k), Accum::Add, dy, cols_t, Par::Seq);
        }
    })
}

/// A sum over `n` images of `len` values: the images cut into one contiguous share per
/// thread, `add(share, sum)` adding each share's part into a zeroed sum of its own, and
/// the shares' sums added in order, so that the result does not depend on which thread
/// ran what.
pub(crate) fn sum_over_shares(
    n: usize,
    len: usize,
    add: impl Fn(Range<usize>, &mut [f32]) + Sync,
) -> Vec<f32> {
    let share = n.div_ceil(rayon::current_num_threads()).max(1);
    let sums: Vec<Vec<f32>> = (0..n)
        .step_by(share)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|first| {
            let mut sum = vec![0.0; len];
            add(first..(first + share).min(n), &mut sum);
            sum
        })
        .collect();
    let mut sums = sums.into_iter();
    let mut total = sums.next().unwrap_or_else(|| vec![0.0; len]);
    for other in sums {
        total.iter_mut().zip(&other).for_each(|(a, b)| *a += b);
    }
    total
}

/// Chunks of images one after the other, each one GEMM on all threads.
fn grad_weight_by_chunk(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, pixels) = (g.k(), g.pixels());
    let mut dw = vec![0.0; g.o * k];
    let step = g.chunk().clamp(1, g.n.max(1));
    let mut cols = vec![0.0; k * step * pixels];
    let mut rows = vec![0.0; g.o * step * pixels];
    for (index, (i0, i1)) in chunks(g).enumerate() {
        let width = (i1 - i0) * pixels;
        im2col(x, g, i0, i1, &mut cols);
        to_rows(&dy[i0 * g.o * pixels..], g.o, i1 - i0, pixels, &mut rows);
        let accum = if index == 0 {
            Accum::Replace
        } else {
            Accum::Add
        };
        gemm(
            matrix_mut(&mut dw, g.o, k),
            accum,
            matrix(&rows, g.o, width),
            matrix(&cols, k, width).transpose(),
            Par::rayon(0),
        );
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use rng::Rng;

    /// The definition, one output at a time, in f64.
    fn direct(x: &[f32], w: &[f32], g: &Geometry) -> Vec<f64> {
        let (ho, wo) = (g.out_h(), g.out_w());
        let mut y = vec![0.0; g.n * g.o * ho * wo];
        for n in 0..g.n {
            for o in 0..g.o {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut s = 0.0f64;
                        for c in 0..g.c {
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let iy =
                                        (oy * g.stride[0] + i) as isize - g.padding[0] as isize;
                                    let ix =
                                        (ox * g.stride[1] + j) as isize - g.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv =
                                        x[((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize];
                                    let wv = w[((o * g.c + c) * g.kh + i) * g.kw + j];
                                    s += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y[((n * g.o + o) * ho + oy) * wo + ox] = s;
                    }
                }
            }
        }
        y
    }

    fn random(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.f32() - 0.5).collect()
    }

    #[test]
    fn cols_hold_the_input_pixel_under_each_tap() {
        let mut rng = Rng::new(5);
        for (h, w, kh, kw, padding, stride) in [
            (16, 16, 3, 3, [1, 1], [1, 1]),
            (4, 4, 3, 3, [1, 1], [1, 1]),
            (7, 6, 3, 3, [1, 1], [1, 1]),
            (9, 7, 1, 7, [0, 3], [1, 1]),
            (8, 8, 1, 1, [0, 0], [1, 1]),
            (9, 9, 5, 5, [2, 2], [1, 1]),
            (8, 8, 4, 4, [1, 1], [2, 2]),
        ] {
            let g = Geometry {
                n: 3,
                c: 2,
                h,
                w,
                o: 1,
                kh,
                kw,
                stride,
                padding,
            };
            let x = random(&mut rng, g.n * g.c * h * w);
            let mut cols = vec![f32::NAN; g.k() * g.n * g.pixels()];
            im2col(&x, &g, 0, g.n, &mut cols);
            let (ho, wo) = (g.out_h(), g.out_w());
            for (row, line) in cols.chunks(g.n * g.pixels()).enumerate() {
                let (ch, ki, kj) = (row / (kh * kw), row / kw % kh, row % kw);
                for (i, &v) in line.iter().enumerate() {
                    let (m, oy, ox) = (i / (ho * wo), i / wo % ho, i % wo);
                    let iy = (oy * stride[0] + ki) as isize - padding[0] as isize;
                    let ix = (ox * stride[1] + kj) as isize - padding[1] as isize;
                    let inside = (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix);
                    let want = if inside {
                        x[((m * g.c + ch) * h + iy as usize) * w + ix as usize]
                    } else {
                        0.0
                    };
                    assert_eq!(v.to_bits(), want.to_bits(), "{g:?} row {row} at {i}");
                }
            }
        }
    }

    /// Both forward paths against the definition, with bias and ReLU: tiles of output
    /// rows (the last one short), the pointwise case that reads the image itself,
    /// strides, and kernels that are not square.
    #[test]
    fn forward_paths_match_the_definition() {
        let mut rng = Rng::new(7);
        for (c, h, w, o, kh, kw, stride, padding, tiles) in [
            (8, 64, 64, 5, 3, 3, [1, 1], [1, 1], 5),
            (6, 40, 36, 4, 1, 1, [1, 1], [0, 0], 1),
            (3, 37, 35, 4, 3, 3, [2, 2], [0, 0], 1),
            (4, 33, 34, 3, 1, 7, [1, 1], [0, 3], 1),
            (4, 34, 33, 3, 5, 5, [1, 1], [2, 2], 2),
            (3, 12, 10, 16, 3, 3, [1, 1], [1, 1], 1),
            (16, 9, 11, 3, 3, 3, [1, 1], [1, 1], 1),
            (5, 8, 9, 2, 3, 5, [1, 1], [2, 1], 1),
        ] {
            let g = Geometry {
                n: 3,
                c,
                h,
                w,
                o,
                kh,
                kw,
                stride,
                padding,
            };
            assert_eq!(g.out_h().div_ceil(g.tile_rows()), tiles, "{g:?}");
            let x = random(&mut rng, g.n * c * h * w);
            let weight = random(&mut rng, o * g.k());
            let bias = random(&mut rng, o);
            let pixels = g.pixels();
            let want = direct(&x, &weight, &g);
            for relu in [false, true] {
                let then = Epilogue {
                    bias: Some(&bias),
                    relu,
                };
                let thin =
                    thin::applies(&g).then(|| ("thin", thin::forward(&x, &weight, then, &g)));
                for (path, y) in [
                    ("by image", forward_by_image(&x, &weight, then, &g)),
                    ("by chunk", forward_by_chunk(&x, &weight, then, &g)),
                ]
                .into_iter()
                .chain(thin)
                {
                    for (i, (&got, &v)) in y.iter().zip(&want).enumerate() {
                        let v = v + bias[i / pixels % o] as f64;
                        let v = if relu { v.max(0.0) } else { v };
                        assert!(
                            (got as f64 - v).abs() < 1e-5 * (1.0 + v.abs()),
                            "{path} {g:?} relu {relu} at {i}: {got} vs {v}"
                        );
                    }
                }
            }
        }
    }

    type Forward = fn(&[f32], &[f32], Epilogue, &Geometry) -> Vec<f32>;

    /// Every route of ∂x (col2im image by image or in chunks, the adjoint convolution
    /// of ∂y where the stride is 1, the direct RGB one) and of ∂w.
    #[test]
    fn gradients_satisfy_the_adjoint_identities() {
        let mut rng = Rng::new(4);
        for g in [
            Geometry {
                n: 3,
                c: 2,
                h: 7,
                w: 6,
                o: 4,
                kh: 3,
                kw: 3,
                stride: [1, 1],
                padding: [1, 1],
            },
            Geometry {
                n: 2,
                c: 3,
                h: 8,
                w: 8,
                o: 2,
                kh: 4,
                kw: 4,
                stride: [2, 2],
                padding: [1, 1],
            },
            Geometry {
                n: 2,
                c: 2,
                h: 9,
                w: 7,
                o: 3,
                kh: 1,
                kw: 7,
                stride: [1, 1],
                padding: [0, 3],
            },
            Geometry {
                n: 2,
                c: 2,
                h: 9,
                w: 9,
                o: 3,
                kh: 3,
                kw: 3,
                stride: [2, 2],
                padding: [0, 0],
            },
            Geometry {
                n: 3,
                c: 12,
                h: 9,
                w: 11,
                o: 3,
                kh: 3,
                kw: 5,
                stride: [1, 1],
                padding: [1, 2],
            },
            Geometry {
                n: 2,
                c: 3,
                h: 7,
                w: 8,
                o: 10,
                kh: 3,
                kw: 3,
                stride: [1, 1],
                padding: [0, 1],
            },
        ] {
            let x = random(&mut rng, g.n * g.c * g.h * g.w);
            let w = random(&mut rng, g.o * g.c * g.kh * g.kw);
            let y = direct(&x, &w, &g);
            // Gradients of L = Σ y·r, checked against the adjoint identities
            // ⟨dx, x'⟩ = ⟨r, conv(x', w)⟩ and ⟨dw, w'⟩ = ⟨r, conv(x, w')⟩.
            let r = random(&mut rng, y.len());
            let dot =
                |a: &[f32], b: &[f64]| a.iter().zip(b).map(|(p, q)| *p as f64 * q).sum::<f64>();
            let x2 = random(&mut rng, x.len());
            let w2 = random(&mut rng, w.len());
            let wide = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
            // Every route's gradient against the identity's right-hand side.
            let check = |what: &str, routes: Vec<(&str, Vec<f32>)>, other: &[f32], rhs: f64| {
                for (path, grad) in routes {
                    let lhs = dot(&grad, &wide(other));
                    assert!(
                        (lhs - rhs).abs() < 1e-4 * (1.0 + rhs.abs()),
                        "{what} {path} {g:?}: {lhs} vs {rhs}"
                    );
                }
            };
            let thin = thin::applies(&g);
            let mut dx = vec![
                ("by image", grad_x_by_image(&w, &r, &g)),
                ("by chunk", grad_x_by_chunk(&w, &r, &g)),
            ];
            let mut dw = vec![
                ("by image", grad_weight_by_image(&x, &r, &g)),
                ("by chunk", grad_weight_by_chunk(&x, &r, &g)),
            ];
            if let Some(adjoint) = g.adjoint() {
                let flipped = g.flip(&w);
                for (path, route) in [
                    ("adjoint by image", forward_by_image as Forward),
                    ("adjoint by chunk", forward_by_chunk),
                ] {
                    dx.push((path, route(&r, &flipped, Epilogue::NONE, &adjoint)));
                }
            }
            if thin {
                dx.push(("thin", thin::grad_x(&w, &r, &g)));
                dw.push(("thin", thin::grad_weight(&x, &r, &g)));
            }
            check("dx", dx, &x2, dot(&r, &direct(&x2, &w, &g)));
            check("dw", dw, &w2, dot(&r, &direct(&x, &w2, &g)));
        }
    }
}
