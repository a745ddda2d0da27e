//! The names of the metrics this crate records through the `metrics`
//! facade (see the table in [`crate::observe`]).

use std::time::Duration;

use super::Operation;

/// Transform latency.
pub const TRANSFORMATION_DURATION: &str = "k8s_envelope_storage_transformation_duration_seconds";
/// Transform count.
pub const TRANSFORMATION_OPERATIONS: &str = "k8s_envelope_storage_transformation_operations_total";
/// Reads that returned a stale value.
pub const STALE_READS: &str = "k8s_envelope_storage_transformation_stale_reads_total";
/// DEK/seed and derived-key cache hits.
pub const DEK_CACHE_HITS: &str = "k8s_envelope_envelope_encryption_dek_cache_hits_total";
/// DEK/seed and derived-key cache misses.
pub const DEK_CACHE_MISSES: &str = "k8s_envelope_envelope_encryption_dek_cache_misses_total";
/// DEK/seed and derived-key cache entries.
pub const DEK_CACHE_SIZE: &str = "k8s_envelope_envelope_encryption_dek_cache_size";
/// KMS plugin calls.
pub const KMS_OPERATIONS: &str = "k8s_envelope_envelope_encryption_kms_operations_total";
/// KMS plugin call latency.
pub const KMS_OPERATIONS_LATENCY: &str =
    "k8s_envelope_envelope_encryption_kms_operations_latency_seconds";
/// When each key-ID hash was last reported by a plugin's Status.
pub const KEY_ID_HASH_STATUS_LAST_TIMESTAMP: &str =
    "k8s_envelope_envelope_encryption_key_id_hash_status_last_timestamp_seconds";

pub(crate) fn record_transformation(
    operation: Operation,
    prefix: std::borrow::Cow<'static, str>,
    ok: bool,
    stale: Option<bool>,
    duration: Duration,
) {
    // Static label values cost no allocation; only KMS prefixes (which hold
    // the provider's name) are copied.
    let labels = [
        metrics::Label::from_static_parts("transformation_type", operation.transformation_type()),
        metrics::Label::new("transformer_prefix", prefix),
        metrics::Label::from_static_parts("status", if ok { "ok" } else { "error" }),
    ];
    metrics::counter!(TRANSFORMATION_OPERATIONS, labels.iter()).increment(1);
    metrics::histogram!(TRANSFORMATION_DURATION, labels.iter()).record(duration.as_secs_f64());
    if stale == Some(true) {
        metrics::counter!(STALE_READS, [labels[1].clone()].iter()).increment(1);
    }
}

/// The metric keys of one KMS provider's cache, built once with the
/// provider so that recording a lookup allocates nothing (the macros would
/// copy the provider's name into new labels on every cache hit).
///
/// The recorder is looked up on every lookup, not registered once: a
/// provider built before the program installs its recorder still reports.
pub(crate) struct CacheMetrics {
    hits: metrics::Key,
    misses: metrics::Key,
    size: metrics::Key,
}

/// Where this crate's metrics come from, for recorders that filter on it.
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

impl CacheMetrics {
    /// The keys of the cache called `cache` of the provider called
    /// `provider`.
    pub(crate) fn new(provider: &str, cache: &'static str) -> Self {
        let key = |name: &'static str| {
            metrics::Key::from_parts(
                name,
                vec![
                    metrics::Label::new("provider_name", provider.to_owned()),
                    metrics::Label::from_static_parts("cache", cache),
                ],
            )
        };
        Self {
            hits: key(DEK_CACHE_HITS),
            misses: key(DEK_CACHE_MISSES),
            size: key(DEK_CACHE_SIZE),
        }
    }

    /// One lookup. The size gauge is set on misses only: a hit changes
    /// nothing in the cache, and skipping it keeps a hit to one counter
    /// update.
    pub(crate) fn record_lookup(&self, hit: bool, size: usize) {
        metrics::with_recorder(|recorder| {
            if hit {
                recorder
                    .register_counter(&self.hits, &METADATA)
                    .increment(1);
            } else {
                recorder
                    .register_counter(&self.misses, &METADATA)
                    .increment(1);
                recorder
                    .register_gauge(&self.size, &METADATA)
                    .set(size as f64);
            }
        });
    }
}

/// Runs one KMS plugin call, recording its latency and outcome, and logging
/// a failure.
pub(crate) async fn timed_kms_call<T>(
    provider: &str,
    method: &'static str,
    call: impl std::future::Future<Output = Result<T, crate::Error>>,
) -> Result<T, crate::Error> {
    let start = std::time::Instant::now();
    let result = call.await;
    record_kms_call(provider, method, result.is_ok(), start.elapsed());
    match &result {
        Ok(_) => tracing::debug!(
            provider,
            method,
            duration_us = start.elapsed().as_micros() as u64,
            "kms plugin call"
        ),
        Err(e) => tracing::warn!(provider, method, error = %e, "kms plugin call failed"),
    }
    result
}

/// One KMS plugin call.
fn record_kms_call(provider: &str, method: &'static str, ok: bool, duration: Duration) {
    let labels = [
        ("provider_name", provider.to_owned()),
        ("method_name", method.to_owned()),
        ("status", if ok { "ok" } else { "error" }.to_owned()),
    ];
    metrics::counter!(KMS_OPERATIONS, &labels).increment(1);
    metrics::histogram!(KMS_OPERATIONS_LATENCY, &labels).record(duration.as_secs_f64());
}

/// A good Status reported `key_id_hash`.
pub(crate) fn record_status_key_id(provider: &str, key_id_hash: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!(
        KEY_ID_HASH_STATUS_LAST_TIMESTAMP,
        "provider_name" => provider.to_owned(),
        "key_id_hash" => key_id_hash.to_owned()
    )
    .set(now);
}
