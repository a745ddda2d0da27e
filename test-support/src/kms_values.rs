//! Values written and read through a KMS v2 plugin the way an apiserver
//! just started does: a provider built from an EncryptionConfiguration,
//! its plugin's Status asked first.

use k8s_envelope::kms::GrpcKmsFactory;
use k8s_envelope::EncryptionConfiguration;

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
