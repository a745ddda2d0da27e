//! The key IDs this plugin reports, and the encryption context that binds a
//! wrapped DEK or seed to one of them.
//!
//! A key ID is the key's ARN and which key material wraps, joined by `#`:
//!
//! - `arn:aws:kms:REGION:ACCOUNT:key/ID#material-HEX`: the key's current
//!   key material as DescribeKey reports it (`CurrentKeyMaterialId`, which
//!   AWS KMS reports for every symmetric key);
//! - `arn:...#rotated-SECONDS.MILLIS`: where the service does not report it
//!   (emulators; custom key stores), the date of the key's newest rotation
//!   as ListKeyRotations lists it (to the millisecond: the service's dates
//!   are floating-point seconds);
//! - `arn:...#original`: no rotation listed.
//!
//! So the key ID changes when AWS rotates the key's material (automatic or
//! on demand) and when `--key` names another key (directly or through an
//! alias moved to another key), and at no other time: kube-apiserver then
//! wraps a new DEK or seed, and `scan`/`verify` show the values written
//! before as stale. An ARN never contains `#`, so the split is unambiguous.

use std::collections::HashMap;

/// The separator of a key ID's ARN and material marker.
const SEPARATOR: char = '#';

/// The encryption context's key naming what the ciphertext is.
pub const PURPOSE_KEY: &str = "k8s-envelope:purpose";

/// What every DEK or seed this plugin wraps is, in its encryption context.
pub const PURPOSE: &str = "kubernetes encryption at rest: a KMS plugin's DEK or seed";

/// The encryption context's key holding the key ID the plugin reported for
/// the ciphertext.
pub const KEY_ID_KEY: &str = "k8s-envelope:key-id";

/// The purpose of the health probe's Encrypt: never a DEK's context, so a
/// probe's ciphertext cannot be passed off as a wrapped DEK.
pub const PROBE_PURPOSE: &str = "k8s-envelope kms-plugin-aws health probe (nothing is stored)";

/// Which key material of a key wraps, as far as the service tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Material {
    /// DescribeKey's `CurrentKeyMaterialId`.
    Current(String),
    /// The newest rotation's date (seconds and milliseconds since the
    /// epoch).
    RotatedAt { seconds: i64, millis: u32 },
    /// The key has not been rotated.
    Original,
}

/// The key ID of `arn` wrapping with `material`.
pub fn key_id(arn: &str, material: &Material) -> String {
    match material {
        Material::Current(id) => format!("{arn}{SEPARATOR}material-{id}"),
        Material::RotatedAt { seconds, millis } => {
            format!("{arn}{SEPARATOR}rotated-{seconds}.{millis:03}")
        }
        Material::Original => format!("{arn}{SEPARATOR}original"),
    }
}

/// The key ARN of a key ID this plugin reported, or `None` when it is not
/// one of this plugin's.
pub fn arn_of(key_id: &str) -> Option<&str> {
    let (arn, material) = key_id.split_once(SEPARATOR)?;
    let known_material = material.starts_with("material-")
        || material.starts_with("rotated-")
        || material == "original";
    (arn.starts_with("arn:") && arn.contains(":key/") && known_material).then_some(arn)
}

/// The encryption context of a DEK or seed wrapped under `key_id`: the same
/// on Encrypt and Decrypt. AWS KMS authenticates it with the ciphertext, so
/// a ciphertext only decrypts as what it was wrapped as: a DEK or seed of
/// this plugin, under this key ID (a value cannot be relabelled with the
/// current key ID to hide that it is stale). CloudTrail logs it with each
/// call.
pub fn encryption_context(key_id: &str) -> HashMap<String, String> {
    HashMap::from([
        (PURPOSE_KEY.to_owned(), PURPOSE.to_owned()),
        (KEY_ID_KEY.to_owned(), key_id.to_owned()),
    ])
}

/// The encryption context of the health probe.
pub fn probe_context() -> HashMap<String, String> {
    HashMap::from([(PURPOSE_KEY.to_owned(), PROBE_PURPOSE.to_owned())])
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn key_ids_name_the_key_and_its_material() {
        let current = key_id(ARN, &Material::Current("ab12".into()));
        assert_eq!(current, format!("{ARN}#material-ab12"));
        let rotated = key_id(
            ARN,
            &Material::RotatedAt {
                seconds: 1_765_000_000,
                millis: 5,
            },
        );
        assert_eq!(rotated, format!("{ARN}#rotated-1765000000.005"));
        assert_eq!(key_id(ARN, &Material::Original), format!("{ARN}#original"));
        for id in [&current, &rotated] {
            assert_eq!(arn_of(id), Some(ARN));
        }
    }

    #[test]
    fn foreign_key_ids_have_no_arn() {
        for id in [
            "",
            ARN,
            "pkcs11-00ff",
            "arn:aws:kms:us-east-1:1:alias/x#original",
            &format!("{ARN}#other"),
            "#original",
        ] {
            assert_eq!(arn_of(id), None, "{id}");
        }
    }

    #[test]
    fn the_context_binds_the_purpose_and_the_key_id() {
        let context = encryption_context("k#original");
        assert_eq!(context.len(), 2);
        assert_eq!(context[PURPOSE_KEY], PURPOSE);
        assert_eq!(context[KEY_ID_KEY], "k#original");
        assert_ne!(probe_context()[PURPOSE_KEY], PURPOSE);
    }
}
