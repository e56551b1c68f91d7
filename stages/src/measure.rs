//! Metric inputs named by path, as `pipe metric` takes them outside pipelines: an image
//! folder, a packed data set, pytorch-fid/TTUR statistics (`.npz` with `mu`), or
//! features (`.npz` with `pool3`, and `logits` and `labels` when known, or an `.npy`;
//! 1008 columns count as logits). Images are run through the FID Inception network,
//! or another backbone's; a packed data set's labels come with its features.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use data::{DataError, Packed, decode_rgb};
use kernels::device::{Device, DeviceError};
use metrics::backbone::{Backbone, Pretrained};
use metrics::extract::{Extraction, ImageSource};
use metrics::inception::CLASSES;
use metrics::resize::Resizer;
use metrics::{Features, MetricError, Stats, npy};

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(transparent)]
    Metric(#[from] MetricError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A path that holds nothing a metric reads, or not what the metric needs.
    #[error("`{}`: {message}", path.display())]
    Input { path: PathBuf, message: String },
}

impl MeasureError {
    fn input(path: &Path, message: impl Into<String>) -> MeasureError {
        MeasureError::Input {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// What an input path holds, once read.
pub enum Loaded {
    Stats(Stats),
    /// Pool features, and logits and each sample's class when known.
    Features(Features, Option<Features>, Option<Vec<u32>>),
}

impl Loaded {
    /// The pool features, for metrics that need them (not statistics).
    pub fn pool_features(self, path: &Path) -> Result<Features, MeasureError> {
        match self {
            Loaded::Features(f, ..) => Ok(f),
            Loaded::Stats(_) => Err(MeasureError::input(
                path,
                "holds statistics; this metric needs features or images",
            )),
        }
    }
}

/// How images are turned into features, and where the caller hears about it.
pub struct Network<'a> {
    /// The network images are measured in, and its weights (needed when an input is
    /// images).
    pub backbone: Backbone,
    pub weights: Option<&'a Path>,
    pub batch: usize,
    pub device: Device,
    /// How images are brought to the network's input size.
    pub resizer: Resizer,
    /// Images done, of how many, for the input being read.
    pub progress: &'a (dyn Fn(&Path, u64, u64) + Sync),
    /// Things worth telling (files skipped, mixed sizes), one sentence each.
    pub note: &'a dyn Fn(String),
}

/// Reads an input: statistics, features, or images run through the network.
pub fn load(path: &Path, net: &Network) -> Result<Loaded, MeasureError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if path.is_file() && ext == "npz" {
        let arrays = npy::read_npz(path)?;
        if arrays.contains_key("mu") {
            return Ok(Loaded::Stats(Stats::read_npz(path)?));
        }
        let take = |key: &str| arrays.get(key).cloned();
        let pool3 = take("pool3").ok_or_else(|| {
            MeasureError::input(path, "neither `mu`/`sigma` statistics nor `pool3` features")
        })?;
        let logits = take("logits").map(|a| features_of(a, path)).transpose()?;
        let labels = take("labels").map(|a| a.data.iter().map(|&v| v as u32).collect());
        return Ok(Loaded::Features(features_of(pool3, path)?, logits, labels));
    }
    if path.is_file() && ext == "npy" {
        let features = features_of(npy::read(path)?, path)?;
        return Ok(match features.cols {
            CLASSES => Loaded::Features(features.clone(), Some(features), None),
            _ => Loaded::Features(features, None, None),
        });
    }
    let packed_path = if path.is_dir() {
        path.join(crate::artifacts::IMAGES)
    } else {
        path.to_path_buf()
    };
    if packed_path.is_file() && (ext == "pack" || path.is_dir()) {
        let packed = Packed::open(&packed_path)?;
        let (features, logits) = extract(&packed, path, net)?;
        return Ok(Loaded::Features(features, logits, Some(packed.labels())));
    }
    if path.is_dir() {
        let (features, logits) = extract(&folder_images(path, net.note)?, path, net)?;
        return Ok(Loaded::Features(features, logits, None));
    }
    Err(MeasureError::input(
        path,
        "not an image folder, a packed data set, an .npz of statistics or an .npy of features",
    ))
}

fn features_of(array: npy::Array, file: &Path) -> Result<Features, MeasureError> {
    let (rows, cols) = array.matrix().ok_or_else(|| {
        MeasureError::input(
            file,
            format!("expected a 2-d array, found shape {:?}", array.shape),
        )
    })?;
    Ok(Features::new(rows, cols, array.data))
}

/// Image files of a folder, decoded on demand.
struct FolderImages {
    files: Vec<PathBuf>,
}

impl ImageSource for FolderImages {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn image(&self, i: usize) -> Result<(usize, usize, Cow<'_, [u8]>), MetricError> {
        let path = &self.files[i];
        let bytes = std::fs::read(path).map_err(MetricError::io(path))?;
        let (w, h, px) = decode_rgb(&bytes, None)
            .map_err(|e| MetricError::format(path.display().to_string(), e.0))?;
        Ok((w as usize, h as usize, Cow::Owned(px)))
    }
}

fn folder_images(dir: &Path, note: &dyn Fn(String)) -> Result<FolderImages, MeasureError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| MeasureError::input(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let is_image = |p: &PathBuf| {
        matches!(
            p.extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("png" | "jpg" | "jpeg")
        )
    };
    let (images, others): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(is_image);
    if !others.is_empty() {
        let names: Vec<String> = others.iter().map(|p| p.display().to_string()).collect();
        note(format!(
            "skipping {} files that are not PNG or JPEG images: {}",
            others.len(),
            names.join(", ")
        ));
    }
    if images.is_empty() {
        return Err(MeasureError::input(dir, "holds no PNG or JPEG images"));
    }
    let mut sizes = std::collections::BTreeSet::new();
    for p in &images {
        if let Ok((w, h)) = image::image_dimensions(p) {
            sizes.insert((w, h));
        }
    }
    if sizes.len() > 1 {
        let list: Vec<String> = sizes.iter().map(|(w, h)| format!("{w}×{h}")).collect();
        note(format!(
            "`{}` holds images of {} sizes ({}); each is resized to 299×299 by the network",
            dir.display(),
            sizes.len(),
            list.join(", ")
        ));
    }
    Ok(FolderImages { files: images })
}

/// Pool features and logits of images.
fn extract(
    images: &dyn ImageSource,
    path: &Path,
    net: &Network,
) -> Result<(Features, Option<Features>), MeasureError> {
    let weights = net.weights.ok_or_else(|| {
        MeasureError::input(
            path,
            format!(
                "holds images: give the {} network's weights with --weights FILE ({})",
                net.backbone,
                net.backbone.release()
            ),
        )
    })?;
    let progress = |done: u64, total: u64| (net.progress)(path, done, total);
    let cancel = AtomicBool::new(false);
    let network = Pretrained {
        backbone: net.backbone,
        weights: weights.to_path_buf(),
        resizer: net.resizer,
    };
    let task = Extraction {
        network: &network,
        images,
        batch: net.batch.max(1),
        keep: true,
        progress: &progress,
        cancel: &cancel,
    };
    let (result, used) = net.device.run(task)?;
    tracing::info!("features of {} on {used}", path.display());
    let e = result?;
    let widen = |v: &[f32]| v.iter().map(|&x| x as f64).collect();
    let logits = (e.classes > 0).then(|| Features::new(e.count, e.classes, widen(&e.logits)));
    Ok((Features::new(e.count, e.features, widen(&e.pool3)), logits))
}
