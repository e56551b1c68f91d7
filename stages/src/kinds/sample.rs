//! `Sample`: images from a `Train` stage's generator, packed like a data set so that
//! `InceptionStats` and `pipe metric` read them as they read real images.
//!
//! ```ron
//! "samples": Sample(model: "gan", count: 10000, seed: 0),
//! ```
//!
//! The paper's protocol is the default: the EMA generator (`generator: Raw` for the
//! trained one), uniform labels, z ~ N(0, 1) (divided by `truncation`, as the
//! reference's `truncated_factor`), and BatchNorm normalizing with each batch's
//! statistics (`running_stats: true` uses the running ones). Outputs: `images.pack`
//! and `preview.png` (a row per class).

use std::io::Write;

use explain::Explain;
use serde::{Deserialize, Serialize};

use crate::artifacts::{self, Generator};
use crate::error::KindError;
use crate::protocol;
use contract::{Context, Invalid, Needs, Outcome, Reference, StageError, TypedKind};
use data::PackWriter;
use gan::GanError;
use gan::config::{Architecture, LatentOpConfig};
use gan::layers::Mode;
use gan::sample::{LatentMove, Sampling, Stopped, sample};
use gan::tensors::{Snapshot, Tensors};
use kernels::Kernels;
use kernels::device::{Device, OnBackend};

pub struct Sample;

/// Images from a trained generator, with uniform labels, packed as a data set is
/// (`images.pack`, `preview.png`), so that `InceptionStats` and `pipe metric` read
/// them as they read real images.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A `Train` stage.
    pub model: String,
    /// How many images.
    pub count: usize,
    /// Which of the training's generators.
    #[serde(default)]
    pub generator: Generator,
    /// Seeds the latents and labels: the same seed, the same images.
    #[serde(default)]
    pub seed: u64,
    /// Images per forward pass; with batch statistics (`running_stats: false`) it is
    /// the batch BatchNorm normalizes over, so it changes the images.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// BatchNorm on its running statistics, not each batch's (the paper samples with
    /// batch statistics).
    #[serde(default)]
    pub running_stats: bool,
    /// z ~ N(0, 1) divided by this (the reference's `truncated_factor`); for StyleGAN2,
    /// ψ in (0, 1]: each w moved toward the average w, w_avg + ψ·(w − w_avg).
    #[serde(default = "default_truncation")]
    pub truncation: f64,
    /// Where G runs: a GPU of the run when it has one (`Auto`), the CPU, or GPU n.
    #[serde(default)]
    pub device: Device,
}

fn default_batch() -> usize {
    100
}

fn default_truncation() -> f64 {
    1.0
}

impl TypedKind for Sample {
    const NAME: &'static str = "Sample";
    const VERSION: u32 = 1;
    type Params = Params;
    type Error = KindError;

    fn declare(params: &Params) -> Result<Needs, Invalid> {
        if params.count == 0 {
            return Err(Invalid::new("`count` must be positive", &["count"]));
        }
        if params.batch < 2 && !params.running_stats {
            return Err(Invalid::new(
                "batch statistics need batches of at least 2 images",
                &["batch"],
            )
            .with_help("raise `batch`, or sample with `running_stats: true`"));
        }
        if params.truncation.is_nan() || params.truncation <= 0.0 {
            return Err(Invalid::new(
                "`truncation` must be positive",
                &["truncation"],
            ));
        }
        Ok(Needs {
            stages: vec![Reference::field("model", &params.model)],
            files: Vec::new(),
            gpus: super::gpus(params.device, 1),
        })
    }

    fn run(params: Params, ctx: &Context) -> Result<Outcome, KindError> {
        let dir = ctx.input("model")?;
        let (model, classes, snapshot) = artifacts::generator(dir, params.generator)?;
        if model.architecture == Architecture::Stylegan2 && params.truncation > 1.0 {
            return Err(GanError::Unsuited(format!(
                "truncation {}: StyleGAN2 moves w toward its average by ψ in (0, 1]",
                params.truncation
            ))
            .into());
        }
        let latent = artifacts::latent_move(dir, params.generator, &snapshot)?;
        let size = model.image_size() as u32;
        let moved = if latent.is_some() {
            ", z moved as LOGAN's evaluation moves it"
        } else {
            ""
        };
        let description = format!("{} samples of {:?}{moved}", params.count, params.generator);
        let pack = ctx.out.join(artifacts::IMAGES);
        let mut writer = PackWriter::create(&pack, size, size, classes, &description)?;
        let device = params.device.in_slot(ctx.gpus);
        let progress = |done, total| ctx.progress.report(done, Some(total), "sampling");
        let mode = if params.running_stats {
            Mode::EVAL
        } else {
            // Train mode, as the reference samples: its updates stay in this stage.
            Mode::TRAIN
        };
        let sampling = Sampling {
            model: &model,
            count: params.count,
            batch: params.batch,
            seed: params.seed,
            truncation: params.truncation,
            mode,
            labels: None,
            cancel: ctx.cancel,
            progress: &progress,
        };
        let task = Task {
            snapshot: &snapshot,
            latent: latent.as_ref(),
            sampling: &sampling,
            sink: |pixels: &[u8], label| writer.push(pixels, label),
        };
        let (result, used) = device.run(task)?;
        match result {
            Ok(()) => {}
            Err(Stopped::Cancelled) => return Err(StageError::Cancelled.into()),
            Err(Stopped::Sink(e)) => return Err(e.into()),
        }
        writer.finish()?;
        artifacts::write_preview(ctx.out)?;
        let summary = format!("{description} on {used}");
        let _ = writeln!(&mut &*ctx.log, "{summary}");
        let batch_norm = if params.running_stats {
            "running statistics"
        } else {
            "batch statistics"
        };
        Ok(Outcome {
            metrics: [("images".to_string(), params.count as f64)].into(),
            summary: Some(summary),
            protocol: protocol::of([
                (protocol::GENERATOR, format!("{:?}", params.generator)),
                (protocol::TRUNCATION, params.truncation.to_string()),
                (protocol::BATCH_NORM, batch_norm.to_string()),
            ]),
        })
    }
}

/// Sampling on a backend, each image handed to `sink`.
pub(crate) struct Task<'a, 'b, F> {
    pub snapshot: &'a Snapshot,
    /// A LOGAN run's D and move ([`artifacts::latent_move`]).
    pub latent: Option<&'a (Snapshot, LatentOpConfig)>,
    pub sampling: &'a Sampling<'b>,
    pub sink: F,
}

impl<F, E> OnBackend for Task<'_, '_, F>
where
    F: FnMut(&[u8], u32) -> Result<(), E>,
{
    type Output = Result<(), Stopped<E>>;

    fn run<B: Kernels>(self, device: B::Device) -> Self::Output {
        let mut g = Tensors::<B>::from_snapshot(self.snapshot, &device);
        let d = self
            .latent
            .map(|(d, op)| (Tensors::<B>::from_snapshot(d, &device), *op));
        let latent = d.as_ref().map(|(d, op)| LatentMove { d, op: *op });
        sample(&mut g, self.sampling, latent.as_ref(), self.sink)
    }
}
