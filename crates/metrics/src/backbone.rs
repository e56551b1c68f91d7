//! The networks whose features the Fréchet distance and the other sample metrics can be
//! measured in, each with its reference's preprocessing. Scores in different backbones
//! are different quantities: a number is only comparable with numbers of the same
//! backbone (and resizer), which is why every protocol records it.
//!
//! | backbone | network, weights | features | reference |
//! |---|---|---|---|
//! | `Inception` | pytorch-fid's Inception-v3, `pt_inception-2015-12-05-6726825d.pth` | 2048 | pytorch-fid, the paper |
//! | `Swav` | ResNet-50, `swav_800ep_pretrain.pth.tar` | 2048, pooled | StudioGAN v0.4 `SwAV_torch` |
//! | `Dino` | ViT-S/8, `dino_deitsmall8_pretrain.pth` | 1536, CLS of the last 4 blocks | StudioGAN v0.4 `DINO_torch` |
//! | `Dinov2` | ViT-L/14, `dinov2_vitl14_pretrain.pth` | 1024, CLS | dgm-eval (Stein et al., 2023) |
//!
//! The last three take 224×224 images normalized with ImageNet's mean and standard
//! deviation. Their `Legacy` resize is their reference's default: StudioGAN's
//! `legacy` (PyTorch's bilinear) for SwAV and DINO, and for DINOv2 dgm-eval's
//! (torchvision's `Resize` of the 8-bit image: PIL's bicubic, rounded to 8 bits).
//! `Clean` is PIL's bicubic in float for all, clipped to [0, 255] for DINOv2 as
//! dgm-eval's `--clean_resize` does.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use explain::Explain;
use kernels::Kernels;
use serde::{Deserialize, Serialize};

use super::MetricError;
use super::extract::{FeatureNetwork, LoadedNetwork};
use super::inception::{FidInception, Outputs, images_tensor};
use super::resize::{Resizer, pil_bicubic_u8, resize};
use super::resnet::{ResNet, ResNetShape};
use super::tensors::{Tensors, WeightFile};
use super::vit::{Vit, VitShape};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Explain)]
pub enum Backbone {
    /// pytorch-fid's Inception-v3: FID, the paper's metric, and the only backbone
    /// with the class logits the Inception Score needs.
    #[default]
    Inception,
    /// SwAV's self-supervised ResNet-50 (StudioGAN v0.4's `SwAV_torch`).
    Swav,
    /// DINO's ViT-S/8 (StudioGAN v0.4's `DINO_torch`).
    Dino,
    /// DINOv2's ViT-L/14, as dgm-eval takes it: FD_DINOv2.
    Dinov2,
}

/// ImageNet's per-channel mean and standard deviation, which torchvision's and the
/// self-supervised models' inputs are normalized with.
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// The input size of the ImageNet backbones.
const SIZE: usize = 224;

impl Backbone {
    pub const ALL: [Backbone; 4] = [
        Backbone::Inception,
        Backbone::Swav,
        Backbone::Dino,
        Backbone::Dinov2,
    ];

    pub fn is_inception(&self) -> bool {
        *self == Backbone::Inception
    }

    /// The Fréchet distance's name in this backbone's features.
    pub fn fd_name(&self) -> &'static str {
        match self {
            Backbone::Inception => "FID",
            Backbone::Swav => "FD_SwAV",
            Backbone::Dino => "FD_DINO",
            Backbone::Dinov2 => "FD_DINOv2",
        }
    }

    /// The released weight file the network is read from.
    pub fn release(&self) -> &'static str {
        match self {
            Backbone::Inception => "pt_inception-2015-12-05-6726825d.pth",
            Backbone::Swav => "swav_800ep_pretrain.pth.tar",
            Backbone::Dino => "dino_deitsmall8_pretrain.pth",
            Backbone::Dinov2 => "dinov2_vitl14_pretrain.pth",
        }
    }

    /// What the release's tensor names start with: SwAV's was saved from
    /// `DistributedDataParallel` (`module.…`).
    pub fn prefix(&self) -> &'static str {
        match self {
            Backbone::Swav => "module.",
            _ => "",
        }
    }

    /// The architecture of the released network.
    pub fn architecture(&self) -> Architecture {
        match self {
            Backbone::Inception => Architecture::Inception,
            Backbone::Swav => Architecture::ResNet(ResNetShape::RESNET50),
            Backbone::Dino => Architecture::Vit(VitShape::DINO_VIT_S8),
            Backbone::Dinov2 => Architecture::Vit(VitShape::DINOV2_VIT_L14),
        }
    }

    /// Length of the features.
    pub fn features(&self) -> usize {
        match self.architecture() {
            Architecture::Inception => super::inception::FEATURES,
            Architecture::ResNet(s) => s.features(),
            Architecture::Vit(s) => s.features(),
        }
    }
}

impl std::fmt::Display for Backbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::str::FromStr for Backbone {
    type Err = String;

    fn from_str(s: &str) -> Result<Backbone, String> {
        Backbone::ALL
            .into_iter()
            .find(|b| b.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown backbone `{s}`: one of inception, swav, dino, dinov2"))
    }
}

/// A backbone's network shape; the parity tests load reduced ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    Inception,
    ResNet(ResNetShape),
    Vit(VitShape),
}

/// A released backbone read from its weight file, resizing with `resizer`.
pub struct Pretrained {
    pub backbone: Backbone,
    pub weights: PathBuf,
    pub resizer: Resizer,
}

impl FeatureNetwork for Pretrained {
    fn describe(&self) -> String {
        match self.backbone {
            Backbone::Inception => "FID Inception-v3 features".into(),
            Backbone::Swav => "SwAV ResNet-50 features".into(),
            Backbone::Dino => "DINO ViT-S/8 features".into(),
            Backbone::Dinov2 => "DINOv2 ViT-L/14 features".into(),
        }
    }

    fn load<B: Kernels>(
        &self,
        device: &B::Device,
    ) -> Result<Box<dyn LoadedNetwork<B> + '_>, MetricError> {
        if self.backbone.is_inception() {
            return Ok(Box::new(
                FidInception::<B>::load(&self.weights, device)?.with_resizer(self.resizer),
            ));
        }
        let weights = open(self.backbone, &self.weights)?;
        Ok(Box::new(ImageNetNetwork::load(
            &weights,
            self.backbone,
            self.backbone.architecture(),
            self.resizer,
            device,
        )?))
    }
}

/// A backbone's weight file, its names with the release's prefix or without.
pub fn open(backbone: Backbone, path: &Path) -> Result<WeightFile, MetricError> {
    match backbone.prefix() {
        "" => WeightFile::open(path),
        prefix => WeightFile::open_prefixed(path, prefix, "conv1.weight"),
    }
}

enum Body<B: Kernels> {
    ResNet(ResNet<B>),
    Vit(Vit<B>),
}

/// An ImageNet-trained backbone with its preprocessing.
pub struct ImageNetNetwork<B: Kernels> {
    body: Body<B>,
    backbone: Backbone,
    resizer: Resizer,
    mean: Tensor<B, 4>,
    std: Tensor<B, 4>,
}

impl<B: Kernels> ImageNetNetwork<B> {
    /// `backbone`'s preprocessing before a network of `architecture` read from `w`.
    pub fn load(
        w: &dyn Tensors,
        backbone: Backbone,
        architecture: Architecture,
        resizer: Resizer,
        device: &B::Device,
    ) -> Result<Self, MetricError> {
        let body = match architecture {
            Architecture::ResNet(shape) => Body::ResNet(ResNet::load(w, shape, device)?),
            Architecture::Vit(shape) => Body::Vit(Vit::load(w, shape, SIZE, device)?),
            Architecture::Inception => {
                return Err(MetricError::Invalid(
                    "the Inception network has its own preprocessing".into(),
                ));
            }
        };
        let channels = |v: [f32; 3]| {
            Tensor::<B, 1>::from_data(TensorData::new(v.to_vec(), [3]), device)
                .reshape([1, 3, 1, 1])
        };
        Ok(ImageNetNetwork {
            body,
            backbone,
            resizer,
            mean: channels(IMAGENET_MEAN),
            std: channels(IMAGENET_STD),
        })
    }

    /// Images in [0, 1], `[n, 3, h, w]` → 224×224, normalized.
    fn preprocess(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 4>, MetricError> {
        let x = match (self.backbone, self.resizer) {
            (Backbone::Dinov2, Resizer::Legacy) => {
                let [n, _, h, w] = images.dims();
                let device = images.device();
                let pixels = to_pixels(images)?;
                let plane = h * w * 3;
                let resized: Vec<u8> = pixels
                    .chunks(plane)
                    .flat_map(|image| pil_bicubic_u8(image, [w, h], [SIZE, SIZE]))
                    .collect();
                images_tensor::<B>(&resized, n, SIZE, SIZE, &device)
            }
            (Backbone::Dinov2, Resizer::Clean) => {
                resize(images, [SIZE, SIZE], Resizer::Clean).clamp(0.0, 1.0)
            }
            (_, resizer) => resize(images, [SIZE, SIZE], resizer),
        };
        Ok((x - self.mean.clone()) / self.std.clone())
    }

    /// Features of a batch of images in [0, 1], `[n, 3, h, w]`: `[n, features]`.
    pub fn features(&self, images: Tensor<B, 4>) -> Result<Tensor<B, 2>, MetricError> {
        let x = self.preprocess(images)?;
        Ok(match &self.body {
            Body::ResNet(net) => net.features(x),
            Body::Vit(net) => net.features(x),
        })
    }
}

/// Images in [0, 1] made of 8-bit values back as HWC bytes.
fn to_pixels<B: Backend>(images: Tensor<B, 4>) -> Result<Vec<u8>, MetricError> {
    let values = images
        .permute([0, 2, 3, 1])
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| MetricError::Invalid(format!("reading images back: {e:?}")))?;
    Ok(values
        .iter()
        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect())
}

impl<B: Kernels> LoadedNetwork<B> for ImageNetNetwork<B> {
    fn forward(&mut self, images: Tensor<B, 4>, _first: usize) -> Result<Outputs, MetricError> {
        let pool3 = self
            .features(images)?
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| MetricError::Invalid(format!("reading features back: {e:?}")))?;
        Ok(Outputs {
            pool3,
            logits: Vec::new(),
        })
    }
}
