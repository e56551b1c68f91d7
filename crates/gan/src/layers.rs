//! Layers with the semantics of the reference's PyTorch modules, written as functions
//! over a [`Scope`]: the scope names tensors the way PyTorch's state dict does
//! (`blocks.0.0.conv2d1.weight_orig`), hands out their values, and takes back the
//! buffers a train-mode forward updates.
//!
//! The forward pass is the only description of a network: building one runs the forward
//! once on a tiny batch with an [`Initializer`] in the scope, and every tensor the
//! forward asks for and does not find is created there, with its shape and initial
//! value. Names and shapes therefore cannot drift from what the forward reads.
//!
//! The same forward also differentiates in forward mode ([`Scope::tangent`]): the batch
//! is stacked `[x; ẋ]`, values then tangents (derivatives along the direction ẋ), and
//! each layer maps both halves: linear maps apply to both, biases to the values only,
//! and the nonlinear layers use their derivative at the values (ReLU's mask, max-pool's
//! indices, softmax's and BatchNorm's Jacobians). Differentiating the tangents in
//! reverse mode then gives ∂/∂θ ⟨∇ₓD, ẋ⟩, the gradient of a gradient that a gradient
//! penalty (through D) and LOGAN (through G and D) need and that burn's autodiff,
//! without double backward, cannot give. Masks and indices are constants, as they are
//! to PyTorch's double backward.

use burn::prelude::*;

use burn::tensor::activation;
use burn::tensor::module::{max_pool2d, max_pool2d_with_indices};
use burn::tensor::ops::ConvOptions;
use kernels::{self, Kernels, conv2d};

use super::init::{Init, Initializer};
use super::tensors::{Entry, Role, Tensors};

/// Spectral norm's eps for normalizing u and v, as in the reference's PyTorch.
const SN_EPS: f64 = 1e-12;
/// A BatchNorm layer's eps and running-statistics momentum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Norm {
    pub eps: f64,
    pub momentum: f64,
}

/// The reference's BatchNorm: plain layers, and the ones inside conditional BatchNorm.
pub const BN: Norm = Norm {
    eps: 1e-5,
    momentum: 1e-4,
};
pub const CBN: Norm = Norm {
    eps: 1e-5,
    momentum: 1e-3,
};

/// How a forward pass treats state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mode {
    /// BatchNorm normalizes with the batch's statistics (else the running ones).
    pub batch_stats: bool,
    /// Spectral norm does a power iteration and BatchNorm updates its running
    /// statistics, as PyTorch does in train mode.
    pub update: bool,
    /// Overrides the layers' running-statistics momentum: the reference's 1e-4 takes
    /// tens of thousands of steps to settle, too slow for a classifier trained in
    /// hundreds that is then used in eval mode.
    pub momentum: Option<f64>,
}

impl Mode {
    pub const TRAIN: Mode = Mode {
        batch_stats: true,
        update: true,
        momentum: None,
    };
    pub const EVAL: Mode = Mode {
        batch_stats: false,
        update: false,
        momentum: None,
    };
    /// Train mode that changes no state: a further pass over a batch already seen.
    pub const REPLAY: Mode = Mode {
        batch_stats: true,
        update: false,
        momentum: None,
    };
}

/// Sums a BatchNorm layer's per-channel statistics (`[1, c]`) over the shards of a
/// data-parallel step, so that every shard normalizes with the whole batch's (the
/// reference's synchronized BatchNorm).
pub trait SumShards<B: Backend>: Sync {
    /// The sum of every shard's `local`, on this shard's device.
    fn sum(&self, local: Tensor<B, 2>) -> Tensor<B, 2>;
    fn shards(&self) -> usize;
}

/// Where a forward pass reads and writes its tensors.
pub struct Scope<'a, B: Kernels> {
    tensors: &'a mut Tensors<B>,
    builder: Option<&'a mut Initializer>,
    path: String,
    pub mode: Mode,
    /// BatchNorm statistics over all shards of a data-parallel step, not this one's.
    sync: Option<&'a dyn SumShards<B>>,
    /// The batch is values stacked over tangents (see the module's documentation).
    tangent: bool,
}

impl<'a, B: Kernels> Scope<'a, B> {
    pub fn new(tensors: &'a mut Tensors<B>, mode: Mode) -> Scope<'a, B> {
        Scope {
            tensors,
            builder: None,
            path: String::new(),
            mode,
            sync: None,
            tangent: false,
        }
    }

    /// A scope whose batch is `[x; ẋ]`, values stacked over tangents: the forward
    /// returns D's values and their derivatives along ẋ (see the module's
    /// documentation).
    pub fn tangent(tensors: &'a mut Tensors<B>, mode: Mode) -> Scope<'a, B> {
        Scope {
            tangent: true,
            ..Scope::new(tensors, mode)
        }
    }

    /// The scope of one shard of a data-parallel step; with `sync`, its BatchNorm
    /// layers use the statistics of every shard.
    pub fn sharded(
        tensors: &'a mut Tensors<B>,
        mode: Mode,
        sync: Option<&'a dyn SumShards<B>>,
    ) -> Scope<'a, B> {
        Scope {
            sync,
            ..Scope::new(tensors, mode)
        }
    }

    /// A scope that creates every tensor it is asked for and does not have.
    pub fn building(tensors: &'a mut Tensors<B>, init: &'a mut Initializer) -> Scope<'a, B> {
        Scope {
            tensors,
            builder: Some(init),
            path: String::new(),
            mode: Mode::EVAL,
            sync: None,
            tangent: false,
        }
    }

    /// Whether the batch is values stacked over tangents.
    pub fn is_tangent(&self) -> bool {
        self.tangent
    }

    /// This scope for a quantity of the labels alone, used as a factor of the images'
    /// quantities (a class projection): no tangents, so a stacked batch's two halves
    /// (the same labels) both map as values, the factor the tangents are multiplied by.
    pub fn label_only(&mut self) -> Scope<'_, B> {
        Scope {
            tangent: false,
            ..self.at_path(self.path.clone())
        }
    }

    /// The scope of a submodule.
    pub fn at(&mut self, name: impl std::fmt::Display) -> Scope<'_, B> {
        let path = self.join(&name.to_string());
        self.at_path(path)
    }

    fn at_path(&mut self, path: String) -> Scope<'_, B> {
        Scope {
            path,
            tensors: self.tensors,
            builder: self.builder.as_deref_mut(),
            mode: self.mode,
            sync: self.sync,
            tangent: self.tangent,
        }
    }

    fn join(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    pub fn device(&self) -> B::Device {
        self.tensors.device().clone()
    }

    /// The tensor `name` of this scope, created first when building.
    pub fn tensor(&mut self, name: &str, shape: &[usize], role: Role, init: Init) -> Tensor<B, 1> {
        let full = self.join(name);
        if let Some(entry) = self.tensors.get(&full) {
            debug_assert_eq!(entry.shape, shape, "shape of `{full}`");
            return entry.value.clone();
        }
        let builder = self
            .builder
            .as_deref_mut()
            .unwrap_or_else(|| panic!("network state has no tensor `{full}`"));
        let values = builder.values(init, shape);
        let n = values.len();
        let value = Tensor::from_data(TensorData::new(values, [n]), self.tensors.device());
        self.tensors.insert(
            full,
            Entry {
                shape: shape.to_vec(),
                role,
                value: value.clone(),
            },
        );
        value
    }

    fn param(&mut self, name: &str, shape: &[usize], init: Init) -> Tensor<B, 1> {
        self.tensor(name, shape, Role::Param, init)
    }

    /// Stores a buffer's new value (detached: state never carries gradients).
    pub(crate) fn store(&mut self, name: &str, value: Tensor<B, 1>) {
        let full = self.join(name);
        self.tensors.set(&full, value.detach());
    }
}

/// Which dimension of a weight spectral norm treats as the rows of its matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// Convolutions, linear layers, embeddings.
    First,
    /// Transposed convolutions, whose weight is `[in, out, kh, kw]`.
    Second,
}

/// The weight of a layer, divided by its largest singular value when `sn` is set
/// (`torch.nn.utils.spectral_norm`, one power iteration per train-mode forward; the
/// iteration's u and v are constants for the gradient).
fn weight<B: Kernels>(s: &mut Scope<B>, shape: &[usize], sn: bool, rows: Rows) -> Tensor<B, 1> {
    if !sn {
        return s.param("weight", shape, Init::Weight);
    }
    let w = s.param("weight_orig", shape, Init::Weight);
    let n: usize = shape.iter().product();
    let (h, width) = match rows {
        Rows::First => (shape[0], n / shape[0]),
        Rows::Second => (shape[1], n / shape[1]),
    };
    let mut u = s.tensor("weight_u", &[h], Role::Buffer, Init::UnitNormal);
    let mut v = s.tensor("weight_v", &[width], Role::Buffer, Init::UnitNormal);
    let matrix = match rows {
        Rows::First => w.clone().reshape([h, width]),
        Rows::Second => {
            let [cin, cout] = [shape[0], shape[1]];
            let k = n / (cin * cout);
            w.clone()
                .reshape([cin, cout, k])
                .swap_dims(0, 1)
                .reshape([h, width])
        }
    };
    if s.mode.update {
        let m = matrix.clone().detach();
        v = normalize(
            m.clone()
                .transpose()
                .matmul(u.reshape([h, 1]))
                .reshape([width]),
        );
        u = normalize(m.matmul(v.clone().reshape([width, 1])).reshape([h]));
        s.store("weight_u", u.clone());
        s.store("weight_v", v.clone());
    }
    let sigma = u
        .reshape([1, h])
        .matmul(matrix.matmul(v.reshape([width, 1])))
        .reshape([1]);
    w / sigma
}

/// The values and the tangents of a stacked batch.
pub(crate) fn halves<B: Backend, const D: usize>(x: Tensor<B, D>) -> (Tensor<B, D>, Tensor<B, D>) {
    let n = x.dims()[0] / 2;
    (x.clone().narrow(0, 0, n), x.narrow(0, n, n))
}

pub(crate) fn stacked<B: Backend, const D: usize>(
    values: Tensor<B, D>,
    tangents: Tensor<B, D>,
) -> Tensor<B, D> {
    Tensor::cat(vec![values, tangents], 0)
}

/// The inputs of a forward pass in a [`Scope::tangent`]: the batch `x` stacked over its
/// tangents `direction`, and the labels `y` for both halves.
pub fn tangent_inputs<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    direction: Tensor<B, D>,
    y: Tensor<B, 1, Int>,
) -> (Tensor<B, D>, Tensor<B, 1, Int>) {
    (stacked(x, direction), Tensor::cat(vec![y.clone(), y], 0))
}

/// `y + shift` (broadcast); a tangent has no shift.
fn shifted<B: Kernels, const D: usize>(
    s: &Scope<B>,
    y: Tensor<B, D>,
    shift: Tensor<B, D>,
) -> Tensor<B, D> {
    if s.tangent {
        let (values, tangents) = halves(y);
        stacked(values + shift, tangents)
    } else {
        y + shift
    }
}

/// `x` for a quantity of the labels alone (an embedding): in forward mode its tangent
/// is zero, since the direction moves the inputs, never the labels.
pub fn without_tangent<B: Kernels, const D: usize>(s: &Scope<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    if !s.tangent {
        return x;
    }
    let (values, tangents) = halves(x);
    stacked(values, tangents.zeros_like())
}

/// `x / max(‖x‖, eps)`, as `torch.nn.functional.normalize`.
fn normalize<B: Backend>(x: Tensor<B, 1>) -> Tensor<B, 1> {
    let norm = x.clone().powi_scalar(2).sum().sqrt().clamp_min(SN_EPS);
    x / norm
}

/// Rows of `x` divided by their L2 norms (eps 1e-12).
pub fn normalize_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(SN_EPS);
    x / norm
}

pub fn linear<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    x: Tensor<B, 2>,
    out: usize,
    bias: bool,
    sn: bool,
) -> Tensor<B, 2> {
    let mut s = s.at(name);
    let inp = x.dims()[1];
    let w = weight(&mut s, &[out, inp], sn, Rows::First).reshape([out, inp]);
    let y = x.matmul(w.transpose());
    if bias {
        let b = s.param("bias", &[out], Init::Zeros);
        shifted(&s, y, b.reshape([1, out]))
    } else {
        y
    }
}

#[allow(clippy::too_many_arguments)]
pub fn conv<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    x: Tensor<B, 4>,
    out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    bias: bool,
    sn: bool,
) -> Tensor<B, 4> {
    let mut s = s.at(name);
    let inp = x.dims()[1];
    let shape = [out, inp, kernel, kernel];
    let w = weight(&mut s, &shape, sn, Rows::First).reshape(shape);
    let b = bias.then(|| s.param("bias", &[out], Init::Zeros));
    let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
    match b {
        Some(b) if s.tangent => shifted(&s, conv2d(x, w, None, options), b.reshape([1, out, 1, 1])),
        b => conv2d(x, w, b, options),
    }
}

/// A transposed convolution with bias, `[in, out, k, k]` weights.
#[allow(clippy::too_many_arguments)]
pub fn deconv<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    x: Tensor<B, 4>,
    out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    sn: bool,
) -> Tensor<B, 4> {
    let mut s = s.at(name);
    let inp = x.dims()[1];
    let shape = [inp, out, kernel, kernel];
    let w = weight(&mut s, &shape, sn, Rows::Second).reshape(shape);
    let b = s.param("bias", &[out], Init::Zeros);
    if s.tangent {
        let y = kernels::conv_transpose2d(x, w, b.zeros_like(), stride, padding);
        shifted(&s, y, b.reshape([1, out, 1, 1]))
    } else {
        kernels::conv_transpose2d(x, w, b, stride, padding)
    }
}

/// Rows of a `[classes, dim]` table, one per label.
pub fn embedding<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    y: Tensor<B, 1, Int>,
    classes: usize,
    dim: usize,
    sn: bool,
) -> Tensor<B, 2> {
    let mut s = s.at(name);
    let w = weight(&mut s, &[classes, dim], sn, Rows::First).reshape([classes, dim]);
    w.select(0, y)
}

/// The statistics part of BatchNorm2d (eps 1e-5, PyTorch's train and eval behaviour):
/// returns `base` and a per-channel `scale` (`[1, c]`) with `bn(x) = base · scale`,
/// so that the caller's affine part folds into the one pass that applies it.
fn normalize_batch<B: Kernels>(
    s: &mut Scope<B>,
    x: Tensor<B, 4>,
    norm: Norm,
) -> (Tensor<B, 4>, Tensor<B, 2>) {
    let momentum = s.mode.momentum.unwrap_or(norm.momentum);
    // The statistics are the values'; tangents follow them (below).
    let (x, tangents) = if s.tangent {
        let (values, tangents) = halves(x);
        (values, Some(tangents))
    } else {
        (x, None)
    };
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let running_mean = s.tensor("running_mean", &[c], Role::Buffer, Init::Zeros);
    let running_var = s.tensor("running_var", &[c], Role::Buffer, Init::Ones);
    // Means over images and pixels, as reductions along contiguous axes.
    let channel_mean = |t: Tensor<B, 4>| {
        t.reshape([n, c, h * w])
            .mean_dim(2)
            .reshape([n, c])
            .mean_dim(0)
    };
    let ones = Tensor::<B, 2>::ones([1, c], &device);
    let (centered, var) = if s.mode.batch_stats {
        let (mean, centered, var, count) = match s.sync {
            None => {
                let mean = channel_mean(x.clone());
                let centered = kernels::channel_affine(x, ones.clone(), -mean.clone());
                let var = channel_mean(centered.clone().powi_scalar(2));
                (mean, centered, var, (n * h * w) as f64)
            }
            // Sums over every shard's images and pixels, divided by all of them.
            Some(sync) => {
                let count = (n * h * w * sync.shards()) as f64;
                let channel_sum = |t: Tensor<B, 4>| {
                    t.reshape([n, c, h * w])
                        .sum_dim(2)
                        .reshape([n, c])
                        .sum_dim(0)
                };
                let mean = sync.sum(channel_sum(x.clone())) / count;
                let centered = kernels::channel_affine(x, ones.clone(), -mean.clone());
                let var = sync.sum(channel_sum(centered.clone().powi_scalar(2))) / count;
                (mean, centered, var, count)
            }
        };
        if s.mode.update {
            let unbiased = var.clone().reshape([c]) * (count / (count - 1.0).max(1.0));
            let new_mean = running_mean * (1.0 - momentum) + mean.clone().reshape([c]) * momentum;
            let new_var = running_var * (1.0 - momentum) + unbiased * momentum;
            s.store("running_mean", new_mean);
            s.store("running_var", new_var);
        }
        (centered, var)
    } else {
        let mean = running_mean.reshape([1, c]);
        (
            kernels::channel_affine(x, ones.clone(), -mean),
            running_var.reshape([1, c]),
        )
    };
    let scale = (var + norm.eps).sqrt().recip();
    let Some(tangents) = tangents else {
        return (centered, scale);
    };
    // The derivative of (x − μ)·scale along ẋ, over scale: ẋ centred, less the values'
    // share along it (the derivative of the variance); running statistics are constants.
    let tangents = if s.mode.batch_stats {
        let tangents = kernels::channel_affine(tangents.clone(), ones, -channel_mean(tangents));
        let along =
            channel_mean(centered.clone() * tangents.clone()) * scale.clone().powi_scalar(2);
        tangents - kernels::channel_affine(centered.clone(), along.clone(), along.zeros_like())
    } else {
        tangents
    };
    (stacked(centered, tangents), scale)
}

/// BatchNorm2d; `affine` adds the learned `weight` and `bias`.
pub fn batch_norm<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    x: Tensor<B, 4>,
    affine: bool,
    norm: Norm,
) -> Tensor<B, 4> {
    let mut s = s.at(name);
    let c = x.dims()[1];
    let (base, scale) = normalize_batch(&mut s, x, norm);
    let (gain, shift) = if affine {
        let gamma = s.param("weight", &[c], Init::Ones).reshape([1, c]);
        let beta = s.param("bias", &[c], Init::Zeros).reshape([1, c]);
        (scale * gamma, beta)
    } else {
        let zeros = scale.zeros_like();
        (scale, zeros)
    };
    if s.tangent {
        let scaled = kernels::channel_affine(base, gain, shift.zeros_like());
        shifted(&s, scaled, shift.reshape([1, c, 1, 1]))
    } else {
        kernels::channel_affine(base, gain, shift)
    }
}

/// Conditional BatchNorm with a per-class gain and bias table (`embed`, `[classes, 2C]`):
/// `(1 + γ_y)·bn(x) + β_y`.
pub fn class_batch_norm<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
    classes: usize,
) -> Tensor<B, 4> {
    let mut s = s.at(name);
    let [n, c, _, _] = x.dims();
    let (base, scale) = normalize_batch(&mut s.at("bn"), x, CBN);
    let table = embedding(&mut s, "embed", y, classes, 2 * c, false);
    let gamma = table.clone().slice([0..n, 0..c]);
    let beta = without_tangent(&s, table.slice([0..n, c..2 * c]));
    kernels::channel_affine(base, (gamma + 1.0) * scale, beta)
}

/// BigGAN's conditional BatchNorm: gain and bias are linear maps (no bias, spectrally
/// normalized with `sn`) of the shared class embedding concatenated with a chunk of z.
pub fn shared_batch_norm<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    x: Tensor<B, 4>,
    condition: Tensor<B, 2>,
    sn: bool,
) -> Tensor<B, 4> {
    let mut s = s.at(name);
    let c = x.dims()[1];
    let gain = linear(&mut s, "gain", condition.clone(), c, false, sn);
    let bias = linear(&mut s, "bias", condition, c, false, sn);
    let (base, scale) = normalize_batch(&mut s.at("bn"), x, CBN);
    if !s.tangent {
        return kernels::channel_affine(base, (gain + 1.0) * scale, bias);
    }
    // The gain depends on z too: (1 + γ)·x̂ is bilinear, its tangent (1 + γ)·ẋ̂ + γ̇·x̂.
    let ((base, base_t), (gain, gain_t)) = (halves(base), halves(gain));
    let (bias, bias_t) = halves(bias);
    let gain = (gain + 1.0) * scale.clone();
    let zeros = gain_t.zeros_like();
    stacked(
        kernels::channel_affine(base.clone(), gain.clone(), bias),
        kernels::channel_affine(base_t, gain, bias_t)
            + kernels::channel_affine(base, gain_t * scale, zeros),
    )
}

/// SAGAN self-attention: θ, φ to C/8 and g to C/2 channels (1×1, no bias), φ and g
/// max-pooled 2×2, softmax over keys, back to C channels, `x + σ·attention`, σ from 0.
pub fn self_attention<B: Kernels>(s: &mut Scope<B>, x: Tensor<B, 4>, sn: bool) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let hw = h * w;
    let tangent = s.tangent;
    let pool = |t: Tensor<B, 4>| {
        if !tangent {
            return max_pool2d(t, [2, 2], [2, 2], [0, 0], [1, 1], false);
        }
        // A tangent is taken where the values' maximum was.
        let (values, tangents) = halves(t);
        let (pooled, at) = max_pool2d_with_indices(values, [2, 2], [2, 2], [0, 0], [1, 1], false);
        let [m, c, h, w] = tangents.dims();
        let [_, _, ph, pw] = pooled.dims();
        let picked = tangents
            .reshape([m, c, h * w])
            .gather(2, at.reshape([m, c, ph * pw]))
            .reshape([m, c, ph, pw]);
        stacked(pooled, picked)
    };
    let theta = conv(s, "conv1x1_theta", x.clone(), c / 8, 1, 1, 0, false, sn);
    let theta = theta.reshape([n, c / 8, hw]);
    let phi = pool(conv(s, "conv1x1_phi", x.clone(), c / 8, 1, 1, 0, false, sn));
    let phi = phi.reshape([n, c / 8, hw / 4]);
    let g = pool(conv(s, "conv1x1_g", x.clone(), c / 2, 1, 1, 0, false, sn));
    let g = g.reshape([n, c / 2, hw / 4]);
    let attended = if tangent {
        // Bilinear in (θ, φ) and in (g, attention); softmax's Jacobian at the values.
        let ((theta, theta_t), (phi, phi_t), (g, g_t)) = (halves(theta), halves(phi), halves(g));
        let theta_t = theta_t.swap_dims(1, 2);
        let theta = theta.swap_dims(1, 2);
        let logits_t = theta_t.matmul(phi.clone()) + theta.clone().matmul(phi_t);
        let attention = activation::softmax(theta.matmul(phi), 2);
        let weighted = (attention.clone() * logits_t.clone()).sum_dim(2);
        let attention_t = attention.clone() * (logits_t - weighted);
        let attention = attention.swap_dims(1, 2);
        stacked(
            g.clone().matmul(attention.clone()),
            g_t.matmul(attention) + g.matmul(attention_t.swap_dims(1, 2)),
        )
    } else {
        let attention = activation::softmax(theta.swap_dims(1, 2).matmul(phi), 2);
        g.matmul(attention.swap_dims(1, 2))
    };
    let attended = attended.reshape([n, c / 2, h, w]);
    let attended = conv(s, "conv1x1_attn", attended, c, 1, 1, 0, false, sn);
    let sigma = s.param("sigma", &[1], Init::Zeros).reshape([1, 1, 1, 1]);
    x + attended * sigma
}

/// Nearest-neighbour upsampling by 2 (`F.interpolate(scale_factor=2, mode='nearest')`).
pub fn upsample<B: Kernels>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    kernels::upsample2(x)
}

/// `F.avg_pool2d(x, 2)`.
pub fn avg_pool<B: Kernels>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    kernels::mean2(x)
}

/// ReLU, or LeakyReLU with slope 0.1.
pub fn activate<B: Kernels, const D: usize>(
    s: &Scope<B>,
    x: Tensor<B, D>,
    leaky: bool,
) -> Tensor<B, D> {
    let apply = |x| {
        if leaky {
            activation::leaky_relu(x, 0.1)
        } else {
            activation::relu(x)
        }
    };
    if !s.tangent {
        return apply(x);
    }
    let (values, tangents) = halves(x);
    let slope = if leaky { 0.1 } else { 0.0 };
    let gain = values.clone().greater_elem(0.0).float() * (1.0 - slope) + slope;
    stacked(apply(values), tangents * gain)
}

/// tanh; a tangent is scaled by its derivative 1 − tanh².
pub fn tanh<B: Kernels, const D: usize>(s: &Scope<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    if !s.tangent {
        return activation::tanh(x);
    }
    let (values, tangents) = halves(x);
    let y = activation::tanh(values);
    stacked(y.clone(), tangents * (y.powi_scalar(2).neg() + 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn spectral_norm_matches_a_hand_power_iteration() {
        let device = Default::default();
        let mut tensors = Tensors::<Flex>::new(&device);
        let mut init = Initializer::new(super::super::init::Scheme::N02, 5);
        let x = Tensor::<Flex, 2>::ones([1, 3], &device);
        linear(
            &mut Scope::building(&mut tensors, &mut init),
            "l",
            x.clone(),
            4,
            false,
            true,
        );
        let host = tensors.to_snapshot();
        let w = &host.tensors["l.weight_orig"].data;
        let u0 = &host.tensors["l.weight_u"].data;
        // One power iteration by hand, in f64.
        let at = |i: usize, j: usize| w[i * 3 + j] as f64;
        let mut v: Vec<f64> = (0..3)
            .map(|j| (0..4).map(|i| at(i, j) * u0[i] as f64).sum())
            .collect();
        let nv = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.iter_mut().for_each(|a| *a /= nv);
        let mut u: Vec<f64> = (0..4)
            .map(|i| (0..3).map(|j| at(i, j) * v[j]).sum())
            .collect();
        let nu = u.iter().map(|a| a * a).sum::<f64>().sqrt();
        u.iter_mut().for_each(|a| *a /= nu);
        let sigma: f64 = (0..4)
            .map(|i| u[i] * (0..3).map(|j| at(i, j) * v[j]).sum::<f64>())
            .sum();
        let expected: Vec<f64> = (0..4)
            .map(|i| (0..3).map(|j| at(i, j)).sum::<f64>() / sigma)
            .collect();

        let y = linear(
            &mut Scope::new(&mut tensors, Mode::TRAIN),
            "l",
            x.clone(),
            4,
            false,
            true,
        );
        let y = y.into_data().to_vec::<f32>().unwrap();
        for (a, b) in y.iter().zip(&expected) {
            assert!((*a as f64 - b).abs() < 1e-5, "{y:?} vs {expected:?}");
        }
        let stored = tensors.to_snapshot();
        for (a, b) in stored.tensors["l.weight_u"].data.iter().zip(&u) {
            assert!((*a as f64 - b).abs() < 1e-6);
        }
        // Eval mode leaves u and v alone.
        linear(
            &mut Scope::new(&mut tensors, Mode::EVAL),
            "l",
            x,
            4,
            false,
            true,
        );
        assert_eq!(tensors.to_snapshot(), stored);
    }

    #[test]
    fn batch_norm_updates_running_statistics_like_pytorch() {
        let device = Default::default();
        let mut tensors = Tensors::<Flex>::new(&device);
        let mut init = Initializer::new(super::super::init::Scheme::Ortho, 1);
        let norm = Norm {
            eps: 1e-5,
            momentum: 0.1,
        };
        let data: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let x = Tensor::<Flex, 1>::from_floats(data.as_slice(), &device).reshape([2, 1, 2, 2]);
        batch_norm(
            &mut Scope::building(&mut tensors, &mut init),
            "bn",
            x.clone(),
            true,
            norm,
        );
        let y = batch_norm(
            &mut Scope::new(&mut tensors, Mode::TRAIN),
            "bn",
            x,
            true,
            norm,
        );
        let y = y.into_data().to_vec::<f32>().unwrap();
        // mean 3.5, biased var 5.25, unbiased 6.0
        assert!((y[0] - (-3.5 / (5.25f32 + 1e-5).sqrt())).abs() < 1e-6);
        let s = tensors.to_snapshot();
        assert!((s.tensors["bn.running_mean"].data[0] - 0.35).abs() < 1e-6);
        assert!((s.tensors["bn.running_var"].data[0] - (0.9 + 0.6)).abs() < 1e-6);
    }
}
