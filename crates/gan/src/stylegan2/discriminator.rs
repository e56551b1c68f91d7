//! StyleGAN2's discriminator, as v0.4 builds it (`Discriminator` of
//! `DiscriminatorBlock`s and a `DiscriminatorEpilogue`): from the image's resolution
//! down to 4×4, blocks of two 3×3 convolutions, the second downsampling through the
//! FIR filter ("orig"; "resnet" adds a 1×1 downsampling skip and scales both paths by
//! √½); at 4×4 the minibatch standard deviation, a convolution and a fully connected
//! layer give h. v0.4's heads on h: the adversarial logit (`linear1`), the projection
//! onto the mapped class (`SPD`), ACGAN's class logits (`AC`), ContraGAN's and
//! ReACGAN's image and class embeddings (`2C`, `D2DCE`).

use burn::prelude::*;
use kernels::Kernels;

use super::layers::{conv2d_layer, fully_connected};
use super::mapping::{Layers, features};
use crate::bias_act::Activation;
use crate::discriminator::Output;
use crate::init::Init;
use crate::layers::{Scope, normalize_rows, without_tangent};

/// Whether D's blocks add a downsampled skip path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocks {
    Orig,
    Resnet,
}

/// The reference's `Discriminator` arguments that shape its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discriminator {
    pub resolution: usize,
    pub img_channels: usize,
    /// Channels at resolution r: min(channel_base / r, channel_max).
    pub channel_base: usize,
    pub channel_max: usize,
    pub blocks: Blocks,
    /// Images per minibatch-std group (`None`: the whole batch).
    pub mbstd_group_size: Option<usize>,
    pub mbstd_num_channels: usize,
}

/// What D reads from h besides the adversarial logit, with the classes it tells apart
/// (doubled for ADC).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Head {
    /// `linear1` alone (`W/O`).
    Plain,
    /// `SPD`: ⟨linear1(h), cmap(y)⟩/√cmap_dim, the class mapped by a mapping network of
    /// `mapping_layers` to cmap_dim, the 4×4 channels.
    Projection {
        classes: usize,
        mapping_layers: usize,
    },
    /// `AC`: class logits from `linear2` (no bias), of h L2-normalized where
    /// `normalize` (the reference normalizes h only: its loop over `linear2`'s
    /// weights rebinds a local).
    Classifier { classes: usize, normalize: bool },
    /// `2C`/`D2DCE`: `linear2(h)` and the class's one-layer mapping, both of `dim`,
    /// L2-normalized where `normalize`.
    Embedding {
        classes: usize,
        dim: usize,
        normalize: bool,
    },
}

impl Discriminator {
    pub fn channels(&self, resolution: usize) -> usize {
        (self.channel_base / resolution).min(self.channel_max)
    }
}

/// The class `y` mapped to `dim` by D's mapping network `name` of `num_layers` (no
/// latent, no average; the reference's default lr multiplier, 0.01). Labels carry no
/// tangent.
fn class_map<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    y: Tensor<B, 1, Int>,
    classes: usize,
    dim: usize,
    num_layers: usize,
) -> Tensor<B, 2> {
    let c = without_tangent(s, y.one_hot(classes).float());
    let layers = Layers {
        c_dim: classes,
        w_dim: dim,
        num_layers,
        lr_multiplier: 0.01,
    };
    features(&mut s.at(name), &layers, None, Some(c))
}

/// D on images `x` (`[n, img_channels, r, r]`) with labels `y`.
pub fn forward<B: Kernels>(
    s: &mut Scope<B>,
    net: &Discriminator,
    head: &Head,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
) -> Output<B> {
    let h = body(s, net, x);
    let n = h.dims()[0];
    let c4 = net.channels(4);
    let bias = Some(Init::Zeros);
    let linear = Activation::Linear;
    let mut out = Output {
        features: h.clone(),
        adv: Tensor::zeros([n], &h.device()),
        class_logits: None,
        contrastive: None,
    };
    match *head {
        Head::Projection {
            classes,
            mapping_layers,
        } => {
            let embed = fully_connected(s, "linear1", h.clone(), c4, linear, 1.0, bias);
            let cmap = class_map(s, "mapping", y.clone(), classes, c4, mapping_layers);
            let scale = 1.0 / (c4 as f64).sqrt();
            out.adv = (embed * cmap).sum_dim(1).reshape([n]) * scale;
        }
        _ => {
            out.adv = fully_connected(s, "linear1", h.clone(), 1, linear, 1.0, bias).reshape([n]);
        }
    }
    match *head {
        Head::Classifier { classes, normalize } => {
            let h = if normalize { normalize_rows(h) } else { h };
            out.class_logits = Some(fully_connected(s, "linear2", h, classes, linear, 1.0, None));
        }
        Head::Embedding {
            classes,
            dim,
            normalize,
        } => {
            let embed = fully_connected(s, "linear2", h, dim, linear, 1.0, bias);
            let proxy = class_map(s, "embedding", y, classes, dim, 1);
            out.contrastive = Some(match normalize {
                true => (normalize_rows(embed), normalize_rows(proxy)),
                false => (embed, proxy),
            });
        }
        Head::Plain | Head::Projection { .. } => {}
    }
    out
}

/// The blocks and the epilogue: h, `[n, channels(4)]`.
fn body<B: Kernels>(s: &mut Scope<B>, net: &Discriminator, img: Tensor<B, 4>) -> Tensor<B, 2> {
    let lrelu = Activation::Lrelu;
    let half = 0.5f64.sqrt();
    let mut res = net.resolution;
    let mut x = {
        let mut s = s.at(format!("b{res}"));
        conv2d_layer(
            &mut s,
            "fromrgb",
            img,
            net.channels(res),
            1,
            true,
            lrelu,
            (1, 1),
            1.0,
        )
    };
    while res > 4 {
        let mut s = s.at(format!("b{res}"));
        let (tmp, out) = (net.channels(res), net.channels(res / 2));
        let skip = (net.blocks == Blocks::Resnet).then(|| {
            let linear = Activation::Linear;
            conv2d_layer(
                &mut s,
                "skip",
                x.clone(),
                out,
                1,
                false,
                linear,
                (1, 2),
                half,
            )
        });
        let h = conv2d_layer(&mut s, "conv0", x, tmp, 3, true, lrelu, (1, 1), 1.0);
        let gain = if skip.is_some() { half } else { 1.0 };
        let h = conv2d_layer(&mut s, "conv1", h, out, 3, true, lrelu, (1, 2), gain);
        x = match skip {
            Some(skip) => skip + h,
            None => h,
        };
        res /= 2;
    }
    let mut s = s.at("b4");
    let c4 = net.channels(4);
    let x = minibatch_std(x, net.mbstd_group_size, net.mbstd_num_channels);
    let x = conv2d_layer(&mut s, "conv", x, c4, 3, true, lrelu, (1, 1), 1.0);
    let n = x.dims()[0];
    let x = x.reshape([n, c4 * 16]);
    fully_connected(&mut s, "fc", x, c4, lrelu, 1.0, Some(Init::Zeros))
}

/// `MinibatchStdLayer`: the batch split into groups of `group_size` (the image i of
/// n/G being in group i mod n/G), each group's standard deviation per feature, averaged
/// over channels (in `num_channels` sets) and pixels, appended as `num_channels` maps.
pub fn minibatch_std<B: Backend>(
    x: Tensor<B, 4>,
    group_size: Option<usize>,
    num_channels: usize,
) -> Tensor<B, 4> {
    if num_channels == 0 {
        return x;
    }
    let [big_n, c, h, w] = x.dims();
    let g = group_size.map_or(big_n, |g| g.min(big_n));
    let (n, f) = (big_n / g, num_channels);
    let y = x.clone().reshape([g, n, f, c / f, h * w]);
    let centered = y.clone() - y.mean_dim(0);
    let std = (centered.powi_scalar(2).mean_dim(0) + 1e-8).sqrt();
    let std = std.reshape([n, f, (c / f) * h * w]).mean_dim(2);
    let maps = std
        .reshape([1, n, f, 1, 1])
        .repeat_dim(0, g)
        .reshape([big_n, f, 1, 1])
        .repeat_dim(2, h)
        .repeat_dim(3, w);
    Tensor::cat(vec![x, maps], 1)
}
