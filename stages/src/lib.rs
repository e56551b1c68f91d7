//! Every stage kind of `pipe` beyond the engine's own `Command`, and the domain code
//! they call: data sets, GAN models and training, metrics, reports, CPU kernels.
//!
//! The engine (the `pipe` package) schedules, hashes and caches stages without knowing
//! what they do; the two meet through the `contract` crate. A kind (in [`kinds`]) is the
//! thin layer that turns checked parameters and upstream folders into calls of the
//! domain modules, and domain errors into [`contract::StageError`]s ([`error`]).
//!
//! Bump a kind's `VERSION` whenever the meaning of its parameters or outputs changes:
//! the version is part of every key, so the change reruns exactly that kind's stages
//! (the rules are in the `contract` crate's documentation).

pub mod data;
pub mod device;
pub mod error;
pub mod gan;
pub mod kernels;
pub mod kinds;
pub mod measure;
pub mod metrics;
mod on_threads;
pub mod pytorch;
pub mod report;
pub mod rng;
pub mod testutil;

use contract::{Kind, Typed};

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
