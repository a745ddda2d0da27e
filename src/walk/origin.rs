//! Which provider and key wrote a stored value, read from its prefix (no
//! decryption, no KMS call).

use std::fmt;

use crate::kms::encrypted_object::EncryptedObjectRef;
use crate::prefix::StoredPrefix;
use crate::rotation::{Member, ProviderId};
use crate::KmsApiVersion;
use crate::ProviderKind;

/// The longest name kept from a stored value's prefix (values are untrusted).
const MAX_NAME: usize = 128;

/// Which provider and key wrote a stored value, as its prefix tells.
///
/// ```
/// use k8s_envelope::rotation::ProviderId;
/// use k8s_envelope::walk::ValueOrigin;
///
/// assert_eq!(
///     ValueOrigin::of(b"k8s:enc:aesgcm:v1:key1:\x00\x01"),
///     ValueOrigin::Key { provider: ProviderId::AesGcm, name: "key1".into() },
/// );
/// assert_eq!(ValueOrigin::of(b"{\"kind\":\"Secret\"}"), ValueOrigin::Identity);
/// assert_eq!(ValueOrigin::of(b"k8s:enc:aesgcm:v1:key1:").to_string(), "aesgcm:key1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ValueOrigin {
    /// Plaintext (no `k8s:enc:` prefix).
    Identity,
    /// A static-key provider (`k8s:enc:<aescbc|aesgcm|secretbox>:v1:<key>:`).
    Key {
        /// The provider.
        provider: ProviderId,
        /// The key's name (up to the next `:`).
        name: String,
    },
    /// KMS v1 (`k8s:enc:kms:v1:<name>:`).
    KmsV1 {
        /// The provider's name (up to the next `:`).
        name: String,
    },
    /// KMS v2 (`k8s:enc:kms:v2:<name>:`), with the hash of the plugin key ID
    /// stored in the value (`None` when the envelope does not decode).
    KmsV2 {
        /// The provider's name.
        name: String,
        /// `sha256:<hex>` of the key ID, as [`key_id_hash`](crate::kms::key_id_hash) gives it.
        key_id_hash: Option<String>,
    },
    /// A `k8s:enc:` prefix this crate does not know.
    Unknown {
        /// The prefix, up to four `:`-separated fields, lossily decoded.
        prefix: String,
    },
}

impl ValueOrigin {
    /// Reads the origin from a stored value's prefix (see the crate's one
    /// prefix parser: a value read by no provider's whole prefix, such as
    /// `k8s:enc:aesgcm:v1:key1` without its last colon, is
    /// [`Unknown`](ValueOrigin::Unknown)).
    pub fn of(stored: &[u8]) -> Self {
        let (kind, name, body) = match StoredPrefix::parse(stored) {
            StoredPrefix::Identity => return ValueOrigin::Identity,
            StoredPrefix::Unknown => return unknown(stored),
            StoredPrefix::Known { kind, name, body } => (kind, text(name), body),
        };
        match kind {
            ProviderKind::AesGcm => key(ProviderId::AesGcm, name),
            ProviderKind::AesCbc => key(ProviderId::AesCbc, name),
            ProviderKind::Secretbox => key(ProviderId::Secretbox, name),
            ProviderKind::Kms(KmsApiVersion::V1) => ValueOrigin::KmsV1 { name },
            ProviderKind::Kms(KmsApiVersion::V2) => ValueOrigin::KmsV2 {
                name,
                key_id_hash: EncryptedObjectRef::key_id_hash_of(body),
            },
            // The parser gives these for no `k8s:enc:` value.
            ProviderKind::Identity | ProviderKind::Custom => unknown(stored),
        }
    }

    /// The kind of provider that wrote the value, if this crate knows it.
    pub fn kind(&self) -> Option<ProviderKind> {
        match self {
            ValueOrigin::Identity => Some(ProviderKind::Identity),
            ValueOrigin::Key { provider, .. } => match provider {
                ProviderId::AesGcm => Some(ProviderKind::AesGcm),
                ProviderId::AesCbc => Some(ProviderKind::AesCbc),
                ProviderId::Secretbox => Some(ProviderKind::Secretbox),
                ProviderId::Identity | ProviderId::Kms(_) => None,
            },
            ValueOrigin::KmsV1 { .. } => Some(ProviderKind::Kms(KmsApiVersion::V1)),
            ValueOrigin::KmsV2 { .. } => Some(ProviderKind::Kms(KmsApiVersion::V2)),
            ValueOrigin::Unknown { .. } => None,
        }
    }

    /// The provider that wrote the value, if this crate knows it.
    pub fn provider(&self) -> Option<ProviderId> {
        match self {
            ValueOrigin::Identity => Some(ProviderId::Identity),
            ValueOrigin::Key { provider, .. } => Some(provider.clone()),
            ValueOrigin::KmsV1 { name } | ValueOrigin::KmsV2 { name, .. } => {
                Some(ProviderId::Kms(name.clone()))
            }
            ValueOrigin::Unknown { .. } => None,
        }
    }

    /// Whether the value may have been written by `member`: that key, or
    /// any key of that provider.
    ///
    /// A key name may hold `:`, and then a stored prefix cannot tell it
    /// from the key named by its part before the first `:` (the value's
    /// prefix is read up to its first colon after the version, as a name
    /// of its own): `a:b` matches values of both `a:b` and `a`. So a
    /// question "is anything still written by this key?" errs towards yes,
    /// never towards no.
    pub fn written_by(&self, member: &Member) -> bool {
        match member {
            Member::Provider(id) => self.provider().as_ref() == Some(id),
            Member::Key { provider, name } => {
                let first = name.split(':').next().unwrap_or(name);
                matches!(self, ValueOrigin::Key { provider: p, name: n }
                    if p == provider && (n == name || n == first))
            }
        }
    }
}

fn key(provider: ProviderId, name: String) -> ValueOrigin {
    ValueOrigin::Key { provider, name }
}

fn unknown(stored: &[u8]) -> ValueOrigin {
    let end = stored
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b':')
        .nth(3)
        .map_or(stored.len().min(MAX_NAME), |(i, _)| i);
    ValueOrigin::Unknown {
        prefix: text(&stored[..end]),
    }
}

/// Untrusted bytes as a short, printable string.
fn text(bytes: &[u8]) -> String {
    let clipped = &bytes[..bytes.len().min(MAX_NAME)];
    String::from_utf8_lossy(clipped)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl fmt::Display for ValueOrigin {
    /// `identity`, `aesgcm:key1`, `kms:name (v1)`,
    /// `kms:name (v2, key ID sha256:…)`, `unknown k8s:enc:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueOrigin::Identity => f.write_str("identity"),
            ValueOrigin::Key { provider, name } => write!(f, "{provider}:{name}"),
            ValueOrigin::KmsV1 { name } => write!(f, "kms:{name} (v1)"),
            ValueOrigin::KmsV2 {
                name,
                key_id_hash: Some(hash),
            } => write!(f, "kms:{name} (v2, key ID {hash})"),
            ValueOrigin::KmsV2 {
                name,
                key_id_hash: None,
            } => write!(f, "kms:{name} (v2, undecodable envelope)"),
            ValueOrigin::Unknown { prefix } => write!(f, "unknown {prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value of a key named `a:b` reads as key `a`; asked whether key
    /// `a:b` wrote it, the answer is yes (a retire of `a:b` is held back,
    /// never let through while such values remain).
    #[test]
    fn a_key_name_with_a_colon_is_never_missed() {
        let stored = b"k8s:enc:aesgcm:v1:a:b:\x01\x02body";
        let origin = ValueOrigin::of(stored);
        let member = |name: &str| Member::Key {
            provider: ProviderId::AesGcm,
            name: name.to_owned(),
        };
        assert!(origin.written_by(&member("a:b")));
        assert!(origin.written_by(&member("a")));
        assert!(!origin.written_by(&member("b")));
        assert!(!origin.written_by(&member("ab")));
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            ValueOrigin::of(b"k8s:enc:secretbox:v1:k:body").to_string(),
            "secretbox:k"
        );
        assert_eq!(
            ValueOrigin::of(b"k8s:enc:kms:v1:vault:\x00\x02ab").to_string(),
            "kms:vault (v1)"
        );
        assert_eq!(
            ValueOrigin::of(b"k8s:enc:kms:v2:vault:garbage").to_string(),
            "kms:vault (v2, undecodable envelope)"
        );
        assert_eq!(
            ValueOrigin::of(b"k8s:enc:rot13:v1:k:body").to_string(),
            "unknown k8s:enc:rot13:v1"
        );
        assert_eq!(
            ValueOrigin::of(b"k8s:enc:aesgcm").to_string(),
            "unknown k8s:enc:aesgcm"
        );
        // No provider's whole prefix: the apiserver reads it with none.
        assert_eq!(
            ValueOrigin::of(b"k8s:enc:aesgcm:v1:key1").to_string(),
            "unknown k8s:enc:aesgcm:v1"
        );
        assert_eq!(
            ValueOrigin::of(b"k8s:enc:aesgcm:v1:key1:").kind(),
            Some(ProviderKind::AesGcm)
        );
        assert_eq!(
            ValueOrigin::of(b"k8s:enc:aesgcm:v1:k\x07ey:").to_string(),
            "aesgcm:k?ey"
        );
        let key = Member::Key {
            provider: ProviderId::AesGcm,
            name: "key1".into(),
        };
        assert!(ValueOrigin::of(b"k8s:enc:aesgcm:v1:key1:x").written_by(&key));
        assert!(!ValueOrigin::of(b"k8s:enc:aesgcm:v1:key10:x").written_by(&key));
        assert!(ValueOrigin::of(b"plain").written_by(&Member::Provider(ProviderId::Identity)));
    }
}
