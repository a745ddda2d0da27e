//! The whole flow on one machine, no external services: generate keys, write
//! an EncryptionConfiguration, encrypt and decrypt a value with every
//! static-key provider, rotate a key and watch the old value read as stale;
//! then the same with KMS v2, against the local-KEK plugin served in process
//! on a temporary unix socket: rotate the KEK, see the old value stale, and
//! re-encrypt it.
//!
//! ```sh
//! cargo run --release --example quickstart
//! ```

use std::error::Error;
use std::fmt::Write as _;

use std::path::Path;

use k8s_envelope::kms::{GrpcKmsFactory, KmsEndpoint, KmsHealth};
use k8s_envelope::{EncryptionConfiguration, SecretKey};
use k8s_envelope_kms_plugin::{LocalKek, PluginServer};
use zeroize::Zeroizing;

const STORAGE_KEY: &str = "/registry/secrets/default/db-creds";
const VALUE: &[u8] = br#"{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}"#;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    println!("1. Each static-key provider, with a fresh 32-byte key");
    for provider in ["aescbc", "aesgcm", "secretbox"] {
        let key = SecretKey::generate(32)?;
        let yaml = config_yaml(provider, &[("key1", &key)]);
        let transformers = EncryptionConfiguration::from_yaml(yaml.as_bytes())?.build()?;
        let secrets = transformers.for_resource("secrets");

        let stored = secrets.encrypt_blocking(VALUE, STORAGE_KEY.into())?;
        let read = secrets.decrypt_blocking(&stored, STORAGE_KEY.into())?;
        assert_eq!(read.plaintext, VALUE);
        println!(
            "   {provider:<9} {} plaintext bytes -> {} stored bytes, prefix {:?}, read back: ok, stale: {}",
            VALUE.len(),
            stored.len(),
            String::from_utf8_lossy(&stored[..prefix_len(&stored)]),
            read.stale
        );
    }

    println!("2. Rotate an aesgcm key");
    let key1 = SecretKey::generate(32)?;
    let key2 = SecretKey::generate(32)?;
    let before =
        EncryptionConfiguration::from_yaml(config_yaml("aesgcm", &[("key1", &key1)]).as_bytes())?
            .build()?;
    let old_value = before
        .for_resource("secrets")
        .encrypt_blocking(VALUE, STORAGE_KEY.into())?;
    println!("   written under key1");

    // The new key goes first (it writes); the old one stays as a reader.
    let after = EncryptionConfiguration::from_yaml(
        config_yaml("aesgcm", &[("key2", &key2), ("key1", &key1)]).as_bytes(),
    )?
    .build()?;
    let secrets = after.for_resource("secrets");
    let read = secrets.decrypt_blocking(&old_value, STORAGE_KEY.into())?;
    assert_eq!(read.plaintext, VALUE);
    assert!(read.stale);
    println!(
        "   config now [key2, key1]: old value reads ok, stale: {} -> re-encrypt it",
        read.stale
    );

    let rewritten = secrets.encrypt_blocking(&read.plaintext, STORAGE_KEY.into())?;
    let reread = secrets.decrypt_blocking(&rewritten, STORAGE_KEY.into())?;
    assert!(!reread.stale);
    println!(
        "   rewritten under {:?}: stale: {}",
        String::from_utf8_lossy(&rewritten[..prefix_len(&rewritten)]),
        reread.stale
    );

    println!("3. A value moved to another storage key does not decrypt (AES-GCM binds the key)");
    let moved = secrets.decrypt_blocking(&rewritten, "/registry/secrets/default/other".into());
    assert!(moved.is_err());
    println!(
        "   {}",
        moved.err().map(|e| e.to_string()).unwrap_or_default()
    );

    kms_v2_flow().await
}

/// KMS v2 with the local-KEK plugin: the KEK never leaves the plugin, the
/// provider only ever sees a seed wrapped by it.
async fn kms_v2_flow() -> Result<(), Box<dyn Error>> {
    println!("4. KMS v2, with the local-KEK plugin on a temporary unix socket");
    let dir = tempfile::tempdir()?;
    let kek_file = dir.path().join("kek");
    write_kek(&kek_file)?;
    let endpoint = KmsEndpoint::socket_file(dir.path().join("kms.sock"))?;
    let plugin = PluginServer::new(LocalKek::open(&kek_file)?)
        .serve(&endpoint)
        .await?;
    println!("   plugin serving on {endpoint}");

    let aesgcm_key = SecretKey::generate(32)?;
    let yaml = kms_config_yaml(&endpoint, &aesgcm_key);
    let kms = GrpcKmsFactory::new();
    let transformers = EncryptionConfiguration::from_yaml(yaml.as_bytes())?.build_with_kms(&kms)?;
    kms.refresh_all().await?;
    let provider = &kms.v2_providers()[0];
    println!(
        "   provider {:?} ready, key ID hash {}",
        provider.name(),
        short(&provider.health())
    );

    let secrets = transformers.for_resource("secrets");
    let stored = secrets.encrypt(VALUE, STORAGE_KEY.into()).await?;
    let read = secrets.decrypt(&stored, STORAGE_KEY.into()).await?;
    assert_eq!(read.plaintext, VALUE);
    println!(
        "   {} plaintext bytes -> {} stored bytes, prefix {:?}, read back: ok, stale: {}",
        VALUE.len(),
        stored.len(),
        String::from_utf8_lossy(&stored[..prefix_len(&stored)]),
        read.stale
    );

    // Rotate the KEK: a new key in the file. The plugin's key ID changes, and
    // the provider picks it up at its next status poll (forced here).
    write_kek(&kek_file)?;
    provider.refresh().await?;
    println!(
        "   KEK rotated, key ID hash now {}",
        short(&provider.health())
    );
    let read = secrets.decrypt(&stored, STORAGE_KEY.into()).await?;
    assert!(read.stale);
    println!(
        "   old value reads ok (the plugin keeps the old KEK), stale: {}",
        read.stale
    );

    let rewritten = secrets.encrypt(&read.plaintext, STORAGE_KEY.into()).await?;
    let reread = secrets.decrypt(&rewritten, STORAGE_KEY.into()).await?;
    assert!(!reread.stale);
    println!("   re-encrypted under the new KEK: stale: {}", reread.stale);

    plugin.shutdown().await?;
    println!(
        "   plugin stopped, socket removed: {}",
        !dir.path().join("kms.sock").exists()
    );
    Ok(())
}

/// Writes a fresh KEK, replacing the file (a new inode, as a rotation tool
/// would), private to its owner as the plugin requires.
fn write_kek(path: &Path) -> Result<(), Box<dyn Error>> {
    let key = SecretKey::generate(32)?;
    k8s_envelope::private_file::write(path, key.to_base64().as_bytes())?;
    Ok(())
}

/// A config for secrets: KMS v2 first (it writes), aesgcm as a reader.
fn kms_config_yaml(endpoint: &KmsEndpoint, aesgcm_key: &SecretKey) -> Zeroizing<String> {
    let mut yaml = Zeroizing::new(String::with_capacity(4096));
    // Writing to a String cannot fail.
    let _ = write!(
        yaml,
        "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
      - kms:
          apiVersion: v2
          name: local
          endpoint: {endpoint}
          timeout: 3s
      - aesgcm:
          keys:
            - name: key1
              secret: {}
",
        aesgcm_key.to_base64().as_str()
    );
    yaml
}

/// The start of the current key ID's hash.
fn short(health: &KmsHealth) -> String {
    health
        .key_id_hash
        .as_deref()
        .map(|h| format!("{}...", &h[..h.len().min(19)]))
        .unwrap_or_default()
}

/// An EncryptionConfiguration for secrets with one provider and the given keys.
/// The text holds key material: it is written into one buffer, sized up
/// front so it never reallocates, that is zeroized when dropped.
fn config_yaml(provider: &str, keys: &[(&str, &SecretKey)]) -> Zeroizing<String> {
    let mut yaml = Zeroizing::new(String::with_capacity(4096));
    // Writing to a String cannot fail.
    let _ = write!(
        yaml,
        "kind: EncryptionConfiguration\n\
         apiVersion: apiserver.config.k8s.io/v1\n\
         resources:\n  - resources: [secrets]\n    providers:\n      - {provider}:\n          keys:\n"
    );
    for (name, key) in keys {
        let _ = write!(
            yaml,
            "            - name: {name}\n              secret: {}\n",
            key.to_base64().as_str()
        );
    }
    yaml
}

/// Length of `k8s:enc:<provider>:v1:<keyname>:`.
fn prefix_len(stored: &[u8]) -> usize {
    stored
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b':')
        .nth(4)
        .map_or(0, |(i, _)| i + 1)
}
