//! The adaptive probability of ADA and APA (v0.4's `aa_p`): every `interval`
//! iterations p moves by the sign of D's outputs on real images, as ADA's heuristic
//! does (v0.4's worker): up where D is sure of the real images beyond the target, down
//! where it is not. p and the signs gathered since it last moved are kept in
//! checkpoints.

use burn::prelude::*;

use crate::config::AdaptiveP;

/// p and what its next move is measured on.
#[derive(Debug, Clone)]
pub struct Adaptive<B: Backend> {
    pub p: f64,
    /// Σ sign(D(x)) over the real images D has seen since p last moved, on the device
    /// (read when p moves).
    pub signs: Tensor<B, 1>,
    pub count: u64,
}

impl<B: Backend> Adaptive<B> {
    pub fn new(p: f64, signs: f64, count: u64, device: &B::Device) -> Adaptive<B> {
        Adaptive {
            p,
            signs: Tensor::from_floats([signs as f32], device),
            count,
        }
    }

    /// Adds D's outputs on real images (`[n]`) to the signs.
    pub fn observe(&mut self, real_logits: Tensor<B, 1>) {
        self.count += real_logits.dims()[0] as u64;
        self.signs = self.signs.clone() + real_logits.sign().sum();
    }

    /// Moves p (v0.4: p + sign(mean sign − target) · count / (kimg · 1000), within
    /// [0, 1]) and starts the signs over.
    pub fn adapt(&mut self, config: &AdaptiveP) {
        let sum = self.signs.clone().into_scalar().elem::<f64>();
        self.p = adapted(self.p, sum, self.count, config);
        self.signs = self.signs.zeros_like();
        self.count = 0;
    }
}

/// p after a move measured on `count` real images whose signs sum to `sum`.
pub fn adapted(p: f64, sum: f64, count: u64, config: &AdaptiveP) -> f64 {
    let heuristic = sum / count as f64;
    let direction = match heuristic - config.target {
        d if d > 0.0 => 1.0,
        d if d < 0.0 => -1.0,
        _ => 0.0,
    };
    (p + direction * count as f64 / (config.kimg * 1000.0)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    const CONFIG: AdaptiveP = AdaptiveP {
        initial_p: 0.0,
        target: 0.6,
        kimg: 0.5,
        interval: 4,
    };

    /// v0.4's move, worked by hand: 256 images whose mean sign is 0.75 (over the
    /// target 0.6) raise p by 256/500; 0.25 lowers it; p stays within [0, 1].
    #[test]
    fn p_moves_by_the_sign_of_the_heuristic_within_0_and_1() {
        assert!((adapted(0.1, 192.0, 256, &CONFIG) - (0.1 + 0.512)).abs() < 1e-12);
        assert!((adapted(0.7, 64.0, 256, &CONFIG) - (0.7 - 0.512)).abs() < 1e-12);
        assert_eq!(adapted(0.9, 256.0, 256, &CONFIG), 1.0);
        assert_eq!(adapted(0.2, -256.0, 256, &CONFIG), 0.0);
        assert_eq!(adapted(0.3, 0.6 * 250.0, 250, &CONFIG), 0.3);
        let device = Default::default();
        let mut adaptive = Adaptive::<Flex>::new(0.1, 0.0, 0, &device);
        adaptive.observe(Tensor::from_floats([2.0, -1.0, 3.0, 0.5], &device));
        adaptive.adapt(&CONFIG);
        // Mean sign 0.5 < 0.6: down by 4/500.
        assert!((adaptive.p - (0.1 - 0.008)).abs() < 1e-9 && adaptive.count == 0);
    }
}
