//! One D step and one G step of the reference's loop, with gradient accumulation: the
//! forward passes in the reference's order, the objective's loss of each side, Adam,
//! weight clipping, the EMA of G. z and the fake labels of each sub-step come from
//! their own random stream of `(seed, step, phase, index)`.

use burn::backend::Autodiff;
use burn::prelude::*;
use data::loader::Loader;
use kernels::Kernels;
use rng::Rng;

use super::Setup;
use super::apa;
use super::augment::Draws;
use super::ema;
use super::grads::{Grads, accumulate};
use super::latent::{self, Shift, Side};
use super::objective::Objective;
use super::parallel::Shards;
use super::penalty::{self, Kind, Penalty};
use super::state::State;
use super::term::{DPass, GPass};
use crate::config::{Architecture, AuxClassifier};
use crate::layers::Mode;
use crate::stylegan2::PathLength;
use crate::tensors::{Role, Tensors, label_tensor};
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

/// The z of a sub-step's fakes: with LOGAN, the drawn `z` moved for G and D as they are
/// now (its drop mask from the sub-step's own stream), and the move.
fn fake_latents<B: Kernels, N>(
    setup: &Setup<N>,
    step: u64,
    slot: u64,
    z: Tensor<B, 2>,
    labels: &[u32],
    networks: impl FnOnce() -> (Tensors<B>, Tensors<B>),
) -> (Tensor<Autodiff<B>, 2>, Option<Shift<B>>) {
    let Some(op) = &setup.train.latent_op else {
        return (Tensor::from_inner(z), None);
    };
    let mut rng = Rng::stream(setup.seed ^ 0x3C3C_0000_0000_0000, (step << 20) | slot);
    let keep = latent::keep(op, labels.len(), &mut rng);
    let (g, d) = networks();
    let shift = Shift::new(op, g, d, setup.model, z, labels, &keep);
    (shift.moved(), Some(shift))
}

/// The gradient of a sub-step's loss in the parameters of `tracked`, `side`'s network:
/// its backward, plus the part through LOGAN's move.
fn gradients_of<B: Kernels>(
    value: Tensor<Autodiff<B>, 1>,
    tracked: &Tensors<Autodiff<B>>,
    shift: Option<&Shift<B>>,
    model: &crate::config::ModelConfig,
    side: Side,
) -> Grads<B> {
    let backward = value.backward();
    let mut grads = tracked.gradients(&backward);
    if let Some(shift) = shift {
        shift.add_gradients(&backward, model, side, &mut grads);
    }
    grads
}

/// D's work on one shard of a D sub-step: its replica, the real images and the fakes.
struct Judging<B: Kernels> {
    d: Tensors<Autodiff<B>>,
    real: Tensor<Autodiff<B>, 4>,
    real_labels: Vec<u32>,
    fake: Tensor<Autodiff<B>, 4>,
    fake_labels: Vec<u32>,
    /// The real images' augmented copies, when a term asks for D on them.
    views: Option<Tensor<Autodiff<B>, 4>>,
    /// Where each gradient penalty takes D's input gradient.
    points: Vec<Tensor<B, 4>>,
}

/// One D step; returns its loss (summed over accumulation), on the device.
pub(super) fn d_step<B: Kernels, N>(
    state: &mut State<B>,
    setup: &Setup<N>,
    objective: &Objective<Autodiff<B>>,
    batches: &mut Loader,
    shards: &Shards<B>,
    k: usize,
) -> Tensor<B, 1> {
    let (model, train) = (setup.model, setup.train);
    let device = shards.first().clone();
    let accum = train.accumulation_steps;
    let mut d = Tensors::<Autodiff<B>>::from_inner(state.d.clone(), true);
    let mut grads = None;
    let mut total = Tensor::zeros([1], &device);
    let lazy_r1 = lazy_r1_due(setup, state.step, k);
    let mut kept = Vec::new();
    let mut last_fakes = None;
    for a in 0..accum {
        let batch = batches.next().expect("the loader never ends");
        let n = batch.len();
        let len = batch.images.len();
        let real =
            Tensor::<Autodiff<B>, 1>::from_data(TensorData::new(batch.images, [len]), &device)
                .reshape([n, 3, model.image_size(), model.image_size()]);
        let slot = (k * accum + a) as u64;
        let (z, fake_labels) = latents::<B, N>(setup, state.step, slot, &device);
        let (z, shift) = fake_latents(setup, state.step, slot, z, &fake_labels, || {
            (state.g.clone(), d.inner())
        });
        let mut rng = augment_stream(setup, state.step, slot);
        if lazy_r1.is_some() {
            kept.push((real.clone().inner(), model.d_labels(&batch.labels, false)));
        }
        // G on every shard (its BatchNorm in train mode, as the reference's is), then
        // D on the real images and on the fakes: the reference's order for D. G's
        // parameters are constants, but LOGAN's moved z takes a gradient through it.
        let inputs = zip3(
            shards.replicate(&state.g),
            shards.split(z),
            shards.split_labels(&fake_labels),
        );
        let made = shards.each(inputs, |shard, (g, z, labels)| {
            let y = label_tensor(&labels, shard.device);
            let mut g = Tensors::<Autodiff<B>>::from_inner(g, false);
            let fake = generator::run_shard(&mut g, Mode::TRAIN, model, z, y, shard.sync());
            (g.inner(), fake)
        });
        let (mut gs, fakes): (Vec<_>, Vec<_>) = made.into_iter().unzip();
        state.g = gs.swap_remove(0);
        // APA: some real images replaced by fakes (detached), before any augmentation.
        let p = adaptive_p(state);
        let real = match train.apa {
            Some(_) => {
                let fake = shards.gather(fakes.iter().map(|f| f.clone().inner()).collect());
                let flags = apa::flags(n, p, &mut apa_stream(setup, state.step, slot));
                last_fakes = Some(fake.clone());
                apa::mix(real, Tensor::from_inner(fake), &flags)
            }
            None => real,
        };
        // The penalties take D's gradient at points of the images before any
        // augmentation, as v0.4's do.
        let unaugmented = real.clone().inner();
        let real = objective.augment(real, p, &mut rng);
        let mut points =
            penalty_points(objective.penalties(), unaugmented, &fakes, shards, &mut rng);
        let fakes = augmented(shards, objective, fakes, p, &mut rng);
        // What D's class head is told (ADC tells real from generated apart).
        let real_labels = model.d_labels(&batch.labels, false);
        let fake_labels = model.d_labels(&fake_labels, true);
        let labels = shards.split_labels(&real_labels);
        let mut views = objective.uses_views().then(|| {
            let len = batch.views.len();
            let views =
                Tensor::<Autodiff<B>, 1>::from_data(TensorData::new(batch.views, [len]), &device)
                    .reshape([n, 3, model.image_size(), model.image_size()]);
            shards.split(views).into_iter()
        });
        let inputs: Vec<Judging<B>> = shards
            .replicate(&d)
            .into_iter()
            .zip(shards.split(real))
            .zip(fakes)
            .zip(labels.into_iter().zip(shards.split_labels(&fake_labels)))
            .map(|(((d, real), fake), (real_labels, fake_labels))| Judging {
                d,
                real,
                real_labels,
                fake,
                fake_labels,
                views: views.as_mut().and_then(Iterator::next),
                points: points.iter_mut().map(|p| p.remove(0)).collect(),
            })
            .collect();
        // The reference's order: D on the real images, on the fakes, on the copies,
        // then the penalties (v0.4's order).
        let penalties = objective.penalties();
        let judged = shards.each(inputs, |shard, mut j| {
            let judge = |d: &mut Tensors<Autodiff<B>>, images, labels: &[u32]| {
                let y = label_tensor(labels, shard.device);
                discriminator::run_shard(d, Mode::TRAIN, model, images, y, shard.sync())
            };
            let real = judge(&mut j.d, j.real, &j.real_labels);
            // R1 differentiates that pass: D as it left it (its parameters the same).
            let mut after_real = penalties
                .iter()
                .any(|p| p.kind == Kind::R1)
                .then(|| j.d.clone());
            let fake = judge(&mut j.d, j.fake, &j.fake_labels);
            let views = j.views.map(|views| judge(&mut j.d, views, &j.real_labels));
            let penalized: Vec<_> = penalties
                .iter()
                .zip(j.points)
                .map(|(p, points)| {
                    let d = match after_real.as_mut() {
                        Some(after_real) if p.kind == Kind::R1 => after_real,
                        _ => &mut j.d,
                    };
                    penalty::addend(p, d, model, points, &j.real_labels, None).0
                })
                .collect();
            (j.d, real, fake, views, penalized)
        });
        let mut replicas = Vec::new();
        let (mut real_outs, mut fake_outs, mut view_outs) = (Vec::new(), Vec::new(), Vec::new());
        let mut penalized = Vec::new();
        for (d, real, fake, views, addends) in judged {
            replicas.push(d);
            real_outs.push(real);
            fake_outs.push(fake);
            view_outs.extend(views);
            penalized.extend(addends.into_iter().map(|a| a.to_device(&device)));
        }
        d = replicas.swap_remove(0);
        let views = (!view_outs.is_empty()).then(|| shards.gather_outputs(view_outs));
        let real_out = shards.gather_outputs(real_outs);
        if let Some(adaptive) = state.adaptive.as_mut() {
            adaptive.observe(real_out.adv.clone().inner());
        }
        let value = objective.discriminator(&DPass {
            step: state.step,
            real: &real_out,
            real_labels: &real_labels,
            real_views: views.as_ref(),
            fake: &shards.gather_outputs(fake_outs),
            fake_labels: &fake_labels,
        });
        // Each shard's penalties on its own images, averaged over the shards as
        // DistributedDataParallel averages the replicas' gradients.
        let shard_count = shards.len() as f64;
        let value = penalized
            .into_iter()
            .fold(value, |total, addend| total + addend / shard_count);
        let value = value / accum as f64;
        total = total + value.clone().inner();
        let side = Side::Discriminator;
        accumulate(
            &mut grads,
            gradients_of(value, &d, shift.as_ref(), model, side),
        );
    }
    let mut inner = d.inner();
    state.opt_d.step(&mut inner, &grads.unwrap_or_default());
    if let Some(bound) = train.weight_clipping {
        clip(&mut inner, bound);
    }
    state.d = inner;
    if let Some(penalty) = lazy_r1 {
        let mut rng = Rng::stream(
            setup.seed ^ 0x7171_0000_0000_0000,
            (state.step << 20) | k as u64,
        );
        let p = adaptive_p(state);
        let augmentation = objective.augmentation();
        let draws: Vec<Option<Draws>> = kept
            .iter()
            .map(|(real, _)| augmentation.map(|a| a.draw(real.dims(), p, &mut rng)))
            .collect();
        let mut apa_rng = Rng::stream(
            setup.seed ^ 0x7272_0000_0000_0000,
            (state.step << 20) | k as u64,
        );
        // APA replaces some of R1's real images too (fresh draws, the last fakes).
        let kept = match last_fakes {
            Some(fake) => kept
                .into_iter()
                .map(|(real, labels)| {
                    let flags = apa::flags(labels.len(), p, &mut apa_rng);
                    (apa::mix(real, fake.clone(), &flags), labels)
                })
                .collect(),
            _ => kept,
        };
        r1_step(state, model, &penalty, kept, &draws);
    }
    if let (Some(adaptive), Some(config)) = (state.adaptive.as_mut(), train.adaptive_p())
        && state.step.is_multiple_of(config.interval)
    {
        adaptive.adapt(&config);
    }
    total
}

/// ADA's and APA's probability now (0 where neither is on).
fn adaptive_p<B: Kernels>(state: &State<B>) -> f64 {
    state.adaptive.as_ref().map_or(0.0, |adaptive| adaptive.p)
}

/// The random stream of APA's choices in one D sub-step.
fn apa_stream<N>(setup: &Setup<N>, step: u64, slot: u64) -> Rng {
    Rng::stream(setup.seed ^ 0x6A6A_0000_0000_0000, (step << 20) | slot)
}

/// StyleGAN2's R1 when it is due after D step `k` of iteration `step` (every
/// `d_reg_interval` D steps, counted as v0.4 counts them), weighted by the interval.
fn lazy_r1_due<N>(setup: &Setup<N>, step: u64, k: usize) -> Option<Penalty> {
    let (train, style) = (setup.train, setup.train.stylegan2?);
    let lambda = train.r1_lambda?;
    let count = train.d_steps_per_iter as u64 * step + k as u64;
    count
        .is_multiple_of(style.d_reg_interval)
        .then_some(Penalty {
            kind: Kind::R1,
            lambda: lambda * style.d_reg_interval as f64,
        })
}

/// StyleGAN2's lazy R1 as a D step of its own (v0.4's `r1_place: "outside_loop"`): on
/// the real images of the D step just done (through the augmentation with fresh draws
/// where one is on, as v0.4's `series_augment`), each accumulated part weighted by its
/// share, then D's Adam. On the first device (D's state is all parameters: the pass
/// there is the pass anywhere).
fn r1_step<B: Kernels>(
    state: &mut State<B>,
    model: &crate::config::ModelConfig,
    penalty: &Penalty,
    reals: Vec<(Tensor<B, 4>, Vec<u32>)>,
    draws: &[Option<Draws>],
) {
    let parts = reals.len() as f64;
    let mut d = Tensors::<Autodiff<B>>::from_inner(state.d.clone(), true);
    let mut grads = None;
    for ((real, labels), draws) in reals.into_iter().zip(draws) {
        let (value, logits) =
            penalty::addend(penalty, &mut d, model, real, &labels, draws.as_ref());
        if let Some(adaptive) = state.adaptive.as_mut() {
            adaptive.observe(logits);
        }
        let value = value / parts;
        accumulate(&mut grads, d.gradients(&value.backward()));
    }
    let mut inner = d.inner();
    state.opt_d.step(&mut inner, &grads.unwrap_or_default());
    state.d = inner;
}

/// One G step (then the EMA update); returns its loss (summed over accumulation), on
/// the device.
pub(super) fn g_step<B: Kernels, N>(
    state: &mut State<B>,
    setup: &Setup<N>,
    objective: &Objective<Autodiff<B>>,
    shards: &Shards<B>,
    k: usize,
) -> Tensor<B, 1> {
    let (model, train) = (setup.model, setup.train);
    let device = shards.first().clone();
    let accum = train.accumulation_steps;
    let mut g = Tensors::<Autodiff<B>>::from_inner(state.g.clone(), true);
    // StyleGAN2's average w moves in the D step's pass of G only (v0.4's
    // `stylegan_update_emas`); the seed's BatchNorm statistics move in both.
    let g_mode = match model.architecture {
        Architecture::Stylegan2 => Mode::REPLAY,
        _ => Mode::TRAIN,
    };
    // D runs in train mode (its spectral norms iterate) but collects no gradients.
    let mut d = Tensors::<Autodiff<B>>::from_inner(state.d.clone(), false);
    let mut grads = None;
    let mut total = Tensor::zeros([1], &device);
    for a in 0..accum {
        let slot = (1 << 16) | (k * accum + a) as u64;
        let (z, labels) = latents::<B, N>(setup, state.step, slot, &device);
        let (z, shift) = fake_latents(setup, state.step, slot, z, &labels, || {
            (g.inner(), d.inner())
        });
        let inputs = zip3(
            shards.replicate(&g),
            shards.split(z),
            shards.split_labels(&labels),
        );
        let made = shards.each(inputs, |shard, (mut g, z, labels)| {
            let y = label_tensor(&labels, shard.device);
            let fake = generator::run_shard(&mut g, g_mode, model, z, y, shard.sync());
            (g, fake)
        });
        let (mut replicas, fakes): (Vec<_>, Vec<_>) = made.into_iter().unzip();
        g = replicas.swap_remove(0);
        let mut rng = augment_stream(setup, state.step, slot);
        let fakes = augmented(shards, objective, fakes, adaptive_p(state), &mut rng);
        let d_labels = model.d_labels(&labels, false);
        // ADC: D once more on the same images, told they are generated (v0.4 runs D
        // twice, and its spectral norms iterate twice).
        let adc = model.aux_cls_type == AuxClassifier::Adc;
        let adc_labels = model.d_labels(&labels, true);
        let inputs = zip3(
            shards.replicate(&d),
            fakes,
            shards
                .split_labels(&d_labels)
                .into_iter()
                .zip(shards.split_labels(&adc_labels))
                .collect(),
        );
        let judged = shards.each(inputs, |shard, (mut d, fake, (labels, adc_labels))| {
            let mut judge = |images, labels: &[u32]| {
                let y = label_tensor(labels, shard.device);
                discriminator::run_shard(&mut d, Mode::TRAIN, model, images, y, shard.sync())
            };
            let out = judge(fake.clone(), &labels);
            let adc_out = adc.then(|| judge(fake, &adc_labels));
            (d, (out, adc_out))
        });
        let (mut replicas, outs): (Vec<_>, Vec<_>) = judged.into_iter().unzip();
        d = replicas.swap_remove(0);
        let (outs, adc_outs): (Vec<_>, Vec<_>) = outs.into_iter().unzip();
        let adc_fake = adc.then(|| shards.gather_outputs(adc_outs.into_iter().flatten().collect()));
        let value = objective.generator(&GPass {
            fake: &shards.gather_outputs(outs),
            labels: &d_labels,
            adc_fake: adc_fake.as_ref().map(|out| (out, adc_labels.as_slice())),
        });
        let value = value / accum as f64;
        total = total + value.clone().inner();
        let side = Side::Generator;
        accumulate(
            &mut grads,
            gradients_of(value, &g, shift.as_ref(), model, side),
        );
    }
    let mut inner = g.inner();
    state.opt_g.step(&mut inner, &grads.unwrap_or_default());
    state.g = inner;
    state.d = d.inner();
    if let Some((path_length, interval)) = path_length_due(setup, state.step, k) {
        pl_step(state, setup, &path_length, interval, &device, k);
    }
    if let (Some(ema), Some(config)) = (state.g_ema.as_mut(), train.ema) {
        // The reference's `if itr and itr < start` treats step 0 as past the start.
        let decay = if state.step > 0 && state.step < config.start {
            0.0
        } else {
            config.decay
        };
        ema::update(ema, &state.g, decay, false);
    }
    let images = train.batch_size * accum;
    let stylegan2_beta = train.stylegan2.and_then(|s| s.ema_beta(state.step, images));
    if let (Some(ema), Some(beta)) = (state.g_ema.as_mut(), stylegan2_beta) {
        ema::update(ema, &state.g, beta, true);
    }
    total
}

/// StyleGAN2's path length regularization when it is due after G step `k` of
/// iteration `step` (every `g_reg_interval` G steps, counted as v0.4 counts them), with
/// the interval.
fn path_length_due<N>(setup: &Setup<N>, step: u64, k: usize) -> Option<(PathLength, u64)> {
    let style = setup.train.stylegan2?;
    let weight = style.pl_weight?;
    let count = setup.train.g_steps_per_iter as u64 * step + k as u64;
    let path_length = PathLength {
        weight,
        decay: PL_DECAY,
    };
    count
        .is_multiple_of(style.g_reg_interval)
        .then_some((path_length, style.g_reg_interval))
}

/// v0.4's decay of the path lengths' running mean (`pl_decay`).
const PL_DECAY: f64 = 0.01;

/// StyleGAN2's path length regularization as a G step of its own (v0.4's, after the
/// G step): on fresh latents and labels, half a batch for each accumulated part,
/// weighted by the interval and the part's share, then G's Adam. On the first device.
fn pl_step<B: Kernels, N>(
    state: &mut State<B>,
    setup: &Setup<N>,
    path_length: &PathLength,
    interval: u64,
    device: &B::Device,
    k: usize,
) {
    let (model, train) = (setup.model, setup.train);
    let accum = train.accumulation_steps;
    let n = (train.batch_size / 2).max(1);
    let size = model.image_size();
    let mut g = Tensors::<Autodiff<B>>::from_inner(state.g.clone(), true);
    let mut grads = None;
    for a in 0..accum {
        let slot = (2 << 16) | (k * accum + a) as u64;
        let (z, labels) = latents::<B, N>(setup, state.step, slot, device);
        let z = z.narrow(0, 0, n);
        let y = label_tensor::<B>(&labels[..n], device);
        let mut rng = Rng::stream(
            setup.seed ^ 0x9191_0000_0000_0000,
            (state.step << 20) | slot,
        );
        let scale = 1.0 / size as f64;
        let directions: Vec<f32> = (0..n * 3 * size * size)
            .map(|_| (rng.normal() * scale) as f32)
            .collect();
        let directions = Tensor::from_data(TensorData::new(directions, [n, 3, size, size]), device);
        let (value, mean) = path_length.addend(&mut g, model, z, y, directions, state.pl_mean);
        state.pl_mean = mean;
        let value = value * (interval as f64 / accum as f64);
        accumulate(&mut grads, g.gradients(&value.backward()));
    }
    let mut inner = g.inner();
    state.opt_g.step(&mut inner, &grads.unwrap_or_default());
    state.g = inner;
}

/// For each penalty, its points for every shard: drawn for the whole batch from the
/// sub-step's stream, then split as the batch is.
fn penalty_points<B: Kernels>(
    penalties: &[Penalty],
    real: Tensor<B, 4>,
    fakes: &[Tensor<Autodiff<B>, 4>],
    shards: &Shards<B>,
    rng: &mut Rng,
) -> Vec<Vec<Tensor<B, 4>>> {
    if penalties.is_empty() {
        return Vec::new();
    }
    let fake = shards.gather(fakes.iter().map(|f| f.clone().inner()).collect());
    let [n, c, h, w] = real.dims();
    penalties
        .iter()
        .map(|p| {
            let draws = p.draws(n, c * h * w, rng);
            shards.split(p.points(real.clone(), fake.clone(), &draws))
        })
        .collect()
}

/// The fakes D is given: the objective's transform of the whole batch, where it has
/// one (gathered and split again, so that its random choices are a one-device run's).
fn augmented<B: Kernels>(
    shards: &Shards<B>,
    objective: &Objective<Autodiff<B>>,
    fakes: Vec<Tensor<Autodiff<B>, 4>>,
    p: f64,
    rng: &mut Rng,
) -> Vec<Tensor<Autodiff<B>, 4>> {
    if objective.augmentation().is_none() {
        return fakes;
    }
    shards.split(objective.augment(shards.gather(fakes), p, rng))
}

fn zip3<A, B, C>(a: Vec<A>, b: Vec<B>, c: Vec<C>) -> Vec<(A, B, C)> {
    a.into_iter()
        .zip(b)
        .zip(c)
        .map(|((a, b), c)| (a, b, c))
        .collect()
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
