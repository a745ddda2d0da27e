//! Every KMS line of the Go reference's vectors (tests/data/vectors), read
//! through the whole stack: the config's KMS providers built by
//! `GrpcKmsFactory`, gRPC over a real unix socket, and a real base64 mock
//! plugin process (ciphertext = base64(plaintext), key ID "1"). Two plugins,
//! two gRPC stacks: our `kms-plugin-local --mock-base64` (tonic), and the Go
//! reference's `k8sref kms-plugin` (grpc-go) when it is available.
//!
//! Each line must read as the vector says; each plaintext must also survive
//! our own encrypt-then-decrypt and be current (not stale).

#![cfg(unix)]

use k8s_envelope_test_support::paths::workspace_binary;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use k8s_envelope::kms::GrpcKmsFactory;
use k8s_envelope::EncryptionConfiguration;
use serde::Deserialize;

use k8s_envelope_test_support::k8sref::k8sref;
use k8s_envelope_test_support::plugin_process::PluginProcess;

#[derive(Deserialize)]
struct Vector {
    name: String,
    config: serde_json::Value,
    resource: String,
    storage_key: String,
    plaintext_b64: String,
    stored_b64: String,
    expect: String,
    #[serde(default)]
    stale: bool,
}

fn kms_vectors() -> Vec<(String, Vector)> {
    let mut out = Vec::new();
    for (at, line) in k8s_envelope_test_support::fixtures::vectors() {
        let vector: Vector = serde_json::from_value(line).expect("vector line");
        if vector.config.to_string().contains("\"kms\"") {
            out.push((format!("{at}: {}", vector.name), vector));
        }
    }
    out
}

/// The vector's config with every KMS endpoint pointed at `endpoint`.
fn config_for(vector: &Vector, endpoint: &str) -> EncryptionConfiguration {
    let mut config = vector.config.clone();
    for rule in config["resources"].as_array_mut().into_iter().flatten() {
        for provider in rule["providers"].as_array_mut().into_iter().flatten() {
            if let Some(kms) = provider.get_mut("kms") {
                kms["endpoint"] = endpoint.into();
            }
        }
    }
    let json = serde_json::to_vec(&config).expect("serialize");
    EncryptionConfiguration::from_json(&json).expect("vector config parses")
}

async fn check_all(plugin: &PluginProcess) {
    let vectors = kms_vectors();
    // 68 of the 187 lines in each seed file use a KMS provider.
    assert_eq!(vectors.len(), 3 * 68, "unexpected number of KMS vectors");
    let mut failures = Vec::new();
    for (label, vector) in &vectors {
        let kms = GrpcKmsFactory::new();
        let transformers = config_for(vector, &plugin.endpoint())
            .build_with_kms(&kms)
            .expect("vector config builds");
        kms.refresh_all().await.expect("the mock plugin is healthy");
        let transformer = transformers.for_resource(&vector.resource);
        let key = vector.storage_key.as_str().into();
        let stored = BASE64.decode(&vector.stored_b64).expect("stored_b64");
        let plaintext = BASE64.decode(&vector.plaintext_b64).expect("plaintext_b64");
        match (
            vector.expect.as_str(),
            transformer.decrypt(&stored, key).await,
        ) {
            ("ok", Ok(read)) if read.plaintext == plaintext && read.stale == vector.stale => {}
            ("ok", Ok(read)) => failures.push(format!(
                "{label}: read {} bytes stale={}, want {} bytes stale={}",
                read.plaintext.len(),
                read.stale,
                plaintext.len(),
                vector.stale
            )),
            ("ok", Err(e)) => failures.push(format!("{label}: {e}")),
            ("error", Ok(_)) => failures.push(format!("{label}: expected an error")),
            _ => {}
        }
        let written = match transformer.encrypt(&plaintext, key).await {
            Ok(written) => written,
            Err(e) => {
                failures.push(format!("{label}: encrypt: {e}"));
                continue;
            }
        };
        match transformer.decrypt(&written, key).await {
            Ok(read) if read.plaintext == plaintext && !read.stale => {}
            Ok(read) => failures.push(format!("{label}: our write read stale={}", read.stale)),
            Err(e) => failures.push(format!("{label}: our write: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn kms_vectors_through_our_plugin_process() {
    let plugin = PluginProcess::start(
        &workspace_binary("kms-plugin-local"),
        &["--mock-base64", "--api", "both"],
        "local",
    );
    check_all(&plugin).await;
}

#[tokio::test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh)"]
async fn kms_vectors_through_the_go_reference_plugin() {
    let k8sref = k8sref();
    let plugin = PluginProcess::start(&k8sref, &["kms-plugin", "--api", "both"], "k8sref");
    check_all(&plugin).await;
}

/// Values written with `KmsV2Options::writes_per_derived_key` above 1
/// (several values sealed under one derived key) read back in the Go
/// reference of the apiserver, current, through its own gRPC client and the
/// same plugin.
#[tokio::test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh)"]
async fn values_sharing_a_derived_key_read_back_in_the_go_reference() {
    use std::io::Write as _;
    use std::sync::Arc;

    use k8s_envelope::kms::{GrpcClient, KmsEndpoint, KmsV2Options, KmsV2Provider};
    use k8s_envelope::Transformer;

    let k8sref = k8sref();
    let plugin = PluginProcess::start(&k8sref, &["kms-plugin", "--api", "v2"], "k8sref-shared");
    let endpoint = KmsEndpoint::parse(&plugin.endpoint()).expect("endpoint");
    let client = Arc::new(GrpcClient::new(endpoint, Duration::from_secs(5)));
    let provider = KmsV2Provider::new(
        "shared",
        client,
        KmsV2Options::default().with_writes_per_derived_key(4),
    )
    .expect("provider");
    provider.refresh().await.expect("the plugin is healthy");
    let transformer = Transformer::new(vec![Arc::new(provider)]).expect("transformer");

    let mut requests = String::new();
    let mut plaintexts = Vec::new();
    for i in 0..10 {
        let key = format!("/registry/secrets/default/s{i}");
        let plaintext = format!("value {i}").into_bytes();
        let stored = transformer
            .encrypt(&plaintext, key.as_str().into())
            .await
            .expect("encrypt");
        requests.push_str(
            &serde_json::json!({"resource": "secrets", "aad": key, "stored_b64": BASE64.encode(&stored)})
                .to_string(),
        );
        requests.push('\n');
        plaintexts.push(plaintext);
    }
    let config = plugin.dir().join("enc.yaml");
    fs::write(
        &config,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - kms:\n      apiVersion: v2\n      name: shared\n      endpoint: {}\n",
            plugin.endpoint()
        ),
    )
    .expect("config");
    let mut go = Command::new(&k8sref)
        .args(["decrypt", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("k8sref decrypt");
    go.stdin
        .take()
        .expect("stdin")
        .write_all(requests.as_bytes())
        .expect("write requests");
    let output = go.wait_with_output().expect("k8sref decrypt ran");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), plaintexts.len(), "{lines:?}");
    for (line, plaintext) in lines.iter().zip(&plaintexts) {
        assert_eq!(
            line["plaintext_b64"].as_str(),
            Some(BASE64.encode(plaintext).as_str()),
            "{line}"
        );
        assert_eq!(line["stale"].as_bool(), Some(false), "{line}");
    }
}
