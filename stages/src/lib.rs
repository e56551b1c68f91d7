//! The stage contract of `pipe`, and every stage kind.
//!
//! The engine (the `pipe` package) schedules, hashes and caches stages without knowing
//! what they do; this crate is where what they do lives. The two meet through [`Kind`]:
//!
//! - [`Kind::declare`] reads a stage's parameters as written in the pipeline file and
//!   returns their canonical form (the part of the cache key the kind controls), the
//!   upstream stages and external files the stage reads, and the GPUs it needs.
//! - [`Kind::run`] gets those canonical parameters back with a [`Context`]: its resolved
//!   inputs (read-only paths), a fresh output folder, a work folder that survives
//!   interruption, its GPU ids, a log and a cancellation flag. It writes files into the
//!   output folder and returns an [`Outcome`] (metrics and a summary line).
//!
//! Kinds never touch the store: the engine hashes what they wrote and commits it.
//! Most kinds implement the typed [`TypedKind`] and are registered through [`Typed`].
//!
//! Bump a kind's `VERSION` whenever the meaning of its parameters or outputs changes:
//! the version is part of every key, so the change reruns exactly that kind's stages.

mod context;
pub mod data;
pub mod device;
pub mod gan;
pub mod kernels;
mod kind;
pub mod kinds;
pub mod metrics;
pub mod pytorch;
pub mod report;
pub mod rng;

pub use context::{Context, Input, Outcome, Progress, StageError};
pub use kind::{
    Declaration, FileInput, Invalid, Kind, Needs, Reference, Registry, Typed, TypedKind, run_stage,
};

/// Every kind this build knows, by the name used in pipeline files.
pub fn registry() -> Registry {
    Registry::new(vec![
        Box::new(Typed::<kinds::command::Command>::default()),
        Box::new(Typed::<kinds::download::Download>::default()),
        Box::new(Typed::<kinds::dataset::Dataset>::default()),
        Box::new(Typed::<kinds::weights::Weights>::default()),
        Box::new(Typed::<kinds::inception_stats::InceptionStats>::default()),
        Box::new(Typed::<kinds::train::Train>::default()),
        Box::new(Typed::<kinds::sample::Sample>::default()),
        Box::new(Typed::<kinds::score::Score>::default()),
        Box::new(Typed::<kinds::classifier::Classifier>::default()),
        Box::new(Typed::<kinds::report::Report>::default()),
    ])
}
