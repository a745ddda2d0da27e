//! AWS KMS stops answering (moto's server paused with SIGSTOP: the kernel
//! still accepts connections, nothing answers) and comes back: calls fail
//! with UNAVAILABLE inside the caller's deadline, Status keeps answering at
//! once (ok until the outage outlasts three refreshes, then not), and the
//! plugin recovers by itself. A restart of moto would be a new, empty KMS,
//! so a pause is the outage it can show.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_envelope::kms::{KmsErrorKind, KmsServiceV2};
use k8s_envelope::Error;
use k8s_envelope_test_support::rt;

use crate::emulator::{client, Emulator};

/// Polls Status (20 s at most) until `wanted` holds for its healthz; each
/// Status must answer within a second, outage or not.
async fn await_healthz(kms: &dyn KmsServiceV2, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let asked = Instant::now();
        let status = kms.status().await.expect("Status answers throughout");
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
        if wanted(&status.healthz) {
            return status.healthz;
        }
        assert!(
            Instant::now() < deadline,
            "healthz stayed {:?}",
            status.healthz
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
#[ignore = "needs moto's server (K8S_ENVELOPE_MOTO_SERVER or moto_server on the PATH)"]
fn a_paused_kms_is_unavailable_within_the_deadline_and_the_plugin_recovers() {
    let mut aws = Emulator::start();
    let key = aws.create_key();
    let plugin = aws.plugin(&key.id, &["--refresh-seconds", "2", "--timeout-ms", "1000"]);
    // The caller's deadline, as the apiserver's KMS timeout.
    let client = client(&plugin, Duration::from_secs(3));
    let dek = [9u8; 32];
    rt().block_on(async {
        let kms = client.as_v2();
        let before = kms.encrypt("before", &dek).await.expect("encrypt");
        assert_eq!(await_healthz(kms, |h| h == "ok").await, "ok");

        aws.moto.pause();
        // Status answers from memory at once, still ok: one slow answer
        // does not fail the apiserver's probe.
        let status = kms.status().await.expect("Status");
        assert!(status.is_healthy(), "{status:?}");

        for call in ["encrypt", "decrypt"] {
            let asked = Instant::now();
            let err = if call == "encrypt" {
                kms.encrypt("during", &dek)
                    .await
                    .map(drop)
                    .expect_err("paused")
            } else {
                kms.decrypt(
                    "during",
                    &before.key_id,
                    &before.ciphertext,
                    &BTreeMap::new(),
                )
                .await
                .map(drop)
                .expect_err("paused")
            };
            let took = asked.elapsed();
            // UNAVAILABLE, which the client reports as the plugin being
            // unavailable (retryable), with the plugin's reason.
            assert!(
                matches!(&err, Error::Kms(e) if matches!(e.kind(),
                    KmsErrorKind::Unavailable(message) if message.contains("no answer in time"))),
                "{call}: {err}"
            );
            // --timeout-ms 1000 and a little: well inside the 3 s deadline.
            assert!(took < Duration::from_millis(2500), "{call} took {took:?}");
        }

        // The outage outlasts three refreshes: unhealthy, saying why.
        let healthz = await_healthz(kms, |h| h != "ok").await;
        assert!(healthz.contains("no answer in time"), "{healthz}");

        aws.moto.resume();
        assert_eq!(await_healthz(kms, |h| h == "ok").await, "ok");
        let after = kms.encrypt("after", &dek).await.expect("encrypt again");
        let plain = kms
            .decrypt(
                "after",
                &before.key_id,
                &before.ciphertext,
                &BTreeMap::new(),
            )
            .await
            .expect("decrypt what was wrapped before the outage");
        assert_eq!(&plain[..], &dek);
        assert_eq!(after.key_id, before.key_id);
    });
    assert!(
        plugin.log().contains("AWS KMS answers again"),
        "{}",
        plugin.log()
    );
}
