//! Mean and covariance of features, in f64: streamed batch by batch in O(d²) memory
//! however many samples, stored as pytorch-fid's `.npz` (`mu`, `sigma`).

use std::path::Path;

use faer::{Accum, Mat, Par};

use super::npy;
use super::{Features, MetricError};

#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub mu: Vec<f64>,
    /// d × d, row-major.
    pub sigma: Vec<f64>,
}

impl Stats {
    pub fn dim(&self) -> usize {
        self.mu.len()
    }

    pub fn sigma_mat(&self) -> Mat<f64> {
        let d = self.dim();
        Mat::from_fn(d, d, |i, j| self.sigma[i * d + j])
    }

    /// Reads pytorch-fid or TTUR statistics (`mu`, `sigma`; float32 or float64).
    pub fn read_npz(path: &Path) -> Result<Stats, MetricError> {
        let name = path.display().to_string();
        let arrays = npy::read_npz(path)?;
        let get = |key: &str| {
            arrays.get(key).ok_or_else(|| {
                let found: Vec<&str> = arrays.keys().map(String::as_str).collect();
                MetricError::format(
                    &name,
                    format!("no `{key}` array (found: {})", found.join(", ")),
                )
            })
        };
        let (mu, sigma) = (get("mu")?, get("sigma")?);
        let d = match mu.shape.as_slice() {
            [d] => *d,
            other => {
                return Err(MetricError::format(
                    &name,
                    format!("`mu` has shape {other:?}, expected (d,)"),
                ));
            }
        };
        if sigma.shape != [d, d] {
            return Err(MetricError::format(
                &name,
                format!(
                    "`sigma` has shape {:?}, expected ({d}, {d}) to match `mu`",
                    sigma.shape
                ),
            ));
        }
        let stats = Stats {
            mu: mu.data.clone(),
            sigma: sigma.data.clone(),
        };
        stats.check(&name)?;
        Ok(stats)
    }

    pub fn write_npz(&self, path: &Path) -> Result<(), MetricError> {
        let d = self.dim();
        npy::write_npz(
            path,
            &[
                ("mu", npy::encode(&[d], &self.mu, false)),
                ("sigma", npy::encode(&[d, d], &self.sigma, false)),
            ],
        )
    }

    /// Refuses non-finite values and a covariance that is not symmetric.
    pub fn check(&self, what: &str) -> Result<(), MetricError> {
        let d = self.dim();
        if let Some(i) = self.mu.iter().position(|v| !v.is_finite()) {
            return Err(MetricError::Invalid(format!(
                "{what}: mu[{i}] is {}",
                self.mu[i]
            )));
        }
        if let Some(i) = self.sigma.iter().position(|v| !v.is_finite()) {
            return Err(MetricError::Invalid(format!(
                "{what}: sigma[{}, {}] is {}",
                i / d,
                i % d,
                self.sigma[i]
            )));
        }
        let scale = self.sigma.iter().fold(0f64, |m, v| m.max(v.abs()));
        let mut worst = (0.0, 0, 0);
        for i in 0..d {
            for j in i + 1..d {
                let gap = (self.sigma[i * d + j] - self.sigma[j * d + i]).abs();
                if gap > worst.0 {
                    worst = (gap, i, j);
                }
            }
        }
        if worst.0 > 1e-6 * scale.max(1e-300) {
            let (gap, i, j) = worst;
            return Err(MetricError::Invalid(format!(
                "{what}: sigma is not symmetric: sigma[{i}, {j}] and sigma[{j}, {i}] differ by {gap:e}"
            )));
        }
        Ok(())
    }
}

/// Accumulates mean and covariance over batches of samples.
pub struct StatsBuilder {
    dim: usize,
    count: u64,
    /// The first sample, subtracted from all: keeps the sums small, so that the
    /// covariance does not lose digits to cancellation.
    shift: Option<Vec<f64>>,
    sum: Vec<f64>,
    /// Σ (x − shift)(x − shift)ᵀ.
    outer: Mat<f64>,
}

impl StatsBuilder {
    pub fn new(dim: usize) -> StatsBuilder {
        StatsBuilder {
            dim,
            count: 0,
            shift: None,
            sum: vec![0.0; dim],
            outer: Mat::zeros(dim, dim),
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds `rows` samples (row-major, `dim` values each).
    pub fn add(&mut self, rows: &[f32]) {
        let d = self.dim;
        let n = rows.len() / d;
        assert_eq!(n * d, rows.len(), "samples of {d} values");
        if n == 0 {
            return;
        }
        let shift = self
            .shift
            .get_or_insert_with(|| rows[..d].iter().map(|&v| v as f64).collect());
        let centered = Mat::from_fn(n, d, |i, j| rows[i * d + j] as f64 - shift[j]);
        for i in 0..n {
            for j in 0..d {
                self.sum[j] += centered[(i, j)];
            }
        }
        faer::linalg::matmul::matmul(
            self.outer.as_mut(),
            Accum::Add,
            centered.transpose(),
            centered.as_ref(),
            1.0,
            Par::Seq,
        );
        self.count += n as u64;
    }

    /// Mean and unbiased covariance (N − 1 in the denominator).
    pub fn finish(self) -> Result<Stats, MetricError> {
        if self.count < 2 {
            return Err(MetricError::Invalid(format!(
                "{} samples: statistics need at least 2",
                self.count
            )));
        }
        let (d, n) = (self.dim, self.count as f64);
        let shift = self.shift.expect("set by the first sample");
        let mean_centered: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let mu = shift
            .iter()
            .zip(&mean_centered)
            .map(|(s, m)| s + m)
            .collect();
        let mut sigma = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                // Average of the two triangles keeps sigma exactly symmetric.
                let o = 0.5 * (self.outer[(i, j)] + self.outer[(j, i)]);
                sigma[i * d + j] = (o - n * mean_centered[i] * mean_centered[j]) / (n - 1.0);
            }
        }
        Ok(Stats { mu, sigma })
    }
}

/// Statistics of a whole feature matrix.
pub fn of(features: &Features) -> Result<Stats, MetricError> {
    features.check("features", 2)?;
    let mut builder = StatsBuilder::new(features.cols);
    let as_f32: Vec<f32> = features.data.iter().map(|&v| v as f32).collect();
    builder.add(&as_f32);
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_equals_direct() {
        // Samples with a large offset: the shift keeps the covariance exact.
        let rows: Vec<f32> = (0..30)
            .map(|i| 1000.0 + ((i * 7) % 11) as f32 + (i % 3) as f32 * 0.5)
            .collect();
        let mut builder = StatsBuilder::new(3);
        builder.add(&rows[..9]);
        builder.add(&rows[9..]);
        let s = builder.finish().unwrap();
        let n = 10.0;
        for a in 0..3 {
            let mean: f64 = (0..10).map(|i| rows[i * 3 + a] as f64).sum::<f64>() / n;
            assert!((s.mu[a] - mean).abs() < 1e-9);
            for b in 0..3 {
                let mb: f64 = (0..10).map(|i| rows[i * 3 + b] as f64).sum::<f64>() / n;
                let cov: f64 = (0..10)
                    .map(|i| (rows[i * 3 + a] as f64 - mean) * (rows[i * 3 + b] as f64 - mb))
                    .sum::<f64>()
                    / (n - 1.0);
                assert!((s.sigma[a * 3 + b] - cov).abs() < 1e-9, "{a} {b}");
            }
        }
    }

    #[test]
    fn fewer_than_two_samples() {
        let mut b = StatsBuilder::new(2);
        b.add(&[1.0, 2.0]);
        assert_eq!(
            b.finish().unwrap_err().to_string(),
            "1 samples: statistics need at least 2"
        );
    }

    #[test]
    fn non_symmetric_and_non_finite_are_refused() {
        let s = Stats {
            mu: vec![0.0, 0.0],
            sigma: vec![1.0, 0.5, 0.2, 1.0],
        };
        assert!(
            s.check("x")
                .unwrap_err()
                .to_string()
                .contains("sigma is not symmetric: sigma[0, 1] and sigma[1, 0] differ by 3e-1")
        );
        let s = Stats {
            mu: vec![f64::NAN, 0.0],
            sigma: vec![1.0, 0.0, 0.0, 1.0],
        };
        assert_eq!(s.check("x").unwrap_err().to_string(), "x: mu[0] is NaN");
    }
}
