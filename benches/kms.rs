//! KMS v2 against aesgcm in the same run: a steady-state write (the write key
//! in place) and a read with a warm DEK/seed cache, at 1 KiB and 64 KiB.
//!
//! The plugin is an in-process base64 service: with warm caches it is not
//! called at all, so the numbers are the provider's own cost. Reported as
//! `kms_v2/<provider>/<encrypt|decrypt>/<bytes>`, where provider is
//! `aesgcm`, `kmsv2-seed` (HKDF_SHA256_XNONCE_AES_GCM_SEED, the default) or
//! `kmsv2-key` (AES_GCM_KEY).

use std::collections::BTreeMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use k8s_envelope::kms::{
    DekSourceType, EncryptResponse, KmsFuture, KmsServiceV2, KmsV2Options, KmsV2Provider,
    StatusResponse,
};
use k8s_envelope::{AesGcm, Error, NamedKey, Provider, SecretKey, StorageKey, Transformer};
use zeroize::Zeroizing;

const SIZES: [usize; 2] = [1024, 64 * 1024];
const STORAGE_KEY: &str = "/registry/secrets/default/db-creds";

/// The base64 mock plugin, in process.
struct Base64Kms;

impl KmsServiceV2 for Base64Kms {
    fn status(&self) -> KmsFuture<'_, StatusResponse> {
        Box::pin(async {
            Ok(StatusResponse {
                version: "v2".into(),
                healthz: "ok".into(),
                key_id: "1".into(),
            })
        })
    }

    fn encrypt<'a>(&'a self, _: &'a str, plaintext: &'a [u8]) -> KmsFuture<'a, EncryptResponse> {
        Box::pin(async move {
            Ok(EncryptResponse {
                ciphertext: BASE64.encode(plaintext).into_bytes(),
                key_id: "1".into(),
                annotations: BTreeMap::from([(
                    "local-kek.kms.kubernetes.io".to_owned(),
                    b"encrypted-local-kek".to_vec(),
                )]),
            })
        })
    }

    fn decrypt<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        ciphertext: &'a [u8],
        _: &'a BTreeMap<String, Vec<u8>>,
    ) -> KmsFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(async move {
            BASE64
                .decode(ciphertext)
                .map(Zeroizing::new)
                .map_err(|_| Error::NoMatchingPrefix)
        })
    }
}

/// Polls a future that completes without waiting (warm caches, in-process
/// plugin), so no runtime's overhead is measured.
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("the future waited"),
    }
}

fn kms_v2(mode: DekSourceType) -> KmsV2Provider {
    let options = KmsV2Options {
        write_mode: mode,
        ..KmsV2Options::default()
    };
    let provider = KmsV2Provider::new("bench", Arc::new(Base64Kms), options).expect("provider");
    ready(provider.refresh()).expect("refresh");
    provider
}

fn transformers() -> Vec<(&'static str, Transformer)> {
    let aesgcm =
        AesGcm::new(vec![NamedKey::new("key1", SecretKey::new(vec![7; 32]))]).expect("aesgcm");
    let one = |p: Arc<dyn Provider>| Transformer::new(vec![p]).expect("transformer");
    vec![
        ("aesgcm", one(Arc::new(aesgcm))),
        (
            "kmsv2-seed",
            one(Arc::new(kms_v2(DekSourceType::HkdfSha256XnonceAesGcmSeed))),
        ),
        ("kmsv2-key", one(Arc::new(kms_v2(DekSourceType::AesGcmKey)))),
    ]
}

fn bench_kms(c: &mut Criterion) {
    let storage_key = StorageKey::from(STORAGE_KEY);
    let mut group = c.benchmark_group("kms_v2");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    for (name, transformer) in transformers() {
        for size in SIZES {
            let plaintext: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let stored = ready(transformer.encrypt(&plaintext, storage_key)).expect("encrypt");
            // Warm the read caches.
            ready(transformer.decrypt(&stored, storage_key)).expect("decrypt");
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/encrypt"), size),
                &plaintext,
                |b, plaintext| {
                    b.iter(|| {
                        ready(transformer.encrypt(black_box(plaintext), black_box(storage_key)))
                            .expect("encrypt")
                    });
                },
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/decrypt"), size),
                &stored,
                |b, stored| {
                    b.iter(|| {
                        ready(transformer.decrypt(black_box(stored), black_box(storage_key)))
                            .expect("decrypt")
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench_kms);
criterion_main!(benches);
