//! Gradients by parameter name, as a step collects them: from each sub-step's backward
//! pass, LOGAN's part through the move, and the shards of a data-parallel step.

use std::collections::BTreeMap;

use burn::prelude::*;
use kernels::Kernels;

/// A gradient per parameter, flattened as the parameter is.
pub(crate) type Grads<B> = BTreeMap<String, Tensor<B, 1>>;

/// Adds a sub-step's gradients to the step's sum (the first one becomes the sum).
pub(crate) fn accumulate<B: Kernels>(sum: &mut Option<Grads<B>>, grads: Grads<B>) {
    match sum {
        None => *sum = Some(grads),
        Some(sum) => add_into(sum, grads),
    }
}

/// `sum += grads`, parameter by parameter.
pub(crate) fn add_into<B: Kernels>(sum: &mut Grads<B>, grads: Grads<B>) {
    for (name, g) in grads {
        let total = match sum.remove(&name) {
            Some(s) => s + g,
            None => g,
        };
        sum.insert(name, total);
    }
}
