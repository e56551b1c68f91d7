use std::path::PathBuf;
use std::process::ExitCode;

use pipe::pipeline::Pipeline;
use pipe::plan::{State, states};

use super::{
    CliError, Ctx, Opened, Selection, Sets, load, load_beside_store, out, pipeline_file, print_json,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pipeline file (RON; default `pipe.ron` in the current folder).
    file: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The graph as JSON on stdout (stages upstream first, with their inputs and state).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sets: Sets,
    /// Only these stages (and what they need), as `pipe run` selects them.
    #[command(flatten)]
    selection: Selection,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    /// Stages upstream first, each with what it reads.
    Text,
    /// Graphviz: `pipe dag FILE --format dot | dot -Tsvg > dag.svg`; stages that would
    /// run are filled.
    Dot,
}

pub fn dag(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let file = pipeline_file(args.file)?;
    // Where each stage stands, when there is a store to say (none is made for it).
    let (pipeline, states) = if ctx.has_store() && (args.json || matches!(args.format, Format::Dot))
    {
        let Opened {
            pipeline,
            store,
            _shared,
        } = load_beside_store(ctx, &file, &args.sets)?;
        let states = states(&pipeline, &store).ok();
        (pipeline, states)
    } else {
        (load(&file, &args.sets)?, None)
    };
    let selected = args.selection.resolve(&pipeline, &[])?.stages;
    let order = pipeline.ordered(&selected);
    match (args.json, args.format) {
        (true, _) => json(&pipeline, &order, states.as_deref()),
        (false, Format::Text) => text(&pipeline, &order),
        (false, Format::Dot) => dot(&pipeline, &order, states.as_deref()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `pipe dag --json`, serialized as it is built (fields in the order `json!` gave them).
#[derive(serde::Serialize)]
struct Dag<'a> {
    pipeline: &'a str,
    schema: u32,
    stages: Vec<DagStage<'a>>,
}

#[derive(serde::Serialize)]
struct DagStage<'a> {
    deps: Vec<DagDep<'a>>,
    files: Vec<DagFile<'a>>,
    group: Option<&'a str>,
    kind: &'a str,
    name: &'a str,
    state: Option<&'static str>,
}

#[derive(serde::Serialize)]
struct DagDep<'a> {
    role: &'a str,
    stages: Vec<&'a str>,
}

#[derive(serde::Serialize)]
struct DagFile<'a> {
    path: &'a std::path::Path,
    role: &'a str,
}

fn json(pipeline: &Pipeline, order: &[usize], states: Option<&[State]>) {
    let stages = order
        .iter()
        .map(|&i| {
            let stage = &pipeline.stages[i];
            DagStage {
                deps: stage
                    .deps
                    .iter()
                    .map(|dep| DagDep {
                        role: &dep.role,
                        stages: pipeline.names(&dep.stages),
                    })
                    .collect(),
                files: stage
                    .files
                    .iter()
                    .map(|f| DagFile {
                        path: &f.written,
                        role: &f.role,
                    })
                    .collect(),
                group: stage.group.as_deref(),
                kind: stage.kind,
                name: &stage.name,
                state: states.map(|s| s[i].label()),
            }
        })
        .collect();
    print_json(&Dag {
        pipeline: &pipeline.name,
        schema: 1,
        stages,
    });
}

fn text(pipeline: &Pipeline, order: &[usize]) {
    for &i in order {
        let stage = &pipeline.stages[i];
        out(format!("{} ({})", stage.name, stage.kind));
        for dep in &stage.deps {
            let names = pipeline.names(&dep.stages);
            out(format!("  <- {}: {}", dep.role, names.join(", ")));
        }
        for file in &stage.files {
            out(format!(
                "  <- {}: file {}",
                file.role,
                file.written.display()
            ));
        }
    }
}

fn dot(pipeline: &Pipeline, order: &[usize], states: Option<&[State]>) {
    // One line per statement: a line break inside a label is Graphviz's `\n` escape.
    let quote = |s: &str| {
        let escaped = s
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        format!("\"{escaped}\"")
    };
    out(format!("digraph {} {{", quote(&pipeline.name)));
    out("  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];");
    for &i in order {
        let stage = &pipeline.stages[i];
        let would_run = states.is_some_and(|s| !matches!(s[i], State::UpToDate { .. }));
        out(format!(
            "  {} [label={}{}];",
            quote(&stage.name),
            quote(&format!("{}\n{}", stage.name, stage.kind)),
            if would_run {
                ", style=filled, fillcolor=\"#ffe08a\""
            } else {
                ""
            }
        ));
        for (u, roles) in pipeline.graph.reads(i) {
            for role in roles {
                out(format!(
                    "  {} -> {} [label={}];",
                    quote(&pipeline.stages[u].name),
                    quote(&stage.name),
                    quote(role)
                ));
            }
        }
        for file in &stage.files {
            let node = format!("file:{}", file.written.display());
            out(format!(
                "  {} [shape=note, label={}];",
                quote(&node),
                quote(&file.written.display().to_string())
            ));
            out(format!(
                "  {} -> {} [label={}];",
                quote(&node),
                quote(&stage.name),
                quote(&file.role)
            ));
        }
    }
    out("}");
}
