//! The rotation steps as pure functions: each takes a configuration and
//! returns a new one, or refuses a step that is out of order.

use super::error::RotationError;
use super::member::{position, Member, ProviderId};
use crate::config::{EncryptionConfiguration, Key, ProviderConfiguration};

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
