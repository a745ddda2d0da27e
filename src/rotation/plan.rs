//! A whole rotation, step by step, with what the operator does between the
//! steps.

use std::fmt;

use super::error::RotationError;
use super::member::{Member, ProviderId};
use super::steps;
use crate::config::{EncryptionConfiguration, Key, ProviderConfiguration, ResourceConfiguration};

/// What a rotation brings in.
#[derive(Clone, Debug)]
#[allow(
    clippy::exhaustive_enums,
    reason = "a change adds a key or a provider, nothing else"
)]
pub enum Change {
    /// A new key for the writing provider (which must be a static-key
    /// provider); the old writing key is retired at the end.
    Key(Key),
    /// A new provider (for example aesgcm instead of aescbc, or KMS v2); the
    /// old writing provider is retired at the end.
    Provider(ProviderConfiguration),
}

/// The four steps of a rotation, in the order that is safe when several
/// kube-apiservers share the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StepKind {
    /// The new key or provider goes in second place: every server learns to
    /// read it, none writes with it yet.
    Add,
    /// It moves to first place: servers write with it.
    Promote,
    /// Every value still written by the old key or provider is rewritten.
    Reencrypt,
    /// The old key or provider is removed.
    Retire,
}

impl StepKind {
    /// The step's name, as the CLI's subcommands spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Add => "add",
            StepKind::Promote => "promote",
            StepKind::Reencrypt => "reencrypt",
            StepKind::Retire => "retire",
        }
    }
}

/// One step of a [`Plan`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PlanStep {
    /// Which step.
    pub kind: StepKind,
    /// What the step does, in one sentence.
    pub action: String,
    /// The configuration after the step (`None` for the re-encryption,
    /// which changes no configuration). It has been validated.
    pub config: Option<EncryptionConfiguration>,
    /// What the operator must do before the next step.
    pub then: String,
}

/// A rotation of one resource rule, from the current configuration to the
/// one where only the new key or provider is left, with every intermediate
/// configuration computed and validated.
///
/// ```
/// use k8s_envelope::config::EncryptionConfiguration;
/// use k8s_envelope::rotation::{self, Change, ProviderId, StepKind};
///
/// let config = EncryptionConfiguration::from_yaml(br#"
/// kind: EncryptionConfiguration
/// apiVersion: apiserver.config.k8s.io/v1
/// resources:
///   - resources: [secrets]
///     providers:
///       - aesgcm: {keys: [{name: key1, secret: c2VjcmV0IGlzIHNlY3VyZQ==}]}
///       - identity: {}
/// "#)?;
/// let key = rotation::generate_key(&ProviderId::AesGcm, "key2")?;
/// let plan = rotation::plan(&config, 0, Change::Key(key))?;
/// let kinds: Vec<StepKind> = plan.steps.iter().map(|s| s.kind).collect();
/// assert_eq!(kinds, [StepKind::Add, StepKind::Promote, StepKind::Reencrypt, StepKind::Retire]);
/// let last = plan.steps[3].config.as_ref().unwrap();
/// assert_eq!(rotation::writer(last, 0)?, (ProviderId::AesGcm, Some("key2".into())));
/// println!("{plan}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Plan {
    /// The rule rotated (its index in `resources`).
    pub rule: usize,
    /// What writes now.
    pub old: Member,
    /// What writes after the rotation.
    pub new: Member,
    /// The steps, in order.
    pub steps: Vec<PlanStep>,
}

/// Plans the rotation of rule `rule` to `change`: add it as a reader,
/// promote it, re-encrypt, retire what wrote before.
///
/// # Errors
///
/// Whatever the first step that cannot be taken refuses (see
/// [`add_key`](steps::add_key), [`add_provider`](steps::add_provider),
/// [`promote`](steps::promote) and [`retire`](steps::retire)).
pub fn plan(
    config: &EncryptionConfiguration,
    rule: usize,
    change: Change,
) -> Result<Plan, RotationError> {
    let (old_provider, old_key) = steps::writer(config, rule)?;
    let (added, old, new) = match change {
        Change::Key(key) => {
            let new = Member::Key {
                provider: old_provider.clone(),
                name: key.name.clone(),
            };
            let old = match old_key {
                Some(name) => Member::Key {
                    provider: old_provider,
                    name,
                },
                None => {
                    return Err(RotationError::WriterHasNoKeys {
                        rule,
                        provider: old_provider,
                    })
                }
            };
            (steps::add_key(config, rule, key)?, old, new)
        }
        Change::Provider(provider) => {
            let id = ProviderId::of(&provider).ok_or(RotationError::BadProvider)?;
            (
                steps::add_provider(config, rule, provider)?,
                Member::Provider(old_provider),
                Member::Provider(id),
            )
        }
    };
    let promoted = steps::promote(&added, rule, &new)?;
    let retired = steps::retire(&promoted, rule, &old)?;

    let roll_out = "install this configuration on every kube-apiserver and restart each one \
                    (or, with --encryption-provider-config-automatic-reload, wait until each has \
                    reloaded it); go on only when every server has it";
    let steps = vec![
        PlanStep {
            kind: StepKind::Add,
            action: format!(
                "add {new} in second place: every server can read what it writes, none writes with it yet; providers become {}",
                describe_providers(&added.resources[rule])
            ),
            config: Some(added),
            then: roll_out.to_owned(),
        },
        PlanStep {
            kind: StepKind::Promote,
            action: format!(
                "promote {new} to first place: it writes new values; providers become {}",
                describe_providers(&promoted.resources[rule])
            ),
            config: Some(promoted),
            then: format!(
                "{roll_out}. Until then some servers still write with {old}, which every server still reads"
            ),
        },
        PlanStep {
            kind: StepKind::Reencrypt,
            action: format!("rewrite every value still written by {old} with {new}"),
            config: None,
            then: "scan the store until it finds no stale value left".to_owned(),
        },
        PlanStep {
            kind: StepKind::Retire,
            action: format!(
                "retire {old}; providers become {}",
                describe_providers(&retired.resources[rule])
            ),
            config: Some(retired),
            then: format!(
                "{roll_out}. Keep the old key until every backup taken before the re-encryption has expired: restoring one needs it"
            ),
        },
    ];
    Ok(Plan {
        rule,
        old,
        new,
        steps,
    })
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Rotation of resources[{}]: {} -> {}",
            self.rule, self.old, self.new
        )?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "{}. {}: {}", i + 1, step.kind.as_str(), step.action)?;
            writeln!(f, "   then: {}", step.then)?;
        }
        Ok(())
    }
}

/// A rule's providers in one line: `aesgcm[key2 (writes), key1], identity`.
pub fn describe_providers(rule: &ResourceConfiguration) -> String {
    let mut parts = Vec::with_capacity(rule.providers.len());
    for (i, provider) in rule.providers.iter().enumerate() {
        let Some(id) = ProviderId::of(provider) else {
            parts.push("(none)".to_owned());
            continue;
        };
        let writes = |j: usize| if i == 0 && j == 0 { " (writes)" } else { "" };
        if id.has_keys() {
            let names: Vec<String> = provider
                .keys()
                .iter()
                .enumerate()
                .map(|(j, k)| format!("{}{}", k.name, writes(j)))
                .collect();
            parts.push(format!("{id}[{}]", names.join(", ")));
        } else {
            parts.push(format!("{id}{}", writes(0)));
        }
    }
    parts.join(", ")
}
