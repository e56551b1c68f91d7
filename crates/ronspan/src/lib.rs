//! RON parsed into a value tree that remembers where every value was written.
//!
//! Configuration files are edited by people, so an error in one should point at the
//! offending characters, as cargo does for `Cargo.toml`. The `ron` crate deserializes
//! straight into typed structures and keeps only a rough position; this crate splits the
//! two steps instead:
//!
//! 1. [`parse`] turns RON text into a [`Value`] tree in which each node carries the
//!    [`Span`] of its text. Tools can rewrite the tree (splice in included files, expand
//!    templates) while keeping every span pointing at the file it came from.
//! 2. [`from_value`] deserializes a tree into any `serde` type. A failure comes back as an
//!    [`Error`] holding the span of the innermost value at fault: the unknown field's name,
//!    the string where a number was expected, the struct that misses a field. Unknown
//!    fields and variants carry a "did you mean" suggestion.
//!
//! [`Sources`] keeps the text of every parsed file, so that a span can be turned into a
//! file, line and column and the line itself can be shown.
//!
//! ```
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { steps: u32 }
//!
//! let mut sources = ronspan::Sources::default();
//! let file = sources.add("config.ron", "(stepz: 10)");
//! let value = ronspan::parse(file, sources.text(file)).unwrap();
//! let err = ronspan::from_value::<Config>(&value).err().unwrap();
//! let at = sources.locate(err.span().unwrap());
//! assert_eq!((at.line, at.column), (1, 2));
//! assert_eq!(err.help(), Some("did you mean `steps`?"));
//! ```

mod de;
mod error;
mod parse;
mod sources;
mod value;

pub use de::from_value;
pub use error::Error;
pub use parse::{parse, parse_at};
pub use sources::{FileId, Location, Sources, Span};
pub use value::{Field, Value, ValueKind};

/// The closest of `candidates` to `name`, if one is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
