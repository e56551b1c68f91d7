//! `Weights`: a feature network's released weight file (pytorch-fid's Inception-v3 by
//! default; SwAV's, DINO's or DINOv2's with `eval_backbone`), from a URL or a local path,
//! checked before anything uses it.
//!
//! ```ron
//! "inception": Weights(
//!     url: Some("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"),
//! ),
//! "inception_local": Weights(path: Some("weights/pt_inception-2015-12-05-6726825d.pth")),
//! "dinov2": Weights(eval_backbone: Dinov2, path: Some("weights/dinov2_vitl14_pretrain.pth")),
//! ```
//!
//! A download is verified against `sha256` (a prefix will do), by default the hex digits
//! the file name carries before its extension (`…-6726825d.pth`). SwAV's, DINO's and
//! DINOv2's releases publish no checksum (torch.hub loads them unverified): without
//! `sha256` their download is taken as it comes, its sha256 written in the record and
//! the log to pin, and every key downstream follows its content. Either way the file
//! must load as the backbone's network: a missing or mis-shaped tensor is named with
//! both shapes. The record names the backbone, and the stages that measure in these
//! weights must name the same one.

use std::path::PathBuf;

use explain::Explain;
use serde::{Deserialize, Serialize};

use crate::error::KindError;
use contract::{Context, FileInput, Invalid, Needs, Outcome, StageError, TypedKind};
use data::download::{Checksum, Meter, fetch};
use metrics::backbone::{Backbone, Pretrained};
use metrics::extract::FeatureNetwork;
use metrics::resize::Resizer;

use crate::protocol;

pub struct Weights;

/// A feature network's released weights (pytorch-fid's FID Inception-v3 unless
/// `eval_backbone` says otherwise), downloaded or from a local file, checked to load as the
/// network (a missing or mis-shaped tensor is named) before anything uses them.
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
    /// digits the file name carries before its extension (`…-6726825d.pth`). Needed for
    /// Inception's; the other backbones' releases publish none, so theirs may be left
    /// out (the download's sha256 is then recorded, to pin).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Which network the file is: `Inception` (pytorch-fid's), `Swav`
    /// (`swav_800ep_pretrain.pth.tar`), `Dino` (`dino_deitsmall8_pretrain.pth`) or
    /// `Dinov2` (`dinov2_vitl14_pretrain.pth`).
    #[serde(default, skip_serializing_if = "Backbone::is_inception")]
    pub eval_backbone: Backbone,
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
                match params.checksum() {
                    Some(checksum) => checksum
                        .check_declared()
                        .map_err(|m| Invalid::new(m.0, &["sha256"]))?,
                    None if params.eval_backbone.is_inception() => {
                        return Err(Invalid::new("no sha256 to verify the download", &["url"])
                            .with_help(
                                "give `sha256`, or a URL whose file name ends in `-<hex digits>.pth`",
                            ));
                    }
                    None => {}
                }
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
                let checksum = params.checksum().unwrap_or_default();
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
        let network = Pretrained {
            backbone: params.eval_backbone,
            weights: out.clone(),
            resizer: Resizer::Legacy,
        };
        network.load::<burn::backend::Flex>(&Default::default())?;
        let size = out.metadata().map_or(0, |m| m.len());
        let mut unpinned = String::new();
        if params.url.is_some() && params.checksum().is_none() {
            let sha256 = Checksum::sha256_of(&out)?;
            unpinned = format!(
                "; sha256 {sha256}, unpinned (the release publishes none): pin it with \
                 `sha256: Some(\"{}\")`",
                &sha256[..16]
            );
            use std::io::Write;
            let _ = writeln!(&mut &*ctx.log, "downloaded without a checksum{unpinned}");
        }
        Ok(Outcome {
            metrics: [("bytes".to_string(), size as f64)].into(),
            summary: Some(format!(
                "{}: {} weights, {size} bytes, all tensors present{unpinned}",
                out.file_name().unwrap_or_default().to_string_lossy(),
                params.eval_backbone
            )),
            protocol: protocol::of_backbone(params.eval_backbone),
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
