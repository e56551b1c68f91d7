//! A user's own images: one sub-folder per class, PNG or JPEG files in each.
//!
//! Classes are the sub-folder names in sorted order; files are read in sorted order.
//! Without `resize` every image must have the size of the first; with it, each is
//! resized to `size × size` with the given filter. Files that are not PNG or JPEG (by
//! extension) are skipped and counted in the description.

use std::path::{Path, PathBuf};

use super::{DataError, Filter, Images, decode_rgb};

pub(crate) fn is_image(path: &Path) -> bool {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg"))
}

pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(DataError::io(dir))?
        .map(|e| e.map(|e| e.path()).map_err(DataError::io(dir)))
        .collect::<Result<_, _>>()?;
    entries.sort();
    Ok(entries)
}

pub fn read(root: &Path, resize: Option<(u32, Filter)>) -> Result<Images, DataError> {
    let mut classes = Vec::new();
    let mut files: Vec<(PathBuf, u32)> = Vec::new();
    let mut skipped = Vec::new();
    for class_dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
        let label = classes.len() as u32;
        let mut found = 0;
        for file in sorted_entries(&class_dir)? {
            if file.is_file() && is_image(&file) {
                files.push((file, label));
                found += 1;
            } else {
                skipped.push(file);
            }
        }
        if found == 0 {
            return Err(DataError::bad(
                class_dir.display().to_string(),
                None,
                "class folder holds no PNG or JPEG images; remove it or add images",
            ));
        }
        classes.push(
            class_dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
    }
    if classes.is_empty() {
        return Err(DataError::bad(
            root.display().to_string(),
            None,
            "no class sub-folders: expected one folder of images per class",
        ));
    }
    let decode = move |path: &Path| -> Result<(u32, u32, Vec<u8>), DataError> {
        let bytes = std::fs::read(path).map_err(DataError::io(path))?;
        decode_rgb(&bytes, resize)
            .map_err(|e| DataError::bad(path.display().to_string(), None, e.0))
    };
    let (width, height) = match resize {
        Some((size, _)) => (size, size),
        None => {
            let (w, h, _) = decode(&files[0].0)?;
            (w, h)
        }
    };
    let count = files.len();
    let iter = decoded_in_order(files, move |path| {
        let (w, h, pixels) = decode(path)?;
        if (w, h) != (width, height) {
            return Err(DataError::bad(
                path.display().to_string(),
                None,
                format!(
                    "image is {w}×{h} but the first is {width}×{height}; set `resize` to bring all to one size"
                ),
            ));
        }
        Ok(pixels)
    });
    // The folder's name, not its path: outputs must not depend on where the checkout is.
    let name = root
        .file_name()
        .map_or_else(|| ".".into(), |n| n.to_string_lossy().into_owned());
    let mut description = format!("image folder {name}");
    if !skipped.is_empty() {
        let relative = |p: &PathBuf| p.strip_prefix(root).unwrap_or(p).display().to_string();
        let names: Vec<String> = skipped.iter().take(3).map(relative).collect();
        description += &format!(
            " ({} non-image files skipped: {}{})",
            skipped.len(),
            names.join(", "),
            if skipped.len() > 3 { ", …" } else { "" }
        );
    }
    Ok(Images {
        classes,
        height,
        width,
        description,
        count,
        iter: Box::new(iter),
    })
}

/// Files decoded on the current thread pool a chunk at a time, yielded in their order:
/// decoding (JPEG above all) is most of the time of packing a folder of images.
pub(crate) fn decoded_in_order<F>(
    files: Vec<(PathBuf, u32)>,
    decode: F,
) -> impl Iterator<Item = Result<super::LabelledImage, DataError>> + Send
where
    F: Fn(&Path) -> Result<Vec<u8>, DataError> + Send + Sync + 'static,
{
    use rayon::prelude::*;
    const CHUNK: usize = 256;
    let mut files = files.into_iter();
    std::iter::from_fn(move || {
        let chunk: Vec<(PathBuf, u32)> = files.by_ref().take(CHUNK).collect();
        (!chunk.is_empty()).then(|| {
            chunk
                .par_iter()
                .map(|(path, label)| decode(path).map(|pixels| (pixels, *label)))
                .collect::<Vec<_>>()
        })
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, w: u32, h: u32, v: u8) {
        image::RgbImage::from_pixel(w, h, image::Rgb([v, v / 2, 255 - v]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn classes_from_folders_and_exact_pixels() {
        let dir = tempfile::tempdir().unwrap();
        for (class, v) in [("dogs", 10), ("cats", 20)] {
            std::fs::create_dir_all(dir.path().join(class)).unwrap();
            png(&dir.path().join(class).join("b.png"), 4, 3, v + 1);
            png(&dir.path().join(class).join("a.png"), 4, 3, v);
        }
        std::fs::write(dir.path().join("cats/notes.txt"), "x").unwrap();
        let images = read(dir.path(), None).unwrap();
        assert_eq!(images.classes, ["cats", "dogs"]);
        assert_eq!((images.width, images.height), (4, 3));
        assert!(
            images
                .description
                .ends_with("(1 non-image files skipped: cats/notes.txt)"),
            "{}",
            images.description
        );
        let all: Vec<_> = images.iter.map(Result::unwrap).collect();
        assert_eq!(
            all.iter().map(|i| (i.0[0], i.1)).collect::<Vec<_>>(),
            [(20, 0), (21, 0), (10, 1), (11, 1)]
        );
        assert_eq!(&all[0].0[..3], &[20, 10, 235]);
    }

    fn first_error(mut images: Images) -> String {
        images
            .iter
            .find_map(Result::err)
            .expect("an image fails")
            .to_string()
    }

    #[test]
    fn unreadable_image_mixed_sizes_and_empty_class_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        png(&dir.path().join("a/1.png"), 4, 4, 1);
        std::fs::write(dir.path().join("a/2.jpg"), b"garbage").unwrap();
        let err = first_error(read(dir.path(), None).unwrap());
        assert!(
            err.starts_with(&format!(
                "{}: cannot decode the image",
                dir.path().join("a/2.jpg").display()
            )),
            "{err}"
        );

        std::fs::remove_file(dir.path().join("a/2.jpg")).unwrap();
        png(&dir.path().join("a/3.png"), 5, 4, 1);
        let err = first_error(read(dir.path(), None).unwrap());
        assert!(
            err.contains("a/3.png: image is 5×4 but the first is 4×4; set `resize`"),
            "{err}"
        );
        let resized = read(dir.path(), Some((8, Filter::Bicubic))).unwrap();
        assert_eq!(
            resized
                .iter
                .map(Result::unwrap)
                .map(|i| i.0.len())
                .collect::<Vec<_>>(),
            [192, 192]
        );

        std::fs::create_dir_all(dir.path().join("empty")).unwrap();
        let err = read(dir.path(), None).err().unwrap().to_string();
        assert!(
            err.ends_with(
                "empty: class folder holds no PNG or JPEG images; remove it or add images"
            ),
            "{err}"
        );
    }
}
