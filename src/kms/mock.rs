//! [`Base64Kms`]: Kubernetes' insecure base64 test plugin, in process.

use std::collections::BTreeMap;
use std::future::ready;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::kms::{
    EncryptResponse, KmsError, KmsErrorKind, KmsFuture, KmsServiceV1, KmsServiceV2, StatusCode,
    StatusResponse, VersionResponse,
};
use crate::Error;

/// **Insecure, for tests and benchmarks only**: Kubernetes' base64 mock
/// plugin as an in-process KMS v1 and v2 service. DEKs and seeds are
/// "wrapped" by base64-encoding them; anyone who can read a stored value has
/// its key.
///
/// - KMS v2: `Status` answers version `v2`, healthz `ok`, key ID `"1"`;
///   `Encrypt` returns that key ID and the annotation
///   `local-kek.kms.kubernetes.io: encrypted-local-kek`; `Decrypt`
///   base64-decodes whatever the key ID and annotations.
/// - KMS v1: `Version` answers `v1beta1`; base64 both ways.
///
/// Every call answers at once (its future is ready on the first poll), so a
/// provider over it needs no runtime. Values written through it read with
/// the reference implementation's mock plugin, and the other way round.
/// `Base64MockKek` of the `k8s-envelope-kms-plugin` crate serves the same
/// mock over gRPC.
///
/// ```
/// use std::sync::Arc;
/// use k8s_envelope::kms::mock::Base64Kms;
/// use k8s_envelope::kms::{KmsV1Options, KmsV1Provider};
///
/// let provider = KmsV1Provider::new("test", Arc::new(Base64Kms), KmsV1Options::default())?;
/// # Ok::<(), k8s_envelope::Error>(())
/// ```
#[derive(Debug, Default, Clone, Copy)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a unit struct that users name to build it"
)]
pub struct Base64Kms;

impl Base64Kms {
    /// The key ID of every KMS v2 `Status` and `Encrypt`.
    pub const KEY_ID: &'static str = "1";
    /// The annotation key every KMS v2 `Encrypt` returns.
    pub const ANNOTATION_KEY: &'static str = "local-kek.kms.kubernetes.io";
    /// The annotation value every KMS v2 `Encrypt` returns.
    pub const ANNOTATION_VALUE: &'static [u8] = b"encrypted-local-kek";
}

/// Decodes a "wrapped" key; a ciphertext that is not base64 fails as the
/// real mock plugin's `InvalidArgument` status reaches a provider.
fn unwrap_base64(ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    BASE64.decode(ciphertext).map(Zeroizing::new).map_err(|_| {
        Error::Kms(KmsError::new(KmsErrorKind::Status {
            code: StatusCode::InvalidArgument,
            message: "ciphertext is not base64".to_owned(),
        }))
    })
}

impl KmsServiceV2 for Base64Kms {
    fn status(&self) -> KmsFuture<'_, StatusResponse> {
        Box::pin(ready(Ok(StatusResponse {
            version: "v2".to_owned(),
            healthz: "ok".to_owned(),
            key_id: Self::KEY_ID.to_owned(),
        })))
    }

    fn encrypt<'a>(&'a self, _uid: &'a str, plaintext: &'a [u8]) -> KmsFuture<'a, EncryptResponse> {
        Box::pin(ready(Ok(EncryptResponse {
            ciphertext: BASE64.encode(plaintext).into_bytes(),
            key_id: Self::KEY_ID.to_owned(),
            annotations: BTreeMap::from([(
                Self::ANNOTATION_KEY.to_owned(),
                Self::ANNOTATION_VALUE.to_vec(),
            )]),
        })))
    }

    fn decrypt<'a>(
        &'a self,
        _uid: &'a str,
        _key_id: &'a str,
        ciphertext: &'a [u8],
        _annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KmsFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(ready(unwrap_base64(ciphertext)))
    }
}

impl KmsServiceV1 for Base64Kms {
    fn version(&self) -> KmsFuture<'_, VersionResponse> {
        Box::pin(ready(Ok(VersionResponse {
            version: "v1beta1".to_owned(),
            runtime_name: "base64".to_owned(),
            runtime_version: "0".to_owned(),
        })))
    }

    fn encrypt<'a>(&'a self, plaintext: &'a [u8]) -> KmsFuture<'a, Vec<u8>> {
        Box::pin(ready(Ok(BASE64.encode(plaintext).into_bytes())))
    }

    fn decrypt<'a>(&'a self, ciphertext: &'a [u8]) -> KmsFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(ready(unwrap_base64(ciphertext)))
    }
}
