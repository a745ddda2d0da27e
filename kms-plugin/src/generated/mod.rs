//! The KMS plugin APIs' messages and gRPC server stubs, generated from the
//! repository's `proto/` (committed; no `protoc` or build script needed).
//! The client side is generated into the `k8s-envelope` library apart.
//!
//! Regenerate with `cargo codegen`; `cargo codegen --check`
//! (run by CI) fails when these files are stale.
//!
//! - [`v2`]: the KMS v2 plugin API, `v2.KeyManagementService`.
//! - [`v1beta1`]: the KMS v1 plugin API, `v1beta1.KeyManagementService`.
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
}
