//! The contract between the objective and its parts: the forward passes a [`Term`]
//! sees and what it adds to each side's loss. Terms live in files of their own
//! (`diffaug.rs`, `lecam.rs`, LOGAN's norm regularizer in `latent.rs`) and depend on
//! this module only; `objective.rs` composes them.

use std::collections::BTreeMap;

use burn::prelude::*;
use kernels::Kernels;

use crate::discriminator::Output;

/// The forward passes of one D sub-step: D on the real batch and on the fakes.
pub struct DPass<'a, B: Kernels> {
    /// G steps done so far (the reference's `current_step`).
    pub step: u64,
    pub real: &'a Output<B>,
    pub real_labels: &'a [u32],
    /// D on the real images' augmented copies, when a term asked for them.
    pub real_views: Option<&'a Output<B>>,
    pub fake: &'a Output<B>,
    pub fake_labels: &'a [u32],
}

/// The forward pass of one G sub-step: D on G's images.
pub struct GPass<'a, B: Kernels> {
    pub fake: &'a Output<B>,
    /// The labels D was given (the classes; ADC's "real" entries 2y).
    pub labels: &'a [u32],
    /// ADC: D on the same images given ADC's "fake" entries 2y + 1, and those labels.
    pub adc_fake: Option<(&'a Output<B>, &'a [u32])>,
}

/// One part of the objective. Each side's loss is the sum of the terms' addends, in the
/// order the terms were composed (the reference's order of summation).
pub trait Term<B: Kernels> {
    fn discriminator(&self, pass: &DPass<B>, addends: &mut Vec<Tensor<B, 1>>);
    fn generator(&self, pass: &GPass<B>, addends: &mut Vec<Tensor<B, 1>>);

    /// Whether D steps must also run D on the real images' augmented copies from the
    /// loader ([`DPass::real_views`]).
    fn uses_views(&self) -> bool {
        false
    }

    /// What the term carries from step to step, by name (checkpoints keep it).
    fn state(&self) -> BTreeMap<String, f64> {
        BTreeMap::new()
    }

    /// Takes back what [`Term::state`] gave, when a run resumes.
    fn restore(&self, _state: &BTreeMap<String, f64>) {}
}
