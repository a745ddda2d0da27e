//! Kubernetes objects as kube-apiserver stores them in etcd, decoded:
//! [`decode`].
//!
//! A decrypted value of a built-in resource is the 4-byte magic `k8s\0`
//! and a `runtime.Unknown` message: the object's apiVersion and kind, and
//! its protobuf. Custom resources (and clusters run with
//! `--storage-media-type=application/json`) store JSON; the
//! `CBORServingAndStorage` feature stores CBOR, which starts with the
//! self-described CBOR tag (`d9 d9 f7`). The type always comes from the
//! value itself, never from the key it is stored under.
//!
//! - Secrets and ConfigMaps are decoded whole, to exactly the JSON the API
//!   serves (fields in Go's order, empty ones left out as Go leaves them
//!   out, `data` in base64, times in RFC 3339).
//! - Every other built-in kind is decoded to its apiVersion, kind and full
//!   metadata (`ObjectMeta`; `ListMeta` for Status); the rest of the object
//!   is kept as its protobuf, in base64, under
//!   [`UNDECODED_FIELD`].
//! - JSON is passed through (its members in their order); CBOR is
//!   recognised and reported, not decoded; anything else is not a
//!   Kubernetes object, and is never guessed at.
//!
//! ```
//! use k8s_envelope::object::{decode, Decoded, DecodeOptions};
//!
//! let stored = br#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"}}"#;
//! let Decoded::Object(object) = decode(stored, &DecodeOptions::default())? else {
//!     panic!("a JSON object");
//! };
//! assert_eq!(object.kind(), "Widget");
//! assert!(object.to_json().contains("\"name\": \"w\""));
//! # Ok::<(), k8s_envelope::object::DecodeError>(())
//! ```
//!
//! # Why a decoder of our own
//!
//! The generated protobuf types of every kind (the `k8s-pb` crate) bring
//! prost and about 39,000 lines of code, trail the API by a release (a
//! field they do not know is dropped without a word), and have no JSON;
//! `k8s-openapi` has the JSON types but no protobuf, and writes JSON in
//! another order than the API serves it. Neither gives the API's JSON, so
//! that part would be written here anyway; and the kinds that hold secrets
//! (Secret, ConfigMap) and the metadata every kind shares are a few hundred
//! lines of wire-format reading, checked against Kubernetes' own fixtures
//! of every kind.

mod check;
mod core;
mod meta;
mod tree;

pub use self::check::holds_object;

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use self::meta::{bytes_of_field, fields, spans, text};
use self::tree::{Name, Tree};

/// The magic of a protobuf-encoded object.
pub const PROTOBUF_MAGIC: &[u8] = b"k8s\0";
/// The start of every CBOR-encoded object (tag 55799, self-described CBOR).
pub const CBOR_MAGIC: &[u8] = &[0xd9, 0xd9, 0xf7];
/// The member that holds, in base64, the protobuf fields of an object that
/// are not decoded (everything but the metadata of kinds other than Secret
/// and ConfigMap). No Kubernetes field has a name like it.
pub const UNDECODED_FIELD: &str = "x-k8s-envelope-undecoded-protobuf";

/// The kinds that have no `ObjectMeta` (option and review types, and the
/// like: none is stored in etcd, but a decoder meets them).
const WITHOUT_OBJECT_META: &[&str] = &[
    "AdmissionReview",
    "APIGroup",
    "APIVersions",
    "CreateOptions",
    "DeleteOptions",
    "DeploymentRollback",
    "GetOptions",
    "ListOptions",
    "NodeProxyOptions",
    "PatchOptions",
    "PodAttachOptions",
    "PodExecOptions",
    "PodLogOptions",
    "PodPortForwardOptions",
    "PodProxyOptions",
    "SerializedReference",
    "ServiceProxyOptions",
    "UpdateOptions",
    "WatchEvent",
];

/// A value that looks like a Kubernetes object but is not a valid one.
///
/// The message says what is wrong, never what the value holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid Kubernetes object: {0}")]
pub struct DecodeError(pub(crate) String);

/// How to decode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// Move a Secret's `data` values that are UTF-8 text to `stringData`,
    /// as text; binary values stay in `data`, in base64. The object then
    /// writes back (`kubectl apply`) the same bytes it holds.
    pub decode_data: bool,
}

impl DecodeOptions {
    /// Shows a Secret's UTF-8 `data` values as text, under `stringData`.
    #[must_use]
    pub fn with_decoded_data(mut self) -> Self {
        self.decode_data = true;
        self
    }
}

/// How a value was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// `k8s\0` and a `runtime.Unknown` (built-in resources).
    Protobuf,
    /// JSON (custom resources, or `--storage-media-type=application/json`).
    Json,
}

/// What a stored value is.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Decoded {
    /// A Kubernetes object.
    Object(Object),
    /// CBOR (the `CBORServingAndStorage` feature): recognised, not decoded.
    Cbor,
    /// Not a Kubernetes object (or still encrypted): only its bytes.
    NotAnObject,
}

/// A decoded object. Its `Debug` shows the shape (encoding, apiVersion,
/// kind, name and namespace, field names, value types and lengths), never
/// a value: a Secret's data is plaintext once decrypted.
#[derive(Clone, PartialEq)]
pub struct Object {
    encoding: Encoding,
    api_version: String,
    kind: String,
    complete: bool,
    tree: Tree,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, namespace) = self.name();
        f.debug_struct("Object")
            .field("encoding", &self.encoding)
            .field("api_version", &self.api_version)
            .field("kind", &self.kind)
            .field("name", &name)
            .field("namespace", &namespace)
            .field("complete", &self.complete)
            .field("fields", &self.tree)
            .finish()
    }
}

impl Object {
    /// How it was stored.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Its apiVersion (`v1`, `apps/v1`), as the value says.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// Its kind (`Secret`), as the value says.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Whether every field was decoded (Secret, ConfigMap and JSON); else
    /// the undecoded fields are in [`UNDECODED_FIELD`].
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// `metadata.name` and `metadata.namespace`, where there are.
    pub fn name(&self) -> (Option<&str>, Option<&str>) {
        let Tree::Object(members) = &self.tree else {
            return (None, None);
        };
        let Some((_, Tree::Object(meta))) = members.iter().find(|(k, _)| k == "metadata") else {
            return (None, None);
        };
        let get = |name: &str| {
            meta.iter().find_map(|(k, v)| match v {
                Tree::String(s) if k == name => Some(s.as_str()),
                _ => None,
            })
        };
        (get("name"), get("namespace"))
    }

    /// The JSON the API serves (pretty, two-space indentation, as
    /// `?pretty=true` gives it), without a final newline.
    pub fn to_json(&self) -> String {
        self.tree.to_json(true)
    }

    /// The same on one line.
    pub fn to_json_compact(&self) -> String {
        self.tree.to_json(false)
    }

    /// YAML with sorted keys, as `kubectl get -o yaml` shows it.
    pub fn to_yaml(&self) -> String {
        self.tree.to_yaml()
    }
}

/// Decodes a stored (decrypted) value.
///
/// # Errors
///
/// A value that starts like an object (the protobuf magic, or `{`) but is
/// not a valid one.
pub fn decode(value: &[u8], options: &DecodeOptions) -> Result<Decoded, DecodeError> {
    if let Some(body) = value.strip_prefix(PROTOBUF_MAGIC) {
        return decode_protobuf(body, options).map(Decoded::Object);
    }
    if value.starts_with(CBOR_MAGIC) {
        return Ok(Decoded::Cbor);
    }
    if value.trim_ascii_start().starts_with(b"{") {
        return decode_json(value).map(Decoded::Object);
    }
    Ok(Decoded::NotAnObject)
}

fn decode_json(value: &[u8]) -> Result<Object, DecodeError> {
    let tree: Tree =
        serde_json::from_slice(value).map_err(|_| DecodeError("invalid JSON".to_owned()))?;
    let Tree::Object(members) = &tree else {
        return Err(DecodeError("JSON that is not an object".to_owned()));
    };
    let string = |name: &str| {
        members
            .iter()
            .find_map(|(k, v)| match v {
                Tree::String(s) if k == name => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    Ok(Object {
        encoding: Encoding::Json,
        api_version: string("apiVersion"),
        kind: string("kind"),
        complete: true,
        tree,
    })
}

/// `runtime.Unknown`: typeMeta (1: apiVersion 1, kind 2), raw (2).
fn decode_protobuf(body: &[u8], options: &DecodeOptions) -> Result<Object, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError(
            "the protobuf magic with nothing after it".to_owned(),
        ));
    }
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (field, value) in fields(body)? {
        match field {
            1 => {
                for (f, v) in fields(bytes_of_field(&value, "typeMeta")?)? {
                    match f {
                        1 => api_version = text(bytes_of_field(&v, "apiVersion")?),
                        2 => kind = text(bytes_of_field(&v, "kind")?),
                        _ => {}
                    }
                }
            }
            2 => raw = bytes_of_field(&value, "raw")?,
            _ => {}
        }
    }
    let mut members = Vec::new();
    if !kind.is_empty() {
        members.push(("kind".into(), Tree::String(kind.clone())));
    }
    if !api_version.is_empty() {
        members.push(("apiVersion".into(), Tree::String(api_version.clone())));
    }
    let core_group = api_version == "v1";
    let complete = match kind.as_str() {
        "Secret" if core_group => {
            core::secret(raw, options, &mut members)?;
            true
        }
        "ConfigMap" if core_group => {
            core::config_map(raw, &mut members)?;
            true
        }
        _ => {
            metadata_and_rest(&kind, raw, &mut members)?;
            false
        }
    };
    Ok(Object {
        encoding: Encoding::Protobuf,
        api_version,
        kind,
        complete,
        tree: Tree::Object(members),
    })
}

/// The metadata of any other kind (field 1), and the rest as protobuf.
fn metadata_and_rest(
    kind: &str,
    raw: &[u8],
    members: &mut Vec<(Name, Tree)>,
) -> Result<(), DecodeError> {
    // A kind without a name (a WatchEvent has none) has no metadata either.
    let has_object_meta = !kind.is_empty() && !WITHOUT_OBJECT_META.contains(&kind);
    let mut rest = Vec::new();
    for (field, value, bytes) in spans(raw)? {
        let metadata = match (field, &value) {
            (1, crate::protowire::Value::Bytes(b)) if kind == "Status" => meta::list_meta(b).ok(),
            (1, crate::protowire::Value::Bytes(b)) if has_object_meta => meta::object_meta(b).ok(),
            _ => None,
        };
        match metadata {
            // The last of a repeated field wins, as in Go.
            Some(metadata) => {
                members.retain(|(name, _)| name != "metadata");
                members.push(("metadata".into(), metadata));
            }
            // Not metadata after all (a kind this table does not know):
            // kept with the rest, not guessed at.
            None => rest.extend_from_slice(bytes),
        }
    }
    if !rest.is_empty() {
        members.push((UNDECODED_FIELD.into(), Tree::String(BASE64.encode(rest))));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
