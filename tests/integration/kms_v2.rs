//! The KMS v2 provider against the test-support crate's `FakeKms`, an
//! in-process service that behaves like Kubernetes' base64 mock plugin
//! (ciphertext = base64(plaintext), annotation
//! `local-kek.kms.kubernetes.io: encrypted-local-kek`) but can be steered:
//! its key ID, healthz and version, a "down" switch, wrong `Encrypt` answers,
//! and call counters. Time is a `ManualClock`, so no test sleeps for minutes.
//!
//! The behaviour checked is kube-apiserver's (pkg/storage/value/encrypt/
//! envelope/kmsv2/envelope.go and pkg/server/options/encryptionconfig/
//! config.go: `isKMSv2ProviderHealthyAndMaybeRotateDEK`,
//! `rotateDEKOnKeyIDChange`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInOut, KeyInit};
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hkdf::Hkdf;
use k8s_envelope::kms::{
    key_id_hash, CacheLimits, Clock, DekSourceType, KmsErrorKind, KmsV2Options, KmsV2Provider,
    ManualClock, StatusCode,
};
use k8s_envelope::{
    Decrypted, Error, Identity, KmsApiVersion, Provider, ProviderKind, Transformer,
};
use k8s_envelope_test_support::encrypted_object::EncryptedObject;
use k8s_envelope_test_support::fake_kms::{
    is_down as is_plugin_down, EncryptOverride, FakeKms, ANNOTATION_KEY, ANNOTATION_VALUE,
    DOWN_REASON,
};
use prost::Message as _;
use sha2::{Digest, Sha256};

const NAME: &str = "kms-v2-test";
const PREFIX: &str = "k8s:enc:kms:v2:kms-v2-test:";
const KEY: &str = "/registry/secrets/default/db-creds";
const OTHER_KEY: &str = "/registry/secrets/default/other";

/// Seed-mode `encryptedData` overhead: info(32) + nonce(12) + tag(16).
const SEED_OVERHEAD: usize = 32 + 12 + 16;
/// `AES_GCM_KEY` `encryptedData` overhead: nonce(12) + tag(16).
const DEK_OVERHEAD: usize = 12 + 16;

// ---------------------------------------------------------------------------
// Helpers

fn mock_annotations() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([(ANNOTATION_KEY.to_owned(), ANNOTATION_VALUE.to_vec())])
}

fn options(clock: &Arc<ManualClock>) -> KmsV2Options {
    KmsV2Options::default().with_clock(clock.clone())
}

fn provider_with(mock: &Arc<FakeKms>, options: KmsV2Options) -> KmsV2Provider {
    KmsV2Provider::new(NAME, mock.clone(), options).expect("provider")
}

fn provider(mock: &Arc<FakeKms>, clock: &Arc<ManualClock>) -> KmsV2Provider {
    provider_with(mock, options(clock))
}

async fn ready_with(mock: &Arc<FakeKms>, options: KmsV2Options) -> KmsV2Provider {
    let p = provider_with(mock, options);
    p.refresh().await.expect("first refresh");
    p
}

async fn ready(mock: &Arc<FakeKms>, clock: &Arc<ManualClock>) -> KmsV2Provider {
    ready_with(mock, options(clock)).await
}

async fn enc(p: &KmsV2Provider, plaintext: &[u8], key: &str) -> Result<Vec<u8>, Error> {
    Provider::encrypt(p, plaintext, key.into()).await
}

async fn dec(p: &KmsV2Provider, stored: &[u8], key: &str) -> Result<Decrypted, Error> {
    Provider::decrypt(p, stored, key.into()).await
}

/// The protobuf body of a stored value.
fn body(stored: &[u8]) -> &[u8] {
    stored
        .strip_prefix(PREFIX.as_bytes())
        .expect("the value starts with the provider prefix")
}

fn decode(stored: &[u8]) -> EncryptedObject {
    EncryptedObject::decode(body(stored)).expect("an EncryptedObject")
}

fn stored(object: &EncryptedObject) -> Vec<u8> {
    let mut out = PREFIX.as_bytes().to_vec();
    out.extend(object.encode_to_vec());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic bytes that look random (xorshift), for hand-made values.
fn pseudo_random(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// AES-GCM open with a 16- or 32-byte key, independent of the crate.
fn gcm_open(key: &[u8], nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    let split = sealed.len().checked_sub(16)?;
    let (ciphertext, tag) = sealed.split_at(split);
    let tag: [u8; 16] = tag.try_into().ok()?;
    let mut buf = ciphertext.to_vec();
    let nonce = aes_gcm::Nonce::from(nonce);
    let tag = aes_gcm::Tag::from(tag);
    let ok = match key.len() {
        16 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .ok()?
            .decrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into(), &tag)
            .is_ok(),
        32 => aes_gcm::Aes256Gcm::new_from_slice(key)
            .ok()?
            .decrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into(), &tag)
            .is_ok(),
        _ => false,
    };
    ok.then_some(buf)
}

/// AES-GCM seal with a 16- or 32-byte key: ciphertext || tag.
fn gcm_seal(key: &[u8], nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut buf = plaintext.to_vec();
    let nonce = aes_gcm::Nonce::from(*nonce);
    let tag = match key.len() {
        16 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .expect("key")
            .encrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into()),
        32 => aes_gcm::Aes256Gcm::new_from_slice(key)
            .expect("key")
            .encrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into()),
        n => panic!("no AES-GCM with a {n}-byte key here"),
    }
    .expect("seal");
    buf.extend_from_slice(&tag);
    buf
}

/// The data key of a seed-mode value: HKDF-Expand(SHA-256, PRK = seed, info).
fn derive(seed: &[u8], info: &[u8]) -> [u8; 32] {
    let hkdf = Hkdf::<Sha256>::from_prk(seed).expect("seed of at least 32 bytes");
    let mut key = [0u8; 32];
    hkdf.expand(info, &mut key).expect("expand");
    key
}

/// Opens a seed-mode `encryptedData` without the crate.
fn open_seed_data(seed: &[u8], data: &[u8], aad: &str) -> Option<Vec<u8>> {
    let (info, rest) = data.split_at_checked(32)?;
    let (nonce, sealed) = rest.split_at_checked(12)?;
    gcm_open(&derive(seed, info), nonce, aad.as_bytes(), sealed)
}

/// Waits, in real time, for `cond`.
async fn wait_for(what: &str, timeout: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn is_not_ready(result: &Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(result, Err(Error::Kms(e))
        if matches!(e.kind(), KmsErrorKind::NotReady) && e.provider() == Some(NAME) && e.is_transient())
}

/// The reason of a provider's refusal to write, checked to be one.
fn write_refused<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Kms(e)) => match e.kind() {
            KmsErrorKind::WriteRefused(reason) => {
                assert_eq!(e.provider(), Some(NAME));
                assert!(!e.is_transient(), "{e}");
                reason.clone()
            }
            other => panic!("expected a refusal to write, got {other:?}"),
        },
        other => panic!("expected a refusal to write, got {other:?}"),
    }
}

/// The text of a failed refresh, checked to be a KMS provider error.
fn refresh_error(result: Result<(), Error>) -> String {
    match result {
        Err(Error::Kms(e))
            if matches!(
                e.kind(),
                KmsErrorKind::Unhealthy(_) | KmsErrorKind::InvalidAnswer(_)
            ) && e.provider() == Some(NAME) =>
        {
            e.to_string()
        }
        other => panic!("expected an unhealthy / invalid answer error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 1. Not ready before the first good status

#[tokio::test]
async fn encrypt_and_decrypt_fail_with_not_ready_before_the_first_refresh() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let fresh = provider(&mock, &clock);

    assert!(is_not_ready(&enc(&fresh, b"secret", KEY).await));

    // A perfectly valid value (written by another instance) is not read either.
    let writer = ready(&mock, &clock).await;
    let value = enc(&writer, b"secret", KEY).await.expect("write");
    assert!(is_not_ready(&dec(&fresh, &value, KEY).await));
    assert_eq!(fresh.dek_cache_len(), 0);

    // A failed first refresh leaves it not ready.
    mock.set_down(true);
    let result = fresh.refresh().await;
    assert!(is_plugin_down(&result), "{result:?}");
    assert!(is_not_ready(&enc(&fresh, b"secret", KEY).await));
    assert!(is_not_ready(&dec(&fresh, &value, KEY).await));

    // Once the plugin answers, it works.
    mock.set_down(false);
    fresh.refresh().await.expect("refresh");
    let read = dec(&fresh, &value, KEY).await.expect("read");
    assert_eq!(read.plaintext, b"secret");
    assert!(enc(&fresh, b"secret", KEY).await.is_ok());
}

// ---------------------------------------------------------------------------
// 2. The stored format, and reading back our own writes

#[tokio::test]
async fn writes_the_apiserver_seed_format_and_reads_it_back_from_cache() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready(&mock, &clock).await;
    assert_eq!(mock.statuses(), 1);
    assert_eq!(mock.encrypts(), 1);
    let seed = mock.last_secret();
    assert_eq!(seed.len(), 32, "a 32-byte seed is sent to Encrypt");

    let plaintext = b"the quick brown fox jumps over the lazy dog";
    let value = enc(&p, plaintext, KEY).await.expect("write");
    assert!(value.starts_with(PREFIX.as_bytes()));

    let object = decode(&value);
    assert_eq!(object.key_id, "1");
    assert_eq!(object.encrypted_dek_source_type, 1, "HKDF seed");
    assert_eq!(object.encrypted_dek_source, B64.encode(&seed).as_bytes());
    assert_eq!(object.annotations, mock_annotations());
    assert_eq!(object.encrypted_data.len(), SEED_OVERHEAD + plaintext.len());
    // Canonical proto3 encoding, as Go's marshaller writes it.
    assert_eq!(object.encode_to_vec(), body(&value));

    // An independent implementation of the format opens it.
    assert_eq!(
        open_seed_data(&seed, &object.encrypted_data, KEY).as_deref(),
        Some(&plaintext[..])
    );

    let read = dec(&p, &value, KEY).await.expect("read");
    assert_eq!(read.plaintext, plaintext);
    assert!(!read.stale);
    assert_eq!(mock.decrypts(), 0, "the write key is cached");

    // Every write has fresh info and nonce.
    let again = decode(&enc(&p, plaintext, KEY).await.expect("write"));
    assert_ne!(again.encrypted_data[..44], object.encrypted_data[..44]);

    // Empty plaintext round-trips.
    let empty = enc(&p, b"", KEY).await.expect("write empty");
    assert_eq!(decode(&empty).encrypted_data.len(), SEED_OVERHEAD);
    assert_eq!(dec(&p, &empty, KEY).await.expect("read").plaintext, b"");

    // The storage key is the AAD: another key does not open it.
    assert!(matches!(
        dec(&p, &value, OTHER_KEY).await,
        Err(Error::Decrypt {
            provider: ProviderKind::Kms(KmsApiVersion::V2)
        })
    ));
    assert_eq!(mock.decrypts(), 0);
}

#[tokio::test]
async fn a_derived_key_seals_at_most_writes_per_derived_key_values() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready_with(&mock, options(&clock).with_writes_per_derived_key(3)).await;
    let seed = mock.last_secret();
    let mut values = Vec::new();
    for i in 0..7 {
        values.push(
            enc(&p, format!("value {i}").as_bytes(), KEY)
                .await
                .expect("write"),
        );
    }
    let data: Vec<Vec<u8>> = values.iter().map(|v| decode(v).encrypted_data).collect();
    let info = |i: usize| &data[i][..32];
    let nonce = |i: usize| &data[i][32..44];
    // Three values per info, then a fresh one; fresh nonces throughout.
    assert_eq!(info(0), info(1));
    assert_eq!(info(1), info(2));
    assert_ne!(info(2), info(3));
    assert_eq!(info(3), info(5));
    assert_ne!(info(5), info(6));
    assert_ne!(info(0), info(6));
    for i in 0..7 {
        for j in 0..i {
            assert_ne!(nonce(i), nonce(j), "values {j} and {i}");
        }
        // The apiserver's reading of the format opens each value, and so do we.
        assert_eq!(
            open_seed_data(&seed, &data[i], KEY),
            Some(format!("value {i}").into_bytes())
        );
        let read = dec(&p, &values[i], KEY).await.expect("read");
        assert_eq!(read.plaintext, format!("value {i}").as_bytes());
        assert!(!read.stale);
    }

    // Another instance reads them with one Decrypt; the derived keys it
    // caches number one per info, not one per value.
    let reader = ready(&mock, &clock).await;
    for (i, value) in values.iter().enumerate() {
        let read = dec(&reader, value, KEY).await.expect("read");
        assert_eq!(read.plaintext, format!("value {i}").as_bytes());
    }
    assert_eq!(mock.decrypts(), 1);

    // Out-of-range settings are clamped: 0 behaves as 1.
    let one = ready_with(&mock, options(&clock).with_writes_per_derived_key(0)).await;
    let a = decode(&enc(&one, b"a", KEY).await.expect("write")).encrypted_data;
    let b = decode(&enc(&one, b"b", KEY).await.expect("write")).encrypted_data;
    assert_ne!(a[..32], b[..32]);
}

/// Through a transformer, a value of an older seed is read from the plugin
/// once (the async path), then from the DEK cache without waiting
/// (`decrypt_ready`); both reads say stale, and annotations the plugin never
/// validated are refused on the miss, before the plugin sees them.
#[tokio::test]
async fn a_transformer_reads_older_seeds_from_the_cache_and_says_stale() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let writer = ready(&mock, &clock).await;
    let old = enc(&writer, b"payload", KEY).await.expect("write");
    let reader = ready(&mock, &clock).await;
    let transformer =
        k8s_envelope::Transformer::new(vec![Arc::new(reader.clone())]).expect("transformer");
    for _ in 0..3 {
        let read = transformer.decrypt(&old, KEY.into()).await.expect("read");
        assert_eq!(read.plaintext, b"payload");
        assert!(!read.stale, "same key ID and mode");
    }
    assert_eq!(mock.decrypts(), 1, "one miss, then hits");

    mock.set_key_id("2");
    reader.refresh().await.expect("refresh");
    for _ in 0..2 {
        let read = transformer.decrypt(&old, KEY.into()).await.expect("read");
        assert!(read.stale, "written under key ID 1");
    }
    assert_eq!(mock.decrypts(), 1);

    // Another seed with an annotation key that is not a domain name.
    let mut object = decode(&old);
    object.encrypted_dek_source = B64.encode([9u8; 32]).into_bytes();
    object
        .annotations
        .insert("not a domain".to_owned(), b"x".to_vec());
    assert!(matches!(
        transformer.decrypt(&stored(&object), KEY.into()).await,
        Err(Error::Malformed { .. })
    ));
    assert_eq!(mock.decrypts(), 1, "refused before the plugin was asked");
}

// ---------------------------------------------------------------------------
// 3. Another instance reads through one Decrypt, then from cache

#[tokio::test]
async fn a_reader_decrypts_a_seed_once_then_serves_reads_from_cache() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let writer = ready(&mock, &clock).await;
    let reader = ready(&mock, &clock).await;
    assert_eq!(reader.dek_cache_len(), 1, "its own write seed");

    let values: Vec<Vec<u8>> = {
        let mut v = Vec::new();
        for i in 0..5 {
            v.push(
                enc(&writer, format!("value {i}").as_bytes(), KEY)
                    .await
                    .expect("write"),
            );
        }
        v
    };
    let first = dec(&reader, &values[0], KEY).await.expect("read");
    assert_eq!(first.plaintext, b"value 0");
    assert!(!first.stale, "same key ID and source type");
    assert_eq!(mock.decrypts(), 1);
    assert_eq!(reader.dek_cache_len(), 2);

    // Decrypt got exactly what the value stores.
    let requests = mock.decrypt_requests();
    let object = decode(&values[0]);
    assert_eq!(requests[0].key_id, "1");
    assert_eq!(requests[0].ciphertext, object.encrypted_dek_source);
    assert_eq!(requests[0].annotations, mock_annotations());

    for (i, value) in values.iter().enumerate() {
        let read = dec(&reader, value, KEY).await.expect("read");
        assert_eq!(read.plaintext, format!("value {i}").as_bytes());
        assert!(!read.stale);
    }
    assert_eq!(mock.decrypts(), 1, "one Decrypt per seed");
    assert_eq!(reader.dek_cache_len(), 2);
}

// ---------------------------------------------------------------------------
// 4. Key rotation

#[tokio::test]
async fn key_id_change_rotates_the_seed_and_marks_old_values_stale() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready(&mock, &clock).await;
    let first_seed = mock.last_secret();
    let old = enc(&p, b"payload", KEY).await.expect("write");
    assert_eq!(decode(&old).key_id, "1");

    // Same key ID: no new seed.
    p.refresh().await.expect("refresh");
    assert_eq!(mock.encrypts(), 1);

    mock.set_key_id("2");
    p.refresh().await.expect("refresh");
    assert_eq!(mock.encrypts(), 2, "a new seed for the new key ID");
    assert_ne!(mock.last_secret(), first_seed);
    assert_eq!(p.health().key_id_hash, Some(key_id_hash("2")));

    let read = dec(&p, &old, KEY).await.expect("read old");
    assert_eq!(read.plaintext, b"payload");
    assert!(read.stale, "written under key ID 1");

    let rewritten = enc(&p, &read.plaintext, KEY).await.expect("rewrite");
    let object = decode(&rewritten);
    assert_eq!(object.key_id, "2");
    assert_eq!(
        object.encrypted_dek_source,
        B64.encode(mock.last_secret()).as_bytes()
    );
    let read = dec(&p, &rewritten, KEY).await.expect("read new");
    assert_eq!(read.plaintext, b"payload");
    assert!(!read.stale);

    p.refresh().await.expect("refresh");
    assert_eq!(mock.encrypts(), 2, "same key ID: no re-encrypt");
    assert_eq!(mock.decrypts(), 0, "both seeds were ours, and cached");

    // Rotating back to "1" makes a new seed too (the old one is not reused
    // for writes), and values under the old "1" seed are current again.
    mock.set_key_id("1");
    p.refresh().await.expect("refresh");
    assert_eq!(mock.encrypts(), 3);
    assert!(!dec(&p, &old, KEY).await.expect("read").stale);
    assert!(dec(&p, &rewritten, KEY).await.expect("read").stale);
}

// ---------------------------------------------------------------------------
// 5. Encrypt answering another key ID

#[tokio::test]
async fn encrypt_answering_another_key_id_keeps_the_old_write_key() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready(&mock, &clock).await;
    let cached = p.dek_cache_len();

    mock.set_key_id("2");
    mock.set_encrypt_override(EncryptOverride {
        key_id: Some("3".to_owned()),
        ..Default::default()
    });
    let text = refresh_error(p.refresh().await);
    assert!(text.contains("Encrypt answered key ID"), "{text}");
    assert!(text.contains(&key_id_hash("3")), "{text}");
    assert!(text.contains(&key_id_hash("2")), "{text}");
    assert_eq!(mock.encrypts(), 2);
    assert_eq!(p.dek_cache_len(), cached, "the refused seed is not cached");

    let health = p.health();
    assert!(!health.healthy);
    assert!(health.can_write);
    assert_eq!(health.key_id_hash, Some(key_id_hash("1")));

    // Writes still work, under the old key ID.
    let value = enc(&p, b"x", KEY).await.expect("write");
    assert_eq!(decode(&value).key_id, "1");
    // The status key ID is now "2", but staleness is against the write key.
    assert!(!dec(&p, &value, KEY).await.expect("read").stale);

    // Every refresh tries again; a failed rotation does not extend the old
    // key's life, so 3 minutes after the last good status writes stop.
    clock.advance(Duration::from_secs(100));
    assert!(p.refresh().await.is_err());
    assert_eq!(mock.encrypts(), 3);
    clock.advance(Duration::from_secs(81));
    write_refused(enc(&p, b"x", KEY).await);

    // A consistent answer fixes it.
    mock.set_encrypt_override(EncryptOverride::default());
    p.refresh().await.expect("refresh");
    assert_eq!(
        decode(&enc(&p, b"x", KEY).await.expect("write")).key_id,
        "2"
    );

    // On the first refresh, the mismatch leaves the provider not ready.
    let fresh = provider(&mock, &clock);
    mock.set_encrypt_override(EncryptOverride {
        key_id: Some("3".to_owned()),
        ..Default::default()
    });
    refresh_error(fresh.refresh().await);
    assert!(is_not_ready(&enc(&fresh, b"x", KEY).await));
    assert_eq!(fresh.dek_cache_len(), 0);
    assert_eq!(fresh.health().key_id_hash, None);
}

// ---------------------------------------------------------------------------
// 6. Write key expiry

#[tokio::test]
async fn writes_stop_three_minutes_after_the_last_good_status_reads_go_on() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready(&mock, &clock).await;
    let other_writer = ready(&mock, &clock).await;
    let own = enc(&p, b"own", KEY).await.expect("write");
    let foreign = enc(&other_writer, b"foreign", KEY).await.expect("write");

    clock.advance(Duration::from_secs(3 * 60 - 1));
    assert!(enc(&p, b"x", KEY).await.is_ok(), "179 s: still writable");
    assert!(p.health().can_write);

    mock.set_down(true);
    clock.advance(Duration::from_secs(2));
    let result = p.refresh().await;
    assert!(is_plugin_down(&result), "{result:?}");
    let health = p.health();
    assert!(!health.healthy);
    assert!(!health.can_write);
    assert!(health
        .error
        .as_deref()
        .is_some_and(|e| e.contains(DOWN_REASON)));

    let reason = write_refused(enc(&p, b"x", KEY).await);
    assert!(reason.contains("expired"), "{reason}");

    // Reads of cached seeds go on.
    let read = dec(&p, &own, KEY).await.expect("cached seed");
    assert_eq!(read.plaintext, b"own");
    assert!(!read.stale);

    // Reads that need the plugin fail with its error, and nothing is cached.
    let cached = p.dek_cache_len();
    let result = dec(&p, &foreign, KEY).await;
    assert!(
        is_plugin_down(&result),
        "expected the plugin's error, got {result:?}"
    );
    assert_eq!(p.dek_cache_len(), cached);

    // The plugin comes back: the same key ID, so the same seed, writable again.
    mock.set_down(false);
    let encrypts = mock.encrypts();
    p.refresh().await.expect("refresh");
    assert_eq!(mock.encrypts(), encrypts, "no new seed for the same key ID");
    assert!(p.health().can_write);
    let value = enc(&p, b"again", KEY).await.expect("write");
    assert_eq!(
        decode(&value).encrypted_dek_source,
        decode(&own).encrypted_dek_source
    );
    assert_eq!(
        dec(&p, &foreign, KEY).await.expect("read").plaintext,
        b"foreign"
    );
}

// ---------------------------------------------------------------------------
// 7. healthz and version

#[tokio::test]
async fn bad_healthz_is_an_error_but_a_key_id_change_is_still_acted_upon() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready(&mock, &clock).await;

    mock.set_healthz("plugin is degraded");
    mock.set_key_id("2");
    let text = refresh_error(p.refresh().await);
    assert!(text.contains("healthz"), "{text}");
    assert!(text.contains("plugin is degraded"), "{text}");
    let health = p.health();
    assert!(!health.healthy);
    assert!(health
        .error
        .as_deref()
        .is_some_and(|e| e.contains("healthz")));
    // As in the apiserver, the rotation happens anyway.
    assert_eq!(mock.encrypts(), 2);
    assert_eq!(health.key_id_hash, Some(key_id_hash("2")));
    assert_eq!(
        decode(&enc(&p, b"x", KEY).await.expect("write")).key_id,
        "2"
    );

    // ... and the answering plugin keeps the write key alive (the apiserver
    // extends the expiry whenever the key ID is valid).
    clock.advance(Duration::from_secs(170));
    assert!(p.refresh().await.is_err());
    clock.advance(Duration::from_secs(170));
    assert!(enc(&p, b"x", KEY).await.is_ok());

    mock.set_healthz("ok");
    p.refresh().await.expect("healthy again");
    assert!(p.health().healthy);
    assert_eq!(p.health().error, None);
}

#[tokio::test]
async fn unknown_or_changing_api_version_is_an_error() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready(&mock, &clock).await;

    mock.set_version("v3");
    let text = refresh_error(p.refresh().await);
    assert!(text.contains("v3"), "{text}");
    assert!(!p.health().healthy);

    mock.set_version("v2beta1");
    let text = refresh_error(p.refresh().await);
    assert!(text.contains("should not change"), "{text}");
    assert!(text.contains("v2beta1"), "{text}");

    mock.set_version("v2");
    p.refresh().await.expect("back to v2");
    assert!(p.health().healthy);

    // A plugin that started on v2beta1 must stay there.
    let old_plugin = FakeKms::new();
    old_plugin.set_version("v2beta1");
    let q = ready(&old_plugin, &clock).await;
    q.refresh().await.expect("v2beta1 again");
    old_plugin.set_version("v2");
    assert!(refresh_error(q.refresh().await).contains("should not change"));

    // A first status with a bad version does not pin the version.
    let odd_plugin = FakeKms::new();
    odd_plugin.set_version("v1");
    let r = provider(&odd_plugin, &clock);
    refresh_error(r.refresh().await);
    odd_plugin.set_version("v2beta1");
    r.refresh().await.expect("first valid version is v2beta1");
}

// ---------------------------------------------------------------------------
// 8. Invalid plugin answers

#[derive(Debug, Clone)]
enum BadAnswer {
    StatusKeyId(String),
    EncryptKeyId(String),
    EncryptCiphertext(Vec<u8>),
    EncryptAnnotations(BTreeMap<String, Vec<u8>>),
}

impl BadAnswer {
    fn all() -> Vec<(BadAnswer, &'static str)> {
        vec![
            (BadAnswer::StatusKeyId(String::new()), "keyID is empty"),
            (
                BadAnswer::StatusKeyId("k".repeat(2048)),
                "keyID exceeds the max size",
            ),
            (BadAnswer::EncryptKeyId(String::new()), "keyID is empty"),
            (
                BadAnswer::EncryptKeyId("k".repeat(2048)),
                "keyID exceeds the max size",
            ),
            (
                BadAnswer::EncryptCiphertext(vec![b'A'; 2048]),
                "encrypted DEK source exceeds",
            ),
            (
                BadAnswer::EncryptCiphertext(Vec::new()),
                "encrypted DEK source is empty",
            ),
            (
                BadAnswer::EncryptAnnotations(BTreeMap::from([(
                    "not_a_dns".to_owned(),
                    b"x".to_vec(),
                )])),
                "fully qualified domain name",
            ),
            (
                BadAnswer::EncryptAnnotations(BTreeMap::from([(
                    "big.example.com".to_owned(),
                    vec![7; 40 * 1024],
                )])),
                "total size of annotations",
            ),
        ]
    }

    /// Makes the mock answer this; Encrypt cases also change the status key
    /// ID to `status_key_id` so that a rotation is attempted.
    fn apply(&self, mock: &FakeKms, status_key_id: &str) {
        match self {
            BadAnswer::StatusKeyId(id) => mock.set_key_id(id),
            BadAnswer::EncryptKeyId(id) => {
                mock.set_key_id(status_key_id);
                mock.set_encrypt_override(EncryptOverride {
                    key_id: Some(id.clone()),
                    ..Default::default()
                });
            }
            BadAnswer::EncryptCiphertext(c) => {
                mock.set_key_id(status_key_id);
                mock.set_encrypt_override(EncryptOverride {
                    ciphertext: Some(c.clone()),
                    ..Default::default()
                });
            }
            BadAnswer::EncryptAnnotations(a) => {
                mock.set_key_id(status_key_id);
                mock.set_encrypt_override(EncryptOverride {
                    annotations: Some(a.clone()),
                    ..Default::default()
                });
            }
        }
    }

    fn is_status(&self) -> bool {
        matches!(self, BadAnswer::StatusKeyId(_))
    }
}

#[tokio::test]
async fn invalid_plugin_answers_are_refused_before_anything_is_cached() {
    let clock = Arc::new(ManualClock::new());
    for (bad, expected) in BadAnswer::all() {
        // On the first refresh: no write key at all.
        let mock = FakeKms::new();
        bad.apply(&mock, "1");
        let fresh = provider(&mock, &clock);
        let text = refresh_error(fresh.refresh().await);
        assert!(text.contains(expected), "{bad:?}: {text}");
        assert_eq!(fresh.dek_cache_len(), 0, "{bad:?}");
        assert!(is_not_ready(&enc(&fresh, b"x", KEY).await), "{bad:?}");
        assert_eq!(fresh.health().key_id_hash, None, "{bad:?}");
        assert!(!fresh.health().can_write, "{bad:?}");
        assert_eq!(mock.encrypts(), usize::from(!bad.is_status()), "{bad:?}");

        // After a good refresh: the old write key stays, nothing new cached.
        let mock = FakeKms::new();
        let warm = ready(&mock, &clock).await;
        let before = decode(&enc(&warm, b"x", KEY).await.expect("write"));
        let cached = warm.dek_cache_len();
        bad.apply(&mock, "2");
        let text = refresh_error(warm.refresh().await);
        assert!(text.contains(expected), "{bad:?}: {text}");
        assert_eq!(warm.dek_cache_len(), cached, "{bad:?}");
        assert_eq!(
            mock.encrypts(),
            1 + usize::from(!bad.is_status()),
            "{bad:?}"
        );
        let after = decode(&enc(&warm, b"x", KEY).await.expect("write"));
        assert_eq!(after.key_id, "1", "{bad:?}");
        assert_eq!(
            after.encrypted_dek_source, before.encrypted_dek_source,
            "{bad:?}"
        );
        assert_eq!(after.annotations, mock_annotations(), "{bad:?}");
        assert_eq!(warm.health().key_id_hash, Some(key_id_hash("1")), "{bad:?}");
    }
}

#[tokio::test]
async fn an_invalid_status_does_not_extend_the_write_key() {
    // As in the apiserver: only a valid status key ID moves the expiry.
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready(&mock, &clock).await;
    mock.set_key_id("");
    clock.advance(Duration::from_secs(120));
    refresh_error(p.refresh().await);
    assert!(p.health().can_write);
    clock.advance(Duration::from_secs(61));
    refresh_error(p.refresh().await);
    assert!(!p.health().can_write);
    write_refused(enc(&p, b"x", KEY).await);
    mock.set_key_id("1");
    p.refresh().await.expect("refresh");
    assert!(enc(&p, b"x", KEY).await.is_ok());
    assert_eq!(mock.encrypts(), 1, "same key ID, same seed");
}

// ---------------------------------------------------------------------------
// 9. AES_GCM_KEY write mode

#[tokio::test]
async fn aes_gcm_key_mode_writes_counter_nonces_and_seed_readers_see_it_stale() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let dek_writer = ready_with(
        &mock,
        options(&clock).with_write_mode(DekSourceType::AesGcmKey),
    )
    .await;
    let dek = mock.last_secret();
    assert_eq!(dek.len(), 32);
    let seed_reader = ready(&mock, &clock).await;

    let mut counters = Vec::new();
    let mut values = Vec::new();
    for i in 0..4u8 {
        let plaintext = vec![i; 10 + usize::from(i)];
        let value = enc(&dek_writer, &plaintext, KEY).await.expect("write");
        let object = decode(&value);
        assert_eq!(object.encrypted_dek_source_type, 0);
        // proto3 omits the default enum value: field 5 is absent.
        assert_eq!(object.encode_to_vec(), body(&value));
        assert_eq!(object.key_id, "1");
        assert_eq!(object.encrypted_dek_source, B64.encode(&dek).as_bytes());
        assert_eq!(object.annotations, mock_annotations());
        let data = &object.encrypted_data;
        assert_eq!(data.len(), DEK_OVERHEAD + plaintext.len());
        let counter = u64::from_le_bytes(data[4..12].try_into().expect("8 bytes"));
        counters.push(counter);
        assert_eq!(
            gcm_open(&dek, &data[..12], KEY.as_bytes(), &data[12..]),
            Some(plaintext.clone()),
            "independent AES-GCM open"
        );
        values.push((value, plaintext));
    }
    assert!(counters[0] > 1_000_000_000, "{counters:?}");
    for pair in counters.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "{counters:?}");
    }

    for (value, plaintext) in &values {
        let own = dec(&dek_writer, value, KEY).await.expect("own read");
        assert_eq!(&own.plaintext, plaintext);
        assert!(!own.stale);
        let other = dec(&seed_reader, value, KEY).await.expect("seed reader");
        assert_eq!(&other.plaintext, plaintext);
        assert!(other.stale, "source type differs from the reader's");
    }
    assert_eq!(mock.decrypts(), 1, "the seed reader decrypted the DEK once");

    // The other way round: seed values are stale for the DEK writer.
    let seed_value = enc(&seed_reader, b"seeded", KEY).await.expect("write");
    let read = dec(&dek_writer, &seed_value, KEY).await.expect("read");
    assert_eq!(read.plaintext, b"seeded");
    assert!(read.stale);
}

// ---------------------------------------------------------------------------
// 10. Bounded caches

#[tokio::test]
async fn dek_cache_is_bounded_and_evicted_seeds_are_decrypted_again() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let mut values = Vec::new();
    for i in 0..3 {
        let writer = ready(&mock, &clock).await;
        values.push(
            enc(&writer, format!("from writer {i}").as_bytes(), KEY)
                .await
                .expect("write"),
        );
    }
    let reader = ready_with(
        &mock,
        options(&clock).with_dek_cache(CacheLimits::new(2, None)),
    )
    .await;
    for (i, value) in values.iter().enumerate() {
        let read = dec(&reader, value, KEY).await.expect("read");
        assert_eq!(read.plaintext, format!("from writer {i}").as_bytes());
        assert!(reader.dek_cache_len() <= 2);
    }
    assert_eq!(mock.decrypts(), 3);
    // The most recent two are cached ...
    dec(&reader, &values[2], KEY).await.expect("read");
    dec(&reader, &values[1], KEY).await.expect("read");
    assert_eq!(mock.decrypts(), 3);
    // ... the first was evicted.
    dec(&reader, &values[0], KEY).await.expect("read");
    assert_eq!(mock.decrypts(), 4);
    assert!(reader.dek_cache_len() <= 2);

    // Disabled: every read asks the plugin.
    let uncached = ready_with(
        &mock,
        options(&clock).with_dek_cache(CacheLimits::disabled()),
    )
    .await;
    let before = mock.decrypts();
    dec(&uncached, &values[0], KEY).await.expect("read");
    dec(&uncached, &values[0], KEY).await.expect("read");
    assert_eq!(mock.decrypts(), before + 2);
    assert_eq!(uncached.dek_cache_len(), 0);
}

#[tokio::test]
async fn dek_cache_entries_expire_after_the_ttl() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let writer = ready(&mock, &clock).await;
    let value = enc(&writer, b"v", KEY).await.expect("write");
    let reader = ready(&mock, &clock).await; // default TTL: 24 h

    dec(&reader, &value, KEY).await.expect("read");
    assert_eq!(mock.decrypts(), 1);
    clock.advance(Duration::from_secs(24 * 60 * 60 - 1));
    dec(&reader, &value, KEY).await.expect("read");
    assert_eq!(mock.decrypts(), 1, "still within the TTL");
    clock.advance(Duration::from_secs(2));
    let read = dec(&reader, &value, KEY).await.expect("read");
    assert_eq!(read.plaintext, b"v");
    assert_eq!(mock.decrypts(), 2, "expired: asked the plugin again");
    dec(&reader, &value, KEY).await.expect("read");
    assert_eq!(mock.decrypts(), 2, "and cached again");

    // The derived-key cache (10 min) expiring is invisible to the plugin.
    clock.advance(Duration::from_secs(11 * 60));
    dec(&reader, &value, KEY).await.expect("read");
    assert_eq!(mock.decrypts(), 2);
}

/// The apiserver re-inserts the write key into the DEK cache on every write
/// (`t.cache.set(state.CacheKey, state.Transformer)` in
/// `TransformToStorage`), so values it just wrote always read back without
/// the plugin, however long the key ID has been stable and however many
/// other seeds were read since.
#[tokio::test]
async fn own_writes_read_back_without_decrypt_after_the_ttl_or_an_eviction() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready_with(
        &mock,
        options(&clock).with_dek_cache(CacheLimits::new(2, Some(Duration::from_secs(120)))),
    )
    .await;
    for _ in 0..3 {
        clock.advance(Duration::from_secs(100));
        p.refresh().await.expect("refresh");
        let value = enc(&p, b"fresh", KEY).await.expect("write");
        assert_eq!(
            dec(&p, &value, KEY).await.expect("read").plaintext,
            b"fresh"
        );
    }
    assert_eq!(
        mock.decrypts(),
        0,
        "past the TTL: our write key is still known"
    );

    // Two foreign seeds fill the 2-entry cache.
    for _ in 0..2 {
        let writer = ready(&mock, &clock).await;
        let value = enc(&writer, b"foreign", KEY).await.expect("write");
        dec(&p, &value, KEY).await.expect("read");
    }
    assert_eq!(mock.decrypts(), 2);
    let value = enc(&p, b"fresh", KEY).await.expect("write");
    assert_eq!(
        dec(&p, &value, KEY).await.expect("read").plaintext,
        b"fresh"
    );
    assert_eq!(
        mock.decrypts(),
        2,
        "evicted from the cache: our write key is still known"
    );
}

// ---------------------------------------------------------------------------
// 11. Malformed stored values

#[tokio::test]
async fn malformed_values_give_errors_never_panics() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready(&mock, &clock).await;
    let value = enc(&p, b"a value of some length", KEY)
        .await
        .expect("write");
    let good = decode(&value);

    // Empty body.
    match dec(&p, PREFIX.as_bytes(), KEY).await {
        Err(Error::Malformed {
            provider: ProviderKind::Kms(KmsApiVersion::V2),
            reason,
        }) => assert!(reason.contains("empty"), "{reason}"),
        other => panic!("empty body: {other:?}"),
    }

    // Every truncation of a valid value.
    for len in PREFIX.len()..value.len() {
        let result = dec(&p, &value[..len], KEY).await;
        assert!(result.is_err(), "truncated to {len}: {result:?}");
    }

    // Garbage bodies.
    for seed in 1..50u64 {
        let mut garbage = PREFIX.as_bytes().to_vec();
        garbage.extend(pseudo_random(
            usize::try_from(seed).expect("small") * 7,
            seed,
        ));
        assert!(dec(&p, &garbage, KEY).await.is_err());
    }

    // Another provider's prefix.
    assert!(matches!(
        dec(&p, b"k8s:enc:kms:v2:other:xyz", KEY).await,
        Err(Error::NoMatchingPrefix)
    ));

    let decrypts = mock.decrypts();

    // A key ID of 1025 bytes: refused before the plugin is asked.
    let long_key_id = EncryptedObject {
        key_id: "k".repeat(1025),
        ..good.clone()
    };
    match dec(&p, &stored(&long_key_id), KEY).await {
        Err(Error::Malformed { reason, .. }) => assert!(reason.contains("keyID"), "{reason}"),
        other => panic!("long key ID: {other:?}"),
    }
    // An encrypted DEK source of 1025 bytes, likewise.
    let long_source = EncryptedObject {
        encrypted_dek_source: vec![b'A'; 1025],
        ..good.clone()
    };
    assert!(matches!(
        dec(&p, &stored(&long_source), KEY).await,
        Err(Error::Malformed { .. })
    ));
    // An unknown source type.
    let unknown_type = EncryptedObject {
        encrypted_dek_source_type: 2,
        ..good.clone()
    };
    assert!(matches!(
        dec(&p, &stored(&unknown_type), KEY).await,
        Err(Error::Malformed { .. })
    ));
    assert_eq!(mock.decrypts(), decrypts);

    // Seed-mode data too short for info, nonce and tag (seed is cached).
    for len in [1, 31, 32, 44, 59] {
        let short = EncryptedObject {
            encrypted_data: good.encrypted_data[..len].to_vec(),
            ..good.clone()
        };
        let result = dec(&p, &stored(&short), KEY).await;
        assert!(
            matches!(result, Err(Error::Malformed { .. } | Error::Decrypt { .. })),
            "{len}: {result:?}"
        );
    }
    assert_eq!(mock.decrypts(), decrypts);

    let cached = p.dek_cache_len();
    // The plugin hands back a 16-byte seed: refused (at least 32).
    let short_seed = EncryptedObject {
        encrypted_dek_source: B64.encode(pseudo_random(16, 7)).into_bytes(),
        ..good.clone()
    };
    match dec(&p, &stored(&short_seed), KEY).await {
        Err(Error::Malformed { reason, .. }) => assert!(reason.contains("seed"), "{reason}"),
        other => panic!("16-byte seed: {other:?}"),
    }
    // The plugin hands back a 33-byte AES_GCM_KEY DEK: refused.
    let odd_dek = EncryptedObject {
        encrypted_dek_source: B64.encode(pseudo_random(33, 8)).into_bytes(),
        encrypted_dek_source_type: 0,
        encrypted_data: vec![0; 40],
        ..good.clone()
    };
    assert!(matches!(
        dec(&p, &stored(&odd_dek), KEY).await,
        Err(Error::Malformed { .. })
    ));
    // The plugin refuses (not base64).
    let refused = EncryptedObject {
        encrypted_dek_source: b"!!not base64!!".to_vec(),
        ..good.clone()
    };
    match dec(&p, &stored(&refused), KEY).await {
        Err(Error::Kms(e)) => assert!(
            matches!(
                e.kind(),
                KmsErrorKind::Status {
                    code: StatusCode::InvalidArgument,
                    ..
                }
            ),
            "{e:?}"
        ),
        other => panic!("the plugin's refusal: {other:?}"),
    }
    assert_eq!(mock.decrypts(), decrypts + 3);
    assert_eq!(p.dek_cache_len(), cached, "refused keys are not cached");
}

#[tokio::test]
async fn reads_values_made_by_hand_like_the_apiserver_accepts_them() {
    // Go's reader takes any seed of at least 32 bytes and any AES key size;
    // values made here without the crate must read.
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready(&mock, &clock).await;

    let seed = pseudo_random(33, 11);
    let info = pseudo_random(32, 12);
    let nonce: [u8; 12] = pseudo_random(12, 13).try_into().expect("12");
    let mut data = info.clone();
    data.extend(nonce);
    data.extend(gcm_seal(
        &derive(&seed, &info),
        &nonce,
        KEY.as_bytes(),
        b"by hand",
    ));
    let seed_value = stored(&EncryptedObject {
        encrypted_data: data,
        key_id: "1".to_owned(),
        encrypted_dek_source: B64.encode(&seed).into_bytes(),
        annotations: BTreeMap::new(),
        encrypted_dek_source_type: 1,
    });
    let read = dec(&p, &seed_value, KEY).await.expect("33-byte seed");
    assert_eq!(read.plaintext, b"by hand");
    assert!(!read.stale);

    let dek = pseudo_random(16, 14);
    let mut data = nonce.to_vec();
    data.extend(gcm_seal(&dek, &nonce, KEY.as_bytes(), b"aes-128"));
    let dek_value = stored(&EncryptedObject {
        encrypted_data: data,
        key_id: "old-key".to_owned(),
        encrypted_dek_source: B64.encode(&dek).into_bytes(),
        annotations: mock_annotations(),
        encrypted_dek_source_type: 0,
    });
    let read = dec(&p, &dek_value, KEY).await.expect("16-byte DEK");
    assert_eq!(read.plaintext, b"aes-128");
    assert!(read.stale);
    let request = mock.decrypt_requests().pop().expect("a decrypt");
    assert_eq!(request.key_id, "old-key");
}

// ---------------------------------------------------------------------------
// 12. Health

#[tokio::test]
async fn health_reports_readiness_and_only_a_hash_of_the_key_id() {
    assert_eq!(
        key_id_hash("1"),
        "sha256:6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
    );
    assert_eq!(
        key_id_hash("1"),
        format!("sha256:{}", hex(&Sha256::digest(b"1")))
    );

    const DISTINCT: &str = "super-distinct-key-id-123";
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    mock.set_key_id(DISTINCT);
    let p = provider(&mock, &clock);

    let health = p.health();
    assert_eq!(health.name, NAME);
    assert!(!health.healthy);
    assert!(!health.can_write);
    assert_eq!(health.key_id_hash, None);
    assert_eq!(health.error, None);
    assert_eq!(health.last_status, None);

    p.refresh().await.expect("refresh");
    let health = p.health();
    assert!(health.healthy);
    assert!(health.can_write);
    assert_eq!(health.error, None);
    assert!(health.last_status.is_some());
    let expected = format!("sha256:{}", hex(&Sha256::digest(DISTINCT.as_bytes())));
    assert_eq!(health.key_id_hash.as_deref(), Some(expected.as_str()));
    assert_eq!(key_id_hash(DISTINCT), expected);
    let shown = format!("{health:?} {p:?}");
    assert!(!shown.contains(DISTINCT), "{shown}");

    // A mismatched Encrypt answer: the error names hashes, never key IDs.
    mock.set_key_id("super-distinct-key-id-456");
    mock.set_encrypt_override(EncryptOverride {
        key_id: Some("super-distinct-key-id-789".to_owned()),
        ..Default::default()
    });
    let e = p.refresh().await.expect_err("mismatch");
    let health = p.health();
    let shown = format!("{e} {e:?} {health:?} {p:?}");
    for raw in [
        DISTINCT,
        "super-distinct-key-id-456",
        "super-distinct-key-id-789",
    ] {
        assert!(!shown.contains(raw), "{raw} in {shown}");
    }
    assert!(!health.healthy);
    assert!(health.can_write);

    // After expiry, no more writes.
    clock.advance(Duration::from_secs(3 * 60 + 1));
    assert!(!p.health().can_write);
}

// ---------------------------------------------------------------------------
// 13. The status loop

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_loop_polls_every_60s_healthy_10s_unhealthy_and_stops_when_dropped() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = provider(&mock, &clock);
    let handle = tokio::spawn(p.run_status_loop());

    // The n-th poll has happened and its refresh has finished (it stamps
    // `last_status` with the clock, which only the test moves).
    let polled = |n: usize| {
        let (mock, p, clock) = (mock.clone(), p.clone(), clock.clone());
        move || mock.statuses() >= n && p.health().last_status == Some(clock.now())
    };
    let patience = Duration::from_secs(3);
    let quiet = Duration::from_millis(1500);

    wait_for("the first poll", patience, polled(1)).await;
    assert!(p.health().healthy);
    assert!(enc(&p, b"x", KEY).await.is_ok());
    tokio::time::sleep(quiet).await;
    assert_eq!(mock.statuses(), 1, "no poll before 60 s have passed");

    clock.advance(Duration::from_secs(59));
    tokio::time::sleep(quiet).await;
    assert_eq!(mock.statuses(), 1, "59 s: not yet");
    clock.advance(Duration::from_secs(2));
    wait_for("the 61 s poll", patience, polled(2)).await;
    assert_eq!(mock.statuses(), 2);

    // Down: the next poll fails, and the one after comes 10 s later.
    mock.set_down(true);
    clock.advance(Duration::from_secs(61));
    wait_for("the failing poll", patience, polled(3)).await;
    assert!(!p.health().healthy);
    clock.advance(Duration::from_secs(9));
    tokio::time::sleep(quiet).await;
    assert_eq!(mock.statuses(), 3, "9 s after the failure: not yet");
    clock.advance(Duration::from_secs(1));
    wait_for("the 10 s retry", patience, polled(4)).await;
    assert_eq!(mock.statuses(), 4);

    // Back up: the next retry succeeds and polling returns to 60 s.
    mock.set_down(false);
    clock.advance(Duration::from_secs(10));
    wait_for("the recovery poll", patience, polled(5)).await;
    assert!(p.health().healthy);
    clock.advance(Duration::from_secs(11));
    tokio::time::sleep(quiet).await;
    assert_eq!(mock.statuses(), 5, "healthy again: no 10 s retry");
    assert!(p.health().can_write);

    // The `polled` conditions (and their clones) are gone: dropping `p`
    // drops the last clone.
    drop(p);
    tokio::time::timeout(Duration::from_secs(3), handle)
        .await
        .expect("the loop ends once every provider clone is dropped")
        .expect("the loop did not panic");
}

// ---------------------------------------------------------------------------
// 14. No seeds or DEKs in errors or Debug

/// Ways a secret could show up in text.
fn secret_forms(secret: &[u8]) -> Vec<String> {
    let mut forms = vec![
        B64.encode(secret),
        B64.encode(&secret[..15]),
        URL_SAFE_NO_PAD.encode(secret),
        hex(secret),
        hex(&secret[..8]),
        hex(&secret[..8]).to_uppercase(),
    ];
    let debug = format!("{:?}", &secret[..8]);
    forms.push(debug.trim_end_matches(']').to_owned());
    forms
}

#[tokio::test]
async fn no_error_or_debug_output_contains_a_seed_or_dek() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let mut texts: Vec<String> = Vec::new();
    let mut record = |e: &Error| {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
    };

    let fresh = provider(&mock, &clock);
    record(&enc(&fresh, b"x", KEY).await.expect_err("not ready"));

    let p = ready(&mock, &clock).await;
    let dek_p = ready_with(
        &mock,
        options(&clock).with_write_mode(DekSourceType::AesGcmKey),
    )
    .await;
    let other = ready(&mock, &clock).await;
    let value = enc(&p, b"plaintext", KEY).await.expect("write");
    let dek_value = enc(&dek_p, b"plaintext", KEY).await.expect("write");
    let foreign = enc(&other, b"plaintext", KEY).await.expect("write");
    record(&dec(&fresh, &value, KEY).await.expect_err("not ready"));
    record(&dec(&p, &value, OTHER_KEY).await.expect_err("aad"));
    record(&dec(&dek_p, &dek_value, OTHER_KEY).await.expect_err("aad"));
    record(&dec(&p, &dek_value, OTHER_KEY).await.expect_err("aad"));

    // Tampered data.
    let mut tampered = decode(&value);
    let last = tampered.encrypted_data.len() - 1;
    tampered.encrypted_data[last] ^= 1;
    record(
        &dec(&p, &stored(&tampered), KEY)
            .await
            .expect_err("tampered"),
    );

    // Wrong-size keys from the plugin.
    let mut short_seed = decode(&value);
    short_seed.encrypted_dek_source = B64.encode(pseudo_random(16, 99)).into_bytes();
    record(
        &dec(&p, &stored(&short_seed), KEY)
            .await
            .expect_err("short seed"),
    );
    let mut odd_dek = decode(&dek_value);
    odd_dek.encrypted_dek_source = B64.encode(pseudo_random(33, 98)).into_bytes();
    record(&dec(&p, &stored(&odd_dek), KEY).await.expect_err("odd dek"));

    // Refresh failures of every kind.
    for (bad, _) in BadAnswer::all() {
        bad.apply(&mock, "2");
        record(&p.refresh().await.expect_err("bad answer"));
        record(&dek_p.refresh().await.expect_err("bad answer"));
        mock.set_encrypt_override(EncryptOverride::default());
        mock.set_key_id("1");
    }
    mock.set_encrypt_override(EncryptOverride {
        key_id: Some("other".to_owned()),
        ..Default::default()
    });
    mock.set_key_id("3");
    record(&p.refresh().await.expect_err("mismatch"));
    mock.set_encrypt_override(EncryptOverride::default());
    mock.set_healthz("not ok");
    record(&p.refresh().await.expect_err("healthz"));
    mock.set_healthz("ok");
    mock.set_version("v9");
    record(&p.refresh().await.expect_err("version"));
    mock.set_version("v2");

    // Expiry and a plugin that is down.
    mock.set_down(true);
    clock.advance(Duration::from_secs(200));
    record(&p.refresh().await.expect_err("down"));
    record(&enc(&p, b"x", KEY).await.expect_err("expired"));
    record(&enc(&dek_p, b"x", KEY).await.expect_err("expired"));
    record(&dec(&fresh, &foreign, KEY).await.expect_err("not ready"));
    clock.advance(Duration::from_secs(25 * 60 * 60));
    record(&dec(&p, &foreign, KEY).await.expect_err("down"));

    for provider in [&fresh, &p, &dek_p, &other] {
        texts.push(format!("{provider:?}"));
        texts.push(format!("{:?}", provider.health()));
    }

    let secrets = mock.secrets();
    assert!(secrets.len() >= 5, "{}", secrets.len());
    assert!(texts.len() > 40, "{}", texts.len());
    for secret in &secrets {
        for form in secret_forms(secret) {
            for text in &texts {
                assert!(!text.contains(&form), "a secret ({form}) in {text:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// More

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_rotate_once() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready(&mock, &clock).await;
    mock.set_key_id("2");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.refresh().await })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("refresh");
    }
    assert_eq!(mock.encrypts(), 2, "one rotation, not one per caller");
    assert_eq!(mock.statuses(), 17);
}

#[tokio::test]
async fn provider_names_with_a_colon_or_empty_are_refused() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    for bad in ["", "a:b", ":"] {
        let result = KmsV2Provider::new(bad, mock.clone(), options(&clock));
        assert!(
            matches!(
                &result,
                Err(Error::InvalidProviderName { provider: ProviderKind::Kms(KmsApiVersion::V2), name, .. }) if name == bad
            ),
            "{bad:?}: {result:?}"
        );
    }
    let p = provider(&mock, &clock);
    assert_eq!(p.name(), NAME);
    assert_eq!(Provider::prefix(&p), PREFIX.as_bytes());
    assert_eq!(Provider::kind(&p), ProviderKind::Kms(KmsApiVersion::V2));
    assert!(p.as_blocking().is_none());
}

#[tokio::test]
async fn works_inside_a_transformer_with_identity_fallback() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = ready(&mock, &clock).await;
    let t = Transformer::new(vec![Arc::new(p.clone()), Arc::new(Identity::new())])
        .expect("transformer");
    let value = t.encrypt(b"secret", KEY.into()).await.expect("write");
    assert!(value.starts_with(PREFIX.as_bytes()));
    let read = t.decrypt(&value, KEY.into()).await.expect("read");
    assert_eq!(read.plaintext, b"secret");
    assert!(!read.stale);
    // Plaintext from before encryption was turned on reads, stale.
    let read = t
        .decrypt(b"plain old value", KEY.into())
        .await
        .expect("read");
    assert_eq!(read.plaintext, b"plain old value");
    assert!(read.stale);
    // KMS needs the async API.
    assert!(matches!(
        t.encrypt_blocking(b"x", KEY.into()),
        Err(Error::RequiresAsync { .. })
    ));
}

#[tokio::test]

async fn a_huge_write_key_ttl_does_not_panic() {
    let clock = Arc::new(ManualClock::new());
    let mock = FakeKms::new();
    let p = provider_with(
        &mock,
        options(&clock)
            .with_write_key_ttl(Duration::MAX)
            .with_healthy_poll_interval(Duration::MAX),
    );
    p.refresh().await.expect("refresh");
    clock.advance(Duration::from_secs(365 * 24 * 60 * 60));
    assert!(enc(&p, b"x", KEY).await.is_ok());
}
