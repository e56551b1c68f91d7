//! DiffAugment (Zhao et al., 2020), as StudioGAN v0.4 applies it (`apply_diffaug`,
//! policy color, translation, cutout): differentiable transforms of every image D sees,
//! real and fake, in D and G steps, so that G learns through them. Per image: brightness
//! shifted by u − 0.5, saturation scaled by 2u around the pixel's channel mean, contrast
//! by u + 0.5 around the image's mean; a translation by up to an eighth of each side
//! (zeros come in); a cutout of half each side, centred anywhere.

use burn::prelude::*;
use rng::Rng;

/// One batch's random choices, drawn in the order the reference asks for them: every
/// image's brightness, then saturation, contrast, translation rows, columns, cutout
/// centre rows, columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Draws {
    pub brightness: Vec<f32>,
    pub saturation: Vec<f32>,
    pub contrast: Vec<f32>,
    pub translation: Vec<(i64, i64)>,
    pub cutout: Vec<(usize, usize)>,
}

/// The largest translation and the cutout's size of `h`×`w` images.
fn sizes(h: usize, w: usize) -> ((i64, i64), (usize, usize)) {
    let shift = |side: usize| (side as f64 * 0.125 + 0.5) as i64;
    let cut = |side: usize| (side as f64 * 0.5 + 0.5) as usize;
    ((shift(h), shift(w)), (cut(h), cut(w)))
}

impl Draws {
    pub fn draw(n: usize, h: usize, w: usize, rng: &mut Rng) -> Draws {
        let ((sx, sy), (ch, cw)) = sizes(h, w);
        let mut uniforms = || (0..n).map(|_| rng.f32()).collect::<Vec<_>>();
        let (brightness, saturation, contrast) = (uniforms(), uniforms(), uniforms());
        let mut ints = |lo: i64, hi: i64| {
            (0..n)
                .map(|_| lo + rng.below((hi - lo) as u64) as i64)
                .collect::<Vec<_>>()
        };
        let (tx, ty) = (ints(-sx, sx + 1), ints(-sy, sy + 1));
        let ox = ints(0, (h + 1 - ch % 2) as i64);
        let oy = ints(0, (w + 1 - cw % 2) as i64);
        Draws {
            brightness,
            saturation,
            contrast,
            translation: tx.into_iter().zip(ty).collect(),
            cutout: ox
                .into_iter()
                .zip(oy)
                .map(|(x, y)| (x as usize, y as usize))
                .collect(),
        }
    }
}

/// The augmented images (`[n, 3, h, w]`).
pub fn apply<B: Backend>(x: Tensor<B, 4>, draws: &Draws) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let per_image =
        |v: Vec<f32>| Tensor::<B, 1>::from_floats(v.as_slice(), &device).reshape([n, 1, 1, 1]);
    // Colour.
    let x = x + per_image(draws.brightness.iter().map(|u| u - 0.5).collect());
    let mean = x.clone().mean_dim(1);
    let x =
        (x - mean.clone()) * per_image(draws.saturation.iter().map(|u| 2.0 * u).collect()) + mean;
    let mean = x
        .clone()
        .reshape([n, c * h * w])
        .mean_dim(1)
        .reshape([n, 1, 1, 1]);
    let x = (x - mean.clone()) * per_image(draws.contrast.iter().map(|u| u + 0.5).collect()) + mean;
    // Translation: each pixel from the zero-padded image, shifted.
    let (hp, wp) = (h + 2, w + 2);
    let padded = x.pad((1, 1, 1, 1), burn::tensor::ops::PadMode::Constant(0.0));
    let mut source = Vec::with_capacity(n * h * w);
    for &(tx, ty) in &draws.translation {
        for i in 0..h as i64 {
            let row = (i + tx + 1).clamp(0, hp as i64 - 1) as usize;
            for j in 0..w as i64 {
                let col = (j + ty + 1).clamp(0, wp as i64 - 1) as usize;
                source.push((row * wp + col) as i64);
            }
        }
    }
    let index = Tensor::<B, 1, Int>::from_ints(source.as_slice(), &device)
        .reshape([n, 1, h * w])
        .expand([n, c, h * w]);
    let x = padded
        .reshape([n, c, hp * wp])
        .gather(2, index)
        .reshape([n, c, h, w]);
    // Cutout: a rectangle of zeros (clamped at the edges).
    let (_, (ch, cw)) = sizes(h, w);
    let mut mask = vec![1.0f32; n * h * w];
    for (b, &(ox, oy)) in draws.cutout.iter().enumerate() {
        for k in 0..ch {
            let i = (k + ox).saturating_sub(ch / 2).min(h - 1);
            for l in 0..cw {
                let j = (l + oy).saturating_sub(cw / 2).min(w - 1);
                mask[(b * h + i) * w + j] = 0.0;
            }
        }
    }
    let mask = Tensor::<B, 1>::from_floats(mask.as_slice(), &device).reshape([n, 1, h, w]);
    x * mask
}
