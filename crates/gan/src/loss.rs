//! Losses: the adversarial ones (reference: utils/losses.py), cross-entropy for ACGAN,
//! and ContraGAN's conditional contrastive (2C) loss.

use burn::prelude::*;
use burn::tensor::activation;

use super::config::AdvLoss;
use super::layers::normalize_rows;

impl AdvLoss {
    /// The discriminator's loss on real and fake logits.
    pub fn discriminator<B: Backend>(self, real: Tensor<B, 1>, fake: Tensor<B, 1>) -> Tensor<B, 1> {
        match self {
            AdvLoss::Hinge => {
                activation::relu(-real + 1.0).mean() + activation::relu(fake + 1.0).mean()
            }
            AdvLoss::Vanilla | AdvLoss::Logistic => {
                -(activation::log_sigmoid(real).mean() + activation::log_sigmoid(-fake).mean())
            }
            AdvLoss::LeastSquares => {
                ((real - 1.0).powi_scalar(2).mean() + fake.powi_scalar(2).mean()) * 0.5
            }
            AdvLoss::Wasserstein => fake.mean() - real.mean(),
        }
    }

    /// The generator's loss on the logits of its images.
    pub fn generator<B: Backend>(self, fake: Tensor<B, 1>) -> Tensor<B, 1> {
        match self {
            AdvLoss::Hinge | AdvLoss::Wasserstein => -fake.mean(),
            AdvLoss::Vanilla | AdvLoss::Logistic => -activation::log_sigmoid(fake).mean(),
            AdvLoss::LeastSquares => (fake - 1.0).powi_scalar(2).mean() * 0.5,
        }
    }
}

/// Mean cross-entropy of class logits against labels.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let n = labels.dims()[0];
    let log_p = activation::log_softmax(logits, 1);
    -log_p.gather(1, labels.reshape([n, 1])).mean()
}

/// ContraGAN's 2C loss. With e the image embeddings and p the class embeddings (both
/// L2-normalized here), s_ij = cos(e_i, e_j) and t the temperature:
/// `−mean_i log(num_i / den_i)`, where
/// num_i = exp(cos(e_i, p_i)/t) + Σ_{j≠i, y_j=y_i} exp(s_ij/t) and
/// den_i = exp(cos(e_i, p_i)/t) + Σ_{j≠i} exp(s_ij/t).
/// Without `positives`, the same-class sum is left out of the numerator. With `views`
/// (the embeddings of the images' augmented copies, the seed's augmented positives),
/// each image's `exp(cos(e_i, v_i)/t)` joins both sums.
pub fn contrastive<B: Backend>(
    embed: Tensor<B, 2>,
    proxy: Tensor<B, 2>,
    labels: &[u32],
    temperature: f64,
    positives: bool,
    views: Option<Tensor<B, 2>>,
) -> Tensor<B, 1> {
    let n = labels.len();
    let device = embed.device();
    let e = normalize_rows(embed);
    let p = normalize_rows(proxy);
    let similarity = e.clone().matmul(e.clone().transpose());
    let others: Vec<f32> = (0..n * n)
        .map(|k| if k / n != k % n { 1.0 } else { 0.0 })
        .collect();
    let same: Vec<f32> = (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            if i != j && labels[i] == labels[j] {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let mask = |m: Vec<f32>| Tensor::<B, 1>::from_floats(m.as_slice(), &device).reshape([n, n]);
    let instances = (similarity / temperature).exp();
    let to_view = views
        .map(|v| ((e.clone() * normalize_rows(v)).sum_dim(1).reshape([n]) / temperature).exp());
    let to_proxy = ((e * p).sum_dim(1).reshape([n]) / temperature).exp();
    let to_positives = match to_view {
        Some(to_view) => to_proxy + to_view,
        None => to_proxy,
    };
    let den = (instances.clone() * mask(others)).sum_dim(1).reshape([n]) + to_positives.clone();
    let num = if positives {
        (instances * mask(same)).sum_dim(1).reshape([n]) + to_positives
    } else {
        to_positives
    };
    -(num / den).log().mean()
}

/// ReACGAN's Data-to-Data Cross-Entropy (StudioGAN v0.4's `Data2DataCrossEntropyLoss`):
/// with e and p as for [`contrastive`], margin `m_p` and temperature t,
/// s_ij = (cos(e_i, e_j) + m_p − 1)/t over j ≠ i, shifted by each row's largest
/// (held constant), a_i = relu((m_p − cos(e_i, p_i))/t), and
/// `mean_i [a_i + log(exp(−a_i) + Σ_{j: y_j≠y_i} exp(relu(s_ij) − max_j s_ij))]`:
/// the proxy attracts, samples of other classes repel, samples of the same class are
/// left alone.
pub fn data_to_data<B: Backend>(
    embed: Tensor<B, 2>,
    proxy: Tensor<B, 2>,
    labels: &[u32],
    m_p: f64,
    temperature: f64,
) -> Tensor<B, 1> {
    let n = labels.len();
    let device = embed.device();
    let e = normalize_rows(embed);
    let p = normalize_rows(proxy);
    let similarity = (e.clone().matmul(e.clone().transpose()) + (m_p - 1.0)) / temperature;
    let mask = |keep: &dyn Fn(usize, usize) -> bool| {
        let m: Vec<f32> = (0..n * n)
            .map(|k| if keep(k / n, k % n) { 1.0 } else { 0.0 })
            .collect();
        Tensor::<B, 1>::from_floats(m.as_slice(), &device).reshape([n, n])
    };
    // The largest similarity of each row off the diagonal, a constant for the gradient.
    let diagonal = mask(&|i, j| i == j);
    let largest = (similarity.clone() - diagonal * 1e9).max_dim(1).detach();
    let shifted = activation::relu(similarity) - largest;
    let others = mask(&|i, j| labels[i] != labels[j]);
    let repelled = (shifted.exp() * others).sum_dim(1).reshape([n]);
    let to_proxy = (e * p).sum_dim(1).reshape([n]);
    let attraction = activation::relu((-to_proxy + m_p) / temperature);
    let repulsion = ((-attraction.clone()).exp() + repelled).log();
    (attraction + repulsion).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn scalar(t: Tensor<Flex, 1>) -> f32 {
        t.into_scalar()
    }

    #[test]
    fn adversarial_losses_by_hand() {
        let d = Default::default();
        let real = Tensor::<Flex, 1>::from_floats([2.0, 0.5], &d);
        let fake = Tensor::<Flex, 1>::from_floats([-0.5, 0.0], &d);
        let hinge = scalar(AdvLoss::Hinge.discriminator(real.clone(), fake.clone()));
        assert!((hinge - (0.25 + 0.75)).abs() < 1e-6);
        assert!((scalar(AdvLoss::Hinge.generator(fake.clone())) - 0.25).abs() < 1e-6);
        let w = scalar(AdvLoss::Wasserstein.discriminator(real.clone(), fake.clone()));
        assert!((w - (-0.25 - 1.25)).abs() < 1e-6);
        let ls = scalar(AdvLoss::LeastSquares.discriminator(real.clone(), fake.clone()));
        assert!((ls - 0.5 * (0.625 + 0.125)).abs() < 1e-6);
        let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
        let vanilla = scalar(AdvLoss::Vanilla.discriminator(real, fake));
        let expected =
            -(((sig(2.0).ln() + sig(0.5).ln()) / 2.0) + ((sig(0.5).ln() + sig(0.0).ln()) / 2.0));
        assert!((vanilla - expected).abs() < 1e-5);
    }

    #[test]
    fn cross_entropy_by_hand() {
        let d = Default::default();
        let logits = Tensor::<Flex, 2>::from_floats([[0.0, 1.0], [2.0, 0.0]], &d);
        let labels = Tensor::<Flex, 1, Int>::from_ints([1, 1], &d);
        let expected =
            (-(1f32.exp() / (1.0 + 1f32.exp())).ln() - (1.0 / (1.0 + 2f32.exp())).ln()) / 2.0;
        assert!((scalar(cross_entropy(logits, labels)) - expected).abs() < 1e-6);
    }
}
