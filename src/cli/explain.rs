//! `pipe explain`: what a stage kind and each of its fields accept, from the doc
//! comments of the parameter types (`#[derive(Explain)]`), and the guide's reference
//! pages written from the same source.

use std::path::PathBuf;
use std::process::ExitCode;

use contract::Registry;
use explain::{Field, Shape, Struct, VariantFields, summary};

use super::{CliError, Ctx, out, registry};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A kind, or a path of fields into it: `Train`, `Train.train.lecam`,
    /// `Dataset.source.Cifar10.path` (a variant's name leads into its fields). Without
    /// it, the kinds.
    path: Option<String>,
    /// Write the guide's reference pages, one Markdown file per kind, into this folder
    /// (`docs/src/reference`) instead.
    #[arg(long, value_name = "DIR", conflicts_with = "path")]
    markdown: Option<PathBuf>,
}

pub fn explain(_: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let registry = registry();
    if let Some(dir) = args.markdown {
        for (file, page) in reference_pages(&registry) {
            let path = dir.join(file);
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&path, page))
                .map_err(|e| CliError::Message(format!("cannot write {}: {e}", path.display())))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.path {
        None => out(kinds(&registry)),
        Some(path) => out(lookup(&registry, &path)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// The kinds of this build, a line each.
fn kinds(registry: &Registry) -> String {
    let mut text =
        String::from("Stage kinds (`pipe explain KIND` for one, `KIND.FIELD…` for a field):\n");
    for name in registry.names() {
        let shape = registry.get(name).expect("listed").explain();
        let doc = match &shape {
            Shape::Struct(s) => summary(s.doc),
            _ => String::new(),
        };
        text.push_str(&format!("  {name:<16} {doc}\n"));
    }
    text
}

/// What `pipe explain PATH` prints: a kind, a field, or a variant.
fn lookup(registry: &Registry, path: &str) -> Result<String, CliError> {
    let mut segments = path.split('.');
    let first = segments.next().unwrap_or_default();
    let kind = registry.get(first).ok_or_else(|| {
        let names: Vec<&str> = registry.names().collect();
        let hint = ronspan::closest(first, names.iter().copied())
            .map(|n| format!("; did you mean `{n}`?"))
            .unwrap_or_default();
        CliError::Message(format!(
            "no stage kind `{first}`{hint}\n  = help: the kinds: {}",
            names.join(", ")
        ))
    })?;
    let shape = kind.explain();
    let Shape::Struct(params) = &shape else {
        return Err(CliError::Message(format!(
            "{first}'s parameters are not a struct"
        )));
    };
    let mut at = Place::Struct(params.clone());
    let mut walked = first.to_string();
    for segment in segments {
        at = at.step(segment, &walked)?;
        walked = format!("{walked}.{segment}");
    }
    Ok(match at {
        Place::Struct(s) if walked == first => format!(
            "{first} (stage kind, version {})\n\n{}",
            kind.version(),
            describe_struct(&s)
        ),
        Place::Struct(s) => format!("{walked}: {}\n\n{}", s.name, describe_struct(&s)),
        Place::Field(field) => describe_field(&walked, &field),
        Place::Unit { name, doc } => format!("{walked}: the value `{name}`\n\n{}\n", indent(doc)),
    })
}

/// Where a path of fields has led.
enum Place {
    Struct(Struct),
    Field(Field),
    Unit {
        name: &'static str,
        doc: &'static str,
    },
}

impl Place {
    fn step(self, segment: &str, walked: &str) -> Result<Place, CliError> {
        let shape = match self {
            Place::Struct(s) => Shape::Struct(s),
            Place::Field(f) => (f.shape)(),
            Place::Unit { .. } => {
                return Err(CliError::Message(format!(
                    "`{walked}` is a value, with no fields"
                )));
            }
        };
        match shape.named() {
            Some(Shape::Struct(s)) => {
                let field = s.fields.iter().find(|f| f.name == segment).ok_or_else(|| {
                    let names: Vec<&str> = s.fields.iter().map(|f| f.name).collect();
                    not_found(walked, "field", segment, &names)
                })?;
                Ok(Place::Field(field.clone()))
            }
            Some(Shape::Enum(e)) => {
                let variant = e
                    .variants
                    .iter()
                    .find(|v| v.name == segment)
                    .ok_or_else(|| {
                        let names: Vec<&str> = e.variants.iter().map(|v| v.name).collect();
                        not_found(walked, "value", segment, &names)
                    })?;
                // `Cifar10(path: …)` and `Cifar10((path: …))` alike.
                let fields = variant.fields();
                Ok(match fields {
                    Some(fields) => Place::Struct(Struct {
                        name: variant.name,
                        doc: variant.doc,
                        fields,
                    }),
                    None => Place::Unit {
                        name: variant.name,
                        doc: variant.doc,
                    },
                })
            }
            _ => Err(CliError::Message(format!(
                "`{walked}` is {}, with no fields",
                shape.describe()
            ))),
        }
    }
}

fn not_found(walked: &str, what: &str, segment: &str, names: &[&str]) -> CliError {
    let hint = ronspan::closest(segment, names.iter().copied())
        .map(|n| format!("\n  = help: did you mean `{walked}.{n}`?"))
        .unwrap_or_default();
    CliError::Message(format!(
        "`{walked}` has no {what} `{segment}` (it has: {}){hint}",
        names.join(", ")
    ))
}

fn describe_field(path: &str, field: &Field) -> String {
    let shape = (field.shape)();
    let mut text = format!("{path}: {}\n", field.ty);
    text.push_str(&format!("  written   {}\n", shape.describe()));
    text.push_str(&format!(
        "  default   {}\n\n",
        field
            .default
            .map_or("none: the field is required".into(), |d| d())
    ));
    if !field.doc.is_empty() {
        text.push_str(&indent(field.doc));
        text.push('\n');
    }
    match shape.named() {
        Some(Shape::Struct(s)) => {
            text.push_str(&format!(
                "\n{}'s fields:\n{}",
                s.name,
                fields_table(&s.fields)
            ));
        }
        Some(Shape::Enum(e)) => {
            text.push_str(&format!("\n{}'s values:\n", e.name));
            for v in &e.variants {
                text.push_str(&format!("  {:<22} {}\n", v.written(), summary(v.doc)));
            }
        }
        _ => {}
    }
    text
}

fn describe_struct(s: &Struct) -> String {
    let mut text = String::new();
    if !s.doc.is_empty() {
        text.push_str(&indent(s.doc));
        text.push_str("\n\n");
    }
    text.push_str("fields:\n");
    text.push_str(&fields_table(&s.fields));
    text
}

fn fields_table(fields: &[Field]) -> String {
    let mut text = String::new();
    for f in fields {
        let default = f
            .default
            .map_or("required".into(), |d| format!("default {}", d()));
        text.push_str(&format!("  {:<24} {:<28} {}\n", f.name, f.ty, default));
        let doc = summary(f.doc);
        if !doc.is_empty() {
            text.push_str(&format!("  {:<24} {doc}\n", ""));
        }
    }
    text
}

fn indent(doc: &str) -> String {
    doc.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const GENERATED: &str = "<!-- Written by `pipe explain --markdown docs/src/reference` from the doc \
                         comments of the code; edit those, not this file. -->";

/// The guide's field reference: an index, and one Markdown page per kind with its
/// fields, then every struct and enum they reach; as (file name, text).
fn reference_pages(registry: &Registry) -> Vec<(String, String)> {
    let mut index = format!(
        "# Field reference\n\n{GENERATED}\n\nEvery field of every stage kind, with its type, \
         default and meaning, as `pipe explain KIND.FIELD` prints them.\n\n| kind | does |\n|---|---|\n"
    );
    let mut pages = Vec::new();
    for (name, page) in kind_pages(registry) {
        let file = format!("{}.md", name.to_lowercase());
        let doc = match registry.get(name).expect("listed").explain() {
            Shape::Struct(s) => cell(&summary(s.doc)),
            _ => String::new(),
        };
        index.push_str(&format!("| [`{name}`]({file}) | {doc} |\n"));
        pages.push((file, page));
    }
    pages.insert(0, ("index.md".to_string(), index));
    pages
}

fn kind_pages(registry: &Registry) -> Vec<(&'static str, String)> {
    registry
        .names()
        .map(|name| {
            let shape = registry.get(name).expect("listed").explain();
            let Shape::Struct(params) = &shape else {
                return (name, format!("# {name}\n"));
            };
            let mut page = format!("# {name}\n\n{GENERATED}\n\n");
            if !params.doc.is_empty() {
                page.push_str(params.doc);
                page.push_str("\n\n");
            }
            page.push_str(&markdown_fields(&params.fields));
            // A type's section follows its first mention.
            for shape in explain::reachable(&params.fields) {
                match shape {
                    Shape::Struct(s) => {
                        page.push_str(&format!("\n## {}\n\n", s.name));
                        if !s.doc.is_empty() {
                            page.push_str(&format!("{}\n\n", s.doc));
                        }
                        page.push_str(&markdown_fields(&s.fields));
                    }
                    Shape::Enum(e) => {
                        page.push_str(&format!("\n## {}\n\n", e.name));
                        if !e.doc.is_empty() {
                            page.push_str(&format!("{}\n\n", e.doc));
                        }
                        page.push_str("| value | meaning |\n|---|---|\n");
                        for v in &e.variants {
                            page.push_str(&format!("| `{}` | {} |\n", v.written(), cell(v.doc)));
                        }
                        for v in &e.variants {
                            if let VariantFields::Struct(fields) = &v.fields {
                                page.push_str(&format!("\n### {}\n\n", v.name));
                                page.push_str(&markdown_fields(fields));
                            }
                        }
                    }
                    _ => unreachable!("reachable gives structs and enums"),
                }
            }
            (name, page)
        })
        .collect()
}

fn markdown_fields(fields: &[Field]) -> String {
    let mut text = String::from("| field | type | default | meaning |\n|---|---|---|---|\n");
    for f in fields {
        let default = f
            .default
            .map_or("required".into(), |d| format!("`{}`", d()));
        // A struct or enum has a section of its own on the page.
        let ty = match (f.shape)().named() {
            Some(Shape::Struct(Struct { name, .. }) | Shape::Enum(explain::Enum { name, .. })) => {
                format!("[`{}`](#{})", f.ty, name.to_lowercase())
            }
            _ => format!("`{}`", f.ty),
        };
        text.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            f.name,
            ty.replace('|', "\\|"),
            default.replace('|', "\\|"),
            cell(f.doc)
        ));
    }
    text
}

/// A doc comment in one table cell: lines joined, paragraphs kept apart.
fn cell(doc: &str) -> String {
    doc.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("<br><br>")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide's reference pages are what the code's doc comments say now (every
    /// kind's: a build with them all).
    #[cfg(feature = "kinds")]
    #[test]
    fn the_guide_reference_is_generated_from_the_code() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/reference");
        let pages = reference_pages(&registry());
        let fix = "run `cargo run -- explain --markdown docs/src/reference`";
        for (file, page) in &pages {
            let path = dir.join(file);
            let written = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}; {fix}", path.display()));
            assert!(
                written == *page,
                "{} is not what the code says; {fix}",
                path.display()
            );
        }
        let files: std::collections::BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let expected: std::collections::BTreeSet<String> =
            pages.into_iter().map(|(file, _)| file).collect();
        assert_eq!(
            files,
            expected,
            "{} holds other files; {fix}",
            dir.display()
        );
    }

    /// Every field a pipeline file can write, in every kind, says what it is.
    #[test]
    fn every_field_of_every_kind_has_a_doc_comment() {
        let registry = registry();
        let mut missing = Vec::new();
        let undocumented = |missing: &mut Vec<String>, owner: &str, fields: &[Field]| {
            for f in fields.iter().filter(|f| f.doc.is_empty()) {
                missing.push(format!("field `{}` of {owner}", f.name));
            }
        };
        for name in registry.names() {
            let Shape::Struct(params) = registry.get(name).unwrap().explain() else {
                panic!("{name}: parameters are not a struct");
            };
            if params.doc.is_empty() {
                missing.push(format!("{name} (its parameters' type {})", params.name));
            }
            undocumented(
                &mut missing,
                &format!("{name}'s {}", params.name),
                &params.fields,
            );
            for shape in explain::reachable(&params.fields) {
                match shape {
                    Shape::Struct(s) => {
                        undocumented(&mut missing, &format!("{name}: {}", s.name), &s.fields)
                    }
                    Shape::Enum(e) => {
                        for v in &e.variants {
                            if let VariantFields::Struct(fields) = &v.fields {
                                undocumented(
                                    &mut missing,
                                    &format!("{name}: {}::{}", e.name, v.name),
                                    fields,
                                );
                            }
                        }
                    }
                    _ => unreachable!("reachable gives structs and enums"),
                }
            }
        }
        assert!(
            missing.is_empty(),
            "{} fields without a doc comment (`pipe explain` shows it):\n{}",
            missing.len(),
            missing.join("\n")
        );
    }
}
