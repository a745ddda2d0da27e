//! KMS v2 and v1 against aesgcm in the same run.
//!
//! The plugin is an in-process base64 service (as in `k8sref bench`): with
//! warm caches KMS v2 does not call it at all, so the numbers are the
//! provider's own cost. Benchmark IDs:
//!
//! - `kms_v2/<provider>/<encrypt|decrypt>/<bytes>`: a steady-state write (the
//!   write key in place) and a read of a value written with the current write
//!   key, at 256 B to 1 MiB, where provider is `aesgcm`, `kmsv2-seed`
//!   (HKDF_SHA256_XNONCE_AES_GCM_SEED, the default) or `kmsv2-key`
//!   (AES_GCM_KEY);
//! - `kms_v2_cache/<kmsv2-seed|kmsv2-key>/<warm|cold>/1024`: a read of a value
//!   written under another DEK or seed (an older one), with its DEK/seed and
//!   derived key in the caches (warm), or with the caches disabled, so that
//!   every read asks the plugin and derives again (cold);
//! - `kms_v1/kmsv1/<encrypt|decrypt>/<bytes>`: KMS v1, which asks the plugin
//!   to wrap a fresh DEK on every write; reads hit the DEK cache.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use k8s_envelope::kms::{
    CacheLimits, DekSourceType, KmsV1Options, KmsV1Provider, KmsV2Options, KmsV2Provider,
};
// The base64 mock plugin, in process (Kubernetes' test plugin's wrapping).
use k8s_envelope::kms::mock::Base64Kms;
use k8s_envelope::{AesGcm, NamedKey, Provider, SecretKey, StorageKey, Transformer};

const SIZES: [usize; 5] = [256, 1024, 4096, 64 * 1024, 1024 * 1024];
const STORAGE_KEY: &str = "/registry/secrets/default/db-creds";

use k8s_envelope_test_support::ready;

fn kms_v2(mode: DekSourceType) -> KmsV2Provider {
    kms_v2_with(KmsV2Options::default().with_write_mode(mode))
}

fn kms_v2_with(options: KmsV2Options) -> KmsV2Provider {
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
        (
            // Seed mode with one derived key per 1,024 writes
            // (`KmsV2Options::writes_per_derived_key`).
            "kmsv2-seed-shared",
            one(Arc::new(kms_v2_with(
                KmsV2Options::default().with_writes_per_derived_key(1024),
            ))),
        ),
    ]
}

fn bench_kms(c: &mut Criterion) {
    let storage_key = StorageKey::from(STORAGE_KEY);
    let mut group = c.benchmark_group("kms_v2");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
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

/// Reads of a value written under an older DEK or seed: from the caches,
/// and with no caches at all.
fn bench_kms_cache(c: &mut Criterion) {
    const SIZE: usize = 1024;
    let storage_key = StorageKey::from(STORAGE_KEY);
    let plaintext: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let mut group = c.benchmark_group("kms_v2_cache");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .throughput(Throughput::Bytes(SIZE as u64));
    for (name, mode) in [
        ("kmsv2-seed", DekSourceType::HkdfSha256XnonceAesGcmSeed),
        ("kmsv2-key", DekSourceType::AesGcmKey),
    ] {
        // Written by another provider instance: another DEK or seed.
        let stored = ready(kms_v2(mode).encrypt(&plaintext, storage_key)).expect("encrypt");
        let warm = kms_v2(mode);
        let cold = kms_v2_with(
            KmsV2Options::default()
                .with_write_mode(mode)
                .with_dek_cache(CacheLimits::disabled())
                .with_derived_key_cache(CacheLimits::disabled()),
        );
        for (state, provider) in [("warm", warm), ("cold", cold)] {
            // Through a transformer, as applications read.
            let transformer = Transformer::new(vec![Arc::new(provider)]).expect("transformer");
            let read = ready(transformer.decrypt(&stored, storage_key)).expect("decrypt");
            assert_eq!(read.plaintext, plaintext);
            group.bench_function(BenchmarkId::new(format!("{name}/{state}"), SIZE), |b| {
                b.iter(|| {
                    ready(transformer.decrypt(black_box(&stored), storage_key)).expect("decrypt")
                });
            });
        }
    }
    group.finish();
}

/// KMS v1: a plugin call per write (a fresh DEK), cached DEKs on read.
fn bench_kms_v1(c: &mut Criterion) {
    let storage_key = StorageKey::from(STORAGE_KEY);
    let provider = KmsV1Provider::new("bench", Arc::new(Base64Kms), KmsV1Options::default())
        .expect("provider");
    let transformer = Transformer::new(vec![Arc::new(provider)]).expect("transformer");
    let mut group = c.benchmark_group("kms_v1");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    for size in SIZES {
        let plaintext: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let stored = ready(transformer.encrypt(&plaintext, storage_key)).expect("encrypt");
        ready(transformer.decrypt(&stored, storage_key)).expect("decrypt");
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("kmsv1/encrypt", size),
            &plaintext,
            |b, plaintext| {
                b.iter(|| {
                    ready(transformer.encrypt(black_box(plaintext), black_box(storage_key)))
                        .expect("encrypt")
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("kmsv1/decrypt", size),
            &stored,
            |b, stored| {
                b.iter(|| {
                    ready(transformer.decrypt(black_box(stored), black_box(storage_key)))
                        .expect("decrypt")
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_kms, bench_kms_cache, bench_kms_v1);
criterion_main!(benches);
