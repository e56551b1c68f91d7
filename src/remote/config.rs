//! Named remotes, in `.pipe/remotes.ron` of the project (the working folder) or the
//! file `PIPE_REMOTES` names. `pipe remote add` writes it; it is meant to be committed,
//! so that every clone knows where results are shared. Credentials never go in it:
//! they come from AWS's environment variables and profile files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use transport::Location;

/// The remotes file.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remotes {
    /// The remote used when a command names none.
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub remotes: BTreeMap<String, RemoteEntry>,
}

/// One remote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteEntry {
    /// `s3://bucket[/prefix]`, or `http(s)://host/path` of a cache that takes PUT.
    pub url: String,
    /// An S3-compatible server other than AWS's, e.g. `http://127.0.0.1:9000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The S3 region (else `AWS_REGION`, the profile's, or us-east-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl RemoteEntry {
    pub fn location(&self) -> Location {
        Location {
            url: self.url.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
        }
    }

    /// Refuses what no remote can be, before it is written down.
    pub fn check(&self) -> Result<(), String> {
        let url = &self.url;
        let scheme_ok = ["s3://", "http://", "https://"]
            .iter()
            .any(|s| url.starts_with(s) && url.len() > s.len());
        if !scheme_ok {
            return Err(format!(
                "`{url}` is not a remote URL: write s3://BUCKET[/PREFIX] or https://HOST/PATH"
            ));
        }
        if self.endpoint.is_some() && !url.starts_with("s3://") {
            return Err(format!(
                "an endpoint is for S3-compatible servers (s3:// URLs), not `{url}`"
            ));
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(format!(
                "the endpoint `{endpoint}` is not an address: write e.g. http://127.0.0.1:9000"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: remote `{name}`: {message}", path.display())]
    Invalid {
        path: PathBuf,
        name: String,
        message: String,
    },
    #[error("no remote named `{name}` in `{}`{}", path.display(), help(Some(name), known))]
    Unknown {
        name: String,
        path: PathBuf,
        known: Vec<String>,
    },
    #[error("no remote named, and `{}` sets no default{}", path.display(), help(None, known))]
    NoDefault { path: PathBuf, known: Vec<String> },
    #[error(
        "a remote named `{name}` is in `{}` already\n  = help: remove it first: `pipe remote remove {name}`",
        path.display()
    )]
    Exists { name: String, path: PathBuf },
}

fn help(name: Option<&str>, known: &[String]) -> String {
    if known.is_empty() {
        return "\n  = help: add one: `pipe remote add NAME s3://BUCKET/PREFIX`".into();
    }
    match name.and_then(|name| ronspan::closest(name, known.iter().map(String::as_str))) {
        Some(k) => format!("\n  = help: did you mean `{k}`?"),
        None => format!(
            "\n  = note: remotes: {}\n  = help: name one with `--remote NAME`",
            known.join(", ")
        ),
    }
}

/// Where the remotes file is: `PIPE_REMOTES`, or `.pipe/remotes.ron` here.
pub fn remotes_path() -> PathBuf {
    std::env::var_os("PIPE_REMOTES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(".pipe").join("remotes.ron"))
}

impl Remotes {
    /// Reads the file; no file is no remotes.
    pub fn load(path: &Path) -> Result<Remotes, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Remotes::default()),
            Err(source) => {
                return Err(ConfigError::Io {
                    action: "read",
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let remotes: Remotes = ron::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            line: e.position.line,
            column: e.position.col,
            message: e.code.to_string(),
        })?;
        for (name, entry) in &remotes.remotes {
            entry.check().map_err(|message| ConfigError::Invalid {
                path: path.to_path_buf(),
                name: name.clone(),
                message,
            })?;
        }
        if let Some(default) = &remotes.default {
            remotes.find(default, path)?;
        }
        Ok(remotes)
    }

    /// Writes the file through a temporary one, so that a failure leaves the old one.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |action| {
            move |source| ConfigError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        let pretty = ron::ser::PrettyConfig::new().struct_names(false);
        let body = ron::ser::to_string_pretty(self, pretty).expect("remotes serialize");
        let text = format!(
            "// The remotes of `pipe push`, `pipe pull` and `pipe run --remote`, written by\n\
             // `pipe remote add`. Credentials come from AWS's environment and profile files.\n\
             {body}\n"
        );
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("create the folder of"))?;
        }
        let tmp = path.with_extension(format!("ron.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text).map_err(io("write"))?;
        std::fs::rename(&tmp, path).map_err(io("replace"))
    }

    /// The remote `name` names, or the default one when `None`.
    pub fn get(
        &self,
        name: Option<&str>,
        path: &Path,
    ) -> Result<(String, &RemoteEntry), ConfigError> {
        let name = match (name, &self.default) {
            (Some(name), _) => name,
            (None, Some(default)) => default,
            (None, None) if self.remotes.len() == 1 => {
                self.remotes.keys().next().expect("one remote")
            }
            (None, None) => {
                return Err(ConfigError::NoDefault {
                    path: path.to_path_buf(),
                    known: self.remotes.keys().cloned().collect(),
                });
            }
        };
        Ok((name.to_string(), self.find(name, path)?))
    }

    fn find(&self, name: &str, path: &Path) -> Result<&RemoteEntry, ConfigError> {
        self.remotes.get(name).ok_or_else(|| ConfigError::Unknown {
            name: name.to_string(),
            path: path.to_path_buf(),
            known: self.remotes.keys().cloned().collect(),
        })
    }

    pub fn add(&mut self, name: &str, entry: RemoteEntry, path: &Path) -> Result<(), ConfigError> {
        entry.check().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            name: name.to_string(),
            message,
        })?;
        if self.remotes.contains_key(name) {
            return Err(ConfigError::Exists {
                name: name.to_string(),
                path: path.to_path_buf(),
            });
        }
        self.remotes.insert(name.to_string(), entry);
        Ok(())
    }

    pub fn remove(&mut self, name: &str, path: &Path) -> Result<RemoteEntry, ConfigError> {
        self.find(name, path)?;
        if self.default.as_deref() == Some(name) {
            self.default = None;
        }
        Ok(self.remotes.remove(name).expect("found above"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_file_reads_back_and_errors_name_file_line_and_remote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".pipe/remotes.ron");
        let mut remotes = Remotes::load(&path).unwrap();
        let lab = RemoteEntry {
            url: "s3://lab/pipe".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: None,
        };
        remotes.add("lab", lab.clone(), &path).unwrap();
        remotes.default = Some("lab".into());
        remotes.save(&path).unwrap();
        let back = Remotes::load(&path).unwrap();
        assert_eq!(back, remotes);
        assert_eq!(back.get(None, &path).unwrap(), ("lab".to_string(), &lab));
        let err = back.get(Some("laab"), &path).unwrap_err().to_string();
        assert!(
            err.contains("no remote named `laab`") && err.contains("did you mean `lab`?"),
            "{err}"
        );
        let err = remotes
            .add("lab", lab.clone(), &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is in") && err.contains("pipe remote remove lab"),
            "{err}"
        );

        std::fs::write(&path, "(remotes: {\"x\": (url: \"s3://b\", colour: 1)})").unwrap();
        let err = Remotes::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("remotes.ron:1:") && err.contains("colour"),
            "{err}"
        );
        std::fs::write(&path, "(remotes: {\"x\": (url: \"ftp://b\")})").unwrap();
        let err = Remotes::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("remote `x`") && err.contains("ftp://b"),
            "{err}"
        );
    }
}
