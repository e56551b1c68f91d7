use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pipe::digest::{Digest, Object, StageKey};
use pipe::pipeline::Pipeline;
use pipe::plan::{latest_record, states};
use pipe::store::{Record, Store};
use serde_json::{Value, json};

use super::{CliError, Ctx, Sets, load, out, print_json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pipeline file (RON).
    file: PathBuf,
    /// A stage name, a path to an output file or folder, or a key or digest (prefix).
    target: String,
    /// Show what was computed from the target instead of what it came from.
    #[arg(long)]
    down: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn lineage(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let pipeline = load(&args.file, &Sets::default())?;
    let store = ctx.store()?;
    let record = target_record(&pipeline, &store, &args.target)?;
    if args.down {
        let down = dependents(&pipeline, &store, &record)?;
        if args.json {
            print_json(
                &json!({"schema": 1, "target": record.key, "stage": record.stage, "dependents": down}),
            );
        } else {
            out(format!("{}  {}", record.stage, record.key.short()));
            for d in &down {
                let depth = d["depth"].as_u64().unwrap_or(1) as usize;
                let current = if d["current"].as_bool() == Some(true) {
                    ""
                } else {
                    "  (not current)"
                };
                out(format!(
                    "{}-> {}  {}  reads `{}` as {}{current}",
                    "  ".repeat(depth),
                    d["stage"].as_str().unwrap_or_default(),
                    &d["key"].as_str().unwrap_or_default()[..12],
                    d["reads"].as_str().unwrap_or_default(),
                    d["role"].as_str().unwrap_or_default(),
                ));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut seen = BTreeSet::new();
    if args.json {
        print_json(&json!({"schema": 1, "lineage": upstream_json(&store, &record, &mut seen)?}));
    } else {
        out(describe(&record));
        print_upstream(&store, &record, "", &mut seen)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The record a target names: a stage's (current, else last), the producer of a path
/// inside the store, or a key or output digest prefix.
fn target_record(pipeline: &Pipeline, store: &Store, target: &str) -> Result<Record, CliError> {
    if let Some(index) = pipeline.index(target) {
        let state = states(pipeline, store)?.swap_remove(index);
        let record = latest_record(store, &store.refs(&pipeline.name)?, target, &state)?;
        return record.ok_or_else(|| {
            CliError::Message(format!(
                "stage `{target}` has no record in this store yet; run it first"
            ))
        });
    }
    let path = Path::new(target);
    if path.exists() {
        return producer_of_path(store, path);
    }
    if target.len() >= 4 && target.chars().all(|c| c.is_ascii_hexdigit()) {
        let records = store.records()?;
        let found = records
            .iter()
            .filter(|r| r.key.hex().starts_with(target) || r.output.hex().starts_with(target))
            .max_by(|a, b| a.started.cmp(&b.started));
        if let Some(r) = found {
            return Ok(r.clone());
        }
    }
    let hint = pipe::pipeline::Pipeline::select(pipeline, target)
        .err()
        .and_then(|d| d.help);
    Err(CliError::Message(format!(
        "`{target}` is not a stage of `{}`, an existing path, or a known key or digest{}",
        pipeline.name,
        hint.map(|h| format!("\n  = help: {h}")).unwrap_or_default()
    )))
}

fn producer_of_path(store: &Store, path: &Path) -> Result<Record, CliError> {
    let path = path
        .canonicalize()
        .map_err(|e| CliError::Message(format!("`{}`: {e}", path.display())))?;
    let trees = store.root().join("trees");
    let records = store.records()?;
    let latest = |pred: &dyn Fn(&Record) -> bool| {
        records
            .iter()
            .filter(|r| pred(r))
            .max_by(|a, b| a.started.cmp(&b.started))
            .cloned()
    };
    if let Ok(rest) = path.strip_prefix(&trees) {
        let first = rest
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().to_string());
        if let Some(Ok(tree)) = first.map(|f| f.parse::<Digest<Object>>())
            && let Some(r) = latest(&|r| r.output == tree)
        {
            return Ok(r);
        }
    }
    // A file outside the store: find what produced the same bytes.
    if path.is_file() {
        let digest = store.digest_path(&path)?;
        let found = latest(&|r| {
            store
                .tree(&r.output)
                .ok()
                .flatten()
                .is_some_and(|t| t.entries.iter().any(|e| e.digest == digest))
        });
        if let Some(r) = found {
            return Ok(r);
        }
    }
    Err(CliError::Message(format!(
        "no stage in this store produced `{}`",
        path.display()
    )))
}

fn params_summary(params: &Value) -> String {
    let text = params.to_string();
    if text.chars().count() > 72 {
        format!("{}…", text.chars().take(72).collect::<String>())
    } else {
        text
    }
}

fn describe(r: &Record) -> String {
    format!(
        "{}  {}  {} v{}  {}  {}",
        r.stage,
        r.key.short(),
        r.inputs.kind,
        r.inputs.kind_version,
        r.started,
        params_summary(&r.inputs.params)
    )
}

fn print_upstream(
    store: &Store,
    record: &Record,
    indent: &str,
    seen: &mut BTreeSet<Digest<StageKey>>,
) -> Result<(), CliError> {
    let files: Vec<(&str, String)> = record
        .file_inputs()
        .map(|(role, path, digest)| (role, format!("file {}  {}", path.display(), short(digest))))
        .collect();
    let count = record.sources.len() + files.len();
    for (n, source) in record.sources.iter().enumerate() {
        let last = n + 1 == count;
        let (branch, next) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        match store.record(&source.key)? {
            Some(up) => {
                let again = if seen.insert(up.key) {
                    ""
                } else {
                    "  (shown above)"
                };
                out(format!(
                    "{indent}{branch}{} <- {}{again}",
                    source.role,
                    describe(&up)
                ));
                if again.is_empty() {
                    print_upstream(store, &up, &format!("{indent}{next}"), seen)?;
                }
            }
            None => out(format!(
                "{indent}{branch}{} <- {}  {}  (record no longer in the store)",
                source.role,
                source.stage,
                source.key.short()
            )),
        }
    }
    for (n, (role, text)) in files.iter().enumerate() {
        let branch = if record.sources.len() + n + 1 == count {
            "└── "
        } else {
            "├── "
        };
        out(format!("{indent}{branch}{role} <- {text}"));
    }
    Ok(())
}

fn short(digest: Option<Digest<Object>>) -> String {
    digest.map(|d| d.short()).unwrap_or_default()
}

fn upstream_json(
    store: &Store,
    record: &Record,
    seen: &mut BTreeSet<Digest<StageKey>>,
) -> Result<Value, CliError> {
    let mut inputs = Vec::new();
    for source in &record.sources {
        let node = match store.record(&source.key)? {
            Some(up) if seen.insert(up.key) => upstream_json(store, &up, seen)?,
            _ => json!({"stage": source.stage, "key": source.key}),
        };
        inputs.push(json!({"role": source.role, "producer": node}));
    }
    let files: Vec<Value> = record
        .file_inputs()
        .map(|(role, path, digest)| json!({"role": role, "path": path, "digest": digest}))
        .collect();
    Ok(json!({
        "stage": record.stage,
        "key": record.key,
        "kind": record.inputs.kind,
        "kind_version": record.inputs.kind_version,
        "started": record.started,
        "params": record.inputs.params,
        "output": record.output,
        "inputs": inputs,
        "files": files,
    }))
}

/// Records of this pipeline computed from `record`'s output, transitively, depth first, each
/// with its depth below the target.
fn dependents(pipeline: &Pipeline, store: &Store, record: &Record) -> Result<Vec<Value>, CliError> {
    let refs = store.refs(&pipeline.name)?;
    let records: Vec<Record> = store
        .records()?
        .into_iter()
        .filter(|r| r.pipeline == pipeline.name)
        .collect();
    let mut found = Vec::new();
    let mut seen = BTreeSet::from([record.key]);
    walk_down(&records, &refs, record, 1, &mut seen, &mut found);
    Ok(found)
}

fn walk_down(
    records: &[Record],
    refs: &pipe::store::Refs,
    from: &Record,
    depth: usize,
    seen: &mut BTreeSet<Digest<StageKey>>,
    found: &mut Vec<Value>,
) {
    for r in records {
        // By output digest: a record that read the same bytes from an earlier key of
        // the same stage (early cutoff) was computed from this artifact too.
        let Some(source) = r.sources.iter().find(|s| s.output == from.output) else {
            continue;
        };
        if !seen.insert(r.key) {
            continue;
        }
        found.push(json!({
            "stage": r.stage,
            "key": r.key,
            "reads": from.stage,
            "role": source.role,
            "depth": depth,
            "current": refs.stages.get(&r.stage) == Some(&r.key),
        }));
        walk_down(records, refs, r, depth + 1, seen, found);
    }
}
