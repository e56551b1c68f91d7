//! Pipeline files: RON in, a validated list of stages with resolved references out.
//!
//! ```ron
//! Pipeline(
//!     name: "demo",
//!     stages: {
//!         "prepare": Command(argv: ["sh", "-c", "echo hi > {out}/x"]),
//!         "train": ForEach(seed: [0, 1], stage: Command(
//!             argv: ["sh", "-c", "cat {in.data}/x > {out}/model-{seed}"],
//!             deps: {"data": "prepare"},
//!         )),
//!     },
//! )
//! ```
//!
//! Loading goes: parse → splice `Include`s ([`include`]) → expand `ForEach`
//! ([`foreach`]) → let each stage's kind check its parameters → resolve references
//! between stages ([`resolve`]) → reject cycles ([`crate::graph`]). Every failure is a
//! [`Diagnostic`] with the file, line and column at fault and the stage concerned.

mod diagnostic;
mod foreach;
mod include;
mod overrides;
mod resolve;
mod resources;

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use contract::{GpuNeed, Registry};

use crate::graph::StageGraph;
use crate::key::EncodedParams;
use ronspan::{Sources, Span, Value, ValueKind};

pub use diagnostic::{Diagnostic, display_path};
pub use resources::Resources;

/// A loaded pipeline.
pub struct Pipeline {
    pub name: String,
    pub path: PathBuf,
    /// The folder holding the pipeline file; relative paths start here.
    pub base_dir: PathBuf,
    pub sources: Sources,
    /// In the order written, `ForEach` groups expanded in place.
    pub stages: Vec<Stage>,
    /// Indices of `stages` in an order where every stage follows its upstreams.
    pub order: Vec<usize>,
    /// Which stage reads which.
    pub graph: StageGraph,
    /// Stages by name and `ForEach` groups' members, for references and selections.
    lookup: Lookup,
}

/// Stage indices by name, and each `ForEach` group's members in written order.
#[derive(Default)]
struct Lookup {
    by_name: HashMap<String, usize>,
    groups: HashMap<String, Vec<usize>>,
}

impl Lookup {
    fn new(stages: &[Stage], by_name: HashMap<String, usize>) -> Lookup {
        let mut lookup = Lookup {
            by_name,
            groups: HashMap::new(),
        };
        for (i, stage) in stages.iter().enumerate() {
            if let Some(group) = &stage.group {
                lookup.groups.entry(group.clone()).or_default().push(i);
            }
        }
        lookup
    }
}

pub struct Stage {
    pub name: String,
    /// The `ForEach` this stage came from, and its variables.
    pub group: Option<String>,
    pub vars: Vec<(String, String)>,
    pub kind: &'static str,
    pub kind_version: u32,
    /// What the kind's declaration made of the parameters written.
    pub params: EncodedParams,
    pub gpus: GpuNeed,
    /// The `--set`s that changed this stage's parameters, as written.
    pub overrides: Vec<String>,
    /// What it asks of a cluster scheduler (the file's `resources`); not in its key.
    pub resources: Resources,
    pub deps: Vec<Dep>,
    pub files: Vec<FileDep>,
    /// Where the stage's name is written.
    pub span: Span,
}

/// An upstream role, resolved to stage indices.
pub struct Dep {
    pub role: String,
    /// The stage, group or pattern written.
    pub target: String,
    pub stages: Vec<usize>,
    pub span: Span,
}

/// An external input, resolved against the pipeline's folder.
pub struct FileDep {
    pub role: String,
    pub written: PathBuf,
    pub path: PathBuf,
    pub span: Span,
}

/// A pipeline that failed to load, with the sources its diagnostic points into.
#[derive(Debug, thiserror::Error)]
#[error("{}", diagnostic.render(sources))]
pub struct LoadError {
    pub diagnostic: Box<Diagnostic>,
    pub sources: Sources,
}

impl Pipeline {
    pub fn load(path: &Path, registry: &Registry) -> Result<Pipeline, LoadError> {
        Pipeline::load_with(path, registry, &[])
    }

    /// Loads with `--set STAGE.FIELD=VALUE` overrides applied, as edits of the file
    /// would be (see `overrides.rs`).
    pub fn load_with(
        path: &Path,
        registry: &Registry,
        sets: &[String],
    ) -> Result<Pipeline, LoadError> {
        Pipeline::load_then(path, registry, sets, &mut |_| {})
    }

    /// [`Pipeline::load_with`], calling `named` with the pipeline's name as soon as the
    /// file is parsed, before its stages are checked: work that needs only the name
    /// (the store's lookups of the stages' last keys) can start beside the rest, which
    /// takes most of the time for a large pipeline.
    pub fn load_then(
        path: &Path,
        registry: &Registry,
        sets: &[String],
        named: &mut dyn FnMut(&str),
    ) -> Result<Pipeline, LoadError> {
        let mut sources = Sources::default();
        match load(path, registry, sets, &mut sources, named) {
            Ok(mut pipeline) => {
                pipeline.sources = sources;
                Ok(pipeline)
            }
            Err(diagnostic) => Err(LoadError {
                diagnostic: Box::new(diagnostic),
                sources,
            }),
        }
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.lookup.by_name.get(name).copied()
    }

    /// The members of a `ForEach` group, in written order (none for another name).
    pub fn members(&self, group: &str) -> &[usize] {
        self.lookup.groups.get(group).map_or(&[], Vec::as_slice)
    }

    /// The names of the stages at these indices (a dependency's upstreams).
    pub fn names(&self, indices: &[usize]) -> Vec<&str> {
        indices
            .iter()
            .map(|&i| self.stages[i].name.as_str())
            .collect()
    }

    /// A stage by name, or a diagnostic suggesting the closest name.
    pub fn find(&self, name: &str) -> Result<usize, Diagnostic> {
        self.index(name).ok_or_else(|| {
            Diagnostic::new(
                format!("no stage `{name}` in `{}`", display_path(&self.path)),
                None,
            )
            .maybe_help(resolve::suggest(name, self))
        })
    }

    /// The stages a name given on the command line means: a stage, a `ForEach` group
    /// (all its members) or a pattern with `*`.
    pub fn select(&self, name: &str) -> Result<Vec<usize>, Diagnostic> {
        resolve::targets(self, None, name).map_err(|d| Diagnostic {
            message: format!("{} in `{}`", d.message, display_path(&self.path)),
            ..d
        })
    }

    /// The `selected` stages in the order they run: every stage after its upstreams.
    pub fn ordered(&self, selected: &BTreeSet<usize>) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|i| selected.contains(i))
            .collect()
    }

    /// The distinct upstream stages of a stage.
    pub fn upstream(&self, index: usize) -> Vec<usize> {
        let mut up: Vec<usize> = self.stages[index]
            .deps
            .iter()
            .flat_map(|d| d.stages.iter().copied())
            .collect();
        up.sort_unstable();
        up.dedup();
        up
    }

    pub fn render(&self, diagnostic: &Diagnostic) -> String {
        diagnostic.render(&self.sources)
    }
}

fn load(
    path: &Path,
    registry: &Registry,
    sets: &[String],
    sources: &mut Sources,
    named: &mut dyn FnMut(&str),
) -> Result<Pipeline, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::new(
            format!("cannot read pipeline `{}`: {e}", path.display()),
            None,
        )
    })?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base_dir = absolute.parent().unwrap_or(Path::new("/")).to_path_buf();
    let file = sources.add(path, text);
    let mut top = ronspan::parse(file, sources.text(file))?;

    let TopLevel {
        name,
        stages: entries,
        resources,
    } = top_level(&mut top)?;
    named(&name);
    let mut overrides = sets
        .iter()
        .map(|text| overrides::Override::parse(text, sources))
        .collect::<Result<Vec<_>, _>>()?;
    let mut stages: Vec<Stage> = Vec::new();
    // Stage indices by name, filled as stages are declared: duplicates are found here.
    let mut by_name: HashMap<String, usize> = HashMap::new();
    // Each stage's value is taken, not cloned: the parse tree of 100,000 stages took
    // longer to copy and free than to parse.
    for (key, mut value) in entries {
        let stage_name = key.as_str().ok_or_else(|| {
            Diagnostic::new(
                format!("a stage name must be a string, found {}", key.describe()),
                Some(key.span),
            )
        })?;
        check_name(stage_name, key.span)?;
        include::expand_includes(&mut value, sources, &mut vec![absolute.clone()], true)
            .map_err(|d| d.in_stage(stage_name))?;
        flatten_kind(&mut value);
        if value.name() == Some("ForEach")
            && let ValueKind::Struct { fields, .. } = &mut value.kind
        {
            fields
                .iter_mut()
                .filter(|f| f.name == "stage")
                .for_each(|f| flatten_kind(&mut f.value));
        }
        let mut expanded = match value.name() {
            Some("ForEach") => {
                let has_field = |kind: &str, field: &str| {
                    registry
                        .get(kind)
                        .is_some_and(|k| k.fields().contains(&field))
                };
                foreach::expand(stage_name, &value, &has_field)
                    .map_err(|d| d.in_stage(stage_name))?
            }
            _ => vec![foreach::Expanded {
                name: stage_name.to_string(),
                vars: Vec::new(),
                body: value,
            }],
        };
        // Includes whose file names a variable, now that it has its value.
        for e in &mut expanded {
            include::expand_includes(&mut e.body, sources, &mut vec![absolute.clone()], false)
                .map_err(|d| d.in_stage(&e.name))?;
            flatten_kind(&mut e.body);
        }
        let group =
            (expanded.len() > 1 || !expanded[0].vars.is_empty()).then(|| stage_name.to_string());
        for e in expanded {
            match by_name.entry(e.name.clone()) {
                Entry::Occupied(first) => {
                    let at = sources.locate(stages[*first.get()].span);
                    return Err(Diagnostic::new(
                        format!("duplicate stage name `{}`", e.name),
                        Some(key.span),
                    )
                    .note(format!("first defined at line {}", at.line)));
                }
                Entry::Vacant(slot) => slot.insert(stages.len()),
            };
            let mut e = e;
            let mut applied = Vec::new();
            for o in &mut overrides {
                if o.apply(&e.name, stage_name, &mut e.body)
                    .map_err(|d| d.in_stage(&e.name))?
                {
                    applied.push(o.text.clone());
                }
            }
            let mut stage = declare(e, group.clone(), key.span, registry)?;
            stage.overrides = applied;
            stages.push(stage);
        }
    }
    let names = || stages.iter().map(|s: &Stage| s.name.as_str());
    if let Some(unmatched) = overrides.iter().find_map(|o| o.unmatched(names())) {
        return Err(unmatched);
    }
    let lookup = Lookup::new(&stages, by_name);
    let mut pipeline = Pipeline {
        name,
        path: path.to_path_buf(),
        base_dir,
        sources: Sources::default(),
        stages,
        order: Vec::new(),
        graph: StageGraph::default(),
        lookup,
    };
    resolve::resolve(&mut pipeline)?;
    pipeline.graph = StageGraph::new(&pipeline);
    pipeline.order = crate::graph::order(&pipeline, &pipeline.graph)?;
    resources::apply(&mut pipeline, resources.as_ref())?;
    Ok(pipeline)
}

/// `Kind((field: ...))`, as `Kind(Include("params.ron"))` reads once the include is
/// spliced, becomes `Kind(field: ...)`.
fn flatten_kind(value: &mut Value) {
    if let ValueKind::Tuple {
        name: Some(name),
        items,
    } = &mut value.kind
        && let [
            Value {
                kind: ValueKind::Struct { name: None, fields },
                ..
            },
        ] = items.as_mut_slice()
    {
        value.kind = ValueKind::Struct {
            name: Some(std::mem::take(name)),
            fields: std::mem::take(fields),
        };
    }
}

/// `Pipeline(name: "...", resources: {...}, stages: {...})`, its fields taken out of
/// the parsed file.
struct TopLevel {
    name: String,
    /// The written `stages` map: name → stage value.
    stages: Vec<(Value, Value)>,
    resources: Option<Value>,
}

const TOP_FIELDS: [&str; 3] = ["name", "resources", "stages"];

fn top_level(top: &mut Value) -> Result<TopLevel, Diagnostic> {
    let usage =
        "a pipeline file holds `Pipeline(name: \"...\", stages: { \"stage\": Kind(...), ... })`";
    if !matches!(top.name(), None | Some("Pipeline")) || top.fields().is_none() {
        return Err(Diagnostic::new(
            format!("expected `Pipeline(...)`, found {}", top.describe()),
            Some(top.name_span()),
        )
        .help(usage));
    }
    let mut name = None;
    let mut stages = None;
    let mut resources = None;
    let name_span = top.name_span();
    let fields = match &mut top.kind {
        ValueKind::Struct { fields, .. } => std::mem::take(fields),
        _ => Vec::new(),
    };
    for field in fields {
        match field.name.as_str() {
            "name" => {
                name = Some(field.value.as_str().map(str::to_string).ok_or_else(|| {
                    Diagnostic::new(
                        format!("`name` must be a string, found {}", field.value.describe()),
                        Some(field.value.span),
                    )
                })?)
            }
            "resources" => resources = Some(field.value),
            "stages" => match field.value.kind {
                ValueKind::Map(entries) => stages = Some(entries),
                _ => {
                    return Err(Diagnostic::new(
                        format!(
                            "`stages` must be a map of stage names to stages, found {}",
                            field.value.describe()
                        ),
                        Some(field.value.span),
                    )
                    .help(usage));
                }
            },
            other => {
                let expected: Vec<String> = TOP_FIELDS.iter().map(|f| format!("`{f}`")).collect();
                return Err(Diagnostic::new(
                    format!(
                        "unknown field `{other}`, expected one of {}",
                        expected.join(", ")
                    ),
                    Some(field.name_span),
                )
                .maybe_help(
                    ronspan::closest(other, TOP_FIELDS).map(|c| format!("did you mean `{c}`?")),
                ));
            }
        }
    }
    let missing = |what: &str| {
        Diagnostic::new(format!("missing field `{what}`"), Some(name_span)).help(usage)
    };
    Ok(TopLevel {
        name: name.ok_or_else(|| missing("name"))?,
        stages: stages.ok_or_else(|| missing("stages"))?,
        resources,
    })
}

fn check_name(name: &str, span: Span) -> Result<(), Diagnostic> {
    if name.is_empty()
        || name.contains(['[', ']', '*', '/', '\\', ',', '='])
        || name.chars().any(char::is_whitespace)
    {
        return Err(
            Diagnostic::new(format!("invalid stage name `{name}`"), Some(span))
                .help("stage names are non-empty and use no whitespace or `[ ] * / \\ , =`"),
        );
    }
    Ok(())
}

/// Lets the stage's kind check its parameters.
fn declare(
    e: foreach::Expanded,
    group: Option<String>,
    span: Span,
    registry: &Registry,
) -> Result<Stage, Diagnostic> {
    let in_stage = |d: Diagnostic| d.in_stage(&e.name);
    let kind_name = match &e.body.kind {
        ValueKind::Struct { name: Some(n), .. }
        | ValueKind::Tuple { name: Some(n), .. }
        | ValueKind::Ident(n) => n,
        _ => {
            return Err(in_stage(
                Diagnostic::new(
                    format!(
                        "expected a stage such as `Command(...)`, found {}",
                        e.body.describe()
                    ),
                    Some(e.body.span),
                )
                .note(format!(
                    "known kinds: {}",
                    registry.names().collect::<Vec<_>>().join(", ")
                )),
            ));
        }
    };
    let Some(kind) = registry.get(kind_name) else {
        return Err(in_stage(
            Diagnostic::new(
                format!("unknown stage kind `{kind_name}`"),
                Some(e.body.name_span()),
            )
            .maybe_help(
                ronspan::closest(kind_name, registry.names())
                    .map(|c| format!("did you mean `{c}`?")),
            )
            .note(format!(
                "known kinds: ForEach, {}",
                registry.names().collect::<Vec<_>>().join(", ")
            )),
        ));
    };
    let declaration = kind.declare(&e.body).map_err(|err| in_stage(err.into()))?;
    let at = |path: &[String]| {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        e.body
            .get_path(&path)
            .map_or(e.body.name_span(), |v| v.span)
    };
    let files = declaration
        .files
        .into_iter()
        .map(|f| FileDep {
            span: at(&f.at),
            role: f.role,
            written: f.path,
            path: PathBuf::new(),
        })
        .collect();
    let deps = declaration
        .stages
        .into_iter()
        .map(|r| Dep {
            span: at(&r.at),
            role: r.role,
            target: r.target,
            stages: Vec::new(),
        })
        .collect();
    Ok(Stage {
        name: e.name,
        group,
        vars: e.vars,
        kind: kind.name(),
        kind_version: kind.version(),
        params: EncodedParams::new(&declaration.params),
        gpus: declaration.gpus,
        overrides: Vec::new(),
        resources: Resources::default(),
        deps,
        files,
        span,
    })
}
