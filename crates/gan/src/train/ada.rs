//! ADA's augmentation pipeline (Karras et al., 2020), as StudioGAN v0.4 applies it
//! (`utils/ada_aug.py`, `apply_ada`), on every image D sees, real and fake, in D, G and
//! R1 steps. Per image, each transform of the pipeline fires with probability p (the
//! adaptive p that `train/apa.rs` moves) and draws its amount:
//!
//! - blit: x-flip, a multiple of 90° rotation, an integer translation by up to an
//!   eighth of each side;
//! - geom: isotropic scaling (log2-normal, σ 0.2), a rotation before and one after an
//!   anisotropic scaling (each with the probability that makes "either" p), fractional
//!   translation (normal, σ an eighth of each side);
//! - color: brightness, contrast, luma flip, hue rotation about the luma axis,
//!   saturation.
//!
//! The geometric transforms compose into one inverse 2-D matrix per image, executed as
//! the reference does: reflect-pad by what the batch's corners need, upsample 2× with
//! the Symlet-6 low-pass filter, resample bilinearly (`grid_sample`, zeros outside),
//! downsample 2× with the same filter. The colour transforms compose into one 4×4 matrix
//! on (r, g, b, 1). The reference runs the geometric (colour) part whenever its
//! pipeline has a geometric (colour) transform, firing or not, and so does this.
//!
//! For given draws every step is affine in the images (the sampling positions depend on
//! the draws only), so burn's autodiff gives G's gradient through it and R1's forward
//! mode goes through it as through DiffAugment (`penalty.rs`).

use std::f64::consts::PI;

use burn::prelude::*;
use rng::Rng;

use crate::config::AdaPipeline;
use crate::upfirdn2d::{along_axes, axis_matrix, down_padding, up_padding, upfirdn1d};

/// ADA's transforms, in the order the pipeline draws and composes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Xflip,
    Rotate90,
    Xint,
    Scale,
    PreRotate,
    Aniso,
    PostRotate,
    Xfrac,
    Brightness,
    Contrast,
    Lumaflip,
    Hue,
    Saturation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Blit,
    Geom,
    Color,
}

impl Transform {
    pub const ALL: [Transform; 13] = [
        Transform::Xflip,
        Transform::Rotate90,
        Transform::Xint,
        Transform::Scale,
        Transform::PreRotate,
        Transform::Aniso,
        Transform::PostRotate,
        Transform::Xfrac,
        Transform::Brightness,
        Transform::Contrast,
        Transform::Lumaflip,
        Transform::Hue,
        Transform::Saturation,
    ];

    /// Its name in the parity fixtures (`tools/fixtures/ada.py`).
    pub fn name(self) -> &'static str {
        match self {
            Transform::Xflip => "xflip",
            Transform::Rotate90 => "rotate90",
            Transform::Xint => "xint",
            Transform::Scale => "scale",
            Transform::PreRotate => "pre_rotate",
            Transform::Aniso => "aniso",
            Transform::PostRotate => "post_rotate",
            Transform::Xfrac => "xfrac",
            Transform::Brightness => "brightness",
            Transform::Contrast => "contrast",
            Transform::Lumaflip => "lumaflip",
            Transform::Hue => "hue",
            Transform::Saturation => "saturation",
        }
    }

    fn group(self) -> Group {
        match self {
            Transform::Xflip | Transform::Rotate90 | Transform::Xint => Group::Blit,
            Transform::Scale
            | Transform::PreRotate
            | Transform::Aniso
            | Transform::PostRotate
            | Transform::Xfrac => Group::Geom,
            _ => Group::Color,
        }
    }

    /// The values each image draws for it, and whether they are normal (else uniform
    /// in [0, 1)).
    fn values(self) -> (usize, bool) {
        match self {
            Transform::Xint => (2, false),
            Transform::Xfrac => (2, true),
            Transform::Scale
            | Transform::Aniso
            | Transform::Brightness
            | Transform::Contrast
            | Transform::Saturation => (1, true),
            _ => (1, false),
        }
    }

    fn in_pipeline(self, pipeline: AdaPipeline) -> bool {
        let groups: &[Group] = match pipeline {
            AdaPipeline::Blit => &[Group::Blit],
            AdaPipeline::Geom => &[Group::Geom],
            AdaPipeline::Color => &[Group::Color],
            AdaPipeline::Bg => &[Group::Blit, Group::Geom],
            AdaPipeline::Bgc => &[Group::Blit, Group::Geom, Group::Color],
        };
        groups.contains(&self.group())
    }
}

/// One transform's draws for a batch: `k` values per image, and each image's uniform
/// that decides whether it fires.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    pub transform: Transform,
    pub values: Vec<f64>,
    pub gates: Vec<f64>,
}

/// One batch's random choices, in the order the reference asks for them, and the p
/// they are compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct Draws {
    pub p: f64,
    /// Every transform of the pipeline, in [`Transform::ALL`]'s order.
    pub transforms: Vec<Drawn>,
}

type Matrix<const N: usize> = [[f64; N]; N];

fn identity<const N: usize>() -> Matrix<N> {
    std::array::from_fn(|i| std::array::from_fn(|j| if i == j { 1.0 } else { 0.0 }))
}

fn product<const N: usize>(a: &Matrix<N>, b: &Matrix<N>) -> Matrix<N> {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..N).map(|k| a[i][k] * b[k][j]).sum()))
}

fn translate2d(tx: f64, ty: f64) -> Matrix<3> {
    [[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]]
}

fn scale2d(sx: f64, sy: f64) -> Matrix<3> {
    [[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]]
}

fn rotate2d(theta: f64) -> Matrix<3> {
    [
        [theta.cos(), (-theta).sin(), 0.0],
        [theta.sin(), theta.cos(), 0.0],
        [0.0, 0.0, 1.0],
    ]
}

/// The luma axis, (1, 1, 1, 0)/√3.
fn luma() -> [f64; 4] {
    let v = 1.0 / 3f64.sqrt();
    [v, v, v, 0.0]
}

/// v vᵀ of the luma axis.
fn luma_outer() -> Matrix<4> {
    let v = luma();
    std::array::from_fn(|i| std::array::from_fn(|j| v[i] * v[j]))
}

/// A rotation by θ about the luma axis (Rodrigues' formula).
fn rotate3d(theta: f64) -> Matrix<4> {
    let [vx, vy, vz, _] = luma();
    let (s, c) = (theta.sin(), theta.cos());
    let cc = 1.0 - c;
    [
        [
            vx * vx * cc + c,
            vx * vy * cc - vz * s,
            vx * vz * cc + vy * s,
            0.0,
        ],
        [
            vy * vx * cc + vz * s,
            vy * vy * cc + c,
            vy * vz * cc - vx * s,
            0.0,
        ],
        [
            vz * vx * cc - vy * s,
            vz * vy * cc + vx * s,
            vz * vz * cc + c,
            0.0,
        ],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

/// Symlet 6's low-pass decomposition filter (as wavelet tables give it), which the
/// reference normalizes to a unit sum for its geometric resampling.
fn geometry_taps() -> Vec<f64> {
    const SYM6: [f64; 12] = [
        0.015404109327027373,
        0.0034907120842174702,
        -0.11799011114819057,
        -0.048311742585633,
        0.4910559419267466,
        0.787641141030194,
        0.3379294217276218,
        -0.07263752278646252,
        -0.021060292512300564,
        0.04472490177066578,
        0.0017677118642428036,
        -0.007800708325034148,
    ];
    let sum: f64 = SYM6.iter().sum();
    SYM6.iter().map(|v| v / sum).collect()
}

impl Draws {
    /// Draws for `n` images of `pipeline` from `rng`: per transform, every image's
    /// values, then every image's gate.
    pub fn draw(pipeline: AdaPipeline, n: usize, p: f64, rng: &mut Rng) -> Draws {
        let transforms = Transform::ALL
            .into_iter()
            .filter(|t| t.in_pipeline(pipeline))
            .map(|transform| {
                let (k, normal) = transform.values();
                let values = (0..n * k)
                    .map(|_| if normal { rng.normal() } else { rng.f64() })
                    .collect();
                let gates = (0..n).map(|_| rng.f64()).collect();
                Drawn {
                    transform,
                    values,
                    gates,
                }
            })
            .collect();
        Draws { p, transforms }
    }

    /// Image `i`'s draws of the transforms of `group`, each with its values and
    /// whether it fires.
    fn fired(&self, group: Group, i: usize) -> impl Iterator<Item = (Transform, &[f64], bool)> {
        // Two rotations, each with this probability, make "either" p.
        let p_rotate = 1.0 - (1.0 - self.p).clamp(0.0, 1.0).sqrt();
        self.transforms
            .iter()
            .filter(move |d| d.transform.group() == group)
            .map(move |d| {
                let (k, _) = d.transform.values();
                let threshold = match d.transform {
                    Transform::PreRotate | Transform::PostRotate => p_rotate,
                    _ => self.p,
                };
                let fires = d.gates[i] < threshold;
                (d.transform, &d.values[i * k..(i + 1) * k], fires)
            })
    }

    /// Image `i`'s inverse geometric transform (output pixel → input pixel, centred
    /// coordinates) of an `h`×`w` image, when the pipeline has geometric transforms.
    fn geometry(&self, i: usize, h: usize, w: usize) -> Option<Matrix<3>> {
        let (w, h) = (w as f64, h as f64);
        let mut g = None;
        for group in [Group::Blit, Group::Geom] {
            for (transform, v, fires) in self.fired(group, i) {
                let pick = |value: f64, otherwise: f64| if fires { value } else { otherwise };
                let step = match transform {
                    Transform::Xflip => {
                        scale2d(1.0 / (1.0 - 2.0 * pick((v[0] * 2.0).floor(), 0.0)), 1.0)
                    }
                    Transform::Rotate90 => rotate2d(PI / 2.0 * pick((v[0] * 4.0).floor(), 0.0)),
                    Transform::Xint => {
                        let t = |u: f64| pick((u * 2.0 - 1.0) * 0.125, 0.0);
                        translate2d(
                            -(t(v[0]) * w).round_ties_even(),
                            -(t(v[1]) * h).round_ties_even(),
                        )
                    }
                    Transform::Scale => {
                        let s = pick((v[0] * 0.2).exp2(), 1.0);
                        scale2d(1.0 / s, 1.0 / s)
                    }
                    Transform::PreRotate | Transform::PostRotate => {
                        rotate2d(pick((v[0] * 2.0 - 1.0) * PI, 0.0))
                    }
                    Transform::Aniso => {
                        let s = pick((v[0] * 0.2).exp2(), 1.0);
                        scale2d(1.0 / s, 1.0 / (1.0 / s))
                    }
                    Transform::Xfrac => {
                        let t = |x: f64| pick(x * 0.125, 0.0);
                        translate2d(-(t(v[0]) * w), -(t(v[1]) * h))
                    }
                    _ => unreachable!("a colour transform among the geometric ones"),
                };
                g = Some(product(&g.unwrap_or_else(identity), &step));
            }
        }
        g
    }

    /// Image `i`'s colour transform of (r, g, b, 1), when the pipeline has colour
    /// transforms.
    fn color(&self, i: usize) -> Option<Matrix<4>> {
        let mut c = None;
        for (transform, v, fires) in self.fired(Group::Color, i) {
            let pick = |value: f64, otherwise: f64| if fires { value } else { otherwise };
            let step = match transform {
                Transform::Brightness => {
                    let b = pick(v[0] * 0.2, 0.0);
                    let mut m = identity();
                    (0..3).for_each(|k| m[k][3] = b);
                    m
                }
                Transform::Contrast => {
                    let s = pick((v[0] * 0.5).exp2(), 1.0);
                    let mut m = identity();
                    (0..3).for_each(|k| m[k][k] = s);
                    m
                }
                Transform::Lumaflip => {
                    let flip = pick((v[0] * 2.0).floor(), 0.0);
                    let (e, vv) = (identity::<4>(), luma_outer());
                    std::array::from_fn(|r| {
                        std::array::from_fn(|k| e[r][k] - 2.0 * vv[r][k] * flip)
                    })
                }
                Transform::Hue => rotate3d(pick((v[0] * 2.0 - 1.0) * PI, 0.0)),
                Transform::Saturation => {
                    let s = pick(v[0].exp2(), 1.0);
                    let (e, vv) = (identity::<4>(), luma_outer());
                    std::array::from_fn(|r| {
                        std::array::from_fn(|k| vv[r][k] + (e[r][k] - vv[r][k]) * s)
                    })
                }
                _ => unreachable!("a geometric transform among the colour ones"),
            };
            c = Some(product(&step, &c.unwrap_or_else(identity)));
        }
        c
    }
}

/// The augmented images (`[n, 3, h, w]`).
pub fn apply<B: Backend>(x: Tensor<B, 4>, draws: &Draws) -> Tensor<B, 4> {
    let [n, _, h, w] = x.dims();
    let geometry: Option<Vec<_>> = (0..n).map(|i| draws.geometry(i, h, w)).collect();
    let x = match geometry {
        Some(g) => transform(x, g),
        None => x,
    };
    let color: Option<Vec<_>> = (0..n).map(|i| draws.color(i)).collect();
    match color {
        Some(c) => recolor(x, &c),
        None => x,
    }
}

/// The geometric part: pad, upsample, resample, downsample. Padding and upsampling
/// (and downsampling) are linear maps along each axis, run as matrix products.
fn transform<B: Backend>(x: Tensor<B, 4>, mut g: Vec<Matrix<3>>) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    let filter = geometry_taps();
    let taps = filter.len();
    let pad = (taps / 4) as f64;
    // The margin the transformed corners need (max over the batch of −x, −y, x, y),
    // beyond the filter's, within the image's own size (reflection's limit).
    let (cx, cy) = ((w - 1) as f64 / 2.0, (h - 1) as f64 / 2.0);
    let corners = [[-cx, -cy], [cx, -cy], [cx, cy], [-cx, cy]];
    let mut reach = [f64::NEG_INFINITY; 4];
    for m in &g {
        for [px, py] in corners {
            let x = m[0][0] * px + m[0][1] * py + m[0][2];
            let y = m[1][0] * px + m[1][1] * py + m[1][2];
            for (r, v) in reach.iter_mut().zip([-x, -y, x, y]) {
                *r = r.max(v);
            }
        }
    }
    let margin = |k: usize| {
        let (centre, side) = if k.is_multiple_of(2) {
            (cx, w)
        } else {
            (cy, h)
        };
        (reach[k] + (pad * 2.0 - centre))
            .max(0.0)
            .min((side - 1) as f64)
            .ceil() as usize
    };
    let (mx0, my0, mx1, my1) = (margin(0), margin(1), margin(2), margin(3));
    let origin = translate2d(
        (mx0 as f64 - mx1 as f64) / 2.0,
        (my0 as f64 - my1 as f64) / 2.0,
    );
    // upsample2d's gain of 4, its square root per axis.
    let upsample = |len: usize, (before, after): (usize, usize)| {
        axis_matrix(len, |v| {
            let padded = reflect(v, before, after);
            upfirdn1d(&padded, &filter, (2, 1), up_padding(taps, 2), false, 2.0)
        })
    };
    let (ys, hi) = upsample(h, (my0, my1));
    let (xs, wi) = upsample(w, (mx0, mx1));
    // Channels first: a channel of every image is one row for `sample`'s gather.
    let x = along_axes(x.swap_dims(0, 1), (&ys, hi), (&xs, wi));
    let (ho, wo) = ((h + 2 * pad as usize) * 2, (w + 2 * pad as usize) * 2);
    for m in g.iter_mut() {
        let m2 = product(&origin, m);
        let m2 = product(&product(&scale2d(2.0, 2.0), &m2), &scale2d(0.5, 0.5));
        let m2 = product(
            &product(&translate2d(-0.5, -0.5), &m2),
            &translate2d(0.5, 0.5),
        );
        *m = product(
            &product(&scale2d(2.0 / wi as f64, 2.0 / hi as f64), &m2),
            &scale2d(1.0 / (2.0 / wo as f64), 1.0 / (2.0 / ho as f64)),
        );
    }
    let x = sample(x, &g, (ho, wo));
    let (p0, p1) = down_padding(taps, 2);
    let crop = 2 * pad as isize;
    let downsample = |len: usize| {
        axis_matrix(len, |v| {
            upfirdn1d(v, &filter, (1, 2), (p0 - crop, p1 - crop), true, 1.0)
        })
    };
    let (ys, h) = downsample(ho);
    let (xs, w) = downsample(wo);
    along_axes(x, (&ys, h), (&xs, w)).swap_dims(0, 1)
}

/// `v` padded by reflection (the edge sample not repeated), as torch's `reflect`.
fn reflect(v: &[f64], before: usize, after: usize) -> Vec<f64> {
    let n = v.len() as isize;
    (-(before as isize)..n + after as isize)
        .map(|i| v[i.abs().min(2 * (n - 1) - i) as usize])
        .collect()
}

/// `grid_sample` (bilinear, zeros outside, corners not aligned) of `x` (channels
/// first, `[c, n, hi, wi]`) on the grid `affine_grid` makes of each image's normalized
/// matrix, as a weighted sum of four gathers whose indices and weights depend on the
/// draws only.
fn sample<B: Backend>(x: Tensor<B, 4>, g: &[Matrix<3>], (ho, wo): (usize, usize)) -> Tensor<B, 4> {
    let [c, n, hi, wi] = x.dims();
    let len = ho * wo;
    let mut index = vec![0i64; n * 4 * len];
    let mut weight = vec![0f32; n * 4 * len];
    for (b, m) in g.iter().enumerate() {
        for r in 0..ho {
            let yn = (2 * r + 1) as f64 / ho as f64 - 1.0;
            for col in 0..wo {
                let xn = (2 * col + 1) as f64 / wo as f64 - 1.0;
                let gx = m[0][0] * xn + m[0][1] * yn + m[0][2];
                let gy = m[1][0] * xn + m[1][1] * yn + m[1][2];
                let ix = ((gx + 1.0) * wi as f64 - 1.0) / 2.0;
                let iy = ((gy + 1.0) * hi as f64 - 1.0) / 2.0;
                let (x0, y0) = (ix.floor(), iy.floor());
                let (fx, fy) = (ix - x0, iy - y0);
                let corners = [
                    (x0, y0, (1.0 - fx) * (1.0 - fy)),
                    (x0 + 1.0, y0, fx * (1.0 - fy)),
                    (x0, y0 + 1.0, (1.0 - fx) * fy),
                    (x0 + 1.0, y0 + 1.0, fx * fy),
                ];
                for (k, (cx, cy, wk)) in corners.into_iter().enumerate() {
                    let inside = (0.0..wi as f64).contains(&cx) && (0.0..hi as f64).contains(&cy);
                    if inside {
                        let at = (b * 4 + k) * len + r * wo + col;
                        index[at] = ((b * hi + cy as usize) * wi + cx as usize) as i64;
                        weight[at] = wk as f32;
                    }
                }
            }
        }
    }
    let device = x.device();
    let index = Tensor::<B, 1, Int>::from_ints(index.as_slice(), &device);
    let weight = Tensor::<B, 1>::from_floats(weight.as_slice(), &device).reshape([1, n * 4 * len]);
    (x.reshape([c, n * hi * wi]).select(1, index) * weight)
        .reshape([c, n, 4, len])
        .sum_dim(2)
        .reshape([c, n, ho, wo])
}

/// The colour part: each image's (r, g, b) ← C₃ₓ₃ (r, g, b) + C₃ₓ₁.
fn recolor<B: Backend>(x: Tensor<B, 4>, c: &[Matrix<4>]) -> Tensor<B, 4> {
    let [n, channels, h, w] = x.dims();
    assert_eq!(channels, 3, "ADA's colour transforms take RGB images");
    let device = x.device();
    let linear: Vec<f32> = c
        .iter()
        .flat_map(|m| (0..3).flat_map(move |r| (0..3).map(move |k| m[r][k] as f32)))
        .collect();
    let offset: Vec<f32> = c
        .iter()
        .flat_map(|m| (0..3).map(move |r| m[r][3] as f32))
        .collect();
    let linear = Tensor::<B, 1>::from_floats(linear.as_slice(), &device).reshape([n, 3, 3]);
    let offset = Tensor::<B, 1>::from_floats(offset.as_slice(), &device).reshape([n, 3, 1]);
    (linear.matmul(x.reshape([n, 3, h * w])) + offset).reshape([n, 3, h, w])
}
