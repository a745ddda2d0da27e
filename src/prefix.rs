//! Prefixes: the one parser of a stored value's `k8s:enc:` prefix
//! ([`StoredPrefix`]), and prefix dispatch ([`Transformer`]): write with the
//! first provider, read with whichever provider's prefix matches, and
//! report staleness.

use std::fmt;
use std::sync::Arc;

use crate::providers::{Identity, ENCRYPTED_PREFIX};
use crate::KmsApiVersion;
use crate::{BlockingProvider, Decrypted, Error, Provider, ProviderKind, StorageKey};

/// What a stored value's prefix says about the provider that wrote it,
/// borrowed from the value; nothing is decrypted.
///
/// The one reading of `k8s:enc:<provider>:<version>:<name>:` in this crate,
/// under the scan's [`ValueOrigin`](crate::walk::ValueOrigin) and the
/// observer's audit fields alike. It follows the apiserver: a provider reads
/// a value only if the value starts with its whole prefix, trailing colon
/// included, so `k8s:enc:aesgcm:v1:key1` (no colon after the key name) is
/// no provider's and parses as [`StoredPrefix::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoredPrefix<'a> {
    /// No `k8s:enc:` prefix: plaintext, as identity writes it.
    Identity,
    /// A provider this crate knows, with the name in its prefix (the key's
    /// for static keys, the provider's for KMS) and the body after it.
    Known {
        /// aescbc, aesgcm, secretbox, kms v1 or kms v2.
        kind: ProviderKind,
        /// The name between the version and the last colon.
        name: &'a [u8],
        /// What follows the prefix.
        body: &'a [u8],
    },
    /// A `k8s:enc:` prefix of a provider this crate does not know, or one
    /// cut short.
    Unknown,
}

impl<'a> StoredPrefix<'a> {
    /// Reads the prefix of `stored`.
    pub(crate) fn parse(stored: &'a [u8]) -> Self {
        let Some(rest) = stored.strip_prefix(ENCRYPTED_PREFIX) else {
            return StoredPrefix::Identity;
        };
        let mut fields = rest.splitn(4, |&b| b == b':');
        let (Some(provider), Some(version), Some(name), Some(body)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return StoredPrefix::Unknown;
        };
        let kind = match (provider, version) {
            (b"aescbc", b"v1") => ProviderKind::AesCbc,
            (b"aesgcm", b"v1") => ProviderKind::AesGcm,
            (b"secretbox", b"v1") => ProviderKind::Secretbox,
            (b"kms", b"v1") => ProviderKind::Kms(KmsApiVersion::V1),
            (b"kms", b"v2") => ProviderKind::Kms(KmsApiVersion::V2),
            _ => return StoredPrefix::Unknown,
        };
        StoredPrefix::Known { kind, name, body }
    }
}

/// The largest stored value a [`Transformer`] reads or writes: 16 MiB.
///
/// Kubernetes stores far less: etcd refuses requests above 1.5 MiB unless
/// `--max-request-bytes` is raised, and advises against going beyond 10 MiB.
/// A longer value cannot have been written by an apiserver, so a read refuses
/// it with [`Error::StoredValueTooLarge`] before any provider sees it, and no
/// length inside a hostile value can make a read allocate more than this.
pub const MAX_STORED_VALUE_LEN: usize = 16 * 1024 * 1024;

/// The largest plaintext a [`Transformer`] writes: 15 MiB.
///
/// One mebibyte below [`MAX_STORED_VALUE_LEN`], which leaves room for every
/// provider's framing (a KMS v1 wrapped DEK takes at most 64 KiB, a KMS v2
/// header at most 35 KiB), so that whatever a write returns can be read back.
/// A longer plaintext is [`Error::PlaintextTooLarge`]; a write whose output
/// would still exceed the stored limit (a key name of a mebibyte) is
/// [`Error::StoredValueTooLarge`].
pub const MAX_PLAINTEXT_LEN: usize = MAX_STORED_VALUE_LEN - 1024 * 1024;

/// An ordered list of providers, as one `providers:` list of an
/// EncryptionConfiguration resource rule.
///
/// - Writes use the first provider.
/// - Reads walk the providers in order; each one whose prefix matches the
///   value gets to decrypt it. An error from a provider with a prefix is
///   remembered and the walk goes on; a failure of identity (empty prefix) is
///   skipped silently. The first success wins; if none succeeds, the
///   remembered errors are returned, or [`Error::NoMatchingPrefix`].
/// - A read is stale when the provider that read it is not the first, or when
///   the provider itself says so (an older key).
/// - Sizes are bounded: a stored value may have at most
///   [`MAX_STORED_VALUE_LEN`] bytes and a plaintext [`MAX_PLAINTEXT_LEN`]
///   (providers called directly do not check).
///
/// ```
/// use std::sync::Arc;
/// use k8s_envelope::{AesCbc, AesGcm, NamedKey, SecretKey, Transformer};
///
/// let old = Transformer::new(vec![Arc::new(AesCbc::new(vec![NamedKey::new("k1", SecretKey::generate(32)?)])?)])?;
/// let stored = old.encrypt_blocking(b"hello", "/registry/secrets/ns/a".into())?;
///
/// // Put aesgcm first: old values still read, and are reported stale.
/// let mut providers = vec![Arc::new(AesGcm::new(vec![NamedKey::new("k2", SecretKey::generate(32)?)])?) as _];
/// providers.extend(old.providers().iter().cloned());
/// let new = Transformer::new(providers)?;
/// let read = new.decrypt_blocking(&stored, "/registry/secrets/ns/a".into())?;
/// assert_eq!(read.plaintext, b"hello");
/// assert!(read.stale);
/// # Ok::<(), k8s_envelope::Error>(())
/// ```
#[derive(Clone)]
pub struct Transformer {
    providers: Arc<[Arc<dyn Provider>]>,
}

impl Transformer {
    /// Creates a transformer over `providers`, the first of which writes.
    ///
    /// # Errors
    ///
    /// [`Error::NoProviders`] when the list is empty.
    pub fn new(providers: Vec<Arc<dyn Provider>>) -> Result<Self, Error> {
        if providers.is_empty() {
            return Err(Error::NoProviders);
        }
        Ok(Self {
            providers: providers.into(),
        })
    }

    /// The transformer for a resource that no rule covers: identity only,
    /// which stores plaintext and refuses to read `k8s:enc:` values.
    pub fn identity() -> Self {
        Self {
            providers: Arc::from([Arc::new(Identity::new()) as Arc<dyn Provider>]),
        }
    }

    /// The providers, in order.
    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    /// Whether a write through this transformer stores the plaintext as it
    /// is: its first provider is identity. That is the transformer of a rule
    /// that writes with identity, and of a resource no rule covers, a typo
    /// such as `for_resource("secret")` included: kube-apiserver stores such
    /// a resource in plaintext, and so does this crate. Check it before
    /// trusting a write to be encrypted.
    ///
    /// ```
    /// # let config = k8s_envelope::EncryptionConfiguration::from_yaml(br#"
    /// # kind: EncryptionConfiguration
    /// # apiVersion: apiserver.config.k8s.io/v1
    /// # resources:
    /// #   - resources: [secrets]
    /// #     providers: [{aesgcm: {keys: [{name: k, secret: c2VjcmV0IGlzIHNlY3VyZQ==}]}}]
    /// # "#)?;
    /// let transformers = config.build()?;
    /// assert!(!transformers.for_resource("secrets").writes_plaintext());
    /// assert!(transformers.for_resource("secret").writes_plaintext()); // no rule
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writes_plaintext(&self) -> bool {
        self.providers
            .first()
            .is_none_or(|p| p.kind() == ProviderKind::Identity)
    }

    /// Encrypts with the first provider.
    ///
    /// # Errors
    ///
    /// [`Error::PlaintextTooLarge`] or [`Error::StoredValueTooLarge`] (see
    /// [`MAX_PLAINTEXT_LEN`]), or the first provider's error.
    pub async fn encrypt(
        &self,
        plaintext: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Vec<u8>, Error> {
        check_plaintext_len(plaintext)?;
        let writer = self.writer();
        let stored = match writer.as_blocking() {
            Some(blocking) => blocking.encrypt_blocking(plaintext, storage_key),
            None => match writer.encrypt_ready(plaintext, storage_key) {
                Some(result) => result,
                None => writer.encrypt(plaintext, storage_key).await,
            },
        }?;
        check_written_len(stored)
    }

    /// Decrypts a stored value with the first provider that matches and
    /// succeeds.
    ///
    /// # Errors
    ///
    /// [`Error::StoredValueTooLarge`] for a value longer than
    /// [`MAX_STORED_VALUE_LEN`]; else the errors of every matching provider
    /// that failed, or [`Error::NoMatchingPrefix`].
    pub async fn decrypt(
        &self,
        stored: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Decrypted, Error> {
        check_stored_len(stored)?;
        let mut walk = ReadWalk::default();
        for (index, provider) in self.matching(stored) {
            let result = match provider.as_blocking() {
                Some(blocking) => blocking.decrypt_blocking(stored, storage_key),
                None => match provider.decrypt_ready(stored, storage_key) {
                    Some(result) => result,
                    None => provider.decrypt(stored, storage_key).await,
                },
            };
            if let Some(decrypted) = walk.step(index, provider.as_ref(), result) {
                return Ok(decrypted);
            }
        }
        Err(walk.finish())
    }

    /// [`encrypt`](Self::encrypt) without an async runtime.
    ///
    /// # Errors
    ///
    /// As [`encrypt`](Self::encrypt), and [`Error::RequiresAsync`] when the
    /// first provider has no blocking form (KMS).
    pub fn encrypt_blocking(
        &self,
        plaintext: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Vec<u8>, Error> {
        check_plaintext_len(plaintext)?;
        check_written_len(blocking(self.writer())?.encrypt_blocking(plaintext, storage_key)?)
    }

    /// [`decrypt`](Self::decrypt) without an async runtime. A matching
    /// provider without a blocking form counts as a failed provider
    /// ([`Error::RequiresAsync`]).
    ///
    /// # Errors
    ///
    /// As [`decrypt`](Self::decrypt).
    pub fn decrypt_blocking(
        &self,
        stored: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Decrypted, Error> {
        check_stored_len(stored)?;
        let mut walk = ReadWalk::default();
        for (index, provider) in self.matching(stored) {
            let result = blocking(provider.as_ref())
                .and_then(|blocking| blocking.decrypt_blocking(stored, storage_key));
            if let Some(decrypted) = walk.step(index, provider.as_ref(), result) {
                return Ok(decrypted);
            }
        }
        Err(walk.finish())
    }

    /// [`encrypt_blocking`](Self::encrypt_blocking) into `out`, replacing
    /// its contents: a loop that reuses one buffer stops allocating once the
    /// buffer has grown (with aesgcm; other providers may still allocate).
    /// On error `out` is empty.
    ///
    /// ```
    /// use k8s_envelope::{AesGcm, NamedKey, SecretKey, Transformer};
    /// use std::sync::Arc;
    ///
    /// let aesgcm = AesGcm::new(vec![NamedKey::new("key1", SecretKey::generate(32)?)])?;
    /// let transformer = Transformer::new(vec![Arc::new(aesgcm)])?;
    /// let (mut stored, mut plaintext) = (Vec::new(), Vec::new());
    /// for name in ["a", "b", "c"] {
    ///     let key = format!("/registry/secrets/ns/{name}");
    ///     transformer.encrypt_blocking_into(name.as_bytes(), key.as_str().into(), &mut stored)?;
    ///     let stale = transformer.decrypt_blocking_into(&stored, key.as_str().into(), &mut plaintext)?;
    ///     assert_eq!((plaintext.as_slice(), stale), (name.as_bytes(), false));
    /// }
    /// # Ok::<(), k8s_envelope::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`encrypt_blocking`](Self::encrypt_blocking).
    pub fn encrypt_blocking_into(
        &self,
        plaintext: &[u8],
        storage_key: StorageKey<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let written = check_plaintext_len(plaintext)
            .and_then(|()| blocking(self.writer()))
            .and_then(|writer| writer.encrypt_blocking_into(plaintext, storage_key, out))
            .and_then(|()| check_stored_len(out));
        if written.is_err() {
            out.clear();
        }
        written
    }

    /// [`decrypt_blocking`](Self::decrypt_blocking) into `out`, replacing
    /// its contents; returns whether the value is stale. On error `out` is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`decrypt`](Self::decrypt).
    pub fn decrypt_blocking_into(
        &self,
        stored: &[u8],
        storage_key: StorageKey<'_>,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        out.clear();
        check_stored_len(stored)?;
        let mut walk = ReadWalk::default();
        for (index, provider) in self.matching(stored) {
            // The plaintext is in `out`; the walk needs only the staleness.
            let result = blocking(provider.as_ref()).and_then(|blocking| {
                blocking
                    .decrypt_blocking_into(stored, storage_key, out)
                    .map(|stale| Decrypted {
                        plaintext: Vec::new(),
                        stale,
                    })
            });
            if let Some(decrypted) = walk.step(index, provider.as_ref(), result) {
                return Ok(decrypted.stale);
            }
        }
        Err(walk.finish())
    }

    fn writer(&self) -> &dyn Provider {
        // `new` refuses an empty list and `identity` has one provider.
        self.providers[0].as_ref()
    }

    fn matching<'a>(
        &'a self,
        stored: &'a [u8],
    ) -> impl Iterator<Item = (usize, &'a Arc<dyn Provider>)> + 'a {
        self.providers
            .iter()
            .enumerate()
            .filter(move |(_, p)| has_prefix(stored, p.prefix()))
    }
}

impl fmt::Debug for Transformer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.providers.iter().map(|p| p.kind()))
            .finish()
    }
}

/// `stored.starts_with(prefix)`, without comparing an empty prefix: its
/// pointer may be dangling (`0x1`), and glibc's AVX-512 `memcmp` then takes a
/// masked load from that address, whose fault suppression costs about 120 ns
/// on this kind of machine (every read through identity paid it).
fn has_prefix(stored: &[u8], prefix: &[u8]) -> bool {
    prefix.is_empty() || stored.starts_with(prefix)
}

fn blocking(provider: &dyn Provider) -> Result<&dyn BlockingProvider, Error> {
    provider.as_blocking().ok_or(Error::RequiresAsync {
        provider: provider.kind(),
    })
}

fn check_plaintext_len(plaintext: &[u8]) -> Result<(), Error> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(Error::PlaintextTooLarge {
            len: plaintext.len(),
            limit: MAX_PLAINTEXT_LEN,
        });
    }
    Ok(())
}

fn check_stored_len(stored: &[u8]) -> Result<(), Error> {
    if stored.len() > MAX_STORED_VALUE_LEN {
        return Err(Error::StoredValueTooLarge {
            len: stored.len(),
            limit: MAX_STORED_VALUE_LEN,
        });
    }
    Ok(())
}

/// Refuses to hand out a value that a read would refuse.
fn check_written_len(stored: Vec<u8>) -> Result<Vec<u8>, Error> {
    check_stored_len(&stored)?;
    Ok(stored)
}

/// The state of one read walk over the matching providers.
#[derive(Default)]
struct ReadWalk {
    errors: Vec<Error>,
}

impl ReadWalk {
    /// Takes one provider's result; returns the value when the walk is done.
    fn step(
        &mut self,
        index: usize,
        provider: &dyn Provider,
        result: Result<Decrypted, Error>,
    ) -> Option<Decrypted> {
        match result {
            Ok(mut decrypted) => {
                decrypted.stale |= index != 0;
                Some(decrypted)
            }
            // Identity fails on encrypted data; that must not hide a later
            // provider's answer, nor be reported.
            Err(_) if provider.prefix().is_empty() => None,
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    fn finish(self) -> Error {
        Error::from_list(self.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_prefixes_parse_as_the_apiserver_matches_them() {
        let known = |kind, name: &'static [u8], body: &'static [u8]| StoredPrefix::Known {
            kind,
            name,
            body,
        };
        for (stored, expected) in [
            (&b"plain"[..], StoredPrefix::Identity),
            (b"", StoredPrefix::Identity),
            (
                b"k8s:enc:aesgcm:v1:key1:xy",
                known(ProviderKind::AesGcm, b"key1", b"xy"),
            ),
            (
                b"k8s:enc:aescbc:v1:k:",
                known(ProviderKind::AesCbc, b"k", b""),
            ),
            (
                b"k8s:enc:secretbox:v1:k:a:b",
                known(ProviderKind::Secretbox, b"k", b"a:b"),
            ),
            (
                b"k8s:enc:kms:v1:vault:z",
                known(ProviderKind::Kms(KmsApiVersion::V1), b"vault", b"z"),
            ),
            (
                b"k8s:enc:kms:v2:vault:z",
                known(ProviderKind::Kms(KmsApiVersion::V2), b"vault", b"z"),
            ),
            // No provider's whole prefix (the trailing colon is part of it).
            (b"k8s:enc:aesgcm:v1:key1", StoredPrefix::Unknown),
            (b"k8s:enc:aesgcm:v1", StoredPrefix::Unknown),
            (b"k8s:enc:aesgcm:v2:key1:x", StoredPrefix::Unknown),
            (b"k8s:enc:rot13:v1:k:x", StoredPrefix::Unknown),
            (b"k8s:enc:", StoredPrefix::Unknown),
        ] {
            assert_eq!(StoredPrefix::parse(stored), expected, "{stored:?}");
        }
    }

    /// What the parser calls an aesgcm key's value is exactly what the
    /// aesgcm provider of that key reads, and a value cut before the
    /// trailing colon is read by no provider (as in the apiserver).
    #[test]
    fn the_parser_agrees_with_the_providers() {
        use crate::{AesGcm, NamedKey, SecretKey};
        let key = NamedKey::new("key1", SecretKey::generate(32).expect("key"));
        let transformer =
            Transformer::new(vec![Arc::new(AesGcm::new(vec![key]).expect("aesgcm"))]).expect("t");
        let storage_key = "/registry/secrets/a".into();
        let stored = transformer
            .encrypt_blocking(b"x", storage_key)
            .expect("write");
        assert!(matches!(
            StoredPrefix::parse(&stored),
            StoredPrefix::Known {
                kind: ProviderKind::AesGcm,
                name: b"key1",
                ..
            }
        ));
        let cut = b"k8s:enc:aesgcm:v1:key1";
        assert_eq!(StoredPrefix::parse(cut), StoredPrefix::Unknown);
        assert!(transformer.decrypt_blocking(cut, storage_key).is_err());
    }
}
