//! LOGAN's latent optimization as the seed does it (`latent_optimise` and `calc_derv`
//! of utils/losses.py at 67e0de0, called by trainer.py's `run` before D's and G's
//! passes over fakes): with G and D in eval mode, g = ∇_z Σ D(G(z)), and each kept
//! sample's z moves by δ = α·g / (β + ‖g‖²); then z' = clamp(z + keep·δ, −1, 1), all of
//! z clamped.
//!
//! The seed builds g with `create_graph=True`, so a step's loss L differentiates
//! through z' as well: dL/dθ = ∂L/∂θ + ⟨∂L/∂z', ∂z'/∂θ⟩. The second part is
//! ⟨u, ∂g/∂θ⟩ = ∂/∂θ ⟨g, u⟩ with u = (∂z'/∂g)ᵀ ∂L/∂z' held constant, and ⟨g, u⟩ is the
//! derivative of Σ D(G(z)) along u: G's and D's forward mode (`generator::tangent`,
//! `discriminator::tangent`) compute it, reverse mode differentiates it, as for the
//! gradient penalties (`penalty`).

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use kernels::Kernels;
use rng::Rng;

use super::grads::{Grads, add_into};
use super::term::{DPass, GPass, Term};
use crate::config::{LatentOpConfig, ModelConfig};
use crate::layers::Mode;
use crate::tensors::{Tensors, label_tensor};
use crate::{discriminator, generator};

/// Which network's parameters a step trains, and so differentiates through the move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Generator,
    Discriminator,
}

/// Whether each of `n` samples moves: the seed's `uniform > 1 − rate`, one draw per
/// sample.
pub fn keep(op: &LatentOpConfig, n: usize, rng: &mut Rng) -> Vec<bool> {
    (0..n).map(|_| rng.f64() > 1.0 - op.rate).collect()
}

/// One move of a batch's z, and what differentiating through it needs.
pub struct Shift<B: Kernels> {
    op: LatentOpConfig,
    /// The networks as the move saw them: the differentiation replays them in eval
    /// mode, though the step's own passes have since iterated their spectral norms.
    g: Tensors<B>,
    d: Tensors<B>,
    z: Tensor<B, 2>,
    labels: Vec<u32>,
    /// ∇_z Σ D(G(z)), `[n, z_dim]`.
    gradient: Tensor<B, 2>,
    /// β + ‖g‖² per sample, `[n, 1]`.
    damping: Tensor<B, 2>,
    /// 1 where z' follows z + keep·δ (kept and inside the clamp), else 0.
    open: Tensor<B, 2>,
    moved: Tensor<Autodiff<B>, 2>,
}

impl<B: Kernels> Shift<B> {
    /// Moves `z` (`[n, z_dim]`, the labels `labels`) for G and D as they are now;
    /// `keep` from [`keep`].
    pub fn new(
        op: &LatentOpConfig,
        g: Tensors<B>,
        d: Tensors<B>,
        model: &ModelConfig,
        z: Tensor<B, 2>,
        labels: &[u32],
        keep: &[bool],
    ) -> Shift<B> {
        let device = z.device();
        let y = label_tensor::<Autodiff<B>>(labels, &device);
        let leaf = Tensor::<Autodiff<B>, 2>::from_inner(z.clone()).require_grad();
        let mut constant_g = Tensors::<Autodiff<B>>::from_inner(g.clone(), false);
        let mut constant_d = Tensors::<Autodiff<B>>::from_inner(d.clone(), false);
        let d_y = label_tensor::<Autodiff<B>>(&model.d_labels(labels, false), &device);
        let fake = generator::run(&mut constant_g, Mode::EVAL, model, leaf.clone(), y);
        let out = discriminator::run(&mut constant_d, Mode::EVAL, model, fake, d_y);
        let gradient = leaf
            .grad(&out.adv.sum().backward())
            .expect("D's logits depend on z");
        let n = labels.len();
        let damping = gradient.clone().powi_scalar(2).sum_dim(1) + op.beta;
        let kept: Vec<f32> = keep.iter().map(|&k| f32::from(u8::from(k))).collect();
        let kept = Tensor::<B, 1>::from_floats(kept.as_slice(), &device).reshape([n, 1]);
        let step = gradient.clone() * op.alpha / damping.clone();
        let unclamped = z.clone() + step * kept.clone();
        // torch.clamp passes the gradient where min ≤ x ≤ max.
        let inside = unclamped
            .clone()
            .greater_equal_elem(-1.0)
            .bool_and(unclamped.clone().lower_equal_elem(1.0))
            .float();
        let moved = Tensor::from_inner(unclamped.clamp(-1.0, 1.0)).require_grad();
        Shift {
            op: *op,
            g,
            d,
            z,
            labels: labels.to_vec(),
            gradient,
            damping,
            open: inside * kept,
            moved,
        }
    }

    /// z', the input of the step's fakes: a leaf, so that the step's backward gives
    /// ∂L/∂z'.
    pub fn moved(&self) -> Tensor<Autodiff<B>, 2> {
        self.moved.clone()
    }

    /// Adds to `into` (the gradient of a step's loss in the parameters of `side`'s
    /// network) the part that flows through the move; `grads` is that loss's backward.
    pub fn add_gradients(
        &self,
        grads: &<Autodiff<B> as AutodiffBackend>::Gradients,
        model: &ModelConfig,
        side: Side,
        into: &mut Grads<B>,
    ) {
        let Some(outer) = self.moved.grad(grads) else {
            return;
        };
        // u = (∂δ/∂g)ᵀ w for w = ∂L/∂z' where z' follows δ, with
        // ∂δ/∂g = α (I/(β + ‖g‖²) − 2 g gᵀ/(β + ‖g‖²)²).
        let w = outer * self.open.clone();
        let along = (self.gradient.clone() * w.clone()).sum_dim(1);
        let direction = (w - self.gradient.clone() * along * 2.0 / self.damping.clone())
            * self.op.alpha
            / self.damping.clone();
        let mut g = Tensors::<Autodiff<B>>::from_inner(self.g.clone(), side == Side::Generator);
        let mut d = Tensors::<Autodiff<B>>::from_inner(self.d.clone(), side == Side::Discriminator);
        let device = self.z.device();
        let y = label_tensor::<Autodiff<B>>(&self.labels, &device);
        let n = self.labels.len();
        let images = generator::tangent(
            &mut g,
            Mode::EVAL,
            model,
            Tensor::from_inner(self.z.clone()),
            Tensor::from_inner(direction),
            y,
        );
        let y = label_tensor::<Autodiff<B>>(&model.d_labels(&self.labels, false), &device);
        let out = discriminator::tangent(
            &mut d,
            Mode::EVAL,
            model,
            images.clone().narrow(0, 0, n),
            images.narrow(0, n, n),
            y,
        );
        let along = out.adv.narrow(0, n, n).sum();
        let grads = along.backward();
        let through = match side {
            Side::Generator => g.gradients(&grads),
            Side::Discriminator => d.gradients(&grads),
        };
        add_into(into, through);
    }
}

/// The seed's `latent_norm_reg_weight` in G's loss: its `latent_optimise` returns the
/// flag `trans_cost` where the transport cost was meant, and the trainer adds
/// `flag · weight`, a constant.
pub struct NormRegularizer {
    pub weight: f64,
}

impl<B: Kernels> Term<B> for NormRegularizer {
    fn discriminator(&self, _pass: &DPass<B>, _addends: &mut Vec<Tensor<B, 1>>) {}

    fn generator(&self, pass: &GPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        let device = pass.fake.adv.device();
        addends.push(Tensor::from_floats([self.weight as f32], &device));
    }
}
