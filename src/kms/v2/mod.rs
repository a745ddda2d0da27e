//! The KMS v2 provider: envelope encryption with a DEK or seed wrapped by a
//! KMS plugin, stored as an `EncryptedObject`.
//!
//! It follows kube-apiserver's state machine:
//! - [`refresh`](KmsV2Provider::refresh) asks the plugin for its status. When
//!   the key ID differs from the one behind the current write key (or the
//!   write mode changed), a new seed (or DEK) is generated and sent to
//!   `Encrypt`; it becomes the write key only if that succeeds and answers
//!   with the same key ID. Each good status moves the write key's expiry to
//!   now + 3 minutes.
//! - The status loop ([`run_status_loop`](KmsV2Provider::run_status_loop))
//!   refreshes every 60 s while healthy and every 10 s after a failure.
//! - Writes need a write key that has not expired; reads never expire, but
//!   like the apiserver's they need the provider to have had one good status,
//!   which is what decides staleness.
//! - Decrypted DEKs and seeds are cached (24 h TTL by default) and so are the
//!   keys derived from seeds (10 min), both bounded in entries.
//! - A read is stale when its key ID differs from the current one, or its DEK
//!   source type differs from the one used for writes.

mod data_key;
mod read;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use self::data_key::MAX_WRITES_PER_DERIVED_KEY;
use self::data_key::{DataKey, DerivedKeyCache};
use self::read::FastRead;
use crate::kms::encrypted_object::{
    encode_header, validate_annotations, validate_encrypted_dek_source, validate_key_id,
    EncryptedObjectRef,
};
use crate::kms::error::{clip_message, provider_error};
use crate::kms::{
    BoundedCache, CacheLimits, Clock, DekSourceType, KmsErrorKind, KmsServiceV2, SystemClock,
};
use crate::observe::metrics::{self as observe_metrics, CacheMetrics};
use crate::protowire::{put_varint, varint_len};
use crate::provider::ProviderFuture;
use crate::KmsApiVersion;
use crate::{random, Decrypted, Error, Provider, ProviderKind, StorageKey};

/// How long a write key stays usable after the last good status.
pub const WRITE_KEY_TTL: Duration = Duration::from_secs(3 * 60);
/// Status poll interval while the plugin is healthy.
pub const HEALTHY_POLL_INTERVAL: Duration = Duration::from_secs(60);
/// Status poll interval after a failure.
pub const UNHEALTHY_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// The shortest status poll interval: a zero one would spin.
const SHORTEST_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The longest TTL or poll interval honoured; longer ones are cut to it.
const LONGEST_INTERVAL: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// Options of a [`KmsV2Provider`]; `Default` gives the apiserver's behaviour
/// with bounded caches.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KmsV2Options {
    /// What new values are written with: a seed (the default, as in
    /// Kubernetes 1.29 and later) or a DEK used directly.
    pub write_mode: DekSourceType,
    /// Decrypted DEKs and seeds. Default: 4096 entries, 24 h.
    pub dek_cache: CacheLimits,
    /// Keys derived from seeds, one per value read. Default: 4096 entries,
    /// 10 min.
    pub derived_key_cache: CacheLimits,
    /// How long a write key stays usable after the last good status.
    pub write_key_ttl: Duration,
    /// Status poll interval while healthy.
    pub healthy_poll_interval: Duration,
    /// Status poll interval after a failure.
    pub unhealthy_poll_interval: Duration,
    /// The clock every timing decision reads.
    pub clock: Arc<dyn Clock>,
    /// In seed mode, how many writes one derived key seals. The default, 1,
    /// is the apiserver's behaviour: a fresh 32-byte random HKDF info, so a
    /// fresh AES-256-GCM key, for every value.
    ///
    /// More (at most [`MAX_WRITES_PER_DERIVED_KEY`], 2^20; larger values
    /// are cut to it) makes steady-state writes about a third cheaper (the
    /// HKDF and the AES-GCM key setup are done once per that many writes)
    /// and reads of those values too (one derived key in the cache per that
    /// many values, not one per value). The values stay readable by
    /// kube-apiserver, which derives the key from the info stored in each
    /// value. The cost: a derived key seals up to that many values under
    /// random 96-bit nonces, so two of them collide with probability below
    /// n²/2^97 per key (below 2^-57 at 2^20; NIST SP 800-38D allows 2^32
    /// random nonces per key), and values written close together share
    /// their first 32 bytes, which shows a reader of storage that they
    /// were written by one server in one window.
    pub writes_per_derived_key: u32,
}

impl KmsV2Options {
    /// These options with another `write_mode`: what new values are written with: a seed (the default, as in Kubernetes 1.29 and later) or a DEK used directly.
    pub fn with_write_mode(mut self, write_mode: DekSourceType) -> Self {
        self.write_mode = write_mode;
        self
    }

    /// These options with another `dek_cache`: decrypted DEKs and seeds.
    pub fn with_dek_cache(mut self, dek_cache: CacheLimits) -> Self {
        self.dek_cache = dek_cache;
        self
    }

    /// These options with another `derived_key_cache`: keys derived from seeds, one per value read.
    pub fn with_derived_key_cache(mut self, derived_key_cache: CacheLimits) -> Self {
        self.derived_key_cache = derived_key_cache;
        self
    }

    /// These options with another `write_key_ttl`: how long a write key stays usable after the last good status.
    pub fn with_write_key_ttl(mut self, write_key_ttl: Duration) -> Self {
        self.write_key_ttl = write_key_ttl;
        self
    }

    /// These options with another `healthy_poll_interval`: status poll interval while healthy.
    pub fn with_healthy_poll_interval(mut self, healthy_poll_interval: Duration) -> Self {
        self.healthy_poll_interval = healthy_poll_interval;
        self
    }

    /// These options with another `unhealthy_poll_interval`: status poll interval after a failure.
    pub fn with_unhealthy_poll_interval(mut self, unhealthy_poll_interval: Duration) -> Self {
        self.unhealthy_poll_interval = unhealthy_poll_interval;
        self
    }

    /// These options with another `clock`: the clock every timing decision reads.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// These options with another `writes_per_derived_key`: in seed mode, how many writes one derived key seals.
    pub fn with_writes_per_derived_key(mut self, writes_per_derived_key: u32) -> Self {
        self.writes_per_derived_key = writes_per_derived_key;
        self
    }
}

impl Default for KmsV2Options {
    fn default() -> Self {
        Self {
            write_mode: DekSourceType::HkdfSha256XnonceAesGcmSeed,
            dek_cache: CacheLimits::new(4096, Some(Duration::from_secs(24 * 60 * 60))),
            derived_key_cache: CacheLimits::new(4096, Some(Duration::from_secs(10 * 60))),
            write_key_ttl: WRITE_KEY_TTL,
            healthy_poll_interval: HEALTHY_POLL_INTERVAL,
            unhealthy_poll_interval: UNHEALTHY_POLL_INTERVAL,
            clock: Arc::new(SystemClock),
            writes_per_derived_key: 1,
        }
    }
}

/// The KMS v2 provider.
///
/// Cheap to clone (the clones share state). Use it through a
/// [`Transformer`](crate::Transformer) or the [`Provider`] trait; it has no
/// blocking form.
#[derive(Clone)]
pub struct KmsV2Provider {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    prefix: String,
    service: Arc<dyn KmsServiceV2>,
    options: KmsV2Options,
    /// The instant the provider was created; expiries are stored relative to it.
    epoch: Instant,
    write_key: arc_swap::ArcSwapOption<WriteKey>,
    dek_cache: BoundedCache<Box<[u8]>, Arc<DataKey>>,
    dek_cache_metrics: CacheMetrics,
    derived_keys: DerivedKeyCache,
    health: Mutex<HealthState>,
    /// Serializes refreshes, so concurrent callers do not rotate twice.
    refresh_lock: futures_util::lock::Mutex<()>,
    /// The DEK cache misses being asked of the plugin, by cache key: a
    /// second reader of the same DEK or seed waits for the first one's
    /// answer instead of asking again.
    dek_requests: read::DekRequests,
}

/// The key new values are written with, and how to label them.
struct WriteKey {
    key_id: String,
    source_type: DekSourceType,
    encrypted_dek_source: Vec<u8>,
    /// Sorted by key.
    annotations: Vec<(String, Vec<u8>)>,
    data_key: Arc<DataKey>,
    /// Fields 2 to 5 of every `EncryptedObject` written with this key.
    header: Vec<u8>,
    /// Nanoseconds after `Inner::epoch` at which writes stop.
    expires_at: AtomicU64,
}

#[derive(Default)]
struct HealthState {
    /// The first API version the plugin reported; it must not change.
    version: Option<String>,
    last_status: Option<Instant>,
    last_error: Option<String>,
    next_poll: Option<Instant>,
}

/// The health of one KMS v2 provider, the equivalent of the apiserver's
/// `/healthz/kms-providers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KmsHealth {
    /// The provider's name.
    pub name: String,
    /// Whether the last status was good.
    pub healthy: bool,
    /// What went wrong last, if the last refresh failed.
    pub error: Option<String>,
    /// `sha256:<hex>` of the key ID new values are written with (the key ID
    /// itself is never reported).
    pub key_id_hash: Option<String>,
    /// Whether writes are possible now (a write key that has not expired).
    pub can_write: bool,
    /// When the last status arrived, good or bad.
    pub last_status: Option<Instant>,
}

impl KmsV2Provider {
    /// Creates the provider. It has no write key until the first
    /// [`refresh`](Self::refresh) succeeds.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidProviderName`] when `name` is empty or contains `:`.
    pub fn new(
        name: &str,
        service: Arc<dyn KmsServiceV2>,
        options: KmsV2Options,
    ) -> Result<Self, Error> {
        if name.is_empty() || name.contains(':') {
            return Err(Error::InvalidProviderName {
                provider: ProviderKind::Kms(KmsApiVersion::V2),
                name: name.to_owned(),
                reason: "must be non-empty and must not contain ':'",
            });
        }
        let clock = options.clock.clone();
        let mut options = options;
        // Instant + Duration panics on overflow: "never" is ten years here.
        for duration in [
            &mut options.write_key_ttl,
            &mut options.healthy_poll_interval,
            &mut options.unhealthy_poll_interval,
        ] {
            *duration = (*duration).min(LONGEST_INTERVAL);
        }
        // A zero poll interval would have the status loop spin on the
        // plugin; a tenth of a second is the floor.
        for poll in [
            &mut options.healthy_poll_interval,
            &mut options.unhealthy_poll_interval,
        ] {
            *poll = (*poll).max(SHORTEST_POLL_INTERVAL);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                prefix: format!("k8s:enc:kms:v2:{name}:"),
                service,
                epoch: clock.now(),
                write_key: arc_swap::ArcSwapOption::empty(),
                dek_cache: BoundedCache::new(options.dek_cache, clock.clone()),
                dek_cache_metrics: CacheMetrics::new(name, "dek"),
                derived_keys: BoundedCache::new(options.derived_key_cache, clock),
                health: Mutex::new(HealthState::default()),
                refresh_lock: futures_util::lock::Mutex::new(()),
                dek_requests: read::DekRequests::default(),
                options,
            }),
        })
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Asks the plugin for its status and rotates the write key if the key
    /// ID changed. Call it once before the first use (or run
    /// [`run_status_loop`](Self::run_status_loop)).
    ///
    /// # Errors
    ///
    /// The plugin is unreachable, unhealthy, reports an invalid key ID or
    /// version, or its `Encrypt` of a new seed failed or answered another key
    /// ID. The provider keeps its previous write key until it expires.
    pub async fn refresh(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let _serialized = inner.refresh_lock.lock().await;
        let result = inner.check_status_and_rotate().await;
        let now = inner.options.clock.now();
        let mut health = inner.health_state();
        health.last_status = Some(now);
        health.last_error = result.as_ref().err().map(ToString::to_string);
        let interval = if result.is_ok() {
            inner.options.healthy_poll_interval
        } else {
            inner.options.unhealthy_poll_interval
        };
        health.next_poll = Some(now + interval);
        result
    }

    /// Refreshes whenever the next status poll is due, forever: every 60 s
    /// while healthy, every 10 s after a failure. It holds the provider only
    /// weakly and returns once every clone has been dropped.
    ///
    /// Spawn it on your runtime: `tokio::spawn(provider.run_status_loop())`.
    /// It needs no particular runtime: it sleeps on a timer thread
    /// (`futures-timer`), so any executor can drive it.
    pub fn run_status_loop(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        async move {
            loop {
                let wait = {
                    let Some(inner) = weak.upgrade() else { return };
                    let provider = KmsV2Provider { inner };
                    let due = provider.inner.health_state().next_poll;
                    let now = provider.inner.options.clock.now();
                    match due {
                        Some(due) if due > now => due - now,
                        _ => {
                            // Failures are recorded in the health report.
                            let _ = provider.refresh().await;
                            continue;
                        }
                    }
                };
                futures_timer::Delay::new(wait.min(Duration::from_secs(1))).await;
            }
        }
    }

    /// The provider's health.
    pub fn health(&self) -> KmsHealth {
        let inner = &self.inner;
        let write_key = inner.write_key.load_full();
        let health = inner.health_state();
        KmsHealth {
            name: inner.name.clone(),
            healthy: health.last_status.is_some() && health.last_error.is_none(),
            error: health.last_error.clone(),
            key_id_hash: write_key.as_ref().map(|k| key_id_hash(&k.key_id)),
            can_write: write_key.is_some_and(|k| !inner.expired(&k)),
            last_status: health.last_status,
        }
    }

    /// Number of decrypted DEKs and seeds held in the cache.
    pub fn dek_cache_len(&self) -> usize {
        self.inner.dek_cache.len()
    }
}

impl WriteKey {
    /// Whether `object` was written with this key.
    fn wrote(&self, object: &EncryptedObjectRef<'_>) -> bool {
        object.key_id == self.key_id
            && object.source_type == self.source_type
            && object.encrypted_dek_source == self.encrypted_dek_source.as_slice()
            && object.annotations.len() == self.annotations.len()
            && object
                .annotations
                .iter()
                .zip(&self.annotations)
                .all(|((k1, v1), (k2, v2))| *k1 == k2.as_str() && *v1 == v2.as_slice())
    }
}

impl Inner {
    /// Runs one plugin call, recording its latency and outcome.
    async fn timed<T>(
        &self,
        method: &'static str,
        call: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        observe_metrics::timed_kms_call(&self.name, method, call).await
    }

    fn health_state(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn expired(&self, key: &WriteKey) -> bool {
        self.nanos_since_epoch(self.options.clock.now()) > key.expires_at.load(Ordering::Relaxed)
    }

    fn invalid_answer(&self, reason: impl Into<String>) -> Error {
        provider_error(&self.name, KmsErrorKind::InvalidAnswer(reason.into()))
    }

    /// The apiserver's status check: healthz "ok", version "v2" or "v2beta1"
    /// (and unchanged), a valid key ID; then the write key rotation.
    async fn check_status_and_rotate(&self) -> Result<(), Error> {
        let status = self.timed("Status", self.service.status()).await?;
        let mut problems = Vec::new();
        if status.healthz != "ok" {
            problems.push(format!(
                "unexpected healthz status: {}",
                clip_message(&status.healthz)
            ));
        }
        if status.version != "v2" && status.version != "v2beta1" {
            problems.push(format!(
                "expected KMSv2 API version v2, got {}",
                clip_message(&status.version)
            ));
        } else {
            let mut health = self.health_state();
            let first = health.version.get_or_insert_with(|| status.version.clone());
            if *first != status.version {
                problems.push(format!(
                    "KMSv2 API version should not change after the initial status response version {first}, got {}",
                    status.version
                ));
            }
        }
        match validate_key_id(&status.key_id) {
            Err(reason) => problems.push(format!("Status: {reason}")),
            Ok(()) => {
                observe_metrics::record_status_key_id(&self.name, &key_id_hash(&status.key_id));
                if let Err(e) = self.rotate_on_key_id_change(&status.key_id).await {
                    // Alone, the rotation's own error keeps its kind (an
                    // invalid answer is not a transient ill health).
                    if problems.is_empty() {
                        return Err(match e {
                            Error::Kms(kms) if kms.provider().is_none() => {
                                Error::Kms(kms.for_provider(&self.name))
                            }
                            other => other,
                        });
                    }
                    problems.push(e.to_string());
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(provider_error(
                &self.name,
                KmsErrorKind::Unhealthy(problems.join("; ")),
            ))
        }
    }

    async fn rotate_on_key_id_change(&self, status_key_id: &str) -> Result<(), Error> {
        let expires_at =
            self.nanos_since_epoch(self.options.clock.now() + self.options.write_key_ttl);
        let mode = self.options.write_mode;
        if let Some(current) = self.write_key.load_full() {
            if current.key_id == status_key_id && current.source_type == mode {
                current.expires_at.store(expires_at, Ordering::Relaxed);
                return Ok(());
            }
        }
        let (data_key, plaintext) = DataKey::generate(mode, self.options.writes_per_derived_key)?;
        let uid = request_uid()?;
        let answer = self
            .timed("Encrypt", self.service.encrypt(&uid, &plaintext))
            .await?;
        drop(plaintext);
        validate_encrypted_dek_source(&answer.ciphertext)
            .and_then(|()| validate_key_id(&answer.key_id))
            .and_then(|()| {
                validate_annotations(
                    answer
                        .annotations
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_slice())),
                )
            })
            .map_err(|reason| self.invalid_answer(format!("Encrypt: {reason}")))?;
        if answer.key_id != status_key_id {
            return Err(self.invalid_answer(format!(
                "Encrypt answered key ID hash {} but Status reported {}",
                key_id_hash(&answer.key_id),
                key_id_hash(status_key_id)
            )));
        }
        let annotations = || {
            answer
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
        };
        let data_key = Arc::new(data_key);
        // Our own writes must read back without asking the plugin.
        self.dek_cache.insert(
            cache_key(mode, &answer.ciphertext, &answer.key_id, annotations()),
            data_key.clone(),
        );
        let header = encode_header(&answer.key_id, &answer.ciphertext, annotations(), mode);
        tracing::info!(
            provider = %self.name,
            key_id_hash = %key_id_hash(&answer.key_id),
            mode = %mode,
            "kms v2: new write key"
        );
        self.write_key.store(Some(Arc::new(WriteKey {
            key_id: answer.key_id,
            source_type: mode,
            encrypted_dek_source: answer.ciphertext,
            annotations: answer.annotations.into_iter().collect(),
            data_key,
            header,
            expires_at: AtomicU64::new(expires_at),
        })));
        Ok(())
    }

    fn current_write_key(&self) -> Result<Arc<WriteKey>, Error> {
        self.write_key
            .load_full()
            .ok_or_else(|| provider_error(&self.name, KmsErrorKind::NotReady))
    }

    fn encrypt(&self, plaintext: &[u8], storage_key: StorageKey<'_>) -> Result<Vec<u8>, Error> {
        // A guard, not a clone of the `Arc`: no reference count to touch.
        let guard = self.write_key.load();
        let key = guard
            .as_ref()
            .ok_or_else(|| provider_error(&self.name, KmsErrorKind::NotReady))?;
        if self.expired(key) {
            return Err(provider_error(
                &self.name,
                KmsErrorKind::WriteRefused(
                    "the write key expired: no good status from the plugin for 3 minutes".into(),
                ),
            ));
        }
        let data_len = key.data_key.sealed_len(plaintext.len());
        let mut out = Vec::with_capacity(
            self.prefix.len() + 1 + varint_len(data_len as u64) + data_len + key.header.len(),
        );
        out.extend_from_slice(self.prefix.as_bytes());
        out.push(1 << 3 | 2);
        put_varint(&mut out, data_len as u64);
        key.data_key.seal_append(
            &self.name,
            plaintext,
            storage_key.as_bytes(),
            &self.derived_keys,
            &mut out,
        )?;
        out.extend_from_slice(&key.header);
        Ok(out)
    }
}

impl Provider for KmsV2Provider {
    fn prefix(&self) -> &[u8] {
        self.inner.prefix.as_bytes()
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Kms(KmsApiVersion::V2)
    }

    fn encrypt<'a>(
        &'a self,
        plaintext: &'a [u8],
        storage_key: StorageKey<'a>,
    ) -> ProviderFuture<'a, Vec<u8>> {
        Box::pin(std::future::ready(
            self.inner.encrypt(plaintext, storage_key),
        ))
    }

    fn decrypt<'a>(
        &'a self,
        stored: &'a [u8],
        storage_key: StorageKey<'a>,
    ) -> ProviderFuture<'a, Decrypted> {
        match self.inner.decrypt_now(stored, storage_key) {
            FastRead::Done(result) => Box::pin(std::future::ready(result)),
            FastRead::NeedsCache(object) => {
                Box::pin(self.inner.decrypt_cached(object, storage_key))
            }
        }
    }

    /// Always `Some`: a write never waits (the status loop and
    /// [`refresh`](KmsV2Provider::refresh) fetch the write key beforehand).
    fn encrypt_ready(
        &self,
        plaintext: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Option<Result<Vec<u8>, Error>> {
        Some(self.inner.encrypt(plaintext, storage_key))
    }

    /// `Some` for values of the current write key or of a cached DEK or
    /// seed; `None` when the plugin must decrypt the DEK or seed.
    fn decrypt_ready(
        &self,
        stored: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Option<Result<Decrypted, Error>> {
        match self.inner.decrypt_now(stored, storage_key) {
            FastRead::Done(result) => Some(result),
            FastRead::NeedsCache(object) => self.inner.decrypt_from_cache(&object, storage_key),
        }
    }
}

impl fmt::Debug for KmsV2Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsV2Provider")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

/// The DEK cache key, laid out as the apiserver's: the source type, then the
/// encrypted DEK source, the key ID and the sorted annotations, each
/// length-prefixed (validation keeps every length within 16 bits).
fn cache_key<'a>(
    source_type: DekSourceType,
    encrypted_dek_source: &[u8],
    key_id: &str,
    annotations: impl Iterator<Item = (&'a str, &'a [u8])> + Clone,
) -> Box<[u8]> {
    let annotations_len: usize = annotations
        .clone()
        .map(|(k, v)| 4 + k.len() + v.len())
        .sum();
    let mut out =
        Vec::with_capacity(16 + encrypted_dek_source.len() + key_id.len() + annotations_len);
    out.extend_from_slice(&source_type.number().to_be_bytes());
    push_len_prefixed(&mut out, encrypted_dek_source);
    push_len_prefixed(&mut out, key_id.as_bytes());
    let count = annotations.clone().count();
    if count > 0 {
        out.extend_from_slice(&(count as u32).to_be_bytes());
        for (key, value) in annotations {
            push_len_prefixed(&mut out, key.as_bytes());
            push_len_prefixed(&mut out, value);
        }
    }
    out.into_boxed_slice()
}

fn push_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// `sha256:<hex>` of a key ID, as the apiserver logs and reports key IDs.
pub fn key_id_hash(key_id: &str) -> String {
    let digest = Sha256::digest(key_id.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// A random version 4 UUID, identifying one plugin request in its logs, as
/// kube-apiserver sends in every KMS v2 call.
///
/// # Errors
///
/// The system's random source failed.
pub fn request_uid() -> Result<String, Error> {
    let mut b = [0u8; 16];
    random::fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}
