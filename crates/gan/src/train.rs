//! The training loop of the paper (reference: trainer.py): per iteration, D steps each
//! on a fresh real batch with fresh z and uniform fake labels, then G steps; gradient
//! accumulation; Adam; weight clipping for WGAN; an EMA of G after each G step.
//!
//! Everything random is a function of the seed and the position in the run (the
//! loader's epoch shuffles, and one stream per step and sub-step for z and the fake
//! labels), so a checkpoint needs no generator state besides its step: resuming from a
//! checkpoint continues bit for bit as the uninterrupted run would have.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::backend::Autodiff;
use burn::prelude::*;

use burn::tensor::backend::AutodiffBackend;
use kernels::Kernels;
use serde::{Deserialize, Serialize};

use super::adam::{Adam, Hyper};
use super::config::{Conditioning, ModelConfig, TrainConfig};
use super::evaluate::{self, Evaluation, Scored};
use super::layers::Mode;
use super::tensors::{Snapshot, Tensors};
use super::{GanError, discriminator, generator, loss};
use data::Packed;
use data::loader::{Loader, LoaderConfig};
use metrics::MetricError;
use metrics::extract::FeatureNetwork;
use rng::Rng;

/// Networks to start from instead of fresh initial ones (e.g. imported checkpoints).
pub struct Start {
    pub g: Snapshot,
    pub d: Snapshot,
    pub g_ema: Option<Snapshot>,
}

/// What to train. `N` is the network FID during training is measured in (the kind
/// chooses it; Inception where there is no evaluation).
pub struct Setup<'a, N = metrics::extract::Inception> {
    pub model: &'a ModelConfig,
    pub train: &'a TrainConfig,
    pub seed: u64,
    pub data: Arc<Packed>,
    /// Checkpoints and the metrics log; a run finding a checkpoint here resumes from it.
    pub work: &'a Path,
    /// Iterations between checkpoints (0: only at the end and on interruption).
    pub checkpoint_every: u64,
    pub start: Option<Start>,
    /// FID every so many iterations; the best generator is kept.
    pub evaluation: Option<Evaluation<'a, N>>,
    pub cancel: &'a AtomicBool,
    pub progress: &'a dyn Fn(&StepLog),
}

/// One line of the metrics log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    /// Iterations done.
    pub step: u64,
    pub total: u64,
    /// The losses of the iteration's last D and G steps (summed over accumulation).
    pub d_loss: f64,
    pub g_loss: f64,
    pub seconds: f64,
}

/// The trained networks.
#[derive(Debug)]
pub struct Trained {
    pub g: Snapshot,
    pub d: Snapshot,
    pub g_ema: Option<Snapshot>,
    pub last: Option<StepLog>,
    pub resumed_from: Option<u64>,
    pub seconds_per_step: f64,
    /// With an evaluation: the best score and its generator (the EMA one where there is
    /// one); every score is in the work folder's `fid.jsonl`.
    pub best: Option<(Scored, Snapshot)>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "step {step}: the {loss} loss is {value}; training stopped. {}",
        match checkpoint {
            Some(s) => format!("The last good checkpoint (step {s}) is kept in the work folder."),
            None => "No checkpoint was written before it.".to_string(),
        }
    )]
    NonFinite {
        step: u64,
        loss: &'static str,
        value: f32,
        checkpoint: Option<u64>,
    },
    #[error(
        "interrupted at step {step}; a checkpoint was written and the next run resumes from it"
    )]
    Cancelled { step: u64 },
    #[error("step {step}: evaluation failed")]
    Evaluation {
        step: u64,
        #[source]
        source: MetricError,
    },
    #[error(transparent)]
    Gan(#[from] GanError),
}

/// What is saved at a checkpoint.
struct State<B: Kernels> {
    step: u64,
    g: Tensors<B>,
    d: Tensors<B>,
    g_ema: Option<Tensors<B>>,
    opt_g: Adam<B>,
    opt_d: Adam<B>,
}

#[derive(Serialize, Deserialize)]
struct CheckpointInfo {
    step: u64,
    seed: u64,
}

fn hyper(train: &TrainConfig, lr: f64) -> Hyper {
    Hyper {
        lr,
        beta1: train.beta1,
        beta2: train.beta2,
        eps: train.adam_eps,
    }
}

/// Whether `data` suits `model` and makes at least one batch of `batch_size`.
pub fn check_data(model: &ModelConfig, data: &Packed, batch_size: usize) -> Result<(), GanError> {
    let header = data.header();
    let size = model.image_size();
    if header.height as usize != size || header.width as usize != size || header.channels != 3 {
        return Err(GanError::Unsuited(format!(
            "{:?} needs {size}×{size} RGB images; the dataset has {}×{}×{}",
            model.architecture, header.height, header.width, header.channels
        )));
    }
    if header.classes.len() != model.num_classes {
        return Err(GanError::Unsuited(format!(
            "the model has num_classes: {}, the dataset {} classes",
            model.num_classes,
            header.classes.len()
        )));
    }
    if data.len() < batch_size {
        return Err(GanError::Unsuited(format!(
            "the dataset has {} images, fewer than one batch (batch_size: {batch_size})",
            data.len()
        )));
    }
    Ok(())
}

/// Trains on backend `B` (with autodiff on top of it).
pub fn run<B: Kernels, N: FeatureNetwork>(
    setup: &Setup<N>,
    device: &B::Device,
) -> Result<Trained, TrainError> {
    let (model, train) = (setup.model, setup.train);
    check_data(model, &setup.data, train.batch_size)?;
    let checkpoints = checkpoint_dir(setup.work);
    let mut state = match latest_checkpoint(&checkpoints)? {
        Some(step) => load_checkpoint::<B>(&checkpoints.join(step.to_string()), train, device)?,
        None => fresh(setup, device),
    };
    let resumed_from = (state.step > 0).then_some(state.step);
    let per_iteration = (train.d_steps_per_iter * train.accumulation_steps) as u64;
    let loader_config = LoaderConfig {
        batch_size: train.batch_size,
        seed: setup.seed,
        flip: train.flip,
        drop_last: true,
        prefetch: 4,
    };
    let mut batches = Loader::new(
        setup.data.clone(),
        loader_config,
        state.step * per_iteration,
    );
    let (mut log, _) = MetricsLog::open(&setup.work.join(LOSSES), state.step)?;
    let (mut scores, kept) = MetricsLog::open(&setup.work.join(SCORES), state.step)?;
    let kept: Vec<Scored> = kept
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut best = best_of(&kept, setup.work);
    // A run interrupted while evaluating resumes from the checkpoint written just before.
    if let Some(evaluation) = &setup.evaluation
        && state.step > 0
        && (state.step.is_multiple_of(evaluation.every) || state.step == train.total_steps)
        && !kept.iter().any(|s| s.step == state.step)
    {
        evaluate_now(&state, setup, evaluation, &mut scores, &mut best)?;
    }
    let mut last = None;
    let mut saved = resumed_from;
    let started = Instant::now();
    let first = state.step;
    while state.step < train.total_steps {
        if setup.cancel.load(Ordering::Relaxed) {
            save_checkpoint(&checkpoints, &state, setup.seed)?;
            return Err(TrainError::Cancelled { step: state.step });
        }
        let t0 = Instant::now();
        let step = state.step;
        let fail = |loss, value| TrainError::NonFinite {
            step,
            loss,
            value,
            checkpoint: saved,
        };
        let mut d_loss = 0.0;
        for k in 0..train.d_steps_per_iter {
            d_loss = d_step::<B, N>(&mut state, setup, &mut batches, k)
                .map_err(|v| fail("discriminator", v))?;
        }
        let mut g_loss = 0.0;
        for k in 0..train.g_steps_per_iter {
            g_loss = g_step::<B, N>(&mut state, setup, k).map_err(|v| fail("generator", v))?;
        }
        state.step += 1;
        let entry = StepLog {
            step: state.step,
            total: train.total_steps,
            d_loss,
            g_loss,
            seconds: t0.elapsed().as_secs_f64(),
        };
        log.append(&entry)?;
        (setup.progress)(&entry);
        last = Some(entry);
        if setup.checkpoint_every > 0 && state.step.is_multiple_of(setup.checkpoint_every) {
            save_checkpoint(&checkpoints, &state, setup.seed)?;
            saved = Some(state.step);
        }
        if let Some(evaluation) = &setup.evaluation
            && (state.step.is_multiple_of(evaluation.every) || state.step == train.total_steps)
        {
            // A checkpoint first: an evaluation interrupted is redone from it.
            if saved != Some(state.step) {
                save_checkpoint(&checkpoints, &state, setup.seed)?;
                saved = Some(state.step);
            }
            evaluate_now(&state, setup, evaluation, &mut scores, &mut best)?;
        }
    }

    if saved != Some(state.step) {
        save_checkpoint(&checkpoints, &state, setup.seed)?;
    }
    let done = (state.step - first).max(1);
    let best = match best {
        Some(scored) => {
            let path = best_path(setup.work, scored.step);
            Some((scored, Snapshot::load(&path)?))
        }
        None => None,
    };
    Ok(Trained {
        best,
        g: state.g.to_snapshot(),
        d: state.d.to_snapshot(),
        g_ema: state.g_ema.as_ref().map(Tensors::to_snapshot),
        last,
        resumed_from,
        seconds_per_step: started.elapsed().as_secs_f64() / done as f64,
    })
}

fn fresh<B: Kernels, N>(setup: &Setup<N>, device: &B::Device) -> State<B> {
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

/// The class-dependent part of a loss: ACGAN's cross-entropy or ContraGAN's 2C term.
fn class_loss<B: Kernels, N>(
    setup: &Setup<N>,
    out: &discriminator::Output<B>,
    labels: &[u32],
    device: &B::Device,
) -> Option<Tensor<B, 1>> {
    let train = setup.train;
    match setup.model.conditioning {
        Conditioning::Acgan => {
            let logits = out.class_logits.clone().expect("ACGAN head");
            Some(loss::cross_entropy(logits, label_tensor(labels, device)))
        }
        Conditioning::Contrastive => {
            let (embed, anchor) = out.contrastive.clone().expect("ContraGAN head");
            let c2 = loss::contrastive(
                embed,
                anchor,
                labels,
                train.temperature,
                train.positives_in_numerator,
            );
            Some(c2 * train.contrastive_lambda)
        }
        Conditioning::None | Conditioning::Projection => None,
    }
}

/// One D step; returns its loss, or the non-finite value that stopped it.
fn d_step<B: Kernels, N>(
    state: &mut State<B>,
    setup: &Setup<N>,
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
        let (z, fake_labels) = latents::<B, N>(setup, state.step, (k * accum + a) as u64, &device);
        // The reference's order: D on the real batch, G, D on the fakes.
        let real_out = discriminator::run(
            &mut d,
            Mode::TRAIN,
            model,
            real,
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
            Tensor::from_inner(fake),
            label_tensor(&fake_labels, &device),
        );
        let mut value = train
            .adv_loss
            .discriminator(real_out.adv.clone(), fake_out.adv.clone());
        match model.conditioning {
            Conditioning::Acgan => {
                value = value
                    + class_loss(setup, &real_out, &batch.labels, &device).unwrap()
                    + class_loss(setup, &fake_out, &fake_labels, &device).unwrap();
            }
            Conditioning::Contrastive => {
                value = value + class_loss(setup, &real_out, &batch.labels, &device).unwrap();
            }
            Conditioning::None | Conditioning::Projection => {}
        }
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

fn g_step<B: Kernels, N>(state: &mut State<B>, setup: &Setup<N>, k: usize) -> Result<f64, f32> {
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
        let out = discriminator::run(&mut d, Mode::TRAIN, model, fake, y);
        let mut value = train.adv_loss.generator(out.adv.clone());
        if let Some(extra) = class_loss(setup, &out, &labels, &device) {
            value = value + extra;
        }
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
        .filter(|(_, e)| e.role == super::tensors::Role::Param)
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

fn checkpoint_dir(work: &Path) -> PathBuf {
    work.join("checkpoints")
}

/// Whether a run with this work folder resumes from a checkpoint (and so ignores
/// [`Setup::start`]).
pub fn resumes(work: &Path) -> bool {
    matches!(latest_checkpoint(&checkpoint_dir(work)), Ok(Some(_)))
}

/// The step of the newest complete checkpoint under `dir`.
fn latest_checkpoint(dir: &Path) -> Result<Option<u64>, TrainError> {
    match std::fs::read_to_string(dir.join("latest")) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(GanError::io(&dir.join("latest"), e).into()),
    }
}

const FILES: [&str; 5] = ["G", "D", "G_ema", "adam_G", "adam_D"];

fn save_checkpoint<B: Kernels>(dir: &Path, state: &State<B>, seed: u64) -> Result<(), TrainError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| TrainError::Gan(GanError::io(&path, e))
    };
    let final_dir = dir.join(state.step.to_string());
    let tmp = dir.join(format!("{}.tmp", state.step));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let snapshots = [
        Some(state.g.to_snapshot()),
        Some(state.d.to_snapshot()),
        state.g_ema.as_ref().map(Tensors::to_snapshot),
        Some(state.opt_g.to_snapshot()),
        Some(state.opt_d.to_snapshot()),
    ];
    for (name, snapshot) in FILES.iter().zip(snapshots) {
        if let Some(snapshot) = snapshot {
            snapshot.save(&tmp.join(format!("{name}.safetensors")))?;
        }
    }
    let info = CheckpointInfo {
        step: state.step,
        seed,
    };
    let info_path = tmp.join("state.json");
    std::fs::write(&info_path, serde_json::to_vec_pretty(&info).unwrap())
        .map_err(io(&info_path))?;
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
    let latest = dir.join("latest");
    let latest_tmp = dir.join("latest.tmp");
    std::fs::write(&latest_tmp, state.step.to_string()).map_err(io(&latest_tmp))?;
    std::fs::rename(&latest_tmp, &latest).map_err(io(&latest))?;
    // Older checkpoints are superseded.
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let path = entry.path();
        if path.is_dir() && path != final_dir {
            let _ = std::fs::remove_dir_all(path);
        }
    }
    Ok(())
}

fn load_checkpoint<B: Kernels>(
    dir: &Path,
    train: &TrainConfig,
    device: &B::Device,
) -> Result<State<B>, TrainError> {
    let load = |name: &str| -> Result<Option<Snapshot>, GanError> {
        let path = dir.join(format!("{name}.safetensors"));
        if path.exists() {
            Snapshot::load(&path).map(Some)
        } else {
            Ok(None)
        }
    };
    let missing = |name: &str| {
        GanError::format(
            dir.display(),
            format!("checkpoint lacks {name}.safetensors"),
        )
    };
    let info_path = dir.join("state.json");
    let info: CheckpointInfo = serde_json::from_slice(
        &std::fs::read(&info_path).map_err(|e| GanError::io(&info_path, e))?,
    )
    .map_err(|e| GanError::format(info_path.display(), e.to_string()))?;
    let g = load("G")?.ok_or_else(|| missing("G"))?;
    let d = load("D")?.ok_or_else(|| missing("D"))?;
    let adam = |name: &str, lr: f64| -> Result<Adam<B>, GanError> {
        let snapshot = load(name)?.ok_or_else(|| missing(name))?;
        Adam::from_snapshot(hyper(train, lr), &snapshot, device).ok_or_else(|| {
            GanError::format(
                dir.display(),
                format!("{name}.safetensors is not an optimizer state"),
            )
        })
    };
    Ok(State {
        step: info.step,
        g: Tensors::from_snapshot(&g, device),
        d: Tensors::from_snapshot(&d, device),
        g_ema: load("G_ema")?.map(|s| Tensors::from_snapshot(&s, device)),
        opt_g: adam("adam_G", train.g_lr)?,
        opt_d: adam("adam_D", train.d_lr)?,
    })
}

/// The file of every evaluation's score, beside [`LOSSES`].
pub const SCORES: &str = "fid.jsonl";
/// The training log: step, losses and seconds, one line per iteration.
pub const LOSSES: &str = "metrics.jsonl";

fn best_path(work: &Path, step: u64) -> PathBuf {
    work.join("best").join(format!("{step}.safetensors"))
}

/// The best of the kept scores whose generator is on disk.
fn best_of(kept: &[Scored], work: &Path) -> Option<Scored> {
    kept.iter()
        .copied()
        .filter(|s| best_path(work, s.step).exists())
        .fold(None, |best: Option<Scored>, s| match best {
            Some(b) if b.fid <= s.fid || s.fid.is_nan() => Some(b),
            _ => Some(s),
        })
}

/// Scores the generator now; a new best is written before its score is logged, and the
/// previous best removed only after, so that an interruption never loses the best.
fn evaluate_now<B: Kernels, N: FeatureNetwork>(
    state: &State<B>,
    setup: &Setup<N>,
    evaluation: &Evaluation<N>,
    scores: &mut MetricsLog,
    best: &mut Option<Scored>,
) -> Result<(), TrainError> {
    let step = state.step;
    let g = state.g_ema.as_ref().unwrap_or(&state.g);
    let fid = evaluate::score(g, setup.model, evaluation, setup.seed, setup.cancel).map_err(
        |source| match source {
            MetricError::Cancelled => TrainError::Cancelled { step },
            source => TrainError::Evaluation { step, source },
        },
    )?;
    let scored = Scored { step, fid };
    let better = best.is_none_or(|b| fid < b.fid);
    let path = best_path(setup.work, step);
    if better {
        let dir = path.parent().expect("a folder");
        std::fs::create_dir_all(dir).map_err(|e| GanError::io(dir, e))?;
        let tmp = path.with_extension("tmp");
        g.to_snapshot().save(&tmp)?;
        std::fs::rename(&tmp, &path).map_err(|e| GanError::io(&path, e))?;
    }
    scores.append(&scored)?;
    if better {
        if let Some(old) = best.filter(|b| b.step != step) {
            let _ = std::fs::remove_file(best_path(setup.work, old.step));
        }
        *best = Some(scored);
    }
    (evaluation.report)(&scored);
    Ok(())
}

/// The JSON-lines log of every iteration, cut back to the checkpoint on resume.
struct MetricsLog {
    file: std::fs::File,
    path: PathBuf,
}

impl MetricsLog {
    /// Opens the log for appending, and returns the lines it kept.
    fn open(path: &Path, keep_until: u64) -> Result<(MetricsLog, String), TrainError> {
        let io = |e| TrainError::Gan(GanError::io(path, e));
        let kept: String = match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .filter(|line| {
                    serde_json::from_str::<serde_json::Value>(line)
                        .is_ok_and(|l| l["step"].as_u64().is_some_and(|s| s <= keep_until))
                })
                .map(|line| format!("{line}\n"))
                .collect(),
            Err(_) => String::new(),
        };
        std::fs::write(path, &kept).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io)?;
        let log = MetricsLog {
            file,
            path: path.to_path_buf(),
        };
        Ok((log, kept))
    }

    fn append(&mut self, entry: &impl Serialize) -> Result<(), TrainError> {
        let line = serde_json::to_string(entry).unwrap();
        writeln!(self.file, "{line}").map_err(|e| TrainError::Gan(GanError::io(&self.path, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AdvLoss, Architecture, Attention, Ema};
    use burn::backend::Flex;
    use data::Split;
    use data::synthetic::{self, Synthetic};
    use kernels::device::OnBackend;
    use metrics::extract::Extraction;

    fn dataset(dir: &Path) -> Arc<Packed> {
        let params = Synthetic {
            seed: 3,
            per_class: 4,
            size: 32,
            classes: 4,
            plain: false,
        };
        let images = synthetic::read(&params, Split::Train);
        let path = dir.join("images.pack");
        data::pack(images, &path, &|_, _| {}, &AtomicBool::new(false)).unwrap();
        Arc::new(Packed::open(&path).unwrap())
    }

    fn configs() -> (ModelConfig, TrainConfig) {
        let model = ModelConfig {
            architecture: Architecture::Biggan32,
            conditioning: Conditioning::Contrastive,
            num_classes: 4,
            z_dim: 20,
            shared_dim: 8,
            g_conv_dim: 8,
            d_conv_dim: 8,
            hyper_dim: 16,
            nonlinear_embed: false,
            normalize_embed: true,
            g_spectral_norm: true,
            d_spectral_norm: true,
            attention: Some(Attention {
                g_after_block: 2,
                d_after_block: 1,
            }),
            leaky_relu: false,
            g_init: Default::default(),
            d_init: Default::default(),
            image_size: None,
        };
        let train = TrainConfig {
            batch_size: 4,
            accumulation_steps: 2,
            total_steps: 4,
            d_steps_per_iter: 2,
            g_steps_per_iter: 1,
            g_lr: 2e-4,
            d_lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            adam_eps: 1e-8,
            adv_loss: AdvLoss::Hinge,
            contrastive_lambda: 1.0,
            temperature: 1.0,
            positives_in_numerator: true,
            weight_clipping: None,
            gradient_penalty: None,
            ema: Some(Ema {
                decay: 0.9,
                start: 2,
            }),
            flip: true,
        };
        (model, train)
    }

    fn train(
        data: &Arc<Packed>,
        work: &Path,
        stop_at: Option<u64>,
        start: Option<Start>,
    ) -> Result<Trained, TrainError> {
        let (model, config) = configs();
        let cancel = AtomicBool::new(false);
        let progress = |log: &StepLog| {
            assert!(log.d_loss.is_finite() && log.g_loss.is_finite());
            if Some(log.step) == stop_at {
                cancel.store(true, Ordering::Relaxed);
            }
        };
        // FID every 2 iterations in the features of an untrained classifier.
        let classifier = ModelConfig {
            conditioning: Conditioning::Acgan,
            ..model.clone()
        };
        let network = crate::classifier::Trained {
            net: discriminator::build::<Flex>(&classifier, 5, &Default::default()).to_snapshot(),
            model: classifier,
        };
        let reference = Extraction {
            network: &network,
            images: data.as_ref(),
            batch: 8,
            keep: false,
            progress: &|_, _| {},
            cancel: &AtomicBool::new(false),
        }
        .run::<Flex>(Default::default())
        .unwrap()
        .stats
        .unwrap();
        let setup = Setup {
            model: &model,
            train: &config,
            seed: 11,
            data: data.clone(),
            work,
            checkpoint_every: 3,
            start,
            evaluation: Some(Evaluation {
                every: 2,
                count: 6,
                network: &network,
                reference: &reference,
                report: &|_| {},
            }),
            cancel: &cancel,
            progress: &progress,
        };
        run::<Flex, _>(&setup, &Default::default())
    }

    #[test]
    fn interrupted_and_resumed_training_equals_an_uninterrupted_run() {
        let dir = tempfile::tempdir().unwrap();
        let data = dataset(dir.path());
        let (whole, parts) = (dir.path().join("whole"), dir.path().join("parts"));
        std::fs::create_dir_all(&whole).unwrap();
        std::fs::create_dir_all(&parts).unwrap();

        let a = train(&data, &whole, None, None).unwrap();
        assert_eq!(a.last.as_ref().unwrap().step, 4);
        let ema = a.g_ema.as_ref().unwrap();
        assert_ne!(
            ema.tensors["linear0.weight_orig"],
            a.g.tensors["linear0.weight_orig"]
        );

        let stopped = train(&data, &parts, Some(2), None).map(|_| ()).unwrap_err();
        assert!(
            matches!(stopped, TrainError::Cancelled { step: 2 }),
            "{stopped}"
        );
        let b = train(&data, &parts, None, None).unwrap();
        assert_eq!(b.resumed_from, Some(2));
        assert!(a.g == b.g, "G differs after resuming");
        assert!(a.d == b.d, "D differs after resuming");
        assert!(a.g_ema == b.g_ema, "EMA differs after resuming");
        let log = std::fs::read_to_string(parts.join(LOSSES)).unwrap();
        let steps: Vec<u64> = log
            .lines()
            .map(|l| serde_json::from_str::<StepLog>(l).unwrap().step)
            .collect();
        assert_eq!(steps, [1, 2, 3, 4]);

        // The evaluation interrupted at step 2 was redone on resuming: same scores, and
        // the best generator is the one of the lowest.
        let scores = |dir: &Path| std::fs::read_to_string(dir.join(SCORES)).unwrap();
        assert_eq!(scores(&whole), scores(&parts));
        let logged: Vec<Scored> = scores(&whole)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(logged.iter().map(|s| s.step).collect::<Vec<_>>(), [2, 4]);
        let lowest = logged
            .iter()
            .fold(logged[0], |b, &s| if s.fid < b.fid { s } else { b });
        let (best_a, snapshot_a) = a.best.unwrap();
        let (best_b, snapshot_b) = b.best.unwrap();
        assert_eq!((best_a, best_b), (lowest, lowest));
        assert!(snapshot_a == snapshot_b);
        if lowest.step == 4 {
            assert!(&snapshot_a == a.g_ema.as_ref().unwrap());
        }
        let kept: Vec<_> = std::fs::read_dir(parts.join("best")).unwrap().collect();
        assert_eq!(kept.len(), 1, "only the best generator is kept");
    }

    #[test]
    fn a_non_finite_loss_stops_training_and_names_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let data = dataset(dir.path());
        let (model, _) = configs();
        let g = generator::build::<Flex>(&model, 1, &Default::default()).to_snapshot();
        let mut d = discriminator::build::<Flex>(&model, 2, &Default::default()).to_snapshot();
        // The embedding head: ReLUs would swallow a NaN in the trunk or the hinge.
        d.tensors.get_mut("linear5.bias").unwrap().data[0] = f32::NAN;
        let start = Start { g, d, g_ema: None };
        let err = train(&data, dir.path(), None, Some(start))
            .map(|_| ())
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("step 0: the discriminator loss is NaN"),
            "{text}"
        );
        assert!(!dir.path().join("checkpoints/latest").exists());
    }
}
