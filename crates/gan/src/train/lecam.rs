//! LeCam regularization (Tseng et al., 2021), as StudioGAN v0.4 applies it
//! (`apply_lecam`): in every D sub-step, exponential moving averages of D's mean logit
//! on real and on fake images are updated (a plain copy before `ema_start_iter`), and
//! from the step after it on, D's loss gains
//! `lambda · (mean(relu(D(x) − ema_fake)²) + mean(relu(ema_real − D(G(z)))²))`.
//! The averages are part of a run's state: checkpoints carry them.

use std::cell::Cell;
use std::collections::BTreeMap;

use burn::prelude::*;
use burn::tensor::activation::relu;
use kernels::Kernels;

use super::term::{DPass, GPass, Term};
use crate::config::LeCamConfig;

/// The reference's starting value of both averages (it only shows when averaging
/// starts at step 0).
const INIT: f64 = 7777.0;

/// The averages of D's mean logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Averages {
    pub real: f64,
    pub fake: f64,
}

pub struct LeCam {
    config: LeCamConfig,
    averages: Cell<Averages>,
}

impl LeCam {
    pub fn new(config: LeCamConfig) -> LeCam {
        LeCam {
            config,
            averages: Cell::new(Averages {
                real: INIT,
                fake: INIT,
            }),
        }
    }

    /// Folds one sub-step's mean logits in, at G step `step`; the new averages.
    pub fn update(&self, real: f64, fake: f64, step: u64) -> Averages {
        let decay = if step < self.config.ema_start_iter {
            0.0
        } else {
            self.config.ema_decay
        };
        let old = self.averages.get();
        let new = Averages {
            real: old.real * decay + real * (1.0 - decay),
            fake: old.fake * decay + fake * (1.0 - decay),
        };
        self.averages.set(new);
        new
    }

    /// Whether the penalty applies at G step `step`.
    pub fn active(&self, step: u64) -> bool {
        step > self.config.ema_start_iter
    }
}

/// The penalty of one sub-step's logits against the averages.
pub fn penalty<B: Backend>(
    real: Tensor<B, 1>,
    fake: Tensor<B, 1>,
    averages: Averages,
) -> Tensor<B, 1> {
    let above = relu(real - averages.fake).powi_scalar(2).mean();
    let below = relu(-fake + averages.real).powi_scalar(2).mean();
    above + below
}

fn mean<B: Backend>(logits: &Tensor<B, 1>) -> f64 {
    logits.clone().mean().into_scalar().elem()
}

impl<B: Kernels> Term<B> for LeCam {
    fn discriminator(&self, pass: &DPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        let averages = self.update(mean(&pass.real.adv), mean(&pass.fake.adv), pass.step);
        if self.active(pass.step) {
            let value = penalty(pass.real.adv.clone(), pass.fake.adv.clone(), averages);
            addends.push(value * self.config.lambda);
        }
    }

    fn generator(&self, _: &GPass<B>, _: &mut Vec<Tensor<B, 1>>) {}

    fn state(&self) -> BTreeMap<String, f64> {
        let Averages { real, fake } = self.averages.get();
        BTreeMap::from([
            ("lecam_ema_real".into(), real),
            ("lecam_ema_fake".into(), fake),
        ])
    }

    fn restore(&self, state: &BTreeMap<String, f64>) {
        if let (Some(&real), Some(&fake)) =
            (state.get("lecam_ema_real"), state.get("lecam_ema_fake"))
        {
            self.averages.set(Averages { real, fake });
        }
    }
}
