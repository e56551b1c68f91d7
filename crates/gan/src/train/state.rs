//! What a run carries from step to step and saves at a checkpoint: the networks, the
//! EMA of G, both optimizers' states and the step.

use kernels::Kernels;
use rng::Rng;

use super::Setup;
use super::adaptive::Adaptive;
use super::latent::Side;
use crate::adam::{Adam, Hyper};
use crate::config::{Stylegan2Training, TrainConfig};
use crate::tensors::Tensors;
use crate::{discriminator, generator};

/// What is saved at a checkpoint.
pub(super) struct State<B: Kernels> {
    pub step: u64,
    pub g: Tensors<B>,
    pub d: Tensors<B>,
    pub g_ema: Option<Tensors<B>>,
    pub opt_g: Adam<B>,
    pub opt_d: Adam<B>,
    /// StyleGAN2's running mean of the path lengths (0 until path length
    /// regularization runs).
    pub pl_mean: f64,
    /// ADA's and APA's probability and the signs it moves by.
    pub adaptive: Option<Adaptive<B>>,
}

/// Adam's settings for `side`: the configuration's, with StyleGAN2's lazy
/// regularization every k steps folded in as v0.4's `config.py` does (learning rate
/// times k/(k + 1), betas to that power).
pub(super) fn hyper(train: &TrainConfig, side: Side) -> Hyper {
    let (lr, interval) = match side {
        Side::Generator => (train.g_lr, train.stylegan2.map(|s| s.g_reg_interval)),
        Side::Discriminator => (train.d_lr, train.stylegan2.map(|s| s.d_reg_interval)),
    };
    let ratio = interval.map_or(1.0, Stylegan2Training::lazy_ratio);
    Hyper {
        lr: lr * ratio,
        beta1: train.beta1.powf(ratio),
        beta2: train.beta2.powf(ratio),
        eps: train.adam_eps,
    }
}

pub(super) fn fresh<B: Kernels, N>(setup: &Setup<N>, device: &B::Device) -> State<B> {
    let (model, train) = (setup.model, setup.train);
    let (g, d, g_ema) = match &setup.start {
        Some(start) => (
            Tensors::from_snapshot(&start.g, device),
            Tensors::from_snapshot(&start.d, device),
            start
                .g_ema
                .as_ref()
                .map(|s| Tensors::from_snapshot(s, device)),
        ),
        None => (
            generator::build(model, Rng::stream(setup.seed, 1).next_u64(), device),
            discriminator::build(model, Rng::stream(setup.seed, 2).next_u64(), device),
            None,
        ),
    };
    // The average starts as a copy of G, as the reference's does.
    let averaged = train.ema.is_some() || train.stylegan2.is_some_and(|s| s.g_ema_kimg.is_some());
    let g_ema = averaged.then(|| g_ema.unwrap_or_else(|| g.clone()));
    State {
        step: 0,
        g,
        d,
        g_ema,
        opt_g: Adam::new(hyper(train, Side::Generator)),
        opt_d: Adam::new(hyper(train, Side::Discriminator)),
        pl_mean: 0.0,
        adaptive: train
            .adaptive_p()
            .map(|c| Adaptive::new(c.initial_p, 0.0, 0, device)),
    }
}
