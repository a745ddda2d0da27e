//! Values through the plugin both ways with the Go reference of the
//! apiserver's transformers, which has its own KMS v2 client (grpc-go):
//! what it writes this crate reads, and the reverse, current (not stale).

use crate::plugin::Plugin;
use k8s_envelope_test_support::kms_values::exchange_with_go_reference;
use k8s_envelope_test_support::softhsm::SoftHsm;

/// An EncryptionConfiguration with one KMS v2 provider, `hsm`, at `plugin`.
pub fn config(plugin: &Plugin) -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - kms:\n      apiVersion: v2\n      name: hsm\n      endpoint: {}\n",
        plugin.endpoint()
    )
}

#[test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh) and SoftHSM2 (apt-get install softhsm2 opensc)"]
fn the_go_reference_and_this_crate_read_each_others_values() {
    let hsm = SoftHsm::new_token();
    let plugin = Plugin::start(&hsm, "kek1", &["--create-key"]);
    let config_file = hsm.dir().join("enc.yaml");
    std::fs::write(&config_file, config(&plugin)).expect("config");
    exchange_with_go_reference(&config(&plugin), &config_file, b"k8s:enc:kms:v2:hsm:");
}
