//! The resize to the Inception network's 299×299 before FID features. It is a choice
//! because it changes the numbers: clean-fid (Parmar et al., 2022) showed that
//! pytorch-fid's bilinear resize without antialiasing and PIL's bicubic give FIDs that
//! differ by more than many papers' margins, and StudioGAN v0.4 offers both
//! (`--post_resizer legacy|clean`). Statistics and the scores measured against them
//! must use the same one.

use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use explain::Explain;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Explain)]
pub enum Resizer {
    /// pytorch-fid's: bilinear, `align_corners = false`, no antialiasing (StudioGAN's
    /// `legacy`, and what the paper measured with).
    #[default]
    Legacy,
    /// PIL's bicubic (a = −0.5, widened to antialias when shrinking) on each channel
    /// as a float image, unrounded: StudioGAN's `clean`, after clean-fid.
    Clean,
}

impl Resizer {
    pub fn is_legacy(&self) -> bool {
        *self == Resizer::Legacy
    }
}

impl std::fmt::Display for Resizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resizer::Legacy => "Legacy",
            Resizer::Clean => "Clean",
        })
    }
}

/// Images `[n, c, h, w]` resized to `[n, c, height, width]`.
pub fn resize<B: Backend>(
    images: Tensor<B, 4>,
    [height, width]: [usize; 2],
    resizer: Resizer,
) -> Tensor<B, 4> {
    let [n, c, h, w] = images.dims();
    if (h, w) == (height, width) {
        return images;
    }
    match resizer {
        Resizer::Legacy => {
            let options =
                InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false);
            interpolate(images, [height, width], options)
        }
        Resizer::Clean => {
            // Separable: each output pixel a weighted sum along a row, then a column.
            // Both passes are one 2-d matmul, on whatever device the images are.
            let device = images.device();
            let along = |input: usize, output: usize| {
                let weights = bicubic_weights(input, output);
                // Transposed: `[input, output]`, so that rows of pixels multiply it.
                let t: Vec<f32> = (0..input * output)
                    .map(|k| weights[(k % output) * input + k / output] as f32)
                    .collect();
                Tensor::<B, 2>::from_data(TensorData::new(t, [input, output]), &device)
            };
            let rows = images.reshape([n * c * h, w]).matmul(along(w, width));
            let columns = rows
                .reshape([n * c, h, width])
                .swap_dims(1, 2)
                .reshape([n * c * width, h])
                .matmul(along(h, height));
            columns
                .reshape([n * c, width, height])
                .swap_dims(1, 2)
                .reshape([n, c, height, width])
        }
    }
}

/// PIL's resampling weights for bicubic (`ImagingResample`'s `precompute_coeffs`):
/// `[output, input]`, row `o` the weights of the input pixels for output pixel `o`.
/// The kernel is stretched by the scale when shrinking (antialiasing), clipped at the
/// borders and each row renormalised to sum to 1.
fn bicubic_weights(input: usize, output: usize) -> Vec<f64> {
    const SUPPORT: f64 = 2.0;
    let scale = input as f64 / output as f64;
    let stretch = scale.max(1.0);
    let support = SUPPORT * stretch;
    let mut weights = vec![0f64; output * input];
    for o in 0..output {
        let center = (o as f64 + 0.5) * scale;
        // PIL truncates toward zero before clamping; both clamp to the image.
        let first = ((center - support + 0.5) as i64).max(0) as usize;
        let last = ((center + support + 0.5) as i64).min(input as i64) as usize;
        let taps: Vec<f64> = (first..last)
            .map(|i| cubic((i as f64 - center + 0.5) / stretch))
            .collect();
        let sum: f64 = taps.iter().sum();
        for (i, tap) in (first..last).zip(taps) {
            weights[o * input + i] = if sum != 0.0 { tap / sum } else { tap };
        }
    }
    weights
}

/// PIL's bicubic resize of 8-bit RGB images (HWC) to `width × height`, exactly as
/// `Image.resize` computes it (what torchvision's `Resize` does to a PIL image): the
/// weights in fixed point with 22 fractional bits, rows resampled first and rounded to
/// 8 bits, then columns.
pub fn pil_bicubic_u8(pixels: &[u8], [w, h]: [usize; 2], [width, height]: [usize; 2]) -> Vec<u8> {
    let rows = if width != w {
        resample_rows(pixels, h, w, width)
    } else {
        pixels.to_vec()
    };
    if height == h {
        return rows;
    }
    // Columns as rows of the transposed image: the same sums in the same order.
    let columns = resample_rows(&transpose(&rows, h, width), width, h, height);
    transpose(&columns, width, height)
}

/// `[lines, input, 3]` → `[lines, output, 3]`, each line resampled as PIL's 8-bit
/// `ImagingResampleHorizontal` does.
fn resample_rows(pixels: &[u8], lines: usize, input: usize, output: usize) -> Vec<u8> {
    const BITS: u32 = 22;
    let k: Vec<i64> = bicubic_weights(input, output)
        .iter()
        .map(|&k| (k * (1u64 << BITS) as f64).round() as i64)
        .collect();
    let half = 1i64 << (BITS - 1);
    let mut out = vec![0u8; lines * output * 3];
    for y in 0..lines {
        for x in 0..output {
            for c in 0..3 {
                let sum: i64 = (0..input)
                    .map(|i| k[x * input + i] * pixels[(y * input + i) * 3 + c] as i64)
                    .sum();
                out[(y * output + x) * 3 + c] = ((sum + half) >> BITS).clamp(0, 255) as u8;
            }
        }
    }
    out
}

/// `[rows, cols, 3]` → `[cols, rows, 3]`.
fn transpose(pixels: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    let mut out = vec![0u8; pixels.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[(c * rows + r) * 3..][..3].copy_from_slice(&pixels[(r * cols + c) * 3..][..3]);
        }
    }
    out
}

/// Keys' cubic convolution kernel with a = −0.5, as PIL's `bicubic_filter`.
fn cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_weights_sum_to_one_and_identity_sizes_are_untouched() {
        for (input, output) in [(32, 299), (299, 32), (7, 7), (5, 13)] {
            let w = bicubic_weights(input, output);
            for o in 0..output {
                let sum: f64 = w[o * input..(o + 1) * input].iter().sum();
                assert!((sum - 1.0).abs() < 1e-6, "{input}→{output} row {o}: {sum}");
            }
        }
        // Same size: PIL's kernel at integer offsets is 1, 0, 0: the identity.
        let w = bicubic_weights(6, 6);
        for o in 0..6 {
            for i in 0..6 {
                assert_eq!(w[o * 6 + i], (o == i) as u8 as f64);
            }
        }
    }
}
