//! Values through the plugin both ways with the Go reference of the
//! apiserver's transformers, which has its own KMS v2 client (grpc-go):
//! what it writes this crate reads, and the reverse, current (not stale).

use k8s_envelope_test_support::kms_values::exchange_with_go_reference;

use crate::emulator::{config, Emulator};

#[test]
#[ignore = "needs moto's server and the Go reference (../shared/tools/k8sref/build.sh)"]
fn the_go_reference_and_this_crate_read_each_others_values() {
    let aws = Emulator::start();
    let key = aws.create_key();
    aws.create_alias("alias/kubernetes", &key);
    let plugin = aws.plugin("alias/kubernetes", &[]);
    let config_file = plugin.dir().join("enc.yaml");
    std::fs::write(&config_file, config(&plugin)).expect("config");
    exchange_with_go_reference(&config(&plugin), &config_file, b"k8s:enc:kms:v2:aws:");
}
