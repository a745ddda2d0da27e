//! [`RotationError`]: why a rotation step was refused.

use super::member::{Member, ProviderId, UnknownProvider};
use crate::config::ValidationErrors;

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

impl From<UnknownProvider> for RotationError {
    fn from(e: UnknownProvider) -> Self {
        RotationError::UnknownProvider { given: e.given }
    }
}
