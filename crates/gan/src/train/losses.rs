//! The iterations' losses, kept on the device until they are read back all at once:
//! one transfer, and one wait for the device, for many iterations.

use std::time::{Duration, Instant};

use burn::prelude::*;

use super::log::MetricsLog;
use super::{StepLog, TrainError};

/// However many iterations are due, the losses are read at least this often, so that
/// the progress of slow iterations shows.
const AT_LEAST_EVERY: Duration = Duration::from_secs(10);

/// One iteration whose losses are still on the device.
struct Iteration<B: Backend> {
    /// Iterations done before it.
    step: u64,
    /// Its last D step's and G step's losses, one element each.
    d_loss: Tensor<B, 1>,
    g_loss: Tensor<B, 1>,
    seconds: f64,
    aug_p: Option<f64>,
}

/// The iterations not read yet.
pub(super) struct Unread<B: Backend> {
    total: u64,
    iterations: Vec<Iteration<B>>,
    since: Instant,
}

impl<B: Backend> Unread<B> {
    pub fn new(total: u64) -> Unread<B> {
        Unread {
            total,
            iterations: Vec::new(),
            since: Instant::now(),
        }
    }

    /// Keeps iteration `step`'s losses (after `step` iterations) and APA's p.
    pub fn push(
        &mut self,
        step: u64,
        d_loss: Tensor<B, 1>,
        g_loss: Tensor<B, 1>,
        seconds: f64,
        aug_p: Option<f64>,
    ) {
        if self.iterations.is_empty() {
            self.since = Instant::now();
        }
        self.iterations.push(Iteration {
            step,
            d_loss,
            g_loss,
            seconds,
            aug_p,
        });
    }

    /// Whether `every` iterations wait, or the oldest has waited long.
    pub fn due(&self, every: u64) -> bool {
        self.iterations.len() as u64 >= every.max(1) || self.since.elapsed() >= AT_LEAST_EVERY
    }

    /// Reads every waiting iteration's losses in one transfer, and logs them in order
    /// (the log file, then `progress`, then `last`). The first non-finite loss stops
    /// the run: an error naming its iteration, and the checkpoint (`saved`) kept.
    pub fn read(
        &mut self,
        log: &mut MetricsLog,
        progress: &dyn Fn(&StepLog),
        last: &mut Option<StepLog>,
        saved: Option<u64>,
    ) -> Result<(), TrainError> {
        if self.iterations.is_empty() {
            return Ok(());
        }
        let iterations = std::mem::take(&mut self.iterations);
        let losses: Vec<Tensor<B, 1>> = iterations
            .iter()
            .flat_map(|i| [i.d_loss.clone(), i.g_loss.clone()])
            .collect();
        // On a GPU the read waits for the queued work: that wait is the last
        // iteration's, so that the lines' seconds add up to the time spent.
        let waited = Instant::now();
        let values = Tensor::cat(losses, 0)
            .into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .expect("f64 losses");
        let waited = waited.elapsed().as_secs_f64();
        let count = iterations.len();
        for (i, (iteration, pair)) in iterations.iter().zip(values.chunks(2)).enumerate() {
            let (d_loss, g_loss) = (pair[0], pair[1]);
            for (loss, value) in [("discriminator", d_loss), ("generator", g_loss)] {
                if !value.is_finite() {
                    return Err(TrainError::NonFinite {
                        step: iteration.step,
                        loss,
                        value: value as f32,
                        checkpoint: saved,
                    });
                }
            }
            let entry = StepLog {
                step: iteration.step + 1,
                total: self.total,
                d_loss,
                g_loss,
                seconds: iteration.seconds + if i + 1 == count { waited } else { 0.0 },
                aug_p: iteration.aug_p,
            };
            log.append(&entry)?;
            progress(&entry);
            *last = Some(entry);
        }
        Ok(())
    }
}
