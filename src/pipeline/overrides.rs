//! `--set STAGE.FIELD.PATH=VALUE` on the command line: a value in RON put where the
//! path says, in every stage the first part names (a stage, a `ForEach` group, or a
//! pattern with `*`), before the stage's kind checks its parameters. The key is what the
//! same edit in the file would give; errors point into the `--set` text.

use ronspan::{FileId, Sources, Span, Value, ValueKind};

use super::diagnostic::Diagnostic;
use super::include::set_path;
use super::resolve::glob;

/// One `--set`, parsed: which stages, which field, what value.
pub struct Override {
    /// As written, for `pipe why` and errors.
    pub text: String,
    target: String,
    /// The field path as a string value whose span points at it in the `--set` text.
    path: Value,
    value: Value,
    matched: bool,
}

impl Override {
    /// Parses `STAGE.FIELD[.FIELD…]=VALUE`; its text becomes a source of its own.
    pub fn parse(text: &str, sources: &mut Sources) -> Result<Override, Diagnostic> {
        let file = sources.add(format!("--set {text}"), text.to_string());
        let whole = span(file, 0, text.len());
        // A stage name may hold `[var=value,…]`: the stage part ends after its `]`.
        let stage_end = match text.find('[') {
            Some(open) if text[..open].find('.').is_none() => text[open..]
                .find(']')
                .map(|close| open + close + 1)
                .ok_or_else(|| Diagnostic::new("unclosed `[` in the stage name", Some(whole)))?,
            _ => text.find(['.', '=']).unwrap_or(text.len()),
        };
        let usage = "write `--set STAGE.FIELD=VALUE`, e.g. `--set train.train.total_steps=1000`";
        if text.as_bytes().get(stage_end) != Some(&b'.') {
            return Err(Diagnostic::new("no field after the stage", Some(whole)).help(usage));
        }
        let Some(eq) = text[stage_end..].find('=').map(|i| stage_end + i) else {
            return Err(Diagnostic::new("no `=VALUE`", Some(whole)).help(usage));
        };
        let path_span = span(file, stage_end + 1, eq);
        let path = Value::new(
            ValueKind::Str(text[stage_end + 1..eq].to_string()),
            path_span,
        );
        let value = ronspan::parse_at(file, text, eq + 1).map_err(Diagnostic::from)?;
        Ok(Override {
            text: text.to_string(),
            target: text[..stage_end].to_string(),
            path,
            value,
            matched: false,
        })
    }

    /// Sets the value in `body` if this override names the stage (`name`, a member of
    /// the group `group`); says whether it did.
    pub fn apply(&mut self, name: &str, group: &str, body: &mut Value) -> Result<bool, Diagnostic> {
        let names_it = self.target == name
            || self.target == group
            || (self.target.contains('*') && glob(&self.target, name));
        if names_it {
            set_path(body, &self.path, self.value.clone())?;
            self.matched = true;
        }
        Ok(names_it)
    }

    /// An override that named no stage, as an error suggesting the closest of `names`.
    pub fn unmatched<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Option<Diagnostic> {
        (!self.matched).then(|| {
            let span = span(self.path.span.file, 0, self.target.len());
            Diagnostic::new(format!("no stage `{}` to set", self.target), Some(span)).maybe_help(
                ronspan::closest(&self.target, names).map(|c| format!("did you mean `{c}`?")),
            )
        })
    }
}

fn span(file: FileId, start: usize, end: usize) -> Span {
    Span {
        file,
        start: start as u32,
        end: end as u32,
    }
}
