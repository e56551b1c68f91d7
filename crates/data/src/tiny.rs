//! Tiny ImageNet: `tiny-imagenet-200.zip` or its extracted folder.
//!
//! Classes are the wnids of `wnids.txt` in sorted order (as an image-folder reader
//! orders class folders), each named after the first name `words.txt` gives it. Train is
//! `train/<wnid>/images/*.JPEG`, class by class, files sorted; val is
//! `val/images/*.JPEG` sorted, labelled by `val/val_annotations.txt`. Images are 64×64;
//! the grayscale ones are converted to RGB.

use std::collections::BTreeMap;

use super::{DataError, Images, Location, Split, decode_rgb};

const SIZE: u32 = 64;

pub fn read(location: &Location, split: Split) -> Result<Images, DataError> {
    let names = location.list()?;
    let wnids_name = names
        .iter()
        .find(|n| n.ends_with("wnids.txt"))
        .ok_or_else(|| {
            DataError::bad(
                location.path().display().to_string(),
                None,
                "no `wnids.txt`: not the Tiny ImageNet layout (tiny-imagenet-200/)",
            )
        })?;
    let prefix = wnids_name.trim_end_matches("wnids.txt").to_string();
    let mut texts = BTreeMap::new();
    location.read_each(
        &[wnids_name.clone(), format!("{prefix}words.txt")]
            .into_iter()
            .filter(|n| names.contains(n))
            .collect::<Vec<_>>(),
        &mut |name, bytes| {
            texts.insert(
                name.to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            );
            Ok(())
        },
    )?;
    let mut wnids: Vec<String> = texts[wnids_name]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    wnids.sort();
    let words: BTreeMap<&str, &str> = texts
        .get(&format!("{prefix}words.txt"))
        .map(|t| t.lines().filter_map(|l| l.split_once('\t')).collect())
        .unwrap_or_default();
    let classes: Vec<String> = wnids
        .iter()
        .map(|w| match words.get(w.as_str()) {
            Some(name) => format!("{w} {}", name.split(',').next().unwrap_or(name).trim()),
            None => w.clone(),
        })
        .collect();
    let label_of = |wnid: &str| wnids.binary_search_by(|w| w.as_str().cmp(wnid)).ok();

    let is_jpeg = |n: &str| {
        n.to_ascii_lowercase().ends_with(".jpeg") || n.to_ascii_lowercase().ends_with(".jpg")
    };
    let mut files: Vec<(String, u32)> = Vec::new();
    match split {
        Split::Train => {
            for (label, wnid) in wnids.iter().enumerate() {
                let dir = format!("{prefix}train/{wnid}/images/");
                files.extend(
                    names
                        .iter()
                        .filter(|n| n.starts_with(&dir) && is_jpeg(n))
                        .map(|n| (n.clone(), label as u32)),
                );
            }
        }
        Split::Test => {
            let annotations = format!("{prefix}val/val_annotations.txt");
            let mut text = String::new();
            location.read_each(std::slice::from_ref(&annotations), &mut |_, bytes| {
                text = String::from_utf8_lossy(&bytes).into_owned();
                Ok(())
            })?;
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let mut fields = line.split('\t');
                let (Some(file), Some(wnid)) = (fields.next(), fields.next()) else {
                    return Err(DataError::bad(
                        location.describe(&annotations),
                        Some(format!("line {}", i + 1)),
                        "expected `file<TAB>wnid<TAB>box`",
                    ));
                };
                let label = label_of(wnid).ok_or_else(|| {
                    DataError::bad(
                        location.describe(&annotations),
                        Some(format!("line {}", i + 1)),
                        format!("unknown wnid `{wnid}` (not in wnids.txt)"),
                    )
                })?;
                files.push((format!("{prefix}val/images/{file}"), label as u32));
            }
            files.sort();
        }
    }
    let count = files.len();
    let mut reader = location.reader()?;
    let describe = location.clone();
    let iter = files.into_iter().map(move |(name, label)| {
        let bytes = reader.read(&name)?;
        let (w, h, pixels) = decode_rgb(&bytes, None)
            .map_err(|e| DataError::bad(describe.describe(&name), None, e.0))?;
        if (w, h) != (SIZE, SIZE) {
            return Err(DataError::bad(
                describe.describe(&name),
                None,
                format!("image is {w}×{h}, expected {SIZE}×{SIZE}"),
            ));
        }
        Ok((pixels, label))
    });
    let split_name = match split {
        Split::Train => "train",
        Split::Test => "val",
    };
    Ok(Images {
        classes,
        height: SIZE,
        width: SIZE,
        description: format!("Tiny ImageNet {split_name}"),
        count,
        iter: Box::new(iter),
    })
}

#[cfg(test)]
mod tests {
    use super::super::image_io::tests::{CMYK_JPEG, grayscale_jpeg};
    use super::*;

    fn rgb_jpeg(value: u8) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(64, 64, image::Rgb([value, 255 - value, 7]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 100)
            .encode_image(&img)
            .unwrap();
        out
    }

    fn build(dir: &std::path::Path, annotations: &str) -> std::path::PathBuf {
        let gray = grayscale_jpeg(64, 64);
        let (a, b) = (rgb_jpeg(10), rgb_jpeg(200));
        let members: Vec<(&str, &[u8])> = vec![
            ("tiny-imagenet-200/wnids.txt", b"n02\nn01\n"),
            (
                "tiny-imagenet-200/words.txt",
                b"n01\tgoldfish, Carassius auratus\nn02\tEuropean fire salamander\nn99\tunused\n",
            ),
            ("tiny-imagenet-200/train/n01/images/n01_1.JPEG", &b),
            ("tiny-imagenet-200/train/n01/images/n01_0.JPEG", &a),
            (
                "tiny-imagenet-200/train/n01/n01_boxes.txt",
                b"n01_0.JPEG\t0\t0\t10\t10\n",
            ),
            ("tiny-imagenet-200/train/n02/images/n02_0.JPEG", &gray),
            ("tiny-imagenet-200/val/images/val_1.JPEG", &a),
            ("tiny-imagenet-200/val/images/val_0.JPEG", &gray),
            (
                "tiny-imagenet-200/val/val_annotations.txt",
                annotations.as_bytes(),
            ),
        ];
        let path = dir.join("tiny-imagenet-200.zip");
        std::fs::write(&path, crate::testutil::zip(&members)).unwrap();
        path
    }

    #[test]
    fn zip_train_and_val_in_order_with_grayscale_converted() {
        let dir = tempfile::tempdir().unwrap();
        let path = build(
            dir.path(),
            "val_1.JPEG\tn01\t0\t0\t1\t1\nval_0.JPEG\tn02\t0\t0\t1\t1\n",
        );
        let loc = Location::detect(&path).unwrap();
        let train = read(&loc, Split::Train).unwrap();
        assert_eq!(
            train.classes,
            ["n01 goldfish", "n02 European fire salamander"]
        );
        let images: Vec<_> = train.iter.map(Result::unwrap).collect();
        assert_eq!(images.iter().map(|i| i.1).collect::<Vec<_>>(), [0, 0, 1]);
        assert!(
            images[0].0[0].abs_diff(10) <= 2,
            "n01_0 first: {}",
            images[0].0[0]
        );
        assert!(images[1].0[0].abs_diff(200) <= 2);
        let gray = &images[2].0;
        assert!(gray.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
        let val: Vec<_> = read(&loc, Split::Test)
            .unwrap()
            .iter
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            val.iter().map(|i| i.1).collect::<Vec<_>>(),
            [1, 0],
            "sorted by file name: val_0 then val_1"
        );
    }

    #[test]
    fn unknown_wnid_in_val_annotations_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = build(
            dir.path(),
            "val_1.JPEG\tn01\t0\t0\t1\t1\nval_0.JPEG\tn07\t0\t0\t1\t1\n",
        );
        let err = read(&Location::detect(&path).unwrap(), Split::Test)
            .err()
            .unwrap()
            .to_string();
        assert!(err.ends_with("tiny-imagenet-200.zip:tiny-imagenet-200/val/val_annotations.txt (line 2): unknown wnid `n07` (not in wnids.txt)"), "{err}");
    }

    #[test]
    fn cmyk_images_are_converted_too() {
        // CMYK JPEGs exist in the wild: they are converted, not rejected.
        let (w, h, px) = decode_rgb(CMYK_JPEG, Some((64, super::super::Filter::Nearest))).unwrap();
        assert_eq!((w, h, px.len()), (64, 64, 64 * 64 * 3));
    }
}
