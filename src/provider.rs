//! The provider trait: one value in, one value out, with the storage key as
//! context.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::{Error, ProviderKind};

/// The etcd key of the object a value belongs to, for example
/// `/registry/secrets/default/db-creds`.
///
/// AES-GCM based providers bind it as additional authenticated data, so a
/// value copied to another key does not decrypt. It is not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StorageKey<'a>(&'a [u8]);

impl<'a> StorageKey<'a> {
    /// Wraps the raw key bytes.
    pub const fn new(key: &'a [u8]) -> Self {
        Self(key)
    }

    /// The key bytes, as bound into AES-GCM.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

impl<'a> From<&'a str> for StorageKey<'a> {
    fn from(key: &'a str) -> Self {
        Self(key.as_bytes())
    }
}

impl<'a> From<&'a [u8]> for StorageKey<'a> {
    fn from(key: &'a [u8]) -> Self {
        Self(key)
    }
}

impl fmt::Debug for StorageKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageKey({:?})", String::from_utf8_lossy(self.0))
    }
}

/// The result of a successful read.
#[derive(Clone, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "what every `Provider` implementation builds"
)]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// Whether the value should be rewritten: it was read by a provider other
    /// than the first, by a key other than its provider's first, or (KMS v2)
    /// under a key ID or DEK source type other than the current one.
    pub stale: bool,
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext_len", &self.plaintext.len())
            .field("stale", &self.stale)
            .finish()
    }
}

/// The future a [`Provider`] returns.
pub type ProviderFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// One way of storing values: identity, aescbc, aesgcm, secretbox, KMS, or
/// your own.
///
/// A provider owns a prefix. [`encrypt`](Provider::encrypt) returns the whole
/// stored value, starting with that prefix; [`decrypt`](Provider::decrypt) is
/// given the whole stored value, and a [`Transformer`](crate::Transformer)
/// calls it only for values that start with [`prefix`](Provider::prefix).
///
/// The contract:
/// - `decrypt(encrypt(p, k), k)` gives back `p` for every plaintext `p` and
///   storage key `k`;
/// - `decrypt` never panics, whatever the bytes, and reports a failure as an
///   [`Error`] that contains neither key material nor plaintext;
/// - `stale` is set when the value should be rewritten by the provider's
///   current key (a read by an older key of the same provider).
///
/// Providers that never wait on I/O also implement [`BlockingProvider`] and
/// return it from [`as_blocking`](Provider::as_blocking); the transformer then
/// calls them directly, without boxing a future, and they work from the
/// blocking API without an async runtime.
pub trait Provider: Send + Sync {
    /// The bytes every value this provider writes starts with, for example
    /// `k8s:enc:aesgcm:v1:` (empty for identity).
    fn prefix(&self) -> &[u8];

    /// What kind of provider this is, for errors and metrics.
    fn kind(&self) -> ProviderKind;

    /// Encrypts `plaintext` into a stored value for `storage_key`.
    fn encrypt<'a>(
        &'a self,
        plaintext: &'a [u8],
        storage_key: StorageKey<'a>,
    ) -> ProviderFuture<'a, Vec<u8>>;

    /// Decrypts a stored value that starts with [`prefix`](Provider::prefix).
    fn decrypt<'a>(
        &'a self,
        stored: &'a [u8],
        storage_key: StorageKey<'a>,
    ) -> ProviderFuture<'a, Decrypted>;

    /// The synchronous form of this provider, if it never waits on I/O.
    fn as_blocking(&self) -> Option<&dyn BlockingProvider> {
        None
    }

    /// What [`encrypt`](Provider::encrypt) would give, when the provider
    /// can tell at once without waiting; `None` when it would wait, and the
    /// transformer then awaits `encrypt`.
    ///
    /// For providers that usually answer from memory but sometimes wait
    /// (KMS v2 writes with its current key): the transformer calls this
    /// first and so skips boxing a future on the common path. The default
    /// is `None`.
    fn encrypt_ready(
        &self,
        plaintext: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Option<Result<Vec<u8>, Error>> {
        let _ = (plaintext, storage_key);
        None
    }

    /// What [`decrypt`](Provider::decrypt) would give, when the provider
    /// can tell at once without waiting (a KMS read whose DEK or seed is
    /// cached, or that is malformed); `None` when it would wait, and the
    /// transformer then awaits `decrypt`. The default is `None`.
    fn decrypt_ready(
        &self,
        stored: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Option<Result<Decrypted, Error>> {
        let _ = (stored, storage_key);
        None
    }
}

/// The synchronous form of a [`Provider`] that never waits on I/O.
///
/// Same contract as [`Provider`].
pub trait BlockingProvider: Send + Sync {
    /// Encrypts `plaintext` into a stored value for `storage_key`.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] when no nonce could be drawn.
    fn encrypt_blocking(
        &self,
        plaintext: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Vec<u8>, Error>;

    /// Decrypts a stored value that starts with the provider's prefix.
    ///
    /// # Errors
    ///
    /// Any read error of the provider: a malformed value, an unknown key name,
    /// or a failed authentication.
    fn decrypt_blocking(
        &self,
        stored: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Decrypted, Error>;

    /// [`encrypt_blocking`](BlockingProvider::encrypt_blocking) into `out`,
    /// replacing its contents: a loop that reuses one buffer stops
    /// allocating once the buffer has grown. On error `out` is empty.
    ///
    /// `out` stays the caller's: whatever its spare capacity held before
    /// (a plaintext, say) is not cleared by this call.
    ///
    /// The default calls `encrypt_blocking`; aesgcm writes in place.
    ///
    /// # Errors
    ///
    /// As [`encrypt_blocking`](BlockingProvider::encrypt_blocking).
    fn encrypt_blocking_into(
        &self,
        plaintext: &[u8],
        storage_key: StorageKey<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        out.clear();
        *out = self.encrypt_blocking(plaintext, storage_key)?;
        Ok(())
    }

    /// [`decrypt_blocking`](BlockingProvider::decrypt_blocking) into `out`,
    /// replacing its contents; returns whether the value is stale. On error
    /// `out` is empty (and what a failed read wrote there was zeroized).
    ///
    /// The default calls `decrypt_blocking`; aesgcm reads in place.
    ///
    /// # Errors
    ///
    /// As [`decrypt_blocking`](BlockingProvider::decrypt_blocking).
    fn decrypt_blocking_into(
        &self,
        stored: &[u8],
        storage_key: StorageKey<'_>,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        out.clear();
        let decrypted = self.decrypt_blocking(stored, storage_key)?;
        *out = decrypted.plaintext;
        Ok(decrypted.stale)
    }
}

/// Implements [`Provider`] for a type that implements [`BlockingProvider`],
/// by running the blocking methods inside ready futures.
macro_rules! provider_via_blocking {
    ($ty:ty, $kind:expr) => {
        impl $crate::Provider for $ty {
            fn prefix(&self) -> &[u8] {
                self.prefix.as_bytes()
            }

            fn kind(&self) -> $crate::ProviderKind {
                $kind
            }

            fn encrypt<'a>(
                &'a self,
                plaintext: &'a [u8],
                storage_key: $crate::StorageKey<'a>,
            ) -> $crate::provider::ProviderFuture<'a, Vec<u8>> {
                Box::pin(std::future::ready(
                    $crate::BlockingProvider::encrypt_blocking(self, plaintext, storage_key),
                ))
            }

            fn decrypt<'a>(
                &'a self,
                stored: &'a [u8],
                storage_key: $crate::StorageKey<'a>,
            ) -> $crate::provider::ProviderFuture<'a, $crate::Decrypted> {
                Box::pin(std::future::ready(
                    $crate::BlockingProvider::decrypt_blocking(self, stored, storage_key),
                ))
            }

            fn as_blocking(&self) -> Option<&dyn $crate::BlockingProvider> {
                Some(self)
            }
        }
    };
}
pub(crate) use provider_via_blocking;
