use crate::Span;

/// A parsed RON value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// `()`
    Unit,
    Bool(bool),
    Int(i128),
    Float(f64),
    Char(char),
    Str(String),
    /// A bare identifier: a unit variant, a unit struct or `None`.
    Ident(String),
    /// `[a, b]`
    List(Vec<Value>),
    /// `{k: v}`, in written order.
    Map(Vec<(Value, Value)>),
    /// `(a, b)` or `Name(a, b)`.
    Tuple {
        name: Option<String>,
        items: Vec<Value>,
    },
    /// `(a: 1)` or `Name(a: 1)`, fields in written order.
    Struct {
        name: Option<String>,
        fields: Vec<Field>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub name_span: Span,
    pub value: Value,
}

impl Value {
    pub fn new(kind: ValueKind, span: Span) -> Value {
        Value { kind, span }
    }

    /// The name of a `Name(...)` struct or tuple, or of a bare identifier.
    pub fn name(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::Tuple { name, .. } | ValueKind::Struct { name, .. } => name.as_deref(),
            ValueKind::Ident(name) => Some(name),
            _ => None,
        }
    }

    /// The span of the name of a `Name(...)` value, which starts the value.
    pub fn name_span(&self) -> Span {
        let len = self.name().map_or(0, str::len) as u32;
        Span {
            end: self.span.start + len,
            ..self.span
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The fields of a struct; `Name()` counts as a struct with none.
    pub fn fields(&self) -> Option<&[Field]> {
        match &self.kind {
            ValueKind::Struct { fields, .. } => Some(fields),
            ValueKind::Tuple { items, .. } if items.is_empty() => Some(&[]),
            ValueKind::Unit => Some(&[]),
            _ => None,
        }
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields()?.iter().find(|f| f.name == name)
    }

    /// What kind of value this is, in words, for error messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            ValueKind::Unit => "unit `()`",
            ValueKind::Bool(_) => "a boolean",
            ValueKind::Int(_) => "an integer",
            ValueKind::Float(_) => "a float",
            ValueKind::Char(_) => "a character",
            ValueKind::Str(_) => "a string",
            ValueKind::Ident(_) => "an identifier",
            ValueKind::List(_) => "a list",
            ValueKind::Map(_) => "a map",
            ValueKind::Tuple { .. } => "a tuple",
            ValueKind::Struct { .. } => "a struct",
        }
    }

    /// A scalar as a short label (strings unquoted), as used in generated names.
    pub fn label(&self) -> Option<String> {
        Some(match &self.kind {
            ValueKind::Bool(b) => b.to_string(),
            ValueKind::Int(i) => i.to_string(),
            ValueKind::Float(f) => f.to_string(),
            ValueKind::Char(c) => c.to_string(),
            ValueKind::Str(s) | ValueKind::Ident(s) => s.clone(),
            _ => return None,
        })
    }

    /// Visits this value and every value inside it, mutably, parents first.
    pub fn walk_mut(&mut self, f: &mut impl FnMut(&mut Value)) {
        f(self);
        match &mut self.kind {
            ValueKind::List(items) | ValueKind::Tuple { items, .. } => {
                items.iter_mut().for_each(|v| v.walk_mut(f))
            }
            ValueKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.walk_mut(f);
                v.walk_mut(f)
            }),
            ValueKind::Struct { fields, .. } => {
                fields.iter_mut().for_each(|field| field.value.walk_mut(f))
            }
            _ => {}
        }
    }

    /// Visits this value and every value inside it, parents first.
    pub fn walk(&self, f: &mut impl FnMut(&Value)) {
        f(self);
        match &self.kind {
            ValueKind::List(items) | ValueKind::Tuple { items, .. } => {
                items.iter().for_each(|v| v.walk(f))
            }
            ValueKind::Map(entries) => entries.iter().for_each(|(k, v)| {
                k.walk(f);
                v.walk(f)
            }),
            ValueKind::Struct { fields, .. } => fields.iter().for_each(|field| field.value.walk(f)),
            _ => {}
        }
    }

    /// The value at a path of struct field names, string map keys and list indices.
    pub fn get_path(&self, path: &[&str]) -> Option<&Value> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        let child = match &self.kind {
            ValueKind::Struct { fields, .. } => &fields.iter().find(|f| f.name == *first)?.value,
            ValueKind::Map(entries) => &entries.iter().find(|(k, _)| k.as_str() == Some(first))?.1,
            ValueKind::List(items) => items.get(first.parse::<usize>().ok()?)?,
            ValueKind::Tuple { items, .. } if items.len() == 1 => return items[0].get_path(path),
            _ => return None,
        };
        child.get_path(rest)
    }
}
