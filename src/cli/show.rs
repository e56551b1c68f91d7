use std::path::PathBuf;
use std::process::ExitCode;

use pipe::plan::{State, latest_record, states};
use pipe::store::Record;
use serde_json::json;

use super::{CliError, Ctx, Sets, find_stage, load, out, print_json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pipeline file (RON).
    file: PathBuf,
    /// The stage to show.
    stage: String,
    /// How many lines of the end of the log to print (0: none; -1: all).
    #[arg(long, default_value_t = 20, allow_negative_numbers = true)]
    log_lines: i64,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Every record of the stage in this store, oldest first (keys for `pipe exec`,
    /// `pipe cache pin` or `pipe lineage`), instead of the current one.
    #[arg(long)]
    history: bool,
    #[command(flatten)]
    sets: Sets,
}

pub fn show(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let pipeline = load(&args.file, &args.sets)?;
    let index = find_stage(&pipeline, &args.stage)?;
    let store = ctx.store()?;
    if args.history {
        return history(
            &store,
            &pipeline.name,
            &pipeline.stages[index].name,
            args.json,
        );
    }
    let state = states(&pipeline, &store)?.swap_remove(index);
    let record = latest_record(&store, &store.refs(&pipeline.name)?, &args.stage, &state)?;
    let Some(record) = record else {
        if let State::Failed { failure, .. } = &state {
            return print_failure(&args, failure, args.json);
        }
        return Err(CliError::Message(format!(
            "`{}` has no record in this store ({})",
            args.stage,
            state.label()
        )));
    };
    let current = matches!(state, State::UpToDate { .. });
    let folder = store.tree_path(&record.output);
    let files = store
        .tree(&record.output)?
        .map(|t| t.entries)
        .unwrap_or_default();
    let log_path = record.log.map(|d| store.object_path(&d));
    if args.json {
        let outputs: Vec<_> = files
            .iter()
            .map(|e| json!({"path": folder.join(&e.path), "size": e.size, "digest": e.digest}))
            .collect();
        print_json(&json!({
            "schema": 1,
            "stage": args.stage,
            "status": state.label(),
            "record": record,
            "output_dir": folder,
            "outputs": outputs,
            "log": log_path,
        }));
        return Ok(ExitCode::SUCCESS);
    }
    let note = if current {
        String::new()
    } else {
        format!("  ({}; showing the last record)", state.label())
    };
    out(format!("stage     {}{note}", args.stage));
    out(format!(
        "kind      {} v{}",
        record.inputs.kind, record.inputs.kind_version
    ));
    out(format!("key       {}", record.key));
    out(format!(
        "started   {}  ({:.2}s on {} at {})",
        record.started, record.duration_s, record.device, record.host
    ));
    out(format!(
        "output    {}  ({} files, {})",
        folder.display(),
        record.output_files,
        bytes(record.output_bytes)
    ));
    for entry in &files {
        out(format!(
            "          {}  {}",
            folder.join(&entry.path).display(),
            bytes(entry.size)
        ));
    }
    print_inputs(&record);
    if !record.metrics.is_empty() {
        out("metrics");
        for (name, value) in &record.metrics {
            out(format!("          {name} = {value}"));
        }
    }
    if !record.protocol.is_empty() {
        out("protocol");
        for (fact, value) in &record.protocol {
            out(format!("          {fact}: {value}"));
        }
    }
    if let Some(summary) = &record.summary {
        out(format!("summary   {summary}"));
    }
    if let Some(path) = log_path {
        print_log(&path, args.log_lines);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_inputs(record: &Record) {
    for source in &record.sources {
        out(format!(
            "input     {} <- stage {} ({})",
            source.role,
            source.stage,
            source.output.short()
        ));
    }
    for (role, path, digest) in record.file_inputs() {
        let digest = digest.map(|d| d.short()).unwrap_or_default();
        out(format!(
            "input     {role} <- file {} ({digest})",
            path.display()
        ));
    }
}

/// Prints the last `lines` lines of a log (all if negative).
fn print_log(path: &std::path::Path, lines: i64) {
    if lines == 0 {
        return;
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = if lines < 0 {
        0
    } else {
        all.len().saturating_sub(lines as usize)
    };
    let cut = if start > 0 {
        format!(" (last {} lines)", all.len() - start)
    } else {
        String::new()
    };
    out(format!("log       {}{cut}", path.display()));
    for line in &all[start..] {
        out(format!("  | {line}"));
    }
}

fn print_failure(
    args: &Args,
    failure: &pipe::store::Failure,
    json: bool,
) -> Result<ExitCode, CliError> {
    if json {
        print_json(
            &json!({"schema": 1, "stage": args.stage, "status": "failed", "failure": failure}),
        );
        return Ok(ExitCode::SUCCESS);
    }
    out(format!(
        "stage     {}  (failed, never completed)",
        args.stage
    ));
    out(format!("key       {}", failure.key));
    out(format!("failed    {}  {}", failure.when, failure.error));
    if let Some(log) = &failure.log {
        print_log(log, args.log_lines);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The records of one stage, oldest first: when, key, how long, metrics.
fn history(
    store: &pipe::store::Store,
    pipeline: &str,
    stage: &str,
    json: bool,
) -> Result<ExitCode, CliError> {
    let mut records: Vec<Record> = store
        .records()?
        .into_iter()
        .filter(|r| r.pipeline == pipeline && r.stage == stage)
        .collect();
    records.sort_by(|a, b| a.started.cmp(&b.started));
    if json {
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                json!({"key": r.key, "started": r.started, "duration_s": r.duration_s,
                       "metrics": r.metrics, "summary": r.summary})
            })
            .collect();
        print_json(&json!({"schema": 1, "stage": stage, "records": rows}));
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        out(format!("`{stage}` has no record in this store"));
    }
    for r in &records {
        let metrics: Vec<String> = r.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out(format!(
            "{}  {}  {:>8.2}s  {}",
            r.started,
            r.key.short(),
            r.duration_s,
            metrics.join(" ")
        )
        .trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
