//! `Score`: FID and IS of generated images against reference statistics, in the FID
//! Inception network's features; with `kid: true` or `prdc: true` also KID and
//! precision/recall/density/coverage (k = 5), with `intra_class: true` the intra-class
//! FID (`ifid`: the mean over classes of each class's FID against the reference's
//! images of that class, StudioGAN v0.4's iFID; each class's in `scores.json`), which
//! need the reference's features (`features: true` on its `InceptionStats`). Sampling
//! from a `Train` stage, iFID makes its own images as v0.4 does: for each class as many
//! as the reference has; given images are compared by their labels. The
//! numbers go into the record, where `pipe show`, `pipe status` and reports read them,
//! and into `scores.json`.
//!
//! With `eval_backbone: Dinov2` (or `Swav`, `Dino`) the images are measured in that
//! network's features, against statistics of the same backbone: the Fréchet distance
//! is then `fd_dinov2` (`fd_swav`, `fd_dino`; FD_DINOv2 in tables), and KID, PRDC and
//! iFID are those features'. There is no IS: it is Inception's by definition.
//!
//! Images are resized as the reference's were (its `resizer`), and the record's
//! protocol names the reference, the network, the resizer, the number of images and
//! how they were generated, so that a report can tell numbers that do not compare.
//!
//! ```ron
//! "fid": Score(samples: "samples", reference: "cifar10_test_stats", weights: "inception"),
//! ```

use std::io::Write;
use std::path::Path;

use explain::Explain;
use serde::{Deserialize, Serialize};

use super::sample::Task;
use crate::artifacts::{self, Extractor, Generator};
use crate::error::KindError;
use crate::protocol;
use contract::{Context, Invalid, Needs, Outcome, Reference, StageError, TypedKind};
use gan::classifier::accuracy;
use gan::layers::Mode;
use gan::sample::Sampling;
use kernels::device::Device;
use metrics::backbone::Backbone;
use metrics::extract::{Extraction, FeatureNetwork, First, ImageSource, InMemory};
use metrics::inception_score::inception_score;
use metrics::prdc::{Ball, prdc};
use metrics::{Features, fid::fid, ifid::intra_class_fid, kid::kid};

pub struct Score;

/// FID and IS of generated images against a reference's statistics (with KID,
/// precision/recall/density/coverage, intra-class FID and, in a classifier's features,
/// accuracy, when asked), as the record's metrics and `scores.json`.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A stage whose output holds `images.pack` (usually a `Sample`), or a `Train`
    /// stage: then `count` images are sampled from its `generator` here, as `Sample`
    /// makes them (batch statistics, uniform labels, latents from `seed`).
    pub samples: String,
    /// An `InceptionStats` stage of the real images.
    pub reference: String,
    /// A `Weights` stage, or a `Classifier` stage to measure in its features (then
    /// `accuracy` is the fraction of images it classifies as their conditioning label).
    pub weights: String,
    /// Score only the first `count` images of the samples (all by default); how many
    /// to sample from a `Train` stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// Which generator of a `Train` stage to sample.
    #[serde(default, skip_serializing_if = "is_ema")]
    pub generator: Generator,
    /// KID (100 subsets of 1,000 images, polynomial kernel): `kid_mean`, `kid_std`.
    /// Needs the reference's features (`InceptionStats(features: true)`).
    #[serde(default)]
    pub kid: bool,
    /// Precision, recall, density and coverage (k = 5). Needs the reference's features.
    #[serde(default)]
    pub prdc: bool,
    /// The network the images are measured in: pytorch-fid's Inception-v3 (FID and
    /// IS), or SwAV's, DINO's or DINOv2's (their Fréchet distance, `fd_swav`,
    /// `fd_dino`, `fd_dinov2`); the reference must be of the same backbone.
    #[serde(default, skip_serializing_if = "Backbone::is_inception")]
    pub eval_backbone: Backbone,
    /// Intra-class FID (`ifid`), and each class's FID in `scores.json`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub intra_class: bool,
    /// KID's subsets, and the latents when sampling here.
    #[serde(default)]
    pub seed: u64,
    /// Images per forward pass of the feature network (and of G, sampling here).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Where the networks run: a GPU of the run when it has one (`Auto`), the CPU, or
    /// GPU n.
    #[serde(default)]
    pub device: Device,
}

fn default_batch() -> usize {
    50
}

fn is_ema(generator: &Generator) -> bool {
    *generator == Generator::Ema
}

impl TypedKind for Score {
    const NAME: &'static str = "Score";
    const VERSION: u32 = 1;
    type Params = Params;
    type Error = KindError;

    fn declare(params: &Params) -> Result<Needs, Invalid> {
        if params.batch == 0 {
            return Err(Invalid::new("`batch` must be positive", &["batch"]));
        }
        if params.count.is_some_and(|n| n < 2) {
            return Err(Invalid::new("`count` must be at least 2", &["count"]));
        }
        Ok(Needs {
            stages: vec![
                Reference::field("samples", &params.samples),
                Reference::field("reference", &params.reference),
                Reference::field("weights", &params.weights),
            ],
            files: Vec::new(),
            gpus: super::gpus(params.device, 1),
        })
    }

    fn run(params: Params, ctx: &Context) -> Result<Outcome, KindError> {
        let samples_input = ctx.single("samples")?;
        let samples_dir = samples_input.path.as_path();
        let sampled_here = samples_input.kind.as_deref() == Some("Train");
        let (samples, labels, classes): (Box<dyn ImageSource>, Vec<u32>, Vec<String>) =
            if !sampled_here {
                let pack = artifacts::images(samples_dir)?;
                let count = params.count.unwrap_or(pack.len());
                if count > pack.len() {
                    return Err(StageError::Invalid(format!(
                        "`count` is {count}, but `{}` has {} images",
                        params.samples,
                        pack.len()
                    ))
                    .into());
                }
                let labels = pack.labels()[..count].to_vec();
                let classes = pack.header().classes.clone();
                (Box::new(First(pack, count)), labels, classes)
            } else {
                let count = params.count.ok_or_else(|| {
                    StageError::Invalid(format!(
                        "`{}` is a Train stage: to sample from it here, set `count`",
                        params.samples
                    ))
                })?;
                let (images, classes) = sample_here(&params, samples_dir, ctx, count, None)?;
                let labels = images.labels().to_vec();
                (Box::new(images), labels, classes)
            };
        let reference_input = ctx.single("reference")?;
        let reference_dir = reference_input.path.as_path();
        let reference = artifacts::stats(reference_dir)?;
        let real_features = if params.kid || params.prdc || params.intra_class {
            let Some(features) = artifacts::features(reference_dir)? else {
                return Err(StageError::Invalid(format!(
                    "KID, precision/recall and intra-class FID need the reference's features: \
                     set `features: true` on the InceptionStats stage `{}`",
                    params.reference
                ))
                .into());
            };
            Some(features)
        } else {
            None
        };
        let resizer = protocol::resizer(reference_input)?;
        let network = artifacts::extractor(ctx.single("weights")?, resizer, params.eval_backbone)?;
        protocol::check_network(reference_input, &network.describe())?;
        let device = params.device.in_slot(ctx.gpus);
        let what = network.describe();
        let features_of = |images: &dyn ImageSource| {
            let progress = |done: u64, total: u64| ctx.progress.report(done, Some(total), &what);
            let task = Extraction {
                network: &network,
                images,
                batch: params.batch,
                keep: true,
                progress: &progress,
                cancel: ctx.cancel,
            };
            let (result, used) = device.run(task)?;
            Ok::<_, KindError>((result?, used))
        };
        let (extracted, used) = features_of(samples.as_ref())?;
        let n = extracted.count;
        let stats = extracted.stats.as_ref().ok_or_else(|| {
            StageError::Invalid(format!("{n} images: statistics need at least 2"))
        })?;
        let widen = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        let fake = Features::new(n, extracted.features, widen(&extracted.pool3));
        let logits = Features::new(n, extracted.classes, widen(&extracted.logits));

        let fd_name = params.eval_backbone.fd_name();
        let mut metrics = vec![(fd_name.to_lowercase(), fid(stats, &reference)?)];
        let mut per_class = serde_json::Map::new();
        let mut summary = format!("{fd_name} {:.3}", metrics[0].1);
        if params.eval_backbone.is_inception() {
            let (is_mean, is_std) = inception_score(&logits, 10)?;
            metrics.push(("is_mean".into(), is_mean));
            metrics.push(("is_std".into(), is_std));
            summary.push_str(&format!(", IS {is_mean:.3} ± {is_std:.3}"));
        }
        // A classifier of the same classes says whether each image shows its class.
        if let Extractor::Classifier(_, model_classes) = &network
            && &classes == model_classes
        {
            let accuracy = accuracy(&extracted.logits, extracted.classes, &labels);
            metrics.push(("accuracy".into(), accuracy));
        }
        if let Some(real) = &real_features {
            if params.kid {
                let (mean, std) = kid(real, &fake, 100, 1000, params.seed)?;
                metrics.push(("kid_mean".into(), mean));
                metrics.push(("kid_std".into(), std));
            }
            if params.prdc {
                let p = prdc(real, &fake, 5, Ball::Open)?;
                metrics.push(("precision".into(), p.precision));
                metrics.push(("recall".into(), p.recall));
                metrics.push(("density".into(), p.density));
                metrics.push(("coverage".into(), p.coverage));
            }
            if params.intra_class {
                let real_labels = artifacts::labels(reference_dir, &params.reference)?;
                // Sampling here, as v0.4's iFID: for each class, as many images of it as
                // the reference has. Given images are taken by their labels.
                let (fake, labels) = if sampled_here {
                    let mut balanced = real_labels.clone();
                    balanced.sort_unstable();
                    let (images, _) =
                        sample_here(&params, samples_dir, ctx, balanced.len(), Some(&balanced))?;
                    let (e, _) = features_of(&images)?;
                    (
                        Features::new(e.count, e.features, widen(&e.pool3)),
                        balanced,
                    )
                } else {
                    (fake.clone(), labels.clone())
                };
                let (each, mean) = intra_class_fid(real, &real_labels, &fake, &labels)?;
                metrics.push(("ifid".into(), mean));
                for c in each {
                    let name = classes
                        .get(c.class as usize)
                        .cloned()
                        .unwrap_or_else(|| c.class.to_string());
                    per_class.insert(
                        name,
                        serde_json::json!({"fid": c.fid, "real": c.real, "generated": c.fake}),
                    );
                }
            }
        }
        let mut json: serde_json::Map<String, serde_json::Value> = metrics
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect();
        if params.intra_class {
            // Not a protocol fact of the record: it concerns `ifid` only.
            let how = if sampled_here {
                "per class as many as the reference has"
            } else {
                "the scored images, by their labels"
            };
            json.insert("ifid_images".into(), how.into());
        }
        if !per_class.is_empty() {
            json.insert("ifid_per_class".into(), per_class.into());
        }
        let path = ctx.out.join("scores.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap())
            .map_err(StageError::io("cannot write scores.json"))?;
        if let Some((_, ifid)) = metrics.iter().find(|(k, _)| k == "ifid") {
            summary.push_str(&format!(", iFID {ifid:.3}"));
        }
        if let Some((_, accuracy)) = metrics.iter().find(|(k, _)| k == "accuracy") {
            summary.push_str(&format!(", class accuracy {:.1}%", accuracy * 100.0));
        }
        summary.push_str(&format!(
            " over {n} images, in {}, on {used}",
            network.describe()
        ));
        if !resizer.is_legacy() {
            summary.push_str(&format!(" ({resizer} resize)"));
        }
        let _ = writeln!(&mut &*ctx.log, "{summary}");
        metrics.push(("images".into(), n as f64));
        let mut protocol = protocol::against(reference_input);
        protocol.insert(protocol::IMAGES.into(), n.to_string());
        if sampled_here {
            protocol.extend(protocol::of([
                (protocol::GENERATOR, format!("{:?}", params.generator)),
                (protocol::TRUNCATION, "1".to_string()),
                (protocol::BATCH_NORM, "batch statistics".to_string()),
            ]));
        } else {
            for fact in [
                protocol::GENERATOR,
                protocol::TRUNCATION,
                protocol::BATCH_NORM,
            ] {
                if let Some(value) = samples_input.protocol.get(fact) {
                    protocol.insert(fact.into(), value.clone());
                }
            }
        }
        Ok(Outcome {
            metrics: metrics.into_iter().collect(),
            summary: Some(summary),
            protocol,
        })
    }
}

/// `count` images of a `Train` stage's generator, made here: of the given classes, or
/// of uniformly drawn ones.
fn sample_here(
    params: &Params,
    dir: &Path,
    ctx: &Context,
    count: usize,
    labels: Option<&[u32]>,
) -> Result<(InMemory, Vec<String>), KindError> {
    let (model, classes, snapshot) = artifacts::generator(dir, params.generator)?;
    let latent = artifacts::latent_move(dir, params.generator, &snapshot)?;
    let size = model.image_size();
    let mut images = InMemory::new(size, size);
    let progress = |done, total| ctx.progress.report(done, Some(total), "sampling");
    let sampling = Sampling {
        model: &model,
        count,
        batch: params.batch.max(2),
        seed: params.seed,
        truncation: 1.0,
        mode: Mode::TRAIN,
        labels,
        cancel: ctx.cancel,
        progress: &progress,
    };
    let task = Task {
        snapshot: &snapshot,
        latent: latent.as_ref(),
        sampling: &sampling,
        sink: |pixels: &[u8], label| {
            images.push(pixels, label);
            Ok::<(), std::convert::Infallible>(())
        },
    };
    let (result, _) = params.device.in_slot(ctx.gpus).run(task)?;
    match result {
        Ok(()) => Ok((images, classes)),
        Err(_) => Err(StageError::Cancelled.into()),
    }
}
