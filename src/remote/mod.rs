//! Sharing results between stores that share no file system, through a remote cache.
//!
//! A remote holds what the store holds, by the same digests:
//!
//! ```text
//! <remote>/
//!   cas/<digest>          file contents (objects), by blake3 digest
//!   trees/<digest>.json   folder manifests (the output of a stage is a tree)
//!   ac/<key>.json         records, by stage key: the "action cache"
//! ```
//!
//! Content addressing does most of the work. An object already on the remote is not
//! sent again (asked by its size); a downloaded object enters the store only if its
//! bytes have its digest, and a tree only if its entries have its digest, so that a
//! damaged remote cannot damage a store. A record is sent after every object and tree
//! it names, and read before them, so that a reader that finds a record finds its
//! output. Two machines pushing one key leave one of their records, each valid (a key
//! names the inputs; any run of it is a valid result). A transfer stopped half way
//! leaves whole objects behind on either side, and resumes by skipping them.

mod config;
mod executor;
mod parallel;
mod pull;
mod push;

use std::sync::atomic::{AtomicU64, Ordering};

pub use config::{ConfigError, RemoteEntry, Remotes, remotes_path};
pub use executor::RemoteFirst;
pub use push::Pushed;
pub use transport::{Location, TransportError};

use crate::digest::{Digest, Object, StageKey};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{remote}: `{path}` has digest {found}, not the {expected} it is stored under; refused (the remote's copy is damaged: push it again from a store that has it intact)"
    )]
    Corrupt {
        remote: String,
        path: String,
        expected: Digest<Object>,
        found: Digest<Object>,
    },
    #[error("{remote}: `{path}` is not a valid {what}: {why}")]
    Invalid {
        remote: String,
        path: String,
        what: &'static str,
        why: String,
    },
    #[error(
        "the output of `{stage}` (key {}) is {why} in this store; run it again before pushing it",
        key.short()
    )]
    Damaged {
        stage: String,
        key: Digest<StageKey>,
        why: String,
    },
}

pub type Result<T, E = RemoteError> = std::result::Result<T, E>;

/// A connection to a named remote.
pub struct Remote {
    name: String,
    transport: transport::Transport,
}

impl Remote {
    pub fn connect(name: &str, location: &Location) -> Result<Remote> {
        let label = format!("remote `{name}` ({})", location.url);
        Ok(Remote {
            name: name.to_string(),
            transport: transport::Transport::connect(location)?.with_label(label),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `remote `NAME` (URL)`, as messages name a remote.
    fn label(&self) -> String {
        self.transport.label().to_string()
    }

    /// What to do about an error of this remote, for the command line.
    pub fn help(error: &RemoteError) -> Option<&'static str> {
        match error {
            RemoteError::Transport(TransportError::Request { .. }) => Some(
                "run the command again once the remote answers: what arrived is kept, and not sent again",
            ),
            RemoteError::Transport(TransportError::Url { .. }) => {
                Some("fix the URL with `pipe remote remove NAME` and `pipe remote add NAME URL`")
            }
            _ => None,
        }
    }
}

fn object_path(digest: &Digest<Object>) -> String {
    format!("cas/{}", digest.hex())
}

fn tree_path(digest: &Digest<Object>) -> String {
    format!("trees/{}.json", digest.hex())
}

fn record_path(key: &Digest<StageKey>) -> String {
    format!("ac/{}.json", key.hex())
}

/// How far a transfer has come, for a progress bar of bytes moved.
pub trait Meter: Sync {
    /// More bytes to move than known so far.
    fn grow(&self, bytes: u64);
    /// Bytes moved (or found already there).
    fn advance(&self, bytes: u64);
}

/// A meter that shows nothing.
pub struct Silent;

impl Meter for Silent {
    fn grow(&self, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// Objects and bytes counted across threads.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    present: AtomicU64,
    bytes: AtomicU64,
}

impl Tally {
    fn moved(&self, bytes: u64) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn there(&self) {
        self.present.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.present.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}
