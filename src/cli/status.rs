use std::path::PathBuf;
use std::process::ExitCode;

use pipe::plan::{State, states};
use serde_json::json;

use super::{CliError, Ctx, Selection, Sets, find_stage, load, out, pipeline_file, print_json};

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The pipeline file (RON; default `pipe.ron` in the current folder).
    file: Option<PathBuf>,
    /// Only these stages (and what they need), as `pipe run` selects them.
    #[command(flatten)]
    selection: Selection,
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
    let selected = args.selection.resolve(&pipeline, &[])?.stages;
    let store = ctx.store()?;
    let states = states(&pipeline, &store)?;
    // The selected stages, in the pipeline's order of definition.
    let shown: Vec<(&pipe::pipeline::Stage, &State)> = pipeline
        .stages
        .iter()
        .zip(&states)
        .enumerate()
        .filter(|(i, _)| selected.contains(i))
        .map(|(_, pair)| pair)
        .collect();
    if args.json {
        let stages: Vec<_> = shown
            .iter()
            .map(|(stage, state)| json!({"stage": stage.name, "status": state}))
            .collect();
        print_json(&json!({"schema": 1, "pipeline": pipeline.name, "stages": stages}));
    } else {
        let width = shown.iter().map(|(s, _)| s.name.len()).max().unwrap_or(0);
        for &(stage, state) in &shown {
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
    let clean = shown
        .iter()
        .all(|(_, s)| matches!(s, State::UpToDate { .. }));
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
