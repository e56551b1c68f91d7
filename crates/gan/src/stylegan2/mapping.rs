//! StyleGAN2's mapping network, as StudioGAN v0.4 builds it (`models/stylegan2.py`:
//! `MappingNetwork` of `FullyConnectedLayer`s): z normalized to unit second moment,
//! joined by the embedded and normalized class where the network is conditional (v0.4's
//! `cAdaIN` for StyleGAN2), LeakyReLU layers with equalized learning rate and the lr
//! multiplier, the average w tracked, w broadcast to every layer of the synthesis
//! network, and truncation toward the average. Part of the StyleGAN2 family (issue 29).
//! The discriminator's label mappings (`SPD`, `2C`, `D2D-CE`) are the same network
//! without z, broadcast or average ([`features`]).
//!
//! The network runs in value mode only: the path-length penalty differentiates the
//! synthesis network with respect to w, never this one.

use burn::prelude::*;
use kernels::Kernels;

use super::layers::{fully_connected, normalize_2nd_moment};
use crate::bias_act::Activation;
use crate::init::Init;
use crate::layers::Scope;
use crate::tensors::Role;

/// The layers of a `MappingNetwork` (embedding and layer widths are w's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layers {
    /// Classes (a one-hot c); 0 for an unconditional network.
    pub c_dim: usize,
    pub w_dim: usize,
    pub num_layers: usize,
    pub lr_multiplier: f64,
}

/// The reference's `MappingNetwork` arguments for G's network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mapping {
    pub layers: Layers,
    /// How many copies of w the synthesis network takes.
    pub num_ws: usize,
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

/// The mapped features, `[n, w_dim]`, of latents `z` (`None` for a network without
/// them) and one-hot classes `c` (`None` when unconditional), before any average,
/// broadcast or truncation.
pub fn features<B: Kernels>(
    s: &mut Scope<B>,
    m: &Layers,
    z: Option<Tensor<B, 2>>,
    c: Option<Tensor<B, 2>>,
) -> Tensor<B, 2> {
    let mut x = z.map(normalize_2nd_moment);
    if m.c_dim > 0 {
        let c = c.expect("a conditional mapping network takes classes");
        let embed = fully_connected(s, "embed", c, m.w_dim, Activation::Linear, 1.0, BIAS);
        let y = normalize_2nd_moment(embed);
        x = Some(match x {
            Some(x) => Tensor::cat(vec![x, y], 1),
            None => y,
        });
    }
    let mut x = x.expect("a mapping network maps latents, classes or both");
    for i in 0..m.num_layers {
        let name = format!("fc{i}");
        let (act, lr) = (Activation::Lrelu, m.lr_multiplier);
        x = fully_connected(s, &name, x, m.w_dim, act, lr, BIAS);
    }
    x
}

/// The mapping layers' biases start at zero.
const BIAS: Option<Init> = Some(Init::Zeros);

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
    let x = features(s, &m.layers, Some(z), c);
    let w_dim = m.layers.w_dim;
    let mut w_avg = s.tensor("w_avg", &[w_dim], Role::Buffer, Init::Zeros);
    if update_w_avg {
        // mean.lerp(w_avg, beta): mean + beta · (w_avg − mean).
        let mean = x.clone().detach().mean_dim(0).reshape([w_dim]);
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
