//! Initial values of new tensors, as the reference initializes its networks: weights of
//! convolutions, linear layers and embeddings by the configured scheme, biases zero,
//! BatchNorm at identity, spectral-norm vectors random unit vectors.

use explain::Explain;
use serde::{Deserialize, Serialize};

use rng::Rng;

/// How weights start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Explain)]
pub enum Scheme {
    /// Orthogonal (rows or columns, whichever are fewer, orthonormal).
    #[default]
    Ortho,
    /// Normal with mean 0 and standard deviation 0.02.
    N02,
    /// Glorot/Xavier uniform.
    Xavier,
}

/// What a tensor is, for initialization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// A weight, stored PyTorch-style with the output (or, for transposed convolutions,
    /// input) channels first.
    Weight,
    Zeros,
    Ones,
    /// A random unit vector (spectral-norm u and v).
    UnitNormal,
    /// N(0, std²) whatever the scheme: StyleGAN2's layers, whose weights are drawn from
    /// N(0, 1/lr_multiplier²) and scaled at run time (equalized learning rate).
    Normal {
        std: f64,
    },
}

/// Draws initial values from one seeded stream, in the order tensors are created.
pub struct Initializer {
    scheme: Scheme,
    rng: Rng,
}

impl Initializer {
    pub fn new(scheme: Scheme, seed: u64) -> Initializer {
        Initializer {
            scheme,
            rng: Rng::new(seed),
        }
    }

    pub fn values(&mut self, init: Init, shape: &[usize]) -> Vec<f32> {
        let n: usize = shape.iter().product();
        match init {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Normal { std } => (0..n).map(|_| (std * self.normal()) as f32).collect(),
            Init::UnitNormal => {
                let v: Vec<f64> = (0..n).map(|_| self.normal()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                v.iter().map(|x| (x / norm) as f32).collect()
            }
            Init::Weight => {
                let rows = shape[0];
                let cols = n / rows.max(1);
                match self.scheme {
                    Scheme::Ortho => self.orthogonal(rows, cols),
                    Scheme::N02 => (0..n).map(|_| (0.02 * self.normal()) as f32).collect(),
                    Scheme::Xavier => {
                        let receptive: usize = shape[2..].iter().product();
                        let fan_in = shape.get(1).copied().unwrap_or(1) * receptive;
                        let fan_out = rows * receptive;
                        let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
                        (0..n)
                            .map(|_| ((2.0 * self.uniform() - 1.0) * bound) as f32)
                            .collect()
                    }
                }
            }
        }
    }

    fn uniform(&mut self) -> f64 {
        self.rng.f64()
    }

    fn normal(&mut self) -> f64 {
        self.rng.normal()
    }

    /// A `rows × cols` matrix with orthonormal rows (or columns when there are more
    /// rows than columns): the Q of a Gaussian matrix, signs fixed by R's diagonal so
    /// that the result is uniformly distributed, as `torch.nn.init.orthogonal_` does.
    fn orthogonal(&mut self, rows: usize, cols: usize) -> Vec<f32> {
        let (tall, short) = (rows.max(cols), rows.min(cols));
        let a = faer::Mat::<f64>::from_fn(tall, short, |_, _| self.normal());
        let qr = a.qr();
        let q = qr.compute_thin_Q();
        let r = qr.thin_R();
        let sign = |j: usize| if r[(j, j)] < 0.0 { -1.0 } else { 1.0 };
        let mut out = vec![0.0f32; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                // q is tall × short; the weight is q or its transpose.
                let v = if rows >= cols {
                    q[(i, j)] * sign(j)
                } else {
                    q[(j, i)] * sign(i)
                };
                out[i * cols + j] = v as f32;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gram(w: &[f32], rows: usize, cols: usize, by_rows: bool) -> f64 {
        // Largest deviation of W Wᵀ (or Wᵀ W) from the identity.
        let (n, len) = if by_rows { (rows, cols) } else { (cols, rows) };
        let at = |k: usize, t: usize| {
            if by_rows {
                w[k * cols + t]
            } else {
                w[t * cols + k]
            }
        };
        let mut worst = 0.0f64;
        for a in 0..n {
            for b in 0..n {
                let dot: f64 = (0..len).map(|t| at(a, t) as f64 * at(b, t) as f64).sum();
                let target = if a == b { 1.0 } else { 0.0 };
                worst = worst.max((dot - target).abs());
            }
        }
        worst
    }

    #[test]
    fn orthogonal_weights_are_orthonormal_both_ways() {
        let mut init = Initializer::new(Scheme::Ortho, 3);
        let wide = init.values(Init::Weight, &[4, 3, 3, 3]);
        assert!(gram(&wide, 4, 27, true) < 1e-5);
        let tall = init.values(Init::Weight, &[40, 6]);
        assert!(gram(&tall, 40, 6, false) < 1e-5);
    }

    #[test]
    fn unit_vectors_and_seeding() {
        let u = Initializer::new(Scheme::Ortho, 1).values(Init::UnitNormal, &[50]);
        let norm: f32 = u.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6);
        let a = Initializer::new(Scheme::N02, 9).values(Init::Weight, &[8, 8]);
        let b = Initializer::new(Scheme::N02, 9).values(Init::Weight, &[8, 8]);
        assert_eq!(a, b);
        let sd = (a.iter().map(|x| x * x).sum::<f32>() / 64.0).sqrt();
        assert!(sd > 0.01 && sd < 0.03, "{sd}");
    }
}
