//! References between stages: a stage name, a `ForEach` group, or a pattern with `*`.
//!
//! A group or pattern referenced from inside a `ForEach` that shares its variables
//! resolves to the stages with the same values (`score[seed=1]` reads `train[seed=1]`);
//! anywhere else, to all of them. Patterns match stage and group names, e.g. `"*_fid"`.

use super::{Diagnostic, Pipeline};

pub fn resolve(pipeline: &mut Pipeline) -> Result<(), Diagnostic> {
    for i in 0..pipeline.stages.len() {
        for r in 0..pipeline.stages[i].deps.len() {
            let target = pipeline.stages[i].declaration.stages[r].target.clone();
            let span = pipeline.stages[i].deps[r].span;
            let resolved = targets(pipeline, Some(i), &target)
                .map_err(|d| d.in_stage(&pipeline.stages[i].name))
                .map_err(|d| Diagnostic {
                    span: Some(span),
                    ..d
                })?;
            pipeline.stages[i].deps[r].stages = resolved;
        }
        for f in 0..pipeline.stages[i].files.len() {
            let file = &pipeline.stages[i].files[f];
            let path = pipeline.base_dir.join(&file.written);
            pipeline.stages[i].files[f].path = path;
        }
    }
    Ok(())
}

pub fn targets(
    pipeline: &Pipeline,
    from: Option<usize>,
    target: &str,
) -> Result<Vec<usize>, Diagnostic> {
    if let Some(i) = pipeline.index(target) {
        return Ok(vec![i]);
    }
    if target.contains('*') {
        let found: Vec<usize> = (0..pipeline.stages.len())
            .filter(|&i| {
                let s = &pipeline.stages[i];
                glob(target, &s.name) || s.group.as_deref().is_some_and(|g| glob(target, g))
            })
            .filter(|&i| Some(i) != from)
            .collect();
        if found.is_empty() {
            return Err(Diagnostic::new(
                format!("no stage matches `{target}`"),
                None,
            ));
        }
        let matching: Vec<usize> = found
            .iter()
            .copied()
            .filter(|&m| from.is_none_or(|f| agree(pipeline, f, m)))
            .collect();
        if matching.is_empty() {
            return Err(Diagnostic::new(
                format!(
                    "no stage matching `{target}` has the same values as `{}`",
                    pipeline.stages[from.expect("filtered only with a referrer")].name
                ),
                None,
            ));
        }
        return Ok(matching);
    }
    let members: Vec<usize> = (0..pipeline.stages.len())
        .filter(|&i| pipeline.stages[i].group.as_deref() == Some(target))
        .collect();
    if members.is_empty() {
        return Err(Diagnostic::new(format!("no stage named `{target}`"), None)
            .maybe_help(suggest(target, pipeline)));
    }
    let Some(from) = from else { return Ok(members) };
    let matching: Vec<usize> = members
        .iter()
        .copied()
        .filter(|&m| agree(pipeline, from, m))
        .collect();
    if matching.is_empty() {
        return Err(Diagnostic::new(
            format!(
                "no member of `{target}` has the same values as `{}`",
                pipeline.stages[from].name
            ),
            None,
        ));
    }
    Ok(matching)
}

/// Whether stages `a` and `b` have the same value for every variable they share.
fn agree(pipeline: &Pipeline, a: usize, b: usize) -> bool {
    let vars = &pipeline.stages[a].vars;
    pipeline.stages[b]
        .vars
        .iter()
        .all(|(k, v)| vars.iter().all(|(k2, v2)| k != k2 || v == v2))
}

/// `*` matches any run of characters; everything else matches itself.
pub(super) fn glob(pattern: &str, name: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut tail) = name.strip_prefix(head) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    let (last, middle) = parts.split_last().expect("split yields at least one part");
    for part in middle {
        match tail.find(part) {
            Some(i) => tail = &tail[i + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

/// "did you mean" over stage and group names.
pub fn suggest(name: &str, pipeline: &Pipeline) -> Option<String> {
    let names = pipeline
        .stages
        .iter()
        .flat_map(|s| [Some(s.name.as_str()), s.group.as_deref()])
        .flatten();
    ronspan::closest(name, names).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("*_fid", "contra_fid"));
        assert!(!glob("*_fid", "contra_fid2"));
        assert!(glob("a*b*c", "a-x-b-y-c"));
        assert!(glob("*", "x"));
        assert!(!glob("a*", "b"));
        assert!(glob("ab*b", "abb"));
        assert!(!glob("ab*ab", "ab"));
    }
}
