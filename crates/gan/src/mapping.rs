//! StyleGAN2's mapping network, as StudioGAN v0.4 builds it (`models/stylegan2.py`:
//! `MappingNetwork` of `FullyConnectedLayer`s): z normalized to unit second moment,
//! joined by the embedded and normalized class where the network is conditional (v0.4's
//! `cAdaIN` for StyleGAN2), LeakyReLU layers with equalized learning rate and the lr
//! multiplier, the average w tracked, w broadcast to every layer of the synthesis
//! network, and truncation toward the average. Part of the StyleGAN2 family (issue 29).
//!
//! Equalized learning rate: a weight is stored as drawn, N(0, 1/lr_multiplier²), and
//! scaled by lr_multiplier/√fan_in when used; a bias is scaled by lr_multiplier. Adam
//! then moves each layer as if its learning rate were multiplied, which is what the
//! authors' checkpoints hold and import name for name (`mapping.fc0.weight`).
//! The network runs in value mode only: the path-length penalty differentiates the
//! synthesis network with respect to w, never this one.

use burn::prelude::*;
use kernels::Kernels;

use crate::bias_act::{Activation, BiasAct, bias_act};
use crate::init::Init;
use crate::layers::Scope;
use crate::tensors::Role;

/// The reference's `MappingNetwork` arguments (embedding and layer widths are w's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mapping {
    pub z_dim: usize,
    /// Classes (a one-hot c); 0 for an unconditional network.
    pub c_dim: usize,
    pub w_dim: usize,
    /// How many copies of w the synthesis network takes.
    pub num_ws: usize,
    pub num_layers: usize,
    pub lr_multiplier: f64,
    /// Decay of the tracked average of w.
    pub w_avg_beta: f64,
}

/// Moves the first `cutoff` (all where `None`) of the ws toward the average w:
/// w_avg + psi · (w − w_avg).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Truncation {
    pub psi: f64,
    pub cutoff: Option<usize>,
}

impl Truncation {
    pub const NONE: Truncation = Truncation {
        psi: 1.0,
        cutoff: None,
    };
}

/// `FullyConnectedLayer(in, out, activation, lr_multiplier)`.
pub fn fully_connected<B: Kernels>(
    s: &mut Scope<B>,
    name: &str,
    x: Tensor<B, 2>,
    out: usize,
    act: Activation,
    lr_multiplier: f64,
) -> Tensor<B, 2> {
    let mut s = s.at(name);
    let inp = x.dims()[1];
    let init = Init::Normal {
        std: 1.0 / lr_multiplier,
    };
    let w = s
        .tensor("weight", &[out, inp], Role::Param, init)
        .reshape([out, inp]);
    let w = w * (lr_multiplier / (inp as f64).sqrt());
    let b = s.tensor("bias", &[out], Role::Param, Init::Zeros) * lr_multiplier;
    let spec = BiasAct {
        act,
        alpha: None,
        gain: None,
        clamp: None,
    };
    bias_act(x.matmul(w.transpose()), Some(b), 1, &spec)
}

/// Each row scaled to unit mean square (`normalize_2nd_moment`, eps 1e-8).
pub fn normalize_2nd_moment<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let scale = (x.clone().powi_scalar(2).mean_dim(1) + 1e-8).sqrt().recip();
    x * scale
}

/// The ws, `[n, num_ws, w_dim]`, for latents `z` and one-hot classes `c` (`None` when
/// unconditional). `update_w_avg` moves the tracked average toward this batch's mean
/// w first (the reference's `update_emas`), as a training step's G pass does.
pub fn forward<B: Kernels>(
    s: &mut Scope<B>,
    m: &Mapping,
    z: Tensor<B, 2>,
    c: Option<Tensor<B, 2>>,
    truncation: Truncation,
    update_w_avg: bool,
) -> Tensor<B, 3> {
    let mut x = normalize_2nd_moment(z);
    if m.c_dim > 0 {
        let c = c.expect("a conditional mapping network takes classes");
        let y = fully_connected(s, "embed", c, m.w_dim, Activation::Linear, 1.0);
        x = Tensor::cat(vec![x, normalize_2nd_moment(y)], 1);
    }
    for i in 0..m.num_layers {
        let name = format!("fc{i}");
        x = fully_connected(s, &name, x, m.w_dim, Activation::Lrelu, m.lr_multiplier);
    }
    let mut w_avg = s.tensor("w_avg", &[m.w_dim], Role::Buffer, Init::Zeros);
    if update_w_avg {
        // mean.lerp(w_avg, beta): mean + beta · (w_avg − mean).
        let mean = x.clone().detach().mean_dim(0).reshape([m.w_dim]);
        w_avg = mean.clone() + (w_avg - mean) * m.w_avg_beta;
        s.store("w_avg", w_avg.clone());
    }
    let [n, w_dim] = x.dims();
    let ws = x.reshape([n, 1, w_dim]).repeat_dim(1, m.num_ws);
    if truncation.psi == 1.0 {
        return ws;
    }
    let avg = w_avg.reshape([1, 1, w_dim]);
    let cut = truncation.cutoff.unwrap_or(m.num_ws).min(m.num_ws);
    let moved = |ws: Tensor<B, 3>| avg.clone() + (ws - avg.clone()) * truncation.psi;
    if cut == m.num_ws {
        return moved(ws);
    }
    Tensor::cat(
        vec![
            moved(ws.clone().slice([0..n, 0..cut, 0..w_dim])),
            ws.slice([0..n, cut..m.num_ws, 0..w_dim]),
        ],
        1,
    )
}
