//! A KEK that answers slowly, for timeouts and graceful shutdown.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_envelope_kms_plugin::{Kek, KekFuture, Wrapped};
use zeroize::Zeroizing;

/// A KEK whose calls take a while: `status` for `key_id` (and so for the
/// health check), `wrap` and `unwrap` for theirs. "Wraps" as identity.
pub struct SlowKek {
    pub status: Duration,
    pub wrap: Duration,
    pub unwrap: Duration,
}

impl SlowKek {
    /// Every call takes `delay`.
    pub fn all(delay: Duration) -> Self {
        Self {
            status: delay,
            wrap: delay,
            unwrap: delay,
        }
    }
}

impl Kek for SlowKek {
    fn key_id(&self) -> KekFuture<'_, String> {
        Box::pin(async move {
            tokio::time::sleep(self.status).await;
            Ok("slow".to_owned())
        })
    }

    fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> KekFuture<'a, Wrapped> {
        Box::pin(async move {
            tokio::time::sleep(self.wrap).await;
            Ok(Wrapped {
                ciphertext: plaintext.to_vec(),
                key_id: "slow".to_owned(),
                annotations: BTreeMap::new(),
            })
        })
    }

    fn unwrap<'a>(
        &'a self,
        _key_id: &'a str,
        ciphertext: &'a [u8],
        _annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KekFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(async move {
            tokio::time::sleep(self.unwrap).await;
            Ok(Zeroizing::new(ciphertext.to_vec()))
        })
    }
}
