//! The static-key providers, the raw AES-GCM primitive under them, scaling
//! over threads, a read through a five-provider list, and config loading.
//!
//! Benchmark IDs (filter with `cargo bench --bench providers -- <regex>`):
//!
//! - `<provider>/<encrypt|decrypt>/<bytes>`: the blocking API, for identity,
//!   aescbc, aesgcm and secretbox at 256 B, 1 KiB, 4 KiB, 64 KiB and 1 MiB;
//!   `<provider>/<encrypt_into|decrypt_into>/<bytes>`: the same into a
//!   buffer reused across calls;
//! - `raw/<backend>-aes256gcm/<seal|open>/<bytes>`: the AES-256-GCM primitive
//!   alone, in place, with a fixed nonce (RustCrypto `aes-gcm`, and with the
//!   `aws-lc` feature also `aws-lc-rs`), at 1 KiB and 64 KiB: the floor the
//!   aesgcm provider is measured against;
//! - `threads/<provider>/<encrypt|decrypt>/<1|2>`: 1 KiB values on one and on
//!   two threads at once; each element is one call per thread, so the
//!   reported elements per second is the total throughput;
//!   `threads/<provider>/<op>/cpu/<1|2>` reports the CPU time per call
//!   instead (the same on two threads as on one when nothing is shared),
//!   which a busy neighbour on a shared machine does not distort;
//! - `transformer/<one|five>-providers/decrypt/1024`: an aesgcm value read
//!   through a list of one provider, and of five where only the last matches;
//! - `config/<load-validate|build>`: parsing and validating a six-provider
//!   `EncryptionConfiguration`, and building its transformers.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use k8s_envelope::{
    AesCbc, AesGcm, BlockingProvider, EncryptionConfiguration, Identity, NamedKey, Provider,
    SecretKey, Secretbox, StorageKey, Transformer,
};

const SIZES: [usize; 5] = [256, 1024, 4096, 64 * 1024, 1024 * 1024];
const RAW_SIZES: [usize; 2] = [1024, 64 * 1024];
const STORAGE_KEY: &str = "/registry/secrets/default/db-creds";

fn key() -> SecretKey {
    SecretKey::new(
        (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect(),
    )
}

fn plaintext(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

fn providers() -> Vec<(&'static str, Arc<dyn Provider>)> {
    let keys = || vec![NamedKey::new("key1", key())];
    vec![
        ("identity", Arc::new(Identity::new())),
        ("aescbc", Arc::new(AesCbc::new(keys()).expect("aescbc"))),
        ("aesgcm", Arc::new(AesGcm::new(keys()).expect("aesgcm"))),
        (
            "secretbox",
            Arc::new(Secretbox::new(keys()).expect("secretbox")),
        ),
    ]
}

fn blocking(provider: &Arc<dyn Provider>) -> &dyn BlockingProvider {
    provider.as_blocking().expect("a static-key provider")
}

fn bench_providers(c: &mut Criterion) {
    let storage_key = StorageKey::from(STORAGE_KEY);
    for (name, provider) in providers() {
        let provider = blocking(&provider);
        let mut group = c.benchmark_group(name);
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(30);
        for size in SIZES {
            let plaintext = plaintext(size);
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
            // Into a buffer reused across calls (no allocation for aesgcm):
            // the form to compare with a raw in-place seal or open.
            let mut out = Vec::new();
            group.bench_with_input(
                BenchmarkId::new("encrypt_into", size),
                &plaintext,
                |b, plaintext| {
                    b.iter(|| {
                        provider
                            .encrypt_blocking_into(
                                black_box(plaintext),
                                black_box(storage_key),
                                &mut out,
                            )
                            .expect("encrypt")
                    });
                },
            );
            group.bench_with_input(
                BenchmarkId::new("decrypt_into", size),
                &stored,
                |b, stored| {
                    b.iter(|| {
                        provider
                            .decrypt_blocking_into(
                                black_box(stored),
                                black_box(storage_key),
                                &mut out,
                            )
                            .expect("decrypt")
                    });
                },
            );
        }
        group.finish();
    }
}

/// The AES-256-GCM primitives alone: seal and open in place, fixed nonce.
fn bench_raw(c: &mut Criterion) {
    let mut group = c.benchmark_group("raw");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    let aad = STORAGE_KEY.as_bytes();
    for size in RAW_SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        {
            use aes_gcm::aead::{AeadInOut, KeyInit};
            let cipher = aes_gcm::Aes256Gcm::new_from_slice(key().expose()).expect("key");
            let nonce = aes_gcm::Nonce::from([7u8; 12]);
            let mut buf = plaintext(size);
            group.bench_function(BenchmarkId::new("rustcrypto-aes256gcm/seal", size), |b| {
                b.iter(|| {
                    cipher
                        .encrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into())
                        .expect("seal")
                });
            });
            let mut sealed = plaintext(size);
            let tag = cipher
                .encrypt_inout_detached(&nonce, aad, sealed.as_mut_slice().into())
                .expect("seal");
            group.bench_function(BenchmarkId::new("rustcrypto-aes256gcm/open", size), |b| {
                b.iter(|| {
                    let mut buf = sealed.clone();
                    cipher
                        .decrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into(), &tag)
                        .expect("open");
                    buf
                });
            });
        }
        #[cfg(feature = "aws-lc")]
        {
            use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
            let cipher =
                LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key().expose()).expect("key"));
            let nonce = || Nonce::assume_unique_for_key([7u8; 12]);
            let mut buf = plaintext(size);
            group.bench_function(BenchmarkId::new("aws-lc-aes256gcm/seal", size), |b| {
                b.iter(|| {
                    cipher
                        .seal_in_place_separate_tag(nonce(), Aad::from(aad), &mut buf)
                        .expect("seal")
                });
            });
            let mut sealed = plaintext(size);
            let tag = cipher
                .seal_in_place_separate_tag(nonce(), Aad::from(aad), &mut sealed)
                .expect("seal");
            // Open in place needs a fresh copy of the ciphertext each time;
            // the gather form reads it where it is, as the provider does.
            let mut out = vec![0u8; size];
            group.bench_function(BenchmarkId::new("aws-lc-aes256gcm/open", size), |b| {
                b.iter(|| {
                    cipher
                        .open_separate_gather(
                            nonce(),
                            Aad::from(aad),
                            &sealed,
                            tag.as_ref(),
                            &mut out,
                        )
                        .expect("open")
                });
            });
        }
    }
    group.finish();
}

/// 1 KiB writes and reads on one and on two threads at once.
fn bench_threads(c: &mut Criterion) {
    const SIZE: usize = 1024;
    let storage_key = StorageKey::from(STORAGE_KEY);
    let plaintext = plaintext(SIZE);
    let mut group = c.benchmark_group("threads");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for (name, provider) in providers() {
        let provider = blocking(&provider);
        let stored = provider
            .encrypt_blocking(&plaintext, storage_key)
            .expect("encrypt");
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements(threads as u64));
            // `cpu`: report the CPU time the threads spent per element
            // instead of the wall time, averaged over the threads.
            let run = |iters: u64, op: &(dyn Fn() + Sync), cpu: bool| {
                let start = Instant::now();
                let cpu_total: Duration = std::thread::scope(|scope| {
                    let workers: Vec<_> = (0..threads)
                        .map(|_| {
                            scope.spawn(|| {
                                let cpu_start = cpu_time::ThreadTime::now();
                                (0..iters).for_each(|_| op());
                                cpu_start.elapsed()
                            })
                        })
                        .collect();
                    workers.into_iter().map(|w| w.join().expect("worker")).sum()
                });
                if cpu {
                    cpu_total / threads as u32
                } else {
                    start.elapsed()
                }
            };
            let encrypt = || {
                black_box(
                    provider
                        .encrypt_blocking(black_box(&plaintext), storage_key)
                        .expect("encrypt"),
                );
            };
            let decrypt = || {
                black_box(
                    provider
                        .decrypt_blocking(black_box(&stored), storage_key)
                        .expect("decrypt"),
                );
            };
            for (op, f) in [
                ("encrypt", &encrypt as &(dyn Fn() + Sync)),
                ("decrypt", &decrypt),
            ] {
                group.bench_function(BenchmarkId::new(format!("{name}/{op}"), threads), |b| {
                    b.iter_custom(|iters| run(iters, f, false));
                });
                group.bench_function(BenchmarkId::new(format!("{name}/{op}/cpu"), threads), |b| {
                    b.iter_custom(|iters| run(iters, f, true))
                });
            }
        }
    }
    group.finish();
}

/// An aesgcm value read through one provider, and through five of which only
/// the last one's prefix matches.
fn bench_transformer(c: &mut Criterion) {
    const SIZE: usize = 1024;
    let storage_key = StorageKey::from(STORAGE_KEY);
    let named = |name: &str| vec![NamedKey::new(name, key())];
    let aesgcm: Arc<dyn Provider> = Arc::new(AesGcm::new(named("current")).expect("aesgcm"));
    let one = Transformer::new(vec![aesgcm.clone()]).expect("transformer");
    let five = Transformer::new(vec![
        Arc::new(AesCbc::new(named("k1")).expect("aescbc")),
        Arc::new(Secretbox::new(named("k2")).expect("secretbox")),
        Arc::new(AesCbc::new(named("k3")).expect("aescbc")),
        Arc::new(Secretbox::new(named("k4")).expect("secretbox")),
        aesgcm,
    ])
    .expect("transformer");
    let stored = one
        .encrypt_blocking(&plaintext(SIZE), storage_key)
        .expect("encrypt");
    assert!(
        five.decrypt_blocking(&stored, storage_key)
            .expect("read")
            .stale
    );

    let mut group = c.benchmark_group("transformer");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .throughput(Throughput::Bytes(SIZE as u64));
    for (name, transformer) in [("one-providers", &one), ("five-providers", &five)] {
        group.bench_function(BenchmarkId::new(format!("{name}/decrypt"), SIZE), |b| {
            b.iter(|| {
                transformer
                    .decrypt_blocking(black_box(&stored), storage_key)
                    .expect("decrypt")
            });
        });
    }
    group.finish();
}

/// A six-provider configuration: load and validate, then build.
fn bench_config(c: &mut Criterion) {
    let yaml = include_bytes!("../tests/data/conformance/valid/aes-gcm-first.yaml");
    let mut group = c.benchmark_group("config");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    group.bench_function("load-validate", |b| {
        b.iter(|| {
            let config = EncryptionConfiguration::from_yaml(black_box(yaml)).expect("parse");
            config.validate().expect("valid");
            config
        });
    });
    // Without the two KMS providers, which need plugins to build.
    let static_only: Vec<u8> = String::from_utf8_lossy(yaml)
        .split("      - kms:")
        .enumerate()
        .filter_map(|(i, part)| match i {
            0 => Some(part.to_owned()),
            _ => part.find("      - ").map(|at| part[at..].to_owned()),
        })
        .collect::<String>()
        .into_bytes();
    let config = EncryptionConfiguration::from_yaml(&static_only).expect("parse");
    group.bench_function("build", |b| {
        b.iter(|| black_box(&config).build().expect("build"));
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_providers,
    bench_raw,
    bench_threads,
    bench_transformer,
    bench_config
);
criterion_main!(benches);
