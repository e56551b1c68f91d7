//! A recursive-descent parser for RON (Rusty Object Notation).
//!
//! Supported: comments (`//`, nested `/* */`), `#![enable(...)]` attributes (ignored:
//! `implicit_some` is always on), booleans, integers (decimal, `0x`, `0o`, `0b`, `_`
//! separators), floats (`inf`, `NaN` included), chars, strings with escapes, raw strings,
//! lists, maps, tuples, structs (named or not), bare identifiers, trailing commas.

use std::collections::HashSet;

use crate::{Error, Field, FileId, Span, Value, ValueKind};

/// Parses one RON document: a single value, optionally preceded by attributes.
pub fn parse(file: FileId, text: &str) -> Result<Value, Error> {
    parse_at(file, text, 0)
}

/// Parses the document that starts at byte `start` of `text`, with spans counted from
/// the start of `text`: the value part of a longer text, such as `--set path=value`.
pub fn parse_at(file: FileId, text: &str, start: usize) -> Result<Value, Error> {
    let mut p = Parser {
        file,
        text,
        pos: start,
    };
    p.skip_trivia()?;
    while p.rest().starts_with("#!") {
        p.attribute()?;
        p.skip_trivia()?;
    }
    let value = p.value()?;
    p.skip_trivia()?;
    if p.pos < text.len() {
        return Err(p.error_here("unexpected text after the value").with_help(
            "a RON file holds one value; separate items of a list or struct with commas",
        ));
    }
    Ok(value)
}

struct Parser<'a> {
    file: FileId,
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn span(&self, start: usize) -> Span {
        Span::new(self.file, start, self.pos)
    }

    fn error_here(&self, message: impl Into<String>) -> Error {
        let len = self.peek().map_or(0, char::len_utf8);
        Error::new(message, Span::new(self.file, self.pos, self.pos + len))
    }

    fn describe_next(&self) -> String {
        match self.peek() {
            None => "the end of the file".into(),
            Some(c) => format!("`{c}`"),
        }
    }

    fn skip_trivia(&mut self) -> Result<(), Error> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if trimmed.starts_with("/*") {
                self.block_comment()?;
            } else {
                return Ok(());
            }
        }
    }

    fn block_comment(&mut self) -> Result<(), Error> {
        let start = self.pos;
        let mut depth = 0usize;
        while self.pos < self.text.len() {
            let rest = self.rest();
            if rest.starts_with("/*") {
                depth += 1;
                self.pos += 2;
            } else if rest.starts_with("*/") {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    return Ok(());
                }
            } else {
                self.pos += rest.chars().next().map_or(1, char::len_utf8);
            }
        }
        Err(Error::new(
            "unterminated block comment",
            Span::new(self.file, start, start + 2),
        ))
    }

    fn attribute(&mut self) -> Result<(), Error> {
        let start = self.pos;
        match self.rest().find(']') {
            Some(end) => {
                self.pos += end + 1;
                Ok(())
            }
            None => Err(Error::new(
                "unterminated attribute",
                Span::new(self.file, start, start + 2),
            )),
        }
    }

    fn expect(&mut self, c: char, context: &str) -> Result<(), Error> {
        self.skip_trivia()?;
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error_here(format!(
                "expected `{c}` {context}, found {}",
                self.describe_next()
            )))
        }
    }

    fn value(&mut self) -> Result<Value, Error> {
        self.skip_trivia()?;
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Err(self.error_here("expected a value, found the end of the file"));
        };
        let kind = match c {
            '"' => ValueKind::Str(self.string()?),
            'r' if raw_ident_prefix(self.rest()) == 0
                && matches!(self.rest().as_bytes().get(1), Some(b'"' | b'#')) =>
            {
                ValueKind::Str(self.raw_string()?)
            }
            '\'' => ValueKind::Char(self.char_literal()?),
            '[' => ValueKind::List(self.list()?),
            '{' => ValueKind::Map(self.map()?),
            '(' => self.parenthesized(None)?,
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.number()?,
            c if c.is_alphabetic() || c == '_' => {
                let raw = raw_ident_prefix(self.rest()) > 0;
                let name = self.ident();
                match name {
                    "true" if !raw => ValueKind::Bool(true),
                    "false" if !raw => ValueKind::Bool(false),
                    "inf" if !raw => ValueKind::Float(f64::INFINITY),
                    "NaN" if !raw => ValueKind::Float(f64::NAN),
                    _ => {
                        let name = name.to_string();
                        self.skip_trivia()?;
                        if self.peek() == Some('(') {
                            self.parenthesized(Some(name))?
                        } else {
                            ValueKind::Ident(name)
                        }
                    }
                }
            }
            _ => {
                return Err(self.error_here(format!("expected a value, found `{c}`")));
            }
        };
        Ok(Value::new(kind, self.span(start)))
    }

    /// An identifier, raw (`r#None`, as `ron` writes a variant that shares a name
    /// with a keyword or `Option`'s) or not, without its `r#`.
    fn ident(&mut self) -> &'a str {
        self.pos += raw_ident_prefix(self.rest());
        let rest = self.rest();
        let len = ident_len(rest);
        self.pos += len;
        &rest[..len]
    }

    /// `(...)` after an optional name: a struct if it starts with `ident:`, else a tuple.
    fn parenthesized(&mut self, name: Option<String>) -> Result<ValueKind, Error> {
        self.expect('(', "")?;
        self.skip_trivia()?;
        if self.starts_field() {
            let mut fields: Vec<Field> = Vec::new();
            loop {
                self.skip_trivia()?;
                if self.peek() == Some(')') {
                    self.pos += 1;
                    return Ok(ValueKind::Struct { name, fields });
                }
                let start = self.pos;
                if !self.starts_field() {
                    return Err(self.error_here(format!(
                        "expected a field name or `)`, found {}",
                        self.describe_next()
                    )));
                }
                let field = self.ident().to_string();
                let name_span = self.span(start);
                if let Some(first) = fields.iter().find(|f| f.name == field) {
                    let first = first.name_span;
                    return Err(Error::new(format!("duplicate field `{field}`"), name_span)
                        .with_help(format!("`{field}` is already set at byte {}", first.start)));
                }
                self.expect(':', "after the field name")?;
                let value = self.value()?;
                fields.push(Field {
                    name: field,
                    name_span,
                    value,
                });
                if !self.comma_or(')')? {
                    self.pos += 1;
                    return Ok(ValueKind::Struct { name, fields });
                }
            }
        }
        let mut items = Vec::new();
        loop {
            self.skip_trivia()?;
            if self.peek() == Some(')') {
                self.pos += 1;
                break;
            }
            items.push(self.value()?);
            if !self.comma_or(')')? {
                self.pos += 1;
                break;
            }
        }
        Ok(match (&name, items.is_empty()) {
            (None, true) => ValueKind::Unit,
            _ => ValueKind::Tuple { name, items },
        })
    }

    fn starts_field(&self) -> bool {
        let prefix = raw_ident_prefix(self.rest());
        let rest = &self.rest()[prefix..];
        let len = ident_len(rest);
        if len == 0 || rest.starts_with(|c: char| c.is_ascii_digit()) {
            return false;
        }
        let mut after = Parser {
            file: self.file,
            text: self.text,
            pos: self.pos + prefix + len,
        };
        after.skip_trivia().is_ok() && after.peek() == Some(':')
    }

    /// After an item: consumes a comma and returns true, or sees `close` and returns
    /// false (leaving it for the caller).
    fn comma_or(&mut self, close: char) -> Result<bool, Error> {
        self.skip_trivia()?;
        match self.peek() {
            Some(',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(c) if c == close => Ok(false),
            _ => Err(self.error_here(format!(
                "expected `,` or `{close}`, found {}",
                self.describe_next()
            ))),
        }
    }

    fn list(&mut self) -> Result<Vec<Value>, Error> {
        self.expect('[', "")?;
        let mut items = Vec::new();
        loop {
            self.skip_trivia()?;
            if self.peek() == Some(']') {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            if !self.comma_or(']')? {
                self.pos += 1;
                return Ok(items);
            }
        }
    }

    fn map(&mut self) -> Result<Vec<(Value, Value)>, Error> {
        self.expect('{', "")?;
        let mut entries: Vec<(Value, Value)> = Vec::new();
        // String keys (stage names: a pipeline may have 100,000) found by hash, borrowed
        // from the text where they have no escapes; other keys, rare, compared with each
        // entry.
        let mut plain: HashSet<&str> = HashSet::new();
        let mut escaped: HashSet<String> = HashSet::new();
        loop {
            self.skip_trivia()?;
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(entries);
            }
            let key = self.value()?;
            let (start, end) = (key.span.start as usize, key.span.end as usize);
            let duplicate = match &key.kind {
                ValueKind::Str(s)
                    if end - start == s.len() + 2 && self.text[start..].starts_with('"') =>
                {
                    escaped.contains(s) || !plain.insert(&self.text[start + 1..end - 1])
                }
                ValueKind::Str(s) => plain.contains(s.as_str()) || !escaped.insert(s.clone()),
                kind => entries.iter().any(|(k, _)| k.kind == *kind),
            };
            if duplicate {
                let label = key.label().map_or_else(String::new, |l| format!(" `{l}`"));
                return Err(Error::new(format!("duplicate key{label}"), key.span)
                    .with_help("each key of a map may appear once"));
            }
            self.expect(':', "after the map key")?;
            let value = self.value()?;
            entries.push((key, value));
            if !self.comma_or('}')? {
                self.pos += 1;
                return Ok(entries);
            }
        }
    }

    fn number(&mut self) -> Result<ValueKind, Error> {
        let start = self.pos;
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+')))
            .unwrap_or(rest.len());
        // `-` and `+` belong to the number only as a sign or right after an exponent.
        let mut end = 0;
        for (i, c) in rest[..len].char_indices() {
            let sign_ok = i == 0 || matches!(rest.as_bytes()[i - 1], b'e' | b'E');
            if matches!(c, '-' | '+') && !sign_ok {
                break;
            }
            end = i + c.len_utf8();
        }
        let token = &rest[..end];
        self.pos += end;
        let bad = || {
            Error::new(
                format!("invalid number `{token}`"),
                Span::new(self.file, start, start + end),
            )
        };
        let (negative, digits) = match token.as_bytes().first() {
            Some(b'-') => (true, &token[1..]),
            Some(b'+') => (false, &token[1..]),
            _ => (false, token),
        };
        let clean = digits.replace('_', "");
        let radix = match clean.get(..2) {
            Some("0x") => Some(16),
            Some("0o") => Some(8),
            Some("0b") => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            let n = i128::from_str_radix(&clean[2..], radix).map_err(|_| bad())?;
            return Ok(ValueKind::Int(if negative { -n } else { n }));
        }
        if clean == "inf" {
            return Ok(ValueKind::Float(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }));
        }
        if clean.contains(['.', 'e', 'E']) {
            let f: f64 = clean.parse().map_err(|_| bad())?;
            return Ok(ValueKind::Float(if negative { -f } else { f }));
        }
        let n: i128 = clean.parse().map_err(|_| bad())?;
        Ok(ValueKind::Int(if negative { -n } else { n }))
    }

    fn string(&mut self) -> Result<String, Error> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            // Up to the next quote or escape in one piece: pipelines of 100,000 stages
            // are mostly strings.
            let rest = self.rest();
            let Some(end) = rest.find(['"', '\\']) else {
                return Err(Error::new(
                    "unterminated string",
                    Span::new(self.file, start, start + 1),
                ));
            };
            out.push_str(&rest[..end]);
            self.pos += end + 1;
            if rest.as_bytes()[end] == b'"' {
                return Ok(out);
            }
            out.push(self.escape()?);
        }
    }

    fn escape(&mut self) -> Result<char, Error> {
        let at = self.pos - 1;
        let c = self
            .peek()
            .ok_or_else(|| self.error_here("unterminated escape"))?;
        self.pos += c.len_utf8();
        Ok(match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '0' => '\0',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'u' => {
                let rest = self.rest();
                let end = rest.find('}').filter(|_| rest.starts_with('{'));
                let code = end
                    .and_then(|end| u32::from_str_radix(&rest[1..end], 16).ok())
                    .and_then(char::from_u32);
                match (code, end) {
                    (Some(ch), Some(end)) => {
                        self.pos += end + 1;
                        ch
                    }
                    _ => {
                        return Err(Error::new(
                            "invalid unicode escape, expected `\\u{XXXX}`",
                            Span::new(self.file, at, self.pos),
                        ));
                    }
                }
            }
            other => {
                return Err(Error::new(
                    format!("unknown escape `\\{other}`"),
                    Span::new(self.file, at, self.pos),
                ));
            }
        })
    }

    fn raw_string(&mut self) -> Result<String, Error> {
        let start = self.pos;
        self.pos += 1;
        let hashes = self.rest().len() - self.rest().trim_start_matches('#').len();
        self.pos += hashes;
        if self.peek() != Some('"') {
            return Err(self.error_here("expected `\"` to open the raw string"));
        }
        self.pos += 1;
        let close = format!("\"{}", "#".repeat(hashes));
        match self.rest().find(&close) {
            Some(end) => {
                let s = self.rest()[..end].to_string();
                self.pos += end + close.len();
                Ok(s)
            }
            None => Err(Error::new(
                "unterminated raw string",
                Span::new(self.file, start, start + 1),
            )),
        }
    }

    fn char_literal(&mut self) -> Result<char, Error> {
        let start = self.pos;
        self.pos += 1;
        let c = match self.peek() {
            Some('\\') => {
                self.pos += 1;
                self.escape()?
            }
            Some(c) => {
                self.pos += c.len_utf8();
                c
            }
            None => return Err(self.error_here("unterminated character")),
        };
        if self.peek() != Some('\'') {
            return Err(Error::new(
                "unterminated character",
                Span::new(self.file, start, self.pos),
            ));
        }
        self.pos += 1;
        Ok(c)
    }
}

/// The length of an identifier's characters at the start of `text`.
fn ident_len(text: &str) -> usize {
    text.find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len())
}

/// 2 when `text` starts with a raw identifier's `r#` (`r#None`, not the raw string
/// `r#"…"#`), else 0.
fn raw_ident_prefix(text: &str) -> usize {
    let raw =
        text.starts_with("r#") && text[2..].starts_with(|c: char| c.is_alphabetic() || c == '_');
    if raw { 2 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Value {
        parse(FileId(0), text).unwrap()
    }

    fn err(text: &str) -> (String, u32) {
        let e = parse(FileId(0), text).unwrap_err();
        (e.message().to_string(), e.span().unwrap().start)
    }

    #[test]
    fn scalars() {
        assert_eq!(p("42").kind, ValueKind::Int(42));
        assert_eq!(p("-0x1f").kind, ValueKind::Int(-31));
        assert_eq!(p("1_000").kind, ValueKind::Int(1000));
        assert_eq!(p("2e-4").kind, ValueKind::Float(2e-4));
        assert_eq!(p("-1.5").kind, ValueKind::Float(-1.5));
        assert_eq!(p("true").kind, ValueKind::Bool(true));
        assert_eq!(p(r#""a\n\u{e9}""#).kind, ValueKind::Str("a\n\u{e9}".into()));
        assert_eq!(p(r##"r#"x "y""#"##).kind, ValueKind::Str("x \"y\"".into()));
        assert_eq!(p("r#None").kind, ValueKind::Ident("None".into()));
        assert_eq!(p("r#true").kind, ValueKind::Ident("true".into()));
        assert_eq!(p("'c'").kind, ValueKind::Char('c'));
        assert_eq!(p("Auto").kind, ValueKind::Ident("Auto".into()));
        assert_eq!(p("()").kind, ValueKind::Unit);
    }

    #[test]
    fn nested_with_comments_and_trailing_commas() {
        let v = p(
            "#![enable(implicit_some)]\n// c\nTrain(a: [1, 2,], /* x /* y */ */ b: {\"k\": (1, 2)},)",
        );
        let ValueKind::Struct { name, fields } = &v.kind else {
            panic!("{v:?}")
        };
        assert_eq!(name.as_deref(), Some("Train"));
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].name, "b");
        assert_eq!(v.get_path(&["b", "k"]).unwrap().describe(), "a tuple");
    }

    #[test]
    fn raw_identifiers_as_ron_writes_them() {
        let v = p("r#Some(r#type: r#None, kind: r#\"s\"#)");
        let ValueKind::Struct { name, fields } = &v.kind else {
            panic!("{v:?}")
        };
        assert_eq!(name.as_deref(), Some("Some"));
        assert_eq!(fields[0].name, "type");
        assert_eq!(fields[0].value.kind, ValueKind::Ident("None".into()));
        assert_eq!(fields[1].value.kind, ValueKind::Str("s".into()));
    }

    #[test]
    fn spans_cover_the_text() {
        let text = "(a: [1, \"two\"])";
        let v = p(text);
        let two = &v.get_path(&["a"]).unwrap();
        let ValueKind::List(items) = &two.kind else {
            panic!()
        };
        let s = items[1].span;
        assert_eq!(&text[s.start as usize..s.end as usize], "\"two\"");
    }

    #[test]
    fn errors_point_at_the_fault() {
        assert_eq!(
            err("(a: 1 b: 2)"),
            ("expected `,` or `)`, found `b`".into(), 6)
        );
        assert_eq!(
            err("[1, 2"),
            ("expected `,` or `]`, found the end of the file".into(), 5)
        );
        assert_eq!(err("(a: 1, a: 2)").0, "duplicate field `a`");
        assert_eq!(err("\"abc").0, "unterminated string");
        assert_eq!(err("(a: 1) x").0, "unexpected text after the value");
        assert_eq!(err("1.2.3").0, "invalid number `1.2.3`");
        assert_eq!(err(r#""a\""#).0, "unterminated string");
    }

    #[test]
    fn a_duplicate_key_is_found_however_it_is_written() {
        for text in [
            r#"{"a": 1, "b": 2, "a": 3}"#,
            r#"{"a": 1, "\u{61}": 2}"#,
            r#"{"\u{61}": 1, "a": 2}"#,
            r#"{"\u{61}": 1, r"a": 2}"#,
            r#"{1: 1, 1: 2}"#,
        ] {
            let (message, at) = err(text);
            assert!(message.starts_with("duplicate key"), "{text}: {message}");
            assert!(at >= 7, "{text}: at the second key, not {at}");
        }
        assert!(parse(FileId(0), r#"{"a": 1, "\u{62}": 2, r"c": 3}"#).is_ok());
        assert_eq!(p(r#""x\ty""#).kind, ValueKind::Str("x\ty".into()));
    }
}
