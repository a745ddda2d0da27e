//! The whole flow on one machine: generate keys, write an
//! EncryptionConfiguration, encrypt and decrypt a value with every static-key
//! provider, rotate a key, and watch the old value read as stale.
//!
//! ```sh
//! cargo run --release --example quickstart
//! ```

use std::error::Error;
use std::fmt::Write as _;

use k8s_envelope::{EncryptionConfiguration, SecretKey};
use zeroize::Zeroizing;

const STORAGE_KEY: &str = "/registry/secrets/default/db-creds";
const VALUE: &[u8] = br#"{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}"#;

fn main() -> Result<(), Box<dyn Error>> {
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
    Ok(())
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
