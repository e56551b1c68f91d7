//! LeCam regularization (Tseng et al., 2021), as StudioGAN v0.4 applies it
//! (`apply_lecam`): in every D sub-step, exponential moving averages of D's mean logit
//! on real and on fake images are updated (a plain copy before `ema_start_iter`), and
//! from the step after it on, D's loss gains
//! `lambda · (mean(relu(D(x) − ema_fake)²) + mean(relu(ema_real − D(G(z)))²))`.
//! The averages are part of a run's state: checkpoints carry them. They stay on the
//! device, in f64 as the reference's Python floats are (its `.item()` of the f32
//! means), so that a step reads nothing back to the host.

use std::cell::RefCell;
use std::collections::BTreeMap;

use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::relu;
use kernels::Kernels;

use super::term::{DPass, GPass, Term};
use crate::config::LeCamConfig;

/// The reference's starting value of both averages (it only shows when averaging
/// starts at step 0).
const INIT: f64 = 7777.0;

/// The averages of D's mean logits, f64 tensors of one element.
#[derive(Debug, Clone)]
pub struct Averages<B: Backend> {
    pub real: Tensor<B, 1>,
    pub fake: Tensor<B, 1>,
}

/// Where the averages are: as a checkpoint or the start gave them, until the first
/// update puts them on the logits' device.
enum Kept<B: Backend> {
    Host { real: f64, fake: f64 },
    Device(Averages<B>),
}

pub struct LeCam<B: Backend> {
    config: LeCamConfig,
    averages: RefCell<Kept<B>>,
}

impl<B: Backend> LeCam<B> {
    pub fn new(config: LeCamConfig) -> LeCam<B> {
        LeCam {
            config,
            averages: RefCell::new(Kept::Host {
                real: INIT,
                fake: INIT,
            }),
        }
    }

    /// Folds one sub-step's mean logits in (f64, one element each), at G step `step`;
    /// the new averages.
    pub fn update(&self, real: Tensor<B, 1>, fake: Tensor<B, 1>, step: u64) -> Averages<B> {
        let decay = if step < self.config.ema_start_iter {
            0.0
        } else {
            self.config.ema_decay
        };
        let device = real.device();
        let on_device = |value: f64| Tensor::from_data([value], (&device, DType::F64));
        let old = match &*self.averages.borrow() {
            Kept::Host { real, fake } => Averages {
                real: on_device(*real),
                fake: on_device(*fake),
            },
            Kept::Device(averages) => averages.clone(),
        };
        let fold = |old: Tensor<B, 1>, new: Tensor<B, 1>| old * decay + new * (1.0 - decay);
        let new = Averages {
            real: fold(old.real, real),
            fake: fold(old.fake, fake),
        };
        *self.averages.borrow_mut() = Kept::Device(new.clone());
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
    averages: Averages<B>,
) -> Tensor<B, 1> {
    let dtype = real.dtype();
    let above = relu(real - averages.fake.cast(dtype)).powi_scalar(2).mean();
    let below = relu(-fake + averages.real.cast(dtype))
        .powi_scalar(2)
        .mean();
    above + below
}

/// The mean of a sub-step's logits as the reference takes it: in f32, then f64.
fn mean<B: Backend>(logits: &Tensor<B, 1>) -> Tensor<B, 1> {
    logits.clone().detach().mean().cast(DType::F64)
}

impl<B: Kernels> Term<B> for LeCam<B> {
    fn discriminator(&self, pass: &DPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        let averages = self.update(mean(&pass.real.adv), mean(&pass.fake.adv), pass.step);
        if self.active(pass.step) {
            let value = penalty(pass.real.adv.clone(), pass.fake.adv.clone(), averages);
            addends.push(value * self.config.lambda);
        }
    }

    fn generator(&self, _: &GPass<B>, _: &mut Vec<Tensor<B, 1>>) {}

    fn state(&self) -> BTreeMap<String, f64> {
        let (real, fake) = match &*self.averages.borrow() {
            Kept::Host { real, fake } => (*real, *fake),
            Kept::Device(Averages { real, fake }) => {
                let both = Tensor::cat(vec![real.clone(), fake.clone()], 0);
                let values = both.into_data().convert::<f64>().to_vec::<f64>().unwrap();
                (values[0], values[1])
            }
        };
        BTreeMap::from([
            ("lecam_ema_real".into(), real),
            ("lecam_ema_fake".into(), fake),
        ])
    }

    fn restore(&self, state: &BTreeMap<String, f64>) {
        if let (Some(&real), Some(&fake)) =
            (state.get("lecam_ema_real"), state.get("lecam_ema_fake"))
        {
            *self.averages.borrow_mut() = Kept::Host { real, fake };
        }
    }
}
