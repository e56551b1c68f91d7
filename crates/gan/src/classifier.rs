//! A classifier built from the discriminator architecture with ACGAN's class head,
//! trained with cross-entropy on a labelled data set. Where the FID Inception weights
//! are not at hand (the offline quickstart), FID and IS are measured in its features
//! (the pooled activations that feed the heads) and its logits, and its predictions on
//! generated images say whether a generator learned its conditioning.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::Autodiff;
use burn::prelude::*;

use super::adam::{Adam, Hyper};
use super::config::{Conditioning, ModelConfig};
use super::layers::Mode;
use super::tensors::label_tensor;
use super::tensors::{Snapshot, Tensors};
use super::{discriminator, loss};
use data::Packed;
use data::loader::{Loader, LoaderConfig};
use kernels::Kernels;
use metrics::MetricError;
use metrics::extract::{FeatureNetwork, LoadedNetwork};
use metrics::inception::Outputs;
use rng::Rng;

pub struct Fit<'a> {
    /// A discriminator configuration with `conditioning: Acgan`.
    pub model: &'a ModelConfig,
    pub data: Arc<Packed>,
    pub steps: u64,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    pub cancel: &'a AtomicBool,
    /// (steps done, loss, accuracy of the batch).
    pub progress: &'a dyn Fn(u64, f64, f64),
}

pub struct Fitted {
    pub net: Snapshot,
    /// The accuracy on the training batches of the last tenth of the run.
    pub train_accuracy: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("cancelled")]
    Cancelled,
    #[error("step {0}: the loss is not finite")]
    NonFinite(u64),
}

/// Trains a fresh classifier on `fit.data`.
pub fn fit<B: Kernels>(fit: &Fit, device: &B::Device) -> Result<Fitted, FitError> {
    assert_eq!(
        fit.model.conditioning,
        Conditioning::Acgan,
        "checked by the caller"
    );
    let seed = Rng::stream(fit.seed, 2).next_u64();
    let mut net = discriminator::build::<B>(fit.model, seed, device);
    let mut adam = Adam::<B>::new(Hyper {
        lr: fit.lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    });
    let config = LoaderConfig {
        batch_size: fit.batch_size,
        seed: fit.seed,
        flip: true,
        drop_last: true,
        prefetch: 4,
        views: false,
    };
    let size = fit.model.image_size();
    let mut batches = Loader::new(fit.data.clone(), config, 0);
    let tail = (fit.steps / 10).max(1);
    let (mut right, mut seen) = (0.0, 0);
    for step in 0..fit.steps {
        if fit.cancel.load(Ordering::Relaxed) {
            return Err(FitError::Cancelled);
        }
        let batch = batches.next().expect("the loader never ends");
        let n = batch.len();
        let len = batch.images.len();
        let images =
            Tensor::<Autodiff<B>, 1>::from_data(TensorData::new(batch.images, [len]), device)
                .reshape([n, 3, size, size]);
        let labels = label_tensor::<Autodiff<B>>(&batch.labels, device);
        let mut d = Tensors::<Autodiff<B>>::from_inner(net, true);
        let mode = Mode {
            momentum: Some(0.1),
            ..Mode::TRAIN
        };
        let out = discriminator::run(&mut d, mode, fit.model, images, labels.clone());
        let logits = out.class_logits.expect("ACGAN head");
        let host = logits.clone().inner().into_data().to_vec::<f32>();
        let batch_accuracy = accuracy(
            &host.unwrap_or_default(),
            fit.model.num_classes,
            &batch.labels,
        );
        let value = loss::cross_entropy(logits, labels);
        let scalar = value.clone().into_scalar().elem::<f64>();
        if !scalar.is_finite() {
            return Err(FitError::NonFinite(step));
        }
        let grads = d.gradients(&value.backward());
        net = d.inner();
        adam.step(&mut net, &grads);
        if step >= fit.steps - tail {
            right += batch_accuracy * n as f64;
            seen += n;
        }
        (fit.progress)(step + 1, scalar, batch_accuracy);
    }
    Ok(Fitted {
        net: net.to_snapshot(),
        train_accuracy: right / seen.max(1) as f64,
    })
}

/// Features `[n, width]` and class logits `[n, classes]` of images in [-1, 1], with
/// BatchNorm's running statistics.
pub fn predict<B: Kernels>(
    net: &mut Tensors<B>,
    model: &ModelConfig,
    images: Tensor<B, 4>,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let n = images.dims()[0];
    let y = Tensor::zeros([n], &images.device());
    let out = discriminator::run(net, Mode::EVAL, model, images, y);
    (out.features, out.class_logits.expect("ACGAN head"))
}

/// A trained classifier as the network metrics are measured in: its pooled features and
/// class logits take the place of Inception's.
pub struct Trained {
    pub net: Snapshot,
    pub model: ModelConfig,
}

impl FeatureNetwork for Trained {
    fn describe(&self) -> String {
        let size = self.model.image_size();
        format!(
            "the features of a {:?} classifier trained on the data ({size}×{size}), not Inception's",
            self.model.architecture,
        )
    }

    fn load<B: Kernels>(
        &self,
        device: &B::Device,
    ) -> Result<Box<dyn LoadedNetwork<B> + '_>, MetricError> {
        Ok(Box::new(OnDevice {
            net: Tensors::from_snapshot(&self.net, device),
            model: &self.model,
        }))
    }
}

struct OnDevice<'a, B: Kernels> {
    net: Tensors<B>,
    model: &'a ModelConfig,
}

impl<B: Kernels> LoadedNetwork<B> for OnDevice<'_, B> {
    fn forward(&mut self, images: Tensor<B, 4>, first: usize) -> Result<Outputs, MetricError> {
        let [_, _, height, width] = images.dims();
        let size = self.model.image_size();
        if (height, width) != (size, size) {
            return Err(MetricError::Invalid(format!(
                "image {first} is {width}×{height}; the classifier takes {size}×{size} images"
            )));
        }
        let (features, logits) = predict(&mut self.net, self.model, images * 2.0 - 1.0);
        let read = |t: Tensor<B, 2>| {
            t.into_data()
                .to_vec::<f32>()
                .map_err(|e| MetricError::Invalid(format!("reading features back: {e:?}")))
        };
        Ok(Outputs {
            pool3: read(features)?,
            logits: read(logits)?,
        })
    }
}

/// The fraction of rows of `logits` (row-major, `classes` columns) whose largest value
/// is at the label.
pub fn accuracy(logits: &[f32], classes: usize, labels: &[u32]) -> f64 {
    let right = logits
        .chunks(classes)
        .zip(labels)
        .filter(|(row, label)| {
            let best = row
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                );
            best.0 == **label as usize
        })
        .count();
    right as f64 / labels.len().max(1) as f64
}
