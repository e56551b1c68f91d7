//! The training loop of the paper (reference: trainer.py): per iteration, D steps each
//! on a fresh real batch with fresh z and uniform fake labels, then G steps; gradient
//! accumulation; Adam; weight clipping for WGAN; an EMA of G after each G step.
//!
//! Everything random is a function of the seed and the position in the run (the
//! loader's epoch shuffles, and one stream per step and sub-step for z and the fake
//! labels), so a checkpoint needs no generator state besides its step: resuming from a
//! checkpoint continues bit for bit as the uninterrupted run would have.

//!
//! The loop is here; its seams are modules of their own: [`objective`] (what each side
//! is trained on, term by term), `step` (one D and one G step), `latent` (LOGAN's move
//! of z, and the gradient through it), `parallel` (a step's
//! batch split over several devices, as the reference's DataParallel does), `state`
//! (what a run carries), `checkpoint`, `best` (FID during training and the best
//! generator) and `log` (the JSON-lines logs).

pub mod ada;
pub mod adaptive;
pub mod apa;
pub mod augment;
mod best;
mod checkpoint;
pub mod diffaug;
pub mod ema;
mod grads;
pub mod latent;
pub mod lecam;
mod log;
mod losses;
pub mod objective;
mod parallel;
pub mod penalty;
mod state;
mod step;
pub mod term;
#[cfg(test)]
pub(crate) mod tests;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::backend::Autodiff;
use burn::prelude::Tensor;
use kernels::Kernels;
use serde::{Deserialize, Serialize};

use crate::GanError;
use crate::config::{ModelConfig, TrainConfig};
use crate::evaluate::{Evaluation, Scored};
use crate::tensors::{Snapshot, Tensors};
use data::Packed;
use data::loader::{Loader, LoaderConfig};
use metrics::MetricError;
use metrics::extract::FeatureNetwork;

use best::{best_d_path, best_of, best_path, evaluate_now};
pub use checkpoint::resumes;
use checkpoint::{checkpoint_dir, latest_checkpoint, load_checkpoint, save_checkpoint};
use log::MetricsLog;
pub use log::{LOSSES, SCORES};
use losses::Unread;
use objective::Objective;
use parallel::Shards;
use state::fresh;
use step::{d_step, g_step};

/// Networks to start from instead of fresh initial ones (e.g. imported checkpoints).
pub struct Start {
    pub g: Snapshot,
    pub d: Snapshot,
    pub g_ema: Option<Snapshot>,
}

/// What to train. `N` is the network FID during training is measured in (the kind
/// chooses it; Inception where there is no evaluation).
pub struct Setup<'a, N = metrics::backbone::Pretrained> {
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
    /// Called with each iteration's log line, when its losses are read.
    pub progress: &'a dyn Fn(&StepLog),
    /// Iterations between reads of the losses (see [`LOG_EVERY`]).
    pub log_every: u64,
}

/// The losses stay on the device and are read back together, with their finiteness
/// checked then, every so many iterations (and before every checkpoint and
/// evaluation, and at the end): on a GPU each read waits for the work queued before
/// it, so a read per step would keep the host waiting on the device.
pub const LOG_EVERY: u64 = 10;

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
    /// ADA's and APA's probability after the iteration (with `ada` or `apa`).
    #[serde(default, alias = "apa_p", skip_serializing_if = "Option::is_none")]
    pub aug_p: Option<f64>,
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
    /// With LOGAN, D at the best evaluation: it moves the best generator's z.
    pub best_d: Option<Snapshot>,
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

/// Trains on backend `B` (with autodiff on top of it), data parallel over `devices`
/// (one per shard; the first holds the state) when there are several.
pub fn run<B: Kernels, N: FeatureNetwork>(
    setup: &Setup<N>,
    devices: Vec<B::Device>,
) -> Result<Trained, TrainError> {
    let (model, train) = (setup.model, setup.train);
    check_data(model, &setup.data, train.batch_size)?;
    if !train.batch_size.is_multiple_of(devices.len()) {
        return Err(GanError::Unsuited(format!(
            "batch_size {} does not split evenly over {} devices",
            train.batch_size,
            devices.len()
        ))
        .into());
    }
    let shards = Shards::<B>::new(devices, train.sync_bn);
    let device = shards.first();
    let checkpoints = checkpoint_dir(setup.work);
    let (mut state, terms) = match latest_checkpoint(&checkpoints)? {
        Some(step) => load_checkpoint::<B>(&checkpoints.join(step.to_string()), train, device)?,
        None => (fresh(setup, device), Default::default()),
    };
    let resumed_from = (state.step > 0).then_some(state.step);
    let per_iteration = (train.d_steps_per_iter * train.accumulation_steps) as u64;
    let objective = Objective::<Autodiff<B>>::new(model, train);
    objective.restore(&terms);
    let loader_config = LoaderConfig {
        batch_size: train.batch_size,
        seed: setup.seed,
        flip: train.flip,
        drop_last: true,
        prefetch: 4,
        views: objective.uses_views(),
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
    let mut unread = Unread::new(train.total_steps);
    while state.step < train.total_steps {
        if setup.cancel.load(Ordering::Relaxed) {
            unread.read(&mut log, setup.progress, &mut last, saved)?;
            save_checkpoint(&checkpoints, &state, setup.seed, objective.state())?;
            return Err(TrainError::Cancelled { step: state.step });
        }
        let t0 = Instant::now();
        let zero = || Tensor::<B, 1>::zeros([1], device);
        let mut d_loss = zero();
        for k in 0..train.d_steps_per_iter {
            d_loss = d_step::<B, N>(&mut state, setup, &objective, &mut batches, &shards, k);
        }
        let mut g_loss = zero();
        for k in 0..train.g_steps_per_iter {
            g_loss = g_step::<B, N>(&mut state, setup, &objective, &shards, k);
        }
        let aug_p = state.adaptive.as_ref().map(|adaptive| adaptive.p);
        unread.push(
            state.step,
            d_loss,
            g_loss,
            t0.elapsed().as_secs_f64(),
            aug_p,
        );
        state.step += 1;
        let checkpoint_due =
            setup.checkpoint_every > 0 && state.step.is_multiple_of(setup.checkpoint_every);
        let evaluation_due = setup.evaluation.as_ref().is_some_and(|evaluation| {
            state.step.is_multiple_of(evaluation.every) || state.step == train.total_steps
        });
        // The losses are read before anything is saved: a non-finite one stops the run
        // with the networks that made it unsaved.
        if checkpoint_due
            || evaluation_due
            || state.step == train.total_steps
            || unread.due(setup.log_every)
        {
            unread.read(&mut log, setup.progress, &mut last, saved)?;
        }
        if checkpoint_due {
            save_checkpoint(&checkpoints, &state, setup.seed, objective.state())?;
            saved = Some(state.step);
        }
        if let Some(evaluation) = &setup.evaluation
            && evaluation_due
        {
            // A checkpoint first: an evaluation interrupted is redone from it.
            if saved != Some(state.step) {
                save_checkpoint(&checkpoints, &state, setup.seed, objective.state())?;
                saved = Some(state.step);
            }
            evaluate_now(&state, setup, evaluation, &mut scores, &mut best)?;
        }
    }

    if saved != Some(state.step) {
        save_checkpoint(&checkpoints, &state, setup.seed, objective.state())?;
    }
    let done = (state.step - first).max(1);
    let (best, best_d) = match best {
        Some(scored) => {
            let g = Snapshot::load(&best_path(setup.work, scored.step))?;
            let d = best_d_path(setup.work, scored.step);
            let d = if d.exists() {
                Some(Snapshot::load(&d)?)
            } else {
                None
            };
            (Some((scored, g)), d)
        }
        None => (None, None),
    };
    Ok(Trained {
        best,
        best_d,
        g: state.g.to_snapshot(),
        d: state.d.to_snapshot(),
        g_ema: state.g_ema.as_ref().map(Tensors::to_snapshot),
        last,
        resumed_from,
        seconds_per_step: started.elapsed().as_secs_f64() / done as f64,
    })
}
