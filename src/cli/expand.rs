//! `pipe expand`: the pipeline as the engine reads it, every stage written back as RON
//! from the canonical parameters its key is made from.

use std::path::PathBuf;
use std::process::ExitCode;

use pipe::pipeline::{Pipeline, Stage, display_path};

use super::{CliError, Ctx, Sets, load, out, pipeline_file, select};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pipeline file (RON; default `pipe.ron` in the current folder).
    file: Option<PathBuf>,
    /// Only these stages (names, ForEach groups or patterns with `*`); without them,
    /// every stage.
    stages: Vec<String>,
    #[command(flatten)]
    sets: Sets,
}

pub fn expand(_: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let path = pipeline_file(args.file)?;
    let pipeline = load(&path, &args.sets)?;
    let chosen = if args.stages.is_empty() {
        (0..pipeline.stages.len()).collect()
    } else {
        let mut chosen = select(&pipeline, &args.stages)?;
        chosen.sort_unstable();
        chosen.dedup();
        chosen
    };
    out(format!(
        "// {}, as pipe reads it: `Include`, `ForEach` and `--set` applied.\n\
         // Each stage holds the canonical parameters its key is made from (with its kind's\n\
         // version and the digests of what it reads). A `ForEach` stage is named as the\n\
         // engine names it, `group[var=value]`, which a pipeline file cannot: pasted into\n\
         // one, it takes a name of its own.",
        display_path(&path)
    ));
    out(format!(
        "Pipeline(\n    name: {:?},\n    stages: {{",
        pipeline.name
    ));
    for index in chosen {
        out(stage(&pipeline, &pipeline.stages[index])?);
    }
    out("    },\n)");
    Ok(ExitCode::SUCCESS)
}

/// One stage as a map entry of `stages`, with what it reads in comments above it.
fn stage(pipeline: &Pipeline, stage: &Stage) -> Result<String, CliError> {
    let mut comments = Vec::new();
    if let Some(group) = &stage.group {
        let vars: Vec<String> = stage.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        comments.push(format!("ForEach `{group}`: {}", vars.join(", ")));
    }
    for set in &stage.overrides {
        comments.push(format!("--set {set}"));
    }
    for dep in &stage.deps {
        let names = pipeline.names(&dep.stages);
        comments.push(format!("{} ← {}", dep.role, names.join(", ")));
    }
    for file in &stage.files {
        comments.push(format!("{} ← file {}", file.role, file.path.display()));
    }
    let kind = super::registry()
        .get(stage.kind)
        .map(|kind| kind.render(&stage.params.value()))
        .ok_or_else(|| CliError::Message(format!("no kind `{}` in this build", stage.kind)))?
        .map_err(|e| CliError::Message(format!("stage `{}`: {e}", stage.name)))?;
    let mut text = String::new();
    for comment in comments {
        text.push_str(&format!("        // {comment}\n"));
    }
    text.push_str(&format!("        {:?}: ", stage.name));
    for (i, line) in kind.lines().enumerate() {
        if i > 0 {
            text.push_str("\n        ");
        }
        text.push_str(line);
    }
    text.push(',');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Every stage of a pipeline, rendered and declared again by its kind, has the
    /// parameters it had: what `pipe expand` prints is what the key was made from.
    fn round_trips(file: &Path) {
        let registry = crate::cli::registry();
        let pipeline =
            Pipeline::load(file, &registry).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for stage in &pipeline.stages {
            let kind = registry.get(stage.kind).unwrap();
            let text = kind.render(&stage.params.value()).unwrap();
            let mut sources = ronspan::Sources::default();
            let id = sources.add(format!("{}[{}]", file.display(), stage.name), text.clone());
            let value =
                ronspan::parse(id, &text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", stage.name));
            let declared = kind
                .declare(&value)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", stage.name));
            assert_eq!(
                declared.params,
                stage.params.value(),
                "{} in {}: rendered as\n{text}",
                stage.name,
                file.display()
            );
        }
    }

    #[test]
    fn the_engine_example_round_trips() {
        round_trips(&Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/words.ron"));
    }

    #[cfg(feature = "kinds")]
    #[test]
    fn every_shipped_pipeline_round_trips() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "ron"))
            .collect();
        files.sort();
        assert!(files.len() > 1, "no pipelines in {}", dir.display());
        for file in files {
            round_trips(&file);
        }
    }
}
