//! What a stored value says about how it was written: the provider and key,
//! read from its prefix (and, for KMS v2, the key ID in its envelope).

use std::borrow::Cow;

use crate::kms::encrypted_object::EncryptedObjectRef;
use crate::kms::key_id_hash;

/// The provider and key of a stored value, borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Described<'a> {
    /// `identity`, `aescbc`, `aesgcm`, `secretbox`, `kms v1`, `kms v2` or
    /// `unknown`.
    pub(crate) provider: &'static str,
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
            provider: "unknown",
            metric_prefix: Cow::Borrowed("unknown"),
            name: None,
            kms_v2_body: None,
        }
    }
}

impl Described<'_> {
    /// The key name, the KMS v1 provider name, or the KMS v2 key-ID hash
    /// (computed here, so only when someone asks).
    pub(crate) fn key(&self) -> Option<String> {
        if let Some(body) = self.kms_v2_body {
            return EncryptedObjectRef::decode(body)
                .ok()
                .map(|object| key_id_hash(object.key_id));
        }
        self.name
            .map(|name| String::from_utf8_lossy(name).into_owned())
    }
}

/// Reads the prefix `k8s:enc:<provider>:v1:<name>:` of `stored`.
pub(crate) fn describe(stored: &[u8]) -> Described<'_> {
    let Some(rest) = stored.strip_prefix(b"k8s:enc:") else {
        return Described {
            provider: "identity",
            metric_prefix: Cow::Borrowed("identity"),
            ..Described::default()
        };
    };
    let mut fields = rest.splitn(4, |&b| b == b':');
    let (Some(kind), Some(version), Some(name), body) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Described::default();
    };
    let static_key = |provider, prefix| Described {
        provider,
        metric_prefix: Cow::Borrowed(prefix),
        name: Some(name),
        kms_v2_body: None,
    };
    let kms_prefix = |version: &str| {
        Cow::Owned(format!(
            "k8s:enc:kms:{version}:{}:",
            String::from_utf8_lossy(name)
        ))
    };
    match (kind, version) {
        (b"aescbc", b"v1") => static_key("aescbc", "k8s:enc:aescbc:v1:"),
        (b"aesgcm", b"v1") => static_key("aesgcm", "k8s:enc:aesgcm:v1:"),
        (b"secretbox", b"v1") => static_key("secretbox", "k8s:enc:secretbox:v1:"),
        (b"kms", b"v1") => Described {
            provider: "kms v1",
            metric_prefix: kms_prefix("v1"),
            name: Some(name),
            kms_v2_body: None,
        },
        (b"kms", b"v2") => Described {
            provider: "kms v2",
            metric_prefix: kms_prefix("v2"),
            name: None,
            kms_v2_body: Some(body.unwrap_or_default()),
        },
        _ => Described::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn reads_provider_and_key_from_the_prefix() {
        let d = describe(b"k8s:enc:aesgcm:v1:key1:\x00\x01");
        assert_eq!(
            (d.provider, &*d.metric_prefix, d.key().as_deref()),
            ("aesgcm", "k8s:enc:aesgcm:v1:", Some("key1"))
        );
        let d = describe(b"k8s:enc:kms:v1:vault:\x00\x01");
        assert_eq!(
            (d.provider, &*d.metric_prefix, d.key().as_deref()),
            ("kms v1", "k8s:enc:kms:v1:vault:", Some("vault"))
        );
        assert_eq!(describe(b"{\"plain\":1}").provider, "identity");
        assert_eq!(describe(b"k8s:enc:rot13:v1:k:").provider, "unknown");
        assert_eq!(describe(b"k8s:enc:aesgcm").provider, "unknown");
        // A KMS v2 value whose envelope does not decode has no key.
        let d = describe(b"k8s:enc:kms:v2:p:garbage");
        assert_eq!((d.provider, d.key()), ("kms v2", None));
    }
}
