//! The facts kinds record about how their metrics were measured
//! ([`contract::Outcome::protocol`]), under names shared by every kind, and the checks
//! that keep a score from comparing numbers measured in different ways.

use std::collections::BTreeMap;

use contract::{Input, StageError};
use metrics::backbone::Backbone;
use metrics::resize::Resizer;

/// The images statistics were computed from (their data set's description).
pub const DATA: &str = "data";
/// How many images were measured.
pub const IMAGES: &str = "images";
/// What the features are (the FID Inception network, or a classifier).
pub const NETWORK: &str = "network";
/// Which released network a `Weights` stage holds (recorded for all but Inception's,
/// so that no earlier record changes).
pub const BACKBONE: &str = "eval backbone";
/// The resize to the network's input size.
pub const RESIZER: &str = "resizer";
/// A score's reference statistics: their `data`, and their `images`.
pub const REFERENCE: &str = "reference";
pub const REFERENCE_IMAGES: &str = "reference images";
/// Which generator made the images (`Ema`, `Raw`, `Best`), with what truncation, and
/// which BatchNorm statistics it normalized with.
pub const GENERATOR: &str = "generator";
pub const TRUNCATION: &str = "truncation";
pub const BATCH_NORM: &str = "batch norm";

pub type Protocol = BTreeMap<String, String>;

/// Facts as a protocol.
pub fn of<const N: usize>(facts: [(&str, String); N]) -> Protocol {
    facts.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A reference's facts, as a score measured against it records them.
pub fn against(reference: &Input) -> Protocol {
    let mut out = Protocol::new();
    for (theirs, ours) in [
        (DATA, REFERENCE),
        (IMAGES, REFERENCE_IMAGES),
        (NETWORK, NETWORK),
        (RESIZER, RESIZER),
        (BACKBONE, BACKBONE),
    ] {
        if let Some(value) = reference.protocol.get(theirs) {
            out.insert(ours.to_string(), value.clone());
        }
    }
    out
}

/// The resizer an `InceptionStats` stage's statistics were measured with, which
/// whatever is compared with them must use too. Records from before protocols were
/// recorded have none: they were all measured with `Legacy`, then the only one.
pub fn resizer(reference: &Input) -> Result<Resizer, StageError> {
    match reference.protocol.get(RESIZER).map(String::as_str) {
        None | Some("Legacy") => Ok(Resizer::Legacy),
        Some("Clean") => Ok(Resizer::Clean),
        Some(other) => Err(StageError::Invalid(format!(
            "`{}` was measured with the resizer `{other}`, which this version of pipe does not know",
            reference.from
        ))),
    }
}

/// The backbone a `Weights` stage holds: Inception's unless its record says otherwise.
pub fn backbone(weights: &Input) -> Result<Backbone, StageError> {
    match weights.protocol.get(BACKBONE) {
        None => Ok(Backbone::Inception),
        Some(name) => name
            .parse()
            .map_err(|e| StageError::Invalid(format!("`{}` holds weights of {e}", weights.from))),
    }
}

/// The facts of a measurement in `backbone`: none for Inception's, whose records
/// predate backbones.
pub fn of_backbone(backbone: Backbone) -> Protocol {
    match backbone {
        Backbone::Inception => Protocol::new(),
        other => of([(BACKBONE, other.to_string())]),
    }
}

/// Refuses to compare features of `network` with statistics measured in another.
pub fn check_network(reference: &Input, network: &str) -> Result<(), StageError> {
    match reference.protocol.get(NETWORK) {
        Some(theirs) if theirs != network => Err(StageError::Invalid(format!(
            "the statistics of `{}` are {theirs}, but these images would be measured in {network}: \
             give both the same `weights` and `eval_backbone`",
            reference.from
        ))),
        _ => Ok(()),
    }
}
