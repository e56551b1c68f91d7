//! The stage contract of `pipe`: the one interface between the engine, which schedules,
//! hashes and caches stages without knowing what they do, and the stage kinds, which do
//! the work. It depends on no machine-learning code, so the engine builds and tests
//! without any.
//!
//! - [`Kind::declare`] reads a stage's parameters as written in the pipeline file and
//!   returns their canonical form (the part of the cache key the kind controls), the
//!   upstream stages and external files the stage reads, and the GPUs it needs.
//! - [`Kind::run`] gets those canonical parameters back with a [`Context`]: its resolved
//!   inputs (read-only paths), a fresh output folder, a work folder that survives
//!   interruption, its GPU ids, a log and a cancellation flag. It writes files into the
//!   output folder and returns an [`Outcome`] (metrics and a summary line) or a
//!   [`StageError`]: cancelled (an interruption, never recorded as a failure), an input
//!   it cannot use, or a failure with its cause chained.
//!
//! Kinds never touch the store: the engine hashes what they wrote and commits it. Most
//! kinds implement the typed [`TypedKind`] and are registered through [`Typed`].
//!
//! # What enters the key
//!
//! A stage's key hashes its kind's name and `VERSION`, its canonical parameters (what
//! `TypedKind::Params` serializes to with `serde_json`), the digests of its upstream
//! outputs and the digests of its external files. Two rules keep keys stable, so that a
//! new build of `pipe` reruns exactly what it must:
//!
//! - **A parameter belongs in `Params` when it can change the bytes a stage writes.**
//!   The device does (CPU and CUDA kernels round differently, and TF32 more so), and so
//!   does a training's or a feature extraction's batch size (BatchNorm statistics,
//!   the order of summation), so both are parameters. What only changes how the work is
//!   watched or scheduled (progress, threads, GPU ids) is not: it comes in the
//!   [`Context`].
//! - **Adding a field leaves existing keys alone.** A new field must default to the old
//!   behaviour *and* be left out of the canonical form at that default:
//!   `#[serde(default, skip_serializing_if = "Option::is_none")]` for an `Option`, or a
//!   `skip_serializing_if` predicate for its default value. Existing pipelines then keep
//!   their keys, and only stages that set the field rerun.
//! - **A change of meaning bumps `VERSION`.** When the same parameters would now produce
//!   different outputs (a fixed bug, another algorithm, a new output file), bump the
//!   kind's `VERSION`: every stage of that kind reruns, no other.
//!
//! The project's tests pin the canonical parameters of every stage of the shipped
//! pipelines (`tests/keys.rs`): a change that moves them fails there until the version is
//! bumped or the field skipped at its default.

mod context;
mod error;
mod kind;

pub use context::{Context, Input, Outcome, Progress};
pub use error::StageError;
pub use kind::{
    Declaration, FileInput, GpuNeed, Invalid, Kind, Needs, Reference, Registry, RenderError, Typed,
    TypedKind,
};
