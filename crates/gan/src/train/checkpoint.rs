//! Checkpoints in the work folder: `checkpoints/<step>/` (G, D, the EMA, both Adam
//! states and `state.json`), written to a temporary folder and renamed, with `latest`
//! naming the newest complete one; older ones are removed once it is in place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use kernels::Kernels;
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::adaptive::Adaptive;
use super::latent::Side;
use super::state::{State, hyper};
use crate::GanError;
use crate::adam::Adam;
use crate::config::TrainConfig;
use crate::tensors::{Snapshot, Tensors};

#[derive(Serialize, Deserialize)]
struct CheckpointInfo {
    step: u64,
    seed: u64,
    /// The objective's terms' state (LeCam's averages), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    terms: BTreeMap<String, f64>,
    /// StyleGAN2's running mean of the path lengths.
    #[serde(default, skip_serializing_if = "is_zero")]
    pl_mean: f64,
    /// ADA's and APA's p, and the sum and count of the signs gathered since it last
    /// moved (`apa` before ADA shared it).
    #[serde(default, alias = "apa", skip_serializing_if = "Option::is_none")]
    adaptive_p: Option<(f64, f64, u64)>,
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

pub(super) fn checkpoint_dir(work: &Path) -> PathBuf {
    work.join("checkpoints")
}

/// Whether a run with this work folder resumes from a checkpoint (and so ignores
/// [`Setup::start`]).
pub fn resumes(work: &Path) -> bool {
    matches!(latest_checkpoint(&checkpoint_dir(work)), Ok(Some(_)))
}

/// The step of the newest complete checkpoint under `dir`.
pub(super) fn latest_checkpoint(dir: &Path) -> Result<Option<u64>, TrainError> {
    match std::fs::read_to_string(dir.join("latest")) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(GanError::io(&dir.join("latest"), e).into()),
    }
}

const FILES: [&str; 5] = ["G", "D", "G_ema", "adam_G", "adam_D"];

pub(super) fn save_checkpoint<B: Kernels>(
    dir: &Path,
    state: &State<B>,
    seed: u64,
    terms: BTreeMap<String, f64>,
) -> Result<(), TrainError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| TrainError::Gan(GanError::io(&path, e))
    };
    let final_dir = dir.join(state.step.to_string());
    let tmp = dir.join(format!("{}.tmp", state.step));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let snapshots = [
        Some(state.g.to_snapshot()),
        Some(state.d.to_snapshot()),
        state.g_ema.as_ref().map(Tensors::to_snapshot),
        Some(state.opt_g.to_snapshot()),
        Some(state.opt_d.to_snapshot()),
    ];
    for (name, snapshot) in FILES.iter().zip(snapshots) {
        if let Some(snapshot) = snapshot {
            snapshot.save(&tmp.join(format!("{name}.safetensors")))?;
        }
    }
    let info = CheckpointInfo {
        step: state.step,
        seed,
        terms,
        pl_mean: state.pl_mean,
        adaptive_p: state.adaptive.as_ref().map(|adaptive| {
            let signs = adaptive.signs.clone().into_scalar().elem::<f64>();
            (adaptive.p, signs, adaptive.count)
        }),
    };
    let info_path = tmp.join("state.json");
    std::fs::write(&info_path, serde_json::to_vec_pretty(&info).unwrap())
        .map_err(io(&info_path))?;
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
    let latest = dir.join("latest");
    let latest_tmp = dir.join("latest.tmp");
    std::fs::write(&latest_tmp, state.step.to_string()).map_err(io(&latest_tmp))?;
    std::fs::rename(&latest_tmp, &latest).map_err(io(&latest))?;
    // Older checkpoints are superseded.
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let path = entry.path();
        if path.is_dir() && path != final_dir {
            let _ = std::fs::remove_dir_all(path);
        }
    }
    Ok(())
}

/// The state of a checkpoint, and its terms' state.
pub(super) fn load_checkpoint<B: Kernels>(
    dir: &Path,
    train: &TrainConfig,
    device: &B::Device,
) -> Result<(State<B>, BTreeMap<String, f64>), TrainError> {
    let load = |name: &str| -> Result<Option<Snapshot>, GanError> {
        let path = dir.join(format!("{name}.safetensors"));
        if path.exists() {
            Snapshot::load(&path).map(Some)
        } else {
            Ok(None)
        }
    };
    let missing = |name: &str| {
        GanError::format(
            dir.display(),
            format!("checkpoint lacks {name}.safetensors"),
        )
    };
    let info_path = dir.join("state.json");
    let info: CheckpointInfo = serde_json::from_slice(
        &std::fs::read(&info_path).map_err(|e| GanError::io(&info_path, e))?,
    )
    .map_err(|e| GanError::format(info_path.display(), e.to_string()))?;
    let g = load("G")?.ok_or_else(|| missing("G"))?;
    let d = load("D")?.ok_or_else(|| missing("D"))?;
    let adam = |name: &str, side: Side| -> Result<Adam<B>, GanError> {
        let snapshot = load(name)?.ok_or_else(|| missing(name))?;
        Adam::from_snapshot(hyper(train, side), &snapshot, device).ok_or_else(|| {
            GanError::format(
                dir.display(),
                format!("{name}.safetensors is not an optimizer state"),
            )
        })
    };
    let state = State {
        step: info.step,
        g: Tensors::from_snapshot(&g, device),
        d: Tensors::from_snapshot(&d, device),
        g_ema: load("G_ema")?.map(|s| Tensors::from_snapshot(&s, device)),
        opt_g: adam("adam_G", Side::Generator)?,
        opt_d: adam("adam_D", Side::Discriminator)?,
        pl_mean: info.pl_mean,
        adaptive: match (train.adaptive_p(), info.adaptive_p) {
            (Some(_), Some((p, signs, count))) => Some(Adaptive::new(p, signs, count, device)),
            (Some(config), None) => Some(Adaptive::new(config.initial_p, 0.0, 0, device)),
            (None, _) => None,
        },
    };
    Ok((state, info.terms))
}
