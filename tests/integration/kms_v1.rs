//! The KMS v1 provider: against the test-support crate's `FakeKms`, an
//! in-process service that mimics Kubernetes' base64 mock plugin, against the apiserver's own test vectors,
//! and against a real `kms-plugin-local --api v1` process over a unix socket.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use k8s_envelope::kms::{CacheLimits, KmsServiceV1, KmsV1Options, KmsV1Provider, ManualClock};
use k8s_envelope::{
    AesCbc, AesGcm, BlockingProvider, Error, Identity, KmsApiVersion, NamedKey, Provider,
    ProviderKind, SecretKey, StorageKey, Transformer,
};
use k8s_envelope_test_support::fake_kms::{is_down, EncryptOverride, FakeKms};

const NAME: &str = "kms-provider";
const PREFIX: &[u8] = b"k8s:enc:kms:v1:kms-provider:";
const KEY: &str = "/registry/secrets/default/db-creds";

fn provider(service: &Arc<FakeKms>, options: KmsV1Options) -> KmsV1Provider {
    KmsV1Provider::new(NAME, service.clone(), options).expect("provider")
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// Splits a stored value into (encrypted DEK, data).
fn parts(stored: &[u8]) -> (&[u8], &[u8]) {
    let body = stored.strip_prefix(PREFIX).expect("prefix");
    let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    body[2..].split_at(len)
}

/// A stored value from its parts.
fn assemble(encrypted_dek: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = PREFIX.to_vec();
    out.extend_from_slice(
        &u16::try_from(encrypted_dek.len())
            .expect("u16")
            .to_be_bytes(),
    );
    out.extend_from_slice(encrypted_dek);
    out.extend_from_slice(data);
    out
}

/// Asserts that an error's text shows none of `secrets` (raw or base64).
fn assert_no_secret(error: &Error, secrets: &[&[u8]]) {
    let shown = format!("{error} / {error:?}");
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        let b64 = B64.encode(secret);
        assert!(
            !shown.contains(&b64),
            "error shows a secret in base64: {shown}"
        );
        let raw = String::from_utf8_lossy(secret);
        assert!(
            !shown.contains(raw.as_ref()),
            "error shows a secret: {shown}"
        );
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !shown.contains(&hex),
            "error shows a secret in hex: {shown}"
        );
        let debug = format!("{:?}", &secret[..8]);
        assert!(
            !shown.contains(&debug[1..debug.len() - 1]),
            "error shows secret bytes: {shown}"
        );
    }
}

// ---------------------------------------------------------------------------
// Write and read

#[tokio::test]
async fn round_trips_at_many_sizes() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::default());
    assert_eq!(kms.prefix(), PREFIX);
    assert_eq!(kms.kind(), ProviderKind::Kms(KmsApiVersion::V1));
    assert!(kms.as_blocking().is_none());
    for len in [0, 1, 17, 1024, 65536] {
        let plain = plaintext(len);
        let stored = kms.encrypt(&plain, KEY.into()).await.expect("encrypt");
        let read = kms.decrypt(&stored, KEY.into()).await.expect("decrypt");
        assert_eq!(read.plaintext, plain, "size {len}");
        assert!(!read.stale);

        // A reader with an empty cache reads it through the plugin.
        let fresh = provider(&service, KmsV1Options::default());
        let read = fresh.decrypt(&stored, KEY.into()).await.expect("decrypt");
        assert_eq!(read.plaintext, plain, "size {len}, fresh reader");
    }
}

#[tokio::test]
async fn stored_value_layout() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::default());
    let plain = b"top secret value";
    let stored = kms.encrypt(plain, KEY.into()).await.expect("encrypt");

    assert!(stored.starts_with(PREFIX));
    let body = &stored[PREFIX.len()..];
    let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    assert_eq!(len, 44, "base64 of a 32-byte DEK");
    let (encrypted_dek, data) = body[2..].split_at(len);
    let dek = B64
        .decode(encrypted_dek)
        .expect("the mock's ciphertext is base64");
    assert_eq!(dek.len(), 32);
    assert_eq!(data.len(), 12 + plain.len() + 16);
    assert_eq!(stored.len(), PREFIX.len() + 2 + 44 + 12 + plain.len() + 16);

    // data is exactly what the aesgcm provider stores under the DEK.
    let aesgcm =
        AesGcm::new(vec![NamedKey::new("dek", SecretKey::new(dek.clone()))]).expect("aesgcm");
    let mut as_aesgcm = b"k8s:enc:aesgcm:v1:dek:".to_vec();
    as_aesgcm.extend_from_slice(data);
    let read = aesgcm
        .decrypt_blocking(&as_aesgcm, KEY.into())
        .expect("AES-GCM under the DEK, AAD = storage key");
    assert_eq!(read.plaintext, plain);

    // Every write has its own DEK and nonce.
    let again = kms.encrypt(plain, KEY.into()).await.expect("encrypt");
    let (other_dek, other_data) = parts(&again);
    assert_ne!(other_dek, encrypted_dek);
    assert_ne!(&other_data[..12], &data[..12]);
    assert_eq!(service.encrypts(), 2);
}

#[tokio::test]
async fn the_storage_key_is_authenticated() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::default());
    let stored = kms
        .encrypt(b"secret data", KEY.into())
        .await
        .expect("encrypt");
    let err = kms
        .decrypt(&stored, "/registry/secrets/default/other".into())
        .await
        .expect_err("another storage key must fail");
    // GCM fails, then the CBC fallback: both are reported.
    match &err {
        Error::Aggregate(errors) => assert_eq!(errors.len(), 2, "{err}"),
        other => panic!("expected both the GCM and the CBC error, got {other:?}"),
    }
    assert_no_secret(&err, &[b"secret data"]);
    // The right key still works.
    assert!(kms.decrypt(&stored, KEY.into()).await.is_ok());
}

#[tokio::test]
async fn tampered_values_fail() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::default());
    let stored = kms
        .encrypt(b"0123456789abcdef", KEY.into())
        .await
        .expect("encrypt");
    for i in PREFIX.len() + 2 + 44..stored.len() {
        let mut bad = stored.clone();
        bad[i] ^= 1;
        assert!(
            kms.decrypt(&bad, KEY.into()).await.is_err(),
            "byte {i} flipped"
        );
    }
    // Truncations at every length, including inside the DEK and the length.
    // None reads as current (GCM needs the whole tag). A cut that leaves the
    // data a multiple of 16 bytes can, by chance, pass the AES-CBC fallback
    // for pre-1.25 values, which has no integrity (the apiserver's too): the
    // padding of garbage is valid about one time in 256. Such a read is
    // stale and is never the plaintext.
    for cut in PREFIX.len()..stored.len() {
        match kms.decrypt(&stored[..cut], KEY.into()).await {
            Err(_) => {}
            Ok(read) => {
                let data_len = cut.checked_sub(PREFIX.len() + 2 + 44);
                assert!(
                    data_len.is_some_and(|n| n >= 32 && n % 16 == 0) && read.stale,
                    "cut at {cut} read as {read:?}"
                );
                assert_ne!(read.plaintext, b"0123456789abcdef", "cut at {cut}");
            }
        }
    }
}

#[tokio::test]
async fn malformed_bodies_are_refused() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::default());
    let cases: [&[u8]; 4] = [
        b"",                   // no length
        b"\x00",               // half a length
        b"\x00\x00abcdefghij", // empty encrypted DEK
        b"\x01\x00abcd",       // length 256, 4 bytes follow
    ];
    for body in cases {
        let mut stored = PREFIX.to_vec();
        stored.extend_from_slice(body);
        let err = kms
            .decrypt(&stored, KEY.into())
            .await
            .expect_err("malformed");
        assert!(
            matches!(
                err,
                Error::Malformed {
                    provider: ProviderKind::Kms(KmsApiVersion::V1),
                    ..
                }
            ),
            "{body:?}: {err:?}"
        );
    }
    assert_eq!(
        service.decrypts(),
        0,
        "no plugin call for a malformed value"
    );

    // Not our prefix at all.
    let err = kms
        .decrypt(b"k8s:enc:kms:v1:other:\x00\x01a", KEY.into())
        .await
        .expect_err("other provider");
    assert!(matches!(err, Error::NoMatchingPrefix), "{err:?}");
}

#[tokio::test]
async fn legacy_cbc_data_reads_as_stale() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::default());
    let dek = vec![0x42u8; 32];
    let aescbc =
        AesCbc::new(vec![NamedKey::new("k", SecretKey::new(dek.clone()))]).expect("aescbc");
    for len in [0, 1, 16, 100] {
        let plain = plaintext(len);
        let cbc = aescbc.encrypt_blocking(&plain, KEY.into()).expect("cbc");
        let data = cbc
            .strip_prefix(b"k8s:enc:aescbc:v1:k:".as_slice())
            .expect("prefix");
        let stored = assemble(B64.encode(&dek).as_bytes(), data);
        let read = kms
            .decrypt(&stored, KEY.into())
            .await
            .expect("CBC fallback");
        assert_eq!(read.plaintext, plain);
        assert!(read.stale, "a CBC read must be stale");
        // CBC ignores the storage key, as the apiserver's CBC transformer does.
        let moved = kms
            .decrypt(&stored, "/registry/secrets/x/y".into())
            .await
            .expect("CBC has no AAD");
        assert!(moved.stale);
    }
}

#[tokio::test]
async fn works_in_a_transformer_and_refuses_the_blocking_api() {
    let service = FakeKms::new();
    let kms: Arc<dyn Provider> = Arc::new(provider(&service, KmsV1Options::default()));
    let transformer = Transformer::new(vec![kms, Arc::new(Identity::new())]).expect("transformer");
    let stored = transformer
        .encrypt(b"hello", KEY.into())
        .await
        .expect("encrypt");
    assert!(stored.starts_with(PREFIX));
    let read = transformer
        .decrypt(&stored, KEY.into())
        .await
        .expect("decrypt");
    assert_eq!(read.plaintext, b"hello");
    assert!(!read.stale);
    // Plaintext from before encryption was turned on: read by identity, stale.
    let read = transformer
        .decrypt(b"legacy", KEY.into())
        .await
        .expect("identity");
    assert!(read.stale);

    let err = transformer
        .encrypt_blocking(b"hello", KEY.into())
        .expect_err("async only");
    assert!(matches!(
        err,
        Error::RequiresAsync {
            provider: ProviderKind::Kms(KmsApiVersion::V1)
        }
    ));
    assert!(transformer.decrypt_blocking(&stored, KEY.into()).is_err());
}

#[test]
fn debug_shows_the_name_only() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::default());
    assert_eq!(
        format!("{kms:?}"),
        r#"KmsV1Provider { name: "kms-provider", .. }"#
    );
    assert_eq!(kms.name(), NAME);
}

#[test]
fn options_and_names() {
    assert_eq!(KmsV1Options::default().cache, CacheLimits::new(1000, None));
    assert_eq!(
        KmsV1Options::from_cache_size(7).cache,
        CacheLimits::new(7, None)
    );
    assert_eq!(
        KmsV1Options::from_cache_size(-1).cache,
        CacheLimits::disabled()
    );
    assert_eq!(
        KmsV1Options::from_cache_size(0).cache,
        CacheLimits::disabled()
    );
    assert_eq!(
        KmsV1Options::from_cache_size(i32::MAX).cache.max_entries,
        i32::MAX as usize
    );

    let service = FakeKms::new();
    assert!(KmsV1Provider::new("", service.clone(), KmsV1Options::default()).is_err());
    // KMS v1 names may contain ':' (the apiserver only forbids it for v2).
    let kms = KmsV1Provider::new("a:b", service, KmsV1Options::default()).expect("a:b");
    assert_eq!(kms.prefix(), b"k8s:enc:kms:v1:a:b:");
}

// ---------------------------------------------------------------------------
// The DEK cache

#[tokio::test]
async fn a_cached_dek_is_not_fetched_again() {
    let service = FakeKms::new();
    let writer = provider(&service, KmsV1Options::default());
    let stored = writer.encrypt(b"value", KEY.into()).await.expect("encrypt");
    // The writer cached its own DEK.
    assert_eq!(writer.cached_deks(), 1);
    writer.decrypt(&stored, KEY.into()).await.expect("decrypt");
    assert_eq!(service.decrypts(), 0);

    let reader = provider(&service, KmsV1Options::default());
    for _ in 0..3 {
        let read = reader.decrypt(&stored, KEY.into()).await.expect("decrypt");
        assert_eq!(read.plaintext, b"value");
    }
    assert_eq!(
        service.decrypts(),
        1,
        "only the first read calls the plugin"
    );
    assert_eq!(reader.cached_deks(), 1);
}

#[tokio::test]
async fn a_read_answers_at_once_only_when_it_needs_no_plugin_call() {
    let service = FakeKms::new();
    let writer = provider(&service, KmsV1Options::default());
    let stored = writer.encrypt(b"value", KEY.into()).await.expect("encrypt");
    // The writer's own DEK is cached: the read answers without a future.
    let read = writer
        .decrypt_ready(&stored, KEY.into())
        .expect("cached DEK")
        .expect("decrypt");
    assert_eq!(
        (read.plaintext.as_slice(), read.stale),
        (&b"value"[..], false)
    );
    // The storage key is still authenticated on the fast path.
    let moved = writer.decrypt_ready(&stored, "/registry/secrets/x/y".into());
    assert!(matches!(moved, Some(Err(_))), "{moved:?}");
    // Malformed values need no plugin either.
    let torn = &stored[..PREFIX.len() + 1];
    assert!(matches!(
        writer.decrypt_ready(torn, KEY.into()),
        Some(Err(Error::Malformed { .. }))
    ));
    assert!(matches!(
        writer.decrypt_ready(b"k8s:enc:kms:v1:other:xx", KEY.into()),
        Some(Err(Error::NoMatchingPrefix))
    ));

    // A reader without the DEK must ask the plugin: not ready, and asking
    // caches nothing and calls nothing.
    let reader = provider(&service, KmsV1Options::default());
    assert!(reader.decrypt_ready(&stored, KEY.into()).is_none());
    assert_eq!((service.decrypts(), reader.cached_deks()), (0, 0));
    reader.decrypt(&stored, KEY.into()).await.expect("decrypt");
    assert_eq!(service.decrypts(), 1);
    let read = reader
        .decrypt_ready(&stored, KEY.into())
        .expect("cached now")
        .expect("decrypt");
    assert_eq!(read.plaintext, b"value");
    assert_eq!(service.decrypts(), 1);
}

#[tokio::test]
async fn a_disabled_cache_calls_the_plugin_every_time() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::from_cache_size(-1));
    let stored = kms.encrypt(b"value", KEY.into()).await.expect("encrypt");
    for i in 1..=3 {
        kms.decrypt(&stored, KEY.into()).await.expect("decrypt");
        assert_eq!(service.decrypts(), i);
    }
    assert_eq!(kms.cached_deks(), 0);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    const N: usize = 4;
    let service = FakeKms::new();
    let writer = provider(&service, KmsV1Options::from_cache_size(-1));
    let mut values = Vec::new();
    for i in 0..=N {
        let plain = format!("value {i}");
        let stored = writer
            .encrypt(plain.as_bytes(), KEY.into())
            .await
            .expect("encrypt");
        values.push((plain, stored));
    }

    let reader = provider(&service, KmsV1Options::from_cache_size(N as i32));
    for (plain, stored) in &values {
        let read = reader.decrypt(stored, KEY.into()).await.expect("decrypt");
        assert_eq!(read.plaintext, plain.as_bytes());
    }
    assert_eq!(service.decrypts(), N + 1);
    assert_eq!(reader.cached_deks(), N);

    // The most recent is still cached; the first was evicted.
    reader
        .decrypt(&values[N].1, KEY.into())
        .await
        .expect("decrypt");
    assert_eq!(service.decrypts(), N + 1);
    reader
        .decrypt(&values[0].1, KEY.into())
        .await
        .expect("decrypt");
    assert_eq!(
        service.decrypts(),
        N + 2,
        "the evicted DEK is fetched again"
    );
    assert_eq!(reader.cached_deks(), N);
}

#[tokio::test]
async fn a_cache_ttl_expires_entries() {
    let service = FakeKms::new();
    let clock = Arc::new(ManualClock::new());
    let options = KmsV1Options::default()
        .with_cache(CacheLimits::new(10, Some(Duration::from_secs(60))))
        .with_clock(clock.clone());
    let kms = provider(&service, options);
    let stored = kms.encrypt(b"value", KEY.into()).await.expect("encrypt");
    clock.advance(Duration::from_secs(59));
    kms.decrypt(&stored, KEY.into()).await.expect("decrypt");
    assert_eq!(service.decrypts(), 0);
    clock.advance(Duration::from_secs(1));
    kms.decrypt(&stored, KEY.into()).await.expect("decrypt");
    assert_eq!(service.decrypts(), 1);
}

// ---------------------------------------------------------------------------
// Plugin failures and broken answers

#[tokio::test]
async fn a_service_error_surfaces_without_secrets() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::from_cache_size(-1));
    let plain = b"a very secret password";
    let stored = kms.encrypt(plain, KEY.into()).await.expect("encrypt");
    let (encrypted_dek, _) = parts(&stored);
    let dek = B64.decode(encrypted_dek).expect("base64");

    service.set_down(true);
    let result = kms.decrypt(&stored, KEY.into()).await;
    assert!(
        is_down(&result),
        "the service's error is returned as is: {result:?}"
    );
    let err = result.expect_err("decrypt fails");
    assert_no_secret(&err, &[plain, &dek, encrypted_dek]);

    let result = kms.encrypt(plain, KEY.into()).await;
    assert!(is_down(&result), "{result:?}");
    assert_no_secret(&result.expect_err("encrypt fails"), &[plain]);
}

#[tokio::test]
async fn an_oversized_or_empty_wrapped_dek_is_refused() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::default());

    service.set_encrypt_override(EncryptOverride {
        ciphertext: Some(vec![b'x'; 70000]),
        ..EncryptOverride::default()
    });
    let err = kms
        .encrypt(b"value", KEY.into())
        .await
        .expect_err("too long");
    let Error::Kms(kms_error) = &err else {
        panic!("expected a KMS error, got {err:?}")
    };
    assert!(!kms_error.is_transient());
    let text = err.to_string();
    assert!(text.contains("70000") && text.contains("65535"), "{text}");

    // 65535 bytes is the most that fits.
    service.set_encrypt_override(EncryptOverride {
        ciphertext: Some(vec![b'x'; 65535]),
        ..EncryptOverride::default()
    });
    let stored = kms.encrypt(b"value", KEY.into()).await.expect("65535 fits");
    assert_eq!(&stored[PREFIX.len()..PREFIX.len() + 2], &[0xff, 0xff]);
    // It was cached under those bytes, so it reads back without the plugin.
    let read = kms.decrypt(&stored, KEY.into()).await.expect("decrypt");
    assert_eq!(read.plaintext, b"value");

    service.set_encrypt_override(EncryptOverride {
        ciphertext: Some(Vec::new()),
        ..EncryptOverride::default()
    });
    let err = kms.encrypt(b"value", KEY.into()).await.expect_err("empty");
    assert!(matches!(err, Error::Kms(_)), "{err:?}");
}

#[tokio::test]
async fn a_dek_of_a_wrong_length_is_refused() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::default());
    let stored = kms.encrypt(b"value", KEY.into()).await.expect("encrypt");

    let reader = provider(&service, KmsV1Options::default());
    for len in [0, 1, 17, 31, 33, 64] {
        let dek = vec![0x5au8; len];
        service.set_decrypt_returns(Some(dek.clone()));
        let err = reader
            .decrypt(&stored, KEY.into())
            .await
            .expect_err("bad DEK");
        assert!(matches!(err, Error::Kms(_)), "{len}: {err:?}");
        assert!(err.to_string().contains(&format!("{len} bytes")), "{err}");
        assert_no_secret(&err, &[&dek]);
    }
    assert_eq!(reader.cached_deks(), 0, "nothing is cached for a bad DEK");
}

#[tokio::test]
async fn a_wrong_dek_fails_both_modes() {
    let service = FakeKms::new();
    let kms = provider(&service, KmsV1Options::default());
    let stored = kms
        .encrypt(b"value value value", KEY.into())
        .await
        .expect("encrypt");
    let reader = provider(&service, KmsV1Options::default());
    service.set_decrypt_returns(Some(vec![9u8; 32]));
    let err = reader
        .decrypt(&stored, KEY.into())
        .await
        .expect_err("wrong DEK");
    assert!(
        matches!(&err, Error::Aggregate(e) if e.len() == 2),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------
// The apiserver's vectors

struct Vector {
    name: String,
    provider_name: String,
    storage_key: String,
    stored: Vec<u8>,
    plaintext: Vec<u8>,
    expect_ok: bool,
    stale: bool,
}

/// The `kmsv1*` and `negative/kmsv1*` lines whose config has a single KMS v1
/// provider.
fn kms_v1_vectors() -> Vec<Vector> {
    let mut vectors = Vec::new();
    for (file, v) in k8s_envelope_test_support::fixtures::vectors() {
        let name = v["name"].as_str().expect("name").to_owned();
        if !(name.starts_with("kmsv1") || name.starts_with("negative/kmsv1")) {
            continue;
        }
        let resources = v["config"]["resources"].as_array().expect("resources");
        let providers: Vec<&serde_json::Value> = resources
            .iter()
            .flat_map(|r| r["providers"].as_array().expect("providers"))
            .collect();
        let [only] = providers.as_slice() else {
            continue;
        };
        let Some(kms) = only.get("kms") else {
            continue;
        };
        if kms
            .get("apiVersion")
            .and_then(|a| a.as_str())
            .unwrap_or("v1")
            != "v1"
        {
            continue;
        }
        let decode = |field: &str| B64.decode(v[field].as_str().unwrap_or("")).expect(field);
        vectors.push(Vector {
            provider_name: kms["name"].as_str().expect("kms name").to_owned(),
            storage_key: v["storage_key"].as_str().expect("storage_key").to_owned(),
            stored: decode("stored_b64"),
            plaintext: decode("plaintext_b64"),
            expect_ok: match v["expect"].as_str() {
                Some("ok") => true,
                Some("error") => false,
                other => panic!("{name}: unknown expect {other:?}"),
            },
            stale: v["stale"].as_bool().unwrap_or(false),
            name: format!("{file}: {name}"),
        });
    }
    let ok = vectors.iter().filter(|v| v.expect_ok).count();
    let bad = vectors.len() - ok;
    assert!(
        ok >= 33 && bad >= 21,
        "{ok} ok and {bad} negative KMS v1 vectors"
    );
    vectors
}

/// Checks every vector against providers over `service` (a fresh provider per
/// vector, and one shared provider so that the cache is exercised too).
async fn check_vectors(service: Arc<dyn KmsServiceV1>) {
    let mut shared: Option<KmsV1Provider> = None;
    for v in kms_v1_vectors() {
        let fresh = KmsV1Provider::new(&v.provider_name, service.clone(), KmsV1Options::default())
            .expect("provider");
        let shared = shared.get_or_insert_with(|| {
            KmsV1Provider::new(&v.provider_name, service.clone(), KmsV1Options::default())
                .expect("provider")
        });
        assert!(v.stored.starts_with(fresh.prefix()), "{}: prefix", v.name);
        for kms in [&fresh, &*shared] {
            let key = StorageKey::from(v.storage_key.as_str());
            let result = kms.decrypt(&v.stored, key).await;
            match (v.expect_ok, result) {
                (true, Ok(read)) => {
                    assert_eq!(read.plaintext, v.plaintext, "{}: plaintext", v.name);
                    assert_eq!(read.stale, v.stale, "{}: stale", v.name);
                }
                (true, Err(e)) => panic!("{}: expected success, got {e}", v.name),
                (false, Ok(_)) => panic!("{}: expected an error", v.name),
                (false, Err(e)) => {
                    let secrets: Vec<&[u8]> = vec![&v.plaintext];
                    assert_no_secret(&e, &secrets);
                }
            }
        }
    }
}

#[tokio::test]
async fn apiserver_vectors_decrypt() {
    check_vectors(FakeKms::new()).await;
}

// ---------------------------------------------------------------------------
// A real plugin on a real unix socket: the plugin kit serving the base64
// mock, as `kms-plugin-local --mock-base64 --api v1` does (the CLI
// package's tests run that binary as a process).

#[cfg(unix)]
mod real_plugin {
    use super::*;
    use k8s_envelope::kms::{GrpcClient, KmsEndpoint};
    use k8s_envelope_kms_plugin::{Base64MockKek, PluginApis, PluginHandle, PluginServer};

    /// Serves the base64 mock as a KMS v1 plugin in a fresh directory and
    /// waits until its v1 `Version` answers.
    async fn start() -> (tempfile::TempDir, PluginHandle, Arc<GrpcClient>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("kms.sock");
        let endpoint =
            KmsEndpoint::parse(&format!("unix://{}", socket.display())).expect("endpoint");
        let plugin = PluginServer::new(Base64MockKek::new())
            .apis(PluginApis::V1)
            .serve(&endpoint)
            .await
            .expect("serve the plugin");
        let client = Arc::new(GrpcClient::new(endpoint, Duration::from_secs(3)));
        let version = client.as_v1().version().await.expect("Version");
        assert_eq!(version.version, "v1beta1");
        (dir, plugin, client)
    }

    /// A plugin that admits only another user closes this process's
    /// connections before reading a byte, on a socket file and on an
    /// abstract socket (whose only access control the check is); the
    /// default admits the plugin's own user.
    #[tokio::test]
    async fn peers_not_allowed_are_refused() {
        use k8s_envelope_kms_plugin::AllowedPeers;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = format!("unix://{}", dir.path().join("kms.sock").display());
        let name = format!("unix:///@k8s-envelope-peers-{}", std::process::id());
        for endpoint in [file, name] {
            let endpoint = KmsEndpoint::parse(&endpoint).expect("endpoint");
            let me = effective_uid();
            let others = AllowedPeers::nobody()
                .with_user(me.wrapping_add(1))
                .with_group(u32::MAX - 1);
            for (peers, admitted) in [(others, false), (AllowedPeers::default(), true)] {
                let plugin = PluginServer::new(Base64MockKek::new())
                    .apis(PluginApis::V1)
                    .allow_peers(peers)
                    .serve(&endpoint)
                    .await
                    .expect("serve the plugin");
                let client = GrpcClient::new(endpoint.clone(), Duration::from_secs(2));
                let answer = client.as_v1().version().await;
                assert_eq!(answer.is_ok(), admitted, "{endpoint}: {answer:?}");
                plugin.shutdown().await.expect("shutdown");
            }
        }
    }

    /// This process's effective user, from the owner of a file it creates.
    fn effective_uid() -> u32 {
        use std::os::unix::fs::MetadataExt as _;
        let file = tempfile::NamedTempFile::new().expect("temp file");
        file.as_file().metadata().expect("metadata").uid()
    }

    #[tokio::test]
    async fn round_trip_through_the_real_plugin() {
        let (_dir, _plugin, client) = start().await;
        let service: Arc<dyn KmsServiceV1> = client;
        let kms = KmsV1Provider::new(NAME, service.clone(), KmsV1Options::from_cache_size(-1))
            .expect("provider");
        for len in [0, 1, 17, 1024, 65536] {
            let plain = plaintext(len);
            let stored = kms.encrypt(&plain, KEY.into()).await.expect("encrypt");
            // The mock plugin's v1 ciphertext is base64 of the DEK.
            let (encrypted_dek, data) = parts(&stored);
            assert_eq!(B64.decode(encrypted_dek).expect("base64").len(), 32);
            assert_eq!(data.len(), 12 + len + 16);
            let read = kms.decrypt(&stored, KEY.into()).await.expect("decrypt");
            assert_eq!(read.plaintext, plain);
            assert!(!read.stale);
            assert!(kms
                .decrypt(&stored, "/registry/other".into())
                .await
                .is_err());
        }
    }

    #[tokio::test]
    async fn apiserver_vectors_through_the_real_plugin() {
        let (_dir, _plugin, client) = start().await;
        check_vectors(client).await;
    }

    #[tokio::test]
    async fn plugin_errors_surface_as_kms_errors() {
        let (_dir, _plugin, client) = start().await;
        let kms = KmsV1Provider::new(NAME, client, KmsV1Options::default()).expect("provider");
        // The plugin refuses a ciphertext that is not base64.
        let stored = assemble(b"!!not base64!!", &[0u8; 40]);
        let err = kms.decrypt(&stored, KEY.into()).await.expect_err("refused");
        let Error::Kms(e) = &err else {
            panic!("expected a KMS error, got {err:?}")
        };
        assert!(!e.is_transient(), "{e}");
        assert!(
            err.to_string()
                .contains("/v1beta1.KeyManagementService/Decrypt"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_absent_plugin_fails_without_secrets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("nobody.sock");
        let endpoint =
            KmsEndpoint::parse(&format!("unix://{}", socket.display())).expect("endpoint");
        let client = Arc::new(GrpcClient::new(endpoint, Duration::from_secs(3)));
        let kms = KmsV1Provider::new(NAME, client, KmsV1Options::default()).expect("provider");
        let plain = b"a very secret password";
        let err = kms.encrypt(plain, KEY.into()).await.expect_err("no plugin");
        let Error::Kms(e) = &err else {
            panic!("expected a KMS error, got {err:?}")
        };
        assert!(e.is_transient(), "{e}");
        assert_no_secret(&err, &[plain]);

        let dek = [0x11u8; 32];
        let encrypted_dek = B64.encode(dek);
        let stored = assemble(encrypted_dek.as_bytes(), &[0u8; 40]);
        let err = kms
            .decrypt(&stored, KEY.into())
            .await
            .expect_err("no plugin");
        assert!(matches!(&err, Error::Kms(e) if e.is_transient()), "{err:?}");
        assert_no_secret(&err, &[&dek, encrypted_dek.as_bytes()]);
    }
}
