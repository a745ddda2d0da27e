//! The token taken away under a running plugin and put back.
//!
//! SoftHSM2 keeps each token in a directory under its token directory;
//! moving that directory away is what it can show of a token that is
//! unplugged or an HSM that is unreachable: the key's handle turns invalid
//! (CKR_OBJECT_HANDLE_INVALID) and searches find nothing. SoftHSM2 sees a
//! token again only after C_Finalize and C_Initialize, which the plugin
//! does by itself.

use std::time::{Duration, Instant};

use k8s_envelope::kms::{GrpcClient, KmsErrorKind, KmsServiceV2};
use k8s_envelope::Error;

use crate::plugin::{rt, Plugin};
use crate::token::SoftHsm;

/// Polls Status until `healthy` says it is as wanted (15 s at most).
async fn await_healthz(plugin: &dyn KmsServiceV2, ok: bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = plugin.status().await.expect("Status answers throughout");
        if status.is_healthy() == ok {
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
fn a_token_that_goes_away_is_reported_and_picked_up_again() {
    let Some(hsm) = SoftHsm::new() else { return };
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
