//! The EncryptionConfiguration as written: strict serde types that mirror
//! `apiserver.config.k8s.io/v1`, field for field.
//!
//! Decoding follows the apiserver's strict decoder: unknown fields and
//! duplicate fields are errors, field names are case-sensitive, and an absent
//! or `null` field is its zero value (an empty string or list), which
//! validation then reports.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::duration::GoDuration;
use crate::keys::{InvalidBase64, SecretKey};
use crate::KmsApiVersion;
use crate::ProviderKind;

/// The `kind` of an EncryptionConfiguration.
pub const KIND: &str = "EncryptionConfiguration";
/// The `apiVersion` of an EncryptionConfiguration.
pub const API_VERSION: &str = "apiserver.config.k8s.io/v1";
/// The legacy `kind` the apiserver also accepts (with [`LEGACY_API_VERSION`]).
pub const LEGACY_KIND: &str = "EncryptionConfig";
/// The legacy `apiVersion` the apiserver also accepts (with [`LEGACY_KIND`]).
pub const LEGACY_API_VERSION: &str = "v1";

/// The KMS `apiVersion` when the config does not give one.
pub const DEFAULT_KMS_API_VERSION: &str = "v1";
/// The KMS `timeout` when the config does not give one: 3 seconds.
pub const DEFAULT_KMS_TIMEOUT: GoDuration = GoDuration::from_secs(3);
/// The KMS v1 `cachesize` when the config does not give one.
pub const DEFAULT_KMS_CACHE_SIZE: i32 = 1000;

/// A whole EncryptionConfiguration file: which resources are encrypted, and
/// with which providers.
///
/// Parse one with [`from_slice`](Self::from_slice), [`from_yaml`](Self::from_yaml),
/// [`from_json`](Self::from_json) or [`load`](Self::load), check it with
/// [`validate`](Self::validate), and turn it into transformers with
/// [`build`](Self::build).
///
/// ```
/// use k8s_envelope::config::EncryptionConfiguration;
///
/// let config = EncryptionConfiguration::from_yaml(br#"
/// kind: EncryptionConfiguration
/// apiVersion: apiserver.config.k8s.io/v1
/// resources:
///   - resources: [secrets]
///     providers:
///       - secretbox:
///           keys:
///             - name: key1
///               secret: YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=
/// "#)?;
/// assert_eq!(config.resources[0].resources, ["secrets"]);
/// config.validate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the EncryptionConfiguration's shape, field for field, which users build and edit"
)]
pub struct EncryptionConfiguration {
    /// `EncryptionConfiguration` (or the legacy `EncryptionConfig`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub kind: String,
    /// `apiserver.config.k8s.io/v1` (or the legacy `v1`).
    #[serde(default, rename = "apiVersion", deserialize_with = "null_as_default")]
    pub api_version: String,
    /// The resource rules, in order: an earlier rule wins.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resources: Vec<ResourceConfiguration>,
}

impl Default for EncryptionConfiguration {
    /// An empty configuration with the current kind and apiVersion.
    fn default() -> Self {
        Self {
            kind: KIND.to_owned(),
            api_version: API_VERSION.to_owned(),
            resources: Vec::new(),
        }
    }
}

impl EncryptionConfiguration {
    /// Fills in what the apiserver fills in after decoding, for every KMS
    /// provider (see [`KmsConfiguration::apply_defaults`]). The loaders call
    /// this; call it yourself on a configuration built in code.
    pub fn apply_defaults(&mut self) {
        for rule in &mut self.resources {
            for provider in &mut rule.providers {
                if let Some(kms) = &mut provider.kms {
                    kms.apply_defaults();
                }
            }
        }
    }
}

/// One resource rule: a list of resources and the providers for them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the EncryptionConfiguration's shape, field for field, which users build and edit"
)]
pub struct ResourceConfiguration {
    /// Group-resources such as `secrets`, `deployments.apps`, `*.apps`, `*.`
    /// or `*.*` (see [`GroupResource`](super::GroupResource)).
    #[serde(default, deserialize_with = "null_as_default")]
    pub resources: Vec<String>,
    /// The providers: the first one writes, all of them read.
    #[serde(default, deserialize_with = "null_as_default")]
    pub providers: Vec<ProviderConfiguration>,
}

/// One element of a `providers` list. Exactly one field must be set.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the EncryptionConfiguration's shape, field for field, which users build and edit"
)]
pub struct ProviderConfiguration {
    /// AES-GCM with static keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aesgcm: Option<AesConfiguration>,
    /// AES-CBC with static keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aescbc: Option<AesConfiguration>,
    /// XSalsa20-Poly1305 with static keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secretbox: Option<SecretboxConfiguration>,
    /// No encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityConfiguration>,
    /// Envelope encryption through a KMS plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms: Option<KmsConfiguration>,
}

impl ProviderConfiguration {
    /// The names of the providers set in this element, in the order
    /// `aesgcm`, `aescbc`, `secretbox`, `identity`, `kms`.
    pub fn configured(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.aesgcm.is_some() {
            names.push("aesgcm");
        }
        if self.aescbc.is_some() {
            names.push("aescbc");
        }
        if self.secretbox.is_some() {
            names.push("secretbox");
        }
        if self.identity.is_some() {
            names.push("identity");
        }
        if self.kms.is_some() {
            names.push("kms");
        }
        names
    }

    /// The provider this element configures: the first field set, in the
    /// apiserver's order (`aesgcm`, `aescbc`, `secretbox`, `identity`,
    /// `kms`; a KMS provider is v2 when its `apiVersion` is `v2`, and v1,
    /// the apiserver's default, otherwise), or `None` when none is. A valid
    /// configuration sets exactly one.
    ///
    /// ```
    /// use k8s_envelope::config::{IdentityConfiguration, ProviderConfiguration};
    /// use k8s_envelope::ProviderKind;
    ///
    /// let identity = ProviderConfiguration {
    ///     identity: Some(IdentityConfiguration {}),
    ///     ..ProviderConfiguration::default()
    /// };
    /// assert_eq!(identity.kind(), Some(ProviderKind::Identity));
    /// assert_eq!(ProviderConfiguration::default().kind(), None);
    /// ```
    pub fn kind(&self) -> Option<ProviderKind> {
        if self.aesgcm.is_some() {
            Some(ProviderKind::AesGcm)
        } else if self.aescbc.is_some() {
            Some(ProviderKind::AesCbc)
        } else if self.secretbox.is_some() {
            Some(ProviderKind::Secretbox)
        } else if self.identity.is_some() {
            Some(ProviderKind::Identity)
        } else {
            self.kms.as_ref().map(|kms| {
                if kms.api_version == "v2" {
                    ProviderKind::Kms(KmsApiVersion::V2)
                } else {
                    ProviderKind::Kms(KmsApiVersion::V1)
                }
            })
        }
    }

    /// The static keys of the provider this element configures (see
    /// [`kind`](Self::kind)), in order: empty for identity and KMS.
    pub fn keys(&self) -> &[Key] {
        self.static_keys().map_or(&[], |keys| keys.as_slice())
    }

    /// The static keys, to edit (a rotation step adds or removes one);
    /// `None` for identity and KMS.
    pub fn keys_mut(&mut self) -> Option<&mut Vec<Key>> {
        if let Some(c) = &mut self.aesgcm {
            Some(&mut c.keys)
        } else if let Some(c) = &mut self.aescbc {
            Some(&mut c.keys)
        } else if let Some(c) = &mut self.secretbox {
            Some(&mut c.keys)
        } else {
            None
        }
    }

    fn static_keys(&self) -> Option<&Vec<Key>> {
        if let Some(c) = &self.aesgcm {
            Some(&c.keys)
        } else if let Some(c) = &self.aescbc {
            Some(&c.keys)
        } else if let Some(c) = &self.secretbox {
            Some(&c.keys)
        } else {
            None
        }
    }
}

/// The keys of an `aesgcm` or `aescbc` provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the EncryptionConfiguration's shape, field for field, which users build and edit"
)]
pub struct AesConfiguration {
    /// The keys; the first one encrypts. 16, 24 or 32 bytes each.
    #[serde(default, deserialize_with = "null_as_default")]
    pub keys: Vec<Key>,
}

/// The keys of a `secretbox` provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the EncryptionConfiguration's shape, field for field, which users build and edit"
)]
pub struct SecretboxConfiguration {
    /// The keys; the first one encrypts. 32 bytes each.
    #[serde(default, deserialize_with = "null_as_default")]
    pub keys: Vec<Key>,
}

/// A named static key.
///
/// `Debug` shows the name and never the secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the EncryptionConfiguration's shape, field for field, which users build and edit"
)]
pub struct Key {
    /// The key name, written in front of every value the key encrypts.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// The key bytes, standard base64 with padding.
    #[serde(default, deserialize_with = "null_as_default")]
    pub secret: SecretString,
}

/// The (empty) configuration of the `identity` provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the EncryptionConfiguration's shape, field for field, which users build and edit"
)]
pub struct IdentityConfiguration {}

/// The configuration of a `kms` provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the EncryptionConfiguration's shape, field for field, which users build and edit"
)]
pub struct KmsConfiguration {
    /// `v1` or `v2` (after defaults; empty means `v1`).
    #[serde(default, rename = "apiVersion", deserialize_with = "null_as_default")]
    pub api_version: String,
    /// The provider name, written into every value (`k8s:enc:kms:v2:<name>:`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// KMS v1 only: how many decrypted DEKs to cache (default 1000, negative
    /// disables the cache, zero is invalid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cachesize: Option<i32>,
    /// The plugin's gRPC endpoint: `unix:///path/to.sock` or `unix:///@abstract`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub endpoint: String,
    /// The timeout of every plugin call (default 3s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
}

impl KmsConfiguration {
    /// Applies the apiserver's defaults: `apiVersion` `v1` when empty,
    /// `timeout` 3s when absent, and for v1 only `cachesize` 1000 when
    /// absent.
    pub fn apply_defaults(&mut self) {
        if self.timeout.is_none() {
            self.timeout = Some(DEFAULT_KMS_TIMEOUT);
        }
        if self.api_version.is_empty() {
            self.api_version = DEFAULT_KMS_API_VERSION.to_owned();
        }
        if self.cachesize.is_none() && self.api_version == "v1" {
            self.cachesize = Some(DEFAULT_KMS_CACHE_SIZE);
        }
    }

    /// A copy with the defaults applied.
    pub fn with_defaults(&self) -> Self {
        let mut kms = self.clone();
        kms.apply_defaults();
        kms
    }

    /// The timeout, or the default 3s when absent.
    pub fn effective_timeout(&self) -> GoDuration {
        self.timeout.unwrap_or(DEFAULT_KMS_TIMEOUT)
    }
}

/// Secret text from the configuration (a key's base64 `secret`).
///
/// The text is zeroized when dropped; `Debug` prints `REDACTED`; equality is
/// constant-time. Deserializing it never echoes the value in an error: any
/// non-string value is reported only as "secret must be a string".
#[derive(Clone, Default)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps secret text.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret text. Copies made from it are not zeroized by this type.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Decodes the text as Go's `base64.StdEncoding.DecodeString` does, which
    /// is what the apiserver uses for key secrets: standard alphabet, padding
    /// required, `\r` and `\n` anywhere ignored, and unused bits of the last
    /// character not checked.
    ///
    /// # Errors
    ///
    /// [`InvalidBase64`], which says nothing about the text.
    pub fn decode(&self) -> Result<SecretKey, InvalidBase64> {
        SecretKey::from_base64(&self.0)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SecretString {}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

impl From<Zeroizing<String>> for SecretString {
    /// Takes the text without copying it (see [`SecretKey::to_base64`]).
    fn from(secret: Zeroizing<String>) -> Self {
        Self(secret)
    }
}

impl From<&str> for SecretString {
    fn from(secret: &str) -> Self {
        Self::new(secret)
    }
}

impl serde::Serialize for SecretString {
    /// Serializes the secret text itself: what it is written into is not
    /// zeroized by this type (use
    /// [`EncryptionConfiguration::to_yaml`](super::EncryptionConfiguration::to_yaml)
    /// for a zeroized rendering).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `deserialize_any` so that a non-string value reaches the visitor
        // (which reports it without its value) instead of a format-generated
        // "invalid type: integer `…`" message.
        deserializer.deserialize_any(SecretVisitor)
    }
}

const NOT_A_STRING: &str = "secret must be a string";

/// Accepts strings; every other visit fails with [`NOT_A_STRING`], so that no
/// part of the value can end up in an error message.
struct SecretVisitor;

macro_rules! reject {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, _v: $ty) -> Result<SecretString, E> {
                Err(E::custom(NOT_A_STRING))
            }
        )*
    };
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = SecretString;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NOT_A_STRING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretString, E> {
        Ok(SecretString::new(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<SecretString, E> {
        Ok(SecretString::new(v))
    }

    fn visit_char<E: de::Error>(self, v: char) -> Result<SecretString, E> {
        Ok(SecretString::new(v.to_string()))
    }

    reject!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_bytes(&[u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<SecretString, E> {
        Err(E::custom(NOT_A_STRING))
    }

    fn visit_unit<E: de::Error>(self) -> Result<SecretString, E> {
        Err(E::custom(NOT_A_STRING))
    }

    fn visit_some<D: Deserializer<'de>>(self, _d: D) -> Result<SecretString, D::Error> {
        Err(de::Error::custom(NOT_A_STRING))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, _d: D) -> Result<SecretString, D::Error> {
        Err(de::Error::custom(NOT_A_STRING))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<SecretString, A::Error> {
        Err(de::Error::custom(NOT_A_STRING))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _map: A) -> Result<SecretString, A::Error> {
        Err(de::Error::custom(NOT_A_STRING))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<SecretString, A::Error> {
        Err(de::Error::custom(NOT_A_STRING))
    }
}

/// Decodes an absent or `null` value as the type's default, as Go's JSON
/// decoder leaves a field at its zero value for `null`.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::SecretString;

    #[test]
    fn decode_like_go_std_encoding() {
        let len = |s: &str| SecretString::new(s).decode().map(|k| k.len());
        assert_eq!(len("c2VjcmV0IGlzIHNlY3VyZQ=="), Ok(16));
        // Go ignores line breaks anywhere (a YAML `|` block adds one).
        assert_eq!(len("c2VjcmV0IGlz\r\nIHNlY3VyZQ==\n"), Ok(16));
        // Go's StdEncoding does not check the unused bits of the last symbol.
        assert_eq!(len("YR=="), Ok(1));
        // Padding is required, and must be canonical.
        assert!(len("c2VjcmV0IGlzIHNlY3VyZQ").is_err());
        assert!(len("YQ=").is_err());
        assert!(len("c2VjcmV0 IGlzIHNlY3VyZQ==").is_err());
        assert!(len("c2VjcmV0-IGlzIHNlY3VyZQ=").is_err());
        assert_eq!(len(""), Ok(0));
    }

    #[test]
    fn debug_is_redacted() {
        let s = SecretString::new("c2VjcmV0IGlzIHNlY3VyZQ==");
        assert_eq!(format!("{s:?}"), "REDACTED");
    }
}
