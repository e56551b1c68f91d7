//! The exponential moving average of G: the seed's (a decay from a start step, over
//! parameters and buffers) and StyleGAN2's (a decay from its half-life in images, the
//! buffers copied; [`crate::config::Stylegan2Training::ema_beta`]).

use kernels::Kernels;

use crate::tensors::{Role, Tensors};

/// target ← decay·target + (1 − decay)·source over the parameters, and the buffers
/// too unless `copy_buffers` (StyleGAN2's EMA copies them).
pub fn update<B: Kernels>(
    target: &mut Tensors<B>,
    source: &Tensors<B>,
    decay: f64,
    copy_buffers: bool,
) {
    for (name, entry) in source.iter() {
        let value = if copy_buffers && entry.role == Role::Buffer {
            entry.value.clone()
        } else {
            let old = target.get(name).expect("EMA has G's tensors").value.clone();
            old * decay + entry.value.clone() * (1.0 - decay)
        };
        target.set(name, value);
    }
}
