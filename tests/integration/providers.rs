//! Behaviour of the static-key providers and the prefix transformer, checked
//! against the rules of FORMAT.md: wire layout, tamper detection, storage-key
//! binding, key rotation and staleness, the read walk, malformed input and the
//! aescbc padding rules.

use std::sync::Arc;

use k8s_envelope::ProviderFuture;
use k8s_envelope::{
    AesCbc, AesGcm, BlockingProvider, Decrypted, Error, Identity, NamedKey, Provider, ProviderKind,
    SecretKey, Secretbox, StorageKey, Transformer, AESCBC_PREFIX, AESGCM_PREFIX, SECRETBOX_PREFIX,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Cbc,
    Gcm,
    Secretbox,
}

/// Every (provider, key length) pair the formats allow.
const CASES: [(Kind, usize); 7] = [
    (Kind::Cbc, 16),
    (Kind::Cbc, 24),
    (Kind::Cbc, 32),
    (Kind::Gcm, 16),
    (Kind::Gcm, 24),
    (Kind::Gcm, 32),
    (Kind::Secretbox, 32),
];

/// The authenticated cases (aesgcm, secretbox).
const AEAD_CASES: [(Kind, usize); 4] = [
    (Kind::Gcm, 16),
    (Kind::Gcm, 24),
    (Kind::Gcm, 32),
    (Kind::Secretbox, 32),
];

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Cbc => AESCBC_PREFIX,
            Kind::Gcm => AESGCM_PREFIX,
            Kind::Secretbox => SECRETBOX_PREFIX,
        }
    }

    fn provider_kind(self) -> ProviderKind {
        match self {
            Kind::Cbc => ProviderKind::AesCbc,
            Kind::Gcm => ProviderKind::AesGcm,
            Kind::Secretbox => ProviderKind::Secretbox,
        }
    }

    /// The body length FORMAT.md gives for a plaintext of `len` bytes.
    fn body_len(self, len: usize) -> usize {
        match self {
            Kind::Cbc => 16 + (len / 16 + 1) * 16,
            Kind::Gcm => 12 + len + 16,
            Kind::Secretbox => 24 + 16 + len,
        }
    }

    fn key_len(self) -> usize {
        32
    }

    fn build(self, keys: Vec<NamedKey>) -> Arc<dyn Provider> {
        let built: Result<Arc<dyn Provider>, Error> = match self {
            Kind::Cbc => AesCbc::new(keys).map(|p| Arc::new(p) as _),
            Kind::Gcm => AesGcm::new(keys).map(|p| Arc::new(p) as _),
            Kind::Secretbox => Secretbox::new(keys).map(|p| Arc::new(p) as _),
        };
        built.expect("valid keys")
    }

    fn with_keys(self, keys: &[(&str, &SecretKey)]) -> Arc<dyn Provider> {
        self.build(
            keys.iter()
                .map(|(name, secret)| NamedKey::new(*name, (*secret).clone()))
                .collect(),
        )
    }
}

const ALL_KINDS: [Kind; 3] = [Kind::Cbc, Kind::Gcm, Kind::Secretbox];

fn blocking(p: &Arc<dyn Provider>) -> &dyn BlockingProvider {
    p.as_blocking().expect("static providers are blocking")
}

fn enc(p: &Arc<dyn Provider>, plaintext: &[u8], key: &str) -> Vec<u8> {
    blocking(p)
        .encrypt_blocking(plaintext, key.into())
        .expect("encrypt")
}

fn dec(p: &Arc<dyn Provider>, stored: &[u8], key: &str) -> Result<Decrypted, Error> {
    blocking(p).decrypt_blocking(stored, key.into())
}

fn key(len: usize, fill: u8) -> SecretKey {
    SecretKey::new((0..len).map(|i| fill.wrapping_add(i as u8)).collect())
}

fn ok_plaintext(result: Result<Decrypted, Error>) -> (Vec<u8>, bool) {
    let d = result.expect("decrypt");
    (d.plaintext, d.stale)
}

const SK: &str = "/registry/secrets/default/db-creds";

/// Static providers complete on the first poll: no runtime needed.
use k8s_envelope_test_support::ready as block_on;

fn case_strategy(cases: &'static [(Kind, usize)]) -> impl Strategy<Value = (Kind, Vec<u8>)> {
    (0..cases.len()).prop_flat_map(move |i| {
        let (kind, len) = cases[i];
        (Just(kind), proptest::collection::vec(any::<u8>(), len))
    })
}

fn key_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,24}"
}

fn storage_key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..128)
}

// ---------------------------------------------------------------------------
// Round trips and wire layout
// ---------------------------------------------------------------------------

fn check_round_trip(
    kind: Kind,
    key_bytes: Vec<u8>,
    name: &str,
    plaintext: &[u8],
    storage_key: &[u8],
) -> Result<(), TestCaseError> {
    let provider = kind.build(vec![NamedKey::new(name, SecretKey::new(key_bytes))]);
    let p = blocking(&provider);
    let sk = StorageKey::from(storage_key);
    let stored = p.encrypt_blocking(plaintext, sk).expect("encrypt");
    let full_prefix = format!("{}{}:", kind.prefix(), name);
    prop_assert!(stored.starts_with(full_prefix.as_bytes()));
    prop_assert_eq!(
        stored.len() - full_prefix.len(),
        kind.body_len(plaintext.len())
    );
    let read = p.decrypt_blocking(&stored, sk).expect("decrypt");
    prop_assert!(read.plaintext == plaintext, "plaintext differs");
    prop_assert!(!read.stale);
    // Through the trait object's async API too.
    let read = block_on(provider.decrypt(&stored, sk)).expect("async decrypt");
    prop_assert!(read.plaintext == plaintext, "async plaintext differs");
    prop_assert!(!read.stale);
    Ok(())
}

proptest! {
    #[test]
    fn round_trip_and_layout(
        (kind, key_bytes) in case_strategy(&CASES),
        name in key_name(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
        storage_key in storage_key(),
    ) {
        check_round_trip(kind, key_bytes, &name, &plaintext, &storage_key)?;
    }
}

#[test]
fn round_trip_large_values() {
    for (kind, len) in CASES {
        for size in [65_536usize, 65_535, 65_537] {
            let plaintext: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
            check_round_trip(kind, vec![0x5a; len], "big", &plaintext, SK.as_bytes())
                .expect("round trip");
        }
    }
    // One mebibyte, once per provider.
    let plaintext: Vec<u8> = (0..1 << 20).map(|i: usize| (i * 13) as u8).collect();
    for kind in ALL_KINDS {
        check_round_trip(kind, vec![0xa5; 32], "mib", &plaintext, SK.as_bytes())
            .expect("round trip");
    }
}

#[test]
fn block_boundaries_have_exact_lengths() {
    for (kind, len) in CASES {
        for size in [0usize, 1, 15, 16, 17, 31, 32, 33, 255, 256, 257] {
            let plaintext = vec![0x42; size];
            check_round_trip(kind, vec![7; len], "k", &plaintext, b"").expect("round trip");
        }
    }
}

#[test]
fn each_write_uses_a_fresh_nonce() {
    for kind in ALL_KINDS {
        let p = kind.with_keys(&[("k", &key(32, 1))]);
        let a = enc(&p, b"same plaintext", SK);
        let b = enc(&p, b"same plaintext", SK);
        assert_ne!(a, b, "{kind:?}: two writes of the same value are equal");
    }
}

// ---------------------------------------------------------------------------
// Interoperability with the reference primitives
// ---------------------------------------------------------------------------

mod reference {
    use aes::cipher::inout::InOutBuf;
    use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};

    /// Raw AES-256-CBC without padding, via the `aes` and `cbc` crates.
    pub fn cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], buf: &mut [u8]) {
        assert_eq!(buf.len() % 16, 0);
        let (blocks, rest) = InOutBuf::from(buf).into_chunks();
        assert!(rest.is_empty());
        cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into()).encrypt_blocks_inout(blocks);
    }

    pub fn cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], buf: &mut [u8]) {
        assert_eq!(buf.len() % 16, 0);
        let (blocks, rest) = InOutBuf::from(buf).into_chunks();
        assert!(rest.is_empty());
        cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into()).decrypt_blocks_inout(blocks);
    }
}

#[test]
fn aescbc_output_is_standard_cbc_with_pkcs7() {
    let key_bytes = [0x3cu8; 32];
    let p = Kind::Cbc.with_keys(&[("k1", &SecretKey::new(key_bytes.to_vec()))]);
    for size in [0usize, 1, 15, 16, 17, 100] {
        let plaintext = vec![0x61; size];
        let stored = enc(&p, &plaintext, SK);
        let body = &stored[format!("{AESCBC_PREFIX}k1:").len()..];
        let (iv, ct) = body.split_at(16);
        let mut buf = ct.to_vec();
        reference::cbc_decrypt(&key_bytes, iv.try_into().expect("iv"), &mut buf);
        let pad = 16 - size % 16;
        assert_eq!(&buf[..size], &plaintext[..]);
        assert!(buf[size..].iter().all(|&b| usize::from(b) == pad));
        assert_eq!(buf.len(), size + pad);
    }
}

// ---------------------------------------------------------------------------
// Tampering and storage-key binding
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn any_flipped_bit_fails_aead(
        (kind, key_bytes) in case_strategy(&AEAD_CASES),
        name in key_name(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        storage_key in storage_key(),
        index in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let provider = kind.build(vec![NamedKey::new(name.as_str(), SecretKey::new(key_bytes))]);
        let p = blocking(&provider);
        let sk = StorageKey::from(&storage_key[..]);
        let mut stored = p.encrypt_blocking(&plaintext, sk).expect("encrypt");
        let full_prefix_len = kind.prefix().len() + name.len() + 1;
        let i = index.index(stored.len());
        stored[i] ^= 1 << bit;
        let result = p.decrypt_blocking(&stored, sk);
        if i < full_prefix_len {
            // The prefix or key name no longer matches this key.
            prop_assert!(
                matches!(result, Err(Error::NoMatchingKey { .. })),
                "flip at {} in the prefix: {:?}", i, result
            );
        } else {
            prop_assert!(
                matches!(result, Err(Error::Decrypt { .. })),
                "flip at {} in the body: {:?}", i, result
            );
        }
    }

    #[test]
    fn flipped_bit_in_key_name_fails_every_provider(
        (kind, key_bytes) in case_strategy(&CASES),
        name in key_name(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..64),
        index in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let provider = kind.build(vec![NamedKey::new(name.as_str(), SecretKey::new(key_bytes))]);
        let mut stored = enc(&provider, &plaintext, SK);
        // The key name and the colon after it.
        let start = kind.prefix().len();
        let i = start + index.index(name.len() + 1);
        stored[i] ^= 1 << bit;
        let result = dec(&provider, &stored, SK);
        prop_assert!(
            matches!(result, Err(Error::NoMatchingKey { .. })),
            "{:?}: flip at {}: {:?}", kind, i, result
        );
    }

    #[test]
    fn storage_key_is_bound_only_by_aesgcm(
        (kind, key_bytes) in case_strategy(&CASES),
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        written_at in storage_key(),
        read_at in storage_key(),
    ) {
        prop_assume!(written_at != read_at);
        let provider = kind.build(vec![NamedKey::new("k", SecretKey::new(key_bytes))]);
        let p = blocking(&provider);
        let stored = p.encrypt_blocking(&plaintext, StorageKey::from(&written_at[..])).expect("encrypt");
        let result = p.decrypt_blocking(&stored, StorageKey::from(&read_at[..]));
        match kind {
            Kind::Gcm => prop_assert!(
                matches!(result, Err(Error::Decrypt { provider: ProviderKind::AesGcm })),
                "{:?}", result
            ),
            Kind::Cbc | Kind::Secretbox => {
                let read = result.expect("aescbc and secretbox ignore the storage key");
                prop_assert!(read.plaintext == plaintext);
                prop_assert!(!read.stale);
            }
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(
        (kind, key_bytes) in case_strategy(&CASES),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        storage_key in storage_key(),
    ) {
        let provider = kind.build(vec![NamedKey::new("k", SecretKey::new(key_bytes))]);
        let mut stored = format!("{}k:", kind.prefix()).into_bytes();
        stored.extend_from_slice(&body);
        let result = blocking(&provider).decrypt_blocking(&stored, StorageKey::from(&storage_key[..]));
        if kind != Kind::Cbc {
            // Forging an AEAD value by chance does not happen.
            prop_assert!(result.is_err());
        }
        // Arbitrary bytes, prefix or not, through a transformer.
        let t = Transformer::new(vec![provider, Arc::new(Identity::new())]).expect("transformer");
        let _ = t.decrypt_blocking(&body, StorageKey::from(&storage_key[..]));
        let _ = t.decrypt_blocking(&stored, StorageKey::from(&storage_key[..]));
    }
}

#[test]
fn aesgcm_binds_the_storage_key_exactly() {
    let p = Kind::Gcm.with_keys(&[("k", &key(32, 9))]);
    let stored = enc(&p, b"value", "/registry/secrets/a/b");
    assert!(dec(&p, &stored, "/registry/secrets/a/b").is_ok());
    for other in [
        "/registry/secrets/a/c",
        "/registry/secrets/a/b/",
        "",
        "registry/secrets/a/b",
    ] {
        assert!(
            matches!(dec(&p, &stored, other), Err(Error::Decrypt { .. })),
            "read at {other:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Keys: rotation, staleness, names
// ---------------------------------------------------------------------------

#[test]
fn rotation_reads_old_values_as_stale() {
    for kind in ALL_KINDS {
        let (k1, k2) = (key(kind.key_len(), 1), key(kind.key_len(), 100));
        let old = kind.with_keys(&[("k1", &k1)]);
        let rotated = kind.with_keys(&[("k2", &k2), ("k1", &k1)]);
        let not_yet = kind.with_keys(&[("k1", &k1), ("k2", &k2)]);

        let by_old = enc(&old, b"old value", SK);
        assert_eq!(
            ok_plaintext(dec(&rotated, &by_old, SK)),
            (b"old value".to_vec(), true),
            "{kind:?}: [k2, k1] reads a k1 value as stale"
        );
        assert_eq!(
            ok_plaintext(dec(&not_yet, &by_old, SK)),
            (b"old value".to_vec(), false),
            "{kind:?}: [k1, k2] reads a k1 value as fresh"
        );

        let by_rotated = enc(&rotated, b"new value", SK);
        assert!(by_rotated.starts_with(format!("{}k2:", kind.prefix()).as_bytes()));
        assert_eq!(
            ok_plaintext(dec(&rotated, &by_rotated, SK)),
            (b"new value".to_vec(), false)
        );
        // Written by k2, read by [k1, k2]: the second key, so stale.
        assert_eq!(
            ok_plaintext(dec(&not_yet, &by_rotated, SK)),
            (b"new value".to_vec(), true)
        );
        // The old provider no longer holds k2.
        assert!(matches!(
            dec(&old, &by_rotated, SK),
            Err(Error::NoMatchingKey { provider, key }) if provider == kind.provider_kind() && key == "k2"
        ));

        let by_not_yet = enc(&not_yet, b"own", SK);
        assert!(by_not_yet.starts_with(format!("{}k1:", kind.prefix()).as_bytes()));
        assert_eq!(
            ok_plaintext(dec(&not_yet, &by_not_yet, SK)),
            (b"own".to_vec(), false)
        );
    }
}

#[test]
fn unknown_key_name_is_no_matching_key() {
    for kind in ALL_KINDS {
        let writer = kind.with_keys(&[("k1", &key(32, 1))]);
        let reader = kind.with_keys(&[("k3", &key(32, 1)), ("k11", &key(32, 1))]);
        let stored = enc(&writer, b"x", SK);
        let err = dec(&reader, &stored, SK).expect_err("unknown key");
        assert!(
            matches!(&err, Error::NoMatchingKey { provider, key } if *provider == kind.provider_kind() && key == "k1"),
            "{kind:?}: {err:?}"
        );
        // The message names the key the value needs.
        assert!(err.to_string().contains("it needs key \"k1\""), "{err}");
        // A key name is matched whole, with its colon: "k" is not "k1".
        let reader = kind.with_keys(&[("k", &key(32, 1))]);
        assert!(matches!(
            dec(&reader, &stored, SK),
            Err(Error::NoMatchingKey { .. })
        ));
    }
}

/// Writes with `writer` until `wrong` fails to read the value; for the
/// authenticated providers that is the first write, for aescbc a wrong key
/// yields valid-looking padding about once in 256 writes.
fn write_unreadable_by(writer: &Arc<dyn Provider>, wrong: &Arc<dyn Provider>) -> Vec<u8> {
    for _ in 0..100 {
        let stored = enc(writer, b"shared name", SK);
        if dec(wrong, &stored, SK).is_err() {
            return stored;
        }
    }
    panic!("the wrong key kept reading the value");
}

#[test]
fn keys_sharing_a_name_are_tried_in_order() {
    for kind in ALL_KINDS {
        let (s1, s2, s3) = (key(32, 1), key(32, 50), key(32, 150));
        let writer = kind.with_keys(&[("k", &s1)]);
        let wrong = kind.with_keys(&[("k", &s2)]);
        let stored = write_unreadable_by(&writer, &wrong);

        // The first "k" fails, its error is remembered, the second reads it.
        let reader = kind.with_keys(&[("k", &s2), ("k", &s1)]);
        assert_eq!(
            ok_plaintext(dec(&reader, &stored, SK)),
            (b"shared name".to_vec(), true),
            "{kind:?}"
        );
        // Only the first key is tried when it succeeds.
        let reader = kind.with_keys(&[("k", &s1), ("k", &s2)]);
        assert_eq!(
            ok_plaintext(dec(&reader, &stored, SK)),
            (b"shared name".to_vec(), false)
        );
        if kind != Kind::Cbc {
            // A single failing key: its own error.
            assert!(matches!(
                dec(&wrong, &stored, SK),
                Err(Error::Decrypt { provider }) if provider == kind.provider_kind()
            ));
            // Both fail: every error, in key order.
            let reader = kind.with_keys(&[("k", &s2), ("other", &s1), ("k", &s3)]);
            match dec(&reader, &stored, SK) {
                Err(Error::Aggregate(errors)) => {
                    assert_eq!(errors.len(), 2, "{errors:?}");
                    assert!(errors.iter().all(|e| matches!(e, Error::Decrypt { .. })));
                }
                other => panic!("{kind:?}: expected an aggregate, got {other:?}"),
            }
        }
    }
}

#[test]
fn constructors_validate_keys() {
    for (kind, good) in [
        (Kind::Cbc, &[16usize, 24, 32][..]),
        (Kind::Gcm, &[16, 24, 32]),
        (Kind::Secretbox, &[32]),
    ] {
        let build = |keys: Vec<NamedKey>| -> Result<(), Error> {
            match kind {
                Kind::Cbc => AesCbc::new(keys).map(drop),
                Kind::Gcm => AesGcm::new(keys).map(drop),
                Kind::Secretbox => Secretbox::new(keys).map(drop),
            }
        };
        for len in 0..=64 {
            let result = build(vec![NamedKey::new("k", key(len, 3))]);
            if good.contains(&len) {
                assert!(result.is_ok(), "{kind:?} {len}");
            } else {
                assert!(
                    matches!(&result, Err(Error::InvalidKey { provider, name, .. })
                        if *provider == kind.provider_kind() && name == "k"),
                    "{kind:?} {len}: {result:?}"
                );
            }
        }
        // A bad second key fails the whole provider.
        assert!(matches!(
            build(vec![
                NamedKey::new("a", key(32, 1)),
                NamedKey::new("b", key(31, 1))
            ]),
            Err(Error::InvalidKey { name, .. }) if name == "b"
        ));
        assert!(matches!(
            build(vec![NamedKey::new("", key(32, 1))]),
            Err(Error::InvalidKey { .. })
        ));
        assert!(
            matches!(build(vec![]), Err(Error::NoKeys { provider }) if provider == kind.provider_kind())
        );
    }
}

// ---------------------------------------------------------------------------
// Malformed values
// ---------------------------------------------------------------------------

#[test]
fn malformed_values_are_errors() {
    let malformed = |r: &Result<Decrypted, Error>| matches!(r, Err(Error::Malformed { .. }));
    let gcm = Kind::Gcm.with_keys(&[("k", &key(32, 1))]);
    let cbc = Kind::Cbc.with_keys(&[("k", &key(32, 1))]);
    let sb = Kind::Secretbox.with_keys(&[("k", &key(32, 1))]);
    let value = |kind: Kind, body_len: usize| {
        let mut v = format!("{}k:", kind.prefix()).into_bytes();
        v.extend((0..body_len).map(|i| i as u8));
        v
    };

    for len in [0usize, 1, 11, 12, 13, 27] {
        let r = dec(&gcm, &value(Kind::Gcm, len), SK);
        assert!(malformed(&r), "aesgcm body of {len}: {r:?}");
    }
    // Nonce and tag with an empty ciphertext: well formed, but forged.
    let r = dec(&gcm, &value(Kind::Gcm, 28), SK);
    assert!(matches!(r, Err(Error::Decrypt { .. })), "{r:?}");

    for len in [0usize, 1, 15, 16, 17, 31, 33, 47] {
        let r = dec(&cbc, &value(Kind::Cbc, len), SK);
        assert!(malformed(&r), "aescbc body of {len}: {r:?}");
    }
    // IV and one block: well formed; the result depends on the padding.
    let _ = dec(&cbc, &value(Kind::Cbc, 32), SK);

    for len in [0usize, 1, 23, 24, 39] {
        let r = dec(&sb, &value(Kind::Secretbox, len), SK);
        assert!(malformed(&r), "secretbox body of {len}: {r:?}");
    }
    let r = dec(&sb, &value(Kind::Secretbox, 40), SK);
    assert!(matches!(r, Err(Error::Decrypt { .. })), "{r:?}");

    for (kind, p) in [(Kind::Gcm, &gcm), (Kind::Cbc, &cbc), (Kind::Secretbox, &sb)] {
        // The provider prefix alone names no key.
        let r = dec(p, kind.prefix().as_bytes(), SK);
        assert!(matches!(r, Err(Error::NoMatchingKey { .. })), "{r:?}");
        // Empty, and a truncated prefix.
        let r = dec(p, b"", SK);
        assert!(matches!(r, Err(Error::NoMatchingKey { .. })), "{r:?}");
        let r = dec(p, &kind.prefix().as_bytes()[..5], SK);
        assert!(matches!(r, Err(Error::NoMatchingKey { .. })), "{r:?}");
        // The key prefix alone: an empty body.
        let r = dec(p, format!("{}k:", kind.prefix()).as_bytes(), SK);
        assert!(malformed(&r), "{kind:?} key prefix only: {r:?}");

        // Through a transformer: the same error, unwrapped.
        let t = Transformer::new(vec![p.clone()]).expect("transformer");
        let r = t.decrypt_blocking(format!("{}k:", kind.prefix()).as_bytes(), SK.into());
        assert!(malformed(&r), "{r:?}");
        let r = t.decrypt_blocking(kind.prefix().as_bytes(), SK.into());
        assert!(matches!(r, Err(Error::NoMatchingKey { .. })), "{r:?}");
        let r = t.decrypt_blocking(b"k8s:enc:", SK.into());
        assert!(matches!(r, Err(Error::NoMatchingPrefix)), "{r:?}");
    }
}

// ---------------------------------------------------------------------------
// aescbc padding, as the apiserver checks it
// ---------------------------------------------------------------------------

const PAD_KEY: [u8; 32] = *b"0123456789abcdefghijklmnopqrstuv";
const PAD_IV: [u8; 16] = *b"initialisation-v";

/// A stored aescbc value whose decrypted blocks are exactly `padded`.
fn crafted_cbc(padded: &[u8]) -> Vec<u8> {
    let mut buf = padded.to_vec();
    reference::cbc_encrypt(&PAD_KEY, &PAD_IV, &mut buf);
    let mut stored = format!("{AESCBC_PREFIX}pad:").into_bytes();
    stored.extend_from_slice(&PAD_IV);
    stored.extend_from_slice(&buf);
    stored
}

fn read_crafted(padded: &[u8]) -> Result<Decrypted, Error> {
    let p = Kind::Cbc.with_keys(&[("pad", &SecretKey::new(PAD_KEY.to_vec()))]);
    dec(&p, &crafted_cbc(padded), SK)
}

#[test]
fn aescbc_padding_rules() {
    let is_decrypt_error = |r: &Result<Decrypted, Error>| {
        matches!(
            r,
            Err(Error::Decrypt {
                provider: ProviderKind::AesCbc
            })
        )
    };

    // Standard padding.
    let mut block = [b'a'; 16];
    block[15] = 1;
    assert_eq!(ok_plaintext(read_crafted(&block)).0, vec![b'a'; 15]);
    assert_eq!(ok_plaintext(read_crafted(&[16; 16])).0, Vec::<u8>::new());

    // 17 bytes of 0x11: longer than a block, accepted, all 17 stripped.
    let mut padded = vec![b'p'; 15];
    padded.extend_from_slice(&[0x11; 17]);
    assert_eq!(padded.len(), 32);
    let (plaintext, stale) = ok_plaintext(read_crafted(&padded));
    assert_eq!(plaintext, vec![b'p'; 15]);
    assert!(!stale);

    // n equal to the whole length, and n = 255.
    assert_eq!(ok_plaintext(read_crafted(&[32; 32])).0, Vec::<u8>::new());
    let mut padded = vec![7u8; 256];
    padded[1..].fill(0xff);
    assert_eq!(ok_plaintext(read_crafted(&padded)).0, vec![7u8]);

    // Last byte 0.
    let mut block = [b'a'; 16];
    block[15] = 0;
    assert!(is_decrypt_error(&read_crafted(&block)));
    assert!(is_decrypt_error(&read_crafted(&[0; 32])));

    // n greater than the decrypted length.
    assert!(is_decrypt_error(&read_crafted(&[17; 16])));
    assert!(is_decrypt_error(&read_crafted(&[33; 32])));
    assert!(is_decrypt_error(&read_crafted(&[0xff; 48])));

    // Mismatched padding bytes.
    let mut block = [4u8; 16];
    block[12] = 3;
    assert!(is_decrypt_error(&read_crafted(&block)));
    let mut padded = vec![0x11u8; 32];
    padded[15] = 0x10; // the 17th byte from the end
    assert!(is_decrypt_error(&read_crafted(&padded)));
    let mut padded = vec![0x11u8; 32];
    padded[15] = 0x10;
    padded[14] = 0x11;
    padded[16] = 0x12;
    assert!(is_decrypt_error(&read_crafted(&padded)));
    let mut padded = vec![0xffu8; 256];
    padded[1] = 0xfe; // the 255th byte from the end
    assert!(is_decrypt_error(&read_crafted(&padded)));
}

proptest! {
    #[test]
    fn aescbc_padding_matches_the_apiserver_rule(
        padded in (1usize..=4).prop_flat_map(|blocks| {
            proptest::collection::vec(any::<u8>(), blocks * 16)
        }),
        pad in 1u8..=64,
        fill_pad in any::<bool>(),
    ) {
        // Half the cases get a (possibly over-long) valid-looking padding run.
        let mut padded = padded;
        let len = padded.len();
        if fill_pad {
            let n = usize::from(pad).min(len);
            padded[len - n..].fill(n as u8);
        }
        let last = padded[len - 1];
        let n = usize::from(last);
        let expected_ok = n >= 1 && n <= len && padded[len - n..].iter().all(|&b| b == last);
        match read_crafted(&padded) {
            Ok(d) => {
                prop_assert!(expected_ok, "accepted invalid padding");
                prop_assert!(d.plaintext == padded[..len - n]);
            }
            Err(e) => {
                prop_assert!(!expected_ok, "refused valid padding: {}", e);
                let is_decrypt = matches!(e, Error::Decrypt { provider: ProviderKind::AesCbc });
                prop_assert!(is_decrypt, "{:?}", e);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Transformer
// ---------------------------------------------------------------------------

fn identity() -> Arc<dyn Provider> {
    Arc::new(Identity::new())
}

fn transformer(providers: Vec<Arc<dyn Provider>>) -> Transformer {
    Transformer::new(providers).expect("transformer")
}

#[test]
fn transformer_writes_with_first_and_reads_by_prefix() {
    let gcm = Kind::Gcm.with_keys(&[("g1", &key(32, 1))]);
    let cbc = Kind::Cbc.with_keys(&[("c1", &key(32, 2))]);
    let sb = Kind::Secretbox.with_keys(&[("s1", &key(32, 3))]);

    let old = transformer(vec![gcm.clone()]);
    let new = transformer(vec![cbc.clone(), gcm.clone(), sb.clone()]);

    let stored = old
        .encrypt_blocking(b"payload", SK.into())
        .expect("encrypt");
    assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:g1:"));
    let read = new.decrypt_blocking(&stored, SK.into()).expect("decrypt");
    assert_eq!(read.plaintext, b"payload");
    assert!(read.stale, "read by the second provider");

    let stored = new
        .encrypt_blocking(b"payload", SK.into())
        .expect("encrypt");
    assert!(stored.starts_with(b"k8s:enc:aescbc:v1:c1:"));
    let read = new.decrypt_blocking(&stored, SK.into()).expect("decrypt");
    assert_eq!(
        (read.plaintext.as_slice(), read.stale),
        (&b"payload"[..], false)
    );
    assert!(matches!(
        old.decrypt_blocking(&stored, SK.into()),
        Err(Error::NoMatchingPrefix)
    ));

    let by_sb = enc(&sb, b"third", SK);
    let read = new.decrypt_blocking(&by_sb, SK.into()).expect("decrypt");
    assert_eq!(
        (read.plaintext.as_slice(), read.stale),
        (&b"third"[..], true)
    );

    // A provider-level stale read stays stale in first position.
    let rotated = transformer(vec![
        Kind::Gcm.with_keys(&[("g2", &key(32, 9)), ("g1", &key(32, 1))])
    ]);
    let by_old = old.encrypt_blocking(b"x", SK.into()).expect("encrypt");
    assert!(
        rotated
            .decrypt_blocking(&by_old, SK.into())
            .expect("decrypt")
            .stale
    );
}

#[test]
fn identity_first_migrates_away_from_encryption() {
    let gcm = Kind::Gcm.with_keys(&[("k1", &key(32, 1))]);
    let t = transformer(vec![identity(), gcm.clone()]);

    // Writes are plaintext.
    let stored = t.encrypt_blocking(b"plain", SK.into()).expect("encrypt");
    assert_eq!(stored, b"plain");
    let read = t.decrypt_blocking(b"plain", SK.into()).expect("decrypt");
    assert_eq!(
        (read.plaintext.as_slice(), read.stale),
        (&b"plain"[..], false)
    );

    // identity refuses the encrypted value silently; aesgcm reads it, stale.
    let encrypted = enc(&gcm, b"secret", SK);
    let read = t.decrypt_blocking(&encrypted, SK.into()).expect("decrypt");
    assert_eq!(
        (read.plaintext.as_slice(), read.stale),
        (&b"secret"[..], true)
    );

    // When aesgcm fails, its error alone is reported: identity's is skipped.
    let other = enc(&Kind::Gcm.with_keys(&[("k9", &key(32, 1))]), b"secret", SK);
    let err = t
        .decrypt_blocking(&other, SK.into())
        .expect_err("unknown key");
    assert!(
        matches!(
            err,
            Error::NoMatchingKey {
                provider: ProviderKind::AesGcm,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn identity_refuses_encrypted_values() {
    let id = Identity::new();
    for value in [
        &b"k8s:enc:"[..],
        b"k8s:enc:aesgcm:v1:k1:whatever",
        b"k8s:enc:unknown",
    ] {
        assert!(matches!(
            id.decrypt_blocking(value, SK.into()),
            Err(Error::EncryptedData)
        ));
        assert!(matches!(
            Transformer::identity().decrypt_blocking(value, SK.into()),
            Err(Error::NoMatchingPrefix)
        ));
    }
    // Not the reserved prefix: read as is.
    for value in [&b""[..], b"k8s:enc", b"K8S:ENC:x", b"{\"kind\":\"Secret\"}"] {
        let read = Transformer::identity()
            .decrypt_blocking(value, SK.into())
            .expect("identity reads");
        assert_eq!((read.plaintext.as_slice(), read.stale), (value, false));
    }
    let stored = Transformer::identity()
        .encrypt_blocking(b"as is", SK.into())
        .expect("encrypt");
    assert_eq!(stored, b"as is");
}

#[test]
fn read_walk_errors() {
    assert!(matches!(Transformer::new(vec![]), Err(Error::NoProviders)));

    let a = Kind::Gcm.with_keys(&[("a", &key(32, 1))]);
    let b = Kind::Gcm.with_keys(&[("b", &key(32, 2))]);
    let cbc = Kind::Cbc.with_keys(&[("c", &key(32, 3))]);
    let t = transformer(vec![a.clone(), b.clone(), identity()]);

    // No prefix matches.
    let by_cbc = enc(&cbc, b"x", SK);
    let only_gcm = transformer(vec![a.clone()]);
    assert!(matches!(
        only_gcm.decrypt_blocking(&by_cbc, SK.into()),
        Err(Error::NoMatchingPrefix)
    ));
    assert!(matches!(
        only_gcm.decrypt_blocking(b"plain text", SK.into()),
        Err(Error::NoMatchingPrefix)
    ));
    // identity matched but refused: still no error of its own.
    assert!(matches!(
        t.decrypt_blocking(&by_cbc, SK.into()),
        Err(Error::NoMatchingPrefix)
    ));

    // Two matching providers fail: an aggregate, in provider order.
    let unknown = enc(&Kind::Gcm.with_keys(&[("z", &key(32, 1))]), b"x", SK);
    match t.decrypt_blocking(&unknown, SK.into()) {
        Err(Error::Aggregate(errors)) => {
            assert_eq!(errors.len(), 2);
            assert!(errors.iter().all(|e| matches!(
                e,
                Error::NoMatchingKey {
                    provider: ProviderKind::AesGcm,
                    key,
                } if key == "z"
            )));
            let message = Error::Aggregate(errors).to_string();
            let one =
                "aesgcm: no matching key was found for the stored value: it needs key \"z\", \
                       which the configuration does not have";
            assert_eq!(message, format!("[{one}, {one}]"));
        }
        other => panic!("expected an aggregate, got {other:?}"),
    }

    // A failure, then a success further down: the success wins, stale.
    let by_b = enc(&b, b"bee", SK);
    let read = t.decrypt_blocking(&by_b, SK.into()).expect("decrypt");
    assert_eq!((read.plaintext.as_slice(), read.stale), (&b"bee"[..], true));

    // Plain values fall through to identity.
    let read = t.decrypt_blocking(b"plain", SK.into()).expect("decrypt");
    assert_eq!(
        (read.plaintext.as_slice(), read.stale),
        (&b"plain"[..], true)
    );
}

/// A provider with no blocking form, standing in for KMS.
struct AsyncOnly;

impl Provider for AsyncOnly {
    fn prefix(&self) -> &[u8] {
        b"k8s:enc:test:v1:"
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Custom
    }

    fn encrypt<'a>(
        &'a self,
        plaintext: &'a [u8],
        _: StorageKey<'a>,
    ) -> ProviderFuture<'a, Vec<u8>> {
        let mut out = self.prefix().to_vec();
        out.extend(plaintext.iter().map(|b| b ^ 0x5a));
        Box::pin(async move { Ok(out) })
    }

    fn decrypt<'a>(&'a self, stored: &'a [u8], _: StorageKey<'a>) -> ProviderFuture<'a, Decrypted> {
        Box::pin(async move {
            let body = stored
                .strip_prefix(self.prefix())
                .ok_or(Error::NoMatchingPrefix)?;
            Ok(Decrypted {
                plaintext: body.iter().map(|b| b ^ 0x5a).collect(),
                stale: false,
            })
        })
    }
}

#[test]
fn async_api_matches_blocking_api() {
    let gcm = Kind::Gcm.with_keys(&[("g", &key(32, 1))]);
    let cbc = Kind::Cbc.with_keys(&[("c", &key(24, 2))]);
    let sb = Kind::Secretbox.with_keys(&[("s", &key(32, 3))]);
    let transformers = [
        transformer(vec![gcm.clone(), cbc.clone(), sb.clone(), identity()]),
        transformer(vec![identity(), sb.clone(), gcm.clone()]),
        transformer(vec![cbc.clone()]),
        Transformer::identity(),
    ];
    let inputs: Vec<Vec<u8>> = vec![
        enc(&gcm, b"by gcm", SK),
        enc(&cbc, b"by cbc", SK),
        enc(&sb, b"by sb", SK),
        enc(&Kind::Gcm.with_keys(&[("zz", &key(32, 1))]), b"unknown", SK),
        b"plain".to_vec(),
        b"k8s:enc:aesgcm:v1:g:".to_vec(),
        b"k8s:enc:".to_vec(),
    ];
    let summary = |r: Result<Decrypted, Error>| match r {
        Ok(d) => Ok((d.plaintext, d.stale)),
        Err(e) => Err(format!("{e} / {e:?}")),
    };
    for t in &transformers {
        for input in &inputs {
            let blocking = summary(t.decrypt_blocking(input, SK.into()));
            let asynchronous = summary(block_on(t.decrypt(input, SK.into())));
            assert_eq!(blocking, asynchronous, "{t:?} reading {input:?}");
        }
        // Writes differ by nonce; both must read back identically.
        let a = t.encrypt_blocking(b"round", SK.into()).expect("encrypt");
        let b = block_on(t.encrypt(b"round", SK.into())).expect("encrypt");
        assert_eq!(a.len(), b.len());
        let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        assert!(common >= a.len().min(t.providers()[0].prefix().len()));
        for stored in [&a, &b] {
            let x = summary(t.decrypt_blocking(stored, SK.into()));
            let y = summary(block_on(t.decrypt(stored, SK.into())));
            assert_eq!(x, y);
            assert_eq!(x, Ok((b"round".to_vec(), false)));
        }
    }
}

#[test]
fn async_only_providers() {
    let gcm = Kind::Gcm.with_keys(&[("g", &key(32, 1))]);
    let t = transformer(vec![Arc::new(AsyncOnly), gcm.clone()]);

    assert!(matches!(
        t.encrypt_blocking(b"x", SK.into()),
        Err(Error::RequiresAsync {
            provider: ProviderKind::Custom
        })
    ));
    let stored = block_on(t.encrypt(b"async", SK.into())).expect("encrypt");
    assert!(stored.starts_with(b"k8s:enc:test:v1:"));
    let read = block_on(t.decrypt(&stored, SK.into())).expect("decrypt");
    assert_eq!(
        (read.plaintext.as_slice(), read.stale),
        (&b"async"[..], false)
    );
    assert!(matches!(
        t.decrypt_blocking(&stored, SK.into()),
        Err(Error::RequiresAsync {
            provider: ProviderKind::Custom
        })
    ));

    // A blocking read of a value for the other provider still works.
    let by_gcm = enc(&gcm, b"sync", SK);
    let read = t.decrypt_blocking(&by_gcm, SK.into()).expect("decrypt");
    assert_eq!(
        (read.plaintext.as_slice(), read.stale),
        (&b"sync"[..], true)
    );
}

// ---------------------------------------------------------------------------
// Writing and reading into a caller's buffer
// ---------------------------------------------------------------------------

/// `*_blocking_into` with one buffer reused across growing and shrinking
/// values gives the bytes the allocating API reads, and reads what it
/// writes; after an error the buffer is empty.
#[test]
fn into_variants_reuse_a_buffer_and_agree_with_the_allocating_api() {
    let old = key(32, 1);
    let new = key(32, 2);
    for kind in ALL_KINDS {
        let writer = kind.with_keys(&[("new", &new), ("old", &old)]);
        let old_writer = kind.with_keys(&[("old", &old)]);
        let transformer = Transformer::new(vec![writer.clone()]).expect("transformer");
        let (mut stored, mut plaintext) = (vec![0xEE; 5000], vec![0xDD; 7000]);
        for len in [1000, 0, 17, 4096, 3, 1024] {
            let value: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let storage_key = format!("/registry/secrets/ns/{len}");
            let sk = StorageKey::from(storage_key.as_str());
            blocking(&writer)
                .encrypt_blocking_into(&value, sk, &mut stored)
                .expect("encrypt into");
            assert!(stored.starts_with(format!("{}new:", kind.prefix()).as_bytes()));
            assert_eq!(
                stored.len(),
                kind.prefix().len() + 4 + kind.body_len(len),
                "{kind:?} {len}"
            );
            assert_eq!(
                ok_plaintext(blocking(&writer).decrypt_blocking(&stored, sk)),
                (value.clone(), false)
            );
            let stale = blocking(&writer)
                .decrypt_blocking_into(&stored, sk, &mut plaintext)
                .expect("decrypt into");
            assert_eq!(
                (plaintext.as_slice(), stale),
                (value.as_slice(), false),
                "{kind:?} {len}"
            );

            // Through a transformer; a value of the old key reads as stale.
            transformer
                .encrypt_blocking_into(&value, sk, &mut stored)
                .expect("transformer encrypt into");
            assert!(!transformer
                .decrypt_blocking_into(&stored, sk, &mut plaintext)
                .expect("transformer decrypt into"));
            assert_eq!(plaintext, value);
            let by_old = blocking(&old_writer)
                .encrypt_blocking(&value, sk)
                .expect("encrypt");
            assert!(transformer
                .decrypt_blocking_into(&by_old, sk, &mut plaintext)
                .expect("stale read"));
            assert_eq!(plaintext, value);

            // A flipped bit (aesgcm, secretbox) or another storage key
            // (aesgcm) fails and leaves the buffer empty.
            if kind != Kind::Cbc {
                let mut forged = stored.clone();
                let last = forged.len() - 1;
                forged[last] ^= 1;
                plaintext.extend_from_slice(b"left over");
                assert!(transformer
                    .decrypt_blocking_into(&forged, sk, &mut plaintext)
                    .is_err());
                assert!(plaintext.is_empty(), "{kind:?}");
            }
        }
        // A value of no provider here.
        let mut out = b"left over".to_vec();
        assert!(transformer
            .decrypt_blocking_into(b"k8s:enc:other:v1:x:abc", "k".into(), &mut out)
            .is_err());
        assert!(out.is_empty());
    }
}
