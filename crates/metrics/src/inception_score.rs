//! Inception Score as torch-fidelity computes it: softmax of the logits, the samples cut
//! into contiguous splits (no shuffling), per split exp(mean KL(p_i ‖ p̄)), then the mean
//! and the population standard deviation over splits.

use super::{Features, MetricError};

pub fn inception_score(logits: &Features, splits: usize) -> Result<(f64, f64), MetricError> {
    logits.check("logits", splits.max(2))?;
    let (n, c) = (logits.rows, logits.cols);
    // log-softmax per row, in f64.
    let mut log_p = vec![0.0; n * c];
    for i in 0..n {
        let row = logits.row(i);
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let log_sum = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        for (j, v) in row.iter().enumerate() {
            log_p[i * c + j] = v - log_sum;
        }
    }
    let mut scores = Vec::with_capacity(splits);
    for s in 0..splits {
        let (start, end) = (s * n / splits, (s + 1) * n / splits);
        let m = (end - start) as f64;
        let mut p_mean = vec![0.0; c];
        for i in start..end {
            for j in 0..c {
                p_mean[j] += log_p[i * c + j].exp() / m;
            }
        }
        let log_q: Vec<f64> = p_mean.iter().map(|q| q.ln()).collect();
        let mut kl = 0.0;
        for i in start..end {
            for j in 0..c {
                let lp = log_p[i * c + j];
                let p = lp.exp();
                // 0 · log(0 / q) is 0, also where q underflowed to 0 too (which
                // torch-fidelity would turn into NaN).
                if p > 0.0 {
                    kl += p * (lp - log_q[j]);
                }
            }
        }
        scores.push((kl / m).exp());
    }
    let mean = scores.iter().sum::<f64>() / splits as f64;
    let var = scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / splits as f64;
    Ok((mean, var.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_logits_stay_finite() {
        // Each image certain of its own class, others' probabilities underflowing.
        let data = vec![2000.0, 0.0, 0.0, 2000.0];
        let (mean, std) = inception_score(&Features::new(2, 2, data), 2).unwrap();
        assert_eq!((mean, std), (1.0, 0.0));
    }

    #[test]
    fn confident_and_uniform() {
        // Each sample certain of a different class: IS = number of classes.
        let mut data = vec![0.0; 4 * 4];
        for i in 0..4 {
            data[i * 4 + i] = 60.0;
        }
        let (mean, std) = inception_score(&Features::new(4, 4, data), 1).unwrap();
        assert!((mean - 4.0).abs() < 1e-9 && std == 0.0);
        let (mean, _) = inception_score(&Features::new(4, 4, vec![1.0; 16]), 2).unwrap();
        assert!((mean - 1.0).abs() < 1e-12);
    }
}
