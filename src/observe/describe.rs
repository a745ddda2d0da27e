//! What a stored value says about how it was written: the provider and key,
//! read from its prefix (and, for KMS v2, the key ID in its envelope).

use crate::kms::{key_id_hash, EncryptedObjectRef};

/// The provider and key of a stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Described {
    /// `identity`, `aescbc`, `aesgcm`, `secretbox`, `kms v1`, `kms v2` or
    /// `unknown`.
    pub(crate) provider: &'static str,
    /// The apiserver's `transformer_prefix` metric label.
    pub(crate) metric_prefix: String,
    /// The key name, the KMS v1 provider name, or the KMS v2 key-ID hash.
    pub(crate) key: Option<String>,
}

impl Default for Described {
    fn default() -> Self {
        Self {
            provider: "unknown",
            metric_prefix: "unknown".to_owned(),
            key: None,
        }
    }
}

/// Reads the prefix `k8s:enc:<provider>:v1:<name>:` of `stored`.
pub(crate) fn describe(stored: &[u8]) -> Described {
    let Some(rest) = stored.strip_prefix(b"k8s:enc:") else {
        return Described {
            provider: "identity",
            metric_prefix: "identity".to_owned(),
            key: None,
        };
    };
    let mut fields = rest.splitn(4, |&b| b == b':');
    let (Some(kind), Some(version), Some(name), body) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Described::default();
    };
    let name = String::from_utf8_lossy(name).into_owned();
    let kind_version = (kind, version);
    let provider = match kind_version {
        (b"aescbc", b"v1") => "aescbc",
        (b"aesgcm", b"v1") => "aesgcm",
        (b"secretbox", b"v1") => "secretbox",
        (b"kms", b"v1") => "kms v1",
        (b"kms", b"v2") => "kms v2",
        _ => return Described::default(),
    };
    let kind = String::from_utf8_lossy(kind);
    let version = String::from_utf8_lossy(version);
    match provider {
        "kms v1" => Described {
            provider,
            metric_prefix: format!("k8s:enc:{kind}:{version}:{name}:"),
            key: Some(name),
        },
        "kms v2" => Described {
            provider,
            metric_prefix: format!("k8s:enc:{kind}:{version}:{name}:"),
            key: body
                .and_then(|body| EncryptedObjectRef::decode(body).ok())
                .map(|object| key_id_hash(object.key_id)),
        },
        _ => Described {
            provider,
            metric_prefix: format!("k8s:enc:{kind}:{version}:"),
            key: Some(name),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn reads_provider_and_key_from_the_prefix() {
        let d = describe(b"k8s:enc:aesgcm:v1:key1:\x00\x01");
        assert_eq!(
            (d.provider, d.metric_prefix.as_str(), d.key.as_deref()),
            ("aesgcm", "k8s:enc:aesgcm:v1:", Some("key1"))
        );
        let d = describe(b"k8s:enc:kms:v1:vault:\x00\x01");
        assert_eq!(
            (d.provider, d.metric_prefix.as_str(), d.key.as_deref()),
            ("kms v1", "k8s:enc:kms:v1:vault:", Some("vault"))
        );
        assert_eq!(describe(b"{\"plain\":1}").provider, "identity");
        assert_eq!(describe(b"k8s:enc:rot13:v1:k:").provider, "unknown");
        assert_eq!(describe(b"k8s:enc:aesgcm").provider, "unknown");
        // A KMS v2 value whose envelope does not decode has no key.
        let d = describe(b"k8s:enc:kms:v2:p:garbage");
        assert_eq!((d.provider, d.key), ("kms v2", None));
    }
}
