//! `pipe diff`: parameters and metrics, field by field, between a stage's current record
//! and an earlier one (`--rev KEY`, by default the record before it), or between the
//! records of two stages.

use std::process::ExitCode;

use pipe::plan::{latest_record, states};
use pipe::reason::diff_fields;
use pipe::store::{Record, Store};
use serde_json::json;

use super::{CliError, Ctx, Sets, file_and_stages, find_stage, load, out, print_json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pipeline file (RON; default `pipe.ron` in the current folder), the stage, and
    /// optionally a second stage to compare it with.
    #[arg(value_name = "FILE] STAGE [OTHER", required = true)]
    targets: Vec<String>,
    /// Compare with this record of the stage: a key (a unique prefix will do), as `pipe
    /// show --history` lists them.
    #[arg(long, value_name = "KEY")]
    rev: Option<String>,
    /// JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn diff(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let (file, stages) = file_and_stages(args.targets)?;
    let pipeline = load(&file, &Sets::default())?;
    let [stage, rest @ ..] = stages.as_slice() else {
        return Err(CliError::Message("give the stage to compare".into()));
    };
    let store = ctx.store()?;
    let states = states(&pipeline, &store)?;
    let refs = store.refs(&pipeline.name)?;
    // The stage's current record, or its last one when it is not up to date.
    let latest = |name: &str| -> Result<Record, CliError> {
        let i = find_stage(&pipeline, name)?;
        let record = latest_record(&store, &refs, name, &states[i])?;
        record.ok_or_else(|| CliError::Message(format!("`{name}` has no record in this store")))
    };
    let new = latest(stage)?;
    let old = match (rest, &args.rev) {
        ([other], _) => latest(other)?,
        ([], Some(rev)) => {
            let key = store.resolve_key(rev)?;
            store
                .record(&key)?
                .ok_or_else(|| CliError::Message(format!("no record for key {}", key.short())))?
        }
        ([], None) => earlier(&store, &new)?,
        _ => return Err(CliError::Message("give at most two stages".into())),
    };
    let mut reasons = diff_fields("params", &old.inputs.params, &new.inputs.params);
    reasons.extend(diff_fields(
        "metrics",
        &json!(old.metrics),
        &json!(new.metrics),
    ));
    if args.json {
        print_json(&json!({
            "schema": 1,
            "old": {"stage": old.stage, "key": old.key, "started": old.started},
            "new": {"stage": new.stage, "key": new.key, "started": new.started},
            "differences": reasons,
        }));
        return Ok(ExitCode::SUCCESS);
    }
    out(format!(
        "{} {} ({}) → {} {} ({})",
        old.stage,
        old.key.short(),
        old.started,
        new.stage,
        new.key.short(),
        new.started
    ));
    if reasons.is_empty() {
        out("  no difference in parameters or metrics");
    }
    for reason in &reasons {
        out(format!("  {reason}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// The stage's record before `record`, by when it started.
fn earlier(store: &Store, record: &Record) -> Result<Record, CliError> {
    store
        .records()?
        .into_iter()
        .filter(|r| {
            r.pipeline == record.pipeline && r.stage == record.stage && r.started < record.started
        })
        .max_by(|a, b| a.started.cmp(&b.started))
        .ok_or_else(|| {
            CliError::Message(format!(
                "`{}` has no record before {}; compare with another stage or `--rev KEY`",
                record.stage,
                record.key.short()
            ))
        })
}
