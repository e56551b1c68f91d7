//! Every architecture with every conditioning at the paper's widths (configs/Table1 and
//! Table2 at 67e0de0): the generator makes `[n, 3, size, size]` images, the
//! discriminator one logit per image and the head its conditioning asks for, under the
//! reference's layer names.

use burn::backend::Flex;
use burn::prelude::*;
use gan::config::{Architecture, Attention, Conditioning, DEFAULT_CONV_DIM, ModelConfig};
use gan::init::Scheme;
use gan::layers::Mode;
use gan::{discriminator, generator};

/// One architecture as the paper configures it.
struct Paper {
    architecture: Architecture,
    z_dim: usize,
    width: usize,
    /// Attention after these G and D blocks.
    attention: Option<(usize, usize)>,
    g_spectral_norm: bool,
    /// The reference's name of D's adversarial head.
    adv_head: &'static str,
}

const PAPER: [Paper; 5] = [
    Paper {
        architecture: Architecture::Dcgan32,
        z_dim: 128,
        width: 64,
        attention: None,
        g_spectral_norm: false,
        adv_head: "linear5",
    },
    Paper {
        architecture: Architecture::Resgan32,
        z_dim: 128,
        width: 64,
        attention: None,
        g_spectral_norm: false,
        adv_head: "linear4",
    },
    Paper {
        architecture: Architecture::Resgan64,
        z_dim: 128,
        width: 64,
        attention: Some((4, 1)),
        g_spectral_norm: true,
        adv_head: "linear6",
    },
    Paper {
        architecture: Architecture::Biggan32,
        z_dim: 80,
        width: 96,
        attention: Some((2, 1)),
        g_spectral_norm: true,
        adv_head: "linear4",
    },
    Paper {
        architecture: Architecture::Biggan64,
        z_dim: 100,
        width: 80,
        attention: Some((3, 1)),
        g_spectral_norm: true,
        adv_head: "linear6",
    },
];

fn paper_config(
    architecture: Architecture,
    conditioning: Conditioning,
    z_dim: usize,
    width: usize,
    attention: Option<(usize, usize)>,
    g_spectral_norm: bool,
) -> ModelConfig {
    ModelConfig {
        architecture,
        conditioning,
        num_classes: 10,
        z_dim,
        shared_dim: 128,
        // Dcgan32's widths are its own: the field keeps its default there.
        g_conv_dim: if architecture.fixed_widths() {
            DEFAULT_CONV_DIM
        } else {
            width
        },
        d_conv_dim: if architecture.fixed_widths() {
            DEFAULT_CONV_DIM
        } else {
            width
        },
        hyper_dim: 512,
        nonlinear_embed: false,
        normalize_embed: true,
        g_spectral_norm,
        d_spectral_norm: true,
        attention: attention.map(|(g, d)| Attention {
            g_after_block: g,
            d_after_block: d,
        }),
        leaky_relu: false,
        // Shapes do not depend on the scheme; N(0, 0.02) skips the QRs.
        g_init: Scheme::N02,
        d_init: Scheme::N02,
        image_size: None,
        aux_cls_type: Default::default(),
        stylegan2: None,
    }
}

#[test]
fn every_architecture_and_head_at_the_paper_widths() {
    let device = Default::default();
    let n = 2;
    for Paper {
        architecture,
        z_dim,
        width,
        attention,
        g_spectral_norm: g_sn,
        adv_head: adv_name,
    } in PAPER
    {
        for conditioning in [
            Conditioning::None,
            Conditioning::Acgan,
            Conditioning::Projection,
            Conditioning::Contrastive,
            Conditioning::D2dce,
        ] {
            let config = paper_config(architecture, conditioning, z_dim, width, attention, g_sn);
            config.check().unwrap();
            let what = format!("{architecture:?} {conditioning:?}");
            let size = config.image_size();
            let mut g = generator::build::<Flex>(&config, 1, &device);
            let mut d = discriminator::build::<Flex>(&config, 2, &device);
            let z = Tensor::<Flex, 2>::zeros([n, z_dim], &device);
            let y = Tensor::<Flex, 1, Int>::from_ints([3, 7], &device);
            let images = generator::run(&mut g, Mode::TRAIN, &config, z, y.clone());
            assert_eq!(images.dims(), [n, 3, size, size], "{what}");
            let out = discriminator::run(&mut d, Mode::TRAIN, &config, images, y);
            assert_eq!(out.adv.dims(), [n], "{what}");
            assert!(
                d.get(&format!("{adv_name}.weight_orig")).is_some(),
                "{what}: {adv_name}"
            );
            match conditioning {
                Conditioning::Acgan => {
                    assert_eq!(out.class_logits.unwrap().dims(), [n, 10], "{what}")
                }
                Conditioning::Contrastive | Conditioning::D2dce => {
                    let (embed, anchor) = out.contrastive.unwrap();
                    assert_eq!(embed.dims(), [n, 512], "{what}");
                    assert_eq!(anchor.dims(), [n, 512], "{what}");
                }
                Conditioning::Projection => {
                    assert!(d.get("embedding.weight_orig").is_some(), "{what}")
                }
                Conditioning::None => {
                    assert!(out.class_logits.is_none() && out.contrastive.is_none())
                }
            }
            // Conditional generators condition their BatchNorm; unconditional ones do not.
            let conditional_bn = g
                .names()
                .any(|k| k.contains(".embed.") || k.contains(".gain."));
            assert_eq!(conditional_bn, conditioning != Conditioning::None, "{what}");
            assert_eq!(
                g.names().any(|k| k.ends_with("weight_orig")),
                g_sn,
                "{what}: spectral norm in G"
            );
        }
    }
}

/// Half the architecture's size: one generator block fewer (so the reference's layer
/// names and the BigGAN z split follow), one discriminator block fewer.
#[test]
fn every_architecture_at_half_size_drops_a_block_from_each_network() {
    let device = Default::default();
    for paper in PAPER {
        let native = paper.architecture.native_size().unwrap();
        let full = paper_config(
            paper.architecture,
            Conditioning::Contrastive,
            paper.z_dim,
            8,
            None,
            paper.g_spectral_norm,
        );
        let half = ModelConfig {
            image_size: Some(native / 2),
            // BigGAN splits z into one chunk per block and one for the linear layer.
            z_dim: 60,
            ..full.clone()
        };
        let what = format!("{:?}", paper.architecture);
        half.check().unwrap_or_else(|e| panic!("{what}: {e:?}"));
        let blocks = |config: &ModelConfig, g: bool| {
            let t = if g {
                generator::build::<Flex>(config, 1, &device)
            } else {
                discriminator::build::<Flex>(config, 2, &device)
            };
            t.names()
                .filter_map(|k| {
                    k.strip_prefix("blocks.")?
                        .split('.')
                        .next()?
                        .parse::<usize>()
                        .ok()
                })
                .max()
                .unwrap()
                + 1
        };
        let full = ModelConfig { z_dim: 60, ..full };
        assert_eq!(
            blocks(&half, true) + 1,
            blocks(&full, true),
            "{what}: G blocks"
        );
        assert_eq!(
            blocks(&half, false) + 1,
            blocks(&full, false),
            "{what}: D blocks"
        );
        let mut g = generator::build::<Flex>(&half, 1, &device);
        let mut d = discriminator::build::<Flex>(&half, 2, &device);
        let y = Tensor::<Flex, 1, Int>::from_ints([3, 7], &device);
        let z = Tensor::<Flex, 2>::zeros([2, 60], &device);
        let images = generator::run(&mut g, Mode::TRAIN, &half, z, y.clone());
        assert_eq!(images.dims(), [2, 3, native / 2, native / 2], "{what}");
        let out = discriminator::run(&mut d, Mode::TRAIN, &half, images, y);
        assert_eq!(out.adv.dims(), [2], "{what}");
    }
}

#[test]
fn image_sizes_that_are_not_halvings_are_refused() {
    let config = paper_config(
        Architecture::Biggan32,
        Conditioning::Acgan,
        80,
        8,
        None,
        true,
    );
    for (size, ok) in [
        (32, true),
        (16, true),
        (8, true),
        (24, false),
        (4, false),
        (64, false),
    ] {
        let config = ModelConfig {
            image_size: Some(size),
            aux_cls_type: Default::default(),
            stylegan2: None,
            z_dim: 60,
            ..config.clone()
        };
        let result = config.check();
        assert_eq!(result.is_ok(), ok, "{size}: {result:?}");
        if let Err((field, message)) = result {
            assert_eq!(field, "image_size");
            assert!(message.contains("down to 8"), "{message}");
        }
    }
}
