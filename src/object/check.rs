//! Whether a stored value decodes, without decoding it: what `verify` asks
//! of every value it reads, at a fraction of the cost of building the
//! object (no string, map or base64 copy is made).
//!
//! It accepts exactly what [`decode`](super::decode) accepts. The decoder
//! refuses a protobuf object only for its wire format: a field that does
//! not parse, a field of the wrong wire type, and in `fieldsV1` JSON that
//! does not parse. So the check is the decoder's messages written as a
//! table of the fields it reads and the wire type it expects of each;
//! fields it does not read are skipped, as it skips them. The tests and
//! the `object` fuzz target hold the two to the same answers.

use serde::de::{self, MapAccess, SeqAccess, Visitor};

use super::{CBOR_MAGIC, PROTOBUF_MAGIC};
use crate::protowire::{Reader, Value};

/// What the decoder expects of a field it reads.
enum Expect {
    /// Length-delimited bytes it keeps as they are (a string, base64 data).
    Bytes,
    /// A varint (an integer, a boolean).
    Varint,
    /// A message it reads in turn.
    Message(&'static [(u64, Expect)]),
    /// `metav1.FieldsV1`: its last `Raw` field, when not empty, is JSON.
    FieldsV1,
}

use Expect::{Bytes, FieldsV1, Message, Varint};

/// `metav1.Time`: seconds (1).
const TIME: &[(u64, Expect)] = &[(1, Varint)];

/// A map entry: key (1), value (2).
const MAP_ENTRY: &[(u64, Expect)] = &[(1, Bytes), (2, Bytes)];

/// `metav1.OwnerReference`.
const OWNER_REFERENCE: &[(u64, Expect)] = &[
    (1, Bytes),
    (3, Bytes),
    (4, Bytes),
    (5, Bytes),
    (6, Varint),
    (7, Varint),
];

/// `metav1.ManagedFieldsEntry`.
const MANAGED_FIELDS: &[(u64, Expect)] = &[
    (1, Bytes),
    (2, Bytes),
    (3, Bytes),
    (4, Message(TIME)),
    (6, Bytes),
    (7, FieldsV1),
    (8, Bytes),
];

/// `metav1.ObjectMeta`.
const OBJECT_META: &[(u64, Expect)] = &[
    (1, Bytes),
    (2, Bytes),
    (3, Bytes),
    (4, Bytes),
    (5, Bytes),
    (6, Bytes),
    (7, Varint),
    (8, Message(TIME)),
    (9, Message(TIME)),
    (10, Varint),
    (11, Message(MAP_ENTRY)),
    (12, Message(MAP_ENTRY)),
    (13, Message(OWNER_REFERENCE)),
    (14, Bytes),
    (17, Message(MANAGED_FIELDS)),
];

/// core/v1 Secret.
const SECRET: &[(u64, Expect)] = &[
    (1, Message(OBJECT_META)),
    (2, Message(MAP_ENTRY)),
    (3, Bytes),
    (4, Message(MAP_ENTRY)),
    (5, Varint),
];

/// core/v1 ConfigMap.
const CONFIG_MAP: &[(u64, Expect)] = &[
    (1, Message(OBJECT_META)),
    (2, Message(MAP_ENTRY)),
    (3, Message(MAP_ENTRY)),
    (4, Varint),
];

/// Whether [`decode`](super::decode) reads `value` as a Kubernetes object
/// ([`Decoded::Object`](super::Decoded::Object), or
/// [`Decoded::Cbor`](super::Decoded::Cbor)), without building it. The
/// decoding options change what an object shows, never whether it decodes.
///
/// ```
/// use k8s_envelope::object::holds_object;
///
/// assert!(holds_object(br#"{"apiVersion":"v1","kind":"Secret"}"#));
/// assert!(!holds_object(b"k8s\0\x0a\x02")); // protobuf cut short
/// assert!(!holds_object(b"plain text"));
/// ```
pub fn holds_object(value: &[u8]) -> bool {
    if let Some(body) = value.strip_prefix(PROTOBUF_MAGIC) {
        return protobuf_object(body).is_some();
    }
    if value.starts_with(CBOR_MAGIC) {
        return true;
    }
    value.trim_ascii_start().starts_with(b"{") && json_object(value)
}

/// `runtime.Unknown`: typeMeta (1: apiVersion 1, kind 2), raw (2); the
/// last of each wins, and which message `raw` is comes from the type.
fn protobuf_object(body: &[u8]) -> Option<()> {
    if body.is_empty() {
        return None;
    }
    let (mut api_version, mut kind, mut raw): (&[u8], &[u8], &[u8]) = (b"", b"", b"");
    let mut fields = Reader::new(body);
    while let Some((field, value)) = fields.field().ok()? {
        match (field, value) {
            (1, Value::Bytes(type_meta)) => {
                let mut type_fields = Reader::new(type_meta);
                while let Some((field, value)) = type_fields.field().ok()? {
                    match (field, value) {
                        (1, Value::Bytes(text)) => api_version = text,
                        (2, Value::Bytes(text)) => kind = text,
                        (1 | 2, _) => return None,
                        _ => {}
                    }
                }
            }
            (2, Value::Bytes(bytes)) => raw = bytes,
            (1 | 2, _) => return None,
            _ => {}
        }
    }
    match (api_version, kind) {
        (b"v1", b"Secret") => message(raw, SECRET),
        (b"v1", b"ConfigMap") => message(raw, CONFIG_MAP),
        // Any other kind: its metadata is decoded if it can be (and kept
        // as protobuf if not), so only the fields' framing must hold.
        _ => message(raw, &[]),
    }
}

/// Whether `bytes` parse as a message whose fields in `expected` are of
/// the wire type the decoder reads them as.
fn message(bytes: &[u8], expected: &[(u64, Expect)]) -> Option<()> {
    let mut fields = Reader::new(bytes);
    while let Some((field, value)) = fields.field().ok()? {
        let Some((_, expect)) = expected.iter().find(|(number, _)| *number == field) else {
            continue;
        };
        match (expect, value) {
            (Varint, Value::Varint(_)) | (Bytes, Value::Bytes(_)) => {}
            (Message(inner), Value::Bytes(bytes)) => message(bytes, inner)?,
            (FieldsV1, Value::Bytes(bytes)) => fields_v1(bytes)?,
            _ => return None,
        }
    }
    Some(())
}

/// `metav1.FieldsV1 { Raw = 1 }`: the last `Raw`, when not empty, is JSON.
fn fields_v1(bytes: &[u8]) -> Option<()> {
    let mut raw: &[u8] = b"";
    let mut fields = Reader::new(bytes);
    while let Some((field, value)) = fields.field().ok()? {
        match (field, value) {
            (1, Value::Bytes(bytes)) => raw = bytes,
            (1, _) => return None,
            _ => {}
        }
    }
    if raw.is_empty() {
        return Some(());
    }
    serde_json::from_slice::<AnyJson>(raw).ok().map(drop)
}

/// Whether `value` is JSON whose top level is an object.
fn json_object(value: &[u8]) -> bool {
    matches!(serde_json::from_slice::<AnyJson>(value), Ok(AnyJson(true)))
}

/// Any JSON value, read as the decoder's tree reads it (numbers parsed,
/// strings unescaped) and thrown away; `true` for an object.
struct AnyJson(bool);

impl<'de> de::Deserialize<'de> for AnyJson {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnyJsonVisitor)
    }
}

struct AnyJsonVisitor;

impl<'de> Visitor<'de> for AnyJsonVisitor {
    type Value = AnyJson;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<AnyJson, E> {
        Ok(AnyJson(false))
    }

    fn visit_bool<E>(self, _: bool) -> Result<AnyJson, E> {
        Ok(AnyJson(false))
    }

    fn visit_i64<E>(self, _: i64) -> Result<AnyJson, E> {
        Ok(AnyJson(false))
    }

    fn visit_u64<E>(self, _: u64) -> Result<AnyJson, E> {
        Ok(AnyJson(false))
    }

    fn visit_f64<E>(self, _: f64) -> Result<AnyJson, E> {
        Ok(AnyJson(false))
    }

    fn visit_str<E>(self, _: &str) -> Result<AnyJson, E> {
        Ok(AnyJson(false))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyJson, A::Error> {
        while seq.next_element::<AnyJson>()?.is_some() {}
        Ok(AnyJson(false))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyJson, A::Error> {
        while map.next_entry::<AnyKey, AnyJson>()?.is_some() {}
        Ok(AnyJson(true))
    }
}

/// An object's member name, read as a string and thrown away.
struct AnyKey;

impl<'de> de::Deserialize<'de> for AnyKey {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(AnyKey)
    }
}

impl<'de> Visitor<'de> for AnyKey {
    type Value = AnyKey;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, _: &str) -> Result<AnyKey, E> {
        Ok(AnyKey)
    }
}
