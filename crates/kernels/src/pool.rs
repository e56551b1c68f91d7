//! The 3×3 pools of the FID Inception network, as separable filters over each plane:
//! burn-flex's general pooling spent a quarter of the network's time in the average pool
//! and a fifth in the max pool (it also computes the indices a gradient would need).
//! The average pool has stride 1 and padding 1 and does not count the padding.
//!
//! And the 2× resampling of the residual networks' blocks, 2×2 means (D) and
//! nearest-neighbour upsampling (G), each the other's adjoint up to a factor 4: burn
//! computes the first through its general 3-D pooling and the second as a broadcast
//! that a generic strided iterator copies out, 15% of a quickstart training step.

use rayon::prelude::*;

/// x `[planes, h, w]` → the same shape.
pub fn box3(x: &[f32], h: usize, w: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(h * w)
        .zip(x.par_chunks(h * w))
        .for_each(|(out, plane)| {
            // Row sums over three columns, then three rows of those.
            let mut rows = vec![0.0f32; h * w];
            for r in 0..h {
                let src = &plane[r * w..][..w];
                let dst = &mut rows[r * w..][..w];
                for (c, d) in dst.iter_mut().enumerate() {
                    let lo = c.saturating_sub(1);
                    let hi = (c + 1).min(w - 1);
                    *d = src[lo..=hi].iter().sum();
                }
            }
            for r in 0..h {
                let (lo, hi) = (r.saturating_sub(1), (r + 1).min(h - 1));
                let count_rows = (hi - lo + 1) as f32;
                for c in 0..w {
                    let count_cols = ((c + 1).min(w - 1) - c.saturating_sub(1) + 1) as f32;
                    let sum: f32 = (lo..=hi).map(|rr| rows[rr * w + c]).sum();
                    out[r * w + c] = sum / (count_rows * count_cols);
                }
            }
        });
    y
}

/// The length of a line of [`max3`]'s output.
pub fn max3_len(len: usize, stride: usize, padding: usize) -> usize {
    (len + 2 * padding - 3) / stride + 1
}

/// 3×3 max pool of x `[planes, h, w]` with the given stride and padding (padding never
/// wins): `[planes, ho, wo]`.
pub fn max3(x: &[f32], h: usize, w: usize, stride: usize, padding: usize) -> Vec<f32> {
    let (ho, wo) = (max3_len(h, stride, padding), max3_len(w, stride, padding));
    // The taps of output `o` that fall inside a line of length `len`.
    let taps = |o: usize, len: usize| {
        let start = (o * stride) as isize - padding as isize;
        (start.max(0) as usize)..((start + 3).min(len as isize) as usize)
    };
    let mut y = vec![0.0; x.len() / (h * w) * ho * wo];
    y.par_chunks_mut(ho * wo)
        .zip(x.par_chunks(h * w))
        .for_each(|(out, plane)| {
            let mut column_max = vec![0.0f32; w];
            for (oy, line) in out.chunks_mut(wo).enumerate() {
                let mut rows = taps(oy, h).map(|r| &plane[r * w..][..w]);
                column_max.copy_from_slice(rows.next().expect("a 3-tap window meets the plane"));
                for row in rows {
                    column_max
                        .iter_mut()
                        .zip(row)
                        .for_each(|(m, &v)| *m = m.max(v));
                }
                for (ox, v) in line.iter_mut().enumerate() {
                    *v = column_max[taps(ox, w)]
                        .iter()
                        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                }
            }
        });
    y
}

/// x `[planes, h, w]` → `[planes, 2h, 2w]`, each pixel a 2×2 block.
pub fn upsample2(x: &[f32], h: usize, w: usize) -> Vec<f32> {
    let mut y = vec![0.0; 4 * x.len()];
    y.par_chunks_mut(4 * h * w)
        .zip(x.par_chunks(h * w))
        .for_each(|(out, plane)| {
            for (line, pair) in plane.chunks(w).zip(out.chunks_mut(4 * w)) {
                let (first, second) = pair.split_at_mut(2 * w);
                for (d, &v) in first.chunks_mut(2).zip(line) {
                    d.fill(v);
                }
                second.copy_from_slice(first);
            }
        });
    y
}

/// x `[planes, h, w]` → `[planes, h/2, w/2]`, the mean of each 2×2 block, summed in
/// row-major order; an odd last row or column is left out.
pub fn mean2(x: &[f32], h: usize, w: usize) -> Vec<f32> {
    let (ho, wo) = (h / 2, w / 2);
    let mut y = vec![0.0; x.len() / (h * w) * ho * wo];
    y.par_chunks_mut(ho * wo)
        .zip(x.par_chunks(h * w))
        .for_each(|(out, plane)| {
            for (r, line) in out.chunks_mut(wo).enumerate() {
                let (top, bottom) = (&plane[2 * r * w..][..w], &plane[(2 * r + 1) * w..][..w]);
                for (c, v) in line.iter_mut().enumerate() {
                    let sum = top[2 * c] + top[2 * c + 1] + bottom[2 * c] + bottom[2 * c + 1];
                    *v = sum / 4.0;
                }
            }
        });
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borders_average_only_what_exists() {
        // One 3×3 plane holding 1..=9.
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let y = box3(&x, 3, 3);
        assert_eq!(y[0], (1.0 + 2.0 + 4.0 + 5.0) / 4.0);
        assert_eq!(y[4], 5.0);
        assert_eq!(y[5], (2.0 + 3.0 + 5.0 + 6.0 + 8.0 + 9.0) / 6.0);
    }
}
