use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipe::digest::{Digest, StageKey};
use serde_json::json;

use super::show::bytes;
use super::{CliError, Ctx, Sets, load, out, print_json};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List the records in the store, oldest first.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Disk usage of the store by part.
    Du {
        #[arg(long)]
        json: bool,
    },
    /// Delete what the latest records of the given pipelines (all pipelines seen by this
    /// store if none given) and pinned keys do not reference. Resumable work of stages
    /// not yet recorded is deleted too.
    Gc {
        /// Pipeline files whose current stages to keep.
        pipelines: Vec<PathBuf>,
        /// Only say what would be deleted.
        #[arg(long, short = 'n')]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Rehash every object; corrupt ones are reported and set aside so that the stages
    /// that made them run again. Exits 1 if any was corrupt.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Keep a record (and its outputs) through `cache gc`.
    Pin { key: String },
    /// Undo `cache pin`.
    Unpin { key: String },
}

pub fn cache(ctx: &Ctx, command: Command) -> Result<ExitCode, CliError> {
    let store = ctx.store()?;
    match command {
        Command::Ls { json } => {
            let mut records = store.records()?;
            records.sort_by(|a, b| a.started.cmp(&b.started));
            let pins = store.pins()?;
            if json {
                let rows: Vec<_> = records
                    .iter()
                    .map(|r| json!({
                        "key": r.key, "stage": r.stage, "pipeline": r.pipeline, "kind": r.inputs.kind,
                        "started": r.started, "duration_s": r.duration_s, "output": r.output,
                        "output_bytes": r.output_bytes, "pinned": pins.contains(&r.key),
                    }))
                    .collect();
                print_json(&json!({"schema": 1, "records": rows}));
            } else {
                for r in &records {
                    let pin = if pins.contains(&r.key) {
                        "  pinned"
                    } else {
                        ""
                    };
                    out(format!(
                        "{}  {:<20} {:<24} {:<8} {}  {:>8.2}s  {:>10}{pin}",
                        r.key.short(),
                        r.pipeline,
                        r.stage,
                        r.inputs.kind,
                        r.started,
                        r.duration_s,
                        bytes(r.output_bytes)
                    ));
                }
            }
        }
        Command::Du { json } => {
            let usage = store.usage();
            if json {
                print_json(&json!({"schema": 1, "root": store.root(), "usage": usage}));
            } else {
                out(format!("store {}", store.root().display()));
                for (name, (files, size)) in [
                    ("objects", usage.objects),
                    ("records", usage.records),
                    ("work", usage.work),
                    ("tmp", usage.tmp),
                ] {
                    out(format!("  {name:<8} {files:>8} files  {:>10}", bytes(size)));
                }
            }
        }
        Command::Gc {
            pipelines,
            dry_run,
            json,
        } => {
            let mut keep: BTreeSet<Digest<StageKey>> = store.pins()?;
            if pipelines.is_empty() {
                for refs in store.all_refs()?.values() {
                    keep.extend(refs.stages.values());
                }
            }
            for file in &pipelines {
                let pipeline = load(file, &Sets::default())?;
                let refs = store.refs(&pipeline.name)?;
                keep.extend(
                    pipeline
                        .stages
                        .iter()
                        .filter_map(|s| refs.stages.get(&s.name)),
                );
            }
            let plan = store.gc(&keep, dry_run)?;
            if json {
                print_json(&json!({"schema": 1, "dry_run": dry_run, "gc": plan}));
            } else {
                let verb = if dry_run { "would delete" } else { "deleted" };
                out(format!(
                    "kept {} records; {verb} {} records, {} trees, {} objects, {} work folders ({})",
                    plan.kept_records,
                    plan.records.len(),
                    plan.trees.len(),
                    plan.objects.len(),
                    plan.work.len(),
                    bytes(plan.bytes)
                ));
            }
        }
        Command::Verify { json } => {
            let bar = ProgressBar::with_draw_target(
                None,
                if ctx.quiet {
                    ProgressDrawTarget::hidden()
                } else {
                    ProgressDrawTarget::stderr()
                },
            );
            bar.set_style(
                ProgressStyle::with_template("verifying [{bar:30}] {pos}/{len} objects {eta}")
                    .expect("valid template"),
            );
            let (checked, corrupt) = store.verify(&|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            if json {
                print_json(&json!({"schema": 1, "checked": checked, "corrupt": corrupt}));
            } else {
                for c in &corrupt {
                    out(format!(
                        "corrupt {}  (content hashes to {}; moved to {})",
                        c.digest,
                        c.actual.short(),
                        c.moved_to.display()
                    ));
                }
                out(format!(
                    "checked {checked} objects: {} corrupt",
                    corrupt.len()
                ));
            }
            if !corrupt.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Pin { key } => {
            let key = store.resolve_key(&key)?;
            store.pin(&key, true)?;
            out(format!("pinned {key}"));
        }
        Command::Unpin { key } => {
            let key = store.resolve_key(&key)?;
            store.pin(&key, false)?;
            out(format!("unpinned {key}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
