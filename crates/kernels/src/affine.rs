//! `y = x·a + b` per channel (and per image, when `a` and `b` have a row per image), with
//! its gradients, on the CPU. BatchNorm, conditional BatchNorm and biases are all this
//! operation; written as broadcasting tensor arithmetic, burn-flex walks every element
//! through a generic strided iterator, which cost more than the convolutions.
//!
//! x and y are `[n, c, pixels]`; a and b are `[rows, c]` with `rows` 1 or n.

use rayon::prelude::*;

/// The coefficient index of plane `p` (image `p / c`, channel `p % c`).
fn coefficient(p: usize, c: usize, rows: usize) -> usize {
    if rows == 1 { p % c } else { p }
}

pub fn forward(x: &[f32], a: &[f32], b: &[f32], c: usize, rows: usize, pixels: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(pixels)
        .zip(x.par_chunks(pixels))
        .enumerate()
        .for_each(|(p, (out, inp))| {
            let k = coefficient(p, c, rows);
            let (scale, shift) = (a[k], b[k]);
            for (o, i) in out.iter_mut().zip(inp) {
                *o = i * scale + shift;
            }
        });
    y
}

/// (∂x, ∂a, ∂b) from ∂y.
pub fn backward(
    x: &[f32],
    a: &[f32],
    dy: &[f32],
    c: usize,
    rows: usize,
    pixels: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let planes = x.len() / pixels;
    let mut dx = vec![0.0; x.len()];
    // Per plane: Σ dy·x and Σ dy, accumulated in f64 (a plane may hold thousands).
    let sums: Vec<(f64, f64)> = dx
        .par_chunks_mut(pixels)
        .zip(x.par_chunks(pixels).zip(dy.par_chunks(pixels)))
        .enumerate()
        .map(|(p, (gx, (xp, gp)))| {
            let scale = a[coefficient(p, c, rows)];
            let (mut sa, mut sb) = (0.0f64, 0.0f64);
            for ((d, xv), g) in gx.iter_mut().zip(xp).zip(gp) {
                *d = g * scale;
                sa += (*g as f64) * (*xv as f64);
                sb += *g as f64;
            }
            (sa, sb)
        })
        .collect();
    let mut da = vec![0.0f64; rows * c];
    let mut db = vec![0.0f64; rows * c];
    for (p, (sa, sb)) in sums.into_iter().enumerate().take(planes) {
        let k = coefficient(p, c, rows);
        da[k] += sa;
        db[k] += sb;
    }
    let narrow = |v: Vec<f64>| v.into_iter().map(|s| s as f32).collect();
    (dx, narrow(da), narrow(db))
}

/// Σ over images and pixels of each channel of `[n, c, pixels]` (a bias's gradient).
pub fn channel_sums(dy: &[f32], c: usize, pixels: usize) -> Vec<f32> {
    let planes: Vec<f64> = dy
        .par_chunks(pixels)
        .map(|p| p.iter().map(|&v| v as f64).sum())
        .collect();
    let mut sums = vec![0.0f64; c];
    for (p, s) in planes.into_iter().enumerate() {
        sums[p % c] += s;
    }
    sums.into_iter().map(|s| s as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_and_per_image_coefficients() {
        // n = 2, c = 2, pixels = 2.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let y = forward(&x, &[2.0, -1.0], &[0.5, 1.0], 2, 1, 2);
        assert_eq!(y, [2.5, 4.5, -2.0, -3.0, 10.5, 12.5, -6.0, -7.0]);
        let y = forward(&x, &[1.0, 1.0, 0.0, 2.0], &[0.0; 4], 2, 2, 2);
        assert_eq!(y, [1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 14.0, 16.0]);

        let dy = [1.0; 8];
        let (dx, da, db) = backward(&x, &[2.0, -1.0], &dy, 2, 1, 2);
        assert_eq!(dx, [2.0, 2.0, -1.0, -1.0, 2.0, 2.0, -1.0, -1.0]);
        assert_eq!(da, [1.0 + 2.0 + 5.0 + 6.0, 3.0 + 4.0 + 7.0 + 8.0]);
        assert_eq!(db, [4.0, 4.0]);
        let (_, da, db) = backward(&x, &[1.0; 4], &dy, 2, 2, 2);
        assert_eq!(da, [3.0, 7.0, 11.0, 15.0]);
        assert_eq!(db, [2.0; 4]);
        assert_eq!(
            channel_sums(&x, 2, 2),
            [1.0 + 2.0 + 5.0 + 6.0, 3.0 + 4.0 + 7.0 + 8.0]
        );
    }
}
