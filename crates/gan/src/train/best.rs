//! FID during training and the best generator: each evaluation's score is logged, and
//! the generator of the best one so far is kept in the work folder (`best/<step>`)
//! through interruptions; with LOGAN, D of that evaluation too, which moves its z.

use std::path::{Path, PathBuf};

use kernels::Kernels;
use metrics::MetricError;
use metrics::extract::FeatureNetwork;

use super::log::MetricsLog;
use super::state::State;
use super::{Setup, TrainError};
use crate::GanError;
use crate::evaluate::{self, Evaluation, Scored};
use crate::sample::LatentMove;
use crate::tensors::Tensors;

pub(super) fn best_path(work: &Path, step: u64) -> PathBuf {
    work.join("best").join(format!("{step}.safetensors"))
}

/// D at the best evaluation of a LOGAN run, beside its generator.
pub(super) fn best_d_path(work: &Path, step: u64) -> PathBuf {
    work.join("best").join(format!("{step}.D.safetensors"))
}

/// Writes `tensors` to `path` through a temporary file.
fn save_atomically<B: Kernels>(tensors: &Tensors<B>, path: &Path) -> Result<(), GanError> {
    let tmp = path.with_extension("tmp");
    tensors.to_snapshot().save(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| GanError::io(path, e))
}

/// The best of the kept scores whose generator is on disk.
pub(super) fn best_of(kept: &[Scored], work: &Path) -> Option<Scored> {
    kept.iter()
        .copied()
        .filter(|s| best_path(work, s.step).exists())
        .fold(None, |best: Option<Scored>, s| match best {
            Some(b) if b.fid <= s.fid || s.fid.is_nan() => Some(b),
            _ => Some(s),
        })
}

/// Scores the generator now; a new best is written before its score is logged, and the
/// previous best removed only after, so that an interruption never loses the best.
pub(super) fn evaluate_now<B: Kernels, N: FeatureNetwork>(
    state: &State<B>,
    setup: &Setup<N>,
    evaluation: &Evaluation<N>,
    scores: &mut MetricsLog,
    best: &mut Option<Scored>,
) -> Result<(), TrainError> {
    let step = state.step;
    let g = state.g_ema.as_ref().unwrap_or(&state.g);
    let latent = setup
        .train
        .latent_op
        .map(|op| LatentMove { d: &state.d, op });
    let fid = evaluate::score(
        g,
        setup.model,
        evaluation,
        setup.seed,
        latent.as_ref(),
        setup.cancel,
    )
    .map_err(|source| match source {
        MetricError::Cancelled => TrainError::Cancelled { step },
        source => TrainError::Evaluation { step, source },
    })?;
    let scored = Scored { step, fid };
    let better = best.is_none_or(|b| fid < b.fid);
    let path = best_path(setup.work, step);
    if better {
        let dir = path.parent().expect("a folder");
        std::fs::create_dir_all(dir).map_err(|e| GanError::io(dir, e))?;
        // D first: a generator on disk has its D beside it.
        if latent.is_some() {
            save_atomically(&state.d, &best_d_path(setup.work, step))?;
        }
        save_atomically(g, &path)?;
    }
    scores.append(&scored)?;
    if better {
        if let Some(old) = best.filter(|b| b.step != step) {
            let _ = std::fs::remove_file(best_path(setup.work, old.step));
            let _ = std::fs::remove_file(best_d_path(setup.work, old.step));
        }
        *best = Some(scored);
    }
    (evaluation.report)(&scored);
    Ok(())
}
