//! One stage execution, self-contained: what `pipe exec KEY` runs from the store alone.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use contract::{Context, Input, Outcome, Progress, StageError};
use serde::{Deserialize, Serialize};

use super::executor::InProcess;
use crate::digest::{Digest, StageKey};
use crate::key::KeyInputs;
use crate::plan::Planned;
use crate::store::{Failure, Lock, Lookup, Record, Scratch, Source, Store, StoreError, TreeState};

pub const JOB_SCHEMA: u32 = 1;

/// A planned stage, written to `jobs/<key>.json` before it is dispatched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub schema: u32,
    pub key: Digest<StageKey>,
    pub pipeline: String,
    pub stage: String,
    pub base_dir: PathBuf,
    pub inputs: KeyInputs,
    pub sources: Vec<Source>,
    pub files: BTreeMap<String, PathBuf>,
    pub absolute_files: BTreeMap<String, PathBuf>,
    pub gpus: u32,
    /// Run even if a record exists (`--force`).
    pub force: bool,
}

impl Job {
    pub fn new(
        pipeline: &crate::pipeline::Pipeline,
        index: usize,
        planned: Planned,
        force: bool,
    ) -> Job {
        let stage = &pipeline.stages[index];
        Job {
            schema: JOB_SCHEMA,
            key: planned.key,
            pipeline: pipeline.name.clone(),
            stage: stage.name.clone(),
            base_dir: pipeline.base_dir.clone(),
            inputs: planned.inputs,
            sources: planned.sources,
            files: planned.file_paths,
            absolute_files: planned.absolute_files,
            gpus: stage.gpus.count(),
            force,
        }
    }
}

/// How an execution ended well.
#[derive(Debug, Clone)]
pub enum Executed {
    Ran(Box<Record>),
    /// Another process completed the same key while this one waited for its lock.
    Reused(Box<Record>),
    /// A remote cache had the key's result (`pipe run --remote`).
    Pulled(Box<Record>),
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{message}")]
    Failed {
        message: String,
        log: Option<PathBuf>,
    },
    #[error("interrupted")]
    Cancelled,
    /// Stopped from outside the run (a cluster cancelled or preempted the job):
    /// nothing recorded, the stage runs again next time.
    #[error("{message}")]
    Stopped {
        message: String,
        log: Option<PathBuf>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Executes a job: waits for its key's lock, reuses a record another process made
/// meanwhile, else runs the kind in a fresh folder and commits the result. Nothing is
/// recorded unless the stage succeeded; a failure is written apart, with its log.
pub fn execute(
    env: &InProcess,
    job: &Job,
    gpus: &[u32],
    progress: &dyn Progress,
) -> Result<Executed, ExecError> {
    let store = env.store;
    let _key_lock = wait_for_lock(store, &job.key, env.cancel)?;
    if !job.force
        && let Lookup::Hit(record) = store.lookup(&job.key)?
    {
        return Ok(Executed::Reused(record));
    }
    let run = Scratch::create(store)?;
    let result = run_in(env, job, gpus, progress, &run);
    run.remove();
    result
}

fn wait_for_lock(
    store: &Store,
    key: &Digest<StageKey>,
    cancel: &AtomicBool,
) -> Result<Lock, ExecError> {
    let path = store.root().join("locks").join(format!("{key}.lock"));
    loop {
        if let Some(lock) = Lock::try_exclusive(&path)? {
            return Ok(lock);
        }
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(ExecError::Cancelled);
        }
        tracing::debug!("waiting for another process computing {}", key.short());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_in(
    env: &InProcess,
    job: &Job,
    gpus: &[u32],
    progress: &dyn Progress,
    run: &Scratch,
) -> Result<Executed, ExecError> {
    let InProcess {
        store,
        registry,
        cancel,
        threads,
    } = *env;
    let fail = |message: String| ExecError::Failed { message, log: None };
    let kind = registry.get(&job.inputs.kind).ok_or_else(|| {
        fail(format!(
            "this build of pipe has no stage kind `{}`",
            job.inputs.kind
        ))
    })?;
    if kind.version() != job.inputs.kind_version {
        return Err(fail(format!(
            "the job wants {} v{}, this build has v{}",
            job.inputs.kind,
            job.inputs.kind_version,
            kind.version()
        )));
    }
    let mut inputs: BTreeMap<String, Vec<Input>> = BTreeMap::new();
    for source in &job.sources {
        if store.check_tree(&source.output)? != TreeState::Intact {
            return Err(fail(format!(
                "the output of upstream `{}` is no longer in the store",
                source.stage
            )));
        }
        let record = store.record(&source.key)?;
        let kind = record.as_ref().map(|r| r.inputs.kind.clone());
        let (metrics, protocol) = record.map(|r| (r.metrics, r.protocol)).unwrap_or_default();
        inputs.entry(source.role.clone()).or_default().push(Input {
            from: source.stage.clone(),
            kind,
            path: store.tree_path(&source.output),
            metrics,
            protocol,
        });
    }
    for (role, path) in &job.absolute_files {
        let written = job.files.get(role).unwrap_or(path);
        inputs.entry(role.clone()).or_default().push(Input {
            from: written.display().to_string(),
            kind: None,
            path: path.clone(),
            metrics: BTreeMap::new(),
            protocol: BTreeMap::new(),
        });
    }
    let work = store.work_path(&job.key);
    std::fs::create_dir_all(&work).map_err(StoreError::io("create", &work))?;
    let out = run.dir().join("out");
    std::fs::create_dir_all(&out).map_err(StoreError::io("create", &out))?;
    let log_path = run.dir().join("log");
    let log = File::create(&log_path).map_err(StoreError::io("create", &log_path))?;
    let ctx = Context {
        stage: &job.stage,
        out: &out,
        work: &work,
        base_dir: &job.base_dir,
        inputs: &inputs,
        gpus,
        threads,
        log: &log,
        cancel,
        progress,
    };
    let started = SystemTime::now();
    let clock = Instant::now();
    tracing::info!(stage = %job.stage, key = %job.key.short(), "running");
    let result = kind.run(&job.inputs.params, &ctx);
    let duration = clock.elapsed();
    drop(log);
    let error = match result {
        Ok(outcome) => {
            let committed = commit(
                store, job, outcome, &out, &log_path, gpus, started, duration,
            );
            match committed {
                Ok(record) => {
                    crate::store::make_writable(&work);
                    let _ = std::fs::remove_dir_all(&work);
                    return Ok(Executed::Ran(Box::new(record)));
                }
                // A full disk, most often: the stage did its work, the store could not
                // take it.
                Err(e) => format!("its output could not be stored: {e}"),
            }
        }
        Err(StageError::Cancelled) => return Err(ExecError::Cancelled),
        Err(error) => {
            let mut message = error.chain();
            // What the stage said last, often the cause.
            if let Some(line) = last_line(&log_path) {
                message.push_str(&format!("\n  = log ends: {line}"));
            }
            // A full disk takes the stage's own words about it too.
            if let Some(free) = full_disk(store.root()) {
                message.push_str(&format!(
                    "\n  = note: the store's disk is full ({free} bytes free under {})",
                    store.root().display()
                ));
            }
            message
        }
    };
    // The stage's own error comes first, whether or not the store can record it.
    let kept_log = keep_failure_log(store, job, &log_path);
    let recorded = store.write_failure(&Failure {
        key: job.key,
        pipeline: job.pipeline.clone(),
        stage: job.stage.clone(),
        error: error.clone(),
        when: humantime::format_rfc3339_seconds(started).to_string(),
        log: kept_log.clone(),
    });
    let message = match recorded {
        Ok(()) => error,
        Err(e) => format!("{error}\n  = note: the failure could not be recorded either: {e}"),
    };
    Err(ExecError::Failed {
        message,
        log: kept_log,
    })
}

/// Moves a finished stage's output and log into the store and writes its record, last.
#[allow(clippy::too_many_arguments)]
fn commit(
    store: &Store,
    job: &Job,
    outcome: Outcome,
    out: &Path,
    log_path: &Path,
    gpus: &[u32],
    started: SystemTime,
    duration: Duration,
) -> Result<Record, StoreError> {
    let (output, tree) = store.commit_tree(out)?;
    let log = store.commit_file(log_path)?;
    // JSON has no NaN or infinity: such metrics are named in the summary instead.
    let (metrics, odd): (BTreeMap<String, f64>, BTreeMap<String, f64>) = outcome
        .metrics
        .into_iter()
        .partition(|(_, v)| v.is_finite());
    let summary = if odd.is_empty() {
        outcome.summary
    } else {
        let odd: Vec<String> = odd.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let note = format!("not finite: {}", odd.join(", "));
        Some(match outcome.summary {
            Some(summary) => format!("{summary} ({note})"),
            None => note,
        })
    };
    let record = Record {
        schema: crate::key::SCHEMA,
        key: job.key,
        pipeline: job.pipeline.clone(),
        stage: job.stage.clone(),
        inputs: job.inputs.clone(),
        sources: job.sources.clone(),
        files: job.files.clone(),
        output,
        output_files: tree.entries.len(),
        output_bytes: tree.size(),
        metrics,
        protocol: outcome.protocol,
        summary,
        started: humantime::format_rfc3339_seconds(started).to_string(),
        duration_s: duration.as_secs_f64(),
        device: device(gpus),
        host: hostname(),
        // A cluster's job that ran it, for lineage (Slurm sets this in its jobs).
        cluster_job: std::env::var("SLURM_JOB_ID").ok(),
        log: Some(log),
    };
    store.write_record(&record)?;
    Ok(record)
}

/// The bytes left to us on the file system of `path`, if that is less than a megabyte.
fn full_disk(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct it is given from a NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let free = stat.f_bavail as u64 * stat.f_frsize as u64;
    (free < 1 << 20).then_some(free)
}

/// The last non-blank line of a log, cut to a line's width.
fn last_line(log: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(log).ok()?;
    let length = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(4096)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let tail = String::from_utf8_lossy(&tail);
    let line = tail.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    Some(match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    })
}

fn keep_failure_log(store: &Store, job: &Job, log: &Path) -> Option<PathBuf> {
    let kept = store.failure_path(&job.key).with_extension("log");
    std::fs::rename(log, &kept).ok().map(|()| kept)
}

fn device(gpus: &[u32]) -> String {
    match gpus {
        [] => "cpu".into(),
        ids => format!(
            "gpu:{}",
            ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        ),
    }
}

pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    }
}
