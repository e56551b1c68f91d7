//! Kernel Inception Distance: the unbiased MMD² with the polynomial kernel
//! k(x, y) = (xᵀy / d + 1)³, averaged over random subsets (torch-fidelity's estimator).

use super::{Features, MetricError};
use rng::Rng;

/// Mean and population standard deviation of MMD² over `subsets` subsets of
/// `subset_size` samples of each side (drawn without replacement, seeded).
pub fn kid(
    a: &Features,
    b: &Features,
    subsets: usize,
    subset_size: usize,
    seed: u64,
) -> Result<(f64, f64), MetricError> {
    if a.cols != b.cols {
        return Err(MetricError::Invalid(format!(
            "features of different dimensions: {} and {}",
            a.cols, b.cols
        )));
    }
    a.check("first features", 2)?;
    b.check("second features", 2)?;
    let m = subset_size.min(a.rows).min(b.rows);
    if m < 2 {
        return Err(MetricError::Invalid(
            "KID needs subsets of at least 2 samples".into(),
        ));
    }
    let mut rng = Rng::new(seed);
    let mut values = Vec::with_capacity(subsets);
    for _ in 0..subsets.max(1) {
        let x = pick(&mut rng, a.rows, m);
        let y = pick(&mut rng, b.rows, m);
        values.push(mmd2(a, &x, b, &y));
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / values.len() as f64;
    Ok((mean, var.sqrt()))
}

fn pick(rng: &mut Rng, n: usize, m: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut all);
    all.truncate(m);
    all
}

fn kernel(x: &[f64], y: &[f64]) -> f64 {
    let dot: f64 = x.iter().zip(y).map(|(a, b)| a * b).sum();
    (dot / x.len() as f64 + 1.0).powi(3)
}

fn mmd2(a: &Features, x: &[usize], b: &Features, y: &[usize]) -> f64 {
    let m = x.len() as f64;
    let mut xx = 0.0;
    let mut yy = 0.0;
    let mut xy = 0.0;
    for (i, &p) in x.iter().enumerate() {
        for (j, &q) in x.iter().enumerate() {
            if i != j {
                xx += kernel(a.row(p), a.row(q));
            }
        }
        for (j, &q) in y.iter().enumerate() {
            if i != j {
                yy += kernel(b.row(y[i]), b.row(q));
            }
            xy += kernel(a.row(p), b.row(q));
        }
    }
    (xx + yy) / (m * (m - 1.0)) - 2.0 * xy / (m * m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_samples_score_near_zero_and_shifted_ones_above() {
        let a = Features::new(
            6,
            2,
            vec![0.0, 1.0, 1.0, 0.0, 0.5, 0.5, -1.0, 0.0, 0.0, -1.0, 0.2, 0.1],
        );
        let (same, _) = kid(&a, &a, 1, 6, 0).unwrap();
        let shifted = Features::new(6, 2, a.data.iter().map(|v| v + 3.0).collect());
        let (far, _) = kid(&a, &shifted, 1, 6, 0).unwrap();
        assert!(same < 0.0 + 1e-12 && same > -1.0, "{same}");
        assert!(far > 1.0, "{far}");
    }
}
