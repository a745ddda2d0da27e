//! The error of the transformation layer: [`Error`].
//!
//! One error type per layer, each saying what it covers:
//!
//! | layer | error |
//! |---|---|
//! | configuration: parse, validate, build | [`ConfigError`] (inside [`Error::Config`]), [`ValidationErrors`](crate::config::ValidationErrors) |
//! | providers and transformers: encrypt, decrypt | [`Error`] |
//! | KMS plugins, called by the KMS providers | [`KmsError`](crate::kms::KmsError) (inside [`Error::Kms`]) |
//! | rotation steps on a configuration | [`RotationError`](crate::rotation::RotationError) |
//! | stores: list, get, compare-and-swap | [`StoreError`](crate::store::StoreError) |
//! | etcd snapshot files (feature `snapshot`) | `snapshot::SnapshotError` |
//! | walks: scan, re-encrypt | [`WalkError`](crate::walk::WalkError), [`ReencryptError`](crate::walk::ReencryptError) |
//! | decoded objects (feature `objects`) | `object::DecodeError` |
//! | the JSON Lines protocol | [`RunError`](crate::jsonl::RunError) |
//!
//! Messages name the provider, the key name or the field path that failed, and
//! never contain key material or plaintext. Decryption failures carry no detail
//! about which check failed, so that an attacker who can submit values learns
//! nothing from the error (for aescbc, this is what keeps a padding oracle shut).

use std::fmt;

use crate::config::ConfigError;

/// What goes wrong while a provider or a transformer encrypts or decrypts a
/// value, or while transformers are built from a configuration (with the
/// configuration's and the KMS plugins' errors inside). The other layers
/// have errors of their own: stores [`StoreError`](crate::store::StoreError),
/// walks [`WalkError`](crate::walk::WalkError) and
/// [`ReencryptError`](crate::walk::ReencryptError), rotation steps
/// [`RotationError`](crate::rotation::RotationError), snapshot files
/// `snapshot::SnapshotError`, decoded objects `object::DecodeError`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading, parsing or validating an EncryptionConfiguration failed.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// No provider's prefix matched the stored value.
    #[error("no matching prefix found")]
    NoMatchingPrefix,

    /// The identity provider was asked to read a value that starts with the
    /// reserved prefix `k8s:enc:`.
    #[error("identity transformer tried to read encrypted data")]
    EncryptedData,

    /// The stored value names a key that the provider does not hold.
    #[error("{provider}: no matching key was found for the stored value: it needs key {key:?}, which the configuration does not have")]
    NoMatchingKey {
        /// The provider that was asked.
        provider: ProviderKind,
        /// The name of the key the value was written with, as its prefix
        /// says (names are not secret): what to put back in the
        /// configuration to read it. Control characters are escaped and a
        /// name longer than 128 characters is cut.
        key: String,
    },

    /// The stored value is structurally invalid for its provider (for example
    /// shorter than a nonce and tag).
    #[error("{provider}: {reason}")]
    Malformed {
        /// The provider whose prefix matched.
        provider: ProviderKind,
        /// What is wrong, in words that contain no data from the value.
        reason: &'static str,
    },

    /// Authentication or decryption failed: a wrong key, a modified value or,
    /// for AES-GCM, a value moved to another storage key.
    #[error("{provider}: decryption failed (wrong key, modified value or wrong storage key)")]
    Decrypt {
        /// The provider whose prefix matched.
        provider: ProviderKind,
    },

    /// A key cannot be used by its provider (wrong length, empty name).
    #[error("{provider}: key {name:?}: {reason}")]
    InvalidKey {
        /// The provider the key was given to.
        provider: ProviderKind,
        /// The key's name (names are not secret).
        name: String,
        /// Why the key was refused.
        reason: String,
    },

    /// A transformer was given an empty provider list.
    #[error("a transformer needs at least one provider")]
    NoProviders,

    /// A static-key provider was given no keys.
    #[error("{provider} provider has no keys")]
    NoKeys {
        /// The provider without keys.
        provider: ProviderKind,
    },

    /// A provider's name cannot be used.
    #[error("{provider} provider name {name:?}: {reason}")]
    InvalidProviderName {
        /// The provider kind.
        provider: ProviderKind,
        /// The refused name.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// More than one provider matched the value's prefix and each failed; the
    /// errors are in provider order.
    #[error("{}", ErrorList(.0))]
    Aggregate(Vec<Error>),

    /// A provider needs the async API (it does network I/O), but a blocking
    /// method was called.
    #[error("{provider} provider can only be used through the async API")]
    RequiresAsync {
        /// The provider that has no blocking implementation.
        provider: ProviderKind,
    },

    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,

    /// A stored value is larger than
    /// [`MAX_STORED_VALUE_LEN`](crate::MAX_STORED_VALUE_LEN): either a value
    /// given to a [`Transformer`](crate::Transformer) to read (no provider
    /// was asked), or the value a write produced (it is not returned, since
    /// no read would take it back).
    #[error("stored value is too large: {len} bytes, the limit is {limit}")]
    StoredValueTooLarge {
        /// The value's size in bytes.
        len: usize,
        /// The limit, [`MAX_STORED_VALUE_LEN`](crate::MAX_STORED_VALUE_LEN).
        limit: usize,
    },

    /// A plaintext given to a [`Transformer`](crate::Transformer) to write is
    /// larger than [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN); nothing
    /// was encrypted.
    #[error("plaintext is too large: {len} bytes, the limit is {limit}")]
    PlaintextTooLarge {
        /// The plaintext's size in bytes.
        len: usize,
        /// The limit, [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN).
        limit: usize,
    },

    /// A KMS plugin call failed (timeout, unreachable plugin, error status,
    /// an invalid answer), a KMS provider refused (not ready, not healthy,
    /// refusing to write), a KMS endpoint is invalid, or a plugin could not
    /// be served; see [`KmsError`](crate::kms::KmsError).
    #[error(transparent)]
    Kms(#[from] crate::kms::KmsError),
}

impl Error {
    /// Wraps remembered errors the way the apiserver does: a single error as
    /// itself, several as an aggregate.
    pub(crate) fn from_list(mut errors: Vec<Error>) -> Error {
        match errors.len() {
            0 => Error::NoMatchingPrefix,
            1 => errors.remove(0),
            _ => Error::Aggregate(errors),
        }
    }
}

/// Formats errors as the apiserver's aggregate does: `[first, second]`.
struct ErrorList<'a>(&'a [Error]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e}")?;
        }
        f.write_str("]")
    }
}

/// The kind of provider an error comes from.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// No encryption.
    Identity,
    /// AES-CBC with PKCS#7 padding.
    AesCbc,
    /// AES-GCM with a random nonce.
    AesGcm,
    /// XSalsa20-Poly1305.
    Secretbox,
    /// KMS envelope encryption, through a plugin speaking the API version
    /// the configuration's `apiVersion` names.
    Kms(KmsApiVersion),
    /// A provider implemented outside this crate.
    Custom,
}

/// The KMS plugin API a `kms` provider speaks: its `apiVersion` in the
/// configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KmsApiVersion {
    /// `v1` (deprecated upstream): a DEK per write, wrapped by the plugin.
    V1,
    /// `v2`: a seed or DEK per key ID, wrapped once.
    V2,
}

impl KmsApiVersion {
    /// `v1` or `v2`, as the configuration's `apiVersion` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            KmsApiVersion::V1 => "v1",
            KmsApiVersion::V2 => "v2",
        }
    }
}

impl fmt::Display for KmsApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProviderKind {
    /// The provider's name as the EncryptionConfiguration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Identity => "identity",
            ProviderKind::AesCbc => "aescbc",
            ProviderKind::AesGcm => "aesgcm",
            ProviderKind::Secretbox => "secretbox",
            ProviderKind::Kms(KmsApiVersion::V1) => "kms v1",
            ProviderKind::Kms(KmsApiVersion::V2) => "kms v2",
            ProviderKind::Custom => "custom",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
