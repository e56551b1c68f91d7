//! Slurm's command-line tools as calls with typed answers: submit a batch script
//! (`sbatch --parsable`), read the state of many jobs in one call (`squeue`), ask for
//! a finished job's exit (`scontrol show job`, and `sacct` where the cluster keeps
//! accounting), cancel (`scancel`), and count a partition's GPUs (`sinfo`).
//!
//! Nothing here depends on accounting: a cluster without `slurmdbd` answers `squeue`
//! and `scontrol` for as long as its controller remembers a job (`MinJobAge`), and
//! [`Slurm::accounting`] says `None` instead of waiting. Every call has a deadline and
//! is counted ([`Slurm::calls`]), so that a caller can poll politely and say how
//! politely it did.
//!
//! ```no_run
//! use slurm::{Slurm, Submission};
//! let slurm = Slurm::new();
//! let job = slurm.submit(&Submission::new("job.sh", "demo", "job-%j.log"))?;
//! let states = slurm.queue(&[job])?;
//! println!("{job}: {}", states[&job].state);
//! # Ok::<(), slurm::SlurmError>(())
//! ```

mod call;
mod state;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use call::command_line;
pub use state::JobState;

/// A Slurm job id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for JobId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<JobId, Self::Err> {
        s.trim().parse().map(JobId)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("cannot run `{program}`: {source}{}", hint(program, source))]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` did not answer within {seconds} s")]
    TimedOut { command: String, seconds: u64 },
    #[error("`{command}` failed: {}", stderr.trim())]
    Refused { command: String, stderr: String },
    #[error("`{command}` answered `{}`, not a job id", output.trim())]
    Unparsable { command: String, output: String },
}

fn hint(program: &str, source: &std::io::Error) -> String {
    if source.kind() == std::io::ErrorKind::NotFound {
        format!(
            "\n  = help: `{program}` is one of Slurm's commands: run this on a machine that \
             submits to the cluster (a login node), with Slurm's commands on PATH"
        )
    } else {
        String::new()
    }
}

/// A batch script to submit and what it asks for.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    pub script: PathBuf,
    /// The job's name in `squeue`.
    pub name: String,
    /// Where the job's stdout and stderr go (`%j` is the job id).
    pub output: PathBuf,
    /// The folder the script starts in.
    pub workdir: Option<PathBuf>,
    pub cpus_per_task: Option<u32>,
    /// Memory per node in Slurm's syntax (`16G`, `500M`).
    pub mem: Option<String>,
    /// Time limit in Slurm's syntax (`90`, `4:00:00`, `2-00:00:00`).
    pub time: Option<String>,
    /// GPUs, asked as `--gres=gpu:N` (none when 0).
    pub gpus: u32,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// Further `sbatch` arguments, as given.
    pub extra: Vec<String>,
}

impl Submission {
    pub fn new(script: impl AsRef<Path>, name: &str, output: impl AsRef<Path>) -> Submission {
        Submission {
            script: script.as_ref().to_path_buf(),
            name: name.to_string(),
            output: output.as_ref().to_path_buf(),
            ..Submission::default()
        }
    }

    /// The `sbatch` arguments, script last.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={}", self.name),
            format!("--output={}", self.output.display()),
        ];
        let mut opt = |flag: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(format!("--{flag}={value}"));
            }
        };
        opt(
            "chdir",
            self.workdir.as_ref().map(|d| d.display().to_string()),
        );
        opt("cpus-per-task", self.cpus_per_task.map(|n| n.to_string()));
        opt("mem", self.mem.clone());
        opt("time", self.time.clone());
        opt(
            "gres",
            (self.gpus > 0).then(|| format!("gpu:{}", self.gpus)),
        );
        opt("partition", self.partition.clone());
        opt("account", self.account.clone());
        opt("qos", self.qos.clone());
        args.extend(self.extra.iter().cloned());
        args.push(self.script.display().to_string());
        args
    }
}

/// A job as `squeue` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub state: JobState,
    /// Why it waits or how it ended (`Resources`, `Priority`, `NonZeroExitCode`).
    pub reason: String,
}

/// A job as `scontrol show job` or `sacct` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub state: JobState,
    pub reason: String,
    /// The batch script's exit code, and the signal that ended it if one did.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub restarts: u32,
}

/// How many times each program was called.
#[derive(Debug, Default)]
struct Calls([AtomicU64; PROGRAMS.len()]);

const PROGRAMS: [&str; 6] = ["sbatch", "squeue", "scontrol", "scancel", "sinfo", "sacct"];

/// The calls made so far, by program name.
pub type CallCounts = BTreeMap<&'static str, u64>;

/// Slurm's commands, called with a deadline each.
pub struct Slurm {
    deadline: Duration,
    calls: Calls,
}

impl Default for Slurm {
    fn default() -> Slurm {
        Slurm::new()
    }
}

impl Slurm {
    /// Calls that take longer than a minute are given up.
    pub fn new() -> Slurm {
        Slurm {
            deadline: Duration::from_secs(60),
            calls: Calls::default(),
        }
    }

    /// Counts of the calls made through this value.
    pub fn calls(&self) -> CallCounts {
        PROGRAMS
            .iter()
            .zip(&self.calls.0)
            .map(|(&p, n)| (p, n.load(Ordering::Relaxed)))
            .collect()
    }

    fn call(&self, program: &'static str, args: Vec<String>) -> Result<call::Output, SlurmError> {
        let index = PROGRAMS
            .iter()
            .position(|&p| p == program)
            .expect("a known program");
        self.calls.0[index].fetch_add(1, Ordering::Relaxed);
        call::call(program, &args, self.deadline)
    }

    fn refused(program: &str, args: &[String], out: &call::Output) -> SlurmError {
        SlurmError::Refused {
            command: command_line(program, args),
            stderr: if out.stderr.trim().is_empty() {
                format!("exit code {}", out.code.unwrap_or(-1))
            } else {
                out.stderr.clone()
            },
        }
    }

    /// `sbatch --parsable`: the new job's id.
    pub fn submit(&self, submission: &Submission) -> Result<JobId, SlurmError> {
        let args = submission.args();
        let out = self.call("sbatch", args.clone())?;
        if !out.success {
            return Err(Slurm::refused("sbatch", &args, &out));
        }
        // `--parsable` prints `id` or `id;cluster`.
        let first = out.stdout.lines().next().unwrap_or_default();
        first
            .split(';')
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|_| SlurmError::Unparsable {
                command: command_line("sbatch", &args),
                output: out.stdout.clone(),
            })
    }

    /// The jobs among `ids` that the controller still knows, finished ones included
    /// (for `MinJobAge` after they end), in one `squeue` call.
    pub fn queue(&self, ids: &[JobId]) -> Result<BTreeMap<JobId, Queued>, SlurmError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let list: Vec<String> = ids.iter().map(JobId::to_string).collect();
        let args = vec![
            "--noheader".to_string(),
            "--states=all".to_string(),
            format!("--jobs={}", list.join(",")),
            "--format=%i|%T|%r".to_string(),
        ];
        let out = self.call("squeue", args.clone())?;
        if !out.success {
            // One unknown id alone is an error; none of them known is no answer.
            if out.stderr.contains("Invalid job id") {
                return Ok(BTreeMap::new());
            }
            return Err(Slurm::refused("squeue", &args, &out));
        }
        Ok(parse_queue(&out.stdout))
    }

    /// `scontrol show job`: `None` when the controller no longer knows the job.
    pub fn show(&self, id: JobId) -> Result<Option<JobInfo>, SlurmError> {
        let args = vec![
            "--oneliner".into(),
            "show".into(),
            "job".into(),
            id.to_string(),
        ];
        let out = self.call("scontrol", args.clone())?;
        if !out.success {
            if out.stderr.contains("Invalid job id") {
                return Ok(None);
            }
            return Err(Slurm::refused("scontrol", &args, &out));
        }
        Ok(parse_show(&out.stdout))
    }

    /// `sacct`, for a job the controller forgot: `None` where the cluster keeps no
    /// accounting (a common setup) or has no line for the job.
    pub fn accounting(&self, id: JobId) -> Result<Option<JobInfo>, SlurmError> {
        let args = vec![
            "--noheader".into(),
            "--parsable2".into(),
            "--allocations".into(),
            format!("--jobs={id}"),
            "--format=State,ExitCode".into(),
        ];
        let out = self.call("sacct", args)?;
        if !out.success {
            return Ok(None);
        }
        Ok(out.stdout.lines().find_map(|line| {
            let (state, exit) = line.split_once('|')?;
            let (exit_code, signal) = parse_exit(exit);
            Some(JobInfo {
                state: JobState::parse(state),
                reason: String::new(),
                exit_code,
                signal,
                restarts: 0,
            })
        }))
    }

    /// `scancel`: jobs that already ended are no error.
    pub fn cancel(&self, ids: &[JobId]) -> Result<(), SlurmError> {
        if ids.is_empty() {
            return Ok(());
        }
        let args: Vec<String> = ids.iter().map(JobId::to_string).collect();
        let out = self.call("scancel", args.clone())?;
        let ended = |line: &str| {
            line.contains("already completing or completed") || line.contains("Invalid job id")
        };
        if out.success || out.stderr.lines().all(ended) {
            Ok(())
        } else {
            Err(Slurm::refused("scancel", &args, &out))
        }
    }

    /// The most GPUs one node of the partition (or of the cluster) has, from `sinfo`'s
    /// generic resources; 0 where none is configured.
    pub fn gpus_per_node(&self, partition: Option<&str>) -> Result<u32, SlurmError> {
        let mut args = vec!["--noheader".to_string(), "--format=%G".to_string()];
        if let Some(p) = partition {
            args.push(format!("--partition={p}"));
        }
        let out = self.call("sinfo", args.clone())?;
        if !out.success {
            return Err(Slurm::refused("sinfo", &args, &out));
        }
        Ok(out.stdout.lines().map(gpus_in_gres).max().unwrap_or(0))
    }
}

/// Checks a time limit in one of `sbatch --time`'s forms: `M`, `M:S`, `H:M:S`, `D-H`,
/// `D-H:M`, `D-H:M:S`, or `UNLIMITED`/`INFINITE`; the error says which forms exist.
pub fn check_time(text: &str) -> Result<(), String> {
    let forms = "write minutes (`90`), `H:M:S` (`4:00:00`) or `D-H:M:S` (`2-00:00:00`)";
    if matches!(text, "UNLIMITED" | "INFINITE") {
        return Ok(());
    }
    let numbers = |part: &str, most: usize| {
        let fields: Vec<&str> = part.split(':').collect();
        fields.len() <= most
            && fields
                .iter()
                .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
    };
    let ok = match text.split_once('-') {
        Some((days, rest)) => numbers(days, 1) && numbers(rest, 3),
        None => numbers(text, 3),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("`{text}` is not a Slurm time limit: {forms}"))
    }
}

/// Checks a memory size as `sbatch --mem` takes it: a whole number with an optional
/// unit `K`, `M` (the default), `G` or `T`.
pub fn check_mem(text: &str) -> Result<(), String> {
    let digits = text.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    let unit_len = text.len() - digits.len();
    if !digits.is_empty() && unit_len <= 1 && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is not a Slurm memory size: write a whole number with K, M, G or T, e.g. `16G`"
        ))
    }
}

fn parse_queue(text: &str) -> BTreeMap<JobId, Queued> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.trim().splitn(3, '|');
            let id = parts.next()?.parse().ok()?;
            let state = JobState::parse(parts.next()?);
            let reason = parts.next().unwrap_or_default().trim().to_string();
            Some((id, Queued { state, reason }))
        })
        .collect()
}

/// `Key=value` fields of `scontrol --oneliner` (values with spaces cut at the first:
/// none of the fields read here has one).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|token| token.strip_prefix(key)?.strip_prefix('='))
}

fn parse_show(text: &str) -> Option<JobInfo> {
    let line = text.lines().find(|l| l.contains("JobState="))?;
    let (exit_code, signal) = field(line, "ExitCode").map_or((None, None), parse_exit);
    Some(JobInfo {
        state: JobState::parse(field(line, "JobState")?),
        reason: field(line, "Reason").unwrap_or("None").to_string(),
        exit_code,
        signal,
        restarts: field(line, "Restarts")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0),
    })
}

/// `3:0` → exit code 3, no signal; `0:9` → killed by signal 9.
fn parse_exit(text: &str) -> (Option<i32>, Option<i32>) {
    let mut parts = text.trim().split(':');
    let code = parts.next().and_then(|c| c.parse().ok());
    let signal = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s != 0);
    (code, signal)
}

/// GPUs in one `sinfo %G` entry: `gpu:4`, `gpu:a100:4(S:0-1)`, `gpu:2,mps:100`, `(null)`.
fn gpus_in_gres(line: &str) -> u32 {
    line.split(',')
        .filter(|g| g.trim().starts_with("gpu:") || g.trim().starts_with("gpu("))
        .filter_map(|g| {
            let g = g.split('(').next().unwrap_or(g);
            g.rsplit(':').next()?.trim().parse::<u32>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_arguments_carry_every_request() {
        let mut s = Submission::new("/c/slurm/x.sh", "pipe:train[seed=0]", "/c/logs/x-%j.log");
        s.cpus_per_task = Some(8);
        s.mem = Some("32G".into());
        s.time = Some("2-00:00:00".into());
        s.gpus = 2;
        s.partition = Some("gpu".into());
        s.account = Some("lab".into());
        s.qos = Some("high".into());
        s.extra = vec!["--constraint=a100".into()];
        assert_eq!(
            s.args(),
            [
                "--parsable",
                "--job-name=pipe:train[seed=0]",
                "--output=/c/logs/x-%j.log",
                "--cpus-per-task=8",
                "--mem=32G",
                "--time=2-00:00:00",
                "--gres=gpu:2",
                "--partition=gpu",
                "--account=lab",
                "--qos=high",
                "--constraint=a100",
                "/c/slurm/x.sh"
            ]
        );
        let plain = Submission::new("x.sh", "n", "o.log").args();
        assert!(!plain.iter().any(|a| a.starts_with("--gres")), "{plain:?}");
    }

    #[test]
    fn squeue_lines() {
        let q = parse_queue("17|PENDING|Resources\n18|FAILED|NonZeroExitCode\n19_2|RUNNING|None\n");
        assert_eq!(q.len(), 2, "array tasks are not ours");
        assert_eq!(q[&JobId(17)].state, JobState::Pending);
        assert_eq!(q[&JobId(18)].reason, "NonZeroExitCode");
    }

    #[test]
    fn scontrol_line() {
        let line = "JobId=2 JobName=my job UserId=root(0) JobState=FAILED Reason=NonZeroExitCode \
                    Dependency=(null) Requeue=1 Restarts=1 BatchFlag=1 ExitCode=3:0";
        let info = parse_show(line).unwrap();
        assert_eq!(
            info,
            JobInfo {
                state: JobState::Failed,
                reason: "NonZeroExitCode".into(),
                exit_code: Some(3),
                signal: None,
                restarts: 1
            }
        );
        assert_eq!(parse_exit("0:9"), (Some(0), Some(9)));
        assert_eq!(parse_show("nothing here"), None);
    }

    #[test]
    fn time_and_memory_syntax() {
        for ok in [
            "90",
            "30:00",
            "4:00:00",
            "2-00:00:00",
            "1-12",
            "1-12:30",
            "UNLIMITED",
        ] {
            assert_eq!(check_time(ok), Ok(()), "{ok}");
        }
        for bad in ["", "2h", "1:2:3:4", "1-", "-5", "1-2-3", "4:00:"] {
            assert!(check_time(bad).is_err(), "{bad}");
        }
        for ok in ["16G", "500", "500M", "2T", "64k"] {
            assert_eq!(check_mem(ok), Ok(()), "{ok}");
        }
        for bad in ["", "G", "16GB", "1.5G", "-1"] {
            assert!(check_mem(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gres_counts() {
        assert_eq!(gpus_in_gres("(null)"), 0);
        assert_eq!(gpus_in_gres("gpu:4"), 4);
        assert_eq!(gpus_in_gres("gpu:a100:8(S:0-1)"), 8);
        assert_eq!(gpus_in_gres("gpu:v100:2,gpu:t4:1,mps:100"), 3);
    }
}
