//! `serde` deserialization of a [`Value`] tree, with errors at the offending span.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use crate::{Error, Field, Span, Value, ValueKind};

/// Deserializes a value tree into `T`.
///
/// Structs accept `(field: ...)` with or without a name; enums accept `Variant`,
/// `Variant(...)` and `Variant(field: ...)`; an `Option` accepts `None`, `Some(x)` and a
/// bare `x`.
pub fn from_value<T: de::DeserializeOwned>(value: &Value) -> Result<T, Error> {
    T::deserialize(value)
}

impl Value {
    fn unexpected(&self) -> Unexpected<'_> {
        match &self.kind {
            ValueKind::Unit => Unexpected::Unit,
            ValueKind::Bool(b) => Unexpected::Bool(*b),
            ValueKind::Int(i) => match i64::try_from(*i) {
                Ok(i) => Unexpected::Signed(i),
                Err(_) => Unexpected::Other("a large integer"),
            },
            ValueKind::Float(f) => Unexpected::Float(*f),
            ValueKind::Char(c) => Unexpected::Char(*c),
            ValueKind::Str(s) => Unexpected::Str(s),
            ValueKind::Ident(_) => Unexpected::Other("an identifier"),
            ValueKind::List(_) => Unexpected::Seq,
            ValueKind::Map(_) => Unexpected::Map,
            ValueKind::Tuple { .. } => Unexpected::Other("a tuple"),
            ValueKind::Struct { .. } => Unexpected::Other("a struct"),
        }
    }

    fn invalid<V>(&self, expected: &dyn de::Expected) -> Result<V, Error> {
        Err(de::Error::invalid_type(self.unexpected(), expected))
    }
}

macro_rules! forward_to_any {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_any(visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for &'de Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.kind {
            ValueKind::Unit => visitor.visit_unit(),
            ValueKind::Bool(b) => visitor.visit_bool(*b),
            ValueKind::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
                (Ok(i), _) => visitor.visit_i64(i),
                (_, Ok(u)) => visitor.visit_u64(u),
                _ => visitor.visit_i128(*i),
            },
            ValueKind::Float(f) => visitor.visit_f64(*f),
            ValueKind::Char(c) => visitor.visit_char(*c),
            ValueKind::Str(s) => visitor.visit_str(s),
            ValueKind::Ident(name) if name == "None" => visitor.visit_none(),
            ValueKind::Ident(name) => visitor.visit_str(name),
            ValueKind::Tuple { name, items }
                if name.as_deref() == Some("Some") && items.len() == 1 =>
            {
                visitor.visit_some(&items[0])
            }
            ValueKind::List(items) | ValueKind::Tuple { items, .. } => {
                visitor.visit_seq(Seq::new(items))
            }
            ValueKind::Map(entries) => visitor.visit_map(map(entries)),
            ValueKind::Struct { fields, .. } => visitor.visit_map(struct_fields(fields)),
        };
        result.map_err(|e| e.at(self.span))
    }

    forward_to_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_ignored_any
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.kind {
            ValueKind::Ident(name) if name == "None" => visitor.visit_none(),
            ValueKind::Tuple { name, items }
                if name.as_deref() == Some("Some") && items.len() == 1 =>
            {
                visitor.visit_some(&items[0])
            }
            _ => visitor.visit_some(self),
        };
        result.map_err(|e| e.at(self.span))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.kind {
            ValueKind::Unit => visitor.visit_unit(),
            ValueKind::Tuple { items, .. } if items.is_empty() => visitor.visit_unit(),
            _ => self.invalid(&visitor),
        }
        .map_err(|e| e.at(self.span))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.kind {
            ValueKind::Ident(_) => visitor.visit_unit(),
            _ => self.deserialize_unit(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.kind {
            ValueKind::Tuple {
                name: Some(_),
                items,
            } if items.len() == 1 => visitor.visit_newtype_struct(&items[0]),
            _ => visitor.visit_newtype_struct(self),
        }
        .map_err(|e| e.at(self.span))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.kind {
            ValueKind::List(items) | ValueKind::Tuple { items, .. } => {
                visitor.visit_seq(Seq::new(items))
            }
            ValueKind::Unit => visitor.visit_seq(Seq::new(&[])),
            _ => self.invalid(&visitor),
        }
        .map_err(|e| e.at(self.span))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.kind {
            ValueKind::Map(entries) => visitor.visit_map(map(entries)),
            ValueKind::Struct { fields, .. } => visitor.visit_map(struct_fields(fields)),
            _ => self.invalid(&visitor),
        }
        .map_err(|e| e.at(self.span))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.kind {
            ValueKind::Struct { fields, .. } => visitor.visit_map(struct_fields(fields)),
            ValueKind::Unit => visitor.visit_map(struct_fields(&[])),
            ValueKind::Tuple { items, .. } if items.is_empty() => {
                visitor.visit_map(struct_fields(&[]))
            }
            ValueKind::Map(entries) => visitor.visit_map(map(entries)),
            _ => self.invalid(&visitor),
        }
        // A missing field is only noticed at the end: point at the struct's name or `(`.
        .map_err(|e| {
            e.at(Span {
                end: self.span.start + 1,
                ..self.span
            })
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.kind {
            ValueKind::Ident(_)
            | ValueKind::Tuple { name: Some(_), .. }
            | ValueKind::Struct { name: Some(_), .. } => visitor.visit_enum(Enum(self)),
            ValueKind::Str(_) => visitor.visit_enum(Enum(self)),
            _ => self.invalid(&visitor),
        }
        .map_err(|e| e.at(self.span))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.kind {
            ValueKind::Ident(s) | ValueKind::Str(s) => visitor.visit_str(s),
            _ => self.invalid(&visitor),
        }
        .map_err(|e| e.at(self.span))
    }
}

/// A name (field or variant) being matched against the names a type knows.
struct Name<'a> {
    name: &'a str,
    span: Span,
}

impl<'de> Deserializer<'de> for Name<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor
            .visit_str(self.name)
            .map_err(|e: Error| e.at(self.span))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct Seq<'a> {
    items: std::slice::Iter<'a, Value>,
}

impl<'a> Seq<'a> {
    fn new(items: &'a [Value]) -> Self {
        Seq {
            items: items.iter(),
        }
    }
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.items
            .next()
            .map(|v| seed.deserialize(v).map_err(|e| e.at(v.span)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// A map key: a written value (`{k: v}`) or a field name (`(k: v)`).
enum Key<'a> {
    Value(&'a Value),
    Name(Name<'a>),
}

/// The entries of a map or the fields of a struct, handed out to a visitor.
struct Entries<'a, I> {
    entries: I,
    value: Option<&'a Value>,
}

fn map(entries: &[(Value, Value)]) -> Entries<'_, impl Iterator<Item = (Key<'_>, &Value)>> {
    Entries {
        entries: entries.iter().map(|(k, v)| (Key::Value(k), v)),
        value: None,
    }
}

fn struct_fields(fields: &[Field]) -> Entries<'_, impl Iterator<Item = (Key<'_>, &Value)>> {
    Entries {
        entries: fields.iter().map(|f| {
            let name = Name {
                name: f.name.as_str(),
                span: f.name_span,
            };
            (Key::Name(name), &f.value)
        }),
        value: None,
    }
}

impl<'de, I: Iterator<Item = (Key<'de>, &'de Value)>> MapAccess<'de> for Entries<'de, I> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        match key {
            Key::Value(k) => seed.deserialize(k).map(Some).map_err(|e| e.at(k.span)),
            Key::Name(name) => seed.deserialize(name).map(Some),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .expect("next_value_seed after next_key_seed");
        seed.deserialize(value).map_err(|e| e.at(value.span))
    }
}

struct Enum<'a>(&'a Value);

impl<'de> EnumAccess<'de> for Enum<'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let value = self.0;
        let name = match &value.kind {
            ValueKind::Str(s) => s.as_str(),
            _ => value.name().unwrap_or_default(),
        };
        let span = match &value.kind {
            ValueKind::Str(_) => value.span,
            _ => value.name_span(),
        };
        let variant = seed.deserialize(Name { name, span })?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for Enum<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match &self.0.kind {
            ValueKind::Ident(_) | ValueKind::Str(_) => Ok(()),
            ValueKind::Tuple { items, .. } if items.is_empty() => Ok(()),
            _ => Err(de::Error::invalid_type(
                self.0.unexpected(),
                &"a unit variant",
            ))
            .map_err(|e: Error| e.at(self.0.span)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match &self.0.kind {
            ValueKind::Tuple { items, .. } if items.len() == 1 => {
                seed.deserialize(&items[0]).map_err(|e| e.at(items[0].span))
            }
            // `Kind(field: ...)` for a variant wrapping a struct; `Kind()` for one whose
            // fields all have defaults.
            ValueKind::Struct { .. } => seed.deserialize(self.0),
            ValueKind::Tuple { items, .. } if items.is_empty() => seed.deserialize(self.0),
            ValueKind::Ident(_) => seed
                .deserialize(().into_deserializer())
                .map_err(|e: Error| e.at(self.0.span)),
            _ => Err(de::Error::invalid_type(
                self.0.unexpected(),
                &"a newtype variant",
            ))
            .map_err(|e: Error| e.at(self.0.span)),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match &self.0.kind {
            ValueKind::Tuple { items, .. } => visitor.visit_seq(Seq::new(items)),
            _ => self.0.invalid(&visitor),
        }
        .map_err(|e| e.at(self.0.span))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.0.kind {
            ValueKind::Struct { fields, .. } => visitor.visit_map(struct_fields(fields)),
            ValueKind::Ident(_) => visitor.visit_map(struct_fields(&[])),
            ValueKind::Tuple { items, .. } if items.is_empty() => {
                visitor.visit_map(struct_fields(&[]))
            }
            _ => self.0.invalid(&visitor),
        }
        .map_err(|e| {
            e.at(Span {
                end: self.0.span.start + 1,
                ..self.0.span
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::{FileId, parse};

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Conf {
        steps: u32,
        lr: f64,
        #[serde(default)]
        name: Option<String>,
        device: Device,
        tags: Vec<String>,
        env: BTreeMap<String, String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Device {
        Auto,
        Cpu,
        Cuda(u32),
        Remote { host: String },
    }

    fn de<T: de::DeserializeOwned>(text: &str) -> Result<T, (String, String, Option<String>)> {
        let v = parse(FileId(0), text).unwrap();
        from_value(&v).map_err(|e| {
            let s = e.span().unwrap();
            (
                e.message().to_string(),
                text[s.start as usize..s.end as usize].to_string(),
                e.help().map(str::to_string),
            )
        })
    }

    #[test]
    fn typed_round_trip() {
        let c: Conf = de(r#"Conf(steps: 10, lr: 2e-4, name: "x", device: Cuda(1), tags: ["a"], env: {"K": "V"})"#)
            .unwrap();
        assert_eq!(c.steps, 10);
        assert_eq!(c.device, Device::Cuda(1));
        assert_eq!(c.name.as_deref(), Some("x"));
        let c: Conf =
            de(r#"(steps: 1, lr: 1, device: Remote(host: "h"), tags: [], env: {})"#).unwrap();
        assert_eq!(c.lr, 1.0);
        assert_eq!(c.device, Device::Remote { host: "h".into() });
        let c: Conf =
            de(r#"(steps: 1, lr: 1, name: Some("y"), device: Auto, tags: [], env: {})"#).unwrap();
        assert_eq!(c.name.as_deref(), Some("y"));
    }

    #[test]
    fn errors_carry_the_span_of_the_fault() {
        let (msg, at, help) =
            de::<Conf>(r#"(steps: 1, lr: 1, devise: Auto, tags: [], env: {})"#).unwrap_err();
        assert!(msg.starts_with("unknown field `devise`"), "{msg}");
        assert_eq!(at, "devise");
        assert_eq!(help.as_deref(), Some("did you mean `device`?"));

        let (msg, at, _) =
            de::<Conf>(r#"(steps: "ten", lr: 1, device: Auto, tags: [], env: {})"#).unwrap_err();
        assert_eq!(msg, "invalid type: string \"ten\", expected u32");
        assert_eq!(at, "\"ten\"");

        let (msg, at, _) =
            de::<Conf>(r#"(steps: 1, lr: 1, device: Auto, tags: ["a", 3], env: {})"#).unwrap_err();
        assert!(msg.contains("expected a string"), "{msg}");
        assert_eq!(at, "3");

        let (msg, at, help) =
            de::<Conf>(r#"(steps: 1, lr: 1, device: Cuad(0), tags: [], env: {})"#).unwrap_err();
        assert!(msg.starts_with("unknown variant `Cuad`"), "{msg}");
        assert_eq!(at, "Cuad");
        assert_eq!(help.as_deref(), Some("did you mean `Cuda`?"));

        let (msg, at, _) =
            de::<Conf>(r#"Conf(lr: 1, device: Auto, tags: [], env: {})"#).unwrap_err();
        assert_eq!(msg, "missing field `steps`");
        assert_eq!(at, "C");

        let (msg, _, _) =
            de::<Conf>(r#"(steps: -1, lr: 1, device: Auto, tags: [], env: {})"#).unwrap_err();
        assert!(msg.contains("invalid value: integer `-1`"), "{msg}");
    }

    #[test]
    fn into_json_keeps_structure() {
        let v: BTreeMap<String, serde_json_like::Any> = de(r#"{"a": (x: 1, y: [true])}"#).unwrap();
        assert!(v.contains_key("a"));
    }

    /// Enough of a self-describing type to check `deserialize_any`.
    mod serde_json_like {
        #[derive(Debug, serde::Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        pub enum Any {
            B(bool),
            I(i64),
            S(String),
            L(Vec<Any>),
            M(std::collections::BTreeMap<String, Any>),
        }
    }
}
