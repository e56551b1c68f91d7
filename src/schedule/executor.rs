//! Where a job executes. The scheduler decides what runs when; an executor decides
//! where: in this process, or in a separate `pipe exec KEY` process that needs nothing
//! but the store (the shape of dispatching to a cluster that shares the store).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use contract::{Progress, Registry};

use super::job::{ExecError, Executed, Job, execute};
use crate::store::{Lookup, Store};

pub trait Executor: Sync {
    fn execute(
        &self,
        job: &Job,
        gpus: &[u32],
        progress: &dyn Progress,
    ) -> Result<Executed, ExecError>;
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
        let ids = gpus
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut command = Command::new(&self.exe);
        command
            .arg("--cache")
            .arg(self.store.root())
            .args(["exec", "--json", "--progress-lines", &job.key.hex()])
            .args(["--threads", &self.threads.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if !ids.is_empty() {
            command.args(["--gpus", &ids]);
        }
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
        let mut stdout = String::new();
        let mut take = |line: String| match ProgressLine::parse(&line) {
            Some(r) => progress.report(r.done, r.total, &r.message),
            None => {
                stdout.push_str(&line);
                stdout.push('\n');
            }
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
            let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
            let reused = outcome["action"] == "reused";
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
