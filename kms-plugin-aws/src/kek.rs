//! [`AwsKek`]: the plugin kit's [`Kek`] on an AWS KMS key. DEKs and seeds
//! are wrapped by AWS KMS Encrypt; the key never leaves AWS.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_envelope_kms_plugin::{Kek, KekError, KekFuture, Wrapped};
use zeroize::Zeroizing;

use crate::key_id::{arn_of, encryption_context};
use crate::key_watch::KeyWatch;

/// The most AWS KMS Encrypt takes (the apiserver sends 32 bytes).
const MAX_PLAINTEXT: usize = 4096;

/// The largest ciphertext AWS KMS Decrypt takes.
const MAX_CIPHERTEXT: usize = 6144;

/// A KEK in AWS KMS.
///
/// - Wrap: KMS Encrypt under the current key's ARN with the encryption
///   context of [`crate::key_id`] (purpose and key ID). The ciphertext is
///   AWS's `CiphertextBlob`, unchanged; no annotations.
/// - Unwrap: KMS Decrypt with the key ARN from the request's key ID, which
///   must be `--key`'s (now or earlier) or an `--old-key`'s, and the same
///   context: AWS refuses a ciphertext of another key or context.
/// - Key ID and health come from the [`KeyWatch`], from memory.
#[derive(Debug)]
pub struct AwsKek {
    watch: Arc<KeyWatch>,
}

impl AwsKek {
    /// Wraps with the keys of `watch`.
    pub fn new(watch: Arc<KeyWatch>) -> Self {
        Self { watch }
    }
}

impl Kek for AwsKek {
    fn key_id(&self) -> KekFuture<'_, String> {
        let key_id = self.watch.current().map(|current| current.key_id);
        Box::pin(std::future::ready(key_id))
    }

    fn healthy(&self) -> KekFuture<'_, ()> {
        let health = self
            .watch
            .health()
            .and_then(|()| self.watch.current().map(drop));
        Box::pin(std::future::ready(health))
    }

    fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> KekFuture<'a, Wrapped> {
        Box::pin(async move {
            if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
                return Err(KekError::invalid_argument(
                    "AWS KMS encrypts 1 to 4096 bytes (a DEK or seed is 32)",
                ));
            }
            let current = self.watch.current()?;
            let context = encryption_context(&current.key_id);
            match self
                .watch
                .kms()
                .encrypt(&current.arn, plaintext, context)
                .await
            {
                Ok(ciphertext) => {
                    self.watch.wrapped(&current.arn);
                    Ok(Wrapped {
                        ciphertext,
                        key_id: current.key_id,
                        annotations: BTreeMap::new(),
                    })
                }
                Err(failure) => {
                    self.watch.wrap_failed(&current.arn, &failure);
                    Err(failure.kek_error("Encrypt"))
                }
            }
        })
    }

    fn unwrap<'a>(
        &'a self,
        key_id: &'a str,
        ciphertext: &'a [u8],
        _annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KekFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(async move {
            let arn = arn_of(key_id).ok_or_else(|| {
                KekError::invalid_argument(
                    "unknown key ID: not one of this plugin's (a KMS key ARN, '#', its material)",
                )
            })?;
            if !self.watch.can_unwrap(arn) {
                return Err(KekError::invalid_argument(
                    "unknown key ID: its key is neither --key nor an --old-key of this plugin",
                ));
            }
            if ciphertext.is_empty() || ciphertext.len() > MAX_CIPHERTEXT {
                return Err(KekError::invalid_argument(
                    "the ciphertext is empty or longer than AWS KMS ciphertexts (6144 bytes)",
                ));
            }
            self.watch
                .kms()
                .decrypt(arn, ciphertext, encryption_context(key_id))
                .await
                .map_err(|failure| failure.kek_error("Decrypt"))
        })
    }
}
