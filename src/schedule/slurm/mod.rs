//! Stages as Slurm jobs: each stage whose inputs are ready is submitted with `sbatch`
//! as a script running `pipe exec KEY` against the store, which must be on a file
//! system the compute nodes share. The job enters the store exactly as a local run
//! does (record written last, refs moved, locks held), so a pipeline can be started on
//! one side and finished on the other without recomputing anything.
//!
//! Nothing here needs Slurm's accounting: a job reports its own exit through the store
//! (`slurm/exit/<job id>`, written by its script), and `squeue` (one call per interval
//! for all jobs, [`monitor`]) and `scontrol show job` cover what it cannot report (a
//! time limit, memory, a node failure). Failures are named with Slurm's state and the
//! job's log, `slurm/logs/<key>-<job id>.log`.
//!
//! ```text
//! cache/slurm/
//!   scripts/<key>.sh            the batch script of a key's job
//!   logs/<key>-<job id>.log     its stdout and stderr: progress lines, then the outcome
//!   exit/<job id>               pipe exec's exit code
//!   submitted/<key>.json        the job computing the key, while it is queued or running
//! ```

mod monitor;
mod script;
mod submitted;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use ::slurm::{JobId, JobState, Queued, Submission};
use contract::Progress;

use super::executor::{ExecOutcome, Executor, ProgressLine};
use super::job::{ExecError, Executed, Job};
use crate::pipeline::Resources;
use crate::store::{Failure, Lookup, Store, StoreError, write_atomic};
pub use monitor::Poll;
use monitor::{End, Monitor};
pub use submitted::{SlurmJob, submitted_jobs};

/// Runs each stage as a Slurm job.
pub struct SlurmExecutor<'a> {
    store: &'a Store,
    /// The `pipe` binary the jobs run: it must be reachable from the compute nodes.
    exe: PathBuf,
    /// Each stage's requests, the command line's defaults under the file's entries.
    resources: BTreeMap<String, Resources>,
    cancel: &'a AtomicBool,
    monitor: Monitor<'a>,
}

/// A job this run waits for.
struct Tracked {
    id: JobId,
    /// Submitted by this run; otherwise adopted from another run of the same key.
    ours: bool,
    /// RFC 3339, UTC.
    submitted: String,
    log: PathBuf,
}

enum Start {
    /// Another run recorded the key meanwhile.
    Done(Box<crate::store::Record>),
    Wait(Tracked),
}

impl<'a> SlurmExecutor<'a> {
    pub fn new(
        store: &'a Store,
        client: ::slurm::Slurm,
        exe: PathBuf,
        resources: BTreeMap<String, Resources>,
        poll: Poll,
        cancel: &'a AtomicBool,
    ) -> Result<SlurmExecutor<'a>, StoreError> {
        let folder = submitted::folder(store);
        for sub in ["scripts", "logs", "exit", "submitted"] {
            let dir = folder.join(sub);
            std::fs::create_dir_all(&dir).map_err(StoreError::io("create", &dir))?;
        }
        Ok(SlurmExecutor {
            store,
            exe,
            resources,
            cancel,
            monitor: Monitor::new(client, poll, cancel),
        })
    }

    /// Submits the job, or finds one already computing the key, under the key's lock so
    /// that two runs on one store submit it once.
    fn start(&self, job: &Job, gpus: usize) -> Result<Start, ExecError> {
        let _lock = submitted::lock(self.store, &job.key)?;
        if !job.force
            && let Lookup::Hit(record) = self.store.lookup(&job.key)?
        {
            return Ok(Start::Done(record));
        }
        if let Some(previous) = submitted::read(self.store, &job.key)? {
            let id = JobId(previous.job);
            let alive = self
                .monitor
                .slurm()
                .queue(&[id])
                .ok()
                .and_then(|q| q.get(&id).map(|q| !q.state.is_final()));
            if alive == Some(true) {
                self.monitor.watch(id, false);
                return Ok(Start::Wait(Tracked {
                    id,
                    ours: false,
                    submitted: previous.submitted,
                    log: previous.log,
                }));
            }
        }
        let folder = submitted::folder(self.store);
        let script_path = folder.join("scripts").join(format!("{}.sh", job.key));
        let text = script::script(
            &self.exe,
            self.store.root(),
            job,
            gpus,
            &folder.join("exit"),
        );
        write_atomic(&script_path, text.as_bytes())?;
        let resources = self.resources.get(&job.stage).cloned().unwrap_or_default();
        let logs = folder.join("logs");
        let mut extra = vec!["--open-mode=append".to_string()];
        extra.extend(resources.sbatch);
        let submission = Submission {
            script: script_path,
            name: format!("pipe:{}", job.stage),
            output: logs.join(format!("{}-%j.log", job.key)),
            workdir: Some(self.store.root().to_path_buf()),
            cpus_per_task: resources.cpus,
            mem: resources.mem,
            time: resources.time,
            gpus: gpus as u32,
            partition: resources.partition,
            account: resources.account,
            qos: resources.qos,
            extra,
        };
        let submitted = now();
        let id = self
            .monitor
            .slurm()
            .submit(&submission)
            .map_err(|e| ExecError::Failed {
                message: format!("cannot submit `{}` to Slurm: {e}", job.stage),
                log: None,
            })?;
        let log = logs.join(format!("{}-{id}.log", job.key));
        let record = SlurmJob {
            job: id.0,
            stage: job.stage.clone(),
            pipeline: job.pipeline.clone(),
            submitted: submitted.clone(),
            by: format!(
                "{}@{}",
                std::process::id(),
                crate::schedule::job::hostname()
            ),
            log: log.clone(),
        };
        submitted::write(self.store, &job.key, &record)?;
        self.monitor.watch(id, true);
        Ok(Start::Wait(Tracked {
            id,
            ours: true,
            submitted,
            log,
        }))
    }

    /// What the job left: a record, or its state, exit code and the stage's error.
    fn conclude(
        &self,
        job: &Job,
        tracked: &Tracked,
        end: End,
        outcome: Option<ExecOutcome>,
    ) -> Result<Executed, ExecError> {
        submitted::forget(self.store, &job.key, tracked.id.0);
        let exit = self.take_exit_code(tracked.id);
        if let Lookup::Hit(record) = self.store.lookup(&job.key)? {
            let reused = !tracked.ours || outcome.as_ref().is_some_and(|o| o.action == "reused");
            return Ok(if reused {
                Executed::Reused(record)
            } else {
                Executed::Ran(record)
            });
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err(ExecError::Cancelled);
        }
        let ending = self.ending(tracked.id, end, exit);
        let what = ending.describe(tracked.id);
        let log = Some(tracked.log.clone());
        let interrupted = exit == Some(130) || outcome.is_some_and(|o| o.action == "interrupted");
        let advice = match verdict(ending.state.as_ref(), interrupted) {
            Verdict::Stopped(how) => {
                return Err(ExecError::Stopped {
                    message: format!(
                        "{what}: {how}; nothing recorded, it runs again next time (from its work folder)"
                    ),
                    log,
                });
            }
            Verdict::Cluster(advice) => advice,
            Verdict::Stage => {
                let failure = self.store.failure(&job.key)?;
                if let Some(failure) = failure.filter(|f| f.when >= tracked.submitted) {
                    // The stage's own error, recorded by pipe exec in the job.
                    return Err(ExecError::Failed {
                        message: format!(
                            "{}\n  = {what}; job output: {}",
                            failure.error,
                            tracked.log.display()
                        ),
                        log: failure.log,
                    });
                }
                "it left no record and no error of the stage: see the job's output"
            }
        };
        let message = format!("{what}: {advice}");
        self.store.write_failure(&Failure {
            key: job.key,
            pipeline: job.pipeline.clone(),
            stage: job.stage.clone(),
            error: message.clone(),
            when: now(),
            log: log.clone(),
        })?;
        Err(ExecError::Failed { message, log })
    }

    fn exit_file(&self, id: JobId) -> PathBuf {
        submitted::folder(self.store)
            .join("exit")
            .join(id.to_string())
    }

    /// The exit code the job's script left, if it got to write it; the file goes.
    fn take_exit_code(&self, id: JobId) -> Option<i32> {
        let path = self.exit_file(id);
        let code = read_exit_code(&path);
        let _ = std::fs::remove_file(&path);
        code
    }

    /// How the job ended, asking `scontrol` (then `sacct`) only for what `squeue` and
    /// the job itself did not say.
    fn ending(&self, id: JobId, end: End, exit: Option<i32>) -> Ending {
        let slurm = self.monitor.slurm();
        let (state, reason, unknown) = match end {
            End::Ended(Queued { state, reason }) if exit.is_some() => {
                return Ending {
                    state: Some(state),
                    reason,
                    exit_code: exit,
                    signal: None,
                    unknown: None,
                };
            }
            End::Ended(q) => (Some(q.state), q.reason, None),
            End::Reported => (Some(JobState::Completed), String::new(), None),
            End::Gone(last) => (
                last.map(|q| q.state),
                String::new(),
                Some("it left the queue without an exit report".to_string()),
            ),
            End::Unknown(why) => (None, String::new(), Some(format!("squeue failed: {why}"))),
            End::Abandoned => (None, String::new(), Some("this run stopped waiting".into())),
        };
        let asked = slurm
            .show(id)
            .ok()
            .flatten()
            .or_else(|| slurm.accounting(id).ok().flatten());
        match asked {
            Some(info) if info.state.is_final() => Ending {
                state: Some(info.state),
                reason: info.reason,
                exit_code: exit.or(info.exit_code),
                signal: info.signal,
                unknown: None,
            },
            _ => Ending {
                state: state.filter(JobState::is_final),
                reason,
                exit_code: exit,
                signal: None,
                unknown,
            },
        }
    }
}

/// What a job's end means for its stage.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Stopped from outside, nothing recorded: it runs again next time.
    Stopped(&'static str),
    /// Ended by the cluster (a limit, a node): a failure, with what to do about it.
    Cluster(&'static str),
    /// The stage's own doing: its error, if it recorded one.
    Stage,
}

/// Slurm's state first: a time limit or memory is the cluster's doing, whatever the
/// stage did on its way out (a training stopped by the time limit's TERM exits as
/// interrupted, having saved a checkpoint).
fn verdict(state: Option<&JobState>, interrupted: bool) -> Verdict {
    match state {
        Some(JobState::Cancelled) => Verdict::Stopped("cancelled outside this run"),
        Some(JobState::Preempted) => Verdict::Stopped("preempted"),
        Some(JobState::Timeout) => Verdict::Cluster(
            "it ran past its time limit; its work folder is kept, so a stage that \
             checkpoints resumes there next time\n  = help: ask for more time with \
             `--time` or the stage's `resources` (`time: \"2-00:00:00\"`)",
        ),
        Some(JobState::OutOfMemory) => Verdict::Cluster(
            "it ran out of memory\n  = help: ask for more with `--mem` or the stage's \
             `resources` (`mem: \"64G\"`)",
        ),
        Some(JobState::NodeFail | JobState::BootFail) => {
            Verdict::Cluster("its node failed; nothing recorded, run it again")
        }
        Some(JobState::Deadline) => Verdict::Cluster("it reached its deadline before it ended"),
        _ if interrupted => Verdict::Stopped("the stage was stopped by a signal"),
        _ => Verdict::Stage,
    }
}

/// What is known of a job's end.
struct Ending {
    state: Option<JobState>,
    reason: String,
    exit_code: Option<i32>,
    signal: Option<i32>,
    /// Why the state is not known.
    unknown: Option<String>,
}

impl Ending {
    /// `Slurm job 12 FAILED (exit code 3)`, `Slurm job 12 TIMEOUT (TimeLimit)`.
    fn describe(&self, id: JobId) -> String {
        let mut details = Vec::new();
        match (self.exit_code, self.signal) {
            (_, Some(signal)) => details.push(format!("signal {signal}")),
            (Some(code), None) if code != 0 => details.push(format!("exit code {code}")),
            _ => {}
        }
        if !matches!(self.reason.as_str(), "" | "None" | "NonZeroExitCode") {
            details.push(self.reason.clone());
        }
        let details = if details.is_empty() {
            String::new()
        } else {
            format!(" ({})", details.join(", "))
        };
        match (&self.state, &self.unknown) {
            (Some(state), _) => format!("Slurm job {id} {state}{details}"),
            (None, Some(why)) => format!("Slurm job {id} ended, state unknown ({why}){details}"),
            (None, None) => format!("Slurm job {id} ended{details}"),
        }
    }
}

impl Executor for SlurmExecutor<'_> {
    fn execute(
        &self,
        job: &Job,
        gpus: &[u32],
        progress: &dyn Progress,
    ) -> Result<Executed, ExecError> {
        let tracked = match self.start(job, gpus.len())? {
            Start::Done(record) => return Ok(Executed::Reused(record)),
            Start::Wait(tracked) => tracked,
        };
        let whose = if tracked.ours {
            ""
        } else {
            " (submitted by another run)"
        };
        progress.report(0, None, &format!("Slurm job {}{whose}", tracked.id));
        let mut tail = LogTail::new(&tracked.log);
        let mut shown: Option<JobState> = None;
        let exit_file = self.exit_file(tracked.id);
        let end = self.monitor.wait(tracked.id, |seen| {
            // Success is the common end: seen in the store at once, without waiting for
            // the queue to say so. Other exits wait for Slurm's state (a requeue may
            // follow a stopped attempt).
            if read_exit_code(&exit_file) == Some(0) {
                return true;
            }
            tail.read(progress);
            // The queue's word until the stage reports progress of its own.
            if let Some(seen) = seen.filter(|_| !tail.progressed)
                && shown.as_ref() != Some(&seen.state)
            {
                let reason = match seen.reason.as_str() {
                    "" | "None" => String::new(),
                    reason => format!(" ({reason})"),
                };
                let message = format!("Slurm job {} {}{reason}", tracked.id, seen.state);
                progress.report(0, None, &message);
                shown = Some(seen.state.clone());
            }
            false
        });
        tail.read(progress);
        self.conclude(job, &tracked, end, tail.outcome)
    }

    fn scheduler_calls(&self) -> BTreeMap<&'static str, u64> {
        self.monitor.slurm().calls()
    }
}

/// Reads a job's log as it grows: progress lines are passed on, the outcome kept.
struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    progressed: bool,
    outcome: Option<ExecOutcome>,
}

impl LogTail {
    fn new(path: &Path) -> LogTail {
        LogTail {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
            progressed: false,
            outcome: None,
        }
    }

    fn read(&mut self, progress: &dyn Progress) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            // Truncated: a requeued job writing it anew.
            self.offset = 0;
            self.partial.clear();
        }
        let mut new = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut new).is_err() {
            return;
        }
        self.offset += new.len() as u64;
        self.partial.extend(new);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end();
            if let Some(report) = ProgressLine::parse(line) {
                progress.report(report.done, report.total, &report.message);
                self.progressed = true;
            } else if let Some(outcome) = ExecOutcome::parse(line) {
                self.outcome = Some(outcome);
            }
        }
    }
}

fn read_exit_code(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(
        state: Option<JobState>,
        reason: &str,
        code: Option<i32>,
        signal: Option<i32>,
    ) -> String {
        let ending = Ending {
            state,
            reason: reason.into(),
            exit_code: code,
            signal,
            unknown: None,
        };
        ending.describe(JobId(12))
    }

    #[test]
    fn the_clusters_limits_are_failures_with_advice_and_stops_from_outside_are_not() {
        let timeout = verdict(Some(&JobState::Timeout), true);
        assert!(
            matches!(timeout, Verdict::Cluster(a) if a.contains("--time")),
            "{timeout:?}"
        );
        let oom = verdict(Some(&JobState::OutOfMemory), false);
        assert!(matches!(oom, Verdict::Cluster(a) if a.contains("--mem")));
        assert!(matches!(
            verdict(Some(&JobState::NodeFail), false),
            Verdict::Cluster(_)
        ));
        assert!(matches!(
            verdict(Some(&JobState::Cancelled), true),
            Verdict::Stopped(_)
        ));
        assert!(matches!(
            verdict(Some(&JobState::Preempted), false),
            Verdict::Stopped(_)
        ));
        assert!(matches!(
            verdict(Some(&JobState::Failed), true),
            Verdict::Stopped(_)
        ));
        assert_eq!(verdict(Some(&JobState::Failed), false), Verdict::Stage);
        assert_eq!(verdict(None, false), Verdict::Stage);
    }

    #[test]
    fn an_end_is_named_with_slurms_state_its_exit_and_a_telling_reason() {
        assert_eq!(
            ending(Some(JobState::Failed), "NonZeroExitCode", Some(1), None),
            "Slurm job 12 FAILED (exit code 1)"
        );
        assert_eq!(
            ending(Some(JobState::Timeout), "TimeLimit", None, Some(15)),
            "Slurm job 12 TIMEOUT (signal 15, TimeLimit)"
        );
        assert_eq!(
            ending(Some(JobState::OutOfMemory), "OutOfMemory", Some(0), None),
            "Slurm job 12 OUT_OF_MEMORY (OutOfMemory)"
        );
        assert_eq!(
            ending(Some(JobState::Completed), "None", Some(0), None),
            "Slurm job 12 COMPLETED"
        );
        let unknown = Ending {
            state: None,
            reason: String::new(),
            exit_code: None,
            signal: None,
            unknown: Some("it left the queue without an exit report".into()),
        };
        assert_eq!(
            unknown.describe(JobId(7)),
            "Slurm job 7 ended, state unknown (it left the queue without an exit report)"
        );
    }
}
