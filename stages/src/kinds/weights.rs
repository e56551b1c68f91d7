//! `Weights`: the FID Inception network's weight file, from a URL or a local path,
//! checked before anything uses it.
//!
//! ```ron
//! "inception": Weights(
//!     url: Some("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"),
//! ),
//! "inception_local": Weights(path: Some("weights/pt_inception-2015-12-05-6726825d.pth")),
//! ```
//!
//! A download is verified against `sha256` (a prefix will do), by default the hex digits
//! the file name carries before its extension (`…-6726825d.pth`). Either way the file
//! must load as pytorch-fid's Inception-v3: a missing or mis-shaped tensor is named.

use std::path::PathBuf;

use explain::Explain;
use serde::{Deserialize, Serialize};

use crate::error::KindError;
use contract::{Context, FileInput, Invalid, Needs, Outcome, StageError, TypedKind};
use data::download::{Checksum, Meter, fetch};
use metrics::inception::FidInception;

pub struct Weights;

/// pytorch-fid's FID Inception-v3 weights, downloaded or from a local file, checked to
/// load as the network (a missing or mis-shaped tensor is named) before anything uses
/// them.
#[derive(Debug, Clone, Serialize, Deserialize, Explain)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Where to download the file; one of `url` and `path` is needed.
    #[serde(default)]
    pub url: Option<String>,
    /// A local copy of the file, relative to the pipeline file's folder; its content is
    /// hashed into the key.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The file's sha256 or a prefix of it (8 hex digits at least); by default the hex
    /// digits the file name carries before its extension (`…-6726825d.pth`).
    #[serde(default)]
    pub sha256: Option<String>,
}

/// `pt_inception-2015-12-05-6726825d.pth` → `6726825d`.
fn hash_in_name(name: &str) -> Option<String> {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let tail = stem.rsplit_once('-')?.1;
    (tail.len() >= 8 && tail.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| tail.to_ascii_lowercase())
}

fn file_name(url: &str) -> Option<String> {
    let name = url.split(['?', '#']).next()?.rsplit('/').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

impl Params {
    fn checksum(&self) -> Option<Checksum> {
        let sha256 = self
            .sha256
            .clone()
            .or_else(|| file_name(self.url.as_deref()?).and_then(|n| hash_in_name(&n)))?;
        Some(Checksum {
            md5: None,
            sha256: Some(sha256),
        })
    }
}

impl TypedKind for Weights {
    const NAME: &'static str = "Weights";
    const VERSION: u32 = 1;
    type Params = Params;
    type Error = KindError;

    fn declare(params: &Params) -> Result<Needs, Invalid> {
        match (&params.url, &params.path) {
            (Some(url), None) => {
                if file_name(url).is_none() {
                    return Err(Invalid::new(
                        "cannot name the file after this URL",
                        &["url"],
                    ));
                }
                let checksum = params.checksum().ok_or_else(|| {
                    Invalid::new("no sha256 to verify the download", &["url"]).with_help(
                        "give `sha256`, or a URL whose file name ends in `-<hex digits>.pth`",
                    )
                })?;
                checksum
                    .check_declared()
                    .map_err(|m| Invalid::new(m.0, &["sha256"]))?;
                Ok(Needs::default())
            }
            (None, Some(path)) => Ok(Needs {
                files: vec![FileInput {
                    role: "weights".into(),
                    path: path.clone(),
                    at: vec!["path".into()],
                }],
                ..Needs::default()
            }),
            _ => Err(Invalid::new("give either `url` or `path`", &[])),
        }
    }

    fn run(params: Params, ctx: &Context) -> Result<Outcome, KindError> {
        let out = match (&params.url, &params.path) {
            (Some(url), _) => {
                let name = file_name(url).expect("checked by declare");
                let checksum = params.checksum().expect("checked by declare");
                let meter = Meter::default();
                let report = |done: u64, total: Option<u64>| {
                    let line = meter.line(&format!("downloading {name}"), done, total);
                    ctx.progress.report(done, total, &line)
                };
                let path = fetch(url, ctx.work, &name, &checksum, &report, ctx.cancel)?;
                let out = ctx.out.join(&name);
                std::fs::rename(&path, &out)
                    .map_err(StageError::io("cannot move the weights into the output"))?;
                out
            }
            _ => {
                let source = ctx.input("weights")?;
                let name = source.file_name().ok_or_else(|| {
                    StageError::failed(format!("`{}` is not a file", source.display()))
                })?;
                if let Some(checksum) = params.sha256.as_ref().map(|s| Checksum {
                    md5: None,
                    sha256: Some(s.clone()),
                }) {
                    checksum.verify(source)?;
                }
                let out = ctx.out.join(name);
                std::fs::copy(source, &out).map_err(StageError::io(format!(
                    "cannot copy `{}`",
                    source.display()
                )))?;
                out
            }
        };
        FidInception::<burn::backend::Flex>::load(&out, &Default::default())?;
        let size = out.metadata().map_or(0, |m| m.len());
        Ok(Outcome {
            metrics: [("bytes".to_string(), size as f64)].into(),
            summary: Some(format!(
                "{}: FID Inception-v3 weights, {size} bytes, all tensors present",
                out.file_name().unwrap_or_default().to_string_lossy()
            )),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_from_the_file_name() {
        assert_eq!(
            super::hash_in_name("pt_inception-2015-12-05-6726825d.pth").as_deref(),
            Some("6726825d")
        );
        assert_eq!(super::hash_in_name("weights.pth"), None);
    }
}
