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
use crate::layers::{Scope, halves, normalize_rows, stacked};

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
/// latent, no average; the reference's default lr multiplier, 0.01): a factor of the
/// images' quantities, the same for values and tangents ([`Scope::label_only`]).
fn class_map<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    y: Tensor<B, 1, Int>,
    classes: usize,
    dim: usize,
    num_layers: usize,
) -> Tensor<B, 2> {
    let layers = Layers {
        c_dim: classes,
        w_dim: dim,
        num_layers,
        lr_multiplier: 0.01,
    };
    let c = y.one_hot(classes).float();
    features(&mut s.label_only().at(name), &layers, None, Some(c))
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
    let x = minibatch_std(&s, x, net.mbstd_group_size, net.mbstd_num_channels);
    let x = conv2d_layer(&mut s, "conv", x, c4, 3, true, lrelu, (1, 1), 1.0);
    let n = x.dims()[0];
    let x = x.reshape([n, c4 * 16]);
    fully_connected(&mut s, "fc", x, c4, lrelu, 1.0, Some(Init::Zeros))
}

/// `MinibatchStdLayer`: the batch split into groups of `group_size` (the image i of
/// n/G being in group i mod n/G), each group's standard deviation per feature, averaged
/// over channels (in `num_channels` sets) and pixels, appended as `num_channels` maps.
/// In forward mode the statistics are the values'; their tangents follow (d std =
/// mean(c·ċ)/std over the group, c the centered values).
pub fn minibatch_std<B: Kernels>(
    s: &Scope<B>,
    x: Tensor<B, 4>,
    group_size: Option<usize>,
    num_channels: usize,
) -> Tensor<B, 4> {
    if num_channels == 0 {
        return x;
    }
    let (values, tangents) = if s.is_tangent() {
        let (v, t) = halves(x);
        (v, Some(t))
    } else {
        (x, None)
    };
    let [big_n, c, h, w] = values.dims();
    let g = group_size.map_or(big_n, |g| g.min(big_n));
    let (n, f) = (big_n / g, num_channels);
    let grouped = |x: Tensor<B, 4>| x.reshape([g, n, f, c / f, h * w]);
    let centered = |y: Tensor<B, 5>| y.clone() - y.mean_dim(0);
    let cv = centered(grouped(values.clone()));
    let std = (cv.clone().powi_scalar(2).mean_dim(0) + 1e-8).sqrt();
    // [1, n, f, c/f, hw] to one value per group and set, as maps over the batch.
    let maps = |per_pixel: Tensor<B, 5>| {
        per_pixel
            .reshape([n, f, (c / f) * h * w])
            .mean_dim(2)
            .reshape([1, n, f, 1, 1])
            .repeat_dim(0, g)
            .reshape([big_n, f, 1, 1])
            .repeat_dim(2, h)
            .repeat_dim(3, w)
    };
    let out = Tensor::cat(vec![values, maps(std.clone())], 1);
    match tangents {
        None => out,
        Some(t) => {
            let ct = centered(grouped(t.clone()));
            let d_std = (cv * ct).mean_dim(0) / std;
            stacked(out, Tensor::cat(vec![t, maps(d_std)], 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{Initializer, Scheme};
    use crate::layers::{Mode, tangent_inputs};
    use crate::stylegan2::tests::draw;
    use crate::tensors::Tensors;
    use burn::backend::{Autodiff, Flex};

    /// D's forward mode against its reverse mode, ⟨J·d⟩ = ⟨Jᵀ·1, d⟩ for the adversarial
    /// logits, for both kinds of blocks, a class projection and minibatch groups.
    #[test]
    fn forward_mode_agrees_with_reverse_mode() {
        let device = Default::default();
        let (n, r) = (4, 16);
        for (blocks, head) in [
            (Blocks::Orig, Head::Plain),
            (
                Blocks::Resnet,
                Head::Projection {
                    classes: 3,
                    mapping_layers: 2,
                },
            ),
        ] {
            let net = Discriminator {
                resolution: r,
                img_channels: 3,
                channel_base: 64,
                channel_max: 8,
                blocks,
                mbstd_group_size: Some(2),
                mbstd_num_channels: 1,
            };
            let y = Tensor::<Flex, 1, Int>::from_ints([0, 1, 2, 1], &device);
            let mut tensors = Tensors::<Flex>::new(&device);
            let mut init = Initializer::new(Scheme::N02, 7);
            let x = draw(1, [n, 3, r, r]);
            forward(
                &mut Scope::building(&mut tensors, &mut init),
                &net,
                &head,
                x.clone(),
                y.clone(),
            );
            let biases: Vec<(String, usize)> = tensors
                .iter()
                .filter(|(name, _)| name.ends_with("bias"))
                .map(|(name, e)| (name.clone(), e.shape.iter().product()))
                .collect();
            for (k, (name, len)) in biases.into_iter().enumerate() {
                let b = draw(10 + k as u64, [1, 1, 1, len]).reshape([len]) * 0.3;
                tensors.set(&name, b);
            }
            let direction = draw(2, [n, 3, r, r]);
            let (stacked_x, stacked_y) = tangent_inputs(x.clone(), direction.clone(), y.clone());
            let out = forward(
                &mut Scope::tangent(&mut tensors, Mode::REPLAY),
                &net,
                &head,
                stacked_x,
                stacked_y,
            );
            let along = out.adv.narrow(0, n, n).sum().into_scalar();

            let mut constant = Tensors::<Autodiff<Flex>>::from_inner(tensors.clone(), false);
            let leaf = Tensor::<Autodiff<Flex>, 4>::from_inner(x).require_grad();
            let y = Tensor::from_inner(y);
            let out = forward(
                &mut Scope::new(&mut constant, Mode::REPLAY),
                &net,
                &head,
                leaf.clone(),
                y,
            );
            let g = leaf.grad(&out.adv.sum().backward()).unwrap();
            let reverse = (g * direction).sum().into_scalar();
            let scale = along.abs().max(reverse.abs()).max(1e-3);
            assert!(
                (along - reverse).abs() / scale < 1e-4,
                "{blocks:?} {head:?}: forward {along}, reverse {reverse}"
            );
        }
    }
}
