use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use pipe::digest::{Digest, StageKey};
use pipe::plan::{State, states, states_with};
use serde_json::json;

use super::{
    CliError, Ctx, Opened, Selection, Sets, find_stage, load, load_beside_store, out,
    pipeline_file, print_json,
};

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The pipeline file (RON; default `pipe.ron` in the current folder).
    file: Option<PathBuf>,
    /// Only these stages (and what they need), as `pipe run` selects them.
    #[command(flatten)]
    selection: Selection,
    /// Also ask this remote cache for the
    /// stages not up to date here: those it has are `on remote` (`pipe pull` fetches
    /// them), and the stages below them are planned with their outputs.
    #[arg(long, value_name = "NAME")]
    remote: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sets: Sets,
}

#[derive(clap::Args, Debug)]
pub struct WhyArgs {
    /// The pipeline file (RON).
    file: PathBuf,
    /// The stage to explain.
    stage: String,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sets: Sets,
}

/// `pipe status`: exits 0 when every stage is up to date, 1 otherwise.
pub fn status(ctx: &Ctx, args: StatusArgs) -> Result<ExitCode, CliError> {
    let Opened {
        pipeline,
        store,
        _shared,
    } = load_beside_store(ctx, &pipeline_file(args.file)?, &args.sets)?;
    let selected = args.selection.resolve(&pipeline, &[])?.stages;
    let states = match &args.remote {
        None => states(&pipeline, &store)?,
        Some(name) => {
            let remote = super::remote::connect(Some(name))?;
            states_with(&pipeline, &store, &mut |_, key| remote.record(key))?
        }
    };
    let queued = cluster_jobs(&store, &states)?;
    // The selected stages, in the pipeline's order of definition.
    let shown: Vec<(&pipe::pipeline::Stage, &State, Option<&ClusterJob>)> = pipeline
        .stages
        .iter()
        .zip(&states)
        .enumerate()
        .filter(|(i, _)| selected.contains(i))
        .map(|(_, (stage, state))| {
            let job = state.key().and_then(|k| queued.get(&k));
            (stage, state, job)
        })
        .collect();
    if args.json {
        let stages: Vec<_> = shown
            .iter()
            .map(|(stage, state, job)| {
                let mut entry = json!({"stage": stage.name, "status": state});
                if let Some(job) = job {
                    entry["slurm"] = json!({
                        "job": job.submitted.job,
                        "state": job.queued.as_ref().map(|q| q.state.name()),
                        "reason": job.queued.as_ref().map(|q| &q.reason),
                        "submitted": job.submitted.submitted,
                        "log": job.submitted.log,
                    });
                }
                entry
            })
            .collect();
        print_json(&json!({"schema": 1, "pipeline": pipeline.name, "stages": stages}));
    } else {
        let width = shown.iter().map(|(s, ..)| s.name.len()).max().unwrap_or(0);
        for &(stage, state, job) in &shown {
            if let Some(job) = job {
                let (label, detail) = job.describe();
                out(format!("{label:<10} {:<width$}  {detail}", stage.name));
                continue;
            }
            let detail = match state {
                State::UpToDate { key, .. } => key.short(),
                State::OnRemote { key, reasons, .. } => std::iter::once(key.short())
                    .chain(reasons.iter().map(ToString::to_string))
                    .collect::<Vec<_>>()
                    .join("; "),
                State::Failed { failure, .. } => {
                    let log = failure
                        .log
                        .as_ref()
                        .map(|l| format!(" (log: {})", l.display()))
                        .unwrap_or_default();
                    format!("{}{log}", failure.error)
                }
                State::Broken { message } => message.clone(),
                other => other
                    .reasons()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            out(format!("{:<10} {:<width$}  {detail}", state.label(), stage.name).trim_end());
        }
    }
    let clean = shown
        .iter()
        .all(|(_, s, _)| matches!(s, State::UpToDate { .. }));
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn why(ctx: &Ctx, args: WhyArgs) -> Result<ExitCode, CliError> {
    let pipeline = load(&args.file, &args.sets)?;
    let index = find_stage(&pipeline, &args.stage)?;
    let store = ctx.store()?;
    let state = states(&pipeline, &store)?.swap_remove(index);
    let overrides = &pipeline.stages[index].overrides;
    if args.json {
        print_json(
            &json!({"schema": 1, "stage": args.stage, "status": state, "overrides": overrides}),
        );
        return Ok(ExitCode::SUCCESS);
    }
    match &state {
        State::UpToDate { key, .. } => {
            let recorded = store
                .record(key)?
                .map(|r| format!(" recorded {}", r.started))
                .unwrap_or_default();
            out(format!(
                "`{}` is up to date: key {}{recorded}",
                args.stage,
                key.short()
            ))
        }
        State::Broken { message } => out(format!("`{}` cannot be planned: {message}", args.stage)),
        _ => {
            let headline = match &state {
                State::Failed { failure, .. } => {
                    format!("`{}` failed last time: {}", args.stage, failure.error)
                }
                State::NeverRun { .. } => format!("`{}` has never run in this store", args.stage),
                _ => format!("`{}` will run again:", args.stage),
            };
            out(headline);
            for reason in state.reasons() {
                if !matches!(reason, pipe::reason::Reason::NeverRun) {
                    out(format!("  {reason}"));
                }
            }
        }
    }
    for text in overrides {
        out(format!("  = set on the command line: --set {text}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// A stage's key submitted to Slurm, with what `squeue` says of it.
struct ClusterJob {
    submitted: pipe::schedule::SlurmJob,
    /// `None` when `squeue` does not list it or could not be asked.
    queued: Option<slurm::Queued>,
    trouble: Option<String>,
}

impl ClusterJob {
    /// `pending`, `Slurm job 12 (PENDING: Priority), submitted …`.
    fn describe(&self) -> (&'static str, String) {
        let id = self.submitted.job;
        let Some(queued) = &self.queued else {
            let why = self.trouble.as_deref().unwrap_or("squeue does not list it");
            return (
                "submitted",
                format!("Slurm job {id} (state unknown: {why})"),
            );
        };
        let label = if queued.state.is_waiting() {
            "pending"
        } else {
            "running"
        };
        let reason = match queued.reason.as_str() {
            "" | "None" => String::new(),
            reason => format!(": {reason}"),
        };
        let detail = format!(
            "Slurm job {id} ({}{reason}), submitted {}, log {}",
            queued.state,
            self.submitted.submitted,
            self.submitted.log.display()
        );
        (label, detail)
    }
}

/// The Slurm jobs computing stages that are not up to date, asked of `squeue` in one
/// call; nothing is asked when no stage was submitted.
fn cluster_jobs(
    store: &pipe::store::Store,
    states: &[State],
) -> Result<BTreeMap<Digest<StageKey>, ClusterJob>, CliError> {
    let keys: Vec<Digest<StageKey>> = states
        .iter()
        .filter(|s| !matches!(s, State::UpToDate { .. }))
        .filter_map(State::key)
        .collect();
    let submitted = pipe::schedule::submitted_jobs(store, &keys)?;
    if submitted.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids: Vec<slurm::JobId> = submitted.iter().map(|(_, j)| slurm::JobId(j.job)).collect();
    let (mut listed, trouble) = match slurm::Slurm::new().queue(&ids) {
        Ok(listed) => (listed, None),
        Err(e) => (BTreeMap::new(), Some(e.to_string())),
    };
    // A job that ended is the past: the stage's own state says the rest.
    Ok(submitted
        .into_iter()
        .filter_map(|(key, job)| {
            let queued = listed.remove(&slurm::JobId(job.job));
            if queued.as_ref().is_some_and(|q| q.state.is_final()) {
                return None;
            }
            let entry = ClusterJob {
                submitted: job,
                queued,
                trouble: trouble.clone(),
            };
            Some((key, entry))
        })
        .collect())
}
