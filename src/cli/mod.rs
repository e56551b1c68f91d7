//! Subcommands, one module each.

mod cache;
mod dag;
mod diff;
mod display;
mod exec;
mod expand;
mod explain;
mod lineage;
#[cfg(feature = "kinds")]
mod metric;
mod metrics;
mod remote;
mod run;
mod show;
mod status;

use std::io::Write;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use contract::Registry;
use pipe::pipeline::{LoadError, Pipeline};
use pipe::store::{Lock, Store, StoreError};

/// A declarative pipeline engine for GAN experiments: stages described in RON, cached
/// by the content of what they read, so that only what changed runs again.
#[derive(Parser, Debug)]
#[command(name = "pipe", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// The store holding outputs, records and work folders.
    #[arg(
        long,
        global = true,
        env = "PIPE_CACHE",
        default_value = "cache",
        value_name = "DIR"
    )]
    cache: PathBuf,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr; no progress display.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a pipeline's stages whose inputs changed (all, or the given ones and what they need).
    #[command(after_help = "\
Progress: on a terminal, a line for the run (stages done of all, running, failed) over a
bar per running stage (step, rate, time left, its last message). When stderr is not a
terminal, plain lines instead: each stage's start, and its progress at most every
PIPE_PROGRESS_SECS seconds (default 30). Finished stages: one line each on stdout.")]
    Run(Box<run::Args>),
    /// Where each stage stands: up to date, stale (and why), never run, failed.
    Status(status::StatusArgs),
    /// What changed since a stage's last record, field by field.
    Why(status::WhyArgs),
    /// The stage graph, as text or Graphviz dot.
    Dag(dag::Args),
    /// A stage's outputs, metrics, timings and log.
    Show(show::Args),
    /// The pipeline as pipe reads it, as RON: `Include`, `ForEach` and `--set` applied,
    /// every stage with the canonical parameters its key is made from.
    Expand(expand::Args),
    /// What a stage kind's fields accept: type, default, allowed values and meaning, e.g.
    /// `pipe explain Train.train.lecam`; alone, the kinds.
    Explain(explain::Args),
    /// Where an artifact came from (its producers up to the sources), or with --down what depends on it.
    Lineage(lineage::Args),
    /// Parameters and metrics, field by field, between a stage's record and an earlier
    /// one (`--rev KEY`, by default the one before), or between two stages.
    Diff(diff::Args),
    /// The record metrics of stages side by side, with their ForEach variables as
    /// columns (`--mean-over seed` to average over seeds), as text, `--json` or `--csv`.
    Metrics(metrics::Args),
    /// Inspect and maintain the store.
    #[command(subcommand)]
    Cache(cache::Command),
    /// Name the remote caches that `push`, `pull` and `run --remote` use (S3-compatible
    /// object stores, HTTP caches that take PUT); kept in `.pipe/remotes.ron`.
    #[command(subcommand)]
    Remote(remote::Command),
    /// Send stages' current records and their outputs to a remote (what it has already
    /// is not sent again).
    Push(remote::TransferArgs),
    /// Fetch stages' current records and their outputs from a remote, each object
    /// checked against its digest; a stage's key is known once its upstreams are here.
    Pull(remote::TransferArgs),
    /// Execute one planned stage from the store alone (used by executors and clusters).
    Exec(exec::Args),
    /// Print a completion script for a shell, e.g. `pipe completions bash >
    /// ~/.local/share/bash-completion/completions/pipe`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Compute FID, intra-class FID, IS, KID, precision/recall or features outside a pipeline.
    #[cfg(feature = "kinds")]
    #[command(subcommand)]
    Metric(metric::Command),
}

/// Errors that end a command, rendered by `main`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}", remote_error(.0))]
    Remote(#[from] pipe::remote::RemoteError),
    #[error(transparent)]
    RemoteConfig(#[from] pipe::remote::ConfigError),
    /// Already rendered (e.g. a diagnostic), or a plain message.
    #[error("{0}")]
    Message(String),
}

/// A remote's error, with what to do about it.
fn remote_error(error: &pipe::remote::RemoteError) -> String {
    match pipe::remote::Remote::help(error) {
        Some(help) => format!("{error}\n  = help: {help}"),
        None => error.to_string(),
    }
}

pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    init_logging(cli.verbose, cli.quiet);
    let ctx = Ctx {
        cache: cli.cache,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Run(args) => run::run(&ctx, *args),
        Command::Status(args) => status::status(&ctx, args),
        Command::Why(args) => status::why(&ctx, args),
        Command::Dag(args) => dag::dag(&ctx, args),
        Command::Show(args) => show::show(&ctx, args),
        Command::Expand(args) => expand::expand(&ctx, args),
        Command::Explain(args) => explain::explain(&ctx, args),
        Command::Lineage(args) => lineage::lineage(&ctx, args),
        Command::Diff(args) => diff::diff(&ctx, args),
        Command::Metrics(args) => metrics::metrics(&ctx, args),
        Command::Cache(command) => cache::cache(&ctx, command),
        Command::Remote(command) => remote::remote(command),
        Command::Push(args) => remote::push(&ctx, args),
        Command::Pull(args) => remote::pull(&ctx, args),
        Command::Exec(args) => exec::exec(&ctx, args),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "pipe", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "kinds")]
        Command::Metric(command) => metric::metric(&ctx, command),
    }
}

/// What every subcommand may need from the global flags.
pub struct Ctx {
    cache: PathBuf,
    quiet: bool,
}

impl Ctx {
    /// Whether the store exists (commands that only read it make none).
    fn has_store(&self) -> bool {
        self.cache.is_dir()
    }

    fn store(&self) -> Result<Store, CliError> {
        // GPU kernels tuned once are reused by every stage and rerun on this store.
        #[cfg(feature = "cuda")]
        stages::kernels::device::keep_autotune_cache_in(&self.cache.join("autotune"));
        Ok(Store::open(&self.cache)?)
    }
}

/// The GPUs a run uses when `--gpus` is not given: every one this build can use here
/// (`PIPE_VISIBLE_GPUS=N`, for tests and to hold GPUs back, says 0..N instead).
fn visible_gpus() -> Vec<u32> {
    if let Some(n) = std::env::var("PIPE_VISIBLE_GPUS")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
    {
        return (0..n).collect();
    }
    #[cfg(feature = "kinds")]
    let visible = stages::kernels::device::Device::visible_gpus() as u32;
    #[cfg(not(feature = "kinds"))]
    let visible = 0;
    (0..visible).collect()
}

/// The kinds of this build: the engine's own and, with the `kinds` feature, those of
/// the `stages` crate.
fn registry() -> Registry {
    #[allow(unused_mut)]
    let mut kinds = pipe::kinds();
    #[cfg(feature = "kinds")]
    kinds.extend(stages::kinds());
    Registry::new(kinds)
}

/// The pipeline a command works on, never freed: the process ends with the command,
/// and freeing 100,000 stages one allocation at a time was a seventh of a dry run.
fn load(path: &Path, sets: &Sets) -> Result<ManuallyDrop<Pipeline>, CliError> {
    Ok(ManuallyDrop::new(Pipeline::load_with(
        path,
        &registry(),
        &sets.sets,
    )?))
}

/// A command's pipeline with its store.
struct Opened {
    pipeline: ManuallyDrop<Pipeline>,
    store: Store,
    /// Held until the command ends: `cache gc` waits rather than removing what the
    /// lookups made beside the loading found.
    _shared: Option<Lock>,
}

/// Loads the pipeline while the store looks up the keys its stages had last time, on
/// the cores the loading leaves idle (a fifth of a rerun of 100,000 stages); where
/// there is no store yet, loads the pipeline, then makes one.
fn load_beside_store(ctx: &Ctx, path: &Path, sets: &Sets) -> Result<Opened, CliError> {
    if !ctx.has_store() {
        let pipeline = load(path, sets)?;
        let store = ctx.store()?;
        return Ok(Opened {
            pipeline,
            store,
            _shared: None,
        });
    }
    let store = ctx.store()?;
    let shared = store.hold_shared()?;
    let pipeline = std::thread::scope(|scope| {
        Pipeline::load_then(path, &registry(), &sets.sets, &mut |name| {
            let (store, name) = (&store, name.to_string());
            // A lookup that fails is made again, and its error reported, when needed.
            scope.spawn(move || store.prepare_look_ahead(&name).ok());
        })
    })?;
    Ok(Opened {
        pipeline: ManuallyDrop::new(pipeline),
        store,
        _shared: Some(shared),
    })
}

/// Which stages a command is about: `--downstream`, `--until`, `--only`, with the
/// stages named as positional arguments counting as `--until`.
#[derive(clap::Args, Debug, Default)]
pub struct Selection {
    /// These stages and everything below them, with what they need (repeatable).
    #[arg(long, value_name = "STAGE")]
    downstream: Vec<String>,
    /// These stages and what they need, as naming them does (repeatable).
    #[arg(long, value_name = "STAGE")]
    until: Vec<String>,
    /// These stages alone, not their upstreams (repeatable; `pipe run` refuses while an
    /// upstream is not up to date).
    #[arg(long, value_name = "STAGE")]
    only: Vec<String>,
}

/// The stages that names on the command line mean (stages, groups, patterns).
fn select(pipeline: &Pipeline, names: &[String]) -> Result<Vec<usize>, CliError> {
    let mut out = Vec::new();
    for name in names {
        let found = pipeline.select(name);
        out.extend(found.map_err(|d| CliError::Message(pipeline.render(&d)))?);
    }
    Ok(out)
}

/// The stages a selection names: every stage when it names none, and the `--only`
/// stages apart (for `pipe run` to check their upstreams).
struct Selected {
    stages: std::collections::BTreeSet<usize>,
    only: Vec<usize>,
}

impl Selection {
    fn resolve(&self, pipeline: &Pipeline, named: &[String]) -> Result<Selected, CliError> {
        let mut until = select(pipeline, named)?;
        until.extend(select(pipeline, &self.until)?);
        let downstream = select(pipeline, &self.downstream)?;
        let only = select(pipeline, &self.only)?;
        if until.is_empty() && downstream.is_empty() && only.is_empty() {
            let stages = (0..pipeline.stages.len()).collect();
            return Ok(Selected { stages, only });
        }
        let below: Vec<usize> = pipeline
            .graph
            .with_downstream(&downstream)
            .into_iter()
            .collect();
        let mut stages = pipeline.graph.with_upstream(&until);
        stages.extend(pipeline.graph.with_upstream(&below));
        stages.extend(only.iter().copied());
        Ok(Selected { stages, only })
    }
}

/// `--set STAGE.FIELD=VALUE`, for the commands that read a pipeline's parameters.
#[derive(clap::Args, Debug, Default)]
pub struct Sets {
    /// Set a parameter as an edit of the file would (repeatable): STAGE is a stage, a
    /// ForEach group or a pattern with `*`, FIELD a path of fields, VALUE in RON, e.g.
    /// `--set 'train.train.total_steps=100'` or `--set 'score*.count=Some(5000)'`.
    #[arg(long = "set", value_name = "STAGE.FIELD=VALUE")]
    sets: Vec<String>,
}

/// The pipeline file a command reads when none is given.
const DEFAULT_PIPELINE: &str = "pipe.ron";

/// The file given, or `pipe.ron` in the current folder; without either, an error that
/// says where it looked and which pipelines it found in `pipelines/`.
fn pipeline_file(given: Option<PathBuf>) -> Result<PathBuf, CliError> {
    if let Some(path) = given {
        return Ok(path);
    }
    let default = PathBuf::from(DEFAULT_PIPELINE);
    if default.is_file() {
        return Ok(default);
    }
    let mut found: Vec<String> = std::fs::read_dir("pipelines")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .map(|p| p.display().to_string())
        .collect();
    found.sort();
    let here = std::env::current_dir().map_or_else(|_| ".".into(), |d| d.display().to_string());
    let mut message = format!("no pipeline file given, and no `{DEFAULT_PIPELINE}` in {here}");
    match found.first() {
        Some(first) => message.push_str(&format!(
            "\n  = note: pipelines here: {}\n  = help: give one, e.g. `pipe run {first}`",
            found.join(", ")
        )),
        None => message.push_str(&format!(
            "\n  = help: give a pipeline file, or write one as `{DEFAULT_PIPELINE}`"
        )),
    }
    Err(CliError::Message(message))
}

/// Splits a command's positional arguments into the pipeline file (the first, when it
/// names a `.ron` file) and the rest (stage names).
fn file_and_stages(mut args: Vec<String>) -> Result<(PathBuf, Vec<String>), CliError> {
    let names_a_file = args
        .first()
        .is_some_and(|a| a.ends_with(".ron") || Path::new(a).is_file());
    let file = names_a_file.then(|| PathBuf::from(args.remove(0)));
    Ok((pipeline_file(file)?, args))
}

/// Prints JSON on stdout; a closed pipe (`| head`) is not an error. Buffered: stdout
/// flushes at every line, and a pretty document of 100,000 stages has millions.
fn print_json(value: &impl serde::Serialize) {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
    let _ = out.flush();
}

/// Prints a line on stdout, ending quietly if stdout was closed.
fn out(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").is_err() {
        std::process::exit(0);
    }
}

/// Resolves a stage name, with a suggestion when there is no such stage.
fn find_stage(pipeline: &Pipeline, name: &str) -> Result<usize, CliError> {
    pipeline
        .find(name)
        .map_err(|d| CliError::Message(pipeline.render(&d)))
}

/// GPU ids from `--gpus 0,1,2`.
#[derive(Debug, Clone, Default)]
pub struct GpuIds(pub Vec<u32>);

fn parse_gpus(list: &str) -> Result<GpuIds, String> {
    if list.trim().is_empty() || list.trim() == "none" {
        return Ok(GpuIds::default());
    }
    let mut ids: Vec<u32> = list
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{s}` is not a GPU id; write ids such as 0,1,2"))
        })
        .collect::<Result<_, _>>()?;
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != n {
        return Err("a GPU id is listed twice".into());
    }
    Ok(GpuIds(ids))
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},pipe={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}
