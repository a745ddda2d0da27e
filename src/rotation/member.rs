//! The members of a rule's `providers` list, as rotation names them: a
//! provider ([`ProviderId`]: a static-key kind, identity, or a KMS provider
//! by name), or one key of a static-key provider ([`Member`]).

use std::fmt;
use std::str::FromStr;

use crate::config::ProviderConfiguration;
use crate::ProviderKind;

/// Which provider of a rule's `providers` list: a static-key kind, identity,
/// or a KMS provider by name.
///
/// Written (and parsed) as the configuration spells the kind: `aesgcm`,
/// `aescbc`, `secretbox`, `identity`, or `kms:<name>`.
///
/// ```
/// use k8s_envelope::rotation::ProviderId;
///
/// let id: ProviderId = "kms:vault".parse()?;
/// assert_eq!(id, ProviderId::Kms("vault".into()));
/// assert_eq!(id.to_string(), "kms:vault");
/// assert_eq!("aesgcm".parse::<ProviderId>()?, ProviderId::AesGcm);
/// # Ok::<(), k8s_envelope::rotation::RotationError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProviderId {
    /// `aesgcm`.
    AesGcm,
    /// `aescbc`.
    AesCbc,
    /// `secretbox`.
    Secretbox,
    /// `identity`.
    Identity,
    /// A `kms` provider (v1 or v2), by its name.
    Kms(String),
}

impl ProviderId {
    /// The provider set in a `providers` element (the first one, in the
    /// apiserver's order, if several are set), or `None` if none is.
    pub fn of(provider: &ProviderConfiguration) -> Option<Self> {
        Some(match provider.kind()? {
            ProviderKind::AesGcm => ProviderId::AesGcm,
            ProviderKind::AesCbc => ProviderId::AesCbc,
            ProviderKind::Secretbox => ProviderId::Secretbox,
            ProviderKind::Identity => ProviderId::Identity,
            ProviderKind::Kms(_) | ProviderKind::Custom => {
                ProviderId::Kms(provider.kms.as_ref()?.name.clone())
            }
        })
    }

    /// Whether this is a static-key provider (aesgcm, aescbc, secretbox).
    pub fn has_keys(&self) -> bool {
        matches!(
            self,
            ProviderId::AesGcm | ProviderId::AesCbc | ProviderId::Secretbox
        )
    }

    /// The key length written by [`generate_key`](super::generate_key) for this provider: 32
    /// bytes (AES-256 for aesgcm and aescbc; secretbox takes nothing else).
    pub fn generated_key_len(&self) -> usize {
        32
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderId::AesGcm => f.write_str("aesgcm"),
            ProviderId::AesCbc => f.write_str("aescbc"),
            ProviderId::Secretbox => f.write_str("secretbox"),
            ProviderId::Identity => f.write_str("identity"),
            ProviderId::Kms(name) => write!(f, "kms:{name}"),
        }
    }
}

/// Not a provider's name: `aesgcm`, `aescbc`, `secretbox`, `identity` or
/// `kms:NAME` were expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("unknown provider {given:?}: expected aesgcm, aescbc, secretbox, identity or kms:<name>")]
pub struct UnknownProvider {
    /// What was given.
    pub given: String,
}

impl FromStr for ProviderId {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aesgcm" => Ok(ProviderId::AesGcm),
            "aescbc" => Ok(ProviderId::AesCbc),
            "secretbox" => Ok(ProviderId::Secretbox),
            "identity" => Ok(ProviderId::Identity),
            _ => match s.strip_prefix("kms:") {
                Some(name) if !name.is_empty() => Ok(ProviderId::Kms(name.to_owned())),
                _ => Err(UnknownProvider {
                    given: s.to_owned(),
                }),
            },
        }
    }
}

/// What a step adds, promotes or retires: one key of a static-key provider,
/// or a whole provider.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[allow(
    clippy::exhaustive_enums,
    reason = "a rule member is a key or a whole provider, nothing else"
)]
pub enum Member {
    /// A named key of a static-key provider.
    Key {
        /// The provider that holds the key.
        provider: ProviderId,
        /// The key's name.
        name: String,
    },
    /// A provider.
    Provider(ProviderId),
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Member::Key { provider, name } => write!(f, "{provider} key {name:?}"),
            Member::Provider(provider) => write!(f, "provider {provider}"),
        }
    }
}

/// The index of the first element of `providers` that is `id`.
pub(crate) fn position(providers: &[ProviderConfiguration], id: &ProviderId) -> Option<usize> {
    providers
        .iter()
        .position(|p| ProviderId::of(p).as_ref() == Some(id))
}
