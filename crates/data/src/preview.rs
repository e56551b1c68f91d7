//! A preview grid: one row per class (the first ten classes), the first ten images of
//! each, so that a glance tells whether the data set was read right.

use std::path::Path;

use super::{DataError, Header, Packed};

/// Where the images of a preview lie, so that a report can label its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// One row per class, the first `rows` classes.
    pub rows: usize,
    pub per_row: usize,
    /// Pixels between images and around the grid.
    pub gap: usize,
    /// The height and width of one image.
    pub image: (usize, usize),
    /// The whole grid's width and height.
    pub size: (usize, usize),
}

impl Layout {
    pub fn of(header: &Header) -> Layout {
        let (per_row, gap) = (10, 2);
        let image = (header.height as usize, header.width as usize);
        let rows = header.classes.len().min(10);
        let size = (
            gap + per_row * (image.1 + gap),
            gap + rows.max(1) * (image.0 + gap),
        );
        Layout {
            rows,
            per_row,
            gap,
            image,
            size,
        }
    }

    /// The top edge of row `row`.
    pub fn row_top(&self, row: usize) -> usize {
        self.gap + row * (self.image.0 + self.gap)
    }
}

pub fn write(data: &Packed, path: &Path) -> Result<(), DataError> {
    let layout = Layout::of(data.header());
    let Layout {
        rows,
        per_row,
        gap,
        image: (h, w),
        size: (width, height),
    } = layout;
    let mut picked: Vec<Vec<usize>> = vec![Vec::new(); rows];
    for i in 0..data.len() {
        let label = data.label(i) as usize;
        if label < rows && picked[label].len() < per_row {
            picked[label].push(i);
            if picked.iter().all(|p| p.len() == per_row) {
                break;
            }
        }
    }
    let mut canvas = vec![24u8; width * height * 3];
    for (row, images) in picked.iter().enumerate() {
        for (col, &i) in images.iter().enumerate() {
            let src = data.image(i);
            let (x0, y0) = (gap + col * (w + gap), layout.row_top(row));
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
