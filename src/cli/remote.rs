//! `pipe remote`, `pipe push` and `pipe pull`: results shared through a remote cache.

use std::collections::BTreeMap;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipe::plan::{State, states, states_with};
use pipe::remote::{Meter, Remote, RemoteEntry, Remotes, remotes_path};
use pipe::store::Record;
use serde_json::json;

use super::{CliError, Ctx, Selected, Selection, Sets, file_and_stages, load, out, print_json};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Name a remote: `pipe remote add lab s3://bucket/prefix`, or an HTTP cache that
    /// takes PUT (a WebDAV server): `pipe remote add web https://host/pipe`.
    Add {
        name: String,
        /// s3://BUCKET[/PREFIX], http://… or https://…
        url: String,
        /// An S3-compatible server other than AWS's (MinIO, Ceph, s3s), e.g.
        /// http://127.0.0.1:9000.
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// The S3 region (default: AWS_REGION, the AWS profile's, or us-east-1).
        #[arg(long)]
        region: Option<String>,
        /// Make it the remote that commands use when they name none.
        #[arg(long)]
        default: bool,
    },
    /// Forget a remote (what it holds stays there).
    Remove { name: String },
    /// The remotes, the default one marked.
    List {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// The file, the remote and the stages of `pipe push` and `pipe pull`.
#[derive(clap::Args, Debug)]
pub struct TransferArgs {
    /// The pipeline file (RON; default `pipe.ron` here), then the stages (names,
    /// ForEach groups or patterns with `*`) with what they need; without stages, all.
    #[arg(value_name = "FILE] [STAGE")]
    targets: Vec<String>,
    #[command(flatten)]
    selection: Selection,
    /// The remote (default: the remotes file's default, or its only remote).
    #[arg(long, value_name = "NAME")]
    remote: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sets: Sets,
}

pub fn remote(command: Command) -> Result<ExitCode, CliError> {
    let path = remotes_path();
    let mut remotes = Remotes::load(&path)?;
    match command {
        Command::Add {
            name,
            url,
            endpoint,
            region,
            default,
        } => {
            let entry = RemoteEntry {
                url,
                endpoint,
                region,
            };
            remotes.add(&name, entry, &path)?;
            if default || remotes.remotes.len() == 1 {
                remotes.default = Some(name.clone());
            }
            remotes.save(&path)?;
            out(format!("added remote `{name}` to {}", path.display()));
        }
        Command::Remove { name } => {
            remotes.remove(&name, &path)?;
            remotes.save(&path)?;
            out(format!("removed remote `{name}` from {}", path.display()));
        }
        Command::List { json } if json => print_json(&json!({
            "schema": 1,
            "file": path,
            "default": remotes.default,
            "remotes": remotes.remotes,
        })),
        Command::List { .. } => {
            for (name, entry) in &remotes.remotes {
                let mark = if remotes.default.as_ref() == Some(name) {
                    "*"
                } else {
                    " "
                };
                let mut line = format!("{mark} {name}  {}", entry.url);
                if let Some(endpoint) = &entry.endpoint {
                    line.push_str(&format!("  (endpoint {endpoint})"));
                }
                if let Some(region) = &entry.region {
                    line.push_str(&format!("  (region {region})"));
                }
                out(line);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Connects to the remote a command names (or the default one).
pub fn connect(name: Option<&str>) -> Result<Remote, CliError> {
    let path = remotes_path();
    let remotes = Remotes::load(&path)?;
    let (name, entry) = remotes.get(name, &path)?;
    Ok(Remote::connect(&name, &entry.location())?)
}

/// What `push` and `pull` work on.
struct Transfer {
    pipeline: std::mem::ManuallyDrop<pipe::pipeline::Pipeline>,
    stages: std::collections::BTreeSet<usize>,
    remote: Remote,
    store: pipe::store::Store,
    /// Keeps `cache gc` out while objects move.
    _shared: pipe::store::Lock,
    json: bool,
}

impl Transfer {
    fn open(ctx: &Ctx, args: TransferArgs) -> Result<Transfer, CliError> {
        let (file, named) = file_and_stages(args.targets)?;
        let pipeline = load(&file, &args.sets)?;
        let Selected { stages, .. } = args.selection.resolve(&pipeline, &named)?;
        let store = ctx.store()?;
        Ok(Transfer {
            remote: connect(args.remote.as_deref())?,
            _shared: store.hold_shared()?,
            store,
            pipeline,
            stages,
            json: args.json,
        })
    }
}

/// `pipe push`: the selected stages' current records, with their outputs.
pub fn push(ctx: &Ctx, args: TransferArgs) -> Result<ExitCode, CliError> {
    let Transfer {
        pipeline,
        stages,
        remote,
        store,
        json,
        _shared,
    } = Transfer::open(ctx, args)?;
    let states = states(&pipeline, &store)?;
    let mut records: Vec<Record> = Vec::new();
    let mut left = Vec::new();
    for &i in &stages {
        match &states[i] {
            State::UpToDate { key, .. } => match store.record(key)? {
                Some(record) => records.push(record),
                // Removed since (a `cache gc` running beside us).
                None => left.push((pipeline.stages[i].name.as_str(), "never run")),
            },
            other => left.push((pipeline.stages[i].name.as_str(), other.label())),
        }
    }
    let bar = BytesBar::new(ctx.quiet || json, "pushing");
    let pushed = remote.push(&store, &records, &bar)?;
    bar.0.finish_and_clear();
    store.save()?;
    if json {
        let left: Vec<_> = left
            .iter()
            .map(|(stage, state)| json!({"stage": stage, "status": state}))
            .collect();
        print_json(&json!({
            "schema": 1,
            "remote": remote.name(),
            "pushed": pushed,
            "not_up_to_date": left,
        }));
    } else {
        for (stage, state) in &left {
            out(format!("not pushed  {stage}  {state} here"));
        }
        out(format!(
            "push to `{}`: {} record(s) sent, {} there already; {} object(s) sent ({}), {} there already",
            remote.name(),
            pushed.records_sent,
            pushed.records_present,
            pushed.objects_sent,
            human_bytes(pushed.bytes_sent),
            pushed.objects_present,
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `pipe pull`: the records of the selected stages' current keys, with their outputs;
/// a stage's key is known once its upstreams are here (or pulled), so the pull walks
/// the pipeline from its sources down.
pub fn pull(ctx: &Ctx, args: TransferArgs) -> Result<ExitCode, CliError> {
    let Transfer {
        pipeline,
        stages,
        remote,
        store,
        json,
        _shared,
    } = Transfer::open(ctx, args)?;
    let bar = BytesBar::new(ctx.quiet || json, "pulling");
    let states = states_with(&pipeline, &store, &mut |i, key| {
        if !stages.contains(&i) {
            return Ok(None);
        }
        bar.0.set_message(pipeline.stages[i].name.clone());
        remote.pull(&store, key, &bar)
    });
    bar.0.finish_and_clear();
    let states = states?;
    let mut refs = BTreeMap::new();
    let mut rows = Vec::new();
    let mut complete = true;
    for &i in &stages {
        let name = &pipeline.stages[i].name;
        let (result, key) = match &states[i] {
            State::UpToDate { key, .. } => ("up to date", Some(*key)),
            State::OnRemote { key, .. } => {
                refs.insert(name.clone(), *key);
                ("pulled", Some(*key))
            }
            other => {
                complete = false;
                match other.key() {
                    Some(key) => ("not on the remote", Some(key)),
                    None => ("unknown key", None),
                }
            }
        };
        rows.push((name, result, key, &states[i]));
    }
    store.update_refs(&pipeline.name, &refs)?;
    store.save()?;
    let bytes = bar.0.position();
    if json {
        let stages: Vec<_> = rows
            .iter()
            .map(|(stage, result, key, _)| json!({"stage": stage, "result": result, "key": key}))
            .collect();
        print_json(&json!({
            "schema": 1,
            "remote": remote.name(),
            "bytes": bytes,
            "stages": stages,
        }));
    } else {
        for (stage, result, key, state) in &rows {
            let detail = match (result, key) {
                (&"unknown key", _) => state
                    .reasons()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
                (_, Some(key)) => key.short(),
                (_, None) => String::new(),
            };
            out(format!("{result:<17} {stage}  {detail}").trim_end());
        }
        let pulled = rows.iter().filter(|r| r.1 == "pulled").count();
        out(format!(
            "pull from `{}`: {pulled} stage(s) pulled ({}), {} up to date, {} not available",
            remote.name(),
            human_bytes(bytes),
            rows.iter().filter(|r| r.1 == "up to date").count(),
            rows.len() - pulled - rows.iter().filter(|r| r.1 == "up to date").count(),
        ));
    }
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A bar of bytes moved, on stderr (hidden when quiet or printing JSON).
struct BytesBar(ProgressBar);

impl BytesBar {
    fn new(hidden: bool, verb: &str) -> BytesBar {
        let target = if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{verb} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{msg}}"
            ))
            .expect("valid template"),
        );
        BytesBar(bar)
    }
}

impl Meter for BytesBar {
    fn grow(&self, bytes: u64) {
        self.0.inc_length(bytes);
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

fn human_bytes(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}
