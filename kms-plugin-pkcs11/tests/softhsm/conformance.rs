//! kms-check passes the plugin, both APIs; eight clients at once.

use std::time::Duration;

use k8s_envelope::kms::{GrpcClient, KmsServiceV2};
use k8s_envelope_kms_plugin::check::{CheckedApi, PluginCheck};

use crate::plugin::Plugin;
use k8s_envelope_test_support::rt;
use k8s_envelope_test_support::softhsm::SoftHsm;

#[test]
#[ignore = "needs SoftHSM2 (apt-get install softhsm2 opensc)"]
fn kms_check_passes_strictly_on_both_apis() {
    let hsm = SoftHsm::new_token();
    let plugin = Plugin::start(&hsm, "kek1", &["--create-key"]);
    rt().block_on(async {
        for api in [CheckedApi::V2, CheckedApi::V1] {
            let report = PluginCheck::new(plugin.endpoint())
                .api(api)
                .run()
                .await
                .expect("the plugin listens");
            assert!(report.passed(true), "{api}: {report:#?}");
        }
    });
}

/// Eight clients, each on its own connection (as eight apiservers would
/// be), 25 round trips each, all at once.
#[test]
#[ignore = "needs SoftHSM2 (apt-get install softhsm2 opensc)"]
fn eight_concurrent_clients() {
    let hsm = SoftHsm::new_token();
    let plugin = Plugin::start(&hsm, "kek1", &["--create-key"]);
    let trips = rt().block_on(async {
        let clients: Vec<_> = (0..8)
            .map(|_| GrpcClient::new(plugin.endpoint(), Duration::from_secs(10)))
            .collect();
        let work = clients.iter().enumerate().map(|(c, client)| async move {
            let plugin: &dyn KmsServiceV2 = client.as_v2();
            for i in 0..25u8 {
                let dek = [c as u8 ^ i; 32];
                let wrapped = plugin.encrypt("e", &dek).await.expect("encrypt");
                let plain = plugin
                    .decrypt(
                        "d",
                        &wrapped.key_id,
                        &wrapped.ciphertext,
                        &wrapped.annotations,
                    )
                    .await
                    .expect("decrypt");
                assert_eq!(&plain[..], &dek);
            }
            25
        });
        futures_util::future::join_all(work)
            .await
            .into_iter()
            .sum::<usize>()
    });
    assert_eq!(trips, 200);
}
