//! References between stages: a stage name, a `ForEach` group, or a pattern with `*`.
//!
//! A group or pattern referenced from inside a `ForEach` that shares its variables
//! resolves to the stages with the same values (`score[seed=1]` reads `train[seed=1]`);
//! anywhere else, to all of them. Patterns match stage and group names, e.g. `"*_fid"`.

use std::collections::HashMap;
use std::rc::Rc;

use super::{Diagnostic, Pipeline};

pub fn resolve(pipeline: &mut Pipeline) -> Result<(), Diagnostic> {
    let mut cache = Cache::default();
    for i in 0..pipeline.stages.len() {
        for r in 0..pipeline.stages[i].deps.len() {
            let target = pipeline.stages[i].deps[r].target.clone();
            let span = pipeline.stages[i].deps[r].span;
            let resolved = cache
                .targets(pipeline, Some(i), &target)
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

/// The stages a reference from stage `from` (or from the command line) means.
pub fn targets(
    pipeline: &Pipeline,
    from: Option<usize>,
    target: &str,
) -> Result<Vec<usize>, Diagnostic> {
    Cache::default().targets(pipeline, from, target)
}

/// What resolving every reference of a sweep would otherwise recompute for each of its
/// stages: the stages a pattern matches, and a group's members by the values of the
/// variables its referrers share with it (100,000 members referenced by 100,000 stages
/// of another `ForEach` are then found by hash, not by comparing every pair).
#[derive(Default)]
struct Cache {
    patterns: HashMap<String, Rc<[usize]>>,
    /// By target: the variables all its stages have, or `None` when they differ.
    variables: HashMap<String, Option<Vec<String>>>,
    /// By target and the variables shared with it: the target's stages by their values.
    by_values: HashMap<(String, Vec<String>), ByValues>,
}

/// Stages by the values of some of their variables, in that order.
type ByValues = HashMap<Vec<String>, Vec<usize>>;

impl Cache {
    fn targets(
        &mut self,
        pipeline: &Pipeline,
        from: Option<usize>,
        target: &str,
    ) -> Result<Vec<usize>, Diagnostic> {
        if let Some(i) = pipeline.index(target) {
            return Ok(vec![i]);
        }
        let pattern = target.contains('*');
        // Borrowed, not copied: a group of 100,000 is the target of as many references.
        let matched;
        let candidates: &[usize] = if pattern {
            matched = Rc::clone(self.patterns.entry(target.to_string()).or_insert_with(|| {
                (0..pipeline.stages.len())
                    .filter(|&i| {
                        let s = &pipeline.stages[i];
                        glob(target, &s.name) || s.group.as_deref().is_some_and(|g| glob(target, g))
                    })
                    .collect()
            }));
            &matched
        } else {
            pipeline.members(target)
        };
        // A pattern never means the stage it is written in.
        let itself = |i: &usize| !pattern || Some(*i) != from;
        if !candidates.iter().any(itself) {
            return Err(if pattern {
                Diagnostic::new(format!("no stage matches `{target}`"), None)
            } else {
                Diagnostic::new(format!("no stage named `{target}`"), None)
                    .maybe_help(suggest(target, pipeline))
            });
        }
        let Some(from) = from else {
            return Ok(candidates.to_vec());
        };
        let matching: Vec<usize> = self
            .matching(pipeline, from, target, candidates)
            .into_iter()
            .filter(|&i| !pattern || i != from)
            .collect();
        if matching.is_empty() {
            let what = if pattern {
                format!("no stage matching `{target}`")
            } else {
                format!("no member of `{target}`")
            };
            return Err(Diagnostic::new(
                format!(
                    "{what} has the same values as `{}`",
                    pipeline.stages[from].name
                ),
                None,
            ));
        }
        Ok(matching)
    }

    /// The stages of `found` with the same value as `from` for every variable they
    /// share. Indexed when every stage of `found` has the same variables (a group's
    /// members do); compared one by one otherwise.
    fn matching(
        &mut self,
        pipeline: &Pipeline,
        from: usize,
        target: &str,
        found: &[usize],
    ) -> Vec<usize> {
        let theirs = self
            .variables
            .entry(target.to_string())
            .or_insert_with(|| {
                let names = |i: usize| -> Vec<String> {
                    pipeline.stages[i]
                        .vars
                        .iter()
                        .map(|(k, _)| k.clone())
                        .collect()
                };
                let first = names(found[0]);
                found.iter().all(|&m| names(m) == first).then_some(first)
            })
            .clone();
        let Some(theirs) = theirs else {
            return found
                .iter()
                .copied()
                .filter(|&m| agree(pipeline, from, m))
                .collect();
        };
        let shared: Vec<String> = pipeline.stages[from]
            .vars
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| theirs.contains(k))
            .collect();
        let value = |i: usize, name: &str| -> String {
            let vars = &pipeline.stages[i].vars;
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let index = self
            .by_values
            .entry((target.to_string(), shared.clone()))
            .or_insert_with(|| {
                let mut index = ByValues::new();
                for &m in found {
                    let key = shared.iter().map(|k| value(m, k)).collect();
                    index.entry(key).or_default().push(m);
                }
                index
            });
        let key: Vec<String> = shared.iter().map(|k| value(from, k)).collect();
        index.get(&key).cloned().unwrap_or_default()
    }
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
