//! `Classifier`: a classifier trained on a `Dataset` stage, to measure FID and IS in its
//! features where the FID Inception weights are not at hand, and to check by its
//! predictions that generated images show the class they were asked for.
//!
//! ```ron
//! "classifier": Classifier(
//!     data: "shapes_train",
//!     test: Some("shapes_test"),
//!     model: Include("../configs/quickstart/classifier.ron"),
//!     steps: 300,
//! ),
//! ```
//!
//! `model` is a discriminator configuration (any architecture, `conditioning: Acgan`);
//! its pooled features are the features, its class head the logits. Outputs
//! `classifier.safetensors`, `model.json` and `classes.json`; metrics `train_accuracy`
//! (the last tenth of the training batches) and, with `test`, `test_accuracy`.
//! `InceptionStats` and `Score` take a `Classifier` stage where they take `weights`.

use std::io::Write;
use std::sync::Arc;

use explain::Explain;
use serde::{Deserialize, Serialize};

use crate::artifacts;
use crate::error::{KindError, ResultExt};
use contract::{Context, Invalid, Needs, Outcome, Reference, TypedKind};
use data::Packed;
use gan::classifier::{self, Fit, FitError, Fitted, Trained};
use gan::{Conditioning, ModelConfig};
use kernels::Kernels;
use kernels::device::{Device, OnBackend};
use metrics::extract::Extraction;

pub struct Classifier;

/// A classifier trained on a data set, to measure FID and IS in its features where the
/// FID Inception weights are not at hand, and to check that generated images show the
/// class they were generated for (`Score`'s `accuracy`).
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A `Dataset` stage to train on.
    pub data: String,
    /// A `Dataset` stage to measure accuracy on.
    #[serde(default)]
    pub test: Option<String>,
    /// A discriminator configuration with `conditioning: Acgan`: its pooled features
    /// are the features, its class head the logits.
    pub model: ModelConfig,
    /// Training steps (Adam, β = (0.9, 0.999), cross-entropy, flipped images).
    pub steps: u64,
    /// Images per step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Seeds the initialization and the data order.
    #[serde(default)]
    pub seed: u64,
    /// Where it trains: a GPU of the run when it has one (`Auto`), the CPU, or GPU n.
    #[serde(default)]
    pub device: Device,
}

fn default_batch_size() -> usize {
    64
}

fn default_lr() -> f64 {
    1e-3
}

impl TypedKind for Classifier {
    const NAME: &'static str = "Classifier";
    const VERSION: u32 = 1;
    type Params = Params;
    type Error = KindError;

    fn declare(params: &Params) -> Result<Needs, Invalid> {
        params
            .model
            .check()
            .map_err(|(field, message)| Invalid::new(message, &["model", field]))?;
        if params.model.conditioning != Conditioning::Acgan {
            return Err(Invalid::new(
                format!(
                    "a classifier needs a class head: conditioning is {:?}",
                    params.model.conditioning
                ),
                &["model", "conditioning"],
            )
            .with_help("write `conditioning: Acgan`"));
        }
        if !params.model.aux_cls_type.is_none() {
            return Err(Invalid::new(
                "a classifier's head has one logit per class: ADC's real and fake entries do not apply",
                &["model", "aux_cls_type"],
            )
            .with_help("remove `aux_cls_type`"));
        }
        if params.steps == 0 {
            return Err(Invalid::new("`steps` must be positive", &["steps"]));
        }
        if params.batch_size < 2 {
            return Err(Invalid::new(
                "BatchNorm needs batches of at least 2 images",
                &["batch_size"],
            ));
        }
        if params.lr.is_nan() || params.lr <= 0.0 {
            return Err(Invalid::new("`lr` must be positive", &["lr"]));
        }
        let mut stages = vec![Reference::field("data", &params.data)];
        if let Some(test) = &params.test {
            stages.push(Reference::field("test", test));
        }
        Ok(Needs {
            stages,
            files: Vec::new(),
            gpus: super::gpus(params.device, 1),
        })
    }

    fn run(params: Params, ctx: &Context) -> Result<Outcome, KindError> {
        let data = Arc::new(artifacts::images(ctx.input("data")?)?);
        gan::train::check_data(&params.model, &data, params.batch_size)
            .context(|| format!("`{}`", params.data))?;
        let classes = data.header().classes.clone();
        let device = params.device.in_slot(ctx.gpus);
        let progress = |step: u64, loss: f64, accuracy: f64| {
            let message = format!("loss {loss:.4} · batch accuracy {:.0}%", accuracy * 100.0);
            ctx.progress.report(step, Some(params.steps), &message);
        };
        let fit = Fit {
            model: &params.model,
            data,
            steps: params.steps,
            batch_size: params.batch_size,
            lr: params.lr,
            seed: params.seed,
            cancel: ctx.cancel,
            progress: &progress,
        };
        let (result, used) = device.run(Fitting(&fit))?;
        let Fitted {
            net,
            train_accuracy,
        } = result?;
        artifacts::write_classifier(ctx.out, &params.model, &classes, &net)?;

        let mut metrics = vec![("train_accuracy".to_string(), train_accuracy)];
        let mut summary = format!(
            "{:?} classifier, {} steps on {used}: train accuracy {:.1}%",
            params.model.architecture,
            params.steps,
            train_accuracy * 100.0
        );
        if params.test.is_some() {
            let test = artifacts::images(ctx.input("test")?)?;
            let network = Trained {
                net,
                model: params.model.clone(),
            };
            let accuracy = test_accuracy(&network, &test, &params.device, ctx)?;
            metrics.push(("test_accuracy".into(), accuracy));
            summary.push_str(&format!(", test accuracy {:.1}%", accuracy * 100.0));
        }
        let _ = writeln!(&mut &*ctx.log, "{summary}");
        Ok(Outcome {
            metrics: metrics.into_iter().collect(),
            summary: Some(summary),
            ..Default::default()
        })
    }
}

struct Fitting<'a, 'b>(&'a Fit<'b>);

impl OnBackend for Fitting<'_, '_> {
    type Output = Result<Fitted, FitError>;

    fn run<B: Kernels>(self, device: B::Device) -> Self::Output {
        classifier::fit::<B>(self.0, &device)
    }
}

fn test_accuracy(
    network: &Trained,
    test: &Packed,
    device: &Device,
    ctx: &Context,
) -> Result<f64, KindError> {
    let progress = |done: u64, total: u64| ctx.progress.report(done, Some(total), "test accuracy");
    let task = Extraction {
        network,
        images: test,
        batch: 100,
        keep: true,
        progress: &progress,
        cancel: ctx.cancel,
    };
    let (result, _) = device.in_slot(ctx.gpus).run(task)?;
    let extracted = result?;
    Ok(classifier::accuracy(
        &extracted.logits,
        extracted.classes,
        &test.labels(),
    ))
}
