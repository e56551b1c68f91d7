//! Fréchet Inception Distance between two Gaussians:
//! |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^½.
//!
//! The eigenvalues of Σ₁Σ₂ are those of the symmetric Lᵀ Σ₂ L where Σ₁ = L Lᵀ, so the
//! trace of the square root is the sum of the square roots of a symmetric matrix's
//! eigenvalues: no general (non-symmetric) matrix square root, no complex parts to
//! drop. A singular or nearly singular Σ₁ (fewer samples than dimensions) has no
//! accurate Cholesky factor; then the other matrix is factored, and if both are
//! singular, Σ₁^½ comes from an eigendecomposition instead (slower, exact for positive
//! semi-definite matrices). Negative eigenvalues from rounding count as zero.

use faer::{Accum, Mat, Par, Side};

use super::{MetricError, Stats};

pub fn fid(a: &Stats, b: &Stats) -> Result<f64, MetricError> {
    if a.dim() != b.dim() {
        return Err(MetricError::Invalid(format!(
            "statistics of different dimensions: {} and {} (features of different \
             networks? Inception's and SwAV's have 2048, DINO's 1536, DINOv2's 1024)",
            a.dim(),
            b.dim()
        )));
    }
    a.check("first statistics")?;
    b.check("second statistics")?;
    let mean_term: f64 = a.mu.iter().zip(&b.mu).map(|(x, y)| (x - y) * (x - y)).sum();
    let (s1, s2) = (a.sigma_mat(), b.sigma_mat());
    let trace = |m: &Mat<f64>| (0..m.nrows()).map(|i| m[(i, i)]).sum::<f64>();
    let covmean = trace_sqrt_product(&s1, &s2)?;
    Ok(mean_term + trace(&s1) + trace(&s2) - 2.0 * covmean)
}

/// tr (AB)^½ for symmetric positive semi-definite A and B.
pub fn trace_sqrt_product(a: &Mat<f64>, b: &Mat<f64>) -> Result<f64, MetricError> {
    // A Cholesky factor of a nearly singular matrix exists in floating point but is
    // inaccurate: use it only when its pivots are all well away from zero.
    let factor = |m: &Mat<f64>| {
        m.llt(Side::Lower)
            .ok()
            .filter(|llt| well_conditioned(llt.L()))
    };
    let root = match (factor(a), factor(b)) {
        (Some(llt), _) => symmetric_product(llt.L(), b, true),
        (_, Some(llt)) => symmetric_product(llt.L(), a, true),
        _ => symmetric_product(psd_sqrt(a)?.as_ref(), b, false),
    };
    let eigen = root
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| MetricError::Invalid(format!("eigenvalues did not converge: {e:?}")))?;
    // Eigenvalues within rounding of zero are zero: summed over the many null directions
    // of a low-rank covariance, the square roots of their noise would add up.
    let largest = eigen.iter().fold(0f64, |m, &l| m.max(l.abs()));
    let noise = largest * f64::EPSILON * eigen.len() as f64;
    Ok(eigen
        .iter()
        .map(|&l| if l > noise { l.sqrt() } else { 0.0 })
        .sum())
}

/// Whether the smallest squared pivot of a Cholesky factor is above 1e-9 of the largest.
fn well_conditioned(l: faer::MatRef<'_, f64>) -> bool {
    let pivots: Vec<f64> = (0..l.nrows()).map(|i| l[(i, i)] * l[(i, i)]).collect();
    let max = pivots.iter().cloned().fold(0.0, f64::max);
    pivots.iter().all(|&p| p > 1e-9 * max)
}

/// `Fᵀ M F` if `transposed`, else `F M F` (F symmetric), symmetrized.
fn symmetric_product(f: faer::MatRef<'_, f64>, m: &Mat<f64>, transposed: bool) -> Mat<f64> {
    let n = m.nrows();
    let mut mf = Mat::zeros(n, n);
    faer::linalg::matmul::matmul(mf.as_mut(), Accum::Replace, m.as_ref(), f, 1.0, Par::Seq);
    let mut out = Mat::zeros(n, n);
    let left = if transposed { f.transpose() } else { f };
    faer::linalg::matmul::matmul(
        out.as_mut(),
        Accum::Replace,
        left,
        mf.as_ref(),
        1.0,
        Par::Seq,
    );
    Mat::from_fn(n, n, |i, j| 0.5 * (out[(i, j)] + out[(j, i)]))
}

/// The square root of a symmetric positive semi-definite matrix.
fn psd_sqrt(m: &Mat<f64>) -> Result<Mat<f64>, MetricError> {
    let eig = m
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| MetricError::Invalid(format!("eigendecomposition did not converge: {e:?}")))?;
    let (u, s) = (eig.U(), eig.S());
    let n = m.nrows();
    let scaled = Mat::from_fn(n, n, |i, j| u[(i, j)] * s[j].max(0.0).sqrt());
    let mut out = Mat::zeros(n, n);
    faer::linalg::matmul::matmul(
        out.as_mut(),
        Accum::Replace,
        scaled.as_ref(),
        u.transpose(),
        1.0,
        Par::Seq,
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(values: &[f64]) -> Stats {
        let d = values.len();
        let mut sigma = vec![0.0; d * d];
        for (i, v) in values.iter().enumerate() {
            sigma[i * d + i] = *v;
        }
        Stats {
            mu: vec![0.0; d],
            sigma,
        }
    }

    #[test]
    fn diagonal_gaussians_by_hand() {
        // Diagonal: tr (Σ₁Σ₂)^½ = Σ √(a_i b_i).
        let mut a = diag(&[4.0, 1.0, 9.0]);
        let b = diag(&[1.0, 1.0, 4.0]);
        a.mu = vec![1.0, 0.0, 2.0];
        let expected = 5.0 + 14.0 + 6.0 - 2.0 * (2.0 + 1.0 + 6.0);
        assert!((fid(&a, &b).unwrap() - expected).abs() < 1e-12);
        assert!(fid(&a, &a).unwrap().abs() < 1e-12);
    }

    #[test]
    fn singular_on_both_sides() {
        let a = diag(&[4.0, 0.0, 9.0]);
        let b = diag(&[1.0, 2.0, 0.0]);
        let expected = 13.0 + 3.0 - 2.0 * 2.0;
        assert!((fid(&a, &b).unwrap() - expected).abs() < 1e-9);
    }

    #[test]
    fn different_dimensions() {
        assert_eq!(
            fid(&diag(&[1.0]), &diag(&[1.0, 1.0]))
                .unwrap_err()
                .to_string(),
            "statistics of different dimensions: 1 and 2 (features of different networks? \
             Inception's and SwAV's have 2048, DINO's 1536, DINOv2's 1024)"
        );
    }
}
