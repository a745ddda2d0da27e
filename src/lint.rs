//! Warnings beyond validation: configurations the apiserver accepts but a
//! careful operator would not want.
//!
//! Each [`LintWarning`] names the field path, says what is wrong and how to
//! fix it, and never contains key material.
//!
//! ```
//! use k8s_envelope::{lint, EncryptionConfiguration};
//!
//! let config = EncryptionConfiguration::from_yaml(br#"
//! kind: EncryptionConfiguration
//! apiVersion: apiserver.config.k8s.io/v1
//! resources:
//!   - resources: [secrets]
//!     providers:
//!       - identity: {}
//!       - aescbc:
//!           keys:
//!             - name: key1
//!               secret: c2VjcmV0IGlzIHNlY3VyZQ==
//! "#)?;
//! let warnings = lint::lint(&config);
//! assert!(warnings.iter().any(|w| w.code == lint::LintCode::IdentityFirst));
//! assert!(warnings.iter().any(|w| w.code == lint::LintCode::PrintableSecret));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::config::{EncryptionConfiguration, GroupResource, Key};

/// What a warning is about.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LintCode {
    /// `identity` is the first provider: new values are stored in plaintext.
    IdentityFirst,
    /// `aescbc`: no integrity protection.
    AesCbc,
    /// `aesgcm` writes: random nonces limit how many values one key may write.
    AesGcmWrites,
    /// `kms` with `apiVersion: v1`: deprecated upstream.
    KmsV1,
    /// The same key material appears in more than one place.
    ReusedKey,
    /// A 16-byte (AES-128) key.
    ShortKey,
    /// A secret that decodes to printable text: a passphrase, not a key.
    PrintableSecret,
    /// No rule covers `secrets`: they are stored in plaintext.
    SecretsNotCovered,
}

impl LintCode {
    /// A short stable name, for scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdentityFirst => "identity-first",
            Self::AesCbc => "aescbc",
            Self::AesGcmWrites => "aesgcm-writes",
            Self::KmsV1 => "kms-v1",
            Self::ReusedKey => "reused-key",
            Self::ShortKey => "short-key",
            Self::PrintableSecret => "printable-secret",
            Self::SecretsNotCovered => "secrets-not-covered",
        }
    }
}

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LintWarning {
    /// What it is about.
    pub code: LintCode,
    /// The field it is about, e.g. `resources[0].providers[1].aescbc`.
    pub path: String,
    /// Why it matters.
    pub reason: String,
    /// What to do.
    pub fix: String,
}

impl fmt::Display for LintWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} [{}]\n  fix: {}",
            self.path,
            self.reason,
            self.code.as_str(),
            self.fix
        )
    }
}

/// Every warning for `config`, in field order. The config should be valid
/// (see [`EncryptionConfiguration::validate`]); invalid parts are skipped.
pub fn lint(config: &EncryptionConfiguration) -> Vec<LintWarning> {
    let mut warnings = Vec::new();
    let mut seen_keys: HashMap<[u8; 32], String> = HashMap::new();
    for (i, rule) in config.resources.iter().enumerate() {
        for (j, provider) in rule.providers.iter().enumerate() {
            let path = format!("resources[{i}].providers[{j}]");
            let writes = j == 0;
            if provider.identity.is_some() && writes {
                warnings.push(warning(
                    LintCode::IdentityFirst,
                    format!("{path}.identity"),
                    "identity is the first provider, so new values are written in plaintext",
                    "put an encrypting provider (kms v2, or aesgcm/secretbox) first; keep identity later only while migrating away from plaintext",
                ));
            }
            if let Some(aescbc) = &provider.aescbc {
                warnings.push(warning(
                    LintCode::AesCbc,
                    format!("{path}.aescbc"),
                    "aescbc has no integrity protection: stored values can be modified undetected, and its padding check is a known attack surface",
                    "move to kms v2 (or secretbox/aesgcm): add it first, re-encrypt, then retire aescbc",
                ));
                check_keys(
                    &aescbc.keys,
                    &format!("{path}.aescbc"),
                    &mut seen_keys,
                    &mut warnings,
                );
            }
            if let Some(aesgcm) = &provider.aesgcm {
                if writes {
                    warnings.push(warning(
                        LintCode::AesGcmWrites,
                        format!("{path}.aesgcm"),
                        "aesgcm uses random 96-bit nonces: a key must be rotated long before 2^32 writes (the Kubernetes documentation says every 200,000 writes), and static keys live in the config file",
                        "prefer kms v2; otherwise rotate the aesgcm key regularly (k8s-envelope rotate)",
                    ));
                }
                check_keys(
                    &aesgcm.keys,
                    &format!("{path}.aesgcm"),
                    &mut seen_keys,
                    &mut warnings,
                );
            }
            if let Some(secretbox) = &provider.secretbox {
                check_keys(
                    &secretbox.keys,
                    &format!("{path}.secretbox"),
                    &mut seen_keys,
                    &mut warnings,
                );
            }
            if let Some(kms) = &provider.kms {
                if kms.api_version == "v1" {
                    warnings.push(warning(
                        LintCode::KmsV1,
                        format!("{path}.kms"),
                        "KMS v1 is deprecated upstream and disabled by default since Kubernetes 1.29",
                        "add a kms provider with apiVersion: v2 first, re-encrypt, then retire the v1 provider",
                    ));
                }
            }
        }
    }
    if !covers_secrets(config) {
        warnings.push(warning(
            LintCode::SecretsNotCovered,
            "resources".to_owned(),
            "no rule covers secrets, so they are stored in plaintext",
            "add a rule whose resources include `secrets` (or `*.` / `*.*`) with an encrypting provider first",
        ));
    }
    warnings
}

fn warning(code: LintCode, path: String, reason: &str, fix: &str) -> LintWarning {
    LintWarning {
        code,
        path,
        reason: reason.to_owned(),
        fix: fix.to_owned(),
    }
}

fn check_keys(
    keys: &[Key],
    provider_path: &str,
    seen: &mut HashMap<[u8; 32], String>,
    warnings: &mut Vec<LintWarning>,
) {
    for (k, key) in keys.iter().enumerate() {
        let path = format!("{provider_path}.keys[{k}].secret");
        let Ok(secret) = key.secret.decode() else {
            continue;
        };
        let bytes = secret.expose();
        // Only a digest is kept, so the map holds no key material.
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        match seen.get(&digest) {
            Some(first) => warnings.push(warning(
                LintCode::ReusedKey,
                path.clone(),
                &format!("the same key material is also used at {first}"),
                "generate a separate key for each place (k8s-envelope keygen)",
            )),
            None => {
                seen.insert(digest, path.clone());
            }
        }
        if bytes.len() == 16 {
            warnings.push(warning(
                LintCode::ShortKey,
                path.clone(),
                "a 16-byte key gives AES-128",
                "use a 32-byte key (k8s-envelope keygen --bytes 32)",
            ));
        }
        if !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            warnings.push(warning(
                LintCode::PrintableSecret,
                path,
                "the secret decodes to printable text: a passphrase, not a random key",
                "replace it with random bytes (k8s-envelope keygen)",
            ));
        }
    }
}

fn covers_secrets(config: &EncryptionConfiguration) -> bool {
    config.resources.iter().any(|rule| {
        rule.resources.iter().any(|r| {
            let gr = GroupResource::parse(r);
            gr.group.is_empty() && (gr.resource == "secrets" || gr.resource == "*")
                || (gr.group == "*" && gr.resource == "*")
        })
    })
}
