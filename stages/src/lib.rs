//! Every stage kind of `pipe` beyond the engine's own `Command`: the thin layer between
//! the stage contract and the domain crates (`data`, `gan`, `metrics`, `report`,
//! `kernels`).
//!
//! The engine (the `pipe` package) schedules, hashes and caches stages without knowing
//! what they do; the two meet through the `contract` crate. A kind (in [`kinds`]) turns
//! checked parameters and upstream folders ([`artifacts`], the one owner of every output
//! folder's layout) into calls of the domain crates, and their errors into
//! [`contract::StageError`]s ([`error`]).
//!
//! Bump a kind's `VERSION` whenever the meaning of its parameters or outputs changes:
//! the version is part of every key, so the change reruns exactly that kind's stages
//! (the rules are in the `contract` crate's documentation).

pub mod artifacts;
pub mod error;
pub mod kinds;
pub mod measure;
mod on_threads;
pub mod protocol;

use contract::{Kind, Typed};

/// The domain crates, for the binary (`pipe metric`) and its end-to-end tests.
pub use {data, gan, kernels, metrics, report};

pub use on_threads::OnThreads;

/// Every kind of this crate, by the name used in pipeline files; each runs its
/// parallel work on a thread pool of its share of the cores ([`OnThreads`]).
pub fn kinds() -> Vec<Box<dyn Kind>> {
    fn kind<K: contract::TypedKind>() -> Box<dyn Kind> {
        Box::new(OnThreads(Typed::<K>::default()))
    }
    vec![
        kind::<kinds::download::Download>(),
        kind::<kinds::dataset::Dataset>(),
        kind::<kinds::weights::Weights>(),
        kind::<kinds::inception_stats::InceptionStats>(),
        kind::<kinds::train::Train>(),
        kind::<kinds::sample::Sample>(),
        kind::<kinds::score::Score>(),
        kind::<kinds::classifier::Classifier>(),
        kind::<kinds::report::Report>(),
    ]
}
