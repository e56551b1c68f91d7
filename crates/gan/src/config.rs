//! The two halves of a GAN configuration, as pipeline files write them (usually through
//! `Include("configs/….ron")`): the networks ([`ModelConfig`]) and how they are trained
//! ([`TrainConfig`]). Field names follow the reference's JSON configs where they exist.

use explain::Explain;
use serde::{Deserialize, Serialize};

use super::init::Scheme;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Explain)]
pub enum Architecture {
    Dcgan32,
    Resgan32,
    Resgan64,
    Resgan128,
    Biggan32,
    Biggan64,
    Biggan128,
    /// StyleGAN2 as StudioGAN v0.4 builds it, at the resolution and widths of the
    /// model's `stylegan2` section.
    Stylegan2,
}

impl Architecture {
    /// The architecture the authors' code names so (`"biggan128"`: their
    /// `models/biggan128.py`, their configs' `architecture`).
    pub fn from_reference_name(name: &str) -> Option<Architecture> {
        Some(match name {
            "dcgan32" => Architecture::Dcgan32,
            "resgan32" => Architecture::Resgan32,
            "resgan64" => Architecture::Resgan64,
            "resgan128" => Architecture::Resgan128,
            "biggan32" => Architecture::Biggan32,
            "biggan64" => Architecture::Biggan64,
            "biggan128" => Architecture::Biggan128,
            "stylegan2" => Architecture::Stylegan2,
            _ => return None,
        })
    }

    /// Whether the widths are the architecture's own (the authors' dcgan32: 512/256/128
    /// in G, 64/128/256 in D, their configs' `g_conv_dim` "N/A"), so that `g_conv_dim`
    /// and `d_conv_dim` change nothing.
    pub fn fixed_widths(self) -> bool {
        self == Architecture::Dcgan32
    }

    /// Whether G has BigGAN's shared class embedding (`shared_dim`).
    pub fn shares_embedding(self) -> bool {
        matches!(
            self,
            Architecture::Biggan32 | Architecture::Biggan64 | Architecture::Biggan128
        )
    }

    /// The size of the images it makes, where the architecture fixes it (StyleGAN2's
    /// is its section's `resolution`).
    pub fn native_size(self) -> Option<usize> {
        match self {
            Architecture::Dcgan32 | Architecture::Resgan32 | Architecture::Biggan32 => Some(32),
            Architecture::Resgan64 | Architecture::Biggan64 => Some(64),
            Architecture::Resgan128 | Architecture::Biggan128 => Some(128),
            Architecture::Stylegan2 => None,
        }
    }
}

/// StyleGAN2's discriminator blocks (v0.4's `d_architecture`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Explain)]
pub enum DBlocks {
    /// Two convolutions, the second downsampling (v0.4's CIFAR-10 configs).
    Orig,
    /// With a downsampled 1×1 skip path, both paths scaled by √½ (v0.4's default).
    Resnet,
}

/// StyleGAN2's networks (v0.4's `MODEL.w_dim` and `STYLEGAN` section, and the widths
/// its `models/model.py` chooses).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Stylegan2Model {
    /// The images' width and height: a power of two, at least 8.
    pub resolution: usize,
    /// Length of the intermediate latent w.
    pub w_dim: usize,
    /// Layers of G's mapping network (v0.4: 2 for CIFAR-10, 8 elsewhere).
    pub mapping_network: usize,
    /// Channels at resolution r are min(channel_base / r, channel_max) in G and D (v0.4:
    /// 32768 for CIFAR-10 and 512 pixels or more, 16384 elsewhere).
    pub channel_base: usize,
    /// The most channels of any layer.
    #[serde(default = "default_channel_max")]
    pub channel_max: usize,
    /// D's blocks.
    pub d_architecture: DBlocks,
    /// Images per group of D's minibatch standard deviation; the batch (per device)
    /// must be a multiple of it, or smaller.
    pub d_epilogue_mbstd_group_size: usize,
    /// The probability that a training pass of G mixes two latents' ws at a random
    /// layer (v0.4: 0 for CIFAR-10, 0.9 elsewhere).
    #[serde(default)]
    pub style_mixing_p: f64,
}

fn default_channel_max() -> usize {
    512
}

/// D's class mapping network in `SPD` conditioning has v0.4's default depth.
pub const D_MAPPING_LAYERS: usize = 8;

/// How the discriminator (and the generator's BatchNorm) use the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Explain)]
pub enum Conditioning {
    /// Unconditional.
    None,
    /// Auxiliary classifier (ACGAN): a class-logit head and cross-entropy losses.
    Acgan,
    /// Projection discriminator (cGAN): `linear(h) + ⟨embed(y), h⟩`.
    Projection,
    /// ContraGAN: the 2C loss between image embeddings and class embeddings.
    Contrastive,
    /// ReACGAN (StudioGAN v0.4's `D2DCE`): ContraGAN's embedding head trained with the
    /// Data-to-Data Cross-Entropy (`m_p`, `temperature`).
    #[serde(rename = "D2DCE")]
    D2dce,
}

impl Conditioning {
    /// Whether D has the embedding head of image and class embeddings.
    pub fn embeds(self) -> bool {
        matches!(self, Conditioning::Contrastive | Conditioning::D2dce)
    }
}

/// StudioGAN v0.4's `aux_cls_type`: what D's class head learns besides the classes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Explain)]
pub enum AuxClassifier {
    /// The classes only (v0.4's `W/O`).
    #[default]
    None,
    /// ADCGAN's dual classifier (Hou et al., 2022): the head (ACGAN's logits, or
    /// ReACGAN's class embeddings) has a "real" and a "fake" entry per class, real
    /// images labelled 2y and fakes 2y + 1; D learns both sides, G pulls its images
    /// toward the real entry and away from the fake one.
    #[serde(rename = "ADC")]
    Adc,
}

impl AuxClassifier {
    pub fn is_none(&self) -> bool {
        *self == AuxClassifier::None
    }

    /// The labels D's class head is given for images of classes `labels`, real or
    /// generated: the classes themselves, or ADC's 2y (real) and 2y + 1 (generated).
    pub fn d_labels(self, labels: &[u32], generated: bool) -> Vec<u32> {
        match self {
            AuxClassifier::None => labels.to_vec(),
            AuxClassifier::Adc => labels.iter().map(|&y| 2 * y + generated as u32).collect(),
        }
    }
}

/// Self-attention after the given blocks (counted from 1, as the reference does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Attention {
    /// G's attention block follows its block of this number (the reference's
    /// `at_after_th_gen_block`).
    pub g_after_block: usize,
    /// D's attention block follows its block of this number (`at_after_th_dis_block`).
    pub d_after_block: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The networks of G and D, as the authors' models/*.py write them.
    pub architecture: Architecture,
    /// How G and D use the class label.
    pub conditioning: Conditioning,
    /// Classes of the data set (the labels are 0..num_classes).
    pub num_classes: usize,
    /// Length of G's latent z.
    pub z_dim: usize,
    /// Width of BigGAN's shared class embedding (Biggan32, Biggan64, Biggan128 only;
    /// elsewhere it must keep its default, 128).
    #[serde(default = "default_shared_dim")]
    pub shared_dim: usize,
    /// G's width multiplier (every architecture but Dcgan32, whose widths are fixed:
    /// leave it out there, or at its default, 64).
    #[serde(default = "default_conv_dim")]
    pub g_conv_dim: usize,
    /// D's width multiplier (as `g_conv_dim`: not for Dcgan32).
    #[serde(default = "default_conv_dim")]
    pub d_conv_dim: usize,
    /// ContraGAN's embedding size.
    #[serde(default = "default_hyper_dim")]
    pub hyper_dim: usize,
    /// ContraGAN's embedding head as two linear layers with an activation between
    /// them, rather than one.
    #[serde(default)]
    pub nonlinear_embed: bool,
    /// ContraGAN's image and class embeddings scaled to unit length before the 2C loss.
    #[serde(default = "yes")]
    pub normalize_embed: bool,
    /// Spectral normalization of G's weights.
    pub g_spectral_norm: bool,
    /// Spectral normalization of D's weights.
    pub d_spectral_norm: bool,
    /// Self-attention blocks in G and D (BigGAN's), after the given blocks.
    #[serde(default)]
    pub attention: Option<Attention>,
    /// LeakyReLU (slope 0.1) instead of ReLU in G and D.
    #[serde(default)]
    pub leaky_relu: bool,
    /// How G's weights start.
    #[serde(default)]
    pub g_init: Scheme,
    /// How D's weights start.
    #[serde(default)]
    pub d_init: Scheme,
    /// Images smaller than the architecture's own, by halvings: each one drops the
    /// generator's first block and the discriminator's last (e.g. `Some(16)` on a 32×32
    /// architecture, for quick runs on small images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// ADCGAN's dual classifier on D's class head (v0.4's `aux_cls_type`).
    #[serde(default, skip_serializing_if = "AuxClassifier::is_none")]
    pub aux_cls_type: AuxClassifier,
    /// StyleGAN2's networks (with `architecture: Stylegan2`, and only there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stylegan2: Option<Box<Stylegan2Model>>,
}

fn default_shared_dim() -> usize {
    128
}

/// `g_conv_dim` and `d_conv_dim` where a config leaves them out.
pub const DEFAULT_CONV_DIM: usize = 64;

fn default_conv_dim() -> usize {
    DEFAULT_CONV_DIM
}

fn default_hyper_dim() -> usize {
    512
}

fn yes() -> bool {
    true
}

impl ModelConfig {
    pub fn image_size(&self) -> usize {
        match (self.architecture.native_size(), &self.stylegan2) {
            (None, Some(style)) => style.resolution,
            (native, _) => self.image_size.or(native).unwrap_or(0),
        }
    }

    /// How many blocks the reduced image size drops from each network.
    pub fn dropped_blocks(&self) -> usize {
        let native = self.architecture.native_size().unwrap_or(self.image_size());
        (native / self.image_size().max(1)).trailing_zeros() as usize
    }

    /// Whether the generator's BatchNorm layers take the class.
    pub fn conditional_g(&self) -> bool {
        self.conditioning != Conditioning::None
    }

    /// The entries of D's class head: the classes, twice over with ADC.
    pub fn d_classes(&self) -> usize {
        match self.aux_cls_type {
            AuxClassifier::None => self.num_classes,
            AuxClassifier::Adc => 2 * self.num_classes,
        }
    }

    /// The labels D's class head is given ([`AuxClassifier::d_labels`]).
    pub fn d_labels(&self, labels: &[u32], generated: bool) -> Vec<u32> {
        self.aux_cls_type.d_labels(labels, generated)
    }

    /// Problems with the configuration, as (field, message).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.architecture == Architecture::Stylegan2 {
            return self.check_stylegan2();
        }
        if self.stylegan2.is_some() {
            return Err((
                "stylegan2",
                format!(
                    "{:?} is not StyleGAN2; leave the section out",
                    self.architecture
                ),
            ));
        }
        let big = self.architecture.shares_embedding();
        let native = self.image_size.map_or(self.image_size(), |_| {
            self.architecture
                .native_size()
                .expect("the other architectures fix their size")
        });
        if let Some(size) = self.image_size {
            let halvings = (native / size.max(1)).trailing_zeros() as usize;
            let fits = size > 0 && size <= native && native == size << halvings;
            if !fits || halvings >= super::generator::block_count(self.architecture) {
                return Err((
                    "image_size",
                    format!(
                        "{size}: {:?} makes {native}×{native} images; it can make them \
                         smaller by halvings, down to {}",
                        self.architecture,
                        native >> (super::generator::block_count(self.architecture) - 1)
                    ),
                ));
            }
        }
        let g_blocks = super::generator::block_count(self.architecture) - self.dropped_blocks();
        if big && !self.z_dim.is_multiple_of(g_blocks + 1) {
            return Err((
                "z_dim",
                format!(
                    "{:?} splits z into {} chunks: z_dim {} is not a multiple of {}",
                    self.architecture,
                    g_blocks + 1,
                    self.z_dim,
                    g_blocks + 1
                ),
            ));
        }
        if self.num_classes == 0 {
            return Err(("num_classes", "must be at least 1".into()));
        }
        self.check_adc()?;
        // A field the architecture ignores would change the key and retrain the same
        // network: only its default is taken.
        let ignored = [
            (
                "g_conv_dim",
                self.architecture.fixed_widths() && self.g_conv_dim != default_conv_dim(),
            ),
            (
                "d_conv_dim",
                self.architecture.fixed_widths() && self.d_conv_dim != default_conv_dim(),
            ),
            (
                "shared_dim",
                !big && self.shared_dim != default_shared_dim(),
            ),
        ];
        if let Some((field, _)) = ignored.iter().find(|(_, ignored)| *ignored) {
            return Err((
                field,
                format!(
                    "{:?} does not use `{field}` ({}); leave it out",
                    self.architecture,
                    if *field == "shared_dim" {
                        "only BigGAN's generators have a shared class embedding"
                    } else {
                        "its widths are fixed: 512/256/128 in G, 64/128/256 in D"
                    }
                ),
            ));
        }
        for (field, width) in [
            ("g_conv_dim", self.g_conv_dim),
            ("d_conv_dim", self.d_conv_dim),
        ] {
            if width == 0 || (self.attention.is_some() && width % 4 != 0) {
                return Err((
                    field,
                    format!("{width}: widths must be positive (multiples of 4 with attention)"),
                ));
            }
        }
        if let Some(a) = self.attention {
            let d_blocks =
                super::discriminator::block_count(self.architecture) - self.dropped_blocks();
            if a.g_after_block == 0 || a.g_after_block > g_blocks {
                return Err((
                    "attention",
                    format!("g_after_block {} is not in 1..={g_blocks}", a.g_after_block),
                ));
            }
            if a.d_after_block == 0 || a.d_after_block > d_blocks {
                return Err((
                    "attention",
                    format!("d_after_block {} is not in 1..={d_blocks}", a.d_after_block),
                ));
            }
        }
        Ok(())
    }
}

impl ModelConfig {
    /// ADC doubles a class head, which conditioning must give D.
    fn check_adc(&self) -> Result<(), (&'static str, String)> {
        let head = matches!(
            self.conditioning,
            Conditioning::Acgan | Conditioning::Contrastive | Conditioning::D2dce
        );
        if self.aux_cls_type == AuxClassifier::Adc && !head {
            return Err((
                "aux_cls_type",
                format!(
                    "ADC needs a class head: conditioning Acgan, Contrastive or D2DCE, not {:?}",
                    self.conditioning
                ),
            ));
        }
        Ok(())
    }

    /// StyleGAN2's own checks: its section is there and sound, and no field of the
    /// other architectures is set (it would change the key and train the same network).
    fn check_stylegan2(&self) -> Result<(), (&'static str, String)> {
        let Some(style) = &self.stylegan2 else {
            return Err((
                "stylegan2",
                "Stylegan2 needs its section: `stylegan2: Some((resolution: 32, w_dim: 512, \
                 mapping_network: 2, channel_base: 32768, d_architecture: Orig, \
                 d_epilogue_mbstd_group_size: 32))`, as configs/stylegan2/ write it"
                    .into(),
            ));
        };
        let r = style.resolution;
        if r < 8 || !r.is_power_of_two() {
            return Err((
                "stylegan2",
                format!("resolution {r}: StyleGAN2 makes images of a power of two, 8 or more"),
            ));
        }
        for (field, value) in [
            ("w_dim", style.w_dim),
            ("mapping_network", style.mapping_network),
            ("channel_max", style.channel_max),
            (
                "d_epilogue_mbstd_group_size",
                style.d_epilogue_mbstd_group_size,
            ),
        ] {
            if value == 0 {
                return Err(("stylegan2", format!("{field} must be at least 1")));
            }
        }
        if style.channel_base < r {
            return Err((
                "stylegan2",
                format!(
                    "channel_base {}: the {r}×{r} layers would have no channels \
                     (channel_base / {r})",
                    style.channel_base
                ),
            ));
        }
        if !(0.0..=1.0).contains(&style.style_mixing_p) {
            return Err((
                "stylegan2",
                format!(
                    "style_mixing_p {} is not a probability",
                    style.style_mixing_p
                ),
            ));
        }
        if self.num_classes == 0 {
            return Err(("num_classes", "must be at least 1".into()));
        }
        self.check_adc()?;
        let ignored = [
            ("g_conv_dim", self.g_conv_dim != default_conv_dim()),
            ("d_conv_dim", self.d_conv_dim != default_conv_dim()),
            ("shared_dim", self.shared_dim != default_shared_dim()),
            ("nonlinear_embed", self.nonlinear_embed),
            ("g_spectral_norm", self.g_spectral_norm),
            ("d_spectral_norm", self.d_spectral_norm),
            ("attention", self.attention.is_some()),
            ("leaky_relu", self.leaky_relu),
            ("g_init", self.g_init != Scheme::default()),
            ("d_init", self.d_init != Scheme::default()),
            ("image_size", self.image_size.is_some()),
        ];
        match ignored.iter().find(|(_, set)| *set) {
            Some((field, _)) => Err((
                field,
                format!(
                    "Stylegan2 does not use `{field}` (its widths are the section's \
                     channel_base and channel_max, its size its resolution; its layers \
                     are equalized-learning-rate ones without spectral norm, drawn from \
                     N(0, 1)); leave it out, or false"
                ),
            )),
            None => Ok(()),
        }
    }
}

/// The adversarial loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Explain)]
pub enum AdvLoss {
    /// Hinge (the paper's): D minimizes mean relu(1 − D(x)) + mean relu(1 + D(G(z))), G
    /// minimizes −mean D(G(z)).
    Hinge,
    /// Non-saturating (the reference's "dcgan" loss).
    Vanilla,
    /// Least squares (LSGAN).
    LeastSquares,
    /// Wasserstein; use with `weight_clipping`.
    Wasserstein,
    /// StyleGAN2's (v0.4's `logistic`): softplus(−D(x)) + softplus(D(G(z))) for D,
    /// softplus(−D(G(z))) for G; the same values as `Vanilla`, under v0.4's name.
    Logistic,
}

/// An exponential moving average of the generator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Ema {
    /// Each step the average moves by (1 − decay) toward G.
    pub decay: f64,
    /// Before this step the average is a plain copy.
    pub start: u64,
}

/// LeCam regularization, with StudioGAN's `lecam_lambda`, `lecam_ema_start_iter` and
/// `lecam_ema_decay`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct LeCamConfig {
    /// The penalty's weight λ.
    pub lambda: f64,
    /// Before this G step the averages are plain copies, and the penalty applies only
    /// after it.
    pub ema_start_iter: u64,
    /// The decay of the running averages of D's logits on real and fake images.
    pub ema_decay: f64,
}

/// LOGAN's latent optimization, with the seed's `latent_op_rate`, `latent_op_alpha`,
/// `latent_op_beta` and `latent_norm_reg_weight`. The seed moves z once whatever its
/// `latent_op_step` (its loop returns in the first pass), so there is no step count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct LatentOpConfig {
    /// The share of samples whose z moves (each kept with this probability).
    pub rate: f64,
    /// The step size α of δz = α·g / (β + ‖g‖²).
    pub alpha: f64,
    /// The damping β of that step.
    pub beta: f64,
    /// Added to G's loss as the seed adds it: `latent_optimise` returns its flag where
    /// the transport cost was meant, so the weight shifts the logged loss and trains
    /// nothing.
    #[serde(default)]
    pub norm_reg_weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Real images (and as many fakes) per pass.
    pub batch_size: usize,
    /// Passes of `batch_size` images whose gradients one D or G step sums: a step sees
    /// `batch_size × accumulation_steps` images (the paper's Tiny ImageNet runs: 64 × 4).
    #[serde(default = "one")]
    pub accumulation_steps: usize,
    /// Generator steps (0 with `init` on the Train stage: the imported networks as they
    /// are, e.g. to sample the authors' checkpoints).
    pub total_steps: u64,
    /// D steps per iteration, each on a fresh real batch with fresh z and fake labels.
    pub d_steps_per_iter: usize,
    /// G steps per iteration.
    #[serde(default = "one")]
    pub g_steps_per_iter: usize,
    /// G's Adam learning rate.
    pub g_lr: f64,
    /// D's Adam learning rate.
    pub d_lr: f64,
    /// Adam's β₁ (both networks).
    pub beta1: f64,
    /// Adam's β₂ (both networks).
    pub beta2: f64,
    /// Adam's ε, added to the root of the second moment as PyTorch does.
    #[serde(default = "default_adam_eps")]
    pub adam_eps: f64,
    /// The adversarial loss of D and G.
    pub adv_loss: AdvLoss,
    /// ContraGAN: weight λ of the 2C loss, its temperature, and whether the other
    /// samples of the same class count as positives in the numerator.
    #[serde(default = "unit")]
    pub contrastive_lambda: f64,
    /// The temperature t of the 2C loss (and of ReACGAN's D2D-CE): similarities are
    /// divided by it.
    #[serde(default = "unit")]
    pub temperature: f64,
    /// The 2C loss counts the other samples of the same class as positives in its
    /// numerator, as the paper writes it (false: only the class embedding).
    #[serde(default = "yes")]
    pub positives_in_numerator: bool,
    /// ReACGAN's positive margin (StudioGAN's `m_p`); its loss weight is
    /// `contrastive_lambda` (StudioGAN's `cond_lambda`), which also weighs ACGAN's
    /// cross-entropy with ADC (v0.4's; the seed's ACGAN has no weight).
    #[serde(default = "default_m_p", skip_serializing_if = "is_default_m_p")]
    pub m_p: f64,
    /// After each D step, every D parameter clamped to [−c, c] (the WGAN of Arjovsky
    /// et al., with `adv_loss: Wasserstein`).
    #[serde(default)]
    pub weight_clipping: Option<f64>,
    /// WGAN-GP's gradient penalty with this λ (the seed's `gradient_penalty_for_dis`
    /// and `lambda4gp`; v0.4's `apply_gp`, `gp_lambda`): D's loss gains λ · mean
    /// (‖∇ₓD(x̂)‖ − 1)² at random interpolations x̂ of real and fake images.
    #[serde(default)]
    pub gradient_penalty: Option<f64>,
    /// DRAGAN's penalty with this λ (v0.4's `apply_dra`, `dra_lambda`): as WGAN-GP's, at
    /// the real images plus uniform noise of half their standard deviation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dra_lambda: Option<f64>,
    /// The max gradient penalty with this λ (v0.4's `apply_maxgp`, `maxgp_lambda`): the
    /// largest ‖∇ₓD(x̂)‖² over the interpolations x̂.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxgp_lambda: Option<f64>,
    /// R1 regularization with this λ (v0.4's `apply_r1_reg`, `r1_lambda`): D's loss
    /// gains λ · ½ mean ‖∇ₓD(x)‖² at the real images, the gradient of D's pass over
    /// them; for StyleGAN2, a lazy step of its own (`stylegan2.d_reg_interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r1_lambda: Option<f64>,
    /// An exponential moving average of G (parameters and buffers), sampled by default.
    #[serde(default)]
    pub ema: Option<Ema>,
    /// Random horizontal flips of the real images.
    #[serde(default = "yes")]
    pub flip: bool,
    /// Consistency regularization (the seed's `consistency_reg`): D's loss gains
    /// `consistency_lambda` times the mean squared difference of its logits on the
    /// real images and on their augmented copies from the loader.
    #[serde(default, skip_serializing_if = "is_false")]
    pub consistency_reg: bool,
    /// The weight of consistency regularization's term.
    #[serde(
        default = "default_consistency_lambda",
        skip_serializing_if = "is_default_consistency_lambda"
    )]
    pub consistency_lambda: f64,
    /// ContraGAN's 2C loss in D steps with the augmented copies' embeddings as extra
    /// positives (the seed's `make_positive_aug`; with `consistency_reg` the seed does
    /// this too).
    #[serde(default, skip_serializing_if = "is_false")]
    pub make_positive_aug: bool,
    /// LeCam regularization of D (StudioGAN v0.4's `apply_lecam`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lecam: Option<LeCamConfig>,
    /// DiffAugment (StudioGAN v0.4's `apply_diffaug`, policy color, translation,
    /// cutout) on every image D sees, real and fake, in D and G steps.
    #[serde(default, skip_serializing_if = "is_false")]
    pub apply_diffaug: bool,
    /// LOGAN (the seed's `latent_op`): before D and G see the fakes, each z moves along
    /// the gradient of D(G(z)), both networks in eval mode, and the step's gradients
    /// flow through that move too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent_op: Option<LatentOpConfig>,
    /// With a training split over several devices (`Train(devices: N)`): BatchNorm
    /// statistics over the whole batch, not each device's shard (the reference's
    /// `synchronized_bn`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub sync_bn: bool,
    /// StyleGAN2's training (with a Stylegan2 model, and only there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stylegan2: Option<Stylegan2Training>,
    /// APA (v0.4's `apply_apa` and its `apa_*` fields): in D's steps (and StyleGAN2's
    /// R1 step) each real image is replaced by a fake with probability p, which adapts.
    /// With `ada`, one p serves both (v0.4 asserts their fields equal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apa: Option<AdaptiveP>,
    /// ADA (v0.4's `apply_ada` and its `ada_*` fields): every image D sees, real and
    /// fake, in D, G and R1 steps, goes through ADA's transforms, each firing with
    /// probability p, which adapts. Not with `apply_diffaug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ada: Option<Ada>,
}

/// ADA's augmentation (Karras et al., 2020): which transforms, and how their
/// probability adapts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Ada {
    /// The transforms (v0.4's `ada_aug_type`).
    pub pipeline: AdaPipeline,
    /// Their probability (v0.4's `ada_initial_augment_p`, `ada_target`, `ada_kimg`,
    /// `ada_interval`).
    pub p: AdaptiveP,
}

/// ADA's groups of transforms (v0.4's `ada_aug_type`; its filter, noise and cutout
/// groups are not built).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Explain)]
pub enum AdaPipeline {
    /// x-flip, 90° rotations, integer translation.
    Blit,
    /// Isotropic scaling, rotation, anisotropic scaling, fractional translation.
    Geom,
    /// Brightness, contrast, luma flip, hue, saturation.
    Color,
    /// Blit and Geom.
    Bg,
    /// Blit, Geom and Color (every ADA config of v0.4).
    Bgc,
}

/// An adaptive probability (v0.4's `*_initial_augment_p`, `*_target`, `*_kimg`,
/// `*_interval` of ADA and APA): every `interval` iterations p moves by
/// ±(images seen since) / (kimg · 1000), up where the mean sign of D's outputs on the
/// real images exceeds `target`, down where it falls short, within [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveP {
    /// p at the start.
    #[serde(default)]
    pub initial_p: f64,
    /// The mean sign of D's outputs on real images p steers toward (v0.4: 0.6).
    pub target: f64,
    /// Thousands of images over which p may move by 1 (v0.4: 500).
    pub kimg: f64,
    /// Iterations between moves (v0.4: 4).
    pub interval: u64,
}

impl AdaptiveP {
    fn problem(&self) -> Option<String> {
        if !(0.0..=1.0).contains(&self.initial_p) {
            Some(format!("initial_p {} is not a probability", self.initial_p))
        } else if !(-1.0..=1.0).contains(&self.target) {
            Some(format!(
                "target {}: a mean sign is within [-1, 1]",
                self.target
            ))
        } else if !(self.kimg.is_finite() && self.kimg > 0.0) {
            Some(format!("kimg {} must be positive", self.kimg))
        } else if self.interval == 0 {
            Some("interval must be at least 1".into())
        } else {
            None
        }
    }
}

/// How StyleGAN2 trains (v0.4's `STYLEGAN` section and the StyleGAN2 branches of its
/// worker and `config.py`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Stylegan2Training {
    /// G's lazy regularization interval. As v0.4's `config.py` does, G's Adam learning
    /// rate is multiplied by k/(k + 1) and its betas raised to that power (k this
    /// interval; 1 leaves them), whether or not path length regularization runs.
    pub g_reg_interval: u64,
    /// R1 (`r1_lambda`) as a D step of its own after every this many D steps, on the
    /// last real batches, weighted by the interval (v0.4's `d_reg_interval`,
    /// `r1_place: "outside_loop"`); D's learning rate and betas rescaled as G's.
    pub d_reg_interval: u64,
    /// The EMA of G (v0.4's `apply_g_ema` with `g_ema_kimg`): its half-life in
    /// thousands of images; `None`, no EMA.
    #[serde(default)]
    pub g_ema_kimg: Option<f64>,
    /// The EMA's ramp-up: its half-life is at most this share of the images seen so
    /// far (v0.4's `g_ema_rampup`; `None`, no ramp-up).
    #[serde(default)]
    pub g_ema_rampup: Option<f64>,
    /// Path length regularization with this weight as a G step of its own after every
    /// `g_reg_interval` G steps, on half a batch, weighted by the interval (v0.4's
    /// `apply_pl_reg` and `pl_weight`: off in its CIFAR-10 configurations, 2
    /// elsewhere); its running mean decays by 0.01 and is kept in checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pl_weight: Option<f64>,
}

impl Stylegan2Training {
    /// The factor k/(k + 1) of lazy regularization every k steps (1 for k = 1).
    pub fn lazy_ratio(interval: u64) -> f64 {
        if interval <= 1 {
            1.0
        } else {
            interval as f64 / (interval + 1) as f64
        }
    }

    /// The EMA's decay after `step` G steps of `batch` images:
    /// 0.5^(batch / half-life), the half-life min(kimg·1000, images seen · rampup).
    pub fn ema_beta(&self, step: u64, batch: usize) -> Option<f64> {
        let kimg = self.g_ema_kimg?;
        let mut nimg = kimg * 1000.0;
        if let Some(rampup) = self.g_ema_rampup {
            nimg = nimg.min((batch as u64 * step) as f64 * rampup);
        }
        Some(0.5f64.powf(batch as f64 / nimg.max(1e-8)))
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

/// CRGAN's λ.
fn default_consistency_lambda() -> f64 {
    10.0
}

fn is_default_consistency_lambda(lambda: &f64) -> bool {
    *lambda == default_consistency_lambda()
}

/// StudioGAN v0.4's ReACGAN configurations' margin.
fn default_m_p() -> f64 {
    0.98
}

fn is_default_m_p(m_p: &f64) -> bool {
    *m_p == default_m_p()
}

fn one() -> usize {
    1
}

fn unit() -> f64 {
    1.0
}

fn default_adam_eps() -> f64 {
    1e-8
}

impl TrainConfig {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let positive = [
            ("batch_size", self.batch_size as f64),
            ("accumulation_steps", self.accumulation_steps as f64),
            ("d_steps_per_iter", self.d_steps_per_iter as f64),
            ("g_steps_per_iter", self.g_steps_per_iter as f64),
            ("g_lr", self.g_lr),
            ("d_lr", self.d_lr),
            ("temperature", self.temperature),
        ];
        for (field, value) in positive {
            if value.is_nan() || value <= 0.0 {
                return Err((field, format!("{value} must be positive")));
            }
        }
        for (field, lambda) in [
            ("gradient_penalty", self.gradient_penalty),
            ("dra_lambda", self.dra_lambda),
            ("maxgp_lambda", self.maxgp_lambda),
            ("r1_lambda", self.r1_lambda),
        ] {
            if let Some(lambda) = lambda.filter(|l| !(l.is_finite() && *l > 0.0)) {
                return Err((field, format!("{lambda} must be a positive weight")));
            }
        }
        if let Some(op) = &self.latent_op {
            if !(op.rate > 0.0 && op.rate <= 1.0) {
                return Err(("latent_op", format!("rate {} is not in (0, 1]", op.rate)));
            }
            for (field, value) in [("alpha", op.alpha), ("beta", op.beta)] {
                if !(value.is_finite() && value > 0.0) {
                    return Err(("latent_op", format!("{field} {value} must be positive")));
                }
            }
            if !(op.norm_reg_weight.is_finite() && op.norm_reg_weight >= 0.0) {
                return Err((
                    "latent_op",
                    format!("norm_reg_weight {} must be 0 or more", op.norm_reg_weight),
                ));
            }
        }
        for (field, beta) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err((field, format!("{beta} is not in [0, 1)")));
            }
        }
        if self.batch_size < 2 {
            return Err(("batch_size", "BatchNorm needs at least 2 samples".into()));
        }
        let adaptive = [("apa", self.apa), ("ada", self.ada.map(|ada| ada.p))];
        for (field, p) in adaptive {
            if let Some(problem) = p.as_ref().and_then(AdaptiveP::problem) {
                return Err((field, problem));
            }
        }
        if let (Some(apa), Some(ada)) = (self.apa, self.ada)
            && apa != ada.p
        {
            return Err((
                "apa",
                "ADA and APA share one p: give them the same fields (v0.4 asserts it)".into(),
            ));
        }
        if self.ada.is_some() && self.apply_diffaug {
            return Err((
                "ada",
                "ADA and DiffAugment are two augmentations of D's inputs: choose one".into(),
            ));
        }
        Ok(())
    }

    /// The adaptive p of ADA and APA, where either is on.
    pub fn adaptive_p(&self) -> Option<AdaptiveP> {
        self.ada.map(|ada| ada.p).or(self.apa)
    }

    /// Problems of this training with `model`, as (field of this config, message).
    pub fn check_with(&self, model: &ModelConfig) -> Result<(), (&'static str, String)> {
        self.check_stylegan2_with(model)?;
        let lazy_r1 = model.architecture == Architecture::Stylegan2;
        let penalized = self.gradient_penalty.is_some()
            || self.dra_lambda.is_some()
            || self.maxgp_lambda.is_some()
            || (self.r1_lambda.is_some() && !lazy_r1);
        if self.apa.is_some() && penalized {
            return Err((
                "apa",
                "APA with the gradient penalties of D's step is not built (StyleGAN2's lazy \
                 R1 takes it)"
                    .into(),
            ));
        }
        Ok(())
    }

    fn check_stylegan2_with(&self, model: &ModelConfig) -> Result<(), (&'static str, String)> {
        let Some(model_style) = &model.stylegan2 else {
            return match self.stylegan2 {
                Some(_) => Err((
                    "stylegan2",
                    format!(
                        "{:?} is not StyleGAN2; leave the section out",
                        model.architecture
                    ),
                )),
                None => Ok(()),
            };
        };
        let Some(style) = &self.stylegan2 else {
            return Err((
                "stylegan2",
                "a Stylegan2 model trains with its section: `stylegan2: Some((g_reg_interval: \
                 4, d_reg_interval: 16, g_ema_kimg: Some(500.0), g_ema_rampup: Some(0.05)))`, \
                 as configs/stylegan2/ write it"
                    .into(),
            ));
        };
        if style.g_reg_interval == 0 || style.d_reg_interval == 0 {
            return Err((
                "stylegan2",
                "the regularization intervals are at least 1".into(),
            ));
        }
        for (field, value) in [
            ("g_ema_kimg", style.g_ema_kimg),
            ("g_ema_rampup", style.g_ema_rampup),
        ] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(("stylegan2", format!("{field} {v} must be positive")));
            }
        }
        if style.g_ema_rampup.is_some() && style.g_ema_kimg.is_none() {
            return Err((
                "stylegan2",
                "g_ema_rampup ramps up the EMA of g_ema_kimg, which is not set".into(),
            ));
        }
        if self.ema.is_some() {
            return Err((
                "ema",
                "StyleGAN2's EMA is set by `stylegan2.g_ema_kimg` and `g_ema_rampup` (as v0.4 \
                 asks); leave `ema` out"
                    .into(),
            ));
        }
        if self.latent_op.is_some() {
            return Err((
                "latent_op",
                "LOGAN differentiates through G's forward mode, which StyleGAN2's G does not \
                 have here"
                    .into(),
            ));
        }
        let group = model_style.d_epilogue_mbstd_group_size.min(self.batch_size);
        if !self.batch_size.is_multiple_of(group) {
            return Err((
                "batch_size",
                format!(
                    "{}: D's minibatch standard deviation takes groups of {group} images \
                     (the model's d_epilogue_mbstd_group_size); use a multiple of it",
                    self.batch_size
                ),
            ));
        }
        Ok(())
    }
}
