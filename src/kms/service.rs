//! The KMS service traits: what a KMS provider needs from a plugin.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::Error;

/// The future a KMS service returns.
pub type KmsFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// A KMS v2 plugin, as the KMS v2 provider sees it: the three calls of
/// `v2.KeyManagementService`.
///
/// [`GrpcClient`](crate::kms::GrpcClient) implements it over the plugin's
/// unix socket; implement it yourself to call a KMS in process, or to put a
/// cache or a fake in front of one.
///
/// The contract:
/// - [`status`](Self::status) reports the plugin's API version (`"v2"`, or
///   the older `"v2beta1"`), its health (`"ok"` when healthy, anything else
///   is a description of the problem) and the key ID the next
///   [`encrypt`](Self::encrypt) will use. It is polled, so it should be cheap.
/// - [`encrypt`](Self::encrypt) wraps a DEK or seed (32 secret bytes) and
///   returns the ciphertext, the key ID that wrapped it and any annotations
///   the plugin needs back to unwrap it. Annotation keys are fully qualified
///   domain names.
/// - [`decrypt`](Self::decrypt) gets exactly what `encrypt` returned
///   (ciphertext, key ID, annotations) and gives back the DEK or seed. It
///   must keep working for ciphertexts wrapped under older key IDs.
/// - `uid` identifies one request in logs and audit; it is never stored.
/// - Every call is bounded in time by the implementation (the gRPC client
///   uses the provider's configured timeout) and fails with
///   [`Error::Kms`](crate::Error::Kms), whose message never contains the
///   plaintext.
/// - Plaintext comes back in a [`Zeroizing`] buffer, wiped on drop.
pub trait KmsServiceV2: Send + Sync {
    /// `Status`: version, health and current key ID.
    fn status(&self) -> KmsFuture<'_, StatusResponse>;

    /// `Encrypt`: wraps `plaintext` (a DEK or seed) with the current key.
    fn encrypt<'a>(&'a self, uid: &'a str, plaintext: &'a [u8]) -> KmsFuture<'a, EncryptResponse>;

    /// `Decrypt`: unwraps what [`encrypt`](Self::encrypt) returned.
    fn decrypt<'a>(
        &'a self,
        uid: &'a str,
        key_id: &'a str,
        ciphertext: &'a [u8],
        annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KmsFuture<'a, Zeroizing<Vec<u8>>>;
}

/// A KMS v1 plugin (deprecated upstream), as the KMS v1 provider sees it: the
/// three calls of `v1beta1.KeyManagementService`.
///
/// The contract:
/// - [`version`](Self::version) reports the API version, which must be
///   `"v1beta1"`, and the plugin's name and version.
/// - [`encrypt`](Self::encrypt) wraps a 32-byte DEK; the ciphertext must
///   carry whatever the plugin needs to unwrap it (v1 has no key ID or
///   annotations), and be at most 65535 bytes (the stored length prefix).
/// - [`decrypt`](Self::decrypt) unwraps it, also after key rotation.
/// - Errors and timeouts as for [`KmsServiceV2`].
pub trait KmsServiceV1: Send + Sync {
    /// `Version`: the API version and the plugin's name and version.
    fn version(&self) -> KmsFuture<'_, VersionResponse>;

    /// `Encrypt`: wraps `plaintext` (a DEK).
    fn encrypt<'a>(&'a self, plaintext: &'a [u8]) -> KmsFuture<'a, Vec<u8>>;

    /// `Decrypt`: unwraps what [`encrypt`](Self::encrypt) returned.
    fn decrypt<'a>(&'a self, ciphertext: &'a [u8]) -> KmsFuture<'a, Zeroizing<Vec<u8>>>;
}

/// The answer to [`KmsServiceV2::status`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the plugin API's message, which every service implementation builds"
)]
pub struct StatusResponse {
    /// The plugin API version: `"v2"` (or `"v2beta1"`).
    pub version: String,
    /// `"ok"` when healthy; otherwise what is wrong.
    pub healthz: String,
    /// The key ID the next encryption will use.
    pub key_id: String,
}

impl StatusResponse {
    /// Whether `healthz` is `"ok"`.
    pub fn is_healthy(&self) -> bool {
        self.healthz == "ok"
    }
}

/// The answer to [`KmsServiceV2::encrypt`].
#[derive(Clone, PartialEq, Eq, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the plugin API's message, which every service implementation builds"
)]
pub struct EncryptResponse {
    /// The wrapped DEK or seed.
    pub ciphertext: Vec<u8>,
    /// The key ID that wrapped it.
    pub key_id: String,
    /// What the plugin needs back on decrypt.
    pub annotations: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for EncryptResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptResponse")
            .field("ciphertext_len", &self.ciphertext.len())
            .field("key_id", &self.key_id)
            .field("annotations", &self.annotations.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The answer to [`KmsServiceV1::version`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the plugin API's message, which every service implementation builds"
)]
pub struct VersionResponse {
    /// The plugin API version; must be `"v1beta1"`.
    pub version: String,
    /// The plugin's name.
    pub runtime_name: String,
    /// The plugin's own version.
    pub runtime_version: String,
}

impl<T: KmsServiceV2 + ?Sized> KmsServiceV2 for Arc<T> {
    fn status(&self) -> KmsFuture<'_, StatusResponse> {
        (**self).status()
    }

    fn encrypt<'a>(&'a self, uid: &'a str, plaintext: &'a [u8]) -> KmsFuture<'a, EncryptResponse> {
        (**self).encrypt(uid, plaintext)
    }

    fn decrypt<'a>(
        &'a self,
        uid: &'a str,
        key_id: &'a str,
        ciphertext: &'a [u8],
        annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KmsFuture<'a, Zeroizing<Vec<u8>>> {
        (**self).decrypt(uid, key_id, ciphertext, annotations)
    }
}

impl<T: KmsServiceV1 + ?Sized> KmsServiceV1 for Arc<T> {
    fn version(&self) -> KmsFuture<'_, VersionResponse> {
        (**self).version()
    }

    fn encrypt<'a>(&'a self, plaintext: &'a [u8]) -> KmsFuture<'a, Vec<u8>> {
        (**self).encrypt(plaintext)
    }

    fn decrypt<'a>(&'a self, ciphertext: &'a [u8]) -> KmsFuture<'a, Zeroizing<Vec<u8>>> {
        (**self).decrypt(ciphertext)
    }
}
