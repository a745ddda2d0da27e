//! The KMS v2 storage envelope, `EncryptedObject` (protobuf message of
//! package `v2`), decoded without copying and validated as the apiserver
//! validates it.
//!
//! ```text
//! encryptedData = 1 (bytes)   keyID = 2 (string)   encryptedDEKSource = 3 (bytes)
//! annotations = 4 (map<string, bytes>)   encryptedDEKSourceType = 5 (enum)
//! ```
//!
//! The decoder follows proto3 as Go's protobuf runtime reads it: fields in any
//! order, the last occurrence of a field wins (map entries: per key), unknown
//! fields and fields with an unexpected wire type are skipped, strings must be
//! UTF-8, an unknown enum value is kept (and then refused by validation).
//! Groups (wire types 3 and 4, long deprecated) are refused. Lengths are
//! checked against the input before anything is sliced, so a length claiming
//! gigabytes allocates nothing.

use std::fmt;

use crate::protowire::{put_bytes_field, put_varint, Reader, Value, WireError};
use crate::KmsApiVersion;
use crate::{Error, ProviderKind};

/// The most bytes a key ID may have.
pub const KEY_ID_MAX_LEN: usize = 1024;
/// The most bytes an encrypted DEK source may have.
pub const ENCRYPTED_DEK_SOURCE_MAX_LEN: usize = 1024;
/// The most bytes the annotations may have, keys and values together.
pub const ANNOTATIONS_MAX_LEN: usize = 32 * 1024;
/// The most annotation entries a value may hold as it is decoded, repeats
/// included: a valid key has at least three bytes (`a.b`), so no valid set
/// of annotations has more. Counting as it decodes keeps a hostile value of
/// millions of empty entries from costing time and memory in proportion.
const ANNOTATION_ENTRIES_MAX: usize = ANNOTATIONS_MAX_LEN / 3;

/// What the encrypted DEK source of a KMS v2 value holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DekSourceType {
    /// `AES_GCM_KEY` (0): a DEK used directly as the AES-GCM key; nonces are
    /// 4 random bytes and a counter.
    AesGcmKey,
    /// `HKDF_SHA256_XNONCE_AES_GCM_SEED` (1): a seed; each value's key is
    /// HKDF-Expand(SHA-256, seed, 32 random bytes of info). The default for
    /// writes since Kubernetes 1.29.
    #[default]
    HkdfSha256XnonceAesGcmSeed,
}

impl DekSourceType {
    /// The protobuf enum number.
    pub const fn number(self) -> u32 {
        match self {
            Self::AesGcmKey => 0,
            Self::HkdfSha256XnonceAesGcmSeed => 1,
        }
    }

    fn from_number(number: u64) -> Option<Self> {
        match number {
            0 => Some(Self::AesGcmKey),
            1 => Some(Self::HkdfSha256XnonceAesGcmSeed),
            _ => None,
        }
    }
}

impl fmt::Display for DekSourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AesGcmKey => "AES_GCM_KEY",
            Self::HkdfSha256XnonceAesGcmSeed => "HKDF_SHA256_XNONCE_AES_GCM_SEED",
        })
    }
}

/// A decoded and validated `EncryptedObject`, borrowing from the stored value.
///
/// Public only through the hidden `internal` module, for the fuzz targets.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedObjectRef<'a> {
    pub(crate) encrypted_data: &'a [u8],
    pub(crate) key_id: &'a str,
    pub(crate) encrypted_dek_source: &'a [u8],
    /// Sorted by key, one entry per key (the last one in the input).
    pub(crate) annotations: Annotations<'a>,
    pub(crate) source_type: DekSourceType,
}

impl fmt::Debug for EncryptedObjectRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedObject")
            .field("encrypted_data_len", &self.encrypted_data.len())
            .field("key_id_len", &self.key_id.len())
            .field("encrypted_dek_source_len", &self.encrypted_dek_source.len())
            .field("annotations", &self.annotations.len())
            .field("source_type", &self.source_type)
            .finish()
    }
}

/// A wire-format error of an `EncryptedObject`.
fn wire(WireError(reason): WireError) -> Error {
    malformed(reason)
}

fn malformed(reason: &'static str) -> Error {
    Error::Malformed {
        provider: ProviderKind::Kms(KmsApiVersion::V2),
        reason,
    }
}

impl<'a> EncryptedObjectRef<'a> {
    /// The data encrypted with the DEK (or the key derived from the seed).
    pub fn encrypted_data(&self) -> &'a [u8] {
        self.encrypted_data
    }

    /// The plugin's key ID.
    pub fn key_id(&self) -> &'a str {
        self.key_id
    }

    /// The DEK or seed, as the plugin wrapped it.
    pub fn encrypted_dek_source(&self) -> &'a [u8] {
        self.encrypted_dek_source
    }

    /// The plugin's annotations, sorted by key, one entry per key.
    pub fn annotations(&self) -> &[(&'a str, &'a [u8])] {
        &self.annotations
    }

    /// What the wrapped source is: a DEK or a seed.
    pub fn source_type(&self) -> DekSourceType {
        self.source_type
    }

    /// The hash of the key ID in a stored KMS v2 body (the bytes after the
    /// provider prefix), as [`key_id_hash`](crate::kms::key_id_hash) gives
    /// it; `None` when the body is not a valid envelope. What a value says
    /// about its key, wherever it is reported (scan, metrics, audit).
    pub(crate) fn key_id_hash_of(body: &[u8]) -> Option<String> {
        EncryptedObjectRef::decode(body)
            .ok()
            .map(|object| crate::kms::key_id_hash(object.key_id()))
    }

    /// Decodes and validates a stored body (the bytes after the provider
    /// prefix).
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] when the bytes are not a valid `EncryptedObject`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Error> {
        let object = Self::decode_deferring_annotations(bytes)?;
        object.validate_annotations()?;
        Ok(object)
    }

    /// [`decode`](Self::decode), except that the annotations' names and
    /// sizes are not checked yet: the caller calls
    /// [`validate_annotations`](Self::validate_annotations) unless it knows
    /// them valid (equal to annotations it checked before).
    pub(crate) fn decode_deferring_annotations(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut encrypted_data: &[u8] = &[];
        let mut key_id = "";
        let mut encrypted_dek_source: &[u8] = &[];
        let mut annotations = Annotations::default();
        let mut running = AnnotationsSeen::default();
        let mut source_type = 0u64;

        let mut reader = Reader::new(bytes);
        while let Some((field, value)) = reader.field().map_err(wire)? {
            match (field, value) {
                (1, Value::Bytes(b)) => encrypted_data = b,
                (2, Value::Bytes(b)) => key_id = utf8(b)?,
                (3, Value::Bytes(b)) => encrypted_dek_source = b,
                (4, Value::Bytes(entry)) => {
                    let (key, value) = map_entry(entry)?;
                    running.add(key, value).map_err(malformed)?;
                    annotations.push((key, value));
                }
                // proto3 enums are int32: the varint's low 32 bits, sign-extended.
                (5, Value::Varint(v)) => source_type = u64::from(v as u32),
                _ => {}
            }
        }
        annotations.sort_keeping_last();

        let source_type = if source_type & 0x8000_0000 != 0 {
            None
        } else {
            DekSourceType::from_number(source_type)
        }
        .ok_or_else(|| malformed("unknown encryptedDEKSourceType"))?;
        let object = Self {
            encrypted_data,
            key_id,
            encrypted_dek_source,
            annotations,
            source_type,
        };
        object.validate()?;
        Ok(object)
    }

    /// The canonical encoding, as proto3 writes it (fields in number order,
    /// defaults omitted, map entries sorted by key): what the provider writes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes_field(&mut out, 1, self.encrypted_data);
        out.extend(encode_header(
            self.key_id,
            self.encrypted_dek_source,
            self.annotations.iter().copied(),
            self.source_type,
        ));
        out
    }

    /// The apiserver's `ValidateEncryptedObject`, but for the annotations.
    fn validate(&self) -> Result<(), Error> {
        if self.encrypted_data.is_empty() {
            return Err(malformed("encrypted data is empty"));
        }
        validate_encrypted_dek_source(self.encrypted_dek_source).map_err(malformed)?;
        validate_key_id(self.key_id).map_err(malformed)?;
        Ok(())
    }

    /// The annotations' part of `ValidateEncryptedObject`.
    pub(crate) fn validate_annotations(&self) -> Result<(), Error> {
        validate_annotations(self.annotations.iter().copied()).map_err(malformed)
    }
}

/// The annotation entries met so far in a decode, repeats included, and
/// their bytes.
///
/// Go's protobuf decoder keeps the last of repeated map keys, and the
/// apiserver checks the size of what is left; counting repeats too refuses
/// a value the apiserver would read only when its entries, repeats
/// included, exceed the limit, which no plugin writes (a map is marshalled
/// with each key once).
#[derive(Default)]
struct AnnotationsSeen {
    entries: usize,
    bytes: usize,
}

impl AnnotationsSeen {
    fn add(&mut self, key: &str, value: &[u8]) -> Result<(), &'static str> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(key.len() + value.len());
        if self.bytes > ANNOTATIONS_MAX_LEN {
            return Err("total size of annotations exceeds the max size of 32768 bytes");
        }
        if self.entries > ANNOTATION_ENTRIES_MAX {
            return Err("more annotation entries than 32768 bytes can hold");
        }
        Ok(())
    }
}

/// Annotations as decoded: up to [`Annotations::INLINE`] entries without a
/// heap allocation (plugins set one or two), more in a `Vec`.
#[derive(Clone, Default)]
pub(crate) struct Annotations<'a> {
    inline: [(&'a str, &'a [u8]); Annotations::INLINE],
    inline_len: usize,
    /// Every entry, once there are more than fit inline.
    spilled: Vec<(&'a str, &'a [u8])>,
}

/// Equal when the entries are: slots past `inline_len` may hold entries
/// removed by deduplication, which a derived comparison would see (a fuzzer
/// found this: a re-encoded object compared unequal to itself).
impl PartialEq for Annotations<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Annotations<'_> {}

impl<'a> Annotations<'a> {
    /// Entries held without allocating.
    const INLINE: usize = 4;

    fn push(&mut self, entry: (&'a str, &'a [u8])) {
        if self.spilled.is_empty() && self.inline_len < Self::INLINE {
            self.inline[self.inline_len] = entry;
            self.inline_len += 1;
            return;
        }
        if self.spilled.is_empty() {
            self.spilled.reserve(2 * Self::INLINE);
            self.spilled
                .extend_from_slice(&self.inline[..self.inline_len]);
        }
        self.spilled.push(entry);
    }

    /// Sorts by key and keeps the last occurrence of each key.
    fn sort_keeping_last(&mut self) {
        let entries = self.as_mut_slice();
        // A stable sort keeps input order among equal keys; then keep the
        // last of each run.
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut kept = 0;
        for i in 0..entries.len() {
            if i + 1 < entries.len() && entries[i].0 == entries[i + 1].0 {
                continue;
            }
            entries[kept] = entries[i];
            kept += 1;
        }
        if self.spilled.is_empty() {
            self.inline_len = kept;
        } else {
            self.spilled.truncate(kept);
        }
    }

    fn as_mut_slice(&mut self) -> &mut [(&'a str, &'a [u8])] {
        if self.spilled.is_empty() {
            &mut self.inline[..self.inline_len]
        } else {
            &mut self.spilled
        }
    }
}

impl<'a> std::ops::Deref for Annotations<'a> {
    type Target = [(&'a str, &'a [u8])];

    fn deref(&self) -> &Self::Target {
        if self.spilled.is_empty() {
            &self.inline[..self.inline_len]
        } else {
            &self.spilled
        }
    }
}

/// When `body` starts with an `encryptedData` field: its bytes, and the
/// bytes after it. A value written with a provider's current write key is
/// exactly that field followed by the key's encoded header.
pub(crate) fn split_encrypted_data(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut reader = Reader::new(body);
    match reader.field() {
        Ok(Some((1, Value::Bytes(data)))) => Some((data, reader.rest())),
        _ => None,
    }
}

/// Checks an encrypted DEK source: non-empty, at most 1 KiB.
pub fn validate_encrypted_dek_source(source: &[u8]) -> Result<(), &'static str> {
    if source.is_empty() {
        return Err("encrypted DEK source is empty");
    }
    if source.len() > ENCRYPTED_DEK_SOURCE_MAX_LEN {
        return Err("encrypted DEK source exceeds the max size of 1024 bytes");
    }
    Ok(())
}

/// Checks a key ID: non-empty, at most 1 KiB.
pub fn validate_key_id(key_id: &str) -> Result<(), &'static str> {
    if key_id.is_empty() {
        return Err("keyID is empty");
    }
    if key_id.len() > KEY_ID_MAX_LEN {
        return Err("keyID exceeds the max size of 1024 bytes");
    }
    Ok(())
}

/// Checks annotations: every key a fully qualified domain name, keys and
/// values together at most 32 KiB.
pub fn validate_annotations<'a>(
    annotations: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), &'static str> {
    let mut total = 0usize;
    for (key, value) in annotations {
        if !is_fully_qualified_domain_name(key) {
            return Err("annotation key is not a fully qualified domain name");
        }
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > ANNOTATIONS_MAX_LEN {
        return Err("total size of annotations exceeds the max size of 32768 bytes");
    }
    Ok(())
}

/// Kubernetes' `IsFullyQualifiedDomainName`: an optional trailing dot, then a
/// DNS-1123 subdomain (at most 253 characters) of at least two labels, each
/// label at most 63 characters of `[a-z0-9-]` starting and ending with an
/// alphanumeric.
pub fn is_fully_qualified_domain_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let mut labels = 0;
    for label in name.split('.') {
        labels += 1;
        let bytes = label.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let valid = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes.first().is_some_and(alnum)
            && bytes.last().is_some_and(alnum)
            && bytes.iter().all(|b| alnum(b) || *b == b'-');
        if !valid {
            return false;
        }
    }
    labels >= 2
}

fn utf8(bytes: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(bytes).map_err(|_| malformed("string field is not valid UTF-8"))
}

/// One `map<string, bytes>` entry: key = 1, value = 2.
fn map_entry(entry: &[u8]) -> Result<(&str, &[u8]), Error> {
    let mut key = "";
    let mut value: &[u8] = &[];
    let mut reader = Reader::new(entry);
    while let Some((field, v)) = reader.field().map_err(wire)? {
        match (field, v) {
            (1, Value::Bytes(b)) => key = utf8(b)?,
            (2, Value::Bytes(b)) => value = b,
            _ => {}
        }
    }
    Ok((key, value))
}

/// Encodes fields 2 to 5 of an `EncryptedObject` (everything but the data),
/// as proto3 does: default values omitted, map entries sorted by key.
pub(crate) fn encode_header<'a>(
    key_id: &str,
    encrypted_dek_source: &[u8],
    annotations: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    source_type: DekSourceType,
) -> Vec<u8> {
    let mut out = Vec::new();
    if !key_id.is_empty() {
        put_bytes_field(&mut out, 2, key_id.as_bytes());
    }
    if !encrypted_dek_source.is_empty() {
        put_bytes_field(&mut out, 3, encrypted_dek_source);
    }
    let mut entry = Vec::new();
    for (key, value) in annotations {
        entry.clear();
        if !key.is_empty() {
            put_bytes_field(&mut entry, 1, key.as_bytes());
        }
        if !value.is_empty() {
            put_bytes_field(&mut entry, 2, value);
        }
        put_bytes_field(&mut out, 4, &entry);
    }
    if source_type.number() != 0 {
        put_varint(&mut out, 5 << 3);
        put_varint(&mut out, u64::from(source_type.number()));
    }
    out
}

// Cross-checked against prost's generated types, which come with `grpc`.
#[cfg(all(test, feature = "grpc"))]
mod tests {
    use std::collections::BTreeMap;

    use prost::Message as _;

    use super::*;
    use crate::kms::generated::encrypted_object::EncryptedObject;

    fn prost_bytes(source_type: i32, annotations: &[(&str, &[u8])]) -> Vec<u8> {
        EncryptedObject {
            encrypted_data: b"data".to_vec(),
            key_id: "1".into(),
            encrypted_dek_source: b"src".to_vec(),
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                .collect::<BTreeMap<_, _>>(),
            encrypted_dek_source_type: source_type,
        }
        .encode_to_vec()
    }

    #[test]
    fn decodes_what_prost_encodes() {
        let bytes = prost_bytes(1, &[("b.example.com", b"2"), ("a.example.com", b"1")]);
        let object = EncryptedObjectRef::decode(&bytes).expect("valid");
        assert_eq!(object.encrypted_data, b"data");
        assert_eq!(object.key_id, "1");
        assert_eq!(object.encrypted_dek_source, b"src");
        assert_eq!(
            &object.annotations[..],
            [("a.example.com", &b"1"[..]), ("b.example.com", &b"2"[..])]
        );
        assert_eq!(
            object.source_type,
            DekSourceType::HkdfSha256XnonceAesGcmSeed
        );
    }

    #[test]
    fn more_annotations_than_fit_inline_sort_and_keep_the_last() {
        let names = [
            "f.example.com",
            "b.example.com",
            "e.example.com",
            "a.example.com",
        ];
        for extra in 0..4 {
            let mut entries: Vec<(&str, &[u8])> = names.iter().map(|n| (*n, &b"x"[..])).collect();
            entries.push(("c.example.com", b"c"));
            let mut bytes = prost_bytes(1, &entries);
            // Repeats of earlier keys with new values, on the wire after
            // them: the last one wins.
            for name in names.iter().take(extra) {
                put_bytes_field(&mut bytes, 4, &{
                    let mut e = Vec::new();
                    put_bytes_field(&mut e, 1, name.as_bytes());
                    put_bytes_field(&mut e, 2, b"last");
                    e
                });
            }
            let object = EncryptedObjectRef::decode(&bytes).expect("valid");
            let mut want: Vec<(&str, &[u8])> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, if i < extra { &b"last"[..] } else { &b"x"[..] }))
                .collect();
            want.push(("c.example.com", b"c"));
            want.sort();
            assert_eq!(&object.annotations[..], &want[..], "{extra} repeats");
        }
    }

    #[test]
    fn split_encrypted_data_finds_the_header_after_the_data() {
        let header = encode_header(
            "1",
            b"src",
            [("a.example.com", &b"1"[..])],
            DekSourceType::HkdfSha256XnonceAesGcmSeed,
        );
        let data = vec![9u8; 300]; // a two-byte varint length
        let mut body = Vec::new();
        put_bytes_field(&mut body, 1, &data);
        body.extend_from_slice(&header);
        assert_eq!(split_encrypted_data(&body), Some((&data[..], &header[..])));
        // What decoding the same bytes finds.
        let object = EncryptedObjectRef::decode(&body).expect("valid");
        assert_eq!(object.encrypted_data, &data[..]);
        assert_eq!(&object.annotations[..], [("a.example.com", &b"1"[..])]);
        // Not starting with field 1, or truncated: no split.
        assert_eq!(split_encrypted_data(&header), None);
        assert_eq!(split_encrypted_data(&body[..100]), None);
        assert_eq!(split_encrypted_data(&[]), None);
    }

    #[test]
    fn our_encoding_matches_prost() {
        let annotations: [(&str, &[u8]); 1] = [("a.example.com", b"1")];
        for source_type in [
            DekSourceType::AesGcmKey,
            DekSourceType::HkdfSha256XnonceAesGcmSeed,
        ] {
            let mut ours = Vec::new();
            put_bytes_field(&mut ours, 1, b"data");
            ours.extend(encode_header("1", b"src", annotations, source_type));
            assert_eq!(ours, prost_bytes(source_type.number() as i32, &annotations));
        }
    }

    #[test]
    fn last_occurrence_wins_and_unknown_fields_are_skipped() {
        let mut bytes = prost_bytes(1, &[("a.example.com", b"1")]);
        put_bytes_field(&mut bytes, 2, b"2"); // a second keyID
        put_bytes_field(&mut bytes, 4, &{
            let mut e = Vec::new();
            put_bytes_field(&mut e, 1, b"a.example.com");
            put_bytes_field(&mut e, 2, b"override");
            e
        });
        put_varint(&mut bytes, 9 << 3); // unknown varint field 9
        put_varint(&mut bytes, 300);
        put_varint(&mut bytes, 2 << 3); // keyID with the wrong wire type: skipped
        put_varint(&mut bytes, 7);
        let object = EncryptedObjectRef::decode(&bytes).expect("valid");
        assert_eq!(object.key_id, "2");
        assert_eq!(
            &object.annotations[..],
            [("a.example.com", &b"override"[..])]
        );
    }

    #[test]
    fn refuses_invalid_objects() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (prost_bytes(2, &[]), "unknown encryptedDEKSourceType"),
            (prost_bytes(-1, &[]), "unknown encryptedDEKSourceType"),
            (prost_bytes(1, &[("nodots", b"")]), "fully qualified"),
            (
                prost_bytes(1, &[("Upper.example.com", b"")]),
                "fully qualified",
            ),
            (vec![], "encrypted data is empty"),
            (
                vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
                "exceeds the input",
            ),
            (vec![0x0b], "wire type"),
            (vec![0x00], "field number"),
            (
                vec![
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                ],
                "varint",
            ),
            (
                {
                    let mut b = prost_bytes(1, &[]);
                    put_bytes_field(&mut b, 2, &[0xff]);
                    b
                },
                "UTF-8",
            ),
            (
                {
                    let mut b = prost_bytes(1, &[]);
                    put_bytes_field(&mut b, 2, &[b'k'; 1025]);
                    b
                },
                "keyID exceeds",
            ),
            (
                {
                    let mut b = prost_bytes(1, &[]);
                    put_bytes_field(&mut b, 3, &[7; 1025]);
                    b
                },
                "encrypted DEK source exceeds",
            ),
            (
                prost_bytes(1, &[("a.example.com", &[0; 32 * 1024])]),
                "annotations exceeds",
            ),
        ];
        for (bytes, expected) in cases {
            let error = EncryptedObjectRef::decode(&bytes)
                .expect_err(expected)
                .to_string();
            assert!(
                error.contains(expected),
                "{error:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn domain_names() {
        for ok in [
            "a.b",
            "local-kek.kms.kubernetes.io",
            "a.b.",
            "0.9",
            &format!("{}.b", "a".repeat(63)),
        ] {
            assert!(is_fully_qualified_domain_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "a",
            "a.",
            "-a.b",
            "a-.b",
            "a..b",
            "A.b",
            "a_b.c",
            &format!("{}.b", "a".repeat(64)),
            &format!("{}.b", "a.".repeat(126)),
        ] {
            assert!(!is_fully_qualified_domain_name(bad), "{bad}");
        }
    }
}
