//! Allocation counts of the hot paths: a static-key encrypt or decrypt makes
//! exactly one heap allocation (the output buffer, sized up front), directly
//! and through a [`Transformer`]; aesgcm into a reused buffer makes none.
//! KMS reads answered without the plugin (the current KMS v2 key, a cached
//! KMS v1 DEK) and KMS v2 writes make one too.
//!
//! The counting allocator counts for the whole process, so the file holds a
//! single test. The test harness's own thread may still allocate now and then
//! (its bookkeeping right after it starts the test), so each call is measured
//! a few times and the smallest count is kept: allocations made by the call
//! itself happen on every run, stray ones from another thread do not.

use std::alloc::System;
use std::sync::Arc;

use k8s_envelope::kms::mock::Base64Kms;
use k8s_envelope::kms::{KmsV1Options, KmsV1Provider, KmsV2Options, KmsV2Provider};

use k8s_envelope::{
    AesCbc, AesGcm, BlockingProvider, Identity, NamedKey, Provider, SecretKey, Secretbox,
    StorageKey, Transformer,
};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

// `System`, wrapped with global counters. The crate forbids `unsafe_code` in
// every target, so the `GlobalAlloc` impl comes from `stats_alloc` rather than
// from this file.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// How many times each call is measured.
const RUNS: usize = 5;

/// Runs `f` [`RUNS`] times and returns its last result with the smallest
/// number of allocations plus reallocations made during one run.
fn count<T>(mut f: impl FnMut() -> T) -> (T, usize) {
    let mut min = usize::MAX;
    let mut value = None;
    for _ in 0..RUNS {
        // Drop the previous result outside the measured region.
        drop(value.take());
        let region = Region::new(GLOBAL);
        let result = f();
        let stats = region.change();
        min = min.min(stats.allocations + stats.reallocations);
        value = Some(result);
    }
    (value.expect("at least one run"), min)
}

const SIZES: [usize; 4] = [0, 1, 1024, 65_536];

fn key(fill: u8) -> SecretKey {
    SecretKey::new(vec![fill; 32])
}

fn providers() -> Vec<(&'static str, Arc<dyn Provider>)> {
    vec![
        (
            "aesgcm",
            Arc::new(AesGcm::new(vec![NamedKey::new("k1", key(1))]).expect("aesgcm")),
        ),
        (
            "aescbc",
            Arc::new(AesCbc::new(vec![NamedKey::new("k1", key(2))]).expect("aescbc")),
        ),
        (
            "secretbox",
            Arc::new(Secretbox::new(vec![NamedKey::new("k1", key(3))]).expect("secretbox")),
        ),
    ]
}

/// Allocations an encrypt of `size` bytes makes: one, the output. Identity's
/// empty output is an empty `Vec`, which needs none.
fn expected_encrypt(name: &str, size: usize) -> usize {
    if size == 0 && name.starts_with("identity") {
        0
    } else {
        1
    }
}

/// Allocations a decrypt to `size` bytes makes: one, the plaintext. An empty
/// plaintext needs none, except for aescbc, which decrypts a whole padding
/// block into the buffer before truncating it.
fn expected_decrypt(name: &str, size: usize) -> usize {
    if size == 0 && !name.starts_with("aescbc") {
        0
    } else {
        1
    }
}

fn check_provider(name: &str, provider: &dyn BlockingProvider, failures: &mut Vec<String>) {
    let sk = StorageKey::from("/registry/secrets/default/db-creds");
    for size in SIZES {
        let plaintext = vec![0x42u8; size];
        let (stored, n) = count(|| provider.encrypt_blocking(&plaintext, sk));
        let stored = stored.expect("encrypt");
        let want = expected_encrypt(name, size);
        if n != want {
            failures.push(format!(
                "{name} encrypt_blocking({size}): {n} allocations, expected {want}"
            ));
        }
        if stored.capacity() != stored.len() {
            failures.push(format!(
                "{name} encrypt_blocking({size}): capacity {} for length {}",
                stored.capacity(),
                stored.len()
            ));
        }
        let (read, n) = count(|| provider.decrypt_blocking(&stored, sk));
        let read = read.expect("decrypt");
        assert_eq!(read.plaintext, plaintext);
        let want = expected_decrypt(name, size);
        if n != want {
            failures.push(format!(
                "{name} decrypt_blocking({size}): {n} allocations, expected {want}"
            ));
        }
    }
}

fn check_transformer(
    name: &str,
    writer: &Transformer,
    reader: &Transformer,
    expect_stale: bool,
    failures: &mut Vec<String>,
) {
    let sk = StorageKey::from("/registry/secrets/default/db-creds");
    for size in SIZES {
        let plaintext = vec![0x24u8; size];
        let (stored, n) = count(|| writer.encrypt_blocking(&plaintext, sk));
        let stored = stored.expect("encrypt");
        let want = expected_encrypt(name, size);
        if n != want {
            failures.push(format!(
                "{name}: Transformer::encrypt_blocking({size}): {n} allocations, expected {want}"
            ));
        }
        let (read, n) = count(|| reader.decrypt_blocking(&stored, sk));
        let read = read.expect("decrypt");
        assert_eq!(read.plaintext, plaintext);
        assert_eq!(read.stale, expect_stale, "{name}");
        let want = expected_decrypt(name, size);
        if n != want {
            failures.push(format!(
                "{name}: Transformer::decrypt_blocking({size}): {n} allocations, expected {want}"
            ));
        }
    }
}

#[test]
fn hot_paths_allocate_exactly_once() {
    // The counter works at all.
    let (v, n) = count(|| vec![1u8; 10]);
    assert_eq!((v.len(), n), (10, 1));
    let (_, n) = count(|| 1 + 1);
    assert_eq!(n, 0);

    let providers = providers();
    // Warm up anything lazily initialised (the OS random source).
    for (_, p) in &providers {
        let b = p.as_blocking().expect("blocking");
        let stored = b.encrypt_blocking(b"warm", "".into()).expect("encrypt");
        b.decrypt_blocking(&stored, "".into()).expect("decrypt");
    }

    let mut failures = Vec::new();
    for (name, p) in &providers {
        check_provider(name, p.as_blocking().expect("blocking"), &mut failures);
    }
    check_provider("identity", &Identity::new(), &mut failures);

    for (i, (name, p)) in providers.iter().enumerate() {
        let alone = Transformer::new(vec![p.clone()]).expect("transformer");
        check_transformer(name, &alone, &alone, false, &mut failures);

        // Read by the second provider of two (the first one's prefix does
        // not match, so no error is remembered).
        let (_, first) = &providers[(i + 1) % providers.len()];
        let two = Transformer::new(vec![first.clone(), p.clone()]).expect("transformer");
        check_transformer(
            &format!("{name} second of two"),
            &alone,
            &two,
            true,
            &mut failures,
        );

        // identity first: it refuses the value silently, without allocating.
        let migrating =
            Transformer::new(vec![Arc::new(Identity::new()), p.clone()]).expect("transformer");
        check_transformer(
            &format!("{name} after identity"),
            &alone,
            &migrating,
            true,
            &mut failures,
        );
    }
    let identity = Transformer::identity();
    check_transformer("identity", &identity, &identity, false, &mut failures);

    // aesgcm into a reused buffer: no allocation at all once it has grown.
    let (_, aesgcm) = &providers[0];
    let aesgcm = Transformer::new(vec![aesgcm.clone()]).expect("transformer");
    let sk = StorageKey::from("/registry/secrets/default/db-creds");
    let plaintext = vec![0x33u8; 1024];
    let (mut stored, mut read) = (Vec::new(), Vec::new());
    aesgcm
        .encrypt_blocking_into(&plaintext, sk, &mut stored)
        .expect("grow");
    aesgcm
        .decrypt_blocking_into(&stored, sk, &mut read)
        .expect("grow");
    let (written, n) = count(|| aesgcm.encrypt_blocking_into(&plaintext, sk, &mut stored));
    written.expect("encrypt into");
    if n != 0 {
        failures.push(format!(
            "aesgcm encrypt_blocking_into: {n} allocations, expected 0"
        ));
    }
    let (stale, n) = count(|| aesgcm.decrypt_blocking_into(&stored, sk, &mut read));
    assert!(!stale.expect("decrypt into"));
    assert_eq!(read, plaintext);
    if n != 0 {
        failures.push(format!(
            "aesgcm decrypt_blocking_into: {n} allocations, expected 0"
        ));
    }

    check_kms(&mut failures);

    assert!(
        failures.is_empty(),
        "unexpected allocations:\n{}",
        failures.join("\n")
    );
}

use k8s_envelope_test_support::ready;

/// KMS reads that need no plugin call allocate the plaintext only, and a
/// KMS v2 write the stored value only.
fn check_kms(failures: &mut Vec<String>) {
    let sk = StorageKey::from("/registry/secrets/default/db-creds");
    let plaintext = vec![0x55u8; 1024];

    let v1 = || {
        let provider = KmsV1Provider::new("v1", Arc::new(Base64Kms), KmsV1Options::default())
            .expect("provider");
        Transformer::new(vec![Arc::new(provider)]).expect("transformer")
    };
    let (writer, reader) = (v1(), v1());
    let stored = ready(writer.encrypt(&plaintext, sk)).expect("encrypt");
    // The first read asks the plugin and caches the DEK; the rest hit.
    ready(reader.decrypt(&stored, sk)).expect("decrypt");
    let (read, n) = count(|| ready(reader.decrypt(&stored, sk)));
    assert_eq!(read.expect("decrypt").plaintext, plaintext);
    if n != 1 {
        failures.push(format!(
            "kms v1 read of a cached DEK: {n} allocations, expected 1"
        ));
    }

    let provider =
        KmsV2Provider::new("v2", Arc::new(Base64Kms), KmsV2Options::default()).expect("provider");
    ready(provider.refresh()).expect("refresh");
    let v2 = Transformer::new(vec![Arc::new(provider)]).expect("transformer");
    let (stored, n) = count(|| ready(v2.encrypt(&plaintext, sk)));
    let stored = stored.expect("encrypt");
    if n != 1 {
        failures.push(format!("kms v2 write (seed): {n} allocations, expected 1"));
    }
    let (read, n) = count(|| ready(v2.decrypt(&stored, sk)));
    assert_eq!(read.expect("decrypt").plaintext, plaintext);
    if n != 1 {
        failures.push(format!(
            "kms v2 read of the current key: {n} allocations, expected 1"
        ));
    }
}
