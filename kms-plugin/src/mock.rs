//! [`Base64MockKek`]: Kubernetes' base64 test plugin. Not encryption.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::{Kek, KekError, KekFuture, Wrapped};

/// **Insecure, for tests only**: "wraps" by base64-encoding, like the mock
/// plugin in Kubernetes' own tests and the reference tool's `kms-plugin`.
/// Anyone who can read the ciphertext has the DEK.
///
/// - KMS v2 `Encrypt`: ciphertext `base64(plaintext)` (standard alphabet,
///   padded), the current key ID, and the annotation
///   `local-kek.kms.kubernetes.io: encrypted-local-kek`.
/// - KMS v2 `Decrypt`: base64-decodes, whatever the key ID and annotations.
/// - KMS v1: base64 both ways, no key ID inside.
/// - Key ID: `"1"`, or read from a file on every call (trimmed; a missing
///   file means `"1"`, an empty file an empty key ID), so a test can rotate
///   it while the plugin runs.
///
/// Values written through it can be read by the reference implementation's
/// mock plugin and the other way round.
#[derive(Debug, Clone, Default)]
pub struct Base64MockKek {
    key_id_file: Option<PathBuf>,
}

impl Base64MockKek {
    /// The annotation key every `Encrypt` returns (Kubernetes' mock's).
    pub const ANNOTATION_KEY: &'static str = "local-kek.kms.kubernetes.io";
    /// The annotation value every `Encrypt` returns.
    pub const ANNOTATION_VALUE: &'static [u8] = b"encrypted-local-kek";
    /// The key ID when no key ID file is set or it is missing.
    pub const DEFAULT_KEY_ID: &'static str = "1";

    /// The mock with the fixed key ID `"1"`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mock reading its key ID from `path` on every call.
    pub fn with_key_id_file(path: impl Into<PathBuf>) -> Self {
        Self {
            key_id_file: Some(path.into()),
        }
    }

    fn current_key_id(&self) -> String {
        match &self.key_id_file {
            Some(path) => match fs::read_to_string(path) {
                Ok(contents) => contents.trim().to_owned(),
                Err(_) => Self::DEFAULT_KEY_ID.to_owned(),
            },
            None => Self::DEFAULT_KEY_ID.to_owned(),
        }
    }
}

fn decode(ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, KekError> {
    let mut plain = Zeroizing::new(Vec::with_capacity(ciphertext.len() / 4 * 3 + 3));
    base64::engine::general_purpose::STANDARD
        .decode_vec(ciphertext, &mut plain)
        .map_err(|_| KekError::invalid_argument("ciphertext is not base64"))?;
    Ok(plain)
}

fn encode(plaintext: &[u8]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(plaintext)
        .into_bytes()
}

impl Kek for Base64MockKek {
    fn key_id(&self) -> KekFuture<'_, String> {
        Box::pin(std::future::ready(Ok(self.current_key_id())))
    }

    fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> KekFuture<'a, Wrapped> {
        Box::pin(std::future::ready(Ok(Wrapped {
            ciphertext: encode(plaintext),
            key_id: self.current_key_id(),
            annotations: BTreeMap::from([(
                Self::ANNOTATION_KEY.to_owned(),
                Self::ANNOTATION_VALUE.to_vec(),
            )]),
        })))
    }

    fn unwrap<'a>(
        &'a self,
        _key_id: &'a str,
        ciphertext: &'a [u8],
        _annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KekFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(std::future::ready(decode(ciphertext)))
    }

    fn wrap_v1<'a>(&'a self, plaintext: &'a [u8]) -> KekFuture<'a, Vec<u8>> {
        Box::pin(std::future::ready(Ok(encode(plaintext))))
    }

    fn unwrap_v1<'a>(&'a self, ciphertext: &'a [u8]) -> KekFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(std::future::ready(decode(ciphertext)))
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;

    /// The same mock as the library's in-process `Base64Kms`: the same
    /// annotation and default key ID (values one wrote, the other reads).
    #[test]
    fn the_same_constants_as_the_in_process_mock() {
        use k8s_envelope::kms::mock::Base64Kms;
        assert_eq!(Base64MockKek::ANNOTATION_KEY, Base64Kms::ANNOTATION_KEY);
        assert_eq!(Base64MockKek::ANNOTATION_VALUE, Base64Kms::ANNOTATION_VALUE);
        assert_eq!(Base64MockKek::DEFAULT_KEY_ID, Base64Kms::KEY_ID);
    }

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn mirrors_the_kubernetes_mock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("key-id");
        let kek = Base64MockKek::with_key_id_file(&file);
        assert_eq!(block_on(kek.key_id()).expect("id"), "1");
        fs::write(&file, "2\n").expect("write");
        let wrapped = block_on(kek.wrap(b"hello")).expect("wrap");
        assert_eq!(wrapped.ciphertext, b"aGVsbG8=");
        assert_eq!(wrapped.key_id, "2");
        assert_eq!(
            wrapped
                .annotations
                .get("local-kek.kms.kubernetes.io")
                .map(Vec::as_slice),
            Some(&b"encrypted-local-kek"[..])
        );
        let plain = block_on(kek.unwrap("any", b"aGVsbG8=", &BTreeMap::new())).expect("unwrap");
        assert_eq!(&plain[..], b"hello");
        assert!(block_on(kek.unwrap("1", b"!!", &BTreeMap::new())).is_err());
        fs::write(&file, "").expect("write");
        assert_eq!(block_on(kek.key_id()).expect("id"), "");
        assert_eq!(block_on(kek.wrap_v1(b"hello")).expect("v1"), b"aGVsbG8=");
        assert_eq!(
            &block_on(kek.unwrap_v1(b"aGVsbG8=")).expect("v1")[..],
            b"hello"
        );
    }
}
