//! Gradient penalties on D: WGAN-GP as the seed computes it (`calc_derv4gp`), DRA,
//! max-GP and R1 as StudioGAN v0.4 does (`cal_dra_penalty`, `cal_maxgrad_penalty`,
//! `cal_r1_reg`). Each is a
//! function of D's input gradient g = ∇ₓ Σ D(x) at points made from the batch, so its
//! gradient in D's parameters θ is a gradient of a gradient, which burn's autodiff
//! (no double backward) does not give. By the chain rule it is ∂/∂θ ⟨g, v⟩ with
//! v = ∂penalty/∂g held constant, and ⟨g, v⟩ is the derivative of Σ D along v: D's
//! forward mode (`discriminator::tangent`) computes it, and reverse mode differentiates
//! that. Exact, with no step size; ReLU masks and max-pool choices are constants, as
//! they are to PyTorch's double backward. (A central difference of two first-order
//! gradients is not: across ReLU kinks it converges to another value than autograd's.)

use burn::backend::Autodiff;
use burn::prelude::*;
use kernels::Kernels;
use rng::Rng;

use super::augment::Draws;
use crate::config::{ModelConfig, TrainConfig};
use crate::discriminator;
use crate::layers::Mode;
use crate::tensors::{Role, Tensors, label_tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// WGAN-GP: mean (‖g‖ − 1)² at random interpolations of real and fake images.
    Gp,
    /// DRAGAN: mean (‖g‖ − 1)² at real images plus scaled uniform noise.
    Dra,
    /// Lipschitz GAN's max-GP: the largest ‖g‖² at random interpolations.
    MaxGp,
    /// R1: half the mean ‖g‖² at the real images, g taken from D's pass over them in
    /// the step, not from a pass of its own.
    R1,
}

impl Kind {
    /// Whether D runs a train-mode pass of its own on the points (the reference's
    /// penalty functions call D), rather than replaying the step's pass over them.
    fn own_pass(self) -> bool {
        self != Kind::R1
    }

    /// Whether its points are made with the fakes (interpolations of real and fake).
    pub fn mixes_fakes(self) -> bool {
        matches!(self, Kind::Gp | Kind::MaxGp)
    }
}

/// One penalty and its weight in D's loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Penalty {
    pub kind: Kind,
    pub lambda: f64,
}

impl Penalty {
    /// The penalties a configuration adds to D's loss, in the order v0.4's worker
    /// adds them. StyleGAN2's R1 is a step of its own ([`lazy_r1`]), not among them.
    pub fn all(train: &TrainConfig) -> Vec<Penalty> {
        let r1 = train.r1_lambda.filter(|_| train.stylegan2.is_none());
        [
            (Kind::Gp, train.gradient_penalty),
            (Kind::Dra, train.dra_lambda),
            (Kind::MaxGp, train.maxgp_lambda),
            (Kind::R1, r1),
        ]
        .into_iter()
        .filter_map(|(kind, lambda)| lambda.map(|lambda| Penalty { kind, lambda }))
        .collect()
    }

    /// The uniform draws of a batch of `n` images of `pixels` values each, in the order
    /// the reference asks `torch.rand` for them: one per image (the interpolation
    /// weight; DRA's noise scale), then, for DRA, one per value.
    pub fn draws(&self, n: usize, pixels: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
        let mut draw = |count: usize| (0..count).map(|_| rng.f32()).collect();
        match self.kind {
            Kind::Gp | Kind::MaxGp => vec![draw(n)],
            Kind::Dra => vec![draw(n), draw(n * pixels)],
            Kind::R1 => Vec::new(),
        }
    }

    /// The images whose gradient is penalized, from the batch's real images and fakes
    /// (`[n, 3, h, w]`) and the [`Penalty::draws`].
    pub fn points<B: Backend>(
        &self,
        real: Tensor<B, 4>,
        fake: Tensor<B, 4>,
        draws: &[Vec<f32>],
    ) -> Tensor<B, 4> {
        let dims = real.dims();
        let device = real.device();
        let per_image = |values: &[f32]| {
            Tensor::<B, 1>::from_floats(values, &device).reshape([dims[0], 1, 1, 1])
        };
        match self.kind {
            Kind::Gp | Kind::MaxGp => {
                let alpha = per_image(&draws[0]);
                real * alpha.clone() + fake * (alpha.neg() + 1.0)
            }
            Kind::Dra => {
                // `0.5 * real.std() * rand(size)`: the unbiased std of every value.
                let count = dims.iter().product::<usize>();
                let flat = real.clone().reshape([count]);
                let centered = flat.clone() - flat.mean();
                let std = (centered.powi_scalar(2).sum() / (count - 1) as f64).sqrt();
                let noise = Tensor::<B, 1>::from_floats(draws[1].as_slice(), &device).reshape(dims)
                    * std.reshape([1, 1, 1, 1])
                    * 0.5;
                real + noise * per_image(&draws[0])
            }
            Kind::R1 => real,
        }
    }

    /// The penalty of the per-image gradients `g` (`[n, values]`) and its derivative
    /// with respect to `g`.
    fn of<B: Backend>(&self, g: Tensor<B, 2>) -> (Tensor<B, 1>, Tensor<B, 2>) {
        let n = g.dims()[0];
        let squares = g.clone().powi_scalar(2).sum_dim(1);
        match self.kind {
            Kind::Gp | Kind::Dra => {
                let norms = squares.sqrt();
                let excess = norms.clone() - 1.0;
                let value = excess.clone().powi_scalar(2).mean();
                // d/dg (‖g‖ − 1)² / n = 2 (‖g‖ − 1) g / (n ‖g‖); 0 where g is 0, as torch.
                let scale = excess * (2.0 / n as f64) / norms.clamp_min(f32::MIN_POSITIVE);
                (value, g * scale)
            }
            Kind::MaxGp => {
                let largest = squares.clone().argmax(0);
                let value = squares.gather(0, largest.clone()).reshape([1]);
                // The derivative goes to the first image with the largest norm, as
                // torch.max's.
                let pick = Tensor::<B, 1, Int>::arange(0..n as i64, &g.device())
                    .equal(largest.reshape([1]).expand([n]))
                    .float()
                    .reshape([n, 1]);
                (value, g * pick * 2.0)
            }
            Kind::R1 => {
                // 0.5 Σ‖g‖² / n, whose derivative is g / n.
                let value = squares.mean() * 0.5;
                (value, g / n as f64)
            }
        }
    }
}

/// λ·penalty at `points`, as an addend of D's loss whose gradient in D's parameters is
/// the penalty's. D runs once in train mode on the points (its spectral norms iterate
/// and its BatchNorm statistics update, as in the reference's penalty pass), then once
/// more in forward mode, which changes no state. For R1, `d` is D as the step's pass
/// over the real images left it, and that pass is replayed.
///
/// With `through`, D sees the points through the augmentation with those draws and
/// the gradient is taken at the points before it (StyleGAN2's lazy R1 as v0.4 takes
/// it). DiffAugment and ADA are affine for given draws, A(x) = Lx + b, so the forward
/// pass runs at A(x) along L·v = A(v) − A(0).
///
/// Also returns D's adversarial logits of its first pass (APA's signs read them).
pub fn addend<B: Kernels>(
    penalty: &Penalty,
    d: &mut Tensors<Autodiff<B>>,
    model: &ModelConfig,
    points: Tensor<B, 4>,
    labels: &[u32],
    through: Option<&Draws>,
) -> (Tensor<Autodiff<B>, 1>, Tensor<B, 1>) {
    let dims = points.dims();
    let device = points.device();
    let y = label_tensor::<Autodiff<B>>(labels, &device);

    // g = ∇ₓ Σ D(x), D's parameters held constant.
    let mut constant = Tensors::<Autodiff<B>>::from_inner(d.inner(), false);
    let x = Tensor::<Autodiff<B>, 4>::from_inner(points.clone()).require_grad();
    let first = if penalty.kind.own_pass() {
        Mode::TRAIN
    } else {
        Mode::REPLAY
    };
    let seen = augmented(x.clone(), through);
    let out = discriminator::run(&mut constant, first, model, seen, y.clone());
    let logits = out.adv.clone().inner();
    let g = x
        .grad(&out.adv.sum().backward())
        .expect("D's logits depend on its input");
    let buffers: Vec<(String, Tensor<Autodiff<B>, 1>)> = constant
        .iter()
        .filter(|(_, entry)| entry.role == Role::Buffer)
        .map(|(name, entry)| (name.clone(), entry.value.clone()))
        .collect();
    for (name, value) in buffers {
        d.set(&name, value);
    }

    let (value, direction) = penalty.of(g.reshape([dims[0], dims[1] * dims[2] * dims[3]]));
    let direction = direction.reshape(dims);
    let direction = match through {
        Some(draws) => draws.apply(direction) - draws.apply(points.zeros_like()),
        None => direction,
    };
    let out = discriminator::tangent(
        d,
        Mode::REPLAY,
        model,
        Tensor::from_inner(augmented(points, through)),
        Tensor::from_inner(direction),
        y,
    );
    // ⟨g, v⟩, whose gradient in θ is the penalty's; its value replaced by the penalty's.
    let along = out.adv.narrow(0, dims[0], dims[0]).sum();
    let addend = (along.clone() - along.detach() + Tensor::from_inner(value)) * penalty.lambda;
    (addend, logits)
}

/// `x` through the augmentation with `draws`, where given.
fn augmented<B: Backend>(x: Tensor<B, 4>, through: Option<&Draws>) -> Tensor<B, 4> {
    match through {
        Some(draws) => draws.apply(x),
        None => x,
    }
}
