//! The KMS v1 provider (deprecated upstream, still needed to read and migrate
//! old data): one fresh DEK per write, wrapped by a [`KmsServiceV1`] plugin.
//!
//! Stored value:
//!
//! ```text
//! k8s:enc:kms:v1:<name>: || len(u16, big-endian) || encrypted DEK (len bytes) || data
//! ```
//!
//! `data` is AES-GCM under the DEK, `nonce(12) || ciphertext || tag(16)` with
//! the storage key as additional authenticated data. Releases before 1.25
//! wrote AES-CBC (`IV(16) || ciphertext`, PKCS#7) instead; a read tries GCM,
//! then CBC, and a CBC read is stale.
//!
//! Decrypted DEKs (as expanded key schedules) are cached by their encrypted
//! bytes in a bounded LRU cache, as kube-apiserver does; only a cache miss
//! calls the plugin.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::kms::{
    BoundedCache, CacheLimits, Clock, KmsError, KmsErrorKind, KmsServiceV1, SystemClock,
};
use crate::observe::metrics::{self as observe_metrics, CacheMetrics};
use crate::primitive::{AesCbcCipher, AesGcmCipher, AES_KEY_LENGTHS, GCM_NONCE_LEN};
use crate::provider::ProviderFuture;
use crate::providers::{aescbc, aesgcm};
use crate::KmsApiVersion;
use crate::{random, Decrypted, Error, Provider, ProviderKind, StorageKey};

/// Every KMS v1 prefix starts with this; the provider name and `:` follow.
const KMS_V1_PREFIX: &str = "k8s:enc:kms:v1:";

/// Length of the DEK generated for every write, in bytes (AES-256).
const DEK_LEN: usize = 32;

/// Length of the big-endian encrypted-DEK length in front of the body.
const LEN_PREFIX: usize = 2;

/// The cache size kube-apiserver uses when `cachesize` is not set.
const DEFAULT_CACHE_SIZE: usize = 1000;

/// Options of a [`KmsV1Provider`]: the DEK cache's limits and the clock its
/// TTL reads.
///
/// The default is kube-apiserver's: 1000 entries, least recently used
/// evicted first, no TTL, the system clock.
///
/// ```
/// use std::time::Duration;
/// use k8s_envelope::kms::{CacheLimits, KmsV1Options};
///
/// // The config's `cachesize`: positive is a size, negative disables.
/// assert_eq!(KmsV1Options::from_cache_size(50).cache.max_entries, 50);
/// assert_eq!(KmsV1Options::from_cache_size(-1).cache, CacheLimits::disabled());
/// assert_eq!(KmsV1Options::default().cache, CacheLimits::new(1000, None));
///
/// // Something apiserver does not have: a TTL on cached DEKs.
/// let options = KmsV1Options::default().with_cache(CacheLimits::new(1000, Some(Duration::from_secs(3600))));
/// assert_eq!(options.cache.ttl, Some(Duration::from_secs(3600)));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct KmsV1Options {
    /// How many decrypted DEKs are kept, and for how long.
    pub cache: CacheLimits,
    /// The clock the cache's TTL is measured with.
    pub clock: Arc<dyn Clock>,
}

impl KmsV1Options {
    /// Options from the EncryptionConfiguration's `cachesize`, as
    /// kube-apiserver reads it: a positive value is the number of cached
    /// DEKs, a negative value disables the cache. Zero, which config
    /// validation refuses, also disables it.
    ///
    /// ```
    /// use k8s_envelope::kms::KmsV1Options;
    ///
    /// assert_eq!(KmsV1Options::from_cache_size(1000).cache.max_entries, 1000);
    /// assert_eq!(KmsV1Options::from_cache_size(0).cache.max_entries, 0);
    /// assert_eq!(KmsV1Options::from_cache_size(-5).cache.max_entries, 0);
    /// ```
    pub fn from_cache_size(cache_size: i32) -> Self {
        let max_entries = usize::try_from(cache_size).unwrap_or(0);
        Self::default().with_cache(CacheLimits::new(max_entries, None))
    }

    /// These options with other cache limits.
    ///
    /// ```
    /// use k8s_envelope::kms::{CacheLimits, KmsV1Options};
    ///
    /// let options = KmsV1Options::default().with_cache(CacheLimits::disabled());
    /// assert_eq!(options.cache.max_entries, 0);
    /// ```
    pub fn with_cache(mut self, cache: CacheLimits) -> Self {
        self.cache = cache;
        self
    }

    /// These options with another clock (for tests of a cache TTL).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use k8s_envelope::kms::{KmsV1Options, ManualClock};
    ///
    /// let clock = Arc::new(ManualClock::new());
    /// let options = KmsV1Options::default().with_clock(clock.clone());
    /// # let _ = options;
    /// ```
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl Default for KmsV1Options {
    fn default() -> Self {
        Self {
            cache: CacheLimits::new(DEFAULT_CACHE_SIZE, None),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The key schedules of one DEK: GCM for writes and reads, and CBC for
/// reading data written before Kubernetes 1.25, expanded only when such a
/// value is read (writes never need it). Zeroized on drop.
struct DekCiphers {
    gcm: AesGcmCipher,
    /// The DEK, for the CBC schedule; its first `dek_len` bytes.
    dek: Zeroizing<[u8; DEK_LEN]>,
    dek_len: usize,
    cbc: std::sync::OnceLock<AesCbcCipher>,
}

impl DekCiphers {
    /// Expands a DEK; its length must be one of [`AES_KEY_LENGTHS`].
    fn new(dek: &[u8]) -> Result<Self, Error> {
        let bad_length = || {
            protocol(format!(
                "Decrypt returned a DEK of {} bytes, expected one of {:?}",
                dek.len(),
                AES_KEY_LENGTHS
            ))
        };
        let gcm = AesGcmCipher::new(dek).map_err(|_| bad_length())?;
        let mut copy = Zeroizing::new([0u8; DEK_LEN]);
        copy.get_mut(..dek.len())
            .ok_or_else(bad_length)?
            .copy_from_slice(dek);
        Ok(Self {
            gcm,
            dek: copy,
            dek_len: dek.len(),
            cbc: std::sync::OnceLock::new(),
        })
    }

    /// The CBC schedule, expanded on first use.
    fn cbc(&self) -> Result<&AesCbcCipher, Error> {
        if let Some(cbc) = self.cbc.get() {
            return Ok(cbc);
        }
        // The GCM schedule accepted this length, so CBC does too.
        let cbc = AesCbcCipher::new(&self.dek[..self.dek_len]).map_err(|_| Error::Decrypt {
            provider: ProviderKind::Kms(KmsApiVersion::V1),
        })?;
        Ok(self.cbc.get_or_init(|| cbc))
    }
}

/// The KMS v1 provider: envelope encryption with a data-encryption key (DEK)
/// per write, wrapped by a KMS v1 plugin.
///
/// Writes generate a random 32-byte DEK, have the plugin wrap it, and store
/// `k8s:enc:kms:v1:<name>: || u16 length || wrapped DEK || AES-256-GCM data`
/// (the storage key is the AAD). Reads unwrap the DEK through the plugin
/// (once: DEKs are cached by their wrapped bytes), then open the data with
/// AES-GCM, or with AES-CBC for data older releases wrote (such a read is
/// stale). DEKs of 16, 24 and 32 bytes are accepted on read.
///
/// Async only: the plugin is a network service.
/// [`as_blocking`](Provider::as_blocking) is `None`, and the blocking
/// [`Transformer`](crate::Transformer) methods refuse this provider.
///
/// ```
/// use std::sync::Arc;
/// use base64::Engine as _;
/// use k8s_envelope::kms::{KmsFuture, KmsServiceV1, KmsV1Options, KmsV1Provider, VersionResponse};
/// use k8s_envelope::{Error, KmsApiVersion, Provider, ProviderKind};
/// use zeroize::Zeroizing;
///
/// /// INSECURE, like Kubernetes' mock plugin: "wraps" a DEK with base64.
/// struct Base64Kms;
///
/// impl KmsServiceV1 for Base64Kms {
///     fn version(&self) -> KmsFuture<'_, VersionResponse> {
///         let version = VersionResponse { version: "v1beta1".into(), ..Default::default() };
///         Box::pin(async move { Ok(version) })
///     }
///     fn encrypt<'a>(&'a self, dek: &'a [u8]) -> KmsFuture<'a, Vec<u8>> {
///         let wrapped = base64::engine::general_purpose::STANDARD.encode(dek).into_bytes();
///         Box::pin(async move { Ok(wrapped) })
///     }
///     fn decrypt<'a>(&'a self, wrapped: &'a [u8]) -> KmsFuture<'a, Zeroizing<Vec<u8>>> {
///         let dek = base64::engine::general_purpose::STANDARD
///             .decode(wrapped)
///             .map(Zeroizing::new)
///             .map_err(|_| Error::Decrypt { provider: ProviderKind::Kms(KmsApiVersion::V1) });
///         Box::pin(async move { dek })
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let kms = KmsV1Provider::new("my-kms", Arc::new(Base64Kms), KmsV1Options::default())?;
/// let key = "/registry/secrets/default/db-creds".into();
/// let stored = kms.encrypt(b"password", key).await?;
/// assert!(stored.starts_with(b"k8s:enc:kms:v1:my-kms:"));
///
/// let read = kms.decrypt(&stored, key).await?;
/// assert_eq!(read.plaintext, b"password");
/// assert!(!read.stale);
/// // The storage key is authenticated: a copied value does not decrypt.
/// assert!(kms.decrypt(&stored, "/registry/secrets/default/other".into()).await.is_err());
/// # Ok::<(), Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct KmsV1Provider {
    name: String,
    /// `k8s:enc:kms:v1:<name>:`.
    prefix: Box<[u8]>,
    service: Arc<dyn KmsServiceV1>,
    /// Expanded DEKs by their encrypted bytes.
    cache: BoundedCache<Box<[u8]>, Arc<DekCiphers>>,
    cache_metrics: CacheMetrics,
}

impl KmsV1Provider {
    /// A provider named `name` (the config's `kms.name`), wrapping DEKs with
    /// `service`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use k8s_envelope::kms::{KmsFuture, KmsServiceV1, KmsV1Options, KmsV1Provider, VersionResponse};
    /// # use zeroize::Zeroizing;
    /// # struct NoKms;
    /// # impl KmsServiceV1 for NoKms {
    /// #     fn version(&self) -> KmsFuture<'_, VersionResponse> { unimplemented!() }
    /// #     fn encrypt<'a>(&'a self, _: &'a [u8]) -> KmsFuture<'a, Vec<u8>> { unimplemented!() }
    /// #     fn decrypt<'a>(&'a self, _: &'a [u8]) -> KmsFuture<'a, Zeroizing<Vec<u8>>> { unimplemented!() }
    /// # }
    /// use k8s_envelope::Provider;
    ///
    /// let kms = KmsV1Provider::new("vault", Arc::new(NoKms), KmsV1Options::from_cache_size(100))?;
    /// assert_eq!(kms.prefix(), b"k8s:enc:kms:v1:vault:");
    /// assert_eq!(kms.name(), "vault");
    /// assert!(KmsV1Provider::new("", Arc::new(NoKms), KmsV1Options::default()).is_err());
    /// # Ok::<(), k8s_envelope::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidProviderName`] when `name` is empty. (Unlike KMS v2 names, KMS
    /// v1 names may contain `:`, as the apiserver allows.)
    pub fn new(
        name: &str,
        service: Arc<dyn KmsServiceV1>,
        options: KmsV1Options,
    ) -> Result<Self, Error> {
        if name.is_empty() {
            return Err(Error::InvalidProviderName {
                provider: ProviderKind::Kms(KmsApiVersion::V1),
                name: String::new(),
                reason: "must not be empty",
            });
        }
        let mut prefix = Vec::with_capacity(KMS_V1_PREFIX.len() + name.len() + 1);
        prefix.extend_from_slice(KMS_V1_PREFIX.as_bytes());
        prefix.extend_from_slice(name.as_bytes());
        prefix.push(b':');
        Ok(Self {
            name: name.to_owned(),
            prefix: prefix.into_boxed_slice(),
            service,
            cache: BoundedCache::new(options.cache, options.clock),
            cache_metrics: CacheMetrics::new(name, "dek"),
        })
    }

    /// The provider's name, as in its prefix.
    ///
    /// See [`new`](Self::new) for an example.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many decrypted DEKs the cache holds now (expired ones included
    /// until they are looked up), for a fill metric like kube-apiserver's
    /// `dek_cache_fill_percent`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use k8s_envelope::kms::{KmsFuture, KmsServiceV1, KmsV1Options, KmsV1Provider, VersionResponse};
    /// # use zeroize::Zeroizing;
    /// # struct NoKms;
    /// # impl KmsServiceV1 for NoKms {
    /// #     fn version(&self) -> KmsFuture<'_, VersionResponse> { unimplemented!() }
    /// #     fn encrypt<'a>(&'a self, _: &'a [u8]) -> KmsFuture<'a, Vec<u8>> { unimplemented!() }
    /// #     fn decrypt<'a>(&'a self, _: &'a [u8]) -> KmsFuture<'a, Zeroizing<Vec<u8>>> { unimplemented!() }
    /// # }
    /// let kms = KmsV1Provider::new("vault", Arc::new(NoKms), KmsV1Options::default())?;
    /// assert_eq!(kms.cached_deks(), 0);
    /// # Ok::<(), k8s_envelope::Error>(())
    /// ```
    pub fn cached_deks(&self) -> usize {
        self.cache.len()
    }

    async fn seal(&self, plaintext: &[u8], storage_key: StorageKey<'_>) -> Result<Vec<u8>, Error> {
        let mut dek = Zeroizing::new([0u8; DEK_LEN]);
        random::fill_key(&mut dek[..])?;
        let mut nonce = [0u8; GCM_NONCE_LEN];
        random::fill(&mut nonce)?;

        let wrapped =
            observe_metrics::timed_kms_call(&self.name, "Encrypt", self.service.encrypt(&dek[..]))
                .await?;
        if wrapped.is_empty() {
            return Err(protocol(
                "Encrypt returned an empty ciphertext for the DEK".to_owned(),
            ));
        }
        let Ok(len) = u16::try_from(wrapped.len()) else {
            return Err(protocol(format!(
                "Encrypt returned a ciphertext of {} bytes for the DEK; a KMS v1 value holds at most {}",
                wrapped.len(),
                u16::MAX
            )));
        };
        let ciphers = Arc::new(DekCiphers::new(&dek[..])?);
        drop(dek);

        let mut out = Vec::with_capacity(
            self.prefix.len() + LEN_PREFIX + wrapped.len() + aesgcm::sealed_len(plaintext.len()),
        );
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&wrapped);
        aesgcm::seal_append(
            &ciphers.gcm,
            &nonce,
            storage_key.as_bytes(),
            plaintext,
            &mut out,
        );
        // As the apiserver does: the writer's DEK is cached too, so reading
        // back what was just written needs no plugin call.
        self.cache.insert(wrapped.into_boxed_slice(), ciphers);
        Ok(out)
    }

    async fn open(&self, stored: &[u8], storage_key: StorageKey<'_>) -> Result<Decrypted, Error> {
        let (encrypted_dek, data) = self.split_stored(stored)?;
        let cached = self.cache.get(encrypted_dek);
        self.cache_metrics
            .record_lookup(cached.is_some(), self.cache.len());
        let ciphers = match cached {
            Some(ciphers) => ciphers,
            None => {
                let dek = observe_metrics::timed_kms_call(
                    &self.name,
                    "Decrypt",
                    self.service.decrypt(encrypted_dek),
                )
                .await?;
                let ciphers = Arc::new(DekCiphers::new(&dek)?);
                drop(dek);
                self.cache.insert(encrypted_dek.into(), ciphers.clone());
                ciphers
            }
        };
        open_data(&ciphers, data, storage_key)
    }

    /// What [`open`](Self::open) gives when it needs no plugin call: a
    /// malformed value, or one whose DEK is cached. `None` on a cache miss,
    /// which `open` then records.
    fn open_from_cache(
        &self,
        stored: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Option<Result<Decrypted, Error>> {
        let (encrypted_dek, data) = match self.split_stored(stored) {
            Ok(parts) => parts,
            Err(e) => return Some(Err(e)),
        };
        let ciphers = self.cache.get(encrypted_dek)?;
        self.cache_metrics.record_lookup(true, self.cache.len());
        Some(open_data(&ciphers, data, storage_key))
    }

    /// The encrypted DEK and the data of a stored value of this provider.
    fn split_stored<'v>(&self, stored: &'v [u8]) -> Result<(&'v [u8], &'v [u8]), Error> {
        let body = stored
            .strip_prefix(&*self.prefix)
            .ok_or(Error::NoMatchingPrefix)?;
        split_body(body)
    }
}

/// Opens `data` with its DEK: AES-GCM, or AES-CBC for data written before
/// Kubernetes 1.25 (such a read is stale).
fn open_data(
    ciphers: &DekCiphers,
    data: &[u8],
    storage_key: StorageKey<'_>,
) -> Result<Decrypted, Error> {
    let gcm_error = match aesgcm::open(
        &ciphers.gcm,
        data,
        storage_key.as_bytes(),
        ProviderKind::Kms(KmsApiVersion::V1),
    ) {
        Ok(plaintext) => {
            return Ok(Decrypted {
                plaintext,
                stale: false,
            })
        }
        Err(e) => e,
    };
    match ciphers
        .cbc()
        .and_then(|cbc| aescbc::open(cbc, data, ProviderKind::Kms(KmsApiVersion::V1)))
    {
        Ok(plaintext) => Ok(Decrypted {
            plaintext,
            stale: true,
        }),
        Err(cbc_error) => Err(Error::Aggregate(vec![gcm_error, cbc_error])),
    }
}

/// Splits a stored body, `len(u16 BE) || encrypted DEK || data`, into the
/// encrypted DEK and the data, without copying. The length is checked
/// against the body before anything is sliced.
///
/// # Errors
///
/// [`Error::Malformed`] when the body is shorter than two bytes, the DEK
/// length is zero, or the length claims more bytes than the body holds.
pub fn split_body(body: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let malformed = |reason| Error::Malformed {
        provider: ProviderKind::Kms(KmsApiVersion::V1),
        reason,
    };
    let (len, rest) = body.split_first_chunk::<LEN_PREFIX>().ok_or_else(|| {
        malformed("the stored value is too short to hold the encrypted DEK length")
    })?;
    let len = usize::from(u16::from_be_bytes(*len));
    if len == 0 {
        // The apiserver would pass the empty DEK to the plugin; no plugin
        // produces one, and this provider never writes one.
        return Err(malformed("the stored value's encrypted DEK is empty"));
    }
    if rest.len() < len {
        return Err(malformed(
            "the stored value's encrypted DEK length overruns the value",
        ));
    }
    Ok(rest.split_at(len))
}

/// A plugin answer that breaks the KMS v1 contract.
fn protocol(detail: String) -> Error {
    Error::Kms(KmsError::new(KmsErrorKind::InvalidAnswer(detail)))
}

impl Provider for KmsV1Provider {
    fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Kms(KmsApiVersion::V1)
    }

    fn encrypt<'a>(
        &'a self,
        plaintext: &'a [u8],
        storage_key: StorageKey<'a>,
    ) -> ProviderFuture<'a, Vec<u8>> {
        Box::pin(self.seal(plaintext, storage_key))
    }

    fn decrypt<'a>(
        &'a self,
        stored: &'a [u8],
        storage_key: StorageKey<'a>,
    ) -> ProviderFuture<'a, Decrypted> {
        Box::pin(self.open(stored, storage_key))
    }

    /// A read whose DEK is cached (or that is malformed) answers at once.
    fn decrypt_ready(
        &self,
        stored: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Option<Result<Decrypted, Error>> {
        self.open_from_cache(stored, storage_key)
    }
}

impl fmt::Debug for KmsV1Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsV1Provider")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_body_checks_the_length() {
        assert!(split_body(&[]).is_err());
        assert!(split_body(&[0]).is_err());
        assert!(split_body(&[0, 0, 1, 2]).is_err());
        assert!(split_body(&[1, 0, 1, 2, 3, 4]).is_err());
        assert_eq!(
            split_body(&[0, 2, 7, 8, 9]).ok(),
            Some((&[7u8, 8][..], &[9u8][..]))
        );
        assert_eq!(split_body(&[0, 1, 7]).ok(), Some((&[7u8][..], &[][..])));
    }

    #[test]
    fn dek_lengths() {
        for len in AES_KEY_LENGTHS {
            assert!(DekCiphers::new(&vec![1u8; len]).is_ok());
        }
        for len in [0, 1, 17, 31, 33, 64] {
            assert!(DekCiphers::new(&vec![1u8; len]).is_err());
        }
    }
}
