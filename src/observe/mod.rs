//! Observing transforms: metrics, tracing and audit events, for a service
//! that embeds this library.
//!
//! [`Observer`] wraps each transform of a [`ResourceTransformers`] set: it
//! times it, records metrics through the [`metrics`] facade (the embedding
//! service installs the exporter), emits a `tracing` event, and hands one
//! [`AuditEvent`] to the [`AuditSink`], if any. The plain
//! [`Transformer`](crate::Transformer) API stays free of all of it.
//!
//! Nothing observed ever contains key material or plaintext: events carry the
//! resource, the storage key (an etcd key, not secret), the provider prefix,
//! the key name or a SHA-256 hash of the KMS key ID, staleness, the outcome
//! and the duration.
//!
//! # Metrics
//!
//! Named after kube-apiserver's, with this crate's prefix:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `k8s_envelope_storage_transformation_duration_seconds` | histogram | `transformation_type` (`to_storage`, `from_storage`), `transformer_prefix`, `status` |
//! | `k8s_envelope_storage_transformation_operations_total` | counter | same |
//! | `k8s_envelope_storage_transformation_stale_reads_total` | counter | `transformer_prefix` |
//! | `k8s_envelope_envelope_encryption_dek_cache_hits_total` | counter | `provider_name`, `cache` (`dek`, `derived_key`) |
//! | `k8s_envelope_envelope_encryption_dek_cache_misses_total` | counter | same |
//! | `k8s_envelope_envelope_encryption_dek_cache_size` | gauge (entries, updated on each miss) | same |
//! | `k8s_envelope_envelope_encryption_kms_operations_total` | counter | `provider_name`, `method_name`, `status` |
//! | `k8s_envelope_envelope_encryption_kms_operations_latency_seconds` | histogram | same |
//! | `k8s_envelope_envelope_encryption_key_id_hash_status_last_timestamp_seconds` | gauge | `provider_name`, `key_id_hash` |
//!
//! `transformer_prefix` is the apiserver's: `identity`, `k8s:enc:aesgcm:v1:`
//! (likewise aescbc, secretbox) or `k8s:enc:kms:v2:<name>:` (and v1);
//! `status` is `ok` or `error`. Key IDs appear only as `sha256:<hex>`.
//!
//! # Audit events
//!
//! | field | meaning |
//! |---|---|
//! | `time` | when the transform finished, RFC 3339 UTC |
//! | `operation` | `encrypt` or `decrypt` |
//! | `resource` | the group-resource (`secrets`, `deployments.apps`) |
//! | `storage_key` | the etcd key |
//! | `provider` | `identity`, `aescbc`, `aesgcm`, `secretbox`, `kms v1`, `kms v2`, or `unknown` |
//! | `key` | the key name (static keys, KMS v1 provider name) or `sha256:` hash of the KMS v2 key ID |
//! | `stale` | for reads: whether the value should be re-encrypted |
//! | `outcome` | `ok` or `error` |
//! | `error` | the error message, when the outcome is `error` |
//! | `duration_us` | how long the transform took |

mod audit;
mod describe;
pub mod metrics;

use std::time::{Duration, Instant};

use tracing::Instrument as _;

pub use self::audit::{AuditEvent, AuditSink, JsonLinesAuditSink, Operation};
use self::describe::describe;
use crate::{Decrypted, Error, ResourceTransformers, StorageKey};

/// Observes transforms: metrics and tracing always, audit events when a sink
/// is set.
///
/// ```
/// use std::sync::Arc;
/// use k8s_envelope::observe::{JsonLinesAuditSink, Observer};
/// use k8s_envelope::EncryptionConfiguration;
///
/// let transformers = EncryptionConfiguration::from_yaml(br#"
/// kind: EncryptionConfiguration
/// apiVersion: apiserver.config.k8s.io/v1
/// resources:
///   - resources: [secrets]
///     providers:
///       - secretbox:
///           keys:
///             - name: key1
///               secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
/// "#)?.build()?;
/// let dir = tempfile::tempdir()?;
/// let audit = Arc::new(JsonLinesAuditSink::create(dir.path().join("audit.jsonl"))?);
/// let observer = Observer::new().with_audit(audit.clone());
///
/// let key = "/registry/secrets/default/db".into();
/// let stored = observer.encrypt_blocking(&transformers, "secrets", b"password", key)?;
/// observer.decrypt_blocking(&transformers, "secrets", &stored, key)?;
/// audit.flush()?;
/// let log = std::fs::read_to_string(dir.path().join("audit.jsonl"))?;
/// assert_eq!(log.lines().count(), 2);
/// assert!(!log.contains("password"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Observer {
    audit: Option<std::sync::Arc<dyn AuditSink>>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

impl Observer {
    /// An observer with metrics and tracing, and no audit sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends one [`AuditEvent`] per transform to `sink`.
    pub fn with_audit(mut self, sink: std::sync::Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Encrypts with the transformer of `resource`, observed.
    ///
    /// # Errors
    ///
    /// The transformer's error.
    pub async fn encrypt(
        &self,
        transformers: &ResourceTransformers,
        resource: &str,
        plaintext: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Vec<u8>, Error> {
        let span = tracing::debug_span!("encrypt", resource);
        let start = Instant::now();
        let result = transformers
            .for_resource(resource)
            .encrypt(plaintext, storage_key)
            .instrument(span)
            .await;
        self.finish_encrypt(resource, storage_key, &result, start.elapsed());
        result
    }

    /// Decrypts with the transformer of `resource`, observed.
    ///
    /// # Errors
    ///
    /// The transformer's error.
    pub async fn decrypt(
        &self,
        transformers: &ResourceTransformers,
        resource: &str,
        stored: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Decrypted, Error> {
        let span = tracing::debug_span!("decrypt", resource);
        let start = Instant::now();
        let result = transformers
            .for_resource(resource)
            .decrypt(stored, storage_key)
            .instrument(span)
            .await;
        self.finish_decrypt(resource, stored, storage_key, &result, start.elapsed());
        result
    }

    /// [`encrypt`](Self::encrypt) without a runtime (static-key providers).
    ///
    /// # Errors
    ///
    /// The transformer's error.
    pub fn encrypt_blocking(
        &self,
        transformers: &ResourceTransformers,
        resource: &str,
        plaintext: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Vec<u8>, Error> {
        let start = Instant::now();
        let result = transformers
            .for_resource(resource)
            .encrypt_blocking(plaintext, storage_key);
        self.finish_encrypt(resource, storage_key, &result, start.elapsed());
        result
    }

    /// [`decrypt`](Self::decrypt) without a runtime (static-key providers).
    ///
    /// # Errors
    ///
    /// The transformer's error.
    pub fn decrypt_blocking(
        &self,
        transformers: &ResourceTransformers,
        resource: &str,
        stored: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Decrypted, Error> {
        let start = Instant::now();
        let result = transformers
            .for_resource(resource)
            .decrypt_blocking(stored, storage_key);
        self.finish_decrypt(resource, stored, storage_key, &result, start.elapsed());
        result
    }

    fn finish_encrypt(
        &self,
        resource: &str,
        storage_key: StorageKey<'_>,
        result: &Result<Vec<u8>, Error>,
        duration: Duration,
    ) {
        // A write is described by what it wrote; a failed one by nothing.
        let described = result
            .as_ref()
            .map(|stored| describe(stored))
            .unwrap_or_default();
        let error = result.as_ref().err();
        self.finish(
            Operation::Encrypt,
            resource,
            storage_key,
            &described,
            None,
            error,
            duration,
        );
    }

    fn finish_decrypt(
        &self,
        resource: &str,
        stored: &[u8],
        storage_key: StorageKey<'_>,
        result: &Result<Decrypted, Error>,
        duration: Duration,
    ) {
        let described = describe(stored);
        let stale = result.as_ref().ok().map(|read| read.stale);
        let error = result.as_ref().err();
        self.finish(
            Operation::Decrypt,
            resource,
            storage_key,
            &described,
            stale,
            error,
            duration,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        operation: Operation,
        resource: &str,
        storage_key: StorageKey<'_>,
        described: &describe::Described<'_>,
        stale: Option<bool>,
        error: Option<&Error>,
        duration: Duration,
    ) {
        metrics::record_transformation(
            operation,
            described.metric_prefix.clone(),
            error.is_none(),
            stale,
            duration,
        );
        match error {
            None => tracing::debug!(
                operation = operation.as_str(),
                resource,
                provider = described.provider_name(),
                stale,
                duration_us = duration.as_micros() as u64,
                "transformed"
            ),
            Some(e) => tracing::warn!(
                operation = operation.as_str(),
                resource,
                provider = described.provider_name(),
                error = %e,
                "transform failed"
            ),
        }
        if let Some(sink) = &self.audit {
            let key = described.key();
            sink.record(&AuditEvent {
                time: std::time::SystemTime::now(),
                operation,
                resource,
                storage_key: storage_key.as_bytes(),
                provider: described.provider,
                key: key.as_deref(),
                stale,
                error,
                duration,
            });
        }
    }
}
