//! `InceptionStats`: the mean and covariance (f64) of the FID Inception pool features of
//! a set of images, written as pytorch-fid's `stats.npz`; with `features: true`, also
//! every image's features (`pool3.npy`, n × 2048) and logits (`logits.npy`, n × 1008)
//! for KID, precision/recall and IS.
//!
//! ```ron
//! "cifar10_stats": InceptionStats(data: "cifar10_test", weights: "inception"),
//! ```
//!
//! `data` is a stage whose output holds `images.pack` (a `Dataset`, or generated images);
//! `weights` a `Weights` stage (or a `Classifier` stage: then its features and logits
//! take the place of Inception's). `device: Cuda(n)` takes one of the run's GPU slots.
//! `resizer: Clean` resizes to 299×299 with PIL's bicubic (clean-fid) instead of
//! pytorch-fid's bilinear; scores against these statistics resize as they did. With
//! `features: true` the images' labels are kept too (`labels.npy`), for intra-class
//! FID. The record's protocol names the data, the number of images, the network and
//! the resizer.
//!
//! `eval_backbone: Dinov2` (or `Swav`, `Dino`) measures in another released network's
//! features, from a `Weights` stage of the same backbone: the statistics of FD_DINOv2
//! and the other Fréchet distances, which `Score` measures against with the same
//! `eval_backbone`. Only Inception has the logits of the Inception Score.

use explain::Explain;
use serde::{Deserialize, Serialize};

use crate::artifacts::{self, Extractor};
use crate::error::KindError;
use crate::protocol;
use contract::{Context, Invalid, Needs, Outcome, Reference, StageError, TypedKind};
use kernels::device::Device;
use metrics::backbone::Backbone;
use metrics::extract::Extraction;
use metrics::extract::FeatureNetwork;
use metrics::resize::Resizer;

pub struct InceptionStats;

/// The mean and covariance (f64) of the FID Inception features of a set of images, as
/// pytorch-fid's `stats.npz`; FID, KID and precision/recall are measured against them.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A stage whose output holds `images.pack`: a `Dataset`, or a `Sample`.
    pub data: String,
    /// A `Weights` stage, or a `Classifier` stage whose features and logits then take
    /// the place of Inception's.
    pub weights: String,
    /// Also every image's features (`pool3.npy`), logits (`logits.npy`) and labels
    /// (`labels.npy`): what KID, precision/recall and intra-class FID need.
    #[serde(default)]
    pub features: bool,
    /// How images are brought to the network's input size (Inception's 299×299):
    /// the reference's resize (pytorch-fid's bilinear), or clean-fid's bicubic.
    /// Everything scored against these statistics is resized the same way.
    #[serde(default, skip_serializing_if = "Resizer::is_legacy")]
    pub resizer: Resizer,
    /// The network the features are taken in: pytorch-fid's Inception-v3, or SwAV's,
    /// DINO's or DINOv2's (`weights` must be a `Weights` stage of that backbone).
    /// Named as StudioGAN v0.4's flag: `backbone` is the GAN's architecture in the
    /// paper's pipelines.
    #[serde(default, skip_serializing_if = "Backbone::is_inception")]
    pub eval_backbone: Backbone,
    /// Images per forward pass: memory and speed.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Where the network runs: a GPU of the run when it has one (`Auto`), the CPU, or
    /// GPU n (`Cuda(n)`).
    #[serde(default)]
    pub device: Device,
}

fn default_batch() -> usize {
    50
}

impl TypedKind for InceptionStats {
    const NAME: &'static str = "InceptionStats";
    const VERSION: u32 = 1;
    type Params = Params;
    type Error = KindError;

    fn declare(params: &Params) -> Result<Needs, Invalid> {
        if params.batch == 0 {
            return Err(Invalid::new("`batch` must be positive", &["batch"]));
        }
        Ok(Needs {
            stages: vec![
                Reference::field("data", &params.data),
                Reference::field("weights", &params.weights),
            ],
            files: Vec::new(),
            gpus: super::gpus(params.device, 1),
        })
    }

    fn run(params: Params, ctx: &Context) -> Result<Outcome, KindError> {
        let data = artifacts::images(ctx.input("data")?)?;
        let network =
            artifacts::extractor(ctx.single("weights")?, params.resizer, params.eval_backbone)?;
        let device = params.device.in_slot(ctx.gpus);
        let what = network.describe();
        let progress = |done: u64, total: u64| ctx.progress.report(done, Some(total), &what);
        let task = Extraction {
            network: &network,
            images: &data,
            batch: params.batch,
            keep: params.features,
            progress: &progress,
            cancel: ctx.cancel,
        };
        let (result, used) = device.run(task)?;
        let extracted = result?;
        let stats = extracted.stats.as_ref().ok_or_else(|| {
            StageError::Invalid(format!(
                "{} images: statistics need at least 2",
                extracted.count
            ))
        })?;
        let labels = params.features.then(|| data.labels());
        let kept = labels.as_ref().map(|l| (&extracted, &l[..extracted.count]));
        artifacts::write_stats(ctx.out, stats, kept)?;
        let description = &data.header().description;
        let mut protocol = protocol::of([
            (protocol::DATA, description.clone()),
            (protocol::IMAGES, extracted.count.to_string()),
            (protocol::NETWORK, network.describe()),
        ]);
        if let Extractor::Pretrained(pretrained) = &network {
            protocol.insert(protocol::RESIZER.into(), pretrained.resizer.to_string());
            protocol.extend(protocol::of_backbone(pretrained.backbone));
        }
        let summary = format!(
            "statistics of {} images ({description}) in {} on {used}",
            extracted.count,
            network.describe()
        );
        use std::io::Write;
        let _ = writeln!(&mut &*ctx.log, "{summary}");
        Ok(Outcome {
            metrics: [("images".to_string(), extracted.count as f64)].into(),
            summary: Some(summary),
            protocol,
        })
    }
}
