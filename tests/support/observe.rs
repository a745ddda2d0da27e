//! Helpers shared by the observability tests.

#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use k8s_envelope::observe::Observer;
use k8s_envelope::{EncryptionConfiguration, ResourceTransformers};
pub use k8s_envelope_test_support::fake_kms::FakeKms;

pub const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const KEY_B: &str = "8PHy8/T19vf4+fr7/P3+/wABAgMEBQYHCAkKCwwNDg8=";
pub const PLAINTEXT: &[u8] = b"PLAINTEXT-MUST-NEVER-BE-LOGGED-5f3a";

pub fn transformers() -> ResourceTransformers {
    EncryptionConfiguration::from_yaml(
        format!(
            "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n      - aesgcm:\n          keys:\n            - name: new\n              secret: {KEY_A}\n      - secretbox:\n          keys:\n            - name: old\n              secret: {KEY_B}\n"
        )
        .as_bytes(),
    )
    .expect("parses")
    .build()
    .expect("builds")
}

/// Every form in which a key or the plaintext could leak into text.
pub fn needles() -> Vec<String> {
    let mut needles = vec![
        KEY_A.to_owned(),
        KEY_B.to_owned(),
        String::from_utf8_lossy(PLAINTEXT).into_owned(),
        BASE64.encode(PLAINTEXT),
    ];
    for key in [KEY_A, KEY_B] {
        let bytes = BASE64.decode(key).expect("base64");
        needles.push(bytes.iter().map(|b| format!("{b:02x}")).collect());
        needles.push(
            format!("{:?}", &bytes[..8])
                .trim_end_matches(']')
                .to_owned(),
        );
    }
    needles
}

pub fn assert_clean(text: &str) {
    for needle in needles() {
        assert!(!text.contains(&needle), "leaked {needle:?} in:\n{text}");
    }
}

/// Exercises every outcome: writes, current and stale reads, failures.
pub fn exercise(observer: &Observer, transformers: &ResourceTransformers) {
    let key = "/registry/secrets/default/a".into();
    let stored = observer
        .encrypt_blocking(transformers, "secrets", PLAINTEXT, key)
        .expect("encrypt");
    observer
        .decrypt_blocking(transformers, "secrets", &stored, key)
        .expect("decrypt");
    let old = transformers.for_resource("secrets").providers()[1]
        .as_blocking()
        .expect("secretbox is blocking")
        .encrypt_blocking(PLAINTEXT, key)
        .expect("old write");
    assert!(
        observer
            .decrypt_blocking(transformers, "secrets", &old, key)
            .expect("stale read")
            .stale
    );
    let mut tampered = stored.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(observer
        .decrypt_blocking(transformers, "secrets", &tampered, key)
        .is_err());
    assert!(observer
        .decrypt_blocking(transformers, "secrets", &stored, "/other".into())
        .is_err());
    assert!(observer
        .decrypt_blocking(transformers, "secrets", PLAINTEXT, key)
        .is_err());
}
