use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use pipe::pipeline::Pipeline;
use pipe::plan::{State, states};
use pipe::schedule::{self, Executor, InProcess, Options, Subprocess};
use pipe::store::Store;
use pipe::summary::{Action, RunReport, StageReport};

use super::display::Display;
use super::{
    CliError, Ctx, GpuIds, Selected, Selection, Sets, file_and_stages, load, out, parse_gpus,
    print_json, select,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pipeline file (RON; default `pipe.ron` in the current folder), then the stages
    /// to run (names, ForEach groups or patterns with `*`) with what they need; without
    /// stages, all of them.
    #[arg(value_name = "FILE] [STAGE")]
    targets: Vec<String>,
    /// Show what would run, and why, without running anything.
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Run this stage even if its result is cached (repeatable). Stages below it rerun
    /// only if its output changes. `--force '*'` reruns everything.
    #[arg(long, value_name = "STAGE")]
    force: Vec<String>,
    #[command(flatten)]
    selection: Selection,
    /// How many stages may run at once (default: one per CPU core). Each running stage
    /// gets an even share of the cores for its own threads; -j 1 gives one stage them all.
    #[arg(short, long, default_value_t = schedule::cores() as u32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: u32,
    /// GPU ids stages may use, e.g. 0,1,2,3, or `none` to run everything on the CPU.
    /// Default: every GPU this build can use here (none in a build without `--features
    /// cuda`; `PIPE_VISIBLE_GPUS=N` says 0..N instead). A stage on a GPU (`device: Auto`
    /// when there are GPUs, `Cuda(n)`, `Command(gpus: N)`) waits for free ones.
    #[arg(long, value_name = "LIST", value_parser = parse_gpus)]
    gpus: Option<GpuIds>,
    /// Stages one GPU may run at once. Default 1: GPU stages never share a GPU.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    stages_per_gpu: u32,
    /// After a failure, keep running the stages that do not depend on it.
    #[arg(short, long)]
    keep_going: bool,
    /// Where stages execute: in this process, or each in its own `pipe exec` process.
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    executor: ExecutorKind,
    /// Print the run summary as JSON on stdout (schema in `schema`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sets: Sets,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ExecutorKind {
    Local,
    Process,
}

static CANCEL: AtomicBool = AtomicBool::new(false);

/// First Ctrl-C: stop starting stages and stop the running ones. Second: leave now.
pub fn install_ctrlc() {
    let _ = ctrlc::set_handler(|| {
        if CANCEL.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping running stages (Ctrl-C again to quit at once)");
    });
}

pub fn cancel_flag() -> &'static AtomicBool {
    &CANCEL
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let (file, stages) = file_and_stages(args.targets.clone())?;
    let pipeline = load(&file, &args.sets)?;
    let store = ctx.store()?;
    let Selected {
        stages: selected,
        only,
    } = args.selection.resolve(&pipeline, &stages)?;
    check_only(&pipeline, &store, &only)?;
    let force: BTreeSet<usize> = select(&pipeline, &args.force)?.into_iter().collect();

    if args.dry_run {
        let report = dry_run(
            &pipeline,
            &store,
            &selected,
            &force,
            !args.json && !ctx.quiet,
        )?;
        return Ok(finish(&report, args.json, ctx.quiet));
    }

    install_ctrlc();
    let registry = super::registry();
    let display = Display::new(selected.len(), !args.json, ctx.quiet);
    let threads = schedule::share_of_cores(args.jobs as usize);
    let local = InProcess {
        store: &store,
        registry: &registry,
        cancel: &CANCEL,
        threads,
    };
    let process;
    let executor: &dyn Executor = match args.executor {
        ExecutorKind::Local => &local,
        ExecutorKind::Process => {
            let exe = std::env::current_exe()
                .map_err(|e| CliError::Message(format!("cannot find the pipe binary: {e}")))?;
            process = Subprocess {
                exe,
                store: &store,
                cancel: &CANCEL,
                threads,
            };
            &process
        }
    };
    let gpus = args.gpus.map_or_else(super::visible_gpus, |ids| ids.0);
    if !args.json && !ctx.quiet {
        eprintln!("{}", devices(&gpus, args.stages_per_gpu, args.jobs));
    }
    let options = Options {
        jobs: args.jobs as usize,
        gpus,
        stages_per_gpu: args.stages_per_gpu as usize,
        keep_going: args.keep_going,
        force,
    };
    let report = schedule::run(
        &pipeline, &store, executor, &options, &selected, &display, &CANCEL,
    )?;
    Ok(finish(&report, args.json, ctx.quiet))
}

/// `--only` stages are refused while an upstream they read is not up to date: they
/// would read an output that is not there, or not the one their inputs name.
fn check_only(pipeline: &Pipeline, store: &Store, only: &[usize]) -> Result<(), CliError> {
    if only.is_empty() {
        return Ok(());
    }
    let states = states(pipeline, store)?;
    for &i in only {
        for u in pipeline.upstream(i) {
            if !matches!(states[u], State::UpToDate { .. }) {
                return Err(CliError::Message(format!(
                    "`--only {}`: its upstream `{}` is {}\n  = help: run it first, or name the stage without `--only` to run what it needs",
                    pipeline.stages[i].name,
                    pipeline.stages[u].name,
                    states[u].label()
                )));
            }
        }
    }
    Ok(())
}

/// The line a run starts with: where its stages will run.
fn devices(gpus: &[u32], per_gpu: u32, jobs: u32) -> String {
    let cpu = format!("up to {jobs} stage(s) at once");
    if gpus.is_empty() {
        return format!("devices: CPU only, {cpu}");
    }
    let ids: Vec<String> = gpus.iter().map(u32::to_string).collect();
    let sharing = match per_gpu {
        1 => "one stage per GPU".to_string(),
        n => format!("{n} stages per GPU"),
    };
    format!(
        "devices: GPU {} ({sharing}) and the CPU, {cpu}",
        ids.join(",")
    )
}

fn finish(report: &RunReport, json: bool, quiet: bool) -> ExitCode {
    if json {
        print_json(report);
    } else if !quiet {
        out(report.summary_line());
    }
    if report.interrupted {
        ExitCode::from(130)
    } else if report.succeeded()
        || report
            .stages
            .iter()
            .all(|s| s.action == Action::WouldRun || s.action.succeeded())
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The plan without running: what is cached, what would run and why.
fn dry_run(
    pipeline: &Pipeline,
    store: &Store,
    selected: &BTreeSet<usize>,
    force: &BTreeSet<usize>,
    print: bool,
) -> Result<RunReport, CliError> {
    let clock = std::time::Instant::now();
    let states = states(pipeline, store)?;
    let mut reports = Vec::new();
    for i in pipeline.ordered(selected) {
        let name = &pipeline.stages[i].name;
        let mut report = StageReport::new(name, Action::WouldRun);
        match &states[i] {
            State::UpToDate { key, .. } if !force.contains(&i) => {
                report.action = Action::Cached;
                report.key = Some(*key);
            }
            State::UpToDate { key, .. } => {
                report.key = Some(*key);
                report.reasons = vec![pipe::reason::Reason::Forced];
            }
            State::Stale { key, reasons } | State::NeverRun { key, reasons } => {
                report.key = *key;
                report.reasons = reasons.clone();
            }
            State::Failed {
                key,
                reasons,
                failure,
            } => {
                report.key = Some(*key);
                report.reasons = reasons.clone();
                report.error = Some(format!("failed last time: {}", failure.error));
            }
            State::Broken { message } => {
                report.action = Action::Failed;
                report.error = Some(message.clone());
            }
        }
        if print {
            out(report.line());
        }
        reports.push(report);
    }
    Ok(RunReport::new(
        &pipeline.name,
        reports,
        clock.elapsed().as_secs_f64(),
        false,
    ))
}
