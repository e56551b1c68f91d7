//! Errors in pipeline files, rendered like cargo's: message, location, the line itself
//! with the fault underlined, the stage concerned and a suggestion.

use std::fmt::Write;
use std::path::Path;

use ronspan::{Sources, Span};

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Option<Span>,
    pub stage: Option<String>,
    pub help: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, span: Option<Span>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span,
            stage: None,
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn maybe_help(mut self, help: Option<impl Into<String>>) -> Diagnostic {
        self.help = help.map(Into::into);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Names the stage, unless an inner step already did.
    pub fn in_stage(mut self, stage: &str) -> Diagnostic {
        self.stage.get_or_insert_with(|| stage.to_string());
        self
    }

    pub fn render(&self, sources: &Sources) -> String {
        let mut out = format!("error: {}\n", self.message);
        if let Some(span) = self.span {
            let at = sources.locate(span);
            let number = at.line.to_string();
            let pad = " ".repeat(number.len());
            let _ = writeln!(
                out,
                "{pad}--> {}:{}:{}",
                display_path(at.path),
                at.line,
                at.column
            );
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{number} | {}", at.line_text);
            let lead: String = at
                .line_text
                .chars()
                .take(at.column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(out, "{pad} | {lead}{}", "^".repeat(at.width));
        }
        if let Some(stage) = &self.stage {
            let _ = writeln!(out, "  = in stage `{stage}`");
        }
        for note in &self.notes {
            let _ = writeln!(out, "  = note: {note}");
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out
    }
}

impl From<ronspan::Error> for Diagnostic {
    fn from(e: ronspan::Error) -> Diagnostic {
        Diagnostic::new(e.message(), e.span()).maybe_help(e.help())
    }
}

/// A path relative to the working directory where that is shorter, as cargo prints them.
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_cargo() {
        let mut sources = Sources::default();
        let text = "Pipeline(\n  stages: {\n    \"a\": Command(argvv: []),\n  },\n)";
        let file = sources.add("/nonexistent/p.ron", text);
        let start = text.find("argvv").unwrap();
        let d = Diagnostic::new(
            "unknown field `argvv`",
            Some(Span::new(file, start, start + 5)),
        )
        .in_stage("a")
        .help("did you mean `argv`?");
        assert_eq!(
            d.render(&sources),
            "error: unknown field `argvv`\n \
             --> /nonexistent/p.ron:3:18\n  \
             |\n\
             3 |     \"a\": Command(argvv: []),\n  \
             |                  ^^^^^\n  \
             = in stage `a`\n  \
             = help: did you mean `argv`?\n"
        );
    }
}
