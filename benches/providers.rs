//! Throughput of the static-key providers' blocking encrypt and decrypt.
//!
//! Reported as `<provider>/<encrypt|decrypt>/<bytes>`, for example
//! `aesgcm/encrypt/1024`. 32-byte keys; 1 KiB and 64 KiB plaintexts.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use k8s_envelope::{
    AesCbc, AesGcm, BlockingProvider, Identity, NamedKey, SecretKey, Secretbox, StorageKey,
};

const SIZES: [usize; 2] = [1024, 64 * 1024];
const STORAGE_KEY: &str = "/registry/secrets/default/db-creds";

fn key() -> SecretKey {
    SecretKey::new(
        (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect(),
    )
}

fn providers() -> Vec<(&'static str, Box<dyn BlockingProvider>)> {
    let keys = || vec![NamedKey::new("key1", key())];
    vec![
        ("identity", Box::new(Identity::new())),
        ("aescbc", Box::new(AesCbc::new(keys()).expect("aescbc"))),
        ("aesgcm", Box::new(AesGcm::new(keys()).expect("aesgcm"))),
        (
            "secretbox",
            Box::new(Secretbox::new(keys()).expect("secretbox")),
        ),
    ]
}

fn bench_providers(c: &mut Criterion) {
    let storage_key = StorageKey::from(STORAGE_KEY);
    for (name, provider) in providers() {
        let mut group = c.benchmark_group(name);
        group
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(50);
        for size in SIZES {
            let plaintext: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let stored = provider
                .encrypt_blocking(&plaintext, storage_key)
                .expect("encrypt");
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(
                BenchmarkId::new("encrypt", size),
                &plaintext,
                |b, plaintext| {
                    b.iter(|| {
                        provider
                            .encrypt_blocking(black_box(plaintext), black_box(storage_key))
                            .expect("encrypt")
                    });
                },
            );
            group.bench_with_input(BenchmarkId::new("decrypt", size), &stored, |b, stored| {
                b.iter(|| {
                    provider
                        .decrypt_blocking(black_box(stored), black_box(storage_key))
                        .expect("decrypt")
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_providers);
criterion_main!(benches);
