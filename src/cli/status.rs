use std::path::PathBuf;
use std::process::ExitCode;

use pipe::plan::{State, states};
use serde_json::json;

use super::{CliError, Ctx, Sets, find_stage, load, out, pipeline_file, print_json};

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The pipeline file (RON; default `pipe.ron` in the current folder).
    file: Option<PathBuf>,
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
    let pipeline = load(&pipeline_file(args.file)?, &args.sets)?;
    let store = ctx.store()?;
    let states = states(&pipeline, &store)?;
    if args.json {
        let stages: Vec<_> = pipeline
            .stages
            .iter()
            .zip(&states)
            .map(|(stage, state)| json!({"stage": stage.name, "status": state}))
            .collect();
        print_json(&json!({"schema": 1, "pipeline": pipeline.name, "stages": stages}));
    } else {
        let width = pipeline
            .stages
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0);
        for (stage, state) in pipeline.stages.iter().zip(&states) {
            let detail = match state {
                State::UpToDate { key, .. } => key.short(),
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
    let clean = states.iter().all(|s| matches!(s, State::UpToDate { .. }));
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
        State::UpToDate { key, record } => out(format!(
            "`{}` is up to date: key {} recorded {}",
            args.stage,
            key.short(),
            record.started
        )),
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
