//! A preview grid: one row per class (the first ten classes), the first ten images of
//! each, so that a glance tells whether the data set was read right.

use std::path::Path;

use super::{DataError, Packed};

pub fn write(data: &Packed, path: &Path) -> Result<(), DataError> {
    const PER_ROW: usize = 10;
    const GAP: usize = 2;
    let header = data.header();
    let (h, w) = (header.height as usize, header.width as usize);
    let rows = header.classes.len().min(10);
    let mut picked: Vec<Vec<usize>> = vec![Vec::new(); rows];
    for i in 0..data.len() {
        let label = data.label(i) as usize;
        if label < rows && picked[label].len() < PER_ROW {
            picked[label].push(i);
            if picked.iter().all(|p| p.len() == PER_ROW) {
                break;
            }
        }
    }
    let (width, height) = (GAP + PER_ROW * (w + GAP), GAP + rows.max(1) * (h + GAP));
    let mut canvas = vec![24u8; width * height * 3];
    for (row, images) in picked.iter().enumerate() {
        for (col, &i) in images.iter().enumerate() {
            let src = data.image(i);
            let (x0, y0) = (GAP + col * (w + GAP), GAP + row * (h + GAP));
            for y in 0..h {
                let dst = ((y0 + y) * width + x0) * 3;
                canvas[dst..dst + w * 3].copy_from_slice(&src[y * w * 3..(y + 1) * w * 3]);
            }
        }
    }
    image::save_buffer(
        path,
        &canvas,
        width as u32,
        height as u32,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| {
        DataError::bad(
            path.display().to_string(),
            None,
            format!("cannot write the preview: {e}"),
        )
    })
}
