//! Improved precision and recall (Kynkäänniemi et al.) and density and coverage (Naeem
//! et al.), from k-nearest-neighbour balls around real and fake features.
//!
//! A sample's radius is the distance to its k-th nearest neighbour in its own set (itself
//! not counted). torch-fidelity's precision/recall count a point inside a ball when its
//! distance is at most the radius (`<=`); the `prdc` package uses `<`. Both are offered.

use super::{Features, MetricError};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Prdc {
    pub precision: f64,
    pub recall: f64,
    pub density: f64,
    pub coverage: f64,
}

/// Whether a distance equal to the radius counts as inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ball {
    Closed,
    Open,
}

fn distances(a: &Features, b: &Features) -> Vec<f64> {
    let mut out = vec![0.0; a.rows * b.rows];
    for i in 0..a.rows {
        for j in 0..b.rows {
            out[i * b.rows + j] = a
                .row(i)
                .iter()
                .zip(b.row(j))
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f64>()
                .sqrt();
        }
    }
    out
}

fn radii(within: &[f64], n: usize, k: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let mut row = within[i * n..(i + 1) * n].to_vec();
            row.sort_by(f64::total_cmp);
            row[k] // row[0] is the sample itself
        })
        .collect()
}

pub fn prdc(real: &Features, fake: &Features, k: usize, ball: Ball) -> Result<Prdc, MetricError> {
    if real.cols != fake.cols {
        return Err(MetricError::Invalid(format!(
            "features of different dimensions: {} and {}",
            real.cols, fake.cols
        )));
    }
    real.check("real features", k + 1)?;
    fake.check("fake features", k + 1)?;
    let inside = |d: f64, r: f64| match ball {
        Ball::Closed => d <= r,
        Ball::Open => d < r,
    };
    let (nr, nf) = (real.rows, fake.rows);
    let real_radii = radii(&distances(real, real), nr, k);
    let fake_radii = radii(&distances(fake, fake), nf, k);
    let real_fake = distances(real, fake); // [real i][fake j]
    let at = |i: usize, j: usize| real_fake[i * nf + j];
    let precision = (0..nf)
        .filter(|&j| (0..nr).any(|i| inside(at(i, j), real_radii[i])))
        .count() as f64
        / nf as f64;
    let recall = (0..nr)
        .filter(|&i| (0..nf).any(|j| inside(at(i, j), fake_radii[j])))
        .count() as f64
        / nr as f64;
    let density = (0..nf)
        .map(|j| (0..nr).filter(|&i| inside(at(i, j), real_radii[i])).count())
        .sum::<usize>() as f64
        / (k as f64 * nf as f64);
    let coverage = (0..nr)
        .filter(|&i| {
            let nearest = (0..nf).map(|j| at(i, j)).fold(f64::INFINITY, f64::min);
            inside(nearest, real_radii[i])
        })
        .count() as f64
        / nr as f64;
    Ok(Prdc {
        precision,
        recall,
        density,
        coverage,
    })
}
