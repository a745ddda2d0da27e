//! The token taken away under a running plugin and put back.
//!
//! SoftHSM2 keeps each token in a directory under its token directory;
//! moving that directory away is what it can show of a token that is
//! unplugged or an HSM that is unreachable: the key's handle turns invalid
//! (CKR_OBJECT_HANDLE_INVALID) and searches find nothing. SoftHSM2 sees a
//! token again only after C_Finalize and C_Initialize, which the plugin
//! does by itself.

use std::time::{Duration, Instant};

use k8s_envelope::kms::{GrpcClient, KmsErrorKind, KmsServiceV2, StatusCode, StatusResponse};
use k8s_envelope::Error;

use crate::plugin::Plugin;
use k8s_envelope_test_support::rt;
use k8s_envelope_test_support::softhsm::{SoftHsm, PIN, TOKEN_LABEL};

/// Polls Status until it reports healthy (`ok`) or not (15 s at most).
async fn await_healthz(plugin: &dyn KmsServiceV2, ok: bool) -> String {
    await_status(plugin, |status| status.is_healthy() == ok).await
}

/// Polls Status until its healthz contains `wanted` (15 s at most).
async fn await_healthz_containing(plugin: &dyn KmsServiceV2, wanted: &str) -> String {
    await_status(plugin, |status| status.healthz.contains(wanted)).await
}

/// Polls Status until `wanted` holds (15 s at most); its healthz.
async fn await_status(
    plugin: &dyn KmsServiceV2,
    wanted: impl Fn(&StatusResponse) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = plugin.status().await.expect("Status answers throughout");
        if wanted(&status) {
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
#[ignore = "needs SoftHSM2 (apt-get install softhsm2 opensc)"]
fn a_token_that_goes_away_is_reported_and_picked_up_again() {
    let hsm = SoftHsm::new_token();
    let plugin = Plugin::start(&hsm, "kek1", &["--create-key"]);
    let client = GrpcClient::new(plugin.endpoint(), Duration::from_secs(5));
    let token_dir = hsm.token_dir();
    let away = hsm.dir().join("away");
    rt().block_on(async {
        let kms = client.as_v2();
        let dek = [42u8; 32];
        let before = kms.encrypt("before", &dek).await.expect("encrypt");
        assert_eq!(await_healthz(kms, true).await, "ok");

        std::fs::rename(&token_dir, &away).expect("take the token away");
        let healthz = await_healthz(kms, false).await;
        assert!(
            healthz.contains("CKR_") || healthz.contains("unavailable"),
            "{healthz}"
        );
        let err = kms.encrypt("during", &dek).await.expect_err("no token");
        assert!(
            matches!(&err, Error::Kms(e) if matches!(e.kind(), KmsErrorKind::Unavailable(_))),
            "{err}"
        );

        std::fs::rename(&away, &token_dir).expect("put the token back");
        assert_eq!(await_healthz(kms, true).await, "ok");
        let plain = kms
            .decrypt(
                "after",
                &before.key_id,
                &before.ciphertext,
                &before.annotations,
            )
            .await
            .expect("what was wrapped before reads after");
        assert_eq!(&plain[..], &dek);
        let status = kms.status().await.expect("status");
        assert_eq!(status.key_id, before.key_id, "the same key");
    });
    assert!(plugin.terminate().success());
}

/// A PIN changed on the token while the plugin runs: once the token comes
/// back the old PIN is refused, and the plugin does not try it again (every
/// wrong PIN counts towards locking the token's), even when the PIN is
/// changed back: it says to restart.
#[test]
#[ignore = "needs SoftHSM2 (apt-get install softhsm2 opensc)"]
fn a_refused_pin_after_an_outage_is_not_tried_again() {
    let hsm = SoftHsm::new_token();
    let plugin = Plugin::start(&hsm, "kek1", &["--create-key"]);
    let client = GrpcClient::new(plugin.endpoint(), Duration::from_secs(5));
    let changed = hsm.pkcs11_tool(&["--change-pin", "--new-pin", NEW_PIN]);
    assert!(changed.status.success(), "{changed:?}");
    let token_dir = hsm.token_dir();
    let away = hsm.dir().join("away");
    rt().block_on(async {
        let kms = client.as_v2();
        assert_eq!(await_healthz(kms, true).await, "ok", "still logged in");
        std::fs::rename(&token_dir, &away).expect("take the token away");
        await_healthz(kms, false).await;
        std::fs::rename(&away, &token_dir).expect("put the token back");
        let refused = await_healthz_containing(kms, "CKR_PIN_INCORRECT").await;
        assert!(refused.contains("not tried again"), "{refused}");
        assert!(
            !refused.contains(PIN) && !refused.contains(NEW_PIN),
            "{refused}"
        );

        // With the PIN the plugin has back on the token, a plugin that
        // kept logging in would recover within a second or two.
        let back = hsm
            .command("pkcs11-tool")
            .arg("--module")
            .arg(hsm.module())
            .args(["--token-label", TOKEN_LABEL, "--login", "--pin", NEW_PIN])
            .args(["--change-pin", "--new-pin", PIN])
            .output()
            .expect("pkcs11-tool");
        assert!(back.status.success(), "{back:?}");
        let until = Instant::now() + Duration::from_millis(2500);
        while Instant::now() < until {
            let status = kms.status().await.expect("Status answers");
            assert!(status.healthz.contains("CKR_PIN_INCORRECT"), "{status:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let err = kms.encrypt("refused", &[1; 32]).await.expect_err("refused");
        assert!(
            matches!(&err, Error::Kms(e) if matches!(e.kind(),
                KmsErrorKind::Status { code, .. } if *code == StatusCode::FailedPrecondition)),
            "{err}"
        );
    });
    assert!(plugin.terminate().success());
}

/// A PIN for the test above.
const NEW_PIN: &str = "16180339";
