//! Line charts as PNG files, drawn pixel by pixel: a report needs a few curves and no
//! plotting library. Axis ranges and the legend go into the HTML beside the image.

use std::path::Path;

/// One curve: points (x, y) in order of x, and its colour.
pub struct Series<'a> {
    pub points: &'a [(f64, f64)],
    pub color: [u8; 3],
}

/// Colours of successive series, distinguishable on white.
pub const PALETTE: [[u8; 3]; 6] = [
    [31, 119, 180],
    [214, 39, 40],
    [44, 160, 44],
    [148, 103, 189],
    [255, 127, 14],
    [23, 190, 207],
];

const WIDTH: usize = 480;
const HEIGHT: usize = 240;
const MARGIN: usize = 12;

/// The x and y ranges the chart of `series` spans.
pub fn bounds(series: &[Series]) -> Option<((f64, f64), (f64, f64))> {
    let points = series.iter().flat_map(|s| s.points.iter());
    let finite: Vec<&(f64, f64)> = points
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let first = finite.first()?;
    let mut b = ((first.0, first.0), (first.1, first.1));
    for (x, y) in finite {
        b.0 = (b.0.0.min(*x), b.0.1.max(*x));
        b.1 = (b.1.0.min(*y), b.1.1.max(*y));
    }
    Some(b)
}

/// Draws `series` into a PNG at `path`.
pub fn write(series: &[Series], path: &Path) -> Result<(), image::ImageError> {
    let mut canvas = vec![255u8; WIDTH * HEIGHT * 3];
    let (x0, x1, y0, y1) = (MARGIN, WIDTH - MARGIN, MARGIN, HEIGHT - MARGIN);
    let mut put = |x: i64, y: i64, color: [u8; 3]| {
        if (0..WIDTH as i64).contains(&x) && (0..HEIGHT as i64).contains(&y) {
            let i = (y as usize * WIDTH + x as usize) * 3;
            canvas[i..i + 3].copy_from_slice(&color);
        }
    };
    // Frame and quarter lines.
    for k in 0..=4 {
        let gray = if k == 0 || k == 4 { [120; 3] } else { [225; 3] };
        let y = (y0 + (y1 - y0) * k / 4) as i64;
        let x = (x0 + (x1 - x0) * k / 4) as i64;
        for t in x0..=x1 {
            put(t as i64, y, gray);
        }
        for t in y0..=y1 {
            put(x, t as i64, gray);
        }
    }
    if let Some(((xmin, xmax), (ymin, ymax))) = bounds(series) {
        let span = |lo: f64, hi: f64| if hi > lo { hi - lo } else { 1.0 };
        let to_px = |x: f64, y: f64| {
            let px = x0 as f64 + (x - xmin) / span(xmin, xmax) * (x1 - x0) as f64;
            let py = y1 as f64 - (y - ymin) / span(ymin, ymax) * (y1 - y0) as f64;
            (px.round() as i64, py.round() as i64)
        };
        for s in series {
            let mut last: Option<(i64, i64)> = None;
            for &(x, y) in s.points {
                if !(x.is_finite() && y.is_finite()) {
                    last = None;
                    continue;
                }
                let p = to_px(x, y);
                line(last.unwrap_or(p), p, &mut |x, y| put(x, y, s.color));
                last = Some(p);
            }
        }
    }
    image::save_buffer(
        path,
        &canvas,
        WIDTH as u32,
        HEIGHT as u32,
        image::ExtendedColorType::Rgb8,
    )
}

/// Bresenham's line from `a` to `b`.
fn line(a: (i64, i64), b: (i64, i64), put: &mut dyn FnMut(i64, i64)) {
    let (dx, dy) = ((b.0 - a.0).abs(), -(b.1 - a.1).abs());
    let (sx, sy) = ((b.0 - a.0).signum(), (b.1 - a.1).signum());
    let (mut x, mut y, mut err) = (a.0, a.1, dx + dy);
    loop {
        put(x, y);
        if (x, y) == b {
            return;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// A running mean over `window` points, so that per-step losses read as a trend.
pub fn smooth(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let window = window.max(1);
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            sum += y;
            if i >= window {
                sum -= points[i - window].1;
            }
            (x, sum / (i + 1).min(window) as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_each_series_in_its_colour() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        let up = [(0.0, 0.0), (1.0, 1.0)];
        let flat = [(0.0, 0.5), (1.0, 0.5)];
        let series = [
            Series {
                points: &up,
                color: PALETTE[0],
            },
            Series {
                points: &flat,
                color: PALETTE[1],
            },
        ];
        assert_eq!(bounds(&series), Some(((0.0, 1.0), (0.0, 1.0))));
        write(&series, &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (480, 240));
        // The rising line starts at the bottom left and ends at the top right.
        assert_eq!(img.get_pixel(12, 228).0, PALETTE[0]);
        assert_eq!(img.get_pixel(467, 12).0, PALETTE[0]);
        assert_eq!(img.get_pixel(100, 120).0, PALETTE[1]);
    }

    #[test]
    fn running_mean() {
        let points = [(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)];
        assert_eq!(smooth(&points, 2), [(0.0, 1.0), (1.0, 2.0), (2.0, 4.0)]);
    }
}
