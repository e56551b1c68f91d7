//! Where a job executes. The scheduler decides what runs when; an executor decides
//! where: in this process, in a separate `pipe exec KEY` process that needs nothing
//! but the store, or as a Slurm job running `pipe exec KEY` on a cluster that shares
//! the store (`slurm/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use contract::{Progress, Registry};

use super::job::{ExecError, Executed, Job, execute};
use crate::digest::{Digest, StageKey};
use crate::store::{Lookup, Store};

pub trait Executor: Sync {
    fn execute(
        &self,
        job: &Job,
        gpus: &[u32],
        progress: &dyn Progress,
    ) -> Result<Executed, ExecError>;

    /// Calls made to a cluster's scheduler so far, by program (none for local ones).
    fn scheduler_calls(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::new()
    }
}

/// The arguments of `pipe exec` that run `key` from the store at `root` elsewhere, its
/// progress as JSON lines at most every `progress_every` seconds and its outcome as one
/// JSON line ([`ExecOutcome`]) on stdout; `--threads` is the caller's to add.
pub fn exec_args(
    root: &Path,
    key: &Digest<StageKey>,
    gpus: &[u32],
    progress_every: f64,
) -> Vec<String> {
    let mut args = vec![
        "--cache".to_string(),
        root.display().to_string(),
        "exec".into(),
        key.hex(),
        "--json".into(),
        "--progress-lines".into(),
        format!("--progress-every={progress_every}"),
    ];
    if !gpus.is_empty() {
        let ids: Vec<String> = gpus.iter().map(u32::to_string).collect();
        args.push(format!("--gpus={}", ids.join(",")));
    }
    args
}

/// How `pipe exec` ended, the last line it prints with `--json --progress-lines`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExecOutcome {
    pub schema: u32,
    pub stage: String,
    pub key: Digest<StageKey>,
    /// `ran`, `reused`, `interrupted` or `failed`.
    pub action: String,
    pub detail: String,
}

impl ExecOutcome {
    pub fn parse(line: &str) -> Option<ExecOutcome> {
        if !line.starts_with("{\"schema\"") {
            return None;
        }
        serde_json::from_str(line).ok()
    }
}

/// The CPU cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPU threads of each of `jobs` stages running at once: the cores divided
/// evenly, at least one.
pub fn share_of_cores(jobs: usize) -> usize {
    (cores() / jobs.max(1)).max(1)
}

/// Runs stages on threads of this process.
#[derive(Clone, Copy)]
pub struct InProcess<'a> {
    pub store: &'a Store,
    pub registry: &'a Registry,
    pub cancel: &'a AtomicBool,
    /// CPU threads each stage may use ([`share_of_cores`]).
    pub threads: usize,
}

impl Executor for InProcess<'_> {
    fn execute(
        &self,
        job: &Job,
        gpus: &[u32],
        progress: &dyn Progress,
    ) -> Result<Executed, ExecError> {
        execute(self, job, gpus, progress)
    }
}

/// A progress report of a `pipe exec --progress-lines` child: one JSON object a line on
/// its stdout, before the outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProgressLine {
    pub progress: ProgressReport,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProgressReport {
    pub done: u64,
    pub total: Option<u64>,
    pub message: String,
}

impl ProgressLine {
    /// The report a line carries, `None` for any other line.
    pub fn parse(line: &str) -> Option<ProgressReport> {
        if !line.starts_with("{\"progress\"") {
            return None;
        }
        serde_json::from_str::<ProgressLine>(line)
            .ok()
            .map(|l| l.progress)
    }
}

/// Runs each stage as `pipe exec KEY` in a child process, its progress passed on.
pub struct Subprocess<'a> {
    pub exe: PathBuf,
    pub store: &'a Store,
    pub cancel: &'a AtomicBool,
    pub threads: usize,
}

impl Executor for Subprocess<'_> {
    fn execute(
        &self,
        job: &Job,
        gpus: &[u32],
        progress: &dyn Progress,
    ) -> Result<Executed, ExecError> {
        let mut command = Command::new(&self.exe);
        command
            .args(exec_args(self.store.root(), &job.key, gpus, 0.1))
            .args(["--threads", &self.threads.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let failed = |message: String| ExecError::Failed { message, log: None };
        let mut child = command
            .spawn()
            .map_err(|e| failed(format!("cannot start `{}`: {e}", self.exe.display())))?;
        // Read on a thread, so that a chatty child never blocks on a full pipe; the
        // reports are passed on from here, where `progress` lives.
        let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
        let reader = child.stdout.take().map(|out| {
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    if lines_tx.send(line).is_err() {
                        break;
                    }
                }
            })
        });
        let mut outcome = None;
        let mut take = |line: String| match ProgressLine::parse(&line) {
            Some(r) => progress.report(r.done, r.total, &r.message),
            None => outcome = ExecOutcome::parse(&line).or(outcome.take()),
        };
        let mut stop_sent: Option<Instant> = None;
        let status = loop {
            lines.try_iter().for_each(&mut take);
            if let Some(status) = child
                .try_wait()
                .map_err(|e| failed(format!("cannot wait for pipe exec: {e}")))?
            {
                break status;
            }
            if self.cancel.load(Ordering::Relaxed)
                && stop_sent.is_none_or(|t| t.elapsed() > Duration::from_secs(10))
            {
                // SAFETY: kill(2) on our own unreaped child.
                unsafe {
                    libc::kill(
                        child.id() as libc::pid_t,
                        if stop_sent.is_none() {
                            libc::SIGTERM
                        } else {
                            libc::SIGKILL
                        },
                    )
                };
                stop_sent = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(reader) = reader {
            let _ = reader.join();
        }
        lines.try_iter().for_each(&mut take);
        if status.success() {
            let reused = outcome.is_some_and(|o| o.action == "reused");
            return match self.store.lookup(&job.key)? {
                Lookup::Hit(record) if reused => Ok(Executed::Reused(record)),
                Lookup::Hit(record) => Ok(Executed::Ran(record)),
                _ => Err(failed(
                    "pipe exec succeeded but left no usable record".into(),
                )),
            };
        }
        if stop_sent.is_some() {
            return Err(ExecError::Cancelled);
        }
        match self.store.failure(&job.key)? {
            Some(failure) => Err(ExecError::Failed {
                message: failure.error,
                log: failure.log,
            }),
            None => Err(failed(format!(
                "pipe exec {} ended with {status}",
                job.key.short()
            ))),
        }
    }
}
