//! Intra-class FID (StudioGAN v0.4's iFID): for each class, the FID between the
//! generated images of that class and the real images of that class; and their mean.
//! FID over all images cannot see a generator that draws the right images under the
//! wrong labels, or too few kinds of images within a class; iFID can.
//!
//! A class has few images (CIFAR-10's test set: 1,000, against 2,048 features), so
//! both covariances are singular and the general FID path (an eigendecomposition of a
//! 2,048 × 2,048 matrix) would be slow for each of 10–1,000 classes. With the features
//! at hand there is an exact shortcut: for centred feature matrices X₁ (n₁ × d) and X₂,
//! Σ₁Σ₂ = X₁ᵀX₁X₂ᵀX₂ / ((n₁−1)(n₂−1)) has the nonzero eigenvalues of
//! M Mᵀ / ((n₁−1)(n₂−1)) with M = X₁X₂ᵀ (n₁ × n₂), so tr (Σ₁Σ₂)^½ is the sum of M's
//! singular values over √((n₁−1)(n₂−1)): an n₁ × n₁ eigenproblem.

use std::collections::BTreeMap;

use faer::{Accum, Mat, Par, Side};

use super::{Features, MetricError};

/// One class's FID, and how many images each side had.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassFid {
    pub class: u32,
    pub fid: f64,
    pub real: usize,
    pub fake: usize,
}

/// The FID of every class of `real` (the classes its labels name), and their mean.
/// Every class needs at least 2 images on each side, and `fake` no class that `real`
/// lacks.
pub fn intra_class_fid(
    real: &Features,
    real_labels: &[u32],
    fake: &Features,
    fake_labels: &[u32],
) -> Result<(Vec<ClassFid>, f64), MetricError> {
    if real.cols != fake.cols {
        return Err(MetricError::Invalid(format!(
            "features of different dimensions: {} (real) and {} (generated)",
            real.cols, fake.cols
        )));
    }
    for (what, features, labels) in [
        ("real", real, real_labels),
        ("generated", fake, fake_labels),
    ] {
        if features.rows != labels.len() {
            return Err(MetricError::Invalid(format!(
                "{} {what} images but {} labels",
                features.rows,
                labels.len()
            )));
        }
    }
    let real_by_class = by_class(real, real_labels);
    let fake_by_class = by_class(fake, fake_labels);
    if let Some(class) = fake_by_class
        .keys()
        .find(|c| !real_by_class.contains_key(c))
    {
        return Err(MetricError::Invalid(format!(
            "generated images of class {class}, which the real images do not have"
        )));
    }
    let mut classes = Vec::with_capacity(real_by_class.len());
    for (&class, real_rows) in &real_by_class {
        let fake_rows = fake_by_class.get(&class).map(Vec::len).unwrap_or(0);
        if real_rows.len() < 2 || fake_rows < 2 {
            return Err(MetricError::Invalid(format!(
                "class {class} has {} real and {fake_rows} generated images: \
                 its FID needs at least 2 of each",
                real_rows.len()
            )));
        }
        let a = centred(real, real_rows);
        let b = centred(fake, &fake_by_class[&class]);
        classes.push(ClassFid {
            class,
            fid: fid_of_centred(&a, &b)?,
            real: real_rows.len(),
            fake: fake_rows,
        });
    }
    let mean = classes.iter().map(|c| c.fid).sum::<f64>() / classes.len().max(1) as f64;
    Ok((classes, mean))
}

fn by_class(features: &Features, labels: &[u32]) -> BTreeMap<u32, Vec<usize>> {
    let mut classes: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (row, &label) in labels.iter().enumerate().take(features.rows) {
        classes.entry(label).or_default().push(row);
    }
    classes
}

/// The rows' mean, and the rows minus it (n × d).
struct Centred {
    mean: Vec<f64>,
    rows: Mat<f64>,
}

fn centred(features: &Features, rows: &[usize]) -> Centred {
    let d = features.cols;
    let mut mean = vec![0.0; d];
    for &r in rows {
        for (m, v) in mean.iter_mut().zip(features.row(r)) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows.len() as f64);
    let centred = Mat::from_fn(rows.len(), d, |i, j| features.row(rows[i])[j] - mean[j]);
    Centred {
        mean,
        rows: centred,
    }
}

/// |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^½ from centred rows (see the module's
/// comment for the last term).
fn fid_of_centred(a: &Centred, b: &Centred) -> Result<f64, MetricError> {
    let (na, nb) = (a.rows.nrows() as f64 - 1.0, b.rows.nrows() as f64 - 1.0);
    let mean_term: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    let trace = |x: &Mat<f64>, n: f64| x.squared_norm_l2() / n;
    // The smaller side's Gram matrix: M Mᵀ or Mᵀ M have the same nonzero eigenvalues.
    let (small, large) = if a.rows.nrows() <= b.rows.nrows() {
        (&a.rows, &b.rows)
    } else {
        (&b.rows, &a.rows)
    };
    let times_transposed = |a: faer::MatRef<'_, f64>, b: faer::MatRef<'_, f64>| {
        let mut out = Mat::zeros(a.nrows(), b.nrows());
        faer::linalg::matmul::matmul(
            out.as_mut(),
            Accum::Replace,
            a,
            b.transpose(),
            1.0,
            Par::Seq,
        );
        out
    };
    let m = times_transposed(small.as_ref(), large.as_ref());
    let gram = times_transposed(m.as_ref(), m.as_ref());
    let n = gram.nrows();
    let gram = Mat::from_fn(n, n, |i, j| 0.5 * (gram[(i, j)] + gram[(j, i)]));
    let eigen = gram
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| MetricError::Invalid(format!("eigenvalues did not converge: {e:?}")))?;
    // As in `fid`: eigenvalues within rounding of zero are zero.
    let largest = eigen.iter().fold(0f64, |m, &l| m.max(l.abs()));
    let noise = largest * f64::EPSILON * eigen.len() as f64;
    let singular: f64 = eigen
        .iter()
        .map(|&l| if l > noise { l.sqrt() } else { 0.0 })
        .sum();
    Ok(mean_term + trace(&a.rows, na) + trace(&b.rows, nb) - 2.0 * singular / (na * nb).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fid::fid, stats};

    fn features(rows: usize, cols: usize, seed: u64, shift: f64) -> Features {
        let mut rng = rng::Rng::new(seed);
        let data = (0..rows * cols)
            .map(|k| rng.normal() * (1.0 + (k % cols) as f64 * 0.1) + shift)
            .collect();
        Features::new(rows, cols, data)
    }

    fn subset(f: &Features, labels: &[u32], class: u32) -> Features {
        let rows: Vec<usize> = (0..f.rows).filter(|&r| labels[r] == class).collect();
        let data = rows.iter().flat_map(|&r| f.row(r).to_vec()).collect();
        Features::new(rows.len(), f.cols, data)
    }

    #[test]
    fn each_class_equals_fid_of_its_statistics() {
        // Fewer images per class than features (singular covariances, iFID's usual
        // case) and more (full rank): both equal the statistics' FID.
        for (rows, cols) in [(24, 16), (60, 6)] {
            let real = features(rows, cols, 1, 0.0);
            let fake = features(rows + 6, cols, 2, 0.3);
            let real_labels: Vec<u32> = (0..rows as u32).map(|i| i % 3).collect();
            let fake_labels: Vec<u32> = (0..rows as u32 + 6).map(|i| (i / 2) % 3).collect();
            let (classes, mean) =
                intra_class_fid(&real, &real_labels, &fake, &fake_labels).unwrap();
            assert_eq!(classes.len(), 3);
            for c in &classes {
                let a = stats::of(&subset(&real, &real_labels, c.class)).unwrap();
                let b = stats::of(&subset(&fake, &fake_labels, c.class)).unwrap();
                let expected = fid(&a, &b).unwrap();
                assert!(
                    (c.fid - expected).abs() < 1e-6 * expected.abs().max(1.0),
                    "{rows}×{cols} class {}: {} vs {expected}",
                    c.class,
                    c.fid
                );
            }
            let by_hand = classes.iter().map(|c| c.fid).sum::<f64>() / 3.0;
            assert_eq!(mean, by_hand);
        }
    }

    #[test]
    fn a_class_without_enough_images_is_named() {
        let real = features(6, 4, 1, 0.0);
        let fake = features(6, 4, 2, 0.0);
        let labels = [0, 0, 0, 1, 1, 1];
        let err = intra_class_fid(&real, &labels, &fake, &[0, 0, 0, 0, 0, 1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "class 1 has 3 real and 1 generated images: its FID needs at least 2 of each"
        );
        let err = intra_class_fid(&real, &labels, &fake, &[0, 0, 0, 1, 1, 7]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "generated images of class 7, which the real images do not have"
        );
    }
}
