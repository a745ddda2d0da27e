//! What a stored value says about how it was written: the provider and key,
//! read from its prefix (and, for KMS v2, the key ID in its envelope).

use std::borrow::Cow;

use crate::kms::encrypted_object::EncryptedObjectRef;
use crate::prefix::StoredPrefix;
use crate::KmsApiVersion;
use crate::ProviderKind;

/// The provider and key of a stored value, borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Described<'a> {
    /// The kind of provider, `None` for a prefix no provider here reads.
    pub(crate) provider: Option<ProviderKind>,
    /// The apiserver's `transformer_prefix` metric label; static (no
    /// allocation) for every provider but KMS, whose prefix holds its name.
    pub(crate) metric_prefix: Cow<'static, str>,
    /// The key name or the KMS v1 provider name.
    name: Option<&'a [u8]>,
    /// The KMS v2 envelope, whose key ID is the key.
    kms_v2_body: Option<&'a [u8]>,
}

impl Default for Described<'_> {
    fn default() -> Self {
        Self {
            provider: None,
            metric_prefix: Cow::Borrowed("unknown"),
            name: None,
            kms_v2_body: None,
        }
    }
}

impl Described<'_> {
    /// The provider's name for logs: `ProviderKind::as_str`, or `unknown`.
    pub(crate) fn provider_name(&self) -> &'static str {
        self.provider.map_or("unknown", ProviderKind::as_str)
    }

    /// The key name, the KMS v1 provider name, or the KMS v2 key-ID hash
    /// (computed here, so only when someone asks).
    pub(crate) fn key(&self) -> Option<String> {
        if let Some(body) = self.kms_v2_body {
            return EncryptedObjectRef::key_id_hash_of(body);
        }
        self.name
            .map(|name| String::from_utf8_lossy(name).into_owned())
    }
}

/// Reads the prefix of `stored` (with the crate's one prefix parser).
pub(crate) fn describe(stored: &[u8]) -> Described<'_> {
    let (kind, name, body) = match StoredPrefix::parse(stored) {
        StoredPrefix::Identity => {
            return Described {
                provider: Some(ProviderKind::Identity),
                metric_prefix: Cow::Borrowed("identity"),
                ..Described::default()
            }
        }
        StoredPrefix::Unknown => return Described::default(),
        StoredPrefix::Known { kind, name, body } => (kind, name, body),
    };
    let kms_prefix = |version: &str| {
        Cow::Owned(format!(
            "k8s:enc:kms:{version}:{}:",
            String::from_utf8_lossy(name)
        ))
    };
    let metric_prefix = match kind {
        ProviderKind::AesCbc => Cow::Borrowed("k8s:enc:aescbc:v1:"),
        ProviderKind::AesGcm => Cow::Borrowed("k8s:enc:aesgcm:v1:"),
        ProviderKind::Secretbox => Cow::Borrowed("k8s:enc:secretbox:v1:"),
        ProviderKind::Kms(KmsApiVersion::V1) => kms_prefix("v1"),
        ProviderKind::Kms(KmsApiVersion::V2) => kms_prefix("v2"),
        ProviderKind::Identity | ProviderKind::Custom => return Described::default(),
    };
    let is_v2 = kind == ProviderKind::Kms(KmsApiVersion::V2);
    Described {
        provider: Some(kind),
        metric_prefix,
        name: (!is_v2).then_some(name),
        kms_v2_body: is_v2.then_some(body),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;
    use crate::{KmsApiVersion, ProviderKind};

    #[test]
    fn reads_provider_and_key_from_the_prefix() {
        let d = describe(b"k8s:enc:aesgcm:v1:key1:\x00\x01");
        assert_eq!(
            (d.provider, &*d.metric_prefix, d.key().as_deref()),
            (
                Some(ProviderKind::AesGcm),
                "k8s:enc:aesgcm:v1:",
                Some("key1")
            )
        );
        let d = describe(b"k8s:enc:kms:v1:vault:\x00\x01");
        assert_eq!(
            (d.provider, &*d.metric_prefix, d.key().as_deref()),
            (
                Some(ProviderKind::Kms(KmsApiVersion::V1)),
                "k8s:enc:kms:v1:vault:",
                Some("vault")
            )
        );
        assert_eq!(describe(b"{\"plain\":1}").provider_name(), "identity");
        assert_eq!(describe(b"k8s:enc:rot13:v1:k:").provider_name(), "unknown");
        assert_eq!(describe(b"k8s:enc:aesgcm").provider_name(), "unknown");
        // No provider's whole prefix (no colon after the key name): the
        // apiserver reads it with none, and so does the scan's origin.
        assert_eq!(
            describe(b"k8s:enc:aesgcm:v1:key1").provider_name(),
            "unknown"
        );
        // A KMS v2 value whose envelope does not decode has no key.
        let d = describe(b"k8s:enc:kms:v2:p:garbage");
        assert_eq!(
            (d.provider, d.key()),
            (Some(ProviderKind::Kms(KmsApiVersion::V2)), None)
        );
    }
}
