//! ImageNet (ILSVRC2012) from its standard folders, read as the seed's loader reads it
//! (`data_utils/load_dataset.py` at 67e0de0, its ImageFolder branch). ImageNet cannot
//! be downloaded without an account: this reads a local copy.
//!
//! Classes are the wnid folders of `train/` in sorted order (torchvision's ImageFolder
//! order), for both splits. Train is `train/<wnid>/*`, class by class, files sorted.
//! The validation images (`Test`) are `val/<wnid>/*` (the layout the seed's ImageFolder
//! reads, as the usual `valprep.sh` makes it), or all in `val/` labelled by
//! `LOC_val_solution.csv` (the mapping file of Kaggle's copy: `ImageId,PredictionString`,
//! the wnid first in the string; beside `val/` or in it), ordered the same way.
//!
//! Each image is decoded to RGB, cropped to the centred square of its short side, and
//! resized to `size × size` with PIL's nearest neighbour: the default of
//! `Image.resize` under the Pillow < 7 the seed requires.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::folder::{decoded_in_order, is_image, sorted_entries};
use super::{DataError, Images, Split, decode_rgb};

/// Kaggle's mapping of validation images to wnids.
const VAL_MAPPING: &str = "LOC_val_solution.csv";

pub fn read(root: &Path, split: Split, size: u32) -> Result<Images, DataError> {
    let train = root.join("train");
    if !train.is_dir() {
        return Err(DataError::bad(
            root.display().to_string(),
            None,
            "no `train/` folder: expected ILSVRC2012 as extracted, `train/<wnid>/*.JPEG` and \
             `val/` (ImageNet needs an account to download: place your copy there)",
        ));
    }
    let wnids = folder_names(&sorted_entries(&train)?);
    if wnids.is_empty() {
        return Err(DataError::bad(
            train.display().to_string(),
            None,
            "no class folders (`train/<wnid>/`)",
        ));
    }
    let label_of = |wnid: &str| wnids.binary_search_by(|w| w.as_str().cmp(wnid)).ok();
    let (files, name) = match split {
        Split::Train => (class_folders(&train, &wnids)?, "train"),
        Split::Test => (validation(root, &label_of)?, "val"),
    };
    let count = files.len();
    let iter = decoded_in_order(files, move |path| {
        let bytes = std::fs::read(path).map_err(DataError::io(path))?;
        let (w, h, pixels) = decode_rgb(&bytes, None)
            .map_err(|e| DataError::bad(path.display().to_string(), None, e.0))?;
        Ok(crop_and_resize(w, h, &pixels, size))
    });
    Ok(Images {
        classes: wnids,
        height: size,
        width: size,
        description: format!("ImageNet {name} ({size}×{size}, centre crop, nearest)"),
        count,
        iter: Box::new(iter),
    })
}

/// The names of the folders among `entries`, in their order.
fn folder_names(entries: &[PathBuf]) -> Vec<String> {
    entries
        .iter()
        .filter(|p| p.is_dir())
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// `dir/<wnid>/*` for every wnid, in order, labelled by position.
fn class_folders(dir: &Path, wnids: &[String]) -> Result<Vec<(PathBuf, u32)>, DataError> {
    let mut files = Vec::new();
    for (label, wnid) in wnids.iter().enumerate() {
        let class_dir = dir.join(wnid);
        if !class_dir.is_dir() {
            return Err(DataError::bad(
                class_dir.display().to_string(),
                None,
                format!("no folder for class {wnid}, which `train/` has"),
            ));
        }
        for file in sorted_entries(&class_dir)? {
            if file.is_file() && is_image(&file) {
                files.push((file, label as u32));
            }
        }
    }
    Ok(files)
}

/// The validation images with their labels: class folders, or a flat folder and the
/// mapping file; ordered by class, then file name, as an ImageFolder of them would be.
fn validation(
    root: &Path,
    label_of: &dyn Fn(&str) -> Option<usize>,
) -> Result<Vec<(PathBuf, u32)>, DataError> {
    let val = root.join("val");
    let entries = sorted_entries(&val)?;
    let folders = folder_names(&entries);
    if !folders.is_empty() {
        let mut files = Vec::new();
        for wnid in &folders {
            let label = label_of(wnid).ok_or_else(|| {
                DataError::bad(
                    val.join(wnid).display().to_string(),
                    None,
                    "a class that `train/` does not have",
                )
            })?;
            for file in sorted_entries(&val.join(wnid))? {
                if file.is_file() && is_image(&file) {
                    files.push((file, label as u32));
                }
            }
        }
        files.sort_by_key(|(_, label)| *label);
        return Ok(files);
    }
    let mapping_file = [root.join(VAL_MAPPING), val.join(VAL_MAPPING)]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            DataError::bad(
                val.display().to_string(),
                None,
                format!(
                    "no class folders (`val/<wnid>/`) and no `{VAL_MAPPING}` beside `val/` \
                     to label its images"
                ),
            )
        })?;
    let text = std::fs::read_to_string(&mapping_file).map_err(DataError::io(&mapping_file))?;
    let mut wnid_of: BTreeMap<&str, &str> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (n == 0 && line.starts_with("ImageId")) {
            continue;
        }
        let parsed = line
            .split_once(',')
            .and_then(|(id, prediction)| Some((id, prediction.split_whitespace().next()?)));
        let Some((id, wnid)) = parsed else {
            return Err(DataError::bad(
                mapping_file.display().to_string(),
                Some(format!("line {}", n + 1)),
                format!("expected `ImageId,wnid …`, found `{line}`"),
            ));
        };
        wnid_of.insert(id, wnid);
    }
    let mut files = Vec::new();
    for file in entries.into_iter().filter(|p| p.is_file() && is_image(p)) {
        let stem = file
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let label = wnid_of
            .get(stem.as_str())
            .and_then(|wnid| label_of(wnid))
            .ok_or_else(|| {
                DataError::bad(
                    file.display().to_string(),
                    None,
                    format!(
                        "`{}` gives this image no class of `train/`",
                        mapping_file.display()
                    ),
                )
            })?;
        files.push((file, label as u32));
    }
    files.sort_by_key(|(_, label)| *label);
    Ok(files)
}

/// The seed's preprocessing of one RGB image: the centred square of the short side
/// (offset `(long − short) / 2`, rounded down), then PIL's nearest-neighbour resize,
/// whose source pixel for output `x` is `floor((x + 0.5) · scale)`, the position
/// accumulated step by step as PIL's `ImagingScaleAffine` does.
pub fn crop_and_resize(width: u32, height: u32, pixels: &[u8], size: u32) -> Vec<u8> {
    let (w, h, size) = (width as usize, height as usize, size as usize);
    let side = w.min(h);
    let (left, top) = ((w - side) / 2, (h - side) / 2);
    let sources = || {
        let scale = side as f64 / size as f64;
        let mut at = scale * 0.5;
        (0..size).map(move |_| {
            let source = (at as usize).min(side - 1);
            at += scale;
            source
        })
    };
    let columns: Vec<usize> = sources().collect();
    let mut out = Vec::with_capacity(size * size * 3);
    for row in sources() {
        let line = (top + row) * w;
        for &column in &columns {
            let p = (line + left + column) * 3;
            out.extend_from_slice(&pixels[p..p + 3]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG (lossless, unlike a JPEG) whose red channel is `v` everywhere.
    fn png(path: &Path, w: u32, h: u32, v: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([v, x as u8, y as u8]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn crop_is_centred_and_nearest_takes_pixel_centres() {
        // 6×4: the centred 4×4 square starts at column 1; halving takes every other
        // pixel from the second (centres 1 and 3 of 0..4).
        let pixels: Vec<u8> = (0..24u8).flat_map(|i| [i, 0, 0]).collect();
        let out = crop_and_resize(6, 4, &pixels, 2);
        let reds: Vec<u8> = out.chunks(3).map(|p| p[0]).collect();
        assert_eq!(reds, [6 + 2, 6 + 4, 18 + 2, 18 + 4]);
        // The same size: the crop only.
        let out = crop_and_resize(6, 4, &pixels, 4);
        assert_eq!(out.chunks(3).next().unwrap()[0], 1);
    }

    #[test]
    fn splits_classes_and_the_validation_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (wnid, v) in [("n02", 20), ("n01", 10)] {
            png(&root.join(format!("train/{wnid}/b.png")), 5, 3, v + 1);
            png(&root.join(format!("train/{wnid}/a.png")), 3, 5, v);
        }
        png(&root.join("val/ILSVRC2012_val_00000001.png"), 4, 4, 30);
        png(&root.join("val/ILSVRC2012_val_00000002.png"), 4, 4, 40);
        let train = read(root, Split::Train, 2).unwrap();
        assert_eq!(train.classes, ["n01", "n02"]);
        let seen: Vec<(u8, u32)> = train
            .iter
            .map(|r| r.unwrap())
            .map(|(p, l)| (p[0], l))
            .collect();
        assert_eq!(seen, [(10, 0), (11, 0), (20, 1), (21, 1)]);

        let err = read(root, Split::Test, 2).err().unwrap().to_string();
        assert!(
            err.contains("no `LOC_val_solution.csv` beside `val/`"),
            "{err}"
        );
        std::fs::write(
            root.join(VAL_MAPPING),
            "ImageId,PredictionString\nILSVRC2012_val_00000001,n02 1 2 3 4\nILSVRC2012_val_00000002,n01 5 6 7 8\n",
        )
        .unwrap();
        let val = read(root, Split::Test, 2).unwrap();
        let seen: Vec<(u8, u32)> = val
            .iter
            .map(|r| r.unwrap())
            .map(|(p, l)| (p[0], l))
            .collect();
        assert_eq!(seen, [(40, 0), (30, 1)], "ordered by class, as ImageFolder");

        std::fs::write(root.join(VAL_MAPPING), "ILSVRC2012_val_00000001,n09\n").unwrap();
        let err = read(root, Split::Test, 2).err().unwrap().to_string();
        assert!(
            err.contains("gives this image no class of `train/`"),
            "{err}"
        );
        let err = read(&root.join("train"), Split::Train, 2)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no `train/` folder"), "{err}");
    }
}
