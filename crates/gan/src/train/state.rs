//! What a run carries from step to step and saves at a checkpoint: the networks, the
//! EMA of G, both optimizers' states and the step.

use kernels::Kernels;
use rng::Rng;

use super::Setup;
use crate::adam::{Adam, Hyper};
use crate::config::TrainConfig;
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
}

pub(super) fn hyper(train: &TrainConfig, lr: f64) -> Hyper {
    Hyper {
        lr,
        beta1: train.beta1,
        beta2: train.beta2,
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
    let g_ema = train.ema.map(|_| g_ema.unwrap_or_else(|| g.clone()));
    State {
        step: 0,
        g,
        d,
        g_ema,
        opt_g: Adam::new(hyper(train, train.g_lr)),
        opt_d: Adam::new(hyper(train, train.d_lr)),
    }
}
