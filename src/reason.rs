//! Why a stage must run: what differs between its last record and what it would run
//! with now, field by field. Used by `pipe why`, `pipe status` and the reasons in
//! `pipe run --json`.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::digest::{Digest, Object};
use crate::plan::Planned;
use crate::store::Record;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// No record of this stage in this store.
    NeverRun,
    /// `--force`.
    Forced,
    /// The record exists but its output is damaged or gone.
    OutputDamaged {
        detail: String,
    },
    /// An upstream stage has not produced its output yet, so the key is not known.
    UpstreamPending {
        stage: String,
    },
    Kind {
        old: String,
        new: String,
    },
    KindVersion {
        old: u32,
        new: u32,
    },
    /// A parameter changed; `path` such as `params.argv[2]`. `None` = absent.
    Param {
        path: String,
        old: Option<Value>,
        new: Option<Value>,
    },
    /// An upstream's output differs (the stage names are the current ones).
    Upstream {
        role: String,
        stages: Vec<String>,
        old: Vec<Digest<Object>>,
        new: Vec<Digest<Object>>,
    },
    File {
        role: String,
        path: String,
        old: Option<Digest<Object>>,
        new: Option<Digest<Object>>,
    },
    /// Same inputs as recorded but a different key: the engine's key encoding changed.
    KeySchema,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or("(absent)".to_string(), Value::to_string);
        match self {
            Reason::NeverRun => write!(f, "never run"),
            Reason::Forced => write!(f, "forced"),
            Reason::OutputDamaged { detail } => write!(f, "{detail}"),
            Reason::UpstreamPending { stage } => write!(f, "upstream `{stage}` has to run first"),
            Reason::Kind { old, new } => write!(f, "kind: {old} → {new}"),
            Reason::KindVersion { old, new } => write!(f, "kind version: {old} → {new}"),
            Reason::Param { path, old, new } => write!(f, "{path}: {} → {}", show(old), show(new)),
            Reason::Upstream {
                role,
                stages,
                old,
                new,
            } => {
                let list = |d: &[Digest<Object>]| {
                    d.iter().map(Digest::short).collect::<Vec<_>>().join(",")
                };
                let names = stages
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                write!(
                    f,
                    "upstream {names} (as `{role}`) changed: {} → {}",
                    list(old),
                    list(new)
                )
            }
            Reason::File {
                role,
                path,
                old,
                new,
            } => {
                let d =
                    |d: &Option<Digest<Object>>| d.map_or("(absent)".to_string(), |d| d.short());
                write!(
                    f,
                    "file `{path}` (as `{role}`) changed: {} → {}",
                    d(old),
                    d(new)
                )
            }
            Reason::KeySchema => write!(f, "the engine's key encoding changed"),
        }
    }
}

/// What differs between a record and a new plan of the same stage.
pub fn diff(old: &Record, new: &Planned) -> Vec<Reason> {
    let (a, b) = (&old.inputs, &new.inputs);
    let mut reasons = Vec::new();
    if a.kind != b.kind {
        reasons.push(Reason::Kind {
            old: a.kind.clone(),
            new: b.kind.clone(),
        });
    } else if a.kind_version != b.kind_version {
        reasons.push(Reason::KindVersion {
            old: a.kind_version,
            new: b.kind_version,
        });
    }
    diff_values("params", Some(&a.params), Some(&b.params), &mut reasons);
    let roles: std::collections::BTreeSet<&String> =
        a.upstream.keys().chain(b.upstream.keys()).collect();
    for role in roles {
        let (o, n) = (a.upstream.get(role), b.upstream.get(role));
        if o != n {
            let stages = new
                .sources
                .iter()
                .filter(|s| &s.role == role)
                .map(|s| s.stage.clone())
                .collect();
            reasons.push(Reason::Upstream {
                role: role.clone(),
                stages,
                old: o.cloned().unwrap_or_default(),
                new: n.cloned().unwrap_or_default(),
            });
        }
    }
    let roles: std::collections::BTreeSet<&String> = a.files.keys().chain(b.files.keys()).collect();
    for role in roles {
        let (o, n) = (a.files.get(role), b.files.get(role));
        if o != n {
            let path = new.file_paths.get(role).or(old.files.get(role));
            reasons.push(Reason::File {
                role: role.clone(),
                path: path.map(|p| p.display().to_string()).unwrap_or_default(),
                old: o.copied(),
                new: n.copied(),
            });
        }
    }
    if reasons.is_empty() && old.key != new.key {
        reasons.push(Reason::KeySchema);
    }
    reasons
}

/// Where two values differ, field by field under `path` (as `why` reports parameters).
pub fn diff_fields(path: &str, old: &Value, new: &Value) -> Vec<Reason> {
    let mut out = Vec::new();
    diff_values(path, Some(old), Some(new), &mut out);
    out
}

fn diff_values(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Reason>) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                diff_values(&format!("{path}.{k}"), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}[{i}]"), Some(x), Some(y), out);
            }
        }
        (a, b) if a != b => out.push(Reason::Param {
            path: path.to_string(),
            old: a.cloned(),
            new: b.cloned(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn params_differ_field_by_field() {
        let mut out = Vec::new();
        diff_values(
            "params",
            Some(&json!({"train": {"total_step": 80000, "lr": 1}, "argv": ["a", "b"]})),
            Some(
                &json!({"train": {"total_step": 100000, "lr": 1}, "argv": ["a", "c"], "new": true}),
            ),
            &mut out,
        );
        let text: Vec<String> = out.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            text,
            [
                "params.argv[1]: \"b\" → \"c\"",
                "params.new: (absent) → true",
                "params.train.total_step: 80000 → 100000"
            ]
        );
    }
}
