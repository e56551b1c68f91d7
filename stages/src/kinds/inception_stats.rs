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

use serde::{Deserialize, Serialize};

use crate::data::Packed;
use crate::device::Device;
use crate::error::KindError;
use crate::metrics::extract::Extraction;
use crate::metrics::npy;
use contract::{Context, Invalid, Needs, Outcome, Reference, StageError, TypedKind};

pub struct InceptionStats;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub data: String,
    pub weights: String,
    #[serde(default)]
    pub features: bool,
    #[serde(default = "default_batch")]
    pub batch: usize,
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
            gpus: params.device.slots(),
        })
    }

    fn run(params: Params, ctx: &Context) -> Result<Outcome, KindError> {
        let data = Packed::open(&ctx.input("data")?.join("images.pack"))?;
        let extractor = super::classifier::extractor(ctx.input("weights")?)?;
        let device = params.device.in_slot(ctx.gpus);
        let progress =
            |done: u64, total: u64| ctx.progress.report(done, Some(total), "Inception features");
        let task = Extraction {
            extractor: &extractor,
            images: &data,
            batch: params.batch,
            keep: params.features,
            progress: &progress,
            cancel: ctx.cancel,
        };
        let (result, used) = device.run(task)?;
        let extracted = result?;
        let stats = extracted.stats.ok_or_else(|| {
            StageError::Invalid(format!(
                "{} images: statistics need at least 2",
                extracted.count
            ))
        })?;
        stats.write_npz(&ctx.out.join("stats.npz"))?;
        if params.features {
            let n = extracted.count;
            let pool3: Vec<f64> = extracted.pool3.iter().map(|&v| v as f64).collect();
            let logits: Vec<f64> = extracted.logits.iter().map(|&v| v as f64).collect();
            let write = |name: &str, cols: usize, data: &[f64]| {
                let path = ctx.out.join(name);
                std::fs::write(&path, npy::encode(&[n, cols], data, true))
                    .map_err(StageError::io(format!("cannot write {name}")))
            };
            write("pool3.npy", extracted.features, &pool3)?;
            write("logits.npy", extracted.classes, &logits)?;
        }
        let summary = format!(
            "statistics of {} images ({}) in {} on {used}",
            extracted.count,
            data.header().description,
            extractor.describe()
        );
        use std::io::Write;
        let _ = writeln!(&mut &*ctx.log, "{summary}");
        Ok(Outcome {
            metrics: [("images".to_string(), extracted.count as f64)].into(),
            summary: Some(summary),
        })
    }
}
