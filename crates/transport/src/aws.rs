//! AWS's shared profile files, read as its own command-line tools read them, so that a
//! remote needs no credentials of its own: `~/.aws/credentials` (or
//! `AWS_SHARED_CREDENTIALS_FILE`) and `~/.aws/config` (or `AWS_CONFIG_FILE`), section
//! `AWS_PROFILE` (else `default`), which is `[NAME]` in the first and `[profile NAME]`
//! in the second (`[default]` in both).

use std::path::{Path, PathBuf};

use crate::{Result, TransportError};

/// The chosen profile's settings (`aws_access_key_id`, `region`, `endpoint_url`, …),
/// the config file's first and the credentials file's after, so that the latter wins.
/// Files that do not exist contribute nothing.
pub fn profile() -> Result<Vec<(String, String)>> {
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let config_section = if profile == "default" {
        profile.clone()
    } else {
        format!("profile {profile}")
    };
    let mut out = Vec::new();
    if let Some(path) = file("AWS_CONFIG_FILE", "config") {
        out.extend(section(&path, &config_section)?);
    }
    if let Some(path) = file("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
        out.extend(section(&path, &profile)?);
    }
    Ok(out)
}

/// The `key = value` lines of one `[name]` section of an INI file.
fn section(path: &Path, name: &str) -> Result<Vec<(String, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TransportError::Profile {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.trim() == name;
        } else if inside && let Some((key, value)) = line.split_once('=') {
            out.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_section_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "[default]\nregion = eu-west-1\n\n# lab\n[profile lab]\nregion=us-east-2\n\
             endpoint_url = http://127.0.0.1:9000\n[other]\nregion = x\n",
        )
        .unwrap();
        assert_eq!(
            section(&path, "profile lab").unwrap(),
            [
                ("region".to_string(), "us-east-2".to_string()),
                ("endpoint_url".into(), "http://127.0.0.1:9000".into())
            ]
        );
        assert_eq!(section(&path, "default").unwrap().len(), 1);
        assert!(
            section(&dir.path().join("absent"), "default")
                .unwrap()
                .is_empty()
        );
    }
}
