//! The size and time limits on hostile input, one test each: stored values
//! and plaintexts through a `Transformer`, lengths written inside values, a
//! JSON Lines request nested too deep, and KMS plugins that claim gigabytes
//! or never answer.
//!
//! Limits tested elsewhere, not repeated here:
//! - configuration size, YAML alias bombs and deep nesting (YAML and JSON):
//!   `tests/integration/config.rs` (`oversized_input_is_rejected_before_parsing`,
//!   `alias_bomb_fails_fast`, `deep_nesting_is_an_error_not_a_stack_overflow`);
//! - a plugin answer larger than `MAX_MESSAGE_SIZE`: `cli/tests/integration/kms_grpc.rs`
//!   (`oversized_answers_are_refused`);
//! - plugins slower than the timeout: `cli/tests/integration/kms_grpc.rs`
//!   (`k8sref_plugin_slower_than_the_timeout_gives_timeout`) and
//!   `cli/tests/integration/kms_faults.rs` (`slow_plugin_*`);
//! - that hostile lengths allocate nothing like what they claim:
//!   `tests/hostile_lengths.rs`.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use k8s_envelope::internal::split_kms_v1_body;
use k8s_envelope::jsonl::{self, Direction, Transform};
use k8s_envelope::kms::StatusCode;
use k8s_envelope::ProviderFuture;
use k8s_envelope::{
    AesGcm, BlockingProvider, Decrypted, Error, Identity, KmsApiVersion, NamedKey, Provider,
    ProviderKind, SecretKey, StorageKey, Transformer, MAX_PLAINTEXT_LEN, MAX_STORED_VALUE_LEN,
};

const KEY: &str = "/registry/secrets/default/a";

fn aesgcm() -> Arc<dyn Provider> {
    Arc::new(AesGcm::new(vec![NamedKey::new("k1", SecretKey::new(vec![7; 32]))]).expect("key"))
}

use k8s_envelope_test_support::block_on;

// ---------------------------------------------------------------------------
// Stored values and plaintexts

#[test]
fn stored_values_above_the_limit_are_refused_before_any_provider() {
    // Above etcd's default request limit of 1.5 MiB.
    const { assert!(MAX_STORED_VALUE_LEN > 3 * 1024 * 1024 / 2) };
    let transformer = Transformer::new(vec![aesgcm(), Arc::new(Identity::new())]).expect("new");
    let mut stored = vec![b'x'; MAX_STORED_VALUE_LEN + 1];
    for result in [
        transformer.decrypt_blocking(&stored, KEY.into()),
        block_on(transformer.decrypt(&stored, KEY.into())),
    ] {
        match result {
            Err(Error::StoredValueTooLarge { len, limit }) => {
                assert_eq!(len, MAX_STORED_VALUE_LEN + 1);
                assert_eq!(limit, MAX_STORED_VALUE_LEN);
            }
            other => panic!("{other:?}"),
        }
    }
    let e = transformer
        .decrypt_blocking(&stored, KEY.into())
        .expect_err("too large");
    assert_eq!(
        e.to_string(),
        format!(
            "stored value is too large: {} bytes, the limit is {MAX_STORED_VALUE_LEN}",
            MAX_STORED_VALUE_LEN + 1
        )
    );
    // At the limit, the value is read (here by identity).
    stored.pop();
    let read = transformer
        .decrypt_blocking(&stored, KEY.into())
        .expect("at the limit");
    assert_eq!(read.plaintext.len(), MAX_STORED_VALUE_LEN);
}

#[test]
fn plaintexts_above_the_limit_are_refused_before_encrypting() {
    const { assert!(MAX_PLAINTEXT_LEN < MAX_STORED_VALUE_LEN) };
    let transformer = Transformer::new(vec![aesgcm()]).expect("new");
    let plaintext = vec![0u8; MAX_PLAINTEXT_LEN + 1];
    for result in [
        transformer.encrypt_blocking(&plaintext, KEY.into()),
        block_on(transformer.encrypt(&plaintext, KEY.into())),
        {
            // Into a buffer: refused too, and the buffer is left empty.
            let mut out = b"left over".to_vec();
            let result = transformer.encrypt_blocking_into(&plaintext, KEY.into(), &mut out);
            assert!(out.is_empty());
            result.map(|()| out)
        },
    ] {
        match result {
            Err(Error::PlaintextTooLarge { len, limit }) => {
                assert_eq!(len, MAX_PLAINTEXT_LEN + 1);
                assert_eq!(limit, MAX_PLAINTEXT_LEN);
            }
            other => panic!("{:?}", other.map(|v| v.len())),
        }
    }
    // At the limit, identity writes and reads back.
    let identity = Transformer::identity();
    let stored = identity
        .encrypt_blocking(&plaintext[1..], KEY.into())
        .expect("at the limit");
    assert_eq!(
        identity
            .decrypt_blocking(&stored, KEY.into())
            .expect("read back")
            .plaintext
            .len(),
        MAX_PLAINTEXT_LEN
    );
}

/// Writes `PREFIX || plaintext || padding`: framing as large as a provider
/// may add, without the cost of encrypting megabytes in a debug build.
struct Padded {
    padding: usize,
}

impl BlockingProvider for Padded {
    fn encrypt_blocking(&self, plaintext: &[u8], _: StorageKey<'_>) -> Result<Vec<u8>, Error> {
        let mut out = b"k8s:enc:padded:".to_vec();
        out.extend_from_slice(plaintext);
        out.resize(out.len() + self.padding, 0);
        Ok(out)
    }

    fn decrypt_blocking(&self, stored: &[u8], _: StorageKey<'_>) -> Result<Decrypted, Error> {
        let body = &stored[b"k8s:enc:padded:".len()..];
        Ok(Decrypted {
            plaintext: body[..body.len() - self.padding].to_vec(),
            stale: false,
        })
    }
}

impl Provider for Padded {
    fn prefix(&self) -> &[u8] {
        b"k8s:enc:padded:"
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Custom
    }

    fn encrypt<'a>(
        &'a self,
        plaintext: &'a [u8],
        key: StorageKey<'a>,
    ) -> ProviderFuture<'a, Vec<u8>> {
        Box::pin(std::future::ready(self.encrypt_blocking(plaintext, key)))
    }

    fn decrypt<'a>(
        &'a self,
        stored: &'a [u8],
        key: StorageKey<'a>,
    ) -> ProviderFuture<'a, Decrypted> {
        Box::pin(std::future::ready(self.decrypt_blocking(stored, key)))
    }

    fn as_blocking(&self) -> Option<&dyn BlockingProvider> {
        Some(self)
    }
}

#[test]
fn a_write_that_no_read_would_accept_is_refused() {
    let plaintext = vec![1u8; MAX_PLAINTEXT_LEN];
    // A provider's framing fits in the headroom between the two limits...
    let fits = Transformer::new(vec![Arc::new(Padded { padding: 64 * 1024 })]).expect("new");
    let stored = fits.encrypt_blocking(&plaintext, KEY.into()).expect("fits");
    assert_eq!(
        fits.decrypt_blocking(&stored, KEY.into())
            .expect("reads back")
            .plaintext,
        plaintext
    );
    // ...and a write whose output would exceed the stored limit fails
    // rather than hand out a value that could never be read.
    let too_much = Transformer::new(vec![Arc::new(Padded {
        padding: 2 * 1024 * 1024,
    })])
    .expect("new");
    for result in [
        too_much.encrypt_blocking(&plaintext, KEY.into()),
        block_on(too_much.encrypt(&plaintext, KEY.into())),
    ] {
        assert!(
            matches!(result, Err(Error::StoredValueTooLarge { limit, .. }) if limit == MAX_STORED_VALUE_LEN),
            "{:?}",
            result.map(|v| v.len())
        );
    }
}

// ---------------------------------------------------------------------------
// Lengths inside values

#[test]
fn lengths_inside_values_are_checked_against_the_value() {
    // KMS v1: a DEK length of 65535 in a body of 5 bytes.
    assert!(matches!(
        split_kms_v1_body(&[0xff, 0xff, 1, 2, 3]),
        Err(Error::Malformed {
            provider: ProviderKind::Kms(KmsApiVersion::V1),
            ..
        })
    ));
    // KMS v2: encryptedData claiming 2^62 bytes.
    let mut body = vec![0x0a];
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f]);
    body.extend_from_slice(b"data");
    let e = k8s_envelope::internal::EncryptedObjectRef::decode(&body).expect_err("too long");
    assert_eq!(e.to_string(), "kms v2: protobuf length exceeds the input");
}

// ---------------------------------------------------------------------------
// JSON Lines

/// The response lines of a run, as JSON.
fn response_lines(output: &[u8]) -> Vec<serde_json::Value> {
    output
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("json"))
        .collect()
}

struct NoTransform;

impl Transform for NoTransform {
    type Error = Error;

    fn encrypt(&self, _: &str, _: &str, _: &[u8]) -> Result<Vec<u8>, Error> {
        Err(Error::NoMatchingPrefix)
    }

    fn decrypt(&self, _: &str, _: &str, _: &[u8]) -> Result<Decrypted, Error> {
        Err(Error::NoMatchingPrefix)
    }
}

#[test]
fn a_deeply_nested_request_line_is_an_error_line() {
    let mut input = "[".repeat(1_000_000);
    input.push('\n');
    input.push_str(&"{\"a\":".repeat(1_000_000));
    input.push('\n');
    let mut output = Vec::new();
    let failed = jsonl::run(
        &NoTransform,
        Direction::Decrypt,
        Cursor::new(input),
        &mut output,
    )
    .expect("run");
    assert_eq!(failed, 2);
    let lines = response_lines(&output);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["error"].is_string()), "{lines:?}");
}

/// The line cap is what the largest legal request needs: a stored value
/// of the largest size, in base64, with a long storage key, fits; a line
/// one byte longer than the cap is refused unread, and the run goes on.
#[test]
fn the_line_cap_fits_the_largest_legal_request_and_no_more() {
    use base64::Engine as _;
    let value = base64::engine::general_purpose::STANDARD
        .encode(vec![0u8; k8s_envelope::MAX_STORED_VALUE_LEN]);
    let legal = format!(
        r#"{{"resource":"secrets","storage_key":"/registry/secrets/default/{}","stored_b64":"{value}"}}"#,
        "k".repeat(4096)
    );
    assert!(
        legal.len() <= jsonl::MAX_LINE,
        "{} > {}",
        legal.len(),
        jsonl::MAX_LINE
    );
    let mut input = vec![b'x'; jsonl::MAX_LINE + 1];
    input.push(b'\n');
    input.extend_from_slice(legal.as_bytes());
    input.push(b'\n');
    let mut output = Vec::new();
    let failed = jsonl::run(
        &NoTransform,
        Direction::Decrypt,
        Cursor::new(input),
        &mut output,
    )
    .expect("run");
    assert_eq!(failed, 2);
    let lines = response_lines(&output);
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("longer than")),
        "{}",
        lines[0]
    );
    // The legal line was read and reached the transform.
    assert_eq!(lines[1]["error"], "no matching prefix found");
}

// ---------------------------------------------------------------------------
// KMS plugins that never answer or claim gigabytes

#[cfg(unix)]
use k8s_envelope_test_support::misbehaving_plugin as plugins;

#[cfg(unix)]
#[test]
fn a_plugin_that_never_answers_is_cut_off_by_the_timeout() {
    use k8s_envelope::kms::KmsErrorKind;

    for fake in [plugins::Fake::Mute, plugins::Fake::Stalls] {
        let dir = tempfile::tempdir().expect("tempdir");
        let errors = block_on(async {
            let client = plugins::serve(dir.path(), fake).await;
            plugins::call_both(&client).await
        });
        for (e, took) in errors {
            assert!(
                matches!(plugins::kind(&e), KmsErrorKind::Timeout(t) if *t == plugins::TIMEOUT),
                "{e}"
            );
            assert!(
                took >= plugins::TIMEOUT && took < plugins::TIMEOUT + Duration::from_millis(1500),
                "{took:?}"
            );
        }
    }
}

#[cfg(unix)]
#[test]
fn a_plugin_answer_claiming_gigabytes_is_refused_at_once() {
    use k8s_envelope::kms::KmsErrorKind;

    let dir = tempfile::tempdir().expect("tempdir");
    let errors = block_on(async {
        let client = plugins::serve(dir.path(), plugins::Fake::ClaimsGigabytes).await;
        plugins::call_both(&client).await
    });
    for (e, took) in errors {
        assert!(
            matches!(plugins::kind(&e), KmsErrorKind::Status { code, .. } if *code == StatusCode::OutOfRange),
            "{e}"
        );
        // Refused on the length prefix, not after waiting for the bytes.
        assert!(took < plugins::TIMEOUT, "{took:?}");
    }
}
