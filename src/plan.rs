//! Computing a stage's key from its pipeline entry and its upstreams' records, and
//! where each stage stands (`pipe status`, `pipe why`, `pipe run --dry-run`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::digest::{Digest, StageKey};
use crate::key::{KeyInputs, key_of};
use crate::pipeline::{Diagnostic, Pipeline};
use crate::reason::{Reason, diff};
use crate::store::{Ahead, Completed, Failure, Record, Refs, Source, Store, StoreError};

/// A stage ready to execute: its key and everything the key came from.
#[derive(Debug, Clone)]
pub struct Planned {
    pub key: Digest<StageKey>,
    pub inputs: KeyInputs,
    pub sources: Vec<Source>,
    /// External inputs by role: path as written and absolute path.
    pub file_paths: BTreeMap<String, PathBuf>,
    pub absolute_files: BTreeMap<String, PathBuf>,
    /// Roles whose upstream has no output yet: while any, `key` is not computed (all
    /// zeros), there being no key to compute.
    pub pending: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A missing or unreadable external input; rendered against the pipeline file.
    #[error("{}", .0.message)]
    Input(Box<Diagnostic>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Computes the key of stage `index`, given what the pipeline's stages completed with,
/// by index (`None` for a stage that has not: a role reading one is then listed in
/// `pending`).
pub fn plan(
    pipeline: &Pipeline,
    store: &Store,
    index: usize,
    completed: &[Option<Completed>],
) -> Result<Planned, PlanError> {
    let stage = &pipeline.stages[index];
    let mut inputs = KeyInputs {
        kind: stage.kind.to_string(),
        kind_version: stage.kind_version,
        params: stage.params.value(),
        upstream: BTreeMap::new(),
        files: BTreeMap::new(),
    };
    let mut sources = Vec::new();
    let mut pending = Vec::new();
    for dep in &stage.deps {
        let mut digests = Vec::new();
        for &u in &dep.stages {
            let Some(done) = &completed[u] else {
                pending.push(dep.role.clone());
                break;
            };
            digests.push(done.output);
            sources.push(Source {
                role: dep.role.clone(),
                stage: pipeline.stages[u].name.clone(),
                key: done.key,
                output: done.output,
            });
        }
        inputs.upstream.insert(dep.role.clone(), digests);
    }
    let mut file_paths = BTreeMap::new();
    let mut absolute_files = BTreeMap::new();
    for file in &stage.files {
        if !file.path.exists() {
            return Err(PlanError::Input(Box::new(
                Diagnostic::new(
                    format!(
                        "input `{}` does not exist (looked for `{}`)",
                        file.written.display(),
                        file.path.display()
                    ),
                    Some(file.span),
                )
                .in_stage(&stage.name)
                .help("create the file, or fix its path (relative to the pipeline file's folder)"),
            )));
        }
        inputs
            .files
            .insert(file.role.clone(), store.digest_path(&file.path)?);
        file_paths.insert(file.role.clone(), file.written.clone());
        absolute_files.insert(file.role.clone(), file.path.clone());
    }
    // A sweep's dry run has a pending upstream for nearly every stage: no hashing then.
    let key = if pending.is_empty() {
        inputs.key()
    } else {
        Digest::from_bytes([0; 32])
    };
    Ok(Planned {
        key,
        inputs,
        sources,
        file_paths,
        absolute_files,
        pending,
    })
}

/// The key of stage `index`, every upstream of which has completed, computed from the
/// pipeline's own data; `None` where it takes [`plan`] (a role written twice or out of
/// order, a missing input file).
pub(crate) fn ready_key(
    pipeline: &Pipeline,
    store: &Store,
    index: usize,
    completed: &[Option<Completed>],
) -> Result<Option<Digest<StageKey>>, StoreError> {
    let stage = &pipeline.stages[index];
    let in_order = stage.deps.windows(2).all(|w| w[0].role < w[1].role)
        && stage.files.windows(2).all(|w| w[0].role < w[1].role);
    if !in_order || stage.files.iter().any(|f| !f.path.exists()) {
        return Ok(None);
    }
    let files = stage
        .files
        .iter()
        .map(|f| Ok((f.role.as_str(), store.digest_path(&f.path)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let upstream = stage.deps.iter().map(|dep| {
        let digests = dep.stages.iter().map(|&u| {
            &completed[u]
                .as_ref()
                .expect("a stage is keyed once its upstreams completed")
                .output
        });
        (dep.role.as_str(), digests)
    });
    Ok(Some(key_of(
        stage.kind,
        stage.kind_version,
        &stage.params,
        upstream,
        files.iter().map(|(role, digest)| (*role, digest)),
    )))
}

/// Where one stage stands.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    UpToDate {
        key: Digest<StageKey>,
        /// Its output and metrics; [`latest_record`] reads the whole record.
        completed: Completed,
    },
    Stale {
        key: Option<Digest<StageKey>>,
        reasons: Vec<Reason>,
    },
    NeverRun {
        key: Option<Digest<StageKey>>,
        reasons: Vec<Reason>,
    },
    Failed {
        key: Digest<StageKey>,
        reasons: Vec<Reason>,
        failure: Failure,
    },
    /// Not in the store, but a remote cache has its record (`pipe status --remote`);
    /// the stages below are planned with the output that record names.
    OnRemote {
        key: Digest<StageKey>,
        record: Box<Record>,
        /// Why it is not up to date here.
        reasons: Vec<Reason>,
    },
    /// The stage cannot be planned (e.g. a missing input file).
    Broken { message: String },
}

impl State {
    pub fn label(&self) -> &'static str {
        match self {
            State::UpToDate { .. } => "up to date",
            State::Stale { .. } => "stale",
            State::NeverRun { .. } => "never run",
            State::Failed { .. } => "failed",
            State::OnRemote { .. } => "on remote",
            State::Broken { .. } => "broken",
        }
    }

    /// The key the stage has now, where it can be computed.
    pub fn key(&self) -> Option<Digest<StageKey>> {
        match self {
            State::UpToDate { key, .. }
            | State::Failed { key, .. }
            | State::OnRemote { key, .. } => Some(*key),
            State::Stale { key, .. } | State::NeverRun { key, .. } => *key,
            State::Broken { .. } => None,
        }
    }

    pub fn reasons(&self) -> &[Reason] {
        match self {
            State::Stale { reasons, .. }
            | State::NeverRun { reasons, .. }
            | State::Failed { reasons, .. }
            | State::OnRemote { reasons, .. } => reasons,
            _ => &[],
        }
    }
}

/// Where every stage stands, in pipeline order, without running anything.
/// Stages after one that must run cannot know their key yet; they say which upstream
/// has to run first.
pub fn states(pipeline: &Pipeline, store: &Store) -> Result<Vec<State>, StoreError> {
    states_with(pipeline, store, &mut |_, _| Ok(None))
}

/// Asked for the record of a stage (by index and key) that the store lacks.
pub type Elsewhere<'a, E> = dyn FnMut(usize, &Digest<StageKey>) -> Result<Option<Record>, E> + 'a;

/// As [`states`], asking `elsewhere` (a remote cache) for the record of every stage
/// whose key is known but which is not up to date here: a record it gives makes the
/// stage [`State::OnRemote`], and the stages below are planned with its output.
pub fn states_with<E: From<StoreError>>(
    pipeline: &Pipeline,
    store: &Store,
    elsewhere: &mut Elsewhere<'_, E>,
) -> Result<Vec<State>, E> {
    let (refs, mut ahead) = store.refs_looked_ahead(&pipeline.name, |refs| {
        refs.stages.values().copied().collect()
    })?;
    let mut current: Vec<Option<Completed>> = vec![None; pipeline.stages.len()];
    let mut states: Vec<Option<State>> = vec![None; pipeline.stages.len()];
    for &i in &pipeline.order {
        let stage = &pipeline.stages[i].name;
        let pending = pipeline.stages[i]
            .deps
            .iter()
            .flat_map(|d| d.stages.iter().copied())
            .filter(|&u| current[u].is_none())
            .min();
        // A stage up to date, nearly every stage of a rerun, is answered from its key
        // alone; the rest is planned in full to say why it must run.
        let mut answer = None;
        if pending.is_none()
            && let Some(key) = ready_key(pipeline, store, i, &current)?
        {
            match ahead.lookup(store, &key)? {
                Ahead::Hit(completed) => {
                    current[i] = Some(completed.clone());
                    states[i] = Some(State::UpToDate { key, completed });
                    continue;
                }
                other => answer = Some(other),
            }
        }
        // The record to compare with, read once; only a stage waiting on an upstream
        // needs it here (the others are looked up by their key).
        let before = match pending {
            Some(_) => previous(store, &refs, stage)?,
            None => None,
        };
        // Never run, waiting on an upstream, its inputs present: nothing to compare
        // (in a sweep's first dry run, nearly every stage).
        if let Some(u) = pending
            && before.is_none()
            && pipeline.stages[i].files.iter().all(|f| f.path.exists())
        {
            states[i] = Some(State::NeverRun {
                key: None,
                reasons: vec![Reason::UpstreamPending {
                    stage: pipeline.stages[u].name.clone(),
                }],
            });
            continue;
        }
        let planned = match plan(pipeline, store, i, &current) {
            Err(PlanError::Store(e)) => return Err(e.into()),
            Err(PlanError::Input(d)) => {
                states[i] = Some(State::Broken { message: d.message });
                continue;
            }
            Ok(planned) => planned,
        };
        let state = match pending {
            None => {
                let answer = match answer {
                    Some(answer) => answer,
                    None => ahead.lookup(store, &planned.key)?,
                };
                state_of(store, &refs, stage, &planned, answer)?
            }
            // The key is unknown until the upstream runs; what the stage's own
            // parameters and files changed is known already.
            Some(u) => {
                let waiting = Reason::UpstreamPending {
                    stage: pipeline.stages[u].name.clone(),
                };
                match before {
                    Some(old) => {
                        let mut planned = planned;
                        for role in &planned.pending {
                            let digests =
                                old.inputs.upstream.get(role).cloned().unwrap_or_default();
                            planned.inputs.upstream.insert(role.clone(), digests);
                        }
                        let own = diff(&old, &planned)
                            .into_iter()
                            .filter(|r| *r != Reason::KeySchema);
                        State::Stale {
                            key: None,
                            reasons: std::iter::once(waiting).chain(own).collect(),
                        }
                    }
                    None => State::NeverRun {
                        key: None,
                        reasons: vec![waiting],
                    },
                }
            }
        };
        let state = match state.key() {
            Some(key) if !matches!(state, State::UpToDate { .. }) => match elsewhere(i, &key)? {
                Some(record) => State::OnRemote {
                    key,
                    record: Box::new(record),
                    reasons: state.reasons().to_vec(),
                },
                None => state,
            },
            _ => state,
        };
        match &state {
            State::UpToDate { completed, .. } => current[i] = Some(completed.clone()),
            State::OnRemote { record, .. } => current[i] = Some(Completed::from(&**record)),
            _ => {}
        }
        states[i] = Some(state);
    }
    // Outputs stored moments before their stat cache entries were written are hashed
    // again until an entry is old enough to trust (a run's own outputs, always): what
    // that learned is kept, or every `status` until the next run would hash them again.
    store.save()?;
    Ok(states
        .into_iter()
        .map(|s| s.expect("every stage is in the order"))
        .collect())
}

/// Where a planned stage stands against the store, given what looking its key up
/// answered.
fn state_of(
    store: &Store,
    refs: &Refs,
    stage: &str,
    planned: &Planned,
    answer: Ahead,
) -> Result<State, StoreError> {
    let key = planned.key;
    match answer {
        Ahead::Hit(completed) => return Ok(State::UpToDate { key, completed }),
        Ahead::Damaged(why) => {
            return Ok(State::Stale {
                key: Some(key),
                reasons: vec![Reason::OutputDamaged { detail: why }],
            });
        }
        Ahead::Miss => {}
    }
    let reasons = match previous(store, refs, stage)? {
        Some(old) => diff(&old, planned),
        None => vec![Reason::NeverRun],
    };
    Ok(match store.failure(&key)? {
        Some(failure) => State::Failed {
            key,
            reasons,
            failure,
        },
        None if reasons == [Reason::NeverRun] => State::NeverRun {
            key: Some(key),
            reasons,
        },
        None => State::Stale {
            key: Some(key),
            reasons,
        },
    })
}

/// The record a stage stands on: its current one where it is up to date, else the last
/// one it completed with, if the store still has it.
pub fn latest_record(
    store: &Store,
    refs: &Refs,
    stage: &str,
    state: &State,
) -> Result<Option<Record>, StoreError> {
    match state {
        State::UpToDate { key, .. } => store.record(key),
        _ => previous(store, refs, stage),
    }
}

/// The last record this stage completed with, if the store still has it.
pub fn previous(store: &Store, refs: &Refs, stage: &str) -> Result<Option<Record>, StoreError> {
    match refs.stages.get(stage) {
        Some(key) => store.record(key),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use contract::Registry;

    use super::*;
    use crate::digest::Digest;

    /// The key the walk computes from the pipeline's own data is the one [`plan`]
    /// computes from the gathered inputs, for every way a stage reads: none, one stage,
    /// a group, several roles, files.
    #[test]
    fn a_ready_key_is_the_planned_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.txt"), "data").unwrap();
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        std::fs::write(dir.path().join("folder/x"), "x").unwrap();
        let path = dir.path().join("p.ron");
        std::fs::write(
            &path,
            r#"Pipeline(name: "k", stages: {
                "root": Command(argv: ["true"]),
                "t": ForEach(seed: [1, 2], stage: Command(argv: ["echo", "{seed}"], deps: {"up": "root"})),
                "all": Command(argv: ["cat", "{in.ts}"], deps: {"ts": "t", "a": "root"}),
                "read": Command(argv: ["true"], files: {"z": "data.txt", "b": "folder"}, deps: {"m": "all"}),
            })"#,
        )
        .unwrap();
        let pipeline = Pipeline::load(&path, &Registry::new(crate::kinds())).unwrap();
        let store = Store::open(&dir.path().join("cache")).unwrap();
        let completed: Vec<Option<Completed>> = pipeline
            .stages
            .iter()
            .map(|s| {
                Some(Completed {
                    key: Digest::of(s.name.as_bytes()),
                    output: Digest::of(s.name.as_bytes()),
                    metrics: BTreeMap::new(),
                })
            })
            .collect();
        for i in 0..pipeline.stages.len() {
            let planned = plan(&pipeline, &store, i, &completed).unwrap();
            let ready = ready_key(&pipeline, &store, i, &completed).unwrap();
            assert_eq!(ready, Some(planned.key), "{}", pipeline.stages[i].name);
        }
    }
}
