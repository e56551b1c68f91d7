use std::fmt;

use crate::{Span, closest};

/// A parse or deserialization error, with the span of the value at fault where known.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    message: String,
    span: Option<Span>,
    help: Option<String>,
}

impl Error {
    pub fn new(message: impl Into<String>, span: Span) -> Error {
        Error {
            message: message.into(),
            span: Some(span),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Error {
        self.help = Some(help.into());
        self
    }

    /// Sets the span unless an inner value already claimed the error.
    pub fn at(mut self, span: Span) -> Error {
        self.span.get_or_insert(span);
        self
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn span(&self) -> Option<Span> {
        self.span
    }

    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    fn unknown(what: &str, name: &str, expected: &'static [&'static str]) -> Error {
        let list = match expected {
            [] => format!("there are no {what}s here"),
            _ => {
                let names: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
                format!("expected one of {}", names.join(", "))
            }
        };
        Error {
            message: format!("unknown {what} `{name}`, {list}"),
            span: None,
            help: closest(name, expected.iter().copied()).map(|c| format!("did you mean `{c}`?")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error {
            message: msg.to_string(),
            span: None,
            help: None,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Error {
        Error::unknown("field", field, expected)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Error {
        Error::unknown("variant", variant, expected)
    }
}
