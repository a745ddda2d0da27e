//! Active-key attestation: which key each resource rule writes with, as a
//! fingerprint that identifies the key without revealing it, and a probe
//! that proves a configuration on disk reads what the one in use writes.
//!
//! - The config hash is `sha256:<hex>` of the file's bytes, the same value
//!   kube-apiserver reports for encryption configuration reloads.
//! - A static key's fingerprint is `sha256:<hex>` of
//!   `"k8s-envelope key fingerprint v1\0" || key bytes`. The prefix keeps the
//!   value from matching any other use of a plain hash of the key. To check
//!   one by hand: `(printf 'k8s-envelope key fingerprint v1\0'; printf %s
//!   "$SECRET" | base64 -d) | sha256sum`.
//! - A KMS v2 provider's fingerprint is the hash of its plugin's current key
//!   ID, as the apiserver reports it; KMS v1 has no key ID.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::config::{EncryptionConfiguration, GroupResource, ProviderConfiguration};
use crate::KmsApiVersion;
use crate::{random, Error, ProviderKind, ResourceTransformers, SecretKey};

const KEY_FINGERPRINT_DOMAIN: &[u8] = b"k8s-envelope key fingerprint v1\0";

/// `sha256:<hex>` of a configuration file's bytes.
pub fn config_hash(file: &[u8]) -> String {
    sha256_hex(&Sha256::digest(file))
}

/// The fingerprint of a static key.
pub fn key_fingerprint(key: &SecretKey) -> String {
    let mut hash = Sha256::new();
    hash.update(KEY_FINGERPRINT_DOMAIN);
    hash.update(key.expose());
    sha256_hex(&hash.finalize())
}

fn sha256_hex(digest: &[u8]) -> String {
    let mut out = String::with_capacity(7 + 2 * digest.len());
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// What one resource rule writes with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleFingerprint {
    /// The rule's index in `resources`.
    pub rule: usize,
    /// The rule's resources, as written.
    pub resources: Vec<String>,
    /// The kind of the writing provider.
    pub provider: ProviderKind,
    /// The writing key's name, or the KMS provider's name.
    pub key_name: Option<String>,
    /// The key fingerprint or KMS key-ID hash; `None` for identity, KMS v1,
    /// or a KMS v2 provider whose plugin did not report a key ID.
    pub fingerprint: Option<String>,
}

impl fmt::Display for RuleFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "resources[{}] {}: writes with {}",
            self.rule,
            self.resources.join(","),
            self.provider
        )?;
        if let Some(name) = &self.key_name {
            write!(f, " {name:?}")?;
        }
        match &self.fingerprint {
            Some(fingerprint) => write!(f, " {fingerprint}"),
            None => Ok(()),
        }
    }
}

/// What each rule of `config` writes with. `kms_key_id_hash` gives the
/// current key-ID hash of a KMS v2 provider by name (for example from
/// [`KmsV2Provider::health`](crate::kms::KmsV2Provider::health)).
pub fn fingerprints(
    config: &EncryptionConfiguration,
    kms_key_id_hash: impl Fn(&str) -> Option<String>,
) -> Vec<RuleFingerprint> {
    config
        .resources
        .iter()
        .enumerate()
        .filter_map(|(rule, r)| {
            let writer = r.providers.first()?;
            let (provider, key_name, fingerprint) = writer_fingerprint(writer, &kms_key_id_hash);
            Some(RuleFingerprint {
                rule,
                resources: r.resources.clone(),
                provider,
                key_name,
                fingerprint,
            })
        })
        .collect()
}

fn writer_fingerprint(
    writer: &ProviderConfiguration,
    kms_key_id_hash: &impl Fn(&str) -> Option<String>,
) -> (ProviderKind, Option<String>, Option<String>) {
    let kind = writer.kind().unwrap_or(ProviderKind::Identity);
    let kms_name = writer.kms.as_ref().map(|kms| kms.name.clone());
    match kind {
        ProviderKind::AesGcm | ProviderKind::AesCbc | ProviderKind::Secretbox => {
            let first = writer.keys().first();
            let fingerprint = first
                .and_then(|k| k.secret.decode().ok())
                .map(|secret| key_fingerprint(&secret));
            (kind, first.map(|k| k.name.clone()), fingerprint)
        }
        ProviderKind::Kms(KmsApiVersion::V1) => (kind, kms_name, None),
        ProviderKind::Kms(KmsApiVersion::V2) => {
            let hash = kms_name.as_deref().and_then(kms_key_id_hash);
            (kind, kms_name, hash)
        }
        ProviderKind::Identity | ProviderKind::Custom => (ProviderKind::Identity, None, None),
    }
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeResult {
    /// The rule's index in `resources`.
    pub rule: usize,
    /// The resource the probe was written as.
    pub resource: String,
    /// `Ok(stale)` when the reader read the probe back; `stale` is false
    /// when the reader writes with the same key.
    pub outcome: Result<bool, String>,
}

impl ProbeResult {
    /// Whether the reader read the probe back and would write it the same
    /// way (same key).
    pub fn passed(&self) -> bool {
        self.outcome == Ok(false)
    }
}

/// Writes a random probe for each rule of `config` with `writer` and reads it
/// back with `reader`: with `writer` the transformers in use and `reader`
/// those built from the file on disk, a pass proves the key in use is the key
/// on disk.
///
/// # Errors
///
/// Only when no random probe can be drawn; a probe that fails is reported in
/// its [`ProbeResult`].
pub async fn probe(
    config: &EncryptionConfiguration,
    writer: &ResourceTransformers,
    reader: &ResourceTransformers,
) -> Result<Vec<ProbeResult>, Error> {
    let mut results = Vec::new();
    for (rule, r) in config.resources.iter().enumerate() {
        let Some(resource) = r.resources.first().map(|res| probe_resource(res)) else {
            continue;
        };
        let mut nonce = [0u8; 16];
        random::fill(&mut nonce)?;
        let plaintext: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let storage_key = format!("/registry/k8s-envelope-probe/{plaintext}");
        let key = storage_key.as_str().into();
        let outcome = match writer
            .for_resource(&resource)
            .encrypt(plaintext.as_bytes(), key)
            .await
        {
            Err(e) => Err(format!("write: {e}")),
            Ok(stored) => match reader.for_resource(&resource).decrypt(&stored, key).await {
                Err(e) => Err(format!("read back: {e}")),
                Ok(read) if read.plaintext != plaintext.as_bytes() => {
                    Err("read back a different value".to_owned())
                }
                Ok(read) => Ok(read.stale),
            },
        };
        results.push(ProbeResult {
            rule,
            resource,
            outcome,
        });
    }
    Ok(results)
}

/// A concrete resource a rule's resource pattern covers.
fn probe_resource(pattern: &str) -> String {
    let gr = GroupResource::parse(pattern);
    let resource = if gr.resource == "*" {
        "k8s-envelope-probes"
    } else {
        gr.resource.as_str()
    };
    match gr.group.as_str() {
        "" => resource.to_owned(),
        "*" => format!("{resource}.probe.k8s-envelope.io"),
        group => format!("{resource}.{group}"),
    }
}
