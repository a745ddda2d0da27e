//! The KMS providers' recording hooks without the `observe` feature: the
//! same crate-private calls as `observe::metrics`, recording nothing, so
//! the providers read the same either way and the `metrics` crate is not
//! built. A failed plugin call is still logged through `tracing`.

pub(crate) mod metrics {
    /// Stands in for the metric keys of one KMS provider's cache.
    pub(crate) struct CacheMetrics;

    impl CacheMetrics {
        /// No keys to build.
        pub(crate) fn new(_provider: &str, _cache: &'static str) -> Self {
            Self
        }

        /// Records nothing.
        pub(crate) fn record_lookup(&self, _hit: bool, _size: usize) {}
    }

    /// Runs one KMS plugin call, logging a failure.
    pub(crate) async fn timed_kms_call<T>(
        provider: &str,
        method: &'static str,
        call: impl std::future::Future<Output = Result<T, crate::Error>>,
    ) -> Result<T, crate::Error> {
        let result = call.await;
        if let Err(e) = &result {
            tracing::warn!(provider, method, error = %e, "kms plugin call failed");
        }
        result
    }

    /// Records nothing.
    pub(crate) fn record_status_key_id(_provider: &str, _key_id_hash: &str) {}
}
