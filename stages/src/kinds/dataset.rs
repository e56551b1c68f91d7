//! `Dataset`: a data set split packed into one memory-mappable file.
//!
//! ```ron
//! "cifar10_train": Dataset(source: Cifar10(stage: "cifar10_archive"), split: Train),
//! "cifar10_test":  Dataset(source: Cifar10(path: "data/cifar-10-binary.tar.gz"), split: Test),
//! "tiny_val":      Dataset(source: TinyImageNet(path: "data/tiny-imagenet-200.zip"), split: Test),
//! "imagenet":      Dataset(source: ImageNet(path: "data/ILSVRC2012", size: Some(128)), split: Train),
//! "mine":          Dataset(source: ImageFolder(path: "data/mine", resize: Some((size: 64, filter: Bilinear))), split: Train),
//! "shapes":        Dataset(source: Synthetic(seed: 0, per_class: 500, size: 16), split: Train),
//! ```
//!
//! A source reads from a local `path` (an archive or a folder, hashed into the key) or
//! from an upstream `stage` (e.g. a `Download`). Outputs: `images.pack` (see
//! [`data::packed`]), `preview.png` (a row of images per class), and the summary
//! and counts in the record.

use std::path::{Path, PathBuf};

use explain::Explain;
use serde::{Deserialize, Serialize};

use crate::artifacts;
use crate::error::KindError;
use contract::{Context, FileInput, Invalid, Needs, Outcome, Reference, StageError, TypedKind};
use data::cifar::{self, Cifar};
use data::synthetic::{self, Synthetic};
use data::{self, Filter, Images, Location, Split, folder, imagenet, tiny};

pub struct Dataset;

/// Packs a data set's images and labels into `images.pack` (u8 NHWC pixels, u32 labels,
/// a JSON header with the class names), which training and evaluation memory-map, and
/// a `preview.png` with a row of images per class.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Where the images come from.
    pub source: Source,
    /// Which part of the data set.
    pub split: Split,
}

#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
pub enum Source {
    /// CIFAR-10: the binary or python archive, or the folder extracted from it.
    Cifar10(Place),
    /// CIFAR-100, as CIFAR-10 (its 100 fine labels).
    Cifar100(Place),
    /// Tiny ImageNet: the zip or its folder; the validation images labelled by
    /// `val_annotations.txt`.
    TinyImageNet(Place),
    /// ILSVRC2012's `train/` and `val/` folders, preprocessed as the seed does (centre
    /// crop, nearest-neighbour resize to `size`; see `data::imagenet`).
    ImageNet(Place),
    /// One sub-folder per class of PNG or JPEG images, classes in sorted order.
    ImageFolder(Place),
    /// Ten classes of coloured shapes, made from a seed: for tests and the quickstart.
    Synthetic(Synthetic),
}

/// Where the files are: a local path or an upstream stage's output.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// A local archive or folder, relative to the pipeline file's folder; its content is
    /// hashed into the key. One of `path` and `stage` is needed.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// An upstream stage whose output holds the archive (a `Download`).
    #[serde(default)]
    pub stage: Option<String>,
    /// Image folders only: bring every image to `size × size`.
    #[serde(default)]
    pub resize: Option<Resize>,
    /// ImageNet only: the side of its square images (the seed's 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Resize {
    /// The side of the square images, in pixels.
    pub size: u32,
    /// How pixels are resampled.
    pub filter: Filter,
}

const ROLE: &str = "source";

impl TypedKind for Dataset {
    const NAME: &'static str = "Dataset";
    const VERSION: u32 = 1;
    type Params = Params;
    type Error = KindError;

    fn declare(params: &Params) -> Result<Needs, Invalid> {
        let (variant, place) = match &params.source {
            Source::Cifar10(p) => ("Cifar10", p),
            Source::Cifar100(p) => ("Cifar100", p),
            Source::TinyImageNet(p) => ("TinyImageNet", p),
            Source::ImageNet(p) => ("ImageNet", p),
            Source::ImageFolder(p) => ("ImageFolder", p),
            Source::Synthetic(s) => {
                if s.per_class == 0 || s.size < 4 || s.classes == 0 {
                    return Err(Invalid::new(
                        "`per_class`, `classes` must be positive and `size` at least 4",
                        &["source"],
                    ));
                }
                return Ok(Needs::default());
            }
        };
        if place.resize.is_some() && variant != "ImageFolder" {
            let why = if variant == "ImageNet" {
                "ImageNet is cropped and resized as the seed does it: set `size`".to_string()
            } else {
                format!("{variant} images have a fixed size")
            };
            return Err(Invalid::new(
                format!("`resize` applies to ImageFolder only; {why}"),
                &["source", "resize"],
            ));
        }
        match (variant, place.size) {
            ("ImageNet", None | Some(0)) => {
                return Err(Invalid::new(
                    "ImageNet needs the side of its images: `size: Some(128)`, as the seed's",
                    &["source", "size"],
                ));
            }
            ("ImageNet", _) | (_, None) => {}
            _ => {
                return Err(Invalid::new(
                    format!("`size` applies to ImageNet only; {variant} takes `resize`, if any"),
                    &["source", "size"],
                ));
            }
        }
        if place.resize.is_some_and(|r| r.size == 0) {
            return Err(Invalid::new(
                "`resize.size` must be positive",
                &["source", "resize"],
            ));
        }
        match (&place.path, &place.stage) {
            (Some(path), None) => Ok(Needs {
                files: vec![FileInput {
                    role: ROLE.into(),
                    path: path.clone(),
                    at: vec!["source".into(), "path".into()],
                }],
                ..Needs::default()
            }),
            (None, Some(stage)) => Ok(Needs {
                stages: vec![Reference {
                    role: ROLE.into(),
                    target: stage.clone(),
                    at: vec!["source".into(), "stage".into()],
                }],
                ..Needs::default()
            }),
            _ => Err(Invalid::new(
                format!("`{variant}` needs either `path` or `stage`"),
                &["source"],
            )
            .with_help(format!(
                "e.g. {variant}(path: \"data/...\") or {variant}(stage: \"download_stage\")"
            ))),
        }
    }

    fn run(params: Params, ctx: &Context) -> Result<Outcome, KindError> {
        let images = open(&params, ctx)?;
        let pack_path = ctx.out.join(artifacts::IMAGES);
        let report =
            |done: u64, total: u64| ctx.progress.report(done, Some(total), "packing images");
        let header = data::pack(images, &pack_path, &report, ctx.cancel)?;
        artifacts::write_preview(ctx.out)?;
        let (min, max) = (
            header.counts.iter().min().copied().unwrap_or(0),
            header.counts.iter().max().copied().unwrap_or(0),
        );
        let summary = format!(
            "{}: {} images of {}×{}, {} classes, {} per class",
            header.description,
            header.count,
            header.width,
            header.height,
            header.classes.len(),
            if min == max {
                min.to_string()
            } else {
                format!("{min} to {max}")
            }
        );
        use std::io::Write;
        let _ = writeln!(&mut &*ctx.log, "{summary}");
        Ok(Outcome {
            metrics: [
                ("images".to_string(), header.count as f64),
                ("classes".to_string(), header.classes.len() as f64),
            ]
            .into(),
            summary: Some(summary),
            ..Default::default()
        })
    }
}

fn open(params: &Params, ctx: &Context) -> Result<Images, KindError> {
    let input = || ctx.input(ROLE);
    let located = |path: &Path| Location::detect(path).map_err(KindError::from);
    let split = params.split;
    Ok(match &params.source {
        Source::Cifar10(_) => cifar::read(&located(input()?)?, Cifar::Ten, split)?,
        Source::Cifar100(_) => cifar::read(&located(input()?)?, Cifar::Hundred, split)?,
        Source::TinyImageNet(_) => tiny::read(&located(input()?)?, split)?,
        Source::ImageNet(place) => {
            let size = place.size.expect("checked in declare");
            imagenet::read(input()?, split, size)?
        }
        Source::ImageFolder(place) => {
            let path = input()?;
            if !path.is_dir() {
                return Err(StageError::Invalid(format!(
                    "`{}` is not a folder of class folders",
                    path.display()
                ))
                .into());
            }
            folder::read(path, place.resize.map(|r| (r.size, r.filter)))?
        }
        Source::Synthetic(s) => synthetic::read(s, split),
    })
}
