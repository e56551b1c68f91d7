use std::process::ExitCode;

use pipe::schedule::{
    ExecError, ExecOutcome, Executed, Executor, InProcess, JOB_SCHEMA, Job, ProgressLine,
    ProgressReport,
};

use super::run::{cancel_flag, install_ctrlc};
use super::{CliError, Ctx, GpuIds, out, parse_gpus, print_json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The key of a job written by `pipe run` (a unique prefix will do).
    key: String,
    /// GPU ids given to the stage.
    #[arg(long, value_name = "LIST", value_parser = parse_gpus, default_value = "")]
    gpus: GpuIds,
    /// CPU threads the stage may use (default: every core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Print the stage's progress on stdout first, a JSON object a line (and the
    /// outcome as one line), as `pipe run --executor process` and `slurm` read it.
    #[arg(long)]
    progress_lines: bool,
    /// Seconds between two progress lines at most (the last is always printed).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 0.1,
        requires = "progress_lines"
    )]
    progress_every: f64,
}

/// The stage's progress as JSON lines on stdout, or nowhere.
struct Lines {
    on: bool,
    every: std::time::Duration,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl contract::Progress for Lines {
    fn report(&self, done: u64, total: Option<u64>, message: &str) {
        if !self.on {
            return;
        }
        let mut last = self.last.lock().expect("progress poisoned");
        let due = last.is_none_or(|t| t.elapsed() >= self.every);
        if !(due || total == Some(done)) {
            return;
        }
        *last = Some(std::time::Instant::now());
        let line = ProgressLine {
            progress: ProgressReport {
                done,
                total,
                message: message.to_string(),
            },
        };
        out(serde_json::to_string(&line).expect("serializable"));
    }
}

/// Runs one job from `jobs/<key>.json` and points the stage's ref at it; exit 0 when
/// recorded, 1 when it failed, 130 when interrupted.
pub fn exec(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let store = ctx.store()?;
    let key = store.resolve_key(&args.key)?;
    let path = store.job_path(&key);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::Message(format!(
            "no job for key {} (`{}`): {e}",
            key.short(),
            path.display()
        ))
    })?;
    let job: Job = serde_json::from_str(&text)
        .map_err(|e| CliError::Message(format!("`{}` is not a job: {e}", path.display())))?;
    if job.schema != JOB_SCHEMA {
        return Err(CliError::Message(format!(
            "`{}` has job schema {}, this pipe reads {JOB_SCHEMA}",
            path.display(),
            job.schema
        )));
    }
    install_ctrlc();
    let _shared = store.hold_shared()?;
    let registry = super::registry();
    let executor = InProcess {
        store: &store,
        registry: &registry,
        cancel: cancel_flag(),
        threads: args
            .threads
            .map_or_else(pipe::schedule::cores, |n| n as usize),
    };
    let progress = Lines {
        on: args.progress_lines,
        every: std::time::Duration::from_secs_f64(args.progress_every.max(0.0)),
        last: std::sync::Mutex::new(None),
    };
    let result = executor.execute(&job, &args.gpus.0, &progress);
    // A job run by a cluster (or by hand) enters the store as a local run's does, so
    // that `show`, `lineage` and `cache gc` see it without the `pipe run` that wrote it.
    if result.is_ok() {
        let update = std::collections::BTreeMap::from([(job.stage.clone(), job.key)]);
        store.update_refs(&job.pipeline, &update)?;
    }
    store.save()?;
    let (action, code, detail) = match &result {
        Ok(Executed::Ran(r)) => ("ran", ExitCode::SUCCESS, format!("{:.2}s", r.duration_s)),
        Ok(Executed::Reused(_)) => ("reused", ExitCode::SUCCESS, String::new()),
        Ok(Executed::Pulled(_)) => ("pulled", ExitCode::SUCCESS, String::new()),
        Err(ExecError::Cancelled) => ("interrupted", ExitCode::from(130), String::new()),
        Err(ExecError::Stopped { message, .. }) => {
            ("interrupted", ExitCode::from(130), message.clone())
        }
        Err(ExecError::Failed { message, .. }) => ("failed", ExitCode::FAILURE, message.clone()),
        Err(ExecError::Store(e)) => return Err(CliError::Message(e.to_string())),
    };
    if args.json {
        let outcome = ExecOutcome {
            schema: 1,
            stage: job.stage.clone(),
            key: job.key,
            action: action.into(),
            detail,
        };
        if args.progress_lines {
            // One line, after the progress lines, for the executor that reads them.
            out(serde_json::to_string(&outcome).expect("serializable"));
        } else {
            print_json(&outcome);
        }
    } else {
        out(format!("{action:<11} {}  {detail}", job.stage).trim_end());
    }
    Ok(code)
}
