use std::path::PathBuf;
use std::process::ExitCode;

use pipe::pipeline::Pipeline;

use super::{CliError, load, out};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pipeline file (RON).
    file: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    /// Stages upstream first, each with what it reads.
    Text,
    /// Graphviz: `pipe dag FILE --format dot | dot -Tsvg > dag.svg`.
    Dot,
}

pub fn dag(args: Args) -> Result<ExitCode, CliError> {
    let pipeline = load(&args.file)?;
    match args.format {
        Format::Text => text(&pipeline),
        Format::Dot => dot(&pipeline),
    }
    Ok(ExitCode::SUCCESS)
}

fn text(pipeline: &Pipeline) {
    for &i in &pipeline.order {
        let stage = &pipeline.stages[i];
        out(format!("{} ({})", stage.name, stage.kind));
        for dep in &stage.deps {
            let names: Vec<&str> = dep
                .stages
                .iter()
                .map(|&u| pipeline.stages[u].name.as_str())
                .collect();
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

fn dot(pipeline: &Pipeline) {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    out(format!("digraph {} {{", quote(&pipeline.name)));
    out("  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];");
    for &i in &pipeline.order {
        let stage = &pipeline.stages[i];
        out(format!(
            "  {} [label={}];",
            quote(&stage.name),
            quote(&format!("{}\n{}", stage.name, stage.kind))
        ));
        for dep in &stage.deps {
            for &u in &dep.stages {
                out(format!(
                    "  {} -> {} [label={}];",
                    quote(&pipeline.stages[u].name),
                    quote(&stage.name),
                    quote(&dep.role)
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
