//! `ForEach(seed: [0, 1, 2], stage: Kind(...))`: one stage per combination of values,
//! named `name[seed=0]`, `name[seed=1]`, … (several variables: their product, in the
//! order written, e.g. `name[lr=0.1,seed=0]`).
//!
//! Each variable reaches the stage in one of two ways. Where a string of the stage
//! mentions `{seed}`, the mention is replaced by the value's text (`"model-{seed}"` →
//! `"model-0"`). A variable never mentioned is set as the stage's field of the same name when its kind
//! has one (`Train(...)` gets `seed: 0`); otherwise it only names the stage, and
//! references from other `ForEach` stages with the same variable match on it.

use ronspan::{Field, Span, Value, ValueKind};

use super::diagnostic::Diagnostic;

/// One expanded stage: its name, its variables (name, label) and its body.
pub struct Expanded {
    pub name: String,
    pub vars: Vec<(String, String)>,
    pub body: Value,
}

/// Expands a `ForEach`; `has_field(kind, field)` says whether a kind takes a field.
pub fn expand(
    name: &str,
    value: &Value,
    has_field: &dyn Fn(&str, &str) -> bool,
) -> Result<Vec<Expanded>, Diagnostic> {
    let Some(fields) = value.fields() else {
        return Err(
            Diagnostic::new("`ForEach` needs named fields", Some(value.span))
                .help("write `ForEach(seed: [0, 1, 2], stage: Kind(...))`"),
        );
    };
    let mut stage = None;
    let mut vars: Vec<(&Field, &[Value])> = Vec::new();
    for field in fields {
        if field.name == "stage" {
            stage = Some(&field.value);
            continue;
        }
        match &field.value.kind {
            ValueKind::List(items) if !items.is_empty() => {
                if let Some(bad) = items.iter().find(|v| v.label().is_none()) {
                    return Err(Diagnostic::new(
                        format!(
                            "`ForEach` values must be numbers, strings, booleans or identifiers, found {}",
                            bad.describe()
                        ),
                        Some(bad.span),
                    ));
                }
                vars.push((field, items));
            }
            _ => {
                return Err(Diagnostic::new(
                    format!(
                        "`ForEach` variable `{}` must be a non-empty list of values",
                        field.name
                    ),
                    Some(field.value.span),
                ));
            }
        }
    }
    let Some(stage) = stage else {
        return Err(
            Diagnostic::new("`ForEach` needs a `stage`", Some(value.name_span()))
                .help("write `ForEach(seed: [0, 1, 2], stage: Kind(...))`"),
        );
    };
    if vars.is_empty() {
        return Err(Diagnostic::new(
            "`ForEach` needs at least one variable",
            Some(value.name_span()),
        )
        .help("write `ForEach(seed: [0, 1, 2], stage: Kind(...))`"));
    }
    if stage.name() == Some("ForEach") {
        return Err(Diagnostic::new(
            "`ForEach` cannot be nested; give all variables to one `ForEach`",
            Some(stage.name_span()),
        ));
    }

    let mut combos: Vec<Vec<(&Field, &Value)>> = vec![Vec::new()];
    for (field, items) in &vars {
        combos = combos
            .into_iter()
            .flat_map(|combo| {
                items.iter().map(move |item| {
                    let mut next = combo.clone();
                    next.push((*field, item));
                    next
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|combo| {
            let mut body = stage.clone();
            let mut labels = Vec::new();
            for (field, item) in combo {
                let label = item.label().expect("checked scalar");
                let takes_it = body.name().is_some_and(|kind| has_field(kind, &field.name));
                if !substitute(&mut body, &field.name, &label) && takes_it {
                    set_field(&mut body, field, item)?;
                }
                labels.push((field.name.clone(), label));
            }
            let suffix: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Ok(Expanded {
                name: format!("{name}[{}]", suffix.join(",")),
                vars: labels,
                body,
            })
        })
        .collect()
}

/// Replaces `{var}` in every string of `body`; true if there was any.
fn substitute(body: &mut Value, var: &str, label: &str) -> bool {
    let needle = format!("{{{var}}}");
    let mut found = false;
    body.walk_mut(&mut |v| {
        let ValueKind::Str(s) = &v.kind else { return };
        if s.contains(&needle) {
            let replaced = s.replace(&needle, label);
            v.kind = ValueKind::Str(replaced);
            found = true;
        }
    });
    found
}

fn set_field(body: &mut Value, var: &Field, item: &Value) -> Result<(), Diagnostic> {
    let span: Span = var.name_span;
    match &mut body.kind {
        ValueKind::Struct { fields, .. } => {
            if let Some(existing) = fields.iter().find(|f| f.name == var.name) {
                return Err(Diagnostic::new(
                    format!(
                        "the stage sets `{}` itself, and `ForEach` varies it",
                        var.name
                    ),
                    Some(existing.name_span),
                )
                .help(format!(
                    "remove the field, or write `{{{}}}` where the value goes",
                    var.name
                )));
            }
            fields.push(Field {
                name: var.name.clone(),
                name_span: span,
                value: Value::new(item.kind.clone(), item.span),
            });
            Ok(())
        }
        _ => Err(Diagnostic::new(
            format!(
                "`ForEach` variable `{}` is never used as `{{{}}}`, and the stage has no fields to set it in",
                var.name, var.name
            ),
            Some(span),
        )),
    }
}
