//! The KMS v2 storage envelope (`EncryptedObject`, protobuf package `v2` of
//! k8s.io/kms/apis/v2 `api.proto`'s storage sibling), written here by hand
//! from the format (FORMAT.md) and apart from the library's generated code:
//! tests that read or craft stored KMS v2 values check the library against
//! an independent definition.

use std::collections::BTreeMap;

/// One KMS v2 value after its `k8s:enc:kms:v2:NAME:` prefix.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EncryptedObject {
    /// The value sealed with the DEK (or a key derived from the seed).
    #[prost(bytes = "vec", tag = "1")]
    pub encrypted_data: Vec<u8>,
    /// The plugin's key ID when it wrapped the DEK or seed.
    #[prost(string, tag = "2")]
    pub key_id: String,
    /// The DEK or seed as the plugin wrapped it.
    #[prost(bytes = "vec", tag = "3")]
    pub encrypted_dek_source: Vec<u8>,
    /// The plugin's annotations.
    #[prost(btree_map = "string, bytes", tag = "4")]
    pub annotations: BTreeMap<String, Vec<u8>>,
    /// What `encrypted_dek_source` holds ([`EncryptedDekSourceType`]).
    #[prost(enumeration = "EncryptedDekSourceType", tag = "5")]
    pub encrypted_dek_source_type: i32,
}

/// What a KMS v2 value's wrapped DEK source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum EncryptedDekSourceType {
    /// A 32-byte AES-GCM key used as is.
    AesGcmKey = 0,
    /// A 32-byte seed; each value's key is HKDF-SHA256(seed, random info).
    HkdfSha256XnonceAesGcmSeed = 1,
}
