//! The `identity` provider: values are stored as they are.

use crate::provider::provider_via_blocking;
use crate::{BlockingProvider, Decrypted, Error, ProviderKind, StorageKey};

/// The prefix reserved for encrypted values, which identity refuses to read.
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// The `identity` provider: writes plaintext, and reads anything that does not
/// start with `k8s:enc:` (the reserved prefix of encrypted data).
///
/// Its prefix is empty, so it matches every value; as in the apiserver, a
/// transformer skips an identity failure silently and tries the next provider.
#[derive(Debug, Default, Clone, Copy)]
pub struct Identity {
    prefix: &'static str,
}

impl Identity {
    /// Creates the provider.
    pub const fn new() -> Self {
        Self { prefix: "" }
    }
}

impl BlockingProvider for Identity {
    fn encrypt_blocking(&self, plaintext: &[u8], _: StorageKey<'_>) -> Result<Vec<u8>, Error> {
        Ok(plaintext.to_vec())
    }

    fn decrypt_blocking(&self, stored: &[u8], _: StorageKey<'_>) -> Result<Decrypted, Error> {
        if stored.starts_with(ENCRYPTED_PREFIX) {
            return Err(Error::EncryptedData);
        }
        Ok(Decrypted {
            plaintext: stored.to_vec(),
            stale: false,
        })
    }
}

provider_via_blocking!(Identity, ProviderKind::Identity);
