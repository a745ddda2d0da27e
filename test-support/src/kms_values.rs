//! Values written and read through a KMS v2 plugin the way an apiserver
//! just started does: a provider built from an EncryptionConfiguration,
//! its plugin's Status asked first.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use k8s_envelope::kms::GrpcKmsFactory;
use k8s_envelope::EncryptionConfiguration;

use crate::k8sref::transform_lines;
use crate::runtime::rt;

/// A value as stored, with what it holds.
#[derive(Debug, Clone)]
pub struct StoredValue {
    /// Its storage key (`/registry/secrets/default/...`).
    pub key: String,
    /// The stored bytes (`k8s:enc:kms:v2:...`).
    pub stored: Vec<u8>,
    /// The plaintext.
    pub plaintext: Vec<u8>,
}

/// `n` Secrets `/registry/secrets/default/{tag}-{i}`, written with the
/// first provider of `config` (YAML).
pub fn write_values(config: &str, tag: &str, n: usize) -> Vec<StoredValue> {
    let config = EncryptionConfiguration::from_yaml(config.as_bytes()).expect("config");
    let kms = GrpcKmsFactory::new();
    let transformers = config.build_with_kms(&kms).expect("build");
    rt().block_on(async {
        kms.refresh_all().await.expect("the plugin is healthy");
        let transformer = transformers.for_resource("secrets");
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let key = format!("/registry/secrets/default/{tag}-{i}");
            let plaintext = format!("{tag} value {i}").into_bytes();
            let stored = transformer
                .encrypt(&plaintext, key.as_str().into())
                .await
                .expect("encrypt");
            out.push(StoredValue {
                key,
                stored,
                plaintext,
            });
        }
        out
    })
}

/// Reads each of `values` with `config` (YAML): whether it was stale, or
/// the error. A value that reads must read as its plaintext.
pub fn read_values(config: &str, values: &[StoredValue]) -> Vec<Result<bool, k8s_envelope::Error>> {
    let config = EncryptionConfiguration::from_yaml(config.as_bytes()).expect("config");
    let kms = GrpcKmsFactory::new();
    let transformers = config.build_with_kms(&kms).expect("build");
    rt().block_on(async {
        kms.refresh_all().await.expect("the plugin is healthy");
        let transformer = transformers.for_resource("secrets");
        let mut out = Vec::with_capacity(values.len());
        for value in values {
            let read = transformer
                .decrypt(&value.stored, value.key.as_str().into())
                .await;
            out.push(read.map(|read| {
                assert_eq!(&read.plaintext[..], &value.plaintext[..], "{}", value.key);
                read.stale
            }));
        }
        out
    })
}

/// [`read_values`], every value required to read: whether each was stale.
pub fn read_stale(config: &str, values: &[StoredValue]) -> Vec<bool> {
    read_values(config, values)
        .into_iter()
        .zip(values)
        .map(|(read, value)| read.unwrap_or_else(|e| panic!("{}: {e}", value.key)))
        .collect()
}

/// Ten Secrets through the KMS v2 provider of `config` (YAML, also at
/// `config_file` for the Go reference) both ways: the Go reference of the
/// apiserver's transformers (its own grpc-go KMS client) writes and this
/// crate reads, then this crate writes and the Go reference reads; every
/// value current, every stored value starting with `stored_prefix`.
pub fn exchange_with_go_reference(config: &str, config_file: &Path, stored_prefix: &[u8]) {
    let plaintexts: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| {
            (
                format!("/registry/secrets/default/s{i}"),
                format!("secret {i}").into_bytes(),
            )
        })
        .collect();
    let requests: Vec<serde_json::Value> = plaintexts
        .iter()
        .map(|(key, plain)| {
            serde_json::json!({"resource": "secrets", "aad": key, "plaintext_b64": BASE64.encode(plain)})
        })
        .collect();
    let written = transform_lines("encrypt", config_file, &requests);
    let go_values: Vec<StoredValue> = written
        .iter()
        .zip(&plaintexts)
        .map(|(line, (key, plaintext))| {
            let stored = BASE64
                .decode(line["stored_b64"].as_str().expect("stored_b64"))
                .expect("base64");
            assert!(stored.starts_with(stored_prefix), "{line}");
            StoredValue {
                key: key.clone(),
                stored,
                plaintext: plaintext.clone(),
            }
        })
        .collect();
    assert_eq!(read_stale(config, &go_values), [false; 10], "Go's values");

    let ours = write_values(config, "ours", 10);
    let requests: Vec<serde_json::Value> = ours
        .iter()
        .map(|v| serde_json::json!({"resource": "secrets", "aad": v.key, "stored_b64": BASE64.encode(&v.stored)}))
        .collect();
    for (line, value) in transform_lines("decrypt", config_file, &requests)
        .iter()
        .zip(&ours)
    {
        assert_eq!(
            line["plaintext_b64"].as_str(),
            Some(BASE64.encode(&value.plaintext).as_str()),
            "{line}"
        );
        assert_eq!(line["stale"].as_bool(), Some(false), "{line}");
    }
}
