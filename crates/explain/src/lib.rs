//! What a parameter type accepts, described from its definition: fields, variants,
//! types, defaults and doc comments. `#[derive(Explain)]` reads them from the source,
//! beside serde's derives, so `pipe explain` and the guide's reference pages say what
//! the code does, from the one text the code carries.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

pub use explain_derive::Explain;

// The derive names `::explain`, which this crate's own tests need too.
extern crate self as explain;

/// A type that can say what it accepts.
pub trait Explain {
    fn shape() -> Shape;
}

/// What a value of a type is written as.
#[derive(Debug, Clone)]
pub enum Shape {
    /// A number, string, path or boolean, named as a user reads it.
    Leaf(&'static str),
    /// `None` or `Some(…)`.
    Option(Box<Shape>),
    /// `[…]`.
    List(Box<Shape>),
    /// `{"key": …}`, keys being strings.
    Map(Box<Shape>),
    /// `(a, b)`.
    Tuple(Vec<Shape>),
    Struct(Struct),
    Enum(Enum),
}

/// A struct: `(field: value, …)`, or `Name(field: value, …)` for a stage.
#[derive(Debug, Clone)]
pub struct Struct {
    pub name: &'static str,
    pub doc: &'static str,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub doc: &'static str,
    /// The Rust type as written, e.g. `Option<LecamConfig>`.
    pub ty: &'static str,
    pub shape: fn() -> Shape,
    /// The value taken when the field is left out, as RON; `None` when it is required.
    pub default: Option<fn() -> String>,
}

#[derive(Debug, Clone)]
pub struct Enum {
    pub name: &'static str,
    pub doc: &'static str,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone)]
pub struct Variant {
    pub name: &'static str,
    pub doc: &'static str,
    pub fields: VariantFields,
}

#[derive(Debug, Clone)]
pub enum VariantFields {
    /// `Name`.
    Unit,
    /// `Name(a, b)`.
    Tuple(Vec<fn() -> Shape>),
    /// `Name(field: value, …)`.
    Struct(Vec<Field>),
}

impl Shape {
    /// How a value is written, in a few words: `Some(…) or None`, `list of string`.
    pub fn describe(&self) -> String {
        match self {
            Shape::Leaf(name) => name.to_string(),
            Shape::Option(inner) => format!("None or Some({})", inner.describe()),
            Shape::List(inner) => format!("[{}, …]", inner.describe()),
            Shape::Map(inner) => format!("{{\"name\": {}, …}}", inner.describe()),
            Shape::Tuple(items) => {
                let items: Vec<String> = items.iter().map(Shape::describe).collect();
                format!("({})", items.join(", "))
            }
            Shape::Struct(s) => format!("{} (…)", s.name),
            Shape::Enum(e) => {
                let names: Vec<String> = e.variants.iter().map(Variant::written).collect();
                if names.len() <= 6 {
                    names.join(" | ")
                } else {
                    format!("{} (one of {} values)", e.name, names.len())
                }
            }
        }
    }

    /// The struct or enum inside options, lists and maps, where the fields are.
    pub fn named(&self) -> Option<&Shape> {
        match self {
            Shape::Option(inner) | Shape::List(inner) | Shape::Map(inner) => inner.named(),
            Shape::Struct(_) | Shape::Enum(_) => Some(self),
            Shape::Leaf(_) | Shape::Tuple(_) => None,
        }
    }
}

impl Variant {
    /// The variant as a value is written: `Hinge`, `Cifar10(…)`.
    pub fn written(&self) -> String {
        match self.fields {
            VariantFields::Unit => self.name.to_string(),
            _ => format!("{}(…)", self.name),
        }
    }

    /// The fields the variant is written with: its own (`Adc { weight }`), or those of
    /// the one struct it holds (`Cifar10(Place)`); `None` for other variants.
    pub fn fields(&self) -> Option<Vec<Field>> {
        match &self.fields {
            VariantFields::Struct(fields) => Some(fields.clone()),
            VariantFields::Tuple(items) if items.len() == 1 => match items[0]() {
                Shape::Struct(inner) => Some(inner.fields),
                _ => None,
            },
            _ => None,
        }
    }

    /// The shapes of what the variant holds.
    fn contents(&self) -> Vec<Shape> {
        match &self.fields {
            VariantFields::Unit => Vec::new(),
            VariantFields::Tuple(items) => items.iter().map(|s| s()).collect(),
            VariantFields::Struct(fields) => fields.iter().map(|f| (f.shape)()).collect(),
        }
    }
}

/// Every struct and enum the fields reach, through options, lists, maps, tuples,
/// fields and variants: breadth first in the order of the fields (a type after its
/// first mention), each name once.
pub fn reachable(fields: &[Field]) -> Vec<Shape> {
    let mut seen = std::collections::BTreeSet::new();
    let mut queue: std::collections::VecDeque<Shape> = fields.iter().map(|f| (f.shape)()).collect();
    let mut found = Vec::new();
    while let Some(shape) = queue.pop_front() {
        match shape {
            Shape::Option(inner) | Shape::List(inner) | Shape::Map(inner) => {
                queue.push_back(*inner)
            }
            Shape::Tuple(items) => queue.extend(items),
            Shape::Leaf(_) => {}
            Shape::Struct(ref s) if seen.insert(s.name) => {
                queue.extend(s.fields.iter().map(|f| (f.shape)()));
                found.push(shape);
            }
            Shape::Enum(ref e) if seen.insert(e.name) => {
                queue.extend(e.variants.iter().flat_map(Variant::contents));
                found.push(shape);
            }
            Shape::Struct(_) | Shape::Enum(_) => {}
        }
    }
    found
}

/// A field's first paragraph: what a listing shows of it.
pub fn summary(doc: &str) -> String {
    doc.split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A default value as a pipeline file would hold it. Used by the derive.
pub fn ron<T: serde::Serialize>(value: &T) -> String {
    let config = ::ron::ser::PrettyConfig::new()
        .struct_names(false)
        .escape_strings(false)
        .compact_arrays(true)
        .compact_structs(true)
        .compact_maps(true)
        .new_line(" ")
        .indentor("");
    ::ron::ser::to_string_pretty(value, config).unwrap_or_else(|e| format!("({e})"))
}

macro_rules! leaf {
    ($name:literal: $($t:ty),*) => {
        $(impl Explain for $t {
            fn shape() -> Shape {
                Shape::Leaf($name)
            }
        })*
    };
}

leaf!("integer": u8, u16, u32, u64, usize, i32, i64);
leaf!("number": f32, f64);
leaf!("string": String);
leaf!("path": PathBuf);
leaf!("true or false": bool);

impl<T: Explain> Explain for Option<T> {
    fn shape() -> Shape {
        Shape::Option(Box::new(T::shape()))
    }
}

/// A boxed value reads as the value.
impl<T: Explain> Explain for Box<T> {
    fn shape() -> Shape {
        T::shape()
    }
}

impl<T: Explain> Explain for Vec<T> {
    fn shape() -> Shape {
        Shape::List(Box::new(T::shape()))
    }
}

impl<T: Explain> Explain for BTreeMap<String, T> {
    fn shape() -> Shape {
        Shape::Map(Box::new(T::shape()))
    }
}

impl<T: Explain> Explain for HashMap<String, T> {
    fn shape() -> Shape {
        Shape::Map(Box::new(T::shape()))
    }
}

impl<A: Explain, B: Explain> Explain for (A, B) {
    fn shape() -> Shape {
        Shape::Tuple(vec![A::shape(), B::shape()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The derive, on the attributes the parameter types use.
    #[allow(dead_code)]
    #[derive(Default, serde::Serialize, serde::Deserialize, Explain)]
    #[serde(deny_unknown_fields)]
    /// A test config.
    ///
    /// Second paragraph.
    struct Config {
        /// Required, no default.
        name: String,
        /// Off unless set.
        #[serde(default)]
        flag: bool,
        /// Three by default.
        #[serde(default = "three", skip_serializing_if = "is_three")]
        count: u32,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(skip)]
        cache: Vec<u8>,
    }

    fn three() -> u32 {
        3
    }

    fn is_three(n: &u32) -> bool {
        *n == 3
    }

    #[allow(dead_code)]
    #[derive(serde::Serialize, serde::Deserialize, Explain)]
    enum Mode {
        /// The fast one.
        Fast,
        #[serde(rename = "ADC")]
        Adc {
            weight: f64,
        },
        Pair(u32, String),
    }

    #[test]
    fn the_derive_reads_fields_defaults_docs_and_variants() {
        let Shape::Struct(s) = Config::shape() else {
            panic!("a struct")
        };
        assert_eq!(s.name, "Config");
        assert_eq!(s.doc, "A test config.\n\nSecond paragraph.");
        let names: Vec<&str> = s.fields.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            ["name", "flag", "count", "mode"],
            "skipped fields are left out"
        );
        assert!(s.fields[0].default.is_none());
        assert_eq!(s.fields[0].doc, "Required, no default.");
        assert_eq!((s.fields[1].default.unwrap())(), "false");
        assert_eq!((s.fields[2].default.unwrap())(), "3");
        assert_eq!((s.fields[3].default.unwrap())(), "None");
        assert_eq!(s.fields[3].doc, "");
        assert_eq!(s.fields[3].ty, "Option<Mode>");
        let Shape::Option(inner) = (s.fields[3].shape)() else {
            panic!("an option")
        };
        let Shape::Enum(e) = *inner else {
            panic!("an enum")
        };
        let variants: Vec<String> = e.variants.iter().map(Variant::written).collect();
        assert_eq!(variants, ["Fast", "ADC(…)", "Pair(…)"]);
        assert_eq!(e.variants[0].doc, "The fast one.");
        let VariantFields::Struct(fields) = &e.variants[1].fields else {
            panic!()
        };
        assert_eq!(fields[0].name, "weight");
        assert!(fields[0].default.is_none());
    }
}
