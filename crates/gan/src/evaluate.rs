//! FID during training, as the paper evaluates: every so many iterations, images from
//! the generator (the EMA one where there is one) scored against reference statistics;
//! the best score's generator is kept.

use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::config::ModelConfig;
use super::layers::Mode;
use super::sample::{LatentMove, Sampling, Stopped, sample};
use super::tensors::Tensors;
use kernels::Kernels;
use kernels::device::OnBackend;
use metrics::extract::{Extraction, FeatureNetwork, InMemory};
use metrics::{MetricError, Stats, fid::fid};

/// What to evaluate, how often.
pub struct Evaluation<'a, N> {
    /// Iterations between evaluations (the last iteration is always evaluated).
    pub every: u64,
    /// Images per evaluation.
    pub count: usize,
    /// The network the images are measured in.
    pub network: &'a N,
    pub reference: &'a Stats,
    /// Told each score as it comes.
    pub report: &'a dyn Fn(&Scored),
}

/// One line of `fid.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub step: u64,
    pub fid: f64,
}

/// The FID of `count` images of `g` (sampled as `Sample` does, from a copy, so that the
/// batch statistics of sampling leave the trained state alone; a LOGAN run's z moved).
pub fn score<B: Kernels, N: FeatureNetwork>(
    g: &Tensors<B>,
    model: &ModelConfig,
    evaluation: &Evaluation<N>,
    seed: u64,
    latent: Option<&LatentMove<B>>,
    cancel: &AtomicBool,
) -> Result<f64, MetricError> {
    let mut g = g.clone();
    let size = model.image_size();
    let mut images = InMemory::new(size, size);
    let sampling = Sampling {
        model,
        count: evaluation.count,
        batch: 100,
        seed,
        truncation: 1.0,
        mode: Mode::TRAIN,
        labels: None,
        cancel,
        progress: &|_, _| {},
    };
    match sample(&mut g, &sampling, latent, |pixels, label| {
        images.push(pixels, label);
        Ok::<(), ()>(())
    }) {
        Ok(()) => {}
        Err(Stopped::Cancelled) => return Err(MetricError::Cancelled),
        Err(Stopped::Sink(())) => unreachable!("pushing to memory cannot fail"),
    }
    let extraction = Extraction {
        network: evaluation.network,
        images: &images,
        batch: 50,
        keep: false,
        progress: &|_, _| {},
        cancel,
    };
    let extracted = extraction.run::<B>(g.device().clone())?;
    let stats = extracted
        .stats
        .ok_or_else(|| MetricError::Invalid("evaluation needs at least 2 images".into()))?;
    fid(&stats, evaluation.reference)
}
