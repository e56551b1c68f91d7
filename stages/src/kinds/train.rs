//! `Train`: a GAN trained on a `Dataset` stage's images with the paper's loop.
//!
//! ```ron
//! "train": Train(
//!     data: "cifar10_train",
//!     model: Include("configs/table1/contra_biggan32_cifar.model.ron"),
//!     train: Include("configs/table1/contra_biggan32_cifar.train.ron"),
//!     seed: 1,
//! ),
//! ```
//!
//! Outputs: `G.safetensors`, `G_ema.safetensors` (with an EMA), `D.safetensors` (the
//! model configuration in their metadata and in `model.json`), `classes.json` (the data
//! set's class names), and `metrics.jsonl`
//! (one line per iteration: step, losses, seconds). Checkpoints go to the stage's work
//! folder every `checkpoint_every` iterations and when interrupted; a rerun resumes
//! from the newest one. With `eval: Some((reference: "cifar10_stats", weights:
//! "inception", every: 2000))`, FID is measured during training as the paper does:
//! `fid.jsonl` holds every score, `G_best.safetensors` the best generator (metrics
//! `best_fid`, `best_step`; `Sample(generator: Best)` samples it). `init` starts from the authors' checkpoints (`model=G-….pth`,
//! `model=D-….pth`, optionally `model=G_ema-….pth`) instead of fresh networks.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use explain::Explain;
use kernels::Kernels;
use serde::{Deserialize, Serialize};

use crate::artifacts::{self, Extractor};
use crate::error::KindError;
use crate::protocol;
use contract::{Context, FileInput, Invalid, Needs, Outcome, Reference, TypedKind};
use gan::config::{AuxClassifier, Conditioning};
use gan::evaluate::{Evaluation, Scored};
use gan::import::{Network, import};
use gan::tensors::Snapshot;
use gan::train::penalty::Penalty;
use gan::train::{self, Setup, Start, StepLog, TrainError, Trained};
use gan::{GanError, ModelConfig, TrainConfig};
use kernels::device::{Device, OnDevices};
use metrics::backbone::Backbone;
use metrics::extract::FeatureNetwork;

pub struct Train;

/// Trains a GAN of the paper (or of StudioGAN v0.4) on a data set with the reference's
/// training loop, writing G, its EMA and D as safetensors, and the losses of every
/// iteration in `metrics.jsonl`. Interrupted, it resumes from its last checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A `Dataset` stage: the real images.
    pub data: String,
    /// The networks: architecture, width, conditioning (usually `Include`d from
    /// `configs/`).
    pub model: ModelConfig,
    /// The training: batch, steps, losses, optimizer and methods (usually `Include`d).
    pub train: TrainConfig,
    /// Seeds the initialization, the data order, z, the fake labels and every other
    /// random draw: the same seed, the same training.
    #[serde(default)]
    pub seed: u64,
    /// Iterations between checkpoints (G, D, EMA, both Adam states) in the stage's work
    /// folder; a rerun resumes from the newest. Interrupting also writes one.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Iterations between reads of the losses from the device: their lines in
    /// `metrics.jsonl`, the progress and the check for a non-finite loss come then
    /// (and before every checkpoint and evaluation, and at least every 10 seconds).
    /// On a GPU, each read waits for the device; it changes no result.
    #[serde(
        default = "default_log_every",
        skip_serializing_if = "is_default_log_every"
    )]
    pub log_every: u64,
    /// Where it trains: a GPU of the run when it has one (`Auto`), the CPU, or GPU n.
    #[serde(default)]
    pub device: Device,
    /// Devices one training is split over, data parallel (the reference's
    /// DataParallel): each step's batch in equal shards, one per device. GPU stages
    /// take this many GPUs of the run (sharing them when it has fewer); on the CPU,
    /// the shards take turns on its cores.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub devices: u32,
    /// Start from the authors' checkpoints instead of fresh networks.
    #[serde(default)]
    pub init: Option<Checkpoints>,
    /// FID during training, keeping the best generator.
    #[serde(default)]
    pub eval: Option<Eval>,
}

/// The paper's evaluation during training: every `every` iterations (and at the end),
/// `count` images of the generator (the EMA one where there is one) against reference
/// statistics.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Eval {
    /// An `InceptionStats` stage of the real images.
    pub reference: String,
    /// A `Weights` stage (or a `Classifier` stage, as `Score` takes).
    pub weights: String,
    /// Iterations between measurements; each is a line of `fid.jsonl`, and the best
    /// generator so far is kept (`G_best.safetensors`).
    pub every: u64,
    /// Images generated for each measurement.
    #[serde(default = "default_eval_count")]
    pub count: usize,
    /// The network measured in (the reference's and `weights`' backbone): the best
    /// generator is then the best by that backbone's Fréchet distance.
    #[serde(default, skip_serializing_if = "Backbone::is_inception")]
    pub eval_backbone: Backbone,
}

fn default_eval_count() -> usize {
    10_000
}

/// The authors' checkpoint files to start from.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Checkpoints {
    /// The authors' generator checkpoint (`model=G-….pth`), relative to the pipeline
    /// file's folder.
    pub g: PathBuf,
    /// The authors' discriminator checkpoint (`model=D-….pth`).
    pub d: PathBuf,
    /// The authors' EMA generator (`model=G_ema-….pth`); without it the EMA starts
    /// from `g`.
    #[serde(default)]
    pub g_ema: Option<PathBuf>,
}

fn default_checkpoint_every() -> u64 {
    1000
}

fn default_log_every() -> u64 {
    train::LOG_EVERY
}

fn is_default_log_every(n: &u64) -> bool {
    *n == train::LOG_EVERY
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl TypedKind for Train {
    const NAME: &'static str = "Train";
    const VERSION: u32 = 1;
    type Params = Params;
    type Error = KindError;

    fn declare(params: &Params) -> Result<Needs, Invalid> {
        params
            .model
            .check()
            .map_err(|(field, message)| Invalid::new(message, &["model", field]))?;
        params
            .train
            .check()
            .and_then(|()| params.train.check_with(&params.model))
            .map_err(|(field, message)| Invalid::new(message, &["train", field]))?;
        if params.devices == 0
            || !params
                .train
                .batch_size
                .is_multiple_of(params.devices as usize)
        {
            return Err(Invalid::new(
                format!(
                    "{} devices: the batch ({}) is split in equal shards, one per device",
                    params.devices, params.train.batch_size
                ),
                &["devices"],
            )
            .with_help("use a number of devices that divides `train.batch_size`"));
        }
        if let Some(style) = &params.model.stylegan2 {
            let shard = params.train.batch_size / params.devices as usize;
            let group = style.d_epilogue_mbstd_group_size.min(shard);
            if !shard.is_multiple_of(group) {
                return Err(Invalid::new(
                    format!(
                        "{} devices: each takes {shard} images, which D's minibatch standard \
                         deviation cannot split in groups of {group}",
                        params.devices
                    ),
                    &["devices"],
                )
                .with_help("use a number of devices that leaves each a multiple of the group"));
            }
        }
        if params.log_every == 0 {
            return Err(Invalid::new(
                "log_every: 0: the losses are read every so many iterations, at least one",
                &["log_every"],
            )
            .with_help("use 1 to read them after every iteration"));
        }
        let penalties = Penalty::all(&params.train);
        let penalized = !penalties.is_empty();
        let augmented = [
            ("apply_diffaug", params.train.apply_diffaug),
            ("ada", params.train.ada.is_some()),
        ];
        if let Some((field, _)) = augmented.iter().find(|(_, on)| *on)
            && params.train.r1_lambda.is_some()
            && params.train.stylegan2.is_none()
        {
            return Err(Invalid::new(
                "R1 takes D's gradient at the real images before the augmentation, through \
                 it in v0.4; the penalties' passes here run D on images without it (StyleGAN2's \
                 lazy R1 goes through it)",
                &["train", "r1_lambda"],
            )
            .with_help(format!("drop `r1_lambda` or `{field}`")));
        }
        if penalized && params.devices > 1 && params.train.sync_bn && !params.model.d_spectral_norm
        {
            return Err(Invalid::new(
                "the gradient penalties' passes normalize each device's shard with its own \
                 BatchNorm statistics: synchronized statistics in D are not built for them",
                &["train", "sync_bn"],
            )
            .with_help("set `d_spectral_norm: true` (D without BatchNorm) or `sync_bn: false`"));
        }
        if params.train.latent_op.is_some() {
            let model = &params.model;
            let seeds_loop = matches!(
                model.conditioning,
                Conditioning::None | Conditioning::Projection | Conditioning::Acgan
            ) && model.aux_cls_type == AuxClassifier::None;
            if !seeds_loop {
                return Err(Invalid::new(
                    format!(
                        "LOGAN is the seed's, in its loop for GANs without ContraGAN's loss \
                         (trainer.py's `run`); not built for conditioning {:?} with \
                         aux_cls_type {:?}",
                        model.conditioning, model.aux_cls_type
                    ),
                    &["train", "latent_op"],
                )
                .with_help("use conditioning None, Projection or Acgan, or drop `latent_op`"));
            }
            if penalties.iter().any(|p| p.kind.mixes_fakes()) {
                return Err(Invalid::new(
                    "WGAN-GP's and max-GP's points mix in the fakes, as constants; with \
                     LOGAN the reference also differentiates them through the move of z",
                    &["train", "latent_op"],
                )
                .with_help("drop `latent_op` or the gradient penalty"));
            }
        }
        if params.train.total_steps == 0 && params.init.is_none() {
            return Err(Invalid::new(
                "must be positive (0 steps only with `init`, to use imported networks as they are)",
                &["train", "total_steps"],
            ));
        }
        let mut files = Vec::new();
        if let Some(init) = &params.init {
            let mut file = |role: &str, field: &str, path: &Path| {
                files.push(FileInput {
                    role: role.into(),
                    path: path.to_path_buf(),
                    at: vec!["init".into(), field.into()],
                })
            };
            file("init_g", "g", &init.g);
            file("init_d", "d", &init.d);
            if let Some(path) = &init.g_ema {
                file("init_g_ema", "g_ema", path);
            }
        }
        let mut stages = vec![Reference::field("data", &params.data)];
        if let Some(eval) = &params.eval {
            if eval.every == 0 || eval.count < 2 {
                return Err(Invalid::new(
                    "`every` must be positive and `count` at least 2",
                    &["eval"],
                ));
            }
            for (role, field, target) in [
                ("eval_reference", "reference", &eval.reference),
                ("eval_weights", "weights", &eval.weights),
            ] {
                stages.push(Reference {
                    role: role.into(),
                    target: target.clone(),
                    at: vec!["eval".into(), field.into()],
                });
            }
        }
        Ok(Needs {
            stages,
            files,
            gpus: super::gpus(params.device, params.devices),
        })
    }

    fn run(params: Params, ctx: &Context) -> Result<Outcome, KindError> {
        let data = Arc::new(artifacts::images(ctx.input("data")?)?);
        let classes = data.header().classes.clone();
        // A resumed run continues from its checkpoint: nothing to import then.
        let (start, ignored) = match &params.init {
            Some(_) if !train::resumes(ctx.work) => {
                let (start, ignored) = imported(&params.model, ctx)?;
                (Some(start), ignored)
            }
            _ => (None, Vec::new()),
        };
        let device = params.device.in_slot(ctx.gpus);
        let log_every = (params.train.total_steps / 100).max(1);
        let progress = |entry: &StepLog| {
            let message = format!(
                "D {:.4} · G {:.4} · {:.2} s/it",
                entry.d_loss, entry.g_loss, entry.seconds
            );
            ctx.progress.report(entry.step, Some(entry.total), &message);
            if entry.step.is_multiple_of(log_every) || entry.step == entry.total {
                let _ = writeln!(
                    &mut &*ctx.log,
                    "step {}/{}: {message}",
                    entry.step, entry.total
                );
            }
        };
        // The reference statistics and the network of the evaluation during training.
        let mut protocol = protocol::Protocol::new();
        let eval_inputs = match &params.eval {
            Some(eval) => {
                let reference_input = ctx.single("eval_reference")?;
                let reference = artifacts::stats(&reference_input.path)?;
                let resizer = protocol::resizer(reference_input)?;
                let network =
                    artifacts::extractor(ctx.single("eval_weights")?, resizer, eval.eval_backbone)?;
                protocol::check_network(reference_input, &network.describe())?;
                // What `best_fid` was measured under.
                protocol = protocol::against(reference_input);
                let generator = if params.train.ema.is_some() {
                    "Ema"
                } else {
                    "Raw"
                };
                protocol.extend(protocol::of([
                    (protocol::IMAGES, eval.count.to_string()),
                    (protocol::GENERATOR, generator.to_string()),
                    (protocol::TRUNCATION, "1".to_string()),
                    (protocol::BATCH_NORM, "batch statistics".to_string()),
                ]));
                Some((eval, reference, network))
            }
            None => None,
        };
        let report = |scored: &Scored| {
            let _ = writeln!(
                &mut &*ctx.log,
                "step {}: FID {:.4}",
                scored.step, scored.fid
            );
        };
        let evaluation = eval_inputs
            .as_ref()
            .map(|(eval, reference, network)| Evaluation {
                every: eval.every,
                count: eval.count,
                network,
                reference,
                report: &report,
            });
        let setup = Setup {
            evaluation,
            model: &params.model,
            train: &params.train,
            seed: params.seed,
            data,
            work: ctx.work,
            checkpoint_every: params.checkpoint_every,
            log_every: params.log_every,
            start,
            cancel: ctx.cancel,
            progress: &progress,
        };
        let shards = params.devices as usize;
        let (result, used) = device.run_shards(ctx.gpus, shards, Training(&setup))?;
        let trained = result?;
        artifacts::write_trained(
            ctx.out,
            ctx.work,
            &params.model,
            &classes,
            params.seed,
            params.train.latent_op.as_ref(),
            &trained,
        )?;

        let mut metrics = vec![
            ("seconds_per_step".to_string(), trained.seconds_per_step),
            ("g_params".to_string(), parameter_count(&trained.g) as f64),
            ("d_params".to_string(), parameter_count(&trained.d) as f64),
        ];
        if let Some((best, _)) = &trained.best {
            metrics.push(("best_fid".into(), best.fid));
            metrics.push(("best_step".into(), best.step as f64));
        }
        if let Some(last) = &trained.last {
            metrics.push(("steps".into(), last.step as f64));
            metrics.push(("d_loss".into(), last.d_loss));
            metrics.push(("g_loss".into(), last.g_loss));
            if let Some(p) = last.aug_p {
                metrics.push(("aug_p".into(), p));
            }
        }
        let resumed = trained
            .resumed_from
            .map(|s| format!(", resumed from step {s}"))
            .unwrap_or_default();
        let ignored = if ignored.is_empty() {
            String::new()
        } else {
            format!(
                "; left out of the checkpoints (held, never used, by the authors' network): {}",
                ignored.join(", ")
            )
        };
        let summary = format!(
            "{:?} {:?}, {} steps on {used}, {:.2} s/it{resumed}{ignored}",
            params.model.architecture,
            params.model.conditioning,
            params.train.total_steps,
            trained.seconds_per_step
        );
        let _ = writeln!(&mut &*ctx.log, "{summary}");
        Ok(Outcome {
            metrics: metrics.into_iter().collect(),
            summary: Some(summary),
            protocol,
        })
    }
}

struct Training<'a, 'b>(&'a Setup<'b, Extractor>);

impl OnDevices for Training<'_, '_> {
    type Output = Result<Trained, TrainError>;

    fn run<B: Kernels>(self, devices: Vec<B::Device>) -> Self::Output {
        train::run::<B, _>(self.0, devices)
    }
}

/// The authors' networks named in `init`, as snapshots, and the tensors left out of
/// their checkpoints (`` `NAME` of ROLE ``).
fn imported(model: &ModelConfig, ctx: &Context) -> Result<(Start, Vec<String>), GanError> {
    let device = Default::default();
    let mut ignored = Vec::new();
    let mut load = |role: &str, network| -> Result<Snapshot, GanError> {
        let path = ctx
            .input(role)
            .map_err(|e| GanError::format(role, e.to_string()))?;
        let imported = import::<burn::backend::Flex>(path, network, model, &device)?;
        ignored.extend(
            imported
                .ignored
                .iter()
                .map(|(name, _)| format!("`{name}` of {role}")),
        );
        Ok(imported.tensors.to_snapshot())
    };
    let g_ema = if ctx.inputs.contains_key("init_g_ema") {
        Some(load("init_g_ema", Network::Generator)?)
    } else {
        None
    };
    let start = Start {
        g: load("init_g", Network::Generator)?,
        d: load("init_d", Network::Discriminator)?,
        g_ema,
    };
    Ok((start, ignored))
}

fn parameter_count(snapshot: &Snapshot) -> usize {
    snapshot
        .tensors
        .values()
        .filter(|t| t.role == gan::tensors::Role::Param)
        .map(|t| t.data.len())
        .sum()
}
