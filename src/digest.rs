//! Typed blake3 digests: a stage key is not an object digest, and neither is a string.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

/// What a stage's inputs hash to; names its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageKey {}

/// What stored content hashes to: a file's bytes, or a tree's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Object {}

/// A 32-byte blake3 digest of a `T`; printed and serialized as 64 hex digits.
pub struct Digest<T> {
    bytes: [u8; 32],
    kind: PhantomData<T>,
}

impl<T> Digest<T> {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest {
            bytes,
            kind: PhantomData,
        }
    }

    pub fn of(data: &[u8]) -> Self {
        Self::from_hash(blake3::hash(data))
    }

    pub fn from_hash(hash: blake3::Hash) -> Self {
        Self::from_bytes(*hash.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub fn hex(&self) -> String {
        self.to_string()
    }

    /// The first 12 hex digits, for display.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_string()
    }
}

// Manual impls: derives would demand the same of the marker type.
impl<T> Clone for Digest<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Digest<T> {}
impl<T> PartialEq for Digest<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl<T> Eq for Digest<T> {}
impl<T> std::hash::Hash for Digest<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state)
    }
}
impl<T> PartialOrd for Digest<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Digest<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl<T> fmt::Display for Digest<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // blake3's encoder: a byte at a time through `write!` was a tenth of a no-op
        // rerun of 100,000 stages (record and tree paths).
        f.write_str(blake3::Hash::from_bytes(self.bytes).to_hex().as_str())
    }
}

impl<T> fmt::Debug for Digest<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short())
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("`{0}` is not a digest (64 hexadecimal digits)")]
pub struct BadDigest(pub String);

impl<T> FromStr for Digest<T> {
    type Err = BadDigest;

    /// Two digits at a time: a rerun of 100,000 stages parses half a million digests,
    /// and blake3's `from_hex` took a twentieth of it.
    fn from_str(s: &str) -> Result<Self, BadDigest> {
        let bad = || BadDigest(s.to_string());
        let digits: &[u8; 64] = s.as_bytes().try_into().map_err(|_| bad())?;
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (nibble(pair[0]).ok_or_else(bad)? << 4) | nibble(pair[1]).ok_or_else(bad)?;
        }
        Ok(Self::from_bytes(bytes))
    }
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl<T> serde::Serialize for Digest<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de, T> serde::Deserialize<'de> for Digest<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor, not a `String`: a rerun's index holds hundreds of thousands.
        struct Hex<T>(PhantomData<T>);
        impl<T> serde::de::Visitor<'_> for Hex<T> {
            type Value = Digest<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a digest as 64 hexadecimal digits")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Digest<T>, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Hex(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let d: Digest<Object> = Digest::of(b"abc");
        assert_eq!(d.hex(), blake3::hash(b"abc").to_hex().as_str());
        assert_eq!(d.hex().parse::<Digest<Object>>().unwrap(), d);
        assert!("xyz".parse::<Digest<Object>>().is_err());
        assert_eq!(d.hex().to_uppercase().parse::<Digest<Object>>().unwrap(), d);
        let mut wrong = d.hex();
        wrong.replace_range(63.., "g");
        assert!(wrong.parse::<Digest<Object>>().is_err());
        assert!(d.hex()[1..].parse::<Digest<Object>>().is_err());
        assert!(format!("{}0", d.hex()).parse::<Digest<Object>>().is_err());
        assert!("é".repeat(32).parse::<Digest<Object>>().is_err());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest<Object>>(&json).unwrap(), d);
    }
}
