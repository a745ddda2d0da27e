//! Protobuf messages and gRPC stubs generated from `proto/` (committed; no
//! `protoc` or build script needed).
//!
//! Regenerate with `cargo codegen`; `cargo codegen --check` (run by CI)
//! fails when these files are stale.
//!
//! - [`v2`]: the KMS v2 plugin API, `v2.KeyManagementService`.
//! - [`v1beta1`]: the KMS v1 plugin API, `v1beta1.KeyManagementService`.
//! - [`encrypted_object`]: `EncryptedObject`, the KMS v2 storage envelope
//!   (protobuf package `v2`, kept in its own Rust module).
//!
//! Messages that carry a plaintext DEK or seed (`EncryptRequest`,
//! `DecryptResponse` of both APIs) are zeroized on drop and their `Debug`
//! shows only the length. gRPC's own buffers are not zeroized.

use std::fmt;

/// The KMS v2 plugin API (protobuf package `v2`).
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::restriction)]
#[rustfmt::skip]
pub mod v2;

/// The KMS v1 plugin API (protobuf package `v1beta1`).
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::restriction)]
#[rustfmt::skip]
pub mod v1beta1;

/// The KMS v2 storage envelope `EncryptedObject` (protobuf package `v2`).
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::restriction)]
#[rustfmt::skip]
pub mod encrypted_object;

impl fmt::Debug for v2::EncryptRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptRequest")
            .field("plaintext_len", &self.plaintext.len())
            .field("uid", &self.uid)
            .finish()
    }
}

impl fmt::Debug for v2::DecryptResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptResponse")
            .field("plaintext_len", &self.plaintext.len())
            .finish()
    }
}

impl fmt::Debug for v1beta1::EncryptRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptRequest")
            .field("version", &self.version)
            .field("plain_len", &self.plain.len())
            .finish()
    }
}

impl fmt::Debug for v1beta1::DecryptResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptResponse")
            .field("plain_len", &self.plain.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn secret_messages_debug_without_bytes() {
        let request = v2::EncryptRequest {
            plaintext: b"top secret DEK bytes".to_vec(),
            uid: "u1".into(),
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("116"), "{shown}"); // 't' as a byte
        assert!(shown.contains("plaintext_len: 20"), "{shown}");
        let response = v1beta1::DecryptResponse {
            plain: vec![1, 2, 3],
        };
        assert_eq!(format!("{response:?}"), "DecryptResponse { plain_len: 3 }");
    }

    #[test]
    fn encrypted_object_wire_format() {
        // Field numbers and types as in FORMAT.md: encryptedData = 1,
        // keyID = 2, encryptedDEKSource = 3, annotations = 4, type = 5.
        let object = encrypted_object::EncryptedObject {
            encrypted_data: vec![0xAA],
            key_id: "k".into(),
            encrypted_dek_source: vec![0xBB],
            annotations: [("a.io".to_string(), vec![0xCC])].into(),
            encrypted_dek_source_type:
                encrypted_object::EncryptedDekSourceType::HkdfSha256XnonceAesGcmSeed as i32,
        };
        assert_eq!(
            object.encode_to_vec(),
            [
                0x0A, 1, 0xAA, // 1: encryptedData
                0x12, 1, b'k', // 2: keyID
                0x1A, 1, 0xBB, // 3: encryptedDEKSource
                0x22, 9, 0x0A, 4, b'a', b'.', b'i', b'o', 0x12, 1, 0xCC, // 4: map entry
                0x28, 1, // 5: encryptedDEKSourceType
            ]
        );
        assert_eq!(
            encrypted_object::EncryptedObject::decode(&object.encode_to_vec()[..]).expect("decode"),
            object
        );
    }
}
