//! Stage keys: what decides whether a stage's last result can be reused.
//!
//! | in the key                         | why                                            |
//! |------------------------------------|------------------------------------------------|
//! | [`SCHEMA`], the encoding version   | a new encoding must not alias old keys         |
//! | kind name and kind version         | a kind's semantics change with its version     |
//! | canonical params                   | the kind's typed params, re-serialized: layout, comments and field order of the RON (and of included files) do not count |
//! | upstream output digests, by role   | not upstream keys: a rerun that yields the same bytes reruns nothing below it (early cutoff) |
//! | external file digests, by role     | content, not path or mtime                     |
//!
//! Not in the key: stage names, paths, hosts, times, GPU ids, the work folder. Renaming a
//! stage or moving the checkout reuses its results.
//!
//! The encoding is length-prefixed and tagged, so no two different inputs encode alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Object, StageKey};

/// Bumped whenever the encoding below changes.
pub const SCHEMA: u32 = 1;

/// Everything a stage key is computed from, in one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInputs {
    pub kind: String,
    pub kind_version: u32,
    pub params: serde_json::Value,
    /// Role → the output digests of the stages it resolved to, in resolution order.
    pub upstream: BTreeMap<String, Vec<Digest<Object>>>,
    /// Role → content digest of the external file or folder.
    pub files: BTreeMap<String, Digest<Object>>,
}

impl KeyInputs {
    pub fn key(&self) -> Digest<StageKey> {
        key_of(
            &self.kind,
            self.kind_version,
            &EncodedParams::new(&self.params),
            self.upstream
                .iter()
                .map(|(role, d)| (role.as_str(), d.iter())),
            self.files.iter().map(|(role, d)| (role.as_str(), d)),
        )
    }
}

/// The key of [`KeyInputs`] given as borrowed pieces, so that a stage's key can be
/// computed without gathering them into maps (most of the cost of planning a rerun).
/// `upstream` and `files` must come in the order of their roles, each role once, as a
/// `BTreeMap` iterates.
pub fn key_of<'a, U, D, F>(
    kind: &str,
    kind_version: u32,
    params: &EncodedParams,
    upstream: U,
    files: F,
) -> Digest<StageKey>
where
    U: ExactSizeIterator<Item = (&'a str, D)>,
    D: ExactSizeIterator<Item = &'a Digest<Object>>,
    F: ExactSizeIterator<Item = (&'a str, &'a Digest<Object>)>,
{
    // Encoded into one buffer, then hashed: the same digest as hashing each piece as it
    // comes, without the cost of a hasher call per piece (half of a key's time).
    let mut e = Encoder(Vec::with_capacity(256));
    e.bytes(b"pipe-stage-key");
    e.u64(SCHEMA.into());
    e.bytes(kind.as_bytes());
    e.u64(kind_version.into());
    e.0.extend_from_slice(&params.0);
    e.u64(upstream.len() as u64);
    for (role, digests) in upstream {
        e.bytes(role.as_bytes());
        e.u64(digests.len() as u64);
        digests.for_each(|d| e.bytes(d.as_bytes()));
    }
    e.u64(files.len() as u64);
    for (role, digest) in files {
        e.bytes(role.as_bytes());
        e.bytes(digest.as_bytes());
    }
    Digest::from_hash(blake3::hash(&e.0))
}

/// Canonical parameters as a stage key encodes them. A pipeline holds its stages'
/// parameters in this form: a `serde_json::Value` of a `Command` takes ten times the
/// memory (a map node is over 600 bytes), which for 100,000 stages was a third of the
/// time to plan them, spent in page faults. [`EncodedParams::value`] gives the value
/// back, exactly: the encoding is tagged and length-prefixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedParams(Box<[u8]>);

impl EncodedParams {
    pub fn new(params: &serde_json::Value) -> EncodedParams {
        let mut e = Encoder(Vec::new());
        e.json(params);
        EncodedParams(e.0.into_boxed_slice())
    }

    pub fn value(&self) -> serde_json::Value {
        let mut d = Decoder(&self.0);
        let value = d.json();
        debug_assert!(d.0.is_empty(), "one value, encoded whole");
        value
    }
}

struct Encoder(Vec<u8>);

impl Encoder {
    fn u64(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn tag(&mut self, t: u8) {
        self.0.extend_from_slice(&[t]);
    }

    fn json(&mut self, v: &serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::Null => self.tag(b'n'),
            Value::Bool(b) => {
                self.tag(b'b');
                self.tag(*b as u8)
            }
            Value::Number(n) => {
                // Integers and floats stay distinct: `1` and `1.0` are different params.
                if let Some(i) = n.as_i64() {
                    self.tag(b'i');
                    self.0.extend_from_slice(&i.to_le_bytes());
                } else if let Some(u) = n.as_u64() {
                    self.tag(b'u');
                    self.u64(u);
                } else {
                    self.tag(b'f');
                    self.0
                        .extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_bits().to_le_bytes());
                }
            }
            Value::String(s) => {
                self.tag(b's');
                self.bytes(s.as_bytes())
            }
            Value::Array(items) => {
                self.tag(b'a');
                self.u64(items.len() as u64);
                items.iter().for_each(|i| self.json(i));
            }
            Value::Object(map) => {
                // serde_json's map is sorted by key: the order fields were written in is gone.
                self.tag(b'o');
                self.u64(map.len() as u64);
                for (k, v) in map {
                    self.bytes(k.as_bytes());
                    self.json(v);
                }
            }
        }
    }
}

/// Reads back what [`Encoder::json`] wrote, which it trusts: the bytes never leave
/// the [`EncodedParams`] that made them.
struct Decoder<'a>(&'a [u8]);

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().expect("8 bytes"))
    }

    fn string(&mut self) -> String {
        let n = self.u64() as usize;
        String::from_utf8(self.take(n).to_vec()).expect("encoded from a string")
    }

    fn json(&mut self) -> serde_json::Value {
        use serde_json::Value;
        match self.take(1)[0] {
            b'n' => Value::Null,
            b'b' => Value::Bool(self.take(1)[0] != 0),
            b'i' => Value::from(self.u64() as i64),
            b'u' => Value::from(self.u64()),
            b'f' => Value::from(f64::from_bits(self.u64())),
            b's' => Value::String(self.string()),
            b'a' => {
                let n = self.u64() as usize;
                Value::Array((0..n).map(|_| self.json()).collect())
            }
            b'o' => {
                let n = self.u64() as usize;
                Value::Object((0..n).map(|_| (self.string(), self.json())).collect())
            }
            tag => unreachable!("no value is encoded with tag {tag}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn inputs() -> KeyInputs {
        KeyInputs {
            kind: "Command".into(),
            kind_version: 1,
            params: json!({"argv": ["echo", "hi"], "gpus": 0}),
            upstream: BTreeMap::from([("prev".into(), vec![Digest::of(b"out")])]),
            files: BTreeMap::from([("data".into(), Digest::of(b"data"))]),
        }
    }

    #[test]
    fn key_is_pinned() {
        // Changing this digest means every user's cache is invalidated: bump SCHEMA.
        assert_eq!(
            inputs().key().hex(),
            "c44e59711f7c571769bfb55ba921a2207ca0280043f75759a2d246eaf5db5fa6"
        );
    }

    #[test]
    fn every_part_counts() {
        let base = inputs().key();
        let mut i = inputs();
        i.kind_version = 2;
        assert_ne!(i.key(), base);
        let mut i = inputs();
        i.params = json!({"argv": ["echo", "hi"], "gpus": 0.0});
        assert_ne!(i.key(), base, "1 and 1.0 differ");
        let mut i = inputs();
        i.params = json!({"argv": ["echohi"], "gpus": 0});
        assert_ne!(i.key(), base, "length prefixes keep boundaries");
        let mut i = inputs();
        i.upstream.insert("prev".into(), vec![Digest::of(b"other")]);
        assert_ne!(i.key(), base);
        let mut i = inputs();
        i.files.clear();
        assert_ne!(i.key(), base);
    }

    #[test]
    fn encoded_params_give_their_value_back() {
        let params = json!({
            "argv": ["sh", "-c", "é {out}"],
            "n": {"neg": -3, "big": u64::MAX, "float": 0.1, "one": 1.0, "zero": 0},
            "flags": [true, false, null],
            "empty": {},
            "none": [],
        });
        let encoded = EncodedParams::new(&params);
        assert_eq!(encoded.value(), params);
        assert!(encoded.value()["n"]["one"].is_f64(), "1.0 stays a float");
        assert!(encoded.value()["n"]["zero"].is_i64());
    }

    #[test]
    fn field_order_does_not_count() {
        let mut i = inputs();
        i.params = serde_json::from_str(r#"{"gpus": 0, "argv": ["echo", "hi"]}"#).unwrap();
        assert_eq!(i.key(), inputs().key());
    }
}
