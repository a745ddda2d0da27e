//! Lengths written inside hostile input allocate nothing like what they
//! claim: a KMS v2 `EncryptedObject`, a KMS v1 body, the protobuf answers of
//! a plugin, and a gRPC message prefix, each claiming gigabytes in a few
//! bytes, are refused after allocating at most a few kilobytes (a few
//! megabytes for the gRPC call, runtime and connection included).
//!
//! The counting allocator counts for the whole process, so the file holds a
//! single test (as `tests/allocations.rs` does).

use std::alloc::System;

use k8s_envelope::internal::EncryptedObjectRef;
use k8s_envelope_kms_plugin::generated::{v1beta1, v2};
use k8s_envelope_test_support::checks::check_kms_v1;
use k8s_envelope_test_support::misbehaving_plugin as fake_plugin;
use prost::Message as _;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

// The crate forbids `unsafe_code` in every target, so the `GlobalAlloc` impl
// comes from `stats_alloc`.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated while `f` runs (reallocations counted by their growth).
fn allocated<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let result = f();
    let stats = region.change();
    let grown = usize::try_from(stats.bytes_reallocated).unwrap_or(0);
    (result, stats.bytes_allocated + grown)
}

/// A protobuf length-delimited field `field` whose length claims `claim`
/// bytes, followed by only a few.
fn claiming(field: u32, claim: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for mut value in [u64::from(field << 3 | 2), claim] {
        while value >= 0x80 {
            out.push(value as u8 | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }
    out.extend_from_slice(b"only a few bytes");
    out
}

const GIB: u64 = 1 << 30;
const SMALL: usize = 64 * 1024;

#[test]
fn lengths_claiming_gigabytes_allocate_nothing_like_it() {
    // Warm up lazily built state outside the measured regions.
    let _ = check_kms_v1(b"");

    let claims = [4 * GIB, 1 << 62];
    for claim in claims {
        // KMS v2 storage envelope: encryptedData, keyID, and an annotation
        // entry whose key claims gigabytes inside a well-formed entry.
        let mut entry = claiming(1, claim);
        entry.truncate(entry.len() - 4);
        let mut annotations = vec![0x22, entry.len() as u8];
        annotations.extend_from_slice(&entry);
        for body in [claiming(1, claim), claiming(2, claim), annotations] {
            let (result, bytes) = allocated(|| EncryptedObjectRef::decode(&body).map(|_| ()));
            assert!(result.is_err());
            assert!(bytes < SMALL, "EncryptedObject: {bytes} bytes");
        }

        // Plugin answers, as tonic hands them to prost.
        for (name, body) in [
            ("v2 DecryptResponse", claiming(1, claim)),
            ("v2 EncryptResponse", claiming(1, claim)),
            ("v2 StatusResponse", claiming(3, claim)),
            ("v1 DecryptResponse", claiming(1, claim)),
        ] {
            let (failed, bytes) = allocated(|| match name {
                "v2 DecryptResponse" => v2::DecryptResponse::decode(&body[..]).is_err(),
                "v2 EncryptResponse" => v2::EncryptResponse::decode(&body[..]).is_err(),
                "v2 StatusResponse" => v2::StatusResponse::decode(&body[..]).is_err(),
                _ => v1beta1::DecryptResponse::decode(&body[..]).is_err(),
            });
            assert!(failed, "{name}");
            assert!(bytes < SMALL, "{name}: {bytes} bytes");
        }
    }

    many_empty_annotations_are_refused_early();

    // KMS v1: the DEK length is 16 bits, checked against the body; the read
    // goes through a provider to the error.
    let mut input = vec![0u8];
    input.extend_from_slice(&[0xff, 0xff, 1, 2, 3]);
    let (result, bytes) = allocated(|| check_kms_v1(&input));
    assert_eq!(result, Ok(()));
    assert!(bytes < SMALL, "KMS v1: {bytes} bytes");

    #[cfg(unix)]
    grpc_message_prefix_claiming_gigabytes();
}

/// A 16 MiB `EncryptedObject` that is all empty annotation entries (two
/// bytes each, eight million of them) is refused after the first few
/// thousand: it allocates what a few thousand take, not what eight million
/// would (about 280 MB before the entry count was kept while decoding).
fn many_empty_annotations_are_refused_early() {
    let mut body = Vec::with_capacity(16 << 20);
    for field in [&[0x0a, 1, b'x'][..], &[0x12, 1, b'1'], &[0x1a, 1, b'd']] {
        body.extend_from_slice(field);
    }
    while body.len() < 16 << 20 {
        body.extend_from_slice(&[0x22, 0]);
    }
    let started = std::time::Instant::now();
    let (result, bytes) = allocated(|| EncryptedObjectRef::decode(&body).map(|_| ()));
    let elapsed = started.elapsed();
    assert!(result.is_err());
    assert!(bytes < 1 << 20, "empty annotations: {bytes} bytes");
    // The bound; what it takes now is microseconds.
    assert!(elapsed < std::time::Duration::from_secs(1), "{elapsed:?}");
}

/// A plugin whose answer starts with a gRPC message prefix of 4 GiB is
/// refused on the prefix: the whole call, runtime and connection included,
/// allocates a few megabytes.
#[cfg(unix)]
fn grpc_message_prefix_claiming_gigabytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (errors, bytes) = allocated(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                let client =
                    fake_plugin::serve(dir.path(), fake_plugin::Fake::ClaimsGigabytes).await;
                fake_plugin::call_both(&client).await
            })
    });
    assert_eq!(errors.len(), 2);
    assert!(bytes < 16 * 1024 * 1024, "gRPC: {bytes} bytes");
}
