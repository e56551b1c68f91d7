use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use pipe::pipeline::Pipeline;
use pipe::pipeline::Resources;
use pipe::plan::{State, states};
use pipe::remote::RemoteFirst;
use pipe::schedule::{self, Executor, Gpus, InProcess, Options, SlurmExecutor, Subprocess};
use pipe::store::Store;
use pipe::summary::{Action, RunReport, StageReport};

use super::display::Display;
use super::{
    CliError, Ctx, GpuIds, Opened, Selected, Selection, Sets, file_and_stages, load_beside_store,
    out, parse_gpus, print_json, select,
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
    /// How many stages may run at once (default: one per CPU core; with `--executor
    /// slurm`, 500 jobs queued or running). Each local stage gets an even share of the
    /// cores for its own threads; -j 1 gives one stage them all.
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// GPU ids stages may use, e.g. 0,1,2,3, or `none` to run everything on the CPU.
    /// Default: every GPU this build can use here (none in a build without `--features
    /// cuda`; `PIPE_VISIBLE_GPUS=N` says 0..N instead). A stage on a GPU (`device: Auto`
    /// when there are GPUs, `Cuda(n)`, `Command(gpus: N)`) waits for free ones. With
    /// `--executor slurm`, the cluster's GPUs (from `sinfo`) unless `none`.
    #[arg(long, value_name = "LIST", value_parser = parse_gpus)]
    gpus: Option<GpuIds>,
    /// Stages one GPU may run at once. Default 1: GPU stages never share a GPU.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    stages_per_gpu: u32,
    /// After a failure, keep running the stages that do not depend on it.
    #[arg(short, long)]
    keep_going: bool,
    /// Where stages execute: in this process, each in its own `pipe exec` process, or
    /// each as a Slurm job running `pipe exec` (the store must be on a file system the
    /// compute nodes share).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    executor: ExecutorKind,
    /// Before computing a stage, look its key up on this remote cache and pull the
    /// result if it is there.
    #[arg(long, value_name = "NAME")]
    remote: Option<String>,
    /// Push every result computed in this run to the remote as soon as it is done.
    #[arg(long, requires = "remote")]
    push: bool,
    /// Print the run summary as JSON on stdout (schema in `schema`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sets: Sets,
    #[command(flatten)]
    slurm: SlurmArgs,
}

/// What every stage's job asks of Slurm, unless the pipeline's `resources` say
/// otherwise for it.
#[derive(clap::Args, Debug, Default)]
#[command(next_help_heading = "Slurm (with --executor slurm)")]
struct SlurmArgs {
    /// The partition of each stage's job (sbatch --partition).
    #[arg(long, value_name = "NAME")]
    partition: Option<String>,
    /// The account charged (sbatch --account).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// The quality of service (sbatch --qos).
    #[arg(long, value_name = "NAME")]
    qos: Option<String>,
    /// Each job's time limit (sbatch --time): minutes, H:M:S or D-H:M:S. A training
    /// stopped by it keeps its checkpoints and resumes on the next run.
    #[arg(long, value_name = "LIMIT", value_parser = parse_time)]
    time: Option<String>,
    /// CPU cores of each job (sbatch --cpus-per-task), the stage's threads. Default 1.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    cpus_per_task: Option<u32>,
    /// Memory of each job (sbatch --mem): 16G, 500M.
    #[arg(long, value_name = "SIZE", value_parser = parse_mem)]
    mem: Option<String>,
    /// A further sbatch argument for every job (repeatable), e.g.
    /// `--sbatch-arg=--constraint=a100`.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// The pipe binary the jobs run (default: this one); compute nodes must reach it.
    #[arg(long, value_name = "PATH")]
    pipe_binary: Option<std::path::PathBuf>,
    /// Seconds between two `squeue` calls (one for all jobs) after a change; the
    /// interval grows while nothing changes, up to 30 times this. Default 2.
    #[arg(long, value_name = "SECS")]
    poll: Option<f64>,
}

impl SlurmArgs {
    /// The flags given, for the error when the executor is not Slurm.
    fn given(&self) -> Option<&'static str> {
        [
            (self.partition.is_some(), "--partition"),
            (self.account.is_some(), "--account"),
            (self.qos.is_some(), "--qos"),
            (self.time.is_some(), "--time"),
            (self.cpus_per_task.is_some(), "--cpus-per-task"),
            (self.mem.is_some(), "--mem"),
            (!self.sbatch_args.is_empty(), "--sbatch-arg"),
            (self.pipe_binary.is_some(), "--pipe-binary"),
            (self.poll.is_some(), "--poll"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    /// The command line's requests, under which the file's entries go.
    fn defaults(&self) -> Resources {
        Resources {
            cpus: self.cpus_per_task,
            mem: self.mem.clone(),
            time: self.time.clone(),
            partition: self.partition.clone(),
            account: self.account.clone(),
            qos: self.qos.clone(),
            sbatch: self.sbatch_args.clone(),
        }
    }
}

fn parse_time(text: &str) -> Result<String, String> {
    slurm::check_time(text).map(|()| text.to_string())
}

fn parse_mem(text: &str) -> Result<String, String> {
    slurm::check_mem(text).map(|()| text.to_string())
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ExecutorKind {
    Local,
    Process,
    Slurm,
}

/// Jobs a Slurm run keeps queued or running at once unless `-j` says otherwise.
const SLURM_JOBS: u32 = 500;

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
    let Opened {
        pipeline,
        store,
        _shared,
    } = load_beside_store(ctx, &file, &args.sets)?;
    let Selected {
        stages: selected,
        only,
    } = args.selection.resolve(&pipeline, &stages)?;
    check_only(&pipeline, &store, &only)?;
    let force: BTreeSet<usize> = select(&pipeline, &args.force)?.into_iter().collect();

    if args.dry_run {
        if args.remote.is_some() {
            return Err(CliError::Message(
                "`--dry-run` does not ask the remote\n  = help: `pipe status --remote NAME` says which stages the remote has".into(),
            ));
        }
        let report = dry_run(
            &pipeline,
            &store,
            &selected,
            &force,
            !args.json && !ctx.quiet,
        )?;
        return Ok(finish(&report, args.json, ctx.quiet));
    }

    if args.executor != ExecutorKind::Slurm
        && let Some(flag) = args.slurm.given()
    {
        return Err(CliError::Message(format!(
            "`{flag}` is an option of `--executor slurm`\n  = help: add `--executor slurm`, or leave `{flag}` out"
        )));
    }
    install_ctrlc();
    let registry = super::registry();
    let display = Display::new(selected.len(), !args.json, ctx.quiet);
    let jobs = args.jobs.unwrap_or(match args.executor {
        ExecutorKind::Slurm => SLURM_JOBS,
        _ => schedule::cores() as u32,
    });
    let threads = schedule::share_of_cores(jobs as usize);
    let local = InProcess {
        store: &store,
        registry: &registry,
        cancel: &CANCEL,
        threads,
    };
    let exe = || {
        std::env::current_exe()
            .map_err(|e| CliError::Message(format!("cannot find the pipe binary: {e}")))
    };
    let process;
    let cluster;
    let (executor, gpus): (&dyn Executor, Gpus) = match args.executor {
        ExecutorKind::Local => (&local, local_gpus(args.gpus, args.stages_per_gpu)),
        ExecutorKind::Process => {
            process = Subprocess {
                exe: exe()?,
                store: &store,
                cancel: &CANCEL,
                threads,
            };
            (&process, local_gpus(args.gpus, args.stages_per_gpu))
        }
        ExecutorKind::Slurm => {
            let client = slurm::Slurm::new();
            let gpus = cluster_gpus(&client, &args)?;
            let defaults = args.slurm.defaults();
            let resources = pipeline
                .stages
                .iter()
                .map(|s| (s.name.clone(), defaults.clone().overridden_by(&s.resources)))
                .collect();
            let poll = args
                .slurm
                .poll
                .map_or(schedule::Poll::DEFAULT, schedule::Poll::from_min);
            let binary = match &args.slurm.pipe_binary {
                Some(path) => std::path::absolute(path).map_err(|e| {
                    CliError::Message(format!("`--pipe-binary {}`: {e}", path.display()))
                })?,
                None => exe()?,
            };
            cluster = SlurmExecutor::new(&store, client, binary, resources, poll, &CANCEL)?;
            (&cluster, gpus)
        }
    };
    if !args.json && !ctx.quiet {
        eprintln!("{}", devices(&gpus, jobs, args.slurm.partition.as_deref()));
    }
    let options = Options {
        jobs: jobs as usize,
        gpus,
        keep_going: args.keep_going,
        force,
    };
    let remote = match &args.remote {
        Some(name) => Some(super::remote::connect(Some(name))?),
        None => None,
    };
    let remote_first = remote
        .as_ref()
        .map(|remote| RemoteFirst::new(remote, &store, executor, args.push));
    let executor = match &remote_first {
        Some(remote_first) => remote_first,
        None => executor,
    };
    let report = schedule::run(
        &pipeline, &store, executor, &options, &selected, &display, &CANCEL,
    )?;
    display.flush();
    let code = finish(&report, args.json, ctx.quiet);
    let failures = remote_first.map(|r| r.push_failures.into_inner().expect("not poisoned"));
    match failures.unwrap_or_default().as_slice() {
        [] => Ok(code),
        failures => {
            for (stage, error) in failures {
                eprintln!("error: `{stage}` was not pushed: {error}");
            }
            eprintln!("  = help: `pipe push` sends what is missing once the remote answers");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// This machine's GPUs: those given, or every one the build sees.
fn local_gpus(given: Option<GpuIds>, per_gpu: u32) -> Gpus {
    Gpus::Local {
        ids: given.map_or_else(super::visible_gpus, |ids| ids.0),
        per_gpu: per_gpu as usize,
    }
}

/// A Slurm run's GPUs: as many per stage as a node of the partition has (`sinfo`), or
/// none with `--gpus none`. GPU ids name a local machine's GPUs: refused here.
fn cluster_gpus(client: &slurm::Slurm, args: &Args) -> Result<Gpus, CliError> {
    if args.stages_per_gpu != 1 {
        return Err(CliError::Message(
            "`--stages-per-gpu` shares a local machine's GPUs; Slurm allocates GPUs to each job (--gres=gpu:N)".into(),
        ));
    }
    let per_node = match &args.gpus {
        Some(GpuIds(ids)) if ids.is_empty() => 0,
        Some(_) => {
            return Err(CliError::Message(
                "with `--executor slurm` the cluster allocates GPUs to each job (--gres=gpu:N): `--gpus` takes only `none`".into(),
            ));
        }
        None => client
            .gpus_per_node(args.slurm.partition.as_deref())
            .map_err(|e| CliError::Message(format!("cannot ask Slurm for its GPUs: {e}")))?,
    };
    Ok(Gpus::Cluster {
        per_node: per_node as usize,
    })
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
fn devices(gpus: &Gpus, jobs: u32, partition: Option<&str>) -> String {
    match gpus {
        Gpus::Local { ids, .. } if ids.is_empty() => {
            format!("devices: CPU only, up to {jobs} stage(s) at once")
        }
        Gpus::Local { ids, per_gpu } => {
            let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
            let sharing = match per_gpu {
                1 => "one stage per GPU".to_string(),
                n => format!("{n} stages per GPU"),
            };
            format!(
                "devices: GPU {} ({sharing}) and the CPU, up to {jobs} stage(s) at once",
                ids.join(",")
            )
        }
        Gpus::Cluster { per_node } => {
            let on = partition.map_or_else(String::new, |p| format!(" (partition {p})"));
            let gpus = match per_node {
                0 => "CPU only".to_string(),
                n => format!("GPU stages ask for theirs with --gres=gpu:N, up to {n} a node"),
            };
            format!("devices: Slurm{on}, {gpus}; up to {jobs} job(s) at once")
        }
    }
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
            State::OnRemote { key, reasons, .. } => {
                report.key = Some(*key);
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
