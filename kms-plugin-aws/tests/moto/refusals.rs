//! What the plugin refuses, with which gRPC code: another encryption
//! context, another key's ciphertext, a key ID it never issued, empty and
//! garbage ciphertexts (never a panic); a disabled key in Status; a key
//! that does not exist or no region at start. No output holds the AWS
//! secret key.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_envelope::kms::{KmsErrorKind, StatusCode};
use k8s_envelope::Error;
use k8s_envelope_test_support::moto::SECRET_ACCESS_KEY;
use k8s_envelope_test_support::plugin_process::run_to_exit;
use k8s_envelope_test_support::rt;

use crate::emulator::{client, Emulator};

/// The purpose in the plugin's encryption context (its docs name it).
const PURPOSE: &str = "kubernetes encryption at rest: a KMS plugin's DEK or seed";

/// The gRPC code and message of a refused call.
fn refusal(err: &Error) -> (StatusCode, String) {
    match err {
        Error::Kms(e) => match e.kind() {
            KmsErrorKind::Status { code, message } => (*code, message.clone()),
            other => panic!("not a gRPC status: {other:?}"),
        },
        other => panic!("not a KMS error: {other}"),
    }
}

#[test]
#[ignore = "needs moto's server (K8S_ENVELOPE_MOTO_SERVER or moto_server on the PATH)"]
fn other_contexts_other_keys_and_foreign_key_ids_are_refused() {
    let aws = Emulator::start();
    let key = aws.create_key();
    let other = aws.create_key();
    let plugin = aws.plugin(&key.id, &[]);
    let client = client(&plugin, Duration::from_secs(10));
    let none = BTreeMap::new();
    let dek = [7u8; 32];
    let runtime = rt();
    let key_id = runtime.block_on(async { client.as_v2().status().await.expect("Status").key_id });
    // The plugin's key, but another purpose or another key ID in the
    // context; another key's ciphertext with the plugin's context.
    let other_contexts: Vec<Vec<u8>> = [
        vec![
            ("k8s-envelope:purpose", "something else"),
            ("k8s-envelope:key-id", key_id.as_str()),
        ],
        vec![("k8s-envelope:purpose", PURPOSE)],
        vec![],
    ]
    .iter()
    .map(|context| aws.encrypt(&key, &dek, context))
    .collect();
    let foreign = aws.encrypt(
        &other,
        &dek,
        &[
            ("k8s-envelope:purpose", PURPOSE),
            ("k8s-envelope:key-id", &key_id),
        ],
    );
    runtime.block_on(async {
        let kms = client.as_v2();
        let ours = kms.encrypt("e", &dek).await.expect("encrypt");
        assert_eq!(ours.key_id, key_id);

        // AWS KMS refuses another context (InvalidCiphertextException).
        for ciphertext in &other_contexts {
            let err = kms
                .decrypt("d", &key_id, ciphertext, &none)
                .await
                .expect_err("another context");
            let (code, message) = refusal(&err);
            assert_eq!(code, StatusCode::InvalidArgument, "{message}");
            assert!(message.contains("InvalidCiphertextException"), "{message}");
        }
        // The plugin's own ciphertext under another of its key IDs (as if a
        // stale value were relabelled current): the context holds the key ID.
        let relabelled = format!("{}#rotated-1.000000000", key.arn);
        let err = kms
            .decrypt("d", &relabelled, &ours.ciphertext, &none)
            .await
            .expect_err("relabelled");
        assert_eq!(refusal(&err).0, StatusCode::InvalidArgument);

        // Another key's ciphertext, with this plugin's context, under this
        // plugin's key ID. Real AWS answers IncorrectKeyException
        // (INVALID_ARGUMENT); moto answers AccessDeniedException, which the
        // plugin reports as FAILED_PRECONDITION. Refused either way, and the
        // message names what AWS said.
        let err = kms
            .decrypt("d", &key_id, &foreign, &none)
            .await
            .expect_err("another key's ciphertext");
        let (code, message) = refusal(&err);
        assert!(
            matches!(
                code,
                StatusCode::InvalidArgument | StatusCode::FailedPrecondition
            ),
            "{code:?} {message}"
        );
        assert!(message.starts_with("KMS Decrypt: "), "{message}");

        // Key IDs the plugin never issued: refused before any AWS call.
        for unknown in [
            format!("{}#original", other.arn),
            "pkcs11-00ff".to_owned(),
            key.arn.clone(),
        ] {
            let err = kms
                .decrypt("d", &unknown, &ours.ciphertext, &none)
                .await
                .expect_err("unknown key ID");
            let (code, message) = refusal(&err);
            assert_eq!(code, StatusCode::InvalidArgument, "{message}");
            assert!(message.contains("unknown key ID"), "{message}");
        }

        // Empty, garbage and oversized ciphertexts: refused, never a panic.
        for garbage in [vec![], vec![0u8], vec![0xff; 96], vec![1; 7000]] {
            let err = kms
                .decrypt("d", &key_id, &garbage, &none)
                .await
                .expect_err("garbage");
            assert_eq!(refusal(&err).0, StatusCode::InvalidArgument, "{garbage:?}");
        }
        // Nothing, or more than AWS KMS encrypts (4096 bytes): refused
        // before any AWS call.
        for plaintext in [vec![], vec![1u8; 4097]] {
            let err = kms
                .encrypt("e", &plaintext)
                .await
                .expect_err("no plaintext AWS KMS takes");
            let (code, message) = refusal(&err);
            assert_eq!(code, StatusCode::InvalidArgument, "{message}");
            assert!(message.contains("1 to 4096 bytes"), "{message}");
        }
        // Still serving, and the round trip still works.
        let plain = kms
            .decrypt("d", &ours.key_id, &ours.ciphertext, &none)
            .await
            .expect("decrypt");
        assert_eq!(&plain[..], &dek);
    });
    assert!(!plugin.log().contains(SECRET_ACCESS_KEY));
}

#[test]
#[ignore = "needs moto's server (K8S_ENVELOPE_MOTO_SERVER or moto_server on the PATH)"]
fn a_disabled_key_is_unhealthy_until_enabled() {
    let aws = Emulator::start();
    let key = aws.create_key();
    let plugin = aws.plugin(&key.arn, &["--refresh-seconds", "1"]);
    let client = client(&plugin, Duration::from_secs(5));
    let runtime = rt();
    let healthz = |wanted: &dyn Fn(&str) -> bool| {
        runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let status = client.as_v2().status().await.expect("Status answers");
                if wanted(&status.healthz) {
                    return status.healthz;
                }
                assert!(Instant::now() < deadline, "healthz {:?}", status.healthz);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    assert_eq!(healthz(&|h| h == "ok"), "ok");
    aws.disable(&key);
    let unhealthy = healthz(&|h| h != "ok");
    assert!(unhealthy.contains("Disabled"), "{unhealthy}");
    aws.enable(&key);
    assert_eq!(healthz(&|h| h == "ok"), "ok");
}

#[test]
#[ignore = "needs moto's server (K8S_ENVELOPE_MOTO_SERVER or moto_server on the PATH)"]
fn a_missing_key_or_region_stops_the_start_with_a_clear_error() {
    let aws = Emulator::start();
    let (code, stderr) = run_to_exit(aws.command("alias/missing", &[]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--key alias/missing") && stderr.contains("NotFoundException"),
        "{stderr}"
    );

    let key = aws.create_key();
    let (code, stderr) = run_to_exit(aws.command(&key.id, &["--old-key", "no-such-key"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--old-key no-such-key"), "{stderr}");

    let mut no_region = aws.command(&key.id, &[]);
    no_region.env_remove("AWS_REGION");
    let (code, stderr) = run_to_exit(no_region);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no AWS region"), "{stderr}");

    // No credentials anywhere (the environment's half, no profile files,
    // no instance metadata): refused at once as a configuration problem,
    // not retried as an outage; the secret half never printed.
    let mut no_credentials = aws.command(&key.id, &[]);
    no_credentials.env_remove("AWS_ACCESS_KEY_ID");
    let started = std::time::Instant::now();
    let (code, stderr) = run_to_exit(no_credentials);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no usable AWS credentials"), "{stderr}");
    assert!(!stderr.contains(SECRET_ACCESS_KEY), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
