//! Values through the plugin both ways with the Go reference of the
//! apiserver's transformers, which has its own KMS v2 client (grpc-go):
//! what it writes this crate reads, and the reverse, current (not stale).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use k8s_envelope::kms::GrpcKmsFactory;
use k8s_envelope::EncryptionConfiguration;
use k8s_envelope_test_support::k8sref::transform_lines;
use k8s_envelope_test_support::rt;
use serde_json::Value;

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

    let keys: Vec<String> = (0..10)
        .map(|i| format!("/registry/secrets/default/s{i}"))
        .collect();
    let plaintexts: Vec<Vec<u8>> = (0..10)
        .map(|i| format!("secret {i}").into_bytes())
        .collect();

    // Go writes; this crate reads.
    let requests: Vec<Value> = keys
        .iter()
        .zip(&plaintexts)
        .map(|(key, plain)| {
            serde_json::json!({"resource": "secrets", "aad": key, "plaintext_b64": BASE64.encode(plain)})
        })
        .collect();
    let written = transform_lines("encrypt", &config_file, &requests);

    let config = EncryptionConfiguration::from_yaml(config(&plugin).as_bytes()).expect("config");
    let kms = GrpcKmsFactory::new();
    let transformers = config.build_with_kms(&kms).expect("build");
    let ours = rt().block_on(async {
        kms.refresh_all().await.expect("the plugin is healthy");
        let transformer = transformers.for_resource("secrets");
        let mut ours = Vec::new();
        for ((line, key), plain) in written.iter().zip(&keys).zip(&plaintexts) {
            let stored = BASE64
                .decode(line["stored_b64"].as_str().expect("stored_b64"))
                .expect("base64");
            assert!(stored.starts_with(b"k8s:enc:kms:v2:aws:"), "{line}");
            let read = transformer
                .decrypt(&stored, key.as_str().into())
                .await
                .expect("decrypt Go's value");
            assert_eq!(&read.plaintext[..], &plain[..]);
            assert!(!read.stale);
            // This crate writes; Go reads below.
            let stored = transformer
                .encrypt(plain, key.as_str().into())
                .await
                .expect("encrypt");
            ours.push(serde_json::json!({"resource": "secrets", "aad": key, "stored_b64": BASE64.encode(&stored)}));
        }
        ours
    });
    let read = transform_lines("decrypt", &config_file, &ours);
    for (line, plain) in read.iter().zip(&plaintexts) {
        assert_eq!(
            line["plaintext_b64"].as_str(),
            Some(BASE64.encode(plain).as_str()),
            "{line}"
        );
        assert_eq!(line["stale"].as_bool(), Some(false), "{line}");
    }
}
