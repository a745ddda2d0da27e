//! Values through the plugin both ways with the Go reference of the
//! apiserver's transformers, which has its own KMS v2 client (grpc-go):
//! what it writes this crate reads, and the reverse, current (not stale).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use k8s_envelope::kms::GrpcKmsFactory;
use k8s_envelope::EncryptionConfiguration;
use serde_json::Value;

use crate::plugin::{rt, Plugin};
use k8s_envelope_test_support::k8sref::k8sref;
use k8s_envelope_test_support::softhsm::SoftHsm;

/// An EncryptionConfiguration with one KMS v2 provider, `hsm`, at `plugin`.
pub fn config(plugin: &Plugin) -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - kms:\n      apiVersion: v2\n      name: hsm\n      endpoint: {}\n",
        plugin.endpoint()
    )
}

/// Runs `k8sref <verb> --config <config>` on `lines`: its output lines.
fn go(k8sref: &Path, verb: &str, config: &Path, lines: &[Value]) -> Vec<Value> {
    let mut child = Command::new(k8sref)
        .args([verb, "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("k8sref");
    let mut input = String::new();
    for line in lines {
        input.push_str(&line.to_string());
        input.push('\n');
    }
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("k8sref ran");
    assert!(out.status.success(), "k8sref {verb}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh) and SoftHSM2 (apt-get install softhsm2 opensc)"]
fn the_go_reference_and_this_crate_read_each_others_values() {
    let k8sref = k8sref();
    let hsm = SoftHsm::new_token();
    let plugin = Plugin::start(&hsm, "kek1", &["--create-key"]);
    let config_file = hsm.dir().join("enc.yaml");
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
    let written = go(&k8sref, "encrypt", &config_file, &requests);
    assert_eq!(written.len(), 10, "{written:?}");

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
            assert!(stored.starts_with(b"k8s:enc:kms:v2:hsm:"), "{line}");
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
    let read = go(&k8sref, "decrypt", &config_file, &ours);
    assert_eq!(read.len(), 10);
    for (line, plain) in read.iter().zip(&plaintexts) {
        assert_eq!(
            line["plaintext_b64"].as_str(),
            Some(BASE64.encode(plain).as_str()),
            "{line}"
        );
        assert_eq!(line["stale"].as_bool(), Some(false), "{line}");
    }
}
