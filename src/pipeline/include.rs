//! `Include("file.ron")` and `Include(file: "file.ron", at: "model", set: {"a.b": value})`:
//! a value written in another file (or the field `at` names of it), optionally with some
//! fields overridden.
//!
//! Paths are relative to the file the `Include` is written in. The included text is
//! parsed, so its layout and comments never reach a stage's key; spans keep pointing
//! into the included file, so errors there are reported there.

use std::path::{Path, PathBuf};

use ronspan::{Field, Sources, Value, ValueKind};

use super::diagnostic::Diagnostic;

/// Splices every `Include` into `value`. With `defer_templated`, an `Include` whose file
/// names a `ForEach` variable (`"configs/{method}.ron"`) stays in place, to be expanded
/// once the variable has its value.
pub fn expand_includes(
    value: &mut Value,
    sources: &mut Sources,
    stack: &mut Vec<PathBuf>,
    defer_templated: bool,
) -> Result<(), Diagnostic> {
    if value.name() == Some("Include") {
        let Args { file, at, sets } = include_args(value)?;
        if defer_templated && file.contains('{') {
            return Ok(());
        }
        let including = sources.path(value.span.file).to_path_buf();
        let path = including.parent().unwrap_or(Path::new(".")).join(file);
        let mut included = load_included(&path, value, sources, stack)?;
        stack.push(path.canonicalize().unwrap_or(path));
        let expanded = expand_includes(&mut included, sources, stack, defer_templated);
        stack.pop();
        expanded?;
        if let Some(at) = at {
            included = select(included, at)?;
        }
        for (key, new) in sets {
            set_path(&mut included, key, new)?;
        }
        *value = included;
        return Ok(());
    }
    match &mut value.kind {
        ValueKind::List(items) | ValueKind::Tuple { items, .. } => items
            .iter_mut()
            .try_for_each(|v| expand_includes(v, sources, stack, defer_templated)),
        ValueKind::Map(entries) => entries
            .iter_mut()
            .try_for_each(|(_, v)| expand_includes(v, sources, stack, defer_templated)),
        ValueKind::Struct { fields, .. } => fields
            .iter_mut()
            .try_for_each(|f| expand_includes(&mut f.value, sources, stack, defer_templated)),
        _ => Ok(()),
    }
}

/// What an `Include` says: the file, the field of its value to take (a dotted path),
/// and `(field path key, new value)` overrides.
struct Args<'a> {
    file: &'a str,
    at: Option<&'a Value>,
    sets: Vec<(&'a Value, Value)>,
}

/// The part of `included` at the dotted path `at` names.
fn select(included: Value, at: &Value) -> Result<Value, Diagnostic> {
    let path = at
        .as_str()
        .ok_or_else(|| Diagnostic::new("`at` must be a string such as \"model\"", Some(at.span)))?;
    let parts: Vec<&str> = path.split('.').collect();
    included.get_path(&parts).cloned().ok_or_else(|| {
        let names: Vec<&str> = included
            .fields()
            .map(|fields| fields.iter().map(|f| f.name.as_str()).collect())
            .unwrap_or_default();
        Diagnostic::new(
            format!("the included value has no field `{path}`"),
            Some(at.span),
        )
        .maybe_help(ronspan::closest(path, names).map(|c| format!("did you mean `{c}`?")))
    })
}

fn include_args(value: &Value) -> Result<Args<'_>, Diagnostic> {
    let usage = "write `Include(\"file.ron\")` or `Include(file: \"file.ron\", at: \"field\", set: {\"field.sub\": value})`";
    let bad = |message: &str, span| Diagnostic::new(message, Some(span)).help(usage);
    match &value.kind {
        ValueKind::Tuple { items, .. } => match items.as_slice() {
            [path] => Ok(Args {
                file: path
                    .as_str()
                    .ok_or_else(|| bad("the included file must be a string", path.span))?,
                at: None,
                sets: Vec::new(),
            }),
            _ => Err(bad("`Include` takes one file", value.span)),
        },
        ValueKind::Struct { fields, .. } => {
            let mut file = None;
            let mut at = None;
            let mut sets = Vec::new();
            for field in fields {
                match field.name.as_str() {
                    "file" => {
                        file = Some(
                            field
                                .value
                                .as_str()
                                .ok_or_else(|| bad("`file` must be a string", field.value.span))?,
                        )
                    }
                    "at" => at = Some(&field.value),
                    "set" => match &field.value.kind {
                        ValueKind::Map(entries) => {
                            sets.extend(entries.iter().map(|(k, v)| (k, v.clone())))
                        }
                        _ => {
                            return Err(bad(
                                "`set` must be a map of field paths to values",
                                field.value.span,
                            ));
                        }
                    },
                    other => {
                        return Err(Diagnostic::new(
                            format!("unknown field `{other}` of `Include`"),
                            Some(field.name_span),
                        )
                        .maybe_help(
                            ronspan::closest(other, ["file", "at", "set"])
                                .map(|c| format!("did you mean `{c}`?")),
                        ));
                    }
                }
            }
            Ok(Args {
                file: file.ok_or_else(|| bad("`Include` needs a `file`", value.name_span()))?,
                at,
                sets,
            })
        }
        _ => Err(bad("`Include` needs a file", value.span)),
    }
}

fn load_included(
    path: &Path,
    at: &Value,
    sources: &mut Sources,
    stack: &[PathBuf],
) -> Result<Value, Diagnostic> {
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if stack.contains(&canonical) {
        let chain: Vec<String> = stack
            .iter()
            .chain([&canonical])
            .map(|p| p.display().to_string())
            .collect();
        return Err(Diagnostic::new(
            format!("`{}` includes itself", path.display()),
            Some(at.span),
        )
        .note(format!("include chain: {}", chain.join(" -> "))));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::new(
            format!("cannot read included file `{}`: {e}", path.display()),
            Some(at.span),
        )
    })?;
    let file = sources.add(path, text);
    Ok(ronspan::parse(file, sources.text(file))?)
}

/// What `Some(…)` holds, so that a path reaches the fields of an optional struct
/// (`eval.every` in `eval: Some((every: 2000))`); any other value itself.
fn inside_some(value: &mut Value) -> &mut Value {
    let some = matches!(
        &value.kind,
        ValueKind::Tuple { name: Some(name), items } if name == "Some" && items.len() == 1
    );
    if !some {
        return value;
    }
    let ValueKind::Tuple { items, .. } = &mut value.kind else {
        unreachable!("matched above")
    };
    inside_some(&mut items[0])
}

/// Overrides the value at a dotted path (`"optimizer.lr"`), through `Some(…)`, list
/// indices and `None` (which becomes the struct the path goes into), adding fields a
/// struct lacks: the last with the new value, one on the way as a struct holding the
/// rest of the path (`charts.legend` where `charts` was left to its default becomes
/// `charts: (legend: …)`). The kind then accepts or rejects them like any written field.
pub(super) fn set_path(target: &mut Value, key: &Value, new: Value) -> Result<(), Diagnostic> {
    let Some(path) = key.as_str() else {
        return Err(Diagnostic::new(
            "a `set` key must be a string such as \"field.sub\"",
            Some(key.span),
        ));
    };
    let parts: Vec<&str> = path.split('.').collect();
    let mut node = target;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        node = inside_some(node);
        // A field into `None` makes it the struct that holds the field (RON's implicit
        // `Some`); the kind then names the fields still missing.
        if matches!(&node.kind, ValueKind::Ident(n) if n == "None") {
            node.kind = ValueKind::Struct {
                name: None,
                fields: Vec::new(),
            };
        }
        let next = match &mut node.kind {
            ValueKind::Struct { fields, .. } => {
                if !fields.iter().any(|f| f.name == *part) {
                    let field = |value| Field {
                        name: part.to_string(),
                        name_span: key.span,
                        value,
                    };
                    if last {
                        fields.push(field(new));
                        return Ok(());
                    }
                    let empty = ValueKind::Struct {
                        name: None,
                        fields: Vec::new(),
                    };
                    fields.push(field(Value::new(empty, key.span)));
                }
                &mut fields
                    .iter_mut()
                    .find(|f| f.name == *part)
                    .expect("checked above")
                    .value
            }
            ValueKind::Map(entries) => {
                let found = entries.iter().position(|(k, _)| k.as_str() == Some(part));
                match found {
                    Some(at) => &mut entries[at].1,
                    None if last => {
                        entries.push((Value::new(ValueKind::Str(part.to_string()), key.span), new));
                        return Ok(());
                    }
                    None => {
                        return Err(Diagnostic::new(
                            format!("`{path}`: no key `{part}` to descend into"),
                            Some(key.span),
                        ));
                    }
                }
            }
            // `tables.0.digits`: an item of a list by its index.
            ValueKind::List(items) => {
                let count = items.len();
                match part.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(item) => item,
                    None => {
                        return Err(Diagnostic::new(
                            format!("`{path}`: `{part}` is not an index of a list of {count}"),
                            Some(key.span),
                        )
                        .help(format!(
                            "a list's items are 0 to {}",
                            count.saturating_sub(1)
                        )));
                    }
                }
            }
            other => {
                let what = Value::new(other.clone(), key.span).describe();
                return Err(Diagnostic::new(
                    format!("`{path}`: `{part}` is inside {what}, which has no fields"),
                    Some(key.span),
                ));
            }
        };
        node = next;
    }
    *node = new;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` with `path` set to `value` (both RON).
    fn set(text: &str, path: &str, value: &str) -> Result<Value, Diagnostic> {
        let mut sources = Sources::default();
        let file = sources.add("t.ron", text);
        let mut target = ronspan::parse(file, sources.text(file)).unwrap();
        let file = sources.add("v.ron", value);
        let new = ronspan::parse(file, sources.text(file)).unwrap();
        let key = Value::new(ValueKind::Str(path.into()), new.span);
        set_path(&mut target, &key, new)?;
        Ok(target)
    }

    fn at<'a>(value: &'a Value, path: &[&str]) -> &'a ValueKind {
        &value.get_path(path).unwrap().kind
    }

    #[test]
    fn a_path_reaches_through_some_and_list_items_and_adds_what_is_missing() {
        let stage = "(steps: 10, eval: Some((every: 2000, count: 5)))";
        let set_every = set(stage, "eval.every", "500").unwrap();
        assert_eq!(at(&set_every, &["eval", "every"]), &ValueKind::Int(500));
        assert_eq!(at(&set_every, &["eval", "count"]), &ValueKind::Int(5));
        // Still `Some(...)` around the struct.
        assert!(matches!(
            at(&set_every, &["eval"]),
            ValueKind::Tuple { name: Some(n), .. } if n == "Some"
        ));

        let added = set(stage, "charts.legend", "\"method\"").unwrap();
        assert_eq!(
            at(&added, &["charts", "legend"]),
            &ValueKind::Str("method".into())
        );
        let none = set("(eval: None)", "eval.every", "5").unwrap();
        assert_eq!(at(&none, &["eval", "every"]), &ValueKind::Int(5));

        let lists = "(tables: [(digits: 3), (digits: 3)])";
        let second = set(lists, "tables.1.digits", "1").unwrap();
        assert_eq!(at(&second, &["tables", "1", "digits"]), &ValueKind::Int(1));
        assert_eq!(at(&second, &["tables", "0", "digits"]), &ValueKind::Int(3));
        let err = set(lists, "tables.2.digits", "1").unwrap_err();
        assert!(
            err.message.contains("`2` is not an index of a list of 2"),
            "{err:?}"
        );

        let err = set(stage, "steps.n", "1").unwrap_err();
        assert!(err.message.contains("`n` is inside"), "{err:?}");
    }
}
