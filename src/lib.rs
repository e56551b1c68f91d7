//! The `pipe` engine: declarative pipelines of cached stages.
//!
//! A pipeline file (RON) names stages and what each reads; the engine runs them so that
//! a stage runs again only when something it reads changed. The pieces, in the order a
//! run uses them:
//!
//! - [`pipeline`] loads a file into typed, validated stages: includes spliced, `ForEach`
//!   expanded, parameters checked by each stage's kind, references resolved, with
//!   cargo-style diagnostics (file, line, column, stage, suggestion) on any error.
//! - [`graph`] orders stages upstream-first and reports a cycle as the path that closes.
//! - [`key`] turns what a stage reads into its key: kind and version, canonical params,
//!   the digests (not keys) of its upstream outputs and of its external files.
//! - [`store`] keeps content-addressed outputs, one record per executed key, failures
//!   apart, resumable work folders, a stat cache and process-safe locks.
//! - [`plan`] computes keys and says where each stage stands; [`reason`] says why.
//! - [`schedule`] runs what is stale, in parallel, through an executor.
//! - [`summary`] is what a run reports, as text or JSON.
//! - [`remote`] shares records and outputs with other stores through a remote cache
//!   (S3, WebDAV), verified by their digests.
//!
//! The engine knows stage kinds only through the `contract` crate ([`contract::Kind`]):
//! it never names what a stage does. Its one kind of its own is [`command::Command`],
//! which runs a program; the `pipe` binary adds the kinds of the `stages` crate.

pub mod command;
pub mod digest;
pub mod graph;
pub mod key;
pub mod launch;
pub mod pipeline;
pub mod plan;
pub mod reason;
pub mod remote;
pub mod schedule;
pub mod store;
pub mod summary;

/// The engine's own kinds: the registry of a build without any other.
pub fn kinds() -> Vec<Box<dyn contract::Kind>> {
    vec![Box::new(contract::Typed::<command::Command>::default())]
}
