//! The 3×3, stride-1, padding-1 average pool that does not count the padding (the pool
//! branches of the FID Inception network), as a separable box filter over each plane:
//! burn-flex's general pooling spent a quarter of the network's time there.

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
