//! Images from a generator, as the paper's evaluation makes them: z ~ N(0, 1) divided
//! by the truncation factor (the reference's `truncated_factor`; StyleGAN2's moves w
//! toward its average instead, in eval mode), uniform labels, and
//! the generator in train mode (BatchNorm normalizing with each batch's statistics,
//! spectral norm iterating, as `Gen_copy.train()` does while sampling), or in eval mode
//! with the running statistics. A LOGAN run's z are moved before G sees them, as the
//! seed's evaluation moves them ([`LatentMove`]).

use std::sync::atomic::{AtomicBool, Ordering};

use burn::prelude::*;

use super::config::{Architecture, LatentOpConfig, ModelConfig};
use super::layers::Mode;
use super::tensors::Tensors;
use super::train::latent;
use super::{generator, stylegan2};
use kernels::Kernels;
use rng::Rng;

pub struct Sampling<'a> {
    pub model: &'a ModelConfig,
    pub count: usize,
    pub batch: usize,
    pub seed: u64,
    pub truncation: f64,
    pub mode: Mode,
    /// The class of each image, in order (`count` of them); uniform draws when `None`.
    pub labels: Option<&'a [u32]>,
    pub cancel: &'a AtomicBool,
    pub progress: &'a dyn Fn(u64, u64),
}

/// LOGAN's move of z at evaluation, as the seed's FID and IS code calls
/// `latent_optimise`: every sample moves (rate 1), once, along D's gradient with G and D
/// in eval mode.
pub struct LatentMove<'a, B: Kernels> {
    /// D as it was when G was: the final D for the final generators, the D of the best
    /// evaluation for the best one.
    pub d: &'a Tensors<B>,
    pub op: LatentOpConfig,
}

/// Why sampling stopped early.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped<E> {
    Cancelled,
    Sink(E),
}

/// Generates `count` images and hands each to `sink` as u8 HWC pixels with its label;
/// with `latent`, each batch's z moved first.
pub fn sample<B: Kernels, E>(
    g: &mut Tensors<B>,
    sampling: &Sampling,
    latent: Option<&LatentMove<B>>,
    mut sink: impl FnMut(&[u8], u32) -> Result<(), E>,
) -> Result<(), Stopped<E>> {
    if let Some(labels) = sampling.labels {
        assert_eq!(
            labels.len(),
            sampling.count,
            "one label per image to sample"
        );
    }
    let model = sampling.model;
    // StyleGAN2 truncates w, not z (v0.4's `truncation_factor` for it).
    let stylegan2 = model.architecture == Architecture::Stylegan2;
    let z_scale = if stylegan2 { 1.0 } else { sampling.truncation };
    let device = g.device().clone();
    let size = model.image_size();
    let mut done = 0;
    let mut index = 0;
    while done < sampling.count {
        if sampling.cancel.load(Ordering::Relaxed) {
            return Err(Stopped::Cancelled);
        }
        let n = sampling.batch.min(sampling.count - done);
        let mut rng = Rng::stream(sampling.seed, index);
        let z: Vec<f32> = (0..n * model.z_dim)
            .map(|_| (rng.normal() / z_scale) as f32)
            .collect();
        let labels: Vec<u32> = match sampling.labels {
            Some(given) => given[done..done + n].to_vec(),
            None => (0..n)
                .map(|_| rng.below(model.num_classes as u64) as u32)
                .collect(),
        };
        let y: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        let mut z = Tensor::from_data(TensorData::new(z, [n, model.z_dim]), &device);
        if let Some(m) = latent {
            // Every sample moves, as the seed's evaluation asks with rate 1.
            let everyone = vec![true; n];
            let shift =
                latent::Shift::new(&m.op, g.clone(), m.d.clone(), model, z, &labels, &everyone);
            z = shift.moved().inner();
        }
        let y = Tensor::from_data(TensorData::new(y, [n]), &device);
        let images = if stylegan2 {
            stylegan2::sample_images(g, model, z, y, sampling.truncation)
        } else {
            generator::run(g, sampling.mode, model, z, y)
        };
        let values = images
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 images");
        let plane = size * size;
        let mut pixels = vec![0u8; 3 * plane];
        for (i, &label) in labels.iter().enumerate() {
            let image = &values[i * 3 * plane..][..3 * plane];
            for (p, chunk) in pixels.chunks_exact_mut(3).enumerate() {
                for (c, v) in chunk.iter_mut().enumerate() {
                    *v = to_u8(image[c * plane + p]);
                }
            }
            sink(&pixels, label).map_err(Stopped::Sink)?;
        }
        done += n;
        index += 1;
        (sampling.progress)(done as u64, sampling.count as u64);
    }
    Ok(())
}

/// [-1, 1] → 0..=255, rounded.
fn to_u8(v: f32) -> u8 {
    ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Architecture, Conditioning};
    use burn::backend::Flex;

    #[test]
    fn seeded_images_uniform_or_given_labels() {
        let model = ModelConfig {
            architecture: Architecture::Resgan32,
            conditioning: Conditioning::Projection,
            num_classes: 3,
            z_dim: 16,
            shared_dim: 8,
            g_conv_dim: 4,
            d_conv_dim: 4,
            hyper_dim: 8,
            nonlinear_embed: false,
            normalize_embed: true,
            g_spectral_norm: false,
            d_spectral_norm: true,
            attention: None,
            leaky_relu: false,
            g_init: Default::default(),
            d_init: Default::default(),
            image_size: None,
            aux_cls_type: Default::default(),
            stylegan2: None,
        };
        let cancel = AtomicBool::new(false);
        let run = |labels: Option<&[u32]>, latent: Option<&LatentMove<Flex>>| {
            let mut g = generator::build::<Flex>(&model, 1, &Default::default());
            let sampling = Sampling {
                model: &model,
                count: 7,
                batch: 4,
                seed: 2,
                truncation: 1.0,
                mode: Mode::TRAIN,
                labels,
                cancel: &cancel,
                progress: &|_, _| {},
            };
            let mut got = Vec::new();
            sample(&mut g, &sampling, latent, |pixels, label| {
                got.push((pixels.to_vec(), label));
                Ok::<(), ()>(())
            })
            .unwrap();
            got
        };
        let a = run(None, None);
        assert_eq!(a.len(), 7);
        assert!(a.iter().all(|(p, l)| p.len() == 32 * 32 * 3 && *l < 3));
        assert_ne!(a[0].0, a[1].0);
        assert_eq!(a, run(None, None), "the same seed gives the same images");
        // Given classes are the images' classes, across batches.
        let given = [2, 2, 1, 0, 0, 1, 2];
        let b = run(Some(&given), None);
        assert_eq!(b.iter().map(|(_, l)| *l).collect::<Vec<_>>(), given);

        // LOGAN's move: other images, the same ones each time.
        let d = crate::discriminator::build::<Flex>(&model, 3, &Default::default());
        let latent = LatentMove {
            d: &d,
            op: LatentOpConfig {
                rate: 0.5,
                alpha: 0.9,
                beta: 0.1,
                norm_reg_weight: 0.0,
            },
        };
        let moved = || run(None, Some(&latent));
        let c = moved();
        assert_eq!(c, moved());
        assert_eq!(
            c.iter().map(|(_, l)| *l).collect::<Vec<_>>(),
            a.iter().map(|(_, l)| *l).collect::<Vec<_>>()
        );
        assert!(c.iter().zip(&a).all(|(x, y)| x.0 != y.0), "z did not move");
        assert_eq!(
            (to_u8(-1.0), to_u8(0.0), to_u8(1.0), to_u8(2.0)),
            (0, 128, 255, 255)
        );
    }
}
