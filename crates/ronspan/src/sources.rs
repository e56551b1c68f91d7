use std::path::{Path, PathBuf};

/// Which parsed file a span belongs to; an index into [`Sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileId(pub u32);

/// A byte range of one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }
}

/// The text of every file that spans may point into.
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<(PathBuf, String)>,
}

/// A span resolved to a human position (1-based line and column, in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location<'a> {
    pub path: &'a Path,
    pub line: usize,
    pub column: usize,
    /// The whole line the span starts on, without its line break.
    pub line_text: &'a str,
    /// How many characters of `line_text` the span covers (at least 1).
    pub width: usize,
}

impl Sources {
    pub fn add(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> FileId {
        self.files.push((path.into(), text.into()));
        FileId(self.files.len() as u32 - 1)
    }

    pub fn text(&self, file: FileId) -> &str {
        &self.files[file.0 as usize].1
    }

    pub fn path(&self, file: FileId) -> &Path {
        &self.files[file.0 as usize].0
    }

    pub fn locate(&self, span: Span) -> Location<'_> {
        let (path, text) = &self.files[span.file.0 as usize];
        let start = (span.start as usize).min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line_text = text[line_start..line_end].trim_end_matches('\r');
        let end = (span.end as usize).clamp(start, line_end);
        Location {
            path,
            line: text[..line_start].matches('\n').count() + 1,
            column: text[line_start..start].chars().count() + 1,
            line_text,
            width: text[start..end].chars().count().max(1),
        }
    }
}
