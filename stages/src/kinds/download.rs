//! `Download`: one file from a URL, verified by its checksum.
//!
//! ```ron
//! "cifar10_archive": Download(
//!     url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
//!     md5: Some("c32a1d4ab5d03f1284b67883e8d87530"),
//! ),
//! ```
//!
//! The output folder holds the file, named `file` or after the URL's last segment. A
//! broken transfer resumes (within the run, and in the next run from the stage's work
//! folder); offline, the error says where to put a copy fetched elsewhere.

use explain::Explain;
use serde::{Deserialize, Serialize};

use crate::error::KindError;
use contract::{Context, Invalid, Needs, Outcome, StageError, TypedKind};
use data::download::{Checksum, Meter, fetch};

pub struct Download;

/// Downloads one file, resumably, and checks it against its checksum before anything
/// uses it. Offline, the error says where to place a copy fetched elsewhere.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Where the file is (http or https).
    pub url: String,
    /// The file's name; by default the URL's last path segment.
    #[serde(default)]
    pub file: Option<String>,
    /// The file's md5, as 32 hex digits. At least one of `md5` and `sha256` is needed.
    #[serde(default)]
    pub md5: Option<String>,
    /// The sha256, or a prefix of it of at least 8 hex digits.
    #[serde(default)]
    pub sha256: Option<String>,
}

impl Params {
    fn checksum(&self) -> Checksum {
        Checksum {
            md5: self.md5.clone(),
            sha256: self.sha256.clone(),
        }
    }

    fn file_name(&self) -> Option<String> {
        let name = match &self.file {
            Some(f) => f.clone(),
            None => self
                .url
                .split(['?', '#'])
                .next()?
                .rsplit('/')
                .next()?
                .to_string(),
        };
        (!name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..")
            .then_some(name)
    }
}

impl TypedKind for Download {
    const NAME: &'static str = "Download";
    const VERSION: u32 = 1;
    type Params = Params;
    type Error = KindError;

    fn declare(params: &Params) -> Result<Needs, Invalid> {
        if !(params.url.starts_with("http://") || params.url.starts_with("https://")) {
            return Err(Invalid::new(
                format!("`{}` is not an http or https URL", params.url),
                &["url"],
            ));
        }
        params
            .checksum()
            .check_declared()
            .map_err(|m| Invalid::new(m.0, &["url"]))?;
        if params.file_name().is_none() {
            return Err(
                Invalid::new("cannot name the file after this URL", &["url"])
                    .with_help("give `file: \"name.ext\"`"),
            );
        }
        Ok(Needs::default())
    }

    fn run(params: Params, ctx: &Context) -> Result<Outcome, KindError> {
        let name = params.file_name().expect("checked by declare");
        let meter = Meter::default();
        let report = |done: u64, total: Option<u64>| {
            ctx.progress.report(
                done,
                total,
                &meter.line(&format!("downloading {name}"), done, total),
            )
        };
        let path = fetch(
            &params.url,
            ctx.work,
            &name,
            &params.checksum(),
            &report,
            ctx.cancel,
        )?;
        let out = ctx.out.join(&name);
        std::fs::rename(&path, &out).map_err(StageError::io(format!(
            "cannot move {name} into the output"
        )))?;
        let size = out.metadata().map_or(0, |m| m.len());
        Ok(Outcome {
            metrics: [("bytes".to_string(), size as f64)].into(),
            summary: Some(format!("{name}: {size} bytes, checksum verified")),
            ..Default::default()
        })
    }
}
