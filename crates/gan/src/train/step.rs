//! One D step and one G step of the reference's loop, with gradient accumulation: the
//! forward passes in the reference's order, the objective's loss of each side, Adam,
//! weight clipping, the EMA of G. z and the fake labels of each sub-step come from
//! their own random stream of `(seed, step, phase, index)`.

use std::collections::BTreeMap;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use data::loader::Loader;
use kernels::Kernels;
use rng::Rng;

use super::Setup;
use super::objective::{DPass, GPass, Objective};
use super::state::State;
use crate::layers::Mode;
use crate::tensors::{Role, Tensors};
use crate::{discriminator, generator};

/// z ~ N(0, 1) and uniform labels for one sub-step, from the stream of
/// `(step, phase, index)`.
fn latents<B: Kernels, N>(
    setup: &Setup<N>,
    step: u64,
    slot: u64,
    device: &B::Device,
) -> (Tensor<B, 2>, Vec<u32>) {
    let (n, dim) = (setup.train.batch_size, setup.model.z_dim);
    let mut rng = Rng::stream(setup.seed ^ 0x5A5A_0000_0000_0000, (step << 20) | slot);
    let z: Vec<f32> = (0..n * dim).map(|_| rng.normal() as f32).collect();
    let labels = (0..n)
        .map(|_| rng.below(setup.model.num_classes as u64) as u32)
        .collect();
    (
        Tensor::from_data(TensorData::new(z, [n, dim]), device),
        labels,
    )
}

/// The random stream of the objective's augmentations in one sub-step (D's inputs are
/// transformed from it in the order they are made), a function of the seed and the
/// position in the run like every other random choice.
fn augment_stream<N>(setup: &Setup<N>, step: u64, slot: u64) -> Rng {
    Rng::stream(setup.seed ^ 0xA5A5_0000_0000_0000, (step << 20) | slot)
}

pub(crate) fn label_tensor<B: Kernels>(labels: &[u32], device: &B::Device) -> Tensor<B, 1, Int> {
    let ints: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(ints, [labels.len()]), device)
}

type Grads<B> = BTreeMap<String, Tensor<B, 1>>;

fn accumulate<B: Kernels>(sum: &mut Option<Grads<B>>, grads: Grads<B>) {
    match sum {
        None => *sum = Some(grads),
        Some(sum) => {
            for (name, g) in grads {
                let total = match sum.remove(&name) {
                    Some(s) => s + g,
                    None => g,
                };
                sum.insert(name, total);
            }
        }
    }
}

/// One D step; returns its loss, or the non-finite value that stopped it.
pub(super) fn d_step<B: Kernels, N>(
    state: &mut State<B>,
    setup: &Setup<N>,
    objective: &Objective<Autodiff<B>>,
    batches: &mut Loader,
    k: usize,
) -> Result<f64, f32> {
    let (model, train) = (setup.model, setup.train);
    let device = state.d.device().clone();
    let accum = train.accumulation_steps;
    let mut d = Tensors::<Autodiff<B>>::from_inner(state.d.clone(), true);
    let mut grads = None;
    let mut total = 0.0;
    for a in 0..accum {
        let batch = batches.next().expect("the loader never ends");
        let n = batch.len();
        let len = batch.images.len();
        let real =
            Tensor::<Autodiff<B>, 1>::from_data(TensorData::new(batch.images, [len]), &device)
                .reshape([n, 3, model.image_size(), model.image_size()]);
        let slot = (k * accum + a) as u64;
        let (z, fake_labels) = latents::<B, N>(setup, state.step, slot, &device);
        let mut rng = augment_stream(setup, state.step, slot);
        // The reference's order: D on the real batch, G, D on the fakes.
        let real_out = discriminator::run(
            &mut d,
            Mode::TRAIN,
            model,
            objective.augment(real, &mut rng),
            label_tensor(&batch.labels, &device),
        );
        let fake = generator::run(
            &mut state.g,
            Mode::TRAIN,
            model,
            z,
            label_tensor(&fake_labels, &device),
        );
        let fake_out = discriminator::run(
            &mut d,
            Mode::TRAIN,
            model,
            objective.augment(Tensor::from_inner(fake), &mut rng),
            label_tensor(&fake_labels, &device),
        );
        let value = objective.discriminator(&DPass {
            real: &real_out,
            real_labels: &batch.labels,
            fake: &fake_out,
            fake_labels: &fake_labels,
        });
        let value = value / accum as f64;
        let scalar = finite(&value)?;
        total += scalar as f64;
        accumulate(&mut grads, d.gradients(&value.backward()));
    }
    let mut inner = d.inner();
    state.opt_d.step(&mut inner, &grads.unwrap_or_default());
    if let Some(bound) = train.weight_clipping {
        clip(&mut inner, bound);
    }
    state.d = inner;
    Ok(total)
}

/// One G step (then the EMA update); returns its loss, or the non-finite value that
/// stopped it.
pub(super) fn g_step<B: Kernels, N>(
    state: &mut State<B>,
    setup: &Setup<N>,
    objective: &Objective<Autodiff<B>>,
    k: usize,
) -> Result<f64, f32> {
    let (model, train) = (setup.model, setup.train);
    let device = state.g.device().clone();
    let accum = train.accumulation_steps;
    let mut g = Tensors::<Autodiff<B>>::from_inner(state.g.clone(), true);
    // D runs in train mode (its spectral norms iterate) but collects no gradients.
    let mut d = Tensors::<Autodiff<B>>::from_inner(state.d.clone(), false);
    let mut grads = None;
    let mut total = 0.0;
    for a in 0..accum {
        let slot = (1 << 16) | (k * accum + a) as u64;
        let (z, labels) = latents::<Autodiff<B>, N>(setup, state.step, slot, &device);
        let y = label_tensor::<Autodiff<B>>(&labels, &device);
        let fake = generator::run(&mut g, Mode::TRAIN, model, z, y.clone());
        let fake = objective.augment(fake, &mut augment_stream(setup, state.step, slot));
        let out = discriminator::run(&mut d, Mode::TRAIN, model, fake, y);
        let value = objective.generator(&GPass {
            fake: &out,
            labels: &labels,
        });
        let value = value / accum as f64;
        total += finite(&value)? as f64;
        accumulate(&mut grads, g.gradients(&value.backward()));
    }
    let mut inner = g.inner();
    state.opt_g.step(&mut inner, &grads.unwrap_or_default());
    state.g = inner;
    state.d = d.inner();
    if let (Some(ema), Some(config)) = (state.g_ema.as_mut(), train.ema) {
        // The reference's `if itr and itr < start` treats step 0 as past the start.
        let decay = if state.step > 0 && state.step < config.start {
            0.0
        } else {
            config.decay
        };
        update_ema(ema, &state.g, decay);
    }
    Ok(total)
}

fn finite<B: AutodiffBackend>(value: &Tensor<B, 1>) -> Result<f32, f32> {
    let scalar: f32 = value.clone().into_scalar().elem();
    if scalar.is_finite() {
        Ok(scalar)
    } else {
        Err(scalar)
    }
}

fn clip<B: Kernels>(d: &mut Tensors<B>, bound: f64) {
    let params: Vec<(String, Tensor<B, 1>)> = d
        .iter()
        .filter(|(_, e)| e.role == Role::Param)
        .map(|(n, e)| (n.clone(), e.value.clone()))
        .collect();
    for (name, value) in params {
        d.set(&name, value.clamp(-bound, bound));
    }
}

/// target ← decay·target + (1 − decay)·source, over parameters and buffers.
fn update_ema<B: Kernels>(target: &mut Tensors<B>, source: &Tensors<B>, decay: f64) {
    for (name, entry) in source.iter() {
        let old = target.get(name).expect("EMA has G's tensors").value.clone();
        target.set(name, old * decay + entry.value.clone() * (1.0 - decay));
    }
}
