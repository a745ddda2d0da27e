//! etcd's MVCC layout in bbolt: the `key` bucket maps revisions to
//! `mvccpb.KeyValue` messages, the `meta` bucket holds the consistent index
//! and the compaction marks.
//!
//! A revision key is 17 bytes: the main revision (8 bytes, big-endian), `_`,
//! the sub revision (8 bytes, big-endian); a deletion (tombstone) appends
//! `t`. Byte order is revision order, so a walk of the bucket meets a key's
//! writes oldest first, and the last one met is the key as it now is.

use crate::protowire::{put_bytes_field, put_varint, Reader, Value};

/// The bucket of revisions.
pub(crate) const KEY_BUCKET: &[u8] = b"key";
/// The bucket of etcd's own bookkeeping.
pub(crate) const META_BUCKET: &[u8] = b"meta";
/// In `meta`: the raft index applied last (8 bytes, big-endian).
pub(crate) const CONSISTENT_INDEX: &[u8] = b"consistent_index";
/// In `meta`: the revision the last finished compaction kept.
pub(crate) const FINISHED_COMPACT: &[u8] = b"finishedCompactRev";
/// In `meta`: the revision of the last compaction asked for.
pub(crate) const SCHEDULED_COMPACT: &[u8] = b"scheduledCompactRev";

/// A revision key of the `key` bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Revision {
    pub(crate) main: i64,
    pub(crate) sub: i64,
    pub(crate) tombstone: bool,
}

impl Revision {
    /// Parses a revision key; `None` when it is not one.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        let tombstone = match bytes.len() {
            17 => false,
            18 if bytes[17] == b't' => true,
            _ => return None,
        };
        if bytes[8] != b'_' {
            return None;
        }
        let main = i64::from_be_bytes(bytes[0..8].try_into().ok()?);
        let sub = i64::from_be_bytes(bytes[9..17].try_into().ok()?);
        if main < 0 || sub < 0 {
            return None;
        }
        Some(Self {
            main,
            sub,
            tombstone,
        })
    }

    /// The revision key's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18);
        out.extend_from_slice(&self.main.to_be_bytes());
        out.push(b'_');
        out.extend_from_slice(&self.sub.to_be_bytes());
        if self.tombstone {
            out.push(b't');
        }
        out
    }
}

/// An `mvccpb.KeyValue`, borrowed from its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyValue<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) create_revision: i64,
    pub(crate) mod_revision: i64,
    pub(crate) version: i64,
    pub(crate) value: &'a [u8],
    pub(crate) lease: i64,
}

impl<'a> KeyValue<'a> {
    /// Decodes the message; what is wrong, in words, when it is not one.
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, &'static str> {
        let mut kv = Self::default();
        let mut reader = Reader::new(bytes);
        while let Some((field, value)) = reader.field().map_err(|e| e.0)? {
            match (field, value) {
                (1, Value::Bytes(b)) => kv.key = b,
                (5, Value::Bytes(b)) => kv.value = b,
                // int64 fields are varints; a negative one is ten bytes.
                (2, Value::Varint(v)) => kv.create_revision = v as i64,
                (3, Value::Varint(v)) => kv.mod_revision = v as i64,
                (4, Value::Varint(v)) => kv.version = v as i64,
                (6, Value::Varint(v)) => kv.lease = v as i64,
                (1..=6, _) => return Err("a KeyValue field has the wrong wire type"),
                _ => {}
            }
        }
        Ok(kv)
    }

    /// The message as etcd writes it (fields in order, zero values left
    /// out).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.key.len() + self.value.len() + 40);
        if !self.key.is_empty() {
            put_bytes_field(&mut out, 1, self.key);
        }
        for (field, v) in [
            (2u64, self.create_revision),
            (3, self.mod_revision),
            (4, self.version),
        ] {
            if v != 0 {
                put_varint(&mut out, field << 3);
                put_varint(&mut out, v as u64);
            }
        }
        if !self.value.is_empty() {
            put_bytes_field(&mut out, 5, self.value);
        }
        if self.lease != 0 {
            put_varint(&mut out, 6 << 3);
            put_varint(&mut out, self.lease as u64);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_keys_round_trip_and_others_are_refused() {
        let rev = Revision {
            main: 42,
            sub: 3,
            tombstone: false,
        };
        let bytes = rev.encode();
        assert_eq!(bytes.len(), 17);
        assert_eq!(Revision::parse(&bytes), Some(rev));
        let dead = Revision {
            tombstone: true,
            ..rev
        };
        assert_eq!(Revision::parse(&dead.encode()), Some(dead));
        assert_eq!(Revision::parse(b"0000000000000000"), None);
        let mut wrong = bytes.clone();
        wrong[8] = b'-';
        assert_eq!(Revision::parse(&wrong), None);
        let mut marked = bytes;
        marked.push(b'x');
        assert_eq!(Revision::parse(&marked), None);
    }

    #[test]
    fn a_key_value_round_trips() {
        let kv = KeyValue {
            key: b"/registry/secrets/ns/a",
            create_revision: 5,
            mod_revision: 9,
            version: 3,
            value: b"k8s:enc:aescbc:v1:key1:...",
            lease: 7,
        };
        let bytes = kv.encode();
        assert_eq!(KeyValue::decode(&bytes), Ok(kv));
        assert!(KeyValue::decode(&[0x0a, 0x05, b'a']).is_err());
    }
}
