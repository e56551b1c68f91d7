//! A deterministic, class-conditional image set to learn from without downloading
//! anything: ten kinds of shapes, each image with its own colour, size, position and
//! rotation, on a textured background (stripes or checks in other colours, with noise).
//! The class is the shape, so a conditional generator has something real to learn and a
//! classifier something real to tell apart. Image `i` of a split depends only on the
//! seed, the split and `i`.

use explain::Explain;
use serde::{Deserialize, Serialize};

use super::{Images, Split};
use rng::Rng;

pub const SHAPES: [&str; 10] = [
    "disc", "square", "triangle", "cross", "ring", "diamond", "bar", "star", "crescent", "frame",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Synthetic {
    /// The images follow from it: the same seed, the same images.
    #[serde(default)]
    pub seed: u64,
    /// Images per class in this split.
    pub per_class: u32,
    /// Side in pixels.
    #[serde(default = "default_size")]
    pub size: u32,
    /// How many of the ten shapes to use (the first ones).
    #[serde(default = "default_classes")]
    pub classes: u32,
    /// Flat backgrounds, no noise, and every shape centred, upright and of one size
    /// (colours still vary): an easy set, for GANs trained in a few minutes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plain: bool,
}

fn default_size() -> u32 {
    32
}

fn default_classes() -> u32 {
    10
}

/// Whether the point (u, v), in shape coordinates (the shape spans about [-1, 1]), is
/// inside shape `kind`.
fn inside(kind: usize, u: f32, v: f32) -> bool {
    let r = (u * u + v * v).sqrt();
    match kind {
        0 => r < 0.9,
        1 => u.abs() < 0.75 && v.abs() < 0.75,
        2 => v < 0.7 && 1.55 * u.abs() < v + 0.85,
        3 => (u.abs() < 0.28 && v.abs() < 0.9) || (v.abs() < 0.28 && u.abs() < 0.9),
        4 => r < 0.9 && r > 0.55,
        5 => u.abs() + v.abs() < 0.95,
        6 => u.abs() < 0.95 && v.abs() < 0.3,
        7 => {
            let angle = v.atan2(u);
            r < 0.45 + 0.45 * (0.5 + 0.5 * (5.0 * angle).cos()).powf(2.0)
        }
        8 => r < 0.9 && ((u - 0.4).powi(2) + v * v).sqrt() > 0.7,
        _ => u.abs().max(v.abs()) < 0.9 && u.abs().max(v.abs()) > 0.6,
    }
}

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h = h.rem_euclid(1.0) * 6.0;
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [r + m, g + m, b + m]
}

/// Image `index` of class `label`: RGB, `size × size`.
pub fn image(seed: u64, split: Split, label: u32, index: u64, size: u32, plain: bool) -> Vec<u8> {
    let split_stream = match split {
        Split::Train => 0,
        Split::Test => 1 << 40,
    };
    let mut rng = Rng::stream(seed, split_stream + index);
    let hue = rng.f32();
    let fg = hsv(hue, rng.range(0.6, 1.0), rng.range(0.7, 1.0));
    let bg_hue = hue + rng.range(0.25, 0.75);
    let bg_a = hsv(bg_hue, rng.range(0.2, 0.6), rng.range(0.2, 0.5));
    let bg_b = hsv(
        bg_hue + rng.range(-0.1, 0.1),
        rng.range(0.2, 0.6),
        rng.range(0.35, 0.65),
    );
    let period = rng.range(3.0, 9.0);
    let pattern = rng.below(3);
    let (stripe_c, stripe_s) = {
        let t = rng.range(0.0, std::f32::consts::PI);
        (t.cos(), t.sin())
    };
    let scale = rng.range(0.45, 0.75) * size as f32 / 2.0;
    let cx = size as f32 / 2.0 + rng.range(-0.2, 0.2) * size as f32;
    let cy = size as f32 / 2.0 + rng.range(-0.2, 0.2) * size as f32;
    let angle = rng.range(0.0, std::f32::consts::TAU);
    let noise = rng.range(0.0, 0.08);
    // Drawn either way, so that the random stream stays the same.
    let (bg_b, noise) = if plain { (bg_a, 0.0) } else { (bg_b, noise) };
    let (scale, cx, cy, angle) = if plain {
        let centre = size as f32 / 2.0;
        (0.7 * centre, centre, centre, 0.0)
    } else {
        (scale, cx, cy, angle)
    };
    let (cos, sin) = (angle.cos(), angle.sin());
    let mut out = Vec::with_capacity((size * size * 3) as usize);
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32, y as f32);
            let t = match pattern {
                0 => ((fx * stripe_c + fy * stripe_s) / period).floor() as i64 % 2 == 0,
                1 => ((fx / period).floor() as i64 + (fy / period).floor() as i64) % 2 == 0,
                _ => ((fx - cx).hypot(fy - cy) / period).floor() as i64 % 2 == 0,
            };
            let bg = if t { bg_a } else { bg_b };
            // Four samples per pixel soften the shape's edge.
            let mut cover = 0.0;
            for (ox, oy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (dx, dy) = ((fx + ox - cx) / scale, (fy + oy - cy) / scale);
                let (u, v) = (cos * dx + sin * dy, -sin * dx + cos * dy);
                if inside(label as usize, u, v) {
                    cover += 0.25;
                }
            }
            for c in 0..3 {
                let jitter = noise * (rng.f32() - 0.5);
                let value = cover * fg[c] + (1.0 - cover) * bg[c] + jitter;
                out.push((value.clamp(0.0, 1.0) * 255.0).round() as u8);
            }
        }
    }
    out
}

pub fn read(params: &Synthetic, split: Split) -> Images {
    let Synthetic {
        seed,
        per_class,
        size,
        classes,
        plain,
    } = params.clone();
    let classes = classes.min(SHAPES.len() as u32);
    // Classes interleaved (0, 1, …, 9, 0, 1, …) so any prefix is balanced.
    let count = (per_class * classes) as usize;
    let iter = (0..count as u64).map(move |i| {
        let label = (i % classes as u64) as u32;
        Ok((image(seed, split, label, i, size, plain), label))
    });
    let split_name = match split {
        Split::Train => "train",
        Split::Test => "test",
    };
    Images {
        classes: SHAPES[..classes as usize]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        height: size,
        width: size,
        description: format!(
            "synthetic shapes {split_name} (seed {seed}{})",
            if plain { ", plain" } else { "" }
        ),
        count,
        iter: Box::new(iter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        let a = image(3, Split::Train, 2, 5, 32, false);
        assert_eq!(a, image(3, Split::Train, 2, 5, 32, false));
        assert_ne!(a, image(3, Split::Test, 2, 5, 32, false));
        assert_ne!(a, image(4, Split::Train, 2, 5, 32, false));
        assert_ne!(a, image(3, Split::Train, 2, 5, 32, true));
        assert_eq!(a.len(), 32 * 32 * 3);
    }

    #[test]
    fn every_shape_covers_a_distinct_area() {
        let masks: Vec<Vec<bool>> = (0..10)
            .map(|k| {
                (0..400)
                    .map(|i| {
                        inside(
                            k,
                            (i % 20) as f32 / 10.0 - 1.0,
                            (i / 20) as f32 / 10.0 - 1.0,
                        )
                    })
                    .collect()
            })
            .collect();
        for (k, m) in masks.iter().enumerate() {
            let area = m.iter().filter(|&&b| b).count();
            assert!(area > 40 && area < 360, "shape {k} area {area}");
            for (j, other) in masks.iter().enumerate().skip(k + 1) {
                let differ = m.iter().zip(other).filter(|(a, b)| a != b).count();
                assert!(differ > 20, "shapes {k} and {j} differ in {differ} points");
            }
        }
    }

    #[test]
    fn plain_images_are_a_centred_shape_on_a_flat_background() {
        let size = 16;
        let pixel = |img: &[u8], x: usize, y: usize| img[(y * size + x) * 3..][..3].to_vec();
        for index in 0..5 {
            let img = image(1, Split::Train, 0, index, size as u32, true);
            let corner = pixel(&img, 0, 0);
            assert_eq!(pixel(&img, 15, 15), corner);
            assert_eq!(pixel(&img, 0, 15), corner);
            assert_ne!(pixel(&img, 8, 8), corner, "the disc covers the centre");
        }
        // Same shape, place and size: only the colours differ between two discs.
        let mask = |index| {
            let img = image(1, Split::Train, 0, index, size as u32, true);
            let corner = pixel(&img, 0, 0);
            (0..size * size)
                .map(|p| pixel(&img, p % size, p / size) != corner)
                .collect::<Vec<_>>()
        };
        assert_eq!(mask(0), mask(5));
    }

    #[test]
    fn balanced_labels() {
        let images = read(
            &Synthetic {
                seed: 0,
                per_class: 3,
                size: 16,
                classes: 4,
                plain: false,
            },
            Split::Train,
        );
        assert_eq!(images.classes, ["disc", "square", "triangle", "cross"]);
        let labels: Vec<u32> = images.iter.map(|r| r.unwrap().1).collect();
        assert_eq!(labels, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    }
}
