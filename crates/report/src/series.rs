//! Curves made from curves: a running mean so per-step losses read as a trend, and the
//! mean of several runs (seeds) with their spread.

/// A running mean over `window` points.
pub fn smooth(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let window = window.max(1);
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            sum += y;
            if i >= window {
                sum -= points[i - window].1;
            }
            (x, sum / (i + 1).min(window) as f64)
        })
        .collect()
}

/// At most about `max` points that draw as `points` do: the lowest and the highest of
/// each run of neighbours, in order of x. A chart is a few hundred pixels wide, so an
/// 80k-step training's loss needs no 80k points, and keeping both extremes keeps its
/// spikes.
pub fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let per_bucket = points.len().div_ceil((max / 2).max(1));
    if per_bucket <= 2 {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(max + 1);
    for bucket in points.chunks(per_bucket) {
        let by_y = |a: &&(f64, f64), b: &&(f64, f64)| a.1.total_cmp(&b.1);
        let (lo, hi) = (
            bucket.iter().min_by(by_y).unwrap(),
            bucket.iter().max_by(by_y).unwrap(),
        );
        let (first, second) = if lo.0 <= hi.0 { (lo, hi) } else { (hi, lo) };
        out.push(*first);
        if second != first {
            out.push(*second);
        }
    }
    out
}

/// The mean of `xs` and, with two or more, their sample standard deviation (`n - 1`):
/// the one aggregate of tables, charts and `pipe metrics`. `xs` is not empty.
pub fn mean_sd(xs: &[f64]) -> (f64, Option<f64>) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.len() > 1)
        .then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, sd)
}

/// (x, low, high) at each x: the spread around a line.
pub type Band = Vec<(f64, f64, f64)>;

/// The mean of runs at each x any of them has (in order of x), and the band of mean ±
/// sample standard deviation where two or more runs have a value (one run has no
/// spread: its band is the line). Non-finite values are left out.
pub fn mean_over(runs: &[Vec<(f64, f64)>]) -> (Vec<(f64, f64)>, Band) {
    let mut at: Vec<(f64, f64)> = runs
        .iter()
        .flatten()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    at.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut mean, mut band) = (Vec::new(), Vec::new());
    for group in at.chunk_by(|a, b| a.0 == b.0) {
        let ys: Vec<f64> = group.iter().map(|p| p.1).collect();
        let (m, sd) = mean_sd(&ys);
        let sd = sd.unwrap_or(0.0);
        mean.push((group[0].0, m));
        band.push((group[0].0, m - sd, m + sd));
    }
    (mean, band)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_mean() {
        let points = [(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)];
        assert_eq!(smooth(&points, 2), [(0.0, 1.0), (1.0, 2.0), (2.0, 4.0)]);
    }

    #[test]
    fn thinning_keeps_each_stretch_lowest_and_highest() {
        let points: Vec<(f64, f64)> = (0..1000)
            .map(|i| (i as f64, if i == 437 { 99.0 } else { (i % 7) as f64 }))
            .collect();
        let thinned = thin(&points, 100);
        assert!(thinned.len() <= 100, "{}", thinned.len());
        assert!(thinned.contains(&(437.0, 99.0)));
        assert!(thinned.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(thinned[0], (0.0, 0.0));
        let short = [(0.0, 1.0), (1.0, 2.0)];
        assert_eq!(thin(&short, 100), short);
    }

    #[test]
    fn mean_and_sd_over_runs_at_each_step() {
        let runs = vec![
            vec![(0.0, 10.0), (100.0, 4.0), (200.0, 2.0)],
            vec![(0.0, 14.0), (100.0, 6.0), (200.0, f64::NAN)],
        ];
        let (mean, band) = mean_over(&runs);
        assert_eq!(mean, [(0.0, 12.0), (100.0, 5.0), (200.0, 2.0)]);
        let sd0 = 8f64.sqrt();
        assert_eq!(band[0], (0.0, 12.0 - sd0, 12.0 + sd0));
        assert_eq!(band[2], (200.0, 2.0, 2.0));
    }
}
