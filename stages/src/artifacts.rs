//! The output folders kinds hand each other, each with one owner: its file names, its
//! writer and its reader live here, and an upstream is opened by the kind of stage that
//! made it (from its record), not by which files happen to be in its folder.
//!
//! | artifact | made by | files |
//! |---|---|---|
//! | image set | `Dataset`, `Sample` | `images.pack`, `preview.png` |
//! | statistics | `InceptionStats` | `stats.npz`, with `features: true` `pool3.npy`, `logits.npy`, `labels.npy` |
//! | trained GAN | `Train` | `G.safetensors`, `G_ema.safetensors`, `G_best.safetensors`, `D.safetensors` (`D_best.safetensors` with LOGAN), `model.json`, `classes.json`, `metrics.jsonl`, `fid.jsonl` |
//! | classifier | `Classifier` | `classifier.safetensors`, `model.json`, `classes.json` |
//! | Inception weights | `Weights` | the `.pth` file |

use explain::Explain;
use std::path::{Path, PathBuf};

use contract::{Input, StageError};
use data::{Packed, preview};
use gan::ModelConfig;
use gan::config::LatentOpConfig;
use gan::tensors::Snapshot;
use kernels::Kernels;
use metrics::backbone::{Backbone, Pretrained};
use metrics::extract::{Extracted, FeatureNetwork, LoadedNetwork};
use metrics::resize::Resizer;
use metrics::{Features, MetricError, Stats, npy};
use serde::{Deserialize, Serialize};

use crate::error::KindError;
use crate::protocol;

/// An image set's packed images.
pub const IMAGES: &str = "images.pack";
/// A row of images per class, for reports.
pub const PREVIEW: &str = "preview.png";
pub const STATS: &str = "stats.npz";
pub const POOL3: &str = "pool3.npy";
pub const LOGITS: &str = "logits.npy";
/// The class of each image whose features `POOL3` holds, for intra-class FID.
pub const LABELS: &str = "labels.npy";
pub const MODEL: &str = "model.json";
pub const CLASSES: &str = "classes.json";
pub const CLASSIFIER: &str = "classifier.safetensors";
/// A training's losses, one line per iteration, and its FID curve.
pub use gan::train::{LOSSES, SCORES};

/// The images of an image set (a `Dataset` or `Sample` output).
pub fn images(dir: &Path) -> Result<Packed, KindError> {
    Ok(Packed::open(&dir.join(IMAGES))?)
}

/// Writes the preview of the image set just packed into `out`.
pub fn write_preview(out: &Path) -> Result<(), KindError> {
    Ok(preview::write(&images(out)?, &out.join(PREVIEW))?)
}

/// The reference statistics of an `InceptionStats` output.
pub fn stats(dir: &Path) -> Result<Stats, KindError> {
    Ok(Stats::read_npz(&dir.join(STATS))?)
}

/// The per-image features of an `InceptionStats` output, if it kept them.
pub fn features(dir: &Path) -> Result<Option<Features>, KindError> {
    let path = dir.join(POOL3);
    if !path.exists() {
        return Ok(None);
    }
    let array = npy::read(&path)?;
    match array.shape.as_slice() {
        [rows, cols] => Ok(Some(Features::new(*rows, *cols, array.data))),
        shape => Err(MetricError::format(
            path.display().to_string(),
            format!("features must be a 2-d array, this one has shape {shape:?}"),
        )
        .into()),
    }
}

/// The class of every image whose features an `InceptionStats` output kept.
pub fn labels(dir: &Path, reference: &str) -> Result<Vec<u32>, KindError> {
    let path = dir.join(LABELS);
    if !path.exists() {
        return Err(StageError::Invalid(format!(
            "`{reference}` kept no labels of its images (it was computed before pipe kept \
             them): recompute it with `pipe run FILE --force {reference}`"
        ))
        .into());
    }
    Ok(npy::read(&path)?.data.iter().map(|&v| v as u32).collect())
}

/// Writes `stats.npz`, and when given every image's features, logits and label.
pub fn write_stats(
    out: &Path,
    stats: &Stats,
    kept: Option<(&Extracted, &[u32])>,
) -> Result<(), KindError> {
    stats.write_npz(&out.join(STATS))?;
    if let Some((e, labels)) = kept {
        let labels: Vec<f64> = labels.iter().map(|&l| l as f64).collect();
        for (name, values, cols) in [
            (
                POOL3,
                e.pool3.iter().map(|&v| v as f64).collect(),
                e.features,
            ),
            (
                LOGITS,
                e.logits.iter().map(|&v| v as f64).collect(),
                e.classes,
            ),
            (LABELS, labels, 1),
        ] {
            let path = out.join(name);
            let shape: &[usize] = if name == LABELS {
                &[e.count]
            } else {
                &[e.count, cols]
            };
            std::fs::write(&path, npy::encode(shape, &values, name != LABELS))
                .map_err(StageError::io(format!("cannot write {name}")))?;
        }
    }
    Ok(())
}

/// Writes `model.json` and `classes.json`, which [`model`] reads.
pub fn write_model(out: &Path, model: &ModelConfig, classes: &[String]) -> Result<(), KindError> {
    let write = |name: &str, json: Vec<u8>| {
        let path = out.join(name);
        std::fs::write(&path, json).map_err(StageError::io(format!("cannot write {name}")))
    };
    write(
        MODEL,
        serde_json::to_vec_pretty(model).expect("serializable"),
    )?;
    write(
        CLASSES,
        serde_json::to_vec_pretty(classes).expect("serializable"),
    )?;
    Ok(())
}

/// The model configuration and class names of a `Train` or `Classifier` output.
pub fn model(dir: &Path) -> Result<(ModelConfig, Vec<String>), KindError> {
    fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, KindError> {
        let bytes = std::fs::read(path)
            .map_err(StageError::io(format!("cannot read {}", path.display())))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| StageError::caused(format!("`{}`", path.display()), e).into())
    }
    Ok((read(&dir.join(MODEL))?, read(&dir.join(CLASSES))?))
}

/// Which of a `Train` stage's generators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Explain)]
pub enum Generator {
    /// The exponential moving average of the generator.
    #[default]
    Ema,
    /// The generator as last trained.
    Raw,
    /// The generator of the best FID during training (a `Train` stage with `eval`).
    Best,
}

impl Generator {
    /// Its file's name without `.safetensors`.
    pub fn name(self) -> &'static str {
        match self {
            Generator::Ema => "G_ema",
            Generator::Raw => "G",
            Generator::Best => "G_best",
        }
    }
}

/// The file of a network of a `Train` output (`G`, `G_ema`, `G_best`, `D`).
pub fn network_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.safetensors"))
}

/// The model configuration, class names and chosen generator of a `Train` output.
pub fn generator(
    dir: &Path,
    generator: Generator,
) -> Result<(ModelConfig, Vec<String>, Snapshot), KindError> {
    let (model, classes) = model(dir)?;
    let path = network_file(dir, generator.name());
    if !path.exists() {
        return Err(StageError::Invalid(format!(
            "`{}` has no {}.safetensors{}",
            dir.display(),
            generator.name(),
            match generator {
                Generator::Ema => " (trained without an EMA): sample with `generator: Raw`",
                Generator::Best => " (trained without `eval`): sample with `generator: Ema`",
                Generator::Raw => "",
            }
        ))
        .into());
    }
    Ok((model, classes, Snapshot::load(&path)?))
}

/// The networks' metadata entry of a LOGAN run: its `latent_op`, whose move of z
/// sampling repeats with D.
const LATENT_OP: &str = "latent_op";

/// For a generator of a LOGAN run (its metadata holds `latent_op`), the D that moves its
/// z (`D_best` for the best generator, else `D`) and the move's configuration.
pub fn latent_move(
    dir: &Path,
    generator: Generator,
    snapshot: &Snapshot,
) -> Result<Option<(Snapshot, LatentOpConfig)>, KindError> {
    let Some(op) = snapshot.metadata.get(LATENT_OP) else {
        return Ok(None);
    };
    let path = network_file(dir, generator.name());
    let op: LatentOpConfig = serde_json::from_str(op).map_err(|e| {
        StageError::Invalid(format!("{}: metadata `{LATENT_OP}`: {e}", path.display()))
    })?;
    let d = network_file(
        dir,
        match generator {
            Generator::Best => "D_best",
            Generator::Ema | Generator::Raw => "D",
        },
    );
    if !d.exists() {
        return Err(StageError::Invalid(format!(
            "`{}` was trained with LOGAN, whose samples move z along D's gradient, and \
             `{}` is missing",
            dir.display(),
            d.display()
        ))
        .into());
    }
    Ok(Some((Snapshot::load(&d)?, op)))
}

/// Writes a `Train` output: its networks (the model configuration, last step and seed in
/// their metadata, and a LOGAN run's `latent_op`), `model.json` and `classes.json`
/// (samples are labelled like the data they imitate), and the training logs kept in its
/// work folder.
pub fn write_trained(
    out: &Path,
    work: &Path,
    model: &ModelConfig,
    classes: &[String],
    seed: u64,
    latent_op: Option<&LatentOpConfig>,
    trained: &gan::train::Trained,
) -> Result<(), KindError> {
    let config = serde_json::to_string(model).expect("serializable");
    let step = trained.last.as_ref().map_or(0, |l| l.step).to_string();
    let latent_op = latent_op.map(|op| serde_json::to_string(op).expect("serializable"));
    let save = |generator: &str, snapshot: &Snapshot| {
        let mut snapshot = snapshot.clone();
        snapshot.metadata.insert("model".into(), config.clone());
        snapshot.metadata.insert("step".into(), step.clone());
        snapshot.metadata.insert("seed".into(), seed.to_string());
        if let Some(op) = &latent_op {
            snapshot.metadata.insert(LATENT_OP.into(), op.clone());
        }
        snapshot.save(&network_file(out, generator))
    };
    save(Generator::Raw.name(), &trained.g)?;
    save("D", &trained.d)?;
    if let Some(ema) = &trained.g_ema {
        save(Generator::Ema.name(), ema)?;
    }
    if let Some((_, best)) = &trained.best {
        save(Generator::Best.name(), best)?;
    }
    if let Some(d) = &trained.best_d {
        save("D_best", d)?;
    }
    write_model(out, model, classes)?;
    for name in [LOSSES, SCORES] {
        let log = work.join(name);
        if log.exists() {
            std::fs::copy(&log, out.join(name)).map_err(StageError::io(format!(
                "cannot copy {name} into the output"
            )))?;
        }
    }
    Ok(())
}

/// Writes a trained classifier, which [`extractor`] reads back.
pub fn write_classifier(
    out: &Path,
    model: &ModelConfig,
    classes: &[String],
    net: &Snapshot,
) -> Result<(), KindError> {
    let mut net = net.clone();
    let json = serde_json::to_string(model).expect("serializable");
    net.metadata.insert("model".into(), json);
    net.save(&out.join(CLASSIFIER))?;
    write_model(out, model, classes)
}

/// The `.pth` weight file of a `Weights` output.
pub fn weight_file(dir: &Path) -> Result<PathBuf, KindError> {
    std::fs::read_dir(dir)
        .map_err(StageError::io(format!("cannot list `{}`", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "pth" || e == "pt"))
        .ok_or_else(|| {
            StageError::Invalid(format!("no .pth weight file in `{}`", dir.display())).into()
        })
}

/// The network an `InceptionStats`, `Score` or `Train(eval:)` stage measures in.
pub enum Extractor {
    Pretrained(Pretrained),
    /// A `Classifier` stage's network and the class names it was trained on.
    Classifier(gan::classifier::Trained, Vec<String>),
}

/// The network of a `weights` input: a `Weights` stage's released network, which must
/// be `backbone`'s (resizing with `resizer`), or a `Classifier` stage's trained
/// classifier (at its own size).
pub fn extractor(
    input: &Input,
    resizer: Resizer,
    backbone: Backbone,
) -> Result<Extractor, KindError> {
    match input.kind.as_deref() {
        Some("Weights") => {
            let holds = protocol::backbone(input)?;
            if holds != backbone {
                return Err(StageError::Invalid(format!(
                    "`{}` holds the {holds} network's weights, but the backbone here is \
                     {backbone}: set `eval_backbone: {holds}`, or give {backbone}'s weights",
                    input.from
                ))
                .into());
            }
            Ok(Extractor::Pretrained(Pretrained {
                backbone,
                weights: weight_file(&input.path)?,
                resizer,
            }))
        }
        Some("Classifier") if !backbone.is_inception() => Err(StageError::Invalid(format!(
            "`{}` is a Classifier stage, which has its own features: `eval_backbone` is for \
             Weights stages",
            input.from
        ))
        .into()),
        Some("Classifier") => {
            let (model, classes) = model(&input.path)?;
            let net = Snapshot::load(&input.path.join(CLASSIFIER))?;
            Ok(Extractor::Classifier(
                gan::classifier::Trained { net, model },
                classes,
            ))
        }
        other => Err(StageError::Invalid(format!(
            "`{}` is {}: features come from a Weights or a Classifier stage",
            input.from,
            match other {
                Some(kind) => format!("a {kind} stage"),
                None => "not a stage".to_string(),
            }
        ))
        .into()),
    }
}

impl FeatureNetwork for Extractor {
    fn describe(&self) -> String {
        match self {
            Extractor::Pretrained(n) => n.describe(),
            Extractor::Classifier(n, _) => n.describe(),
        }
    }

    fn load<B: Kernels>(
        &self,
        device: &B::Device,
    ) -> Result<Box<dyn LoadedNetwork<B> + '_>, MetricError> {
        match self {
            Extractor::Pretrained(n) => n.load(device),
            Extractor::Classifier(n, _) => n.load(device),
        }
    }
}
