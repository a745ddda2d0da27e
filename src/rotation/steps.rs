//! The rotation steps as pure functions: each takes a configuration and
//! returns a new one, or refuses a step that is out of order.

use super::member::{position, Member, ProviderId};
use crate::config::{EncryptionConfiguration, Key, ProviderConfiguration, ValidationErrors};

/// A rotation step was refused, or its result is not a valid configuration.
///
/// Messages name rules, providers and keys, never a secret.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// No resource rule covers the resource.
    #[error("no resource rule covers {resource:?}")]
    NoRule {
        /// The resource asked for.
        resource: String,
    },
    /// The rule index is past the end of `resources`.
    #[error("there is no resources[{rule}]")]
    NoSuchRule {
        /// The index asked for.
        rule: usize,
    },
    /// Not a provider name.
    #[error(
        "unknown provider {given:?}: expected aesgcm, aescbc, secretbox, identity or kms:<name>"
    )]
    UnknownProvider {
        /// What was given.
        given: String,
    },
    /// The rule has no such key or provider. For a promotion: it must be
    /// added as a reader, and rolled out to every server, first.
    #[error("resources[{rule}] has no {member}: add it (as a reader, in second place) and roll that configuration out to every server first")]
    NotPresent {
        /// The rule.
        rule: usize,
        /// What was asked for.
        member: Member,
    },
    /// The key or provider is already in the rule.
    #[error("resources[{rule}] already has {member}")]
    AlreadyPresent {
        /// The rule.
        rule: usize,
        /// What was to be added.
        member: Member,
    },
    /// The key or provider already writes: nothing to promote.
    #[error("resources[{rule}]: {member} already writes")]
    AlreadyWriting {
        /// The rule.
        rule: usize,
        /// What was to be promoted.
        member: Member,
    },
    /// Retiring the key or provider that writes would make every new value
    /// unreadable by the servers that still have the old configuration.
    #[error("resources[{rule}]: {member} writes new values; promote another key or provider, roll it out and re-encrypt before retiring it")]
    WouldRetireWriter {
        /// The rule.
        rule: usize,
        /// What was to be retired.
        member: Member,
    },
    /// Retiring the only key of a provider would leave the provider invalid.
    #[error(
        "resources[{rule}]: {member} is the only key of its provider; retire the provider instead"
    )]
    LastKey {
        /// The rule.
        rule: usize,
        /// What was to be retired.
        member: Member,
    },
    /// A key was to be added to, or promoted within, the writing provider,
    /// but the writing provider has no keys (identity or KMS).
    #[error("resources[{rule}]: the writing provider {provider} has no keys; add a new provider instead")]
    WriterHasNoKeys {
        /// The rule.
        rule: usize,
        /// The writing provider.
        provider: ProviderId,
    },
    /// A key of a provider that does not write was to be promoted.
    #[error("resources[{rule}]: {member} belongs to a provider that does not write; promote {provider} instead")]
    NotInWriter {
        /// The rule.
        rule: usize,
        /// What was to be promoted.
        member: Member,
        /// The provider that holds it.
        provider: ProviderId,
    },
    /// A provider to add has no provider set, or more than one.
    #[error("a provider to add must set exactly one of aesgcm, aescbc, secretbox, identity, kms")]
    BadProvider,
    /// The step's result does not validate.
    #[error("the new configuration is invalid: {0}")]
    Invalid(#[from] ValidationErrors),
    /// A key could not be generated.
    #[error(transparent)]
    Generate(crate::Error),
}

/// Step 1 for a key: adds `key` to the writing provider of rule `rule`, in
/// second place, so every server can read values written with it before any
/// server writes with it.
///
/// # Errors
///
/// [`RotationError::WriterHasNoKeys`] when the writing provider is identity
/// or KMS (add a provider instead), [`RotationError::AlreadyPresent`] when
/// the writing provider has a key of that name, and
/// [`RotationError::Invalid`] when the result does not validate (for
/// example a key of the wrong length).
pub fn add_key(
    config: &EncryptionConfiguration,
    rule: usize,
    key: Key,
) -> Result<EncryptionConfiguration, RotationError> {
    let mut next = config.clone();
    let writer = writer_id(&next, rule)?;
    let member = Member::Key {
        provider: writer.clone(),
        name: key.name.clone(),
    };
    let keys =
        next.resources[rule].providers[0]
            .keys_mut()
            .ok_or(RotationError::WriterHasNoKeys {
                rule,
                provider: writer,
            })?;
    if keys.iter().any(|k| k.name == key.name) {
        return Err(RotationError::AlreadyPresent { rule, member });
    }
    keys.insert(keys.len().min(1), key);
    checked(next)
}

/// Step 1 for a provider: adds `provider` to rule `rule` in second place, so
/// every server can read values it writes before any server writes with it.
///
/// # Errors
///
/// [`RotationError::BadProvider`] when the element sets no provider or
/// several, [`RotationError::AlreadyPresent`] when the rule already has one
/// of that kind (or a KMS provider of that name), and
/// [`RotationError::Invalid`] when the result does not validate.
pub fn add_provider(
    config: &EncryptionConfiguration,
    rule: usize,
    provider: ProviderConfiguration,
) -> Result<EncryptionConfiguration, RotationError> {
    if provider.configured().len() != 1 {
        return Err(RotationError::BadProvider);
    }
    let id = ProviderId::of(&provider).ok_or(RotationError::BadProvider)?;
    let mut next = config.clone();
    writer_id(&next, rule)?;
    let providers = &mut next.resources[rule].providers;
    if position(providers, &id).is_some() {
        return Err(RotationError::AlreadyPresent {
            rule,
            member: Member::Provider(id),
        });
    }
    providers.insert(1, provider);
    checked(next)
}

/// Step 2: makes `member` the writer of rule `rule`. A key moves to first
/// place in the writing provider; a provider moves to first place in the
/// list. Do this only after the configuration that added it has reached
/// every server.
///
/// # Errors
///
/// [`RotationError::NotPresent`] when it is not in the rule yet (it must be
/// added as a reader first), [`RotationError::AlreadyWriting`],
/// [`RotationError::NotInWriter`] for a key of a provider that does not
/// write, and [`RotationError::Invalid`].
pub fn promote(
    config: &EncryptionConfiguration,
    rule: usize,
    member: &Member,
) -> Result<EncryptionConfiguration, RotationError> {
    let mut next = config.clone();
    writer_id(&next, rule)?;
    let providers = &mut next.resources[rule].providers;
    let not_present = || RotationError::NotPresent {
        rule,
        member: member.clone(),
    };
    match member {
        Member::Provider(id) => {
            let at = position(providers, id).ok_or_else(not_present)?;
            if at == 0 {
                return Err(RotationError::AlreadyWriting {
                    rule,
                    member: member.clone(),
                });
            }
            let element = providers.remove(at);
            providers.insert(0, element);
        }
        Member::Key { provider, name } => {
            let at = position(providers, provider).ok_or_else(not_present)?;
            let keys = providers[at].keys_mut().ok_or_else(not_present)?;
            let key_at = keys
                .iter()
                .position(|k| k.name == *name)
                .ok_or_else(not_present)?;
            if at != 0 {
                return Err(RotationError::NotInWriter {
                    rule,
                    member: member.clone(),
                    provider: provider.clone(),
                });
            }
            if key_at == 0 {
                return Err(RotationError::AlreadyWriting {
                    rule,
                    member: member.clone(),
                });
            }
            let key = keys.remove(key_at);
            keys.insert(0, key);
        }
    }
    checked(next)
}

/// Step 4: removes `member` from rule `rule`. Do this only after every
/// value it wrote has been re-encrypted (a scan finds none left).
///
/// # Errors
///
/// [`RotationError::NotPresent`], [`RotationError::WouldRetireWriter`] for
/// the writing key or provider, [`RotationError::LastKey`] for the only key
/// of a provider, and [`RotationError::Invalid`].
pub fn retire(
    config: &EncryptionConfiguration,
    rule: usize,
    member: &Member,
) -> Result<EncryptionConfiguration, RotationError> {
    let mut next = config.clone();
    writer_id(&next, rule)?;
    let providers = &mut next.resources[rule].providers;
    let not_present = || RotationError::NotPresent {
        rule,
        member: member.clone(),
    };
    let writes = || RotationError::WouldRetireWriter {
        rule,
        member: member.clone(),
    };
    match member {
        Member::Provider(id) => {
            let at = position(providers, id).ok_or_else(not_present)?;
            if at == 0 {
                return Err(writes());
            }
            providers.remove(at);
        }
        Member::Key { provider, name } => {
            let at = position(providers, provider).ok_or_else(not_present)?;
            let keys = providers[at].keys_mut().ok_or_else(not_present)?;
            let key_at = keys
                .iter()
                .position(|k| k.name == *name)
                .ok_or_else(not_present)?;
            if at == 0 && key_at == 0 {
                return Err(writes());
            }
            if keys.len() == 1 {
                return Err(RotationError::LastKey {
                    rule,
                    member: member.clone(),
                });
            }
            keys.remove(key_at);
        }
    }
    checked(next)
}

/// What writes in rule `rule`: the first provider and, for a static-key
/// provider, its first key.
///
/// # Errors
///
/// [`RotationError::NoSuchRule`], or [`RotationError::BadProvider`] when
/// the rule has no providers or its first element sets none.
pub fn writer(
    config: &EncryptionConfiguration,
    rule: usize,
) -> Result<(ProviderId, Option<String>), RotationError> {
    let id = writer_id(config, rule)?;
    let first = &config.resources[rule].providers[0];
    let key = first.keys().first().map(|k| k.name.clone());
    Ok((id, key))
}

fn writer_id(config: &EncryptionConfiguration, rule: usize) -> Result<ProviderId, RotationError> {
    let r = config
        .resources
        .get(rule)
        .ok_or(RotationError::NoSuchRule { rule })?;
    r.providers
        .first()
        .and_then(ProviderId::of)
        .ok_or(RotationError::BadProvider)
}

fn checked(config: EncryptionConfiguration) -> Result<EncryptionConfiguration, RotationError> {
    config.validate()?;
    Ok(config)
}
