//! The parts of a configuration that the rotation steps look up or build:
//! the rule of a resource, a fresh key and its name, a new provider element.

use super::error::RotationError;
use super::member::ProviderId;
use crate::config::{
    AesConfiguration, EncryptionConfiguration, GroupResource, Key, KmsConfiguration,
    ProviderConfiguration, SecretboxConfiguration,
};
use crate::SecretKey;

/// The index of the rule whose providers read and write `resource` (a
/// group-resource as rules name it: `secrets`, `deployments.apps`): the
/// first rule that names it, else the first that names its group's `*.group`
/// (`*.` for the core group), else the first `*.*`, the order in which the
/// apiserver looks them up.
pub fn rule_for_resource(config: &EncryptionConfiguration, resource: &str) -> Option<usize> {
    let wanted = GroupResource::parse(resource);
    let found = wanted
        .lookup_order()
        .into_iter()
        .find_map(|(group, resource)| {
            config.resources.iter().position(|rule| {
                rule.resources.iter().any(|r| {
                    let named = GroupResource::parse(r);
                    named.group == group && named.resource == resource
                })
            })
        });
    found
}

/// A fresh random key for `provider` (32 bytes), named `name`.
///
/// # Errors
///
/// [`RotationError::Generate`] when the operating system's generator fails.
pub fn generate_key(provider: &ProviderId, name: &str) -> Result<Key, RotationError> {
    let secret =
        SecretKey::generate(provider.generated_key_len()).map_err(RotationError::Generate)?;
    Ok(Key {
        name: name.to_owned(),
        secret: secret.to_base64().into(),
    })
}

/// A key name not used by `keys`: `key<N>`, one past the highest `key<N>`
/// already there (`key1` for none).
pub fn next_key_name(keys: &[Key]) -> String {
    let highest = keys
        .iter()
        .filter_map(|k| k.name.strip_prefix("key")?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let mut n = highest.saturating_add(1);
    while keys.iter().any(|k| k.name == format!("key{n}")) {
        n = n.saturating_add(1);
    }
    format!("key{n}")
}

/// A static-key provider element with one key.
pub fn static_provider(provider: &ProviderId, key: Key) -> Option<ProviderConfiguration> {
    let keys = vec![key];
    let mut element = ProviderConfiguration::default();
    match provider {
        ProviderId::AesGcm => element.aesgcm = Some(AesConfiguration { keys }),
        ProviderId::AesCbc => element.aescbc = Some(AesConfiguration { keys }),
        ProviderId::Secretbox => element.secretbox = Some(SecretboxConfiguration { keys }),
        ProviderId::Identity | ProviderId::Kms(_) => return None,
    }
    Some(element)
}

/// A KMS v2 provider element (`apiVersion: v2`, the default timeout).
pub fn kms_v2_provider(name: &str, endpoint: &str) -> ProviderConfiguration {
    let mut kms = KmsConfiguration {
        api_version: "v2".to_owned(),
        name: name.to_owned(),
        endpoint: endpoint.to_owned(),
        ..KmsConfiguration::default()
    };
    kms.apply_defaults();
    ProviderConfiguration {
        kms: Some(kms),
        ..ProviderConfiguration::default()
    }
}
