//! Turning a validated configuration into one [`Transformer`] per
//! group-resource.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::resources::lookup_order;
use super::types::{Key, KmsConfiguration, ProviderConfiguration};
use super::{ConfigError, EncryptionConfiguration, GroupResource};
use crate::keys::NamedKey;
use crate::providers::{AesCbc, AesGcm, Identity, Secretbox};
use crate::KmsApiVersion;
use crate::{Error, Provider, ProviderKind, Transformer};

/// Makes KMS providers for [`EncryptionConfiguration::build_with_kms`].
///
/// The config module knows how KMS providers are configured, not how to reach
/// a plugin; the factory does. It receives each `kms` element with the
/// defaults applied (`apiVersion`, `timeout` and, for v1, `cachesize` set),
/// already validated.
pub trait KmsProviderFactory: Send + Sync {
    /// Makes a KMS v1 provider (prefix `k8s:enc:kms:v1:<name>:`).
    ///
    /// # Errors
    ///
    /// Whatever keeps the provider from being made; the build fails with it.
    fn kms_v1(&self, config: &KmsConfiguration) -> Result<Arc<dyn Provider>, Error>;

    /// Makes a KMS v2 provider (prefix `k8s:enc:kms:v2:<name>:`).
    ///
    /// # Errors
    ///
    /// Whatever keeps the provider from being made; the build fails with it.
    fn kms_v2(&self, config: &KmsConfiguration) -> Result<Arc<dyn Provider>, Error>;
}

impl EncryptionConfiguration {
    /// Validates the configuration and builds its transformers, for a
    /// configuration without KMS providers.
    ///
    /// ```
    /// use k8s_envelope::config::EncryptionConfiguration;
    ///
    /// let config = EncryptionConfiguration::from_yaml(br#"
    /// kind: EncryptionConfiguration
    /// apiVersion: apiserver.config.k8s.io/v1
    /// resources:
    ///   - resources: [secrets, "*.apps"]
    ///     providers:
    ///       - aescbc:
    ///           keys:
    ///             - name: key1
    ///               secret: c2VjcmV0IGlzIHNlY3VyZQ==
    /// "#)?;
    /// let transformers = config.build()?;
    /// let stored = transformers
    ///     .for_resource("deployments.apps")
    ///     .encrypt_blocking(b"spec", "/registry/deployments/default/web".into())?;
    /// assert!(stored.starts_with(b"k8s:enc:aescbc:v1:key1:"));
    /// // No rule covers configmaps: they are stored as they are.
    /// let plain = transformers
    ///     .for_resource("configmaps")
    ///     .encrypt_blocking(b"data", "/registry/configmaps/default/c".into())?;
    /// assert_eq!(plain, b"data");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when validation fails,
    /// [`ConfigError::KmsUnavailable`] when a `kms` provider is configured (use
    /// [`build_with_kms`](Self::build_with_kms)), [`ConfigError::Provider`]
    /// when a provider cannot be made.
    pub fn build(&self) -> Result<ResourceTransformers, ConfigError> {
        self.build_inner(None)
    }

    /// Validates the configuration and builds its transformers, making KMS
    /// providers with `kms`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when validation fails,
    /// [`ConfigError::Provider`] when a provider (including one from the
    /// factory) cannot be made.
    pub fn build_with_kms(
        &self,
        kms: &dyn KmsProviderFactory,
    ) -> Result<ResourceTransformers, ConfigError> {
        self.build_inner(Some(kms))
    }

    fn build_inner(
        &self,
        kms: Option<&dyn KmsProviderFactory>,
    ) -> Result<ResourceTransformers, ConfigError> {
        self.validate()?;
        // Providers per group-resource, in rule order: a resource listed in
        // two rules gets both lists, one after the other, as the apiserver
        // does.
        let mut lists: BTreeMap<GroupResource, Vec<Arc<dyn Provider>>> = BTreeMap::new();
        for (i, rule) in self.resources.iter().enumerate() {
            let mut providers = Vec::with_capacity(rule.providers.len());
            for (j, provider) in rule.providers.iter().enumerate() {
                let made = make_provider(provider, kms).map_err(|e| match e {
                    ProviderNotBuilt::Unavailable(name) => ConfigError::KmsUnavailable { name },
                    ProviderNotBuilt::Failed(source) => ConfigError::Provider {
                        path: format!("resources[{i}].providers[{j}]"),
                        source: Box::new(source),
                    },
                })?;
                providers.push(made);
            }
            for resource in &rule.resources {
                lists
                    .entry(GroupResource::parse(resource))
                    .or_default()
                    .extend(providers.iter().cloned());
            }
        }

        let mut groups: BTreeMap<String, BTreeMap<String, Transformer>> = BTreeMap::new();
        for (gr, providers) in lists {
            let transformer =
                Transformer::new(providers).map_err(|source| ConfigError::Provider {
                    path: format!("resources (for {gr})"),
                    source: Box::new(source),
                })?;
            groups
                .entry(gr.group)
                .or_default()
                .insert(gr.resource, transformer);
        }
        Ok(ResourceTransformers {
            groups,
            fallback: Transformer::identity(),
        })
    }
}

/// Why a provider of the configuration was not built.
enum ProviderNotBuilt {
    /// A KMS provider, but no factory (holds the provider's name).
    Unavailable(String),
    /// The constructor or factory failed.
    Failed(Error),
}

impl From<Error> for ProviderNotBuilt {
    fn from(e: Error) -> Self {
        ProviderNotBuilt::Failed(e)
    }
}

fn make_provider(
    p: &ProviderConfiguration,
    kms: Option<&dyn KmsProviderFactory>,
) -> Result<Arc<dyn Provider>, ProviderNotBuilt> {
    // Validation has made sure exactly one is set; `kind` reads them in
    // the apiserver's order.
    let kind = p.kind();
    let keys = || named_keys(p.keys(), kind.unwrap_or(ProviderKind::Custom));
    match (kind, &p.kms) {
        (Some(ProviderKind::AesGcm), _) => Ok(Arc::new(AesGcm::new(keys()?)?)),
        (Some(ProviderKind::AesCbc), _) => Ok(Arc::new(AesCbc::new(keys()?)?)),
        (Some(ProviderKind::Secretbox), _) => Ok(Arc::new(Secretbox::new(keys()?)?)),
        (Some(kind @ ProviderKind::Kms(_)), Some(config)) => {
            let config = config.with_defaults();
            let Some(factory) = kms else {
                return Err(ProviderNotBuilt::Unavailable(config.name));
            };
            Ok(if kind == ProviderKind::Kms(KmsApiVersion::V2) {
                factory.kms_v2(&config)?
            } else {
                factory.kms_v1(&config)?
            })
        }
        _ => Ok(Arc::new(Identity::new())),
    }
}

/// Decodes the keys (validation has checked them; this cannot fail on a
/// validated configuration).
fn named_keys(keys: &[Key], provider: ProviderKind) -> Result<Vec<NamedKey>, Error> {
    keys.iter()
        .map(|k| {
            let secret = k.secret.decode().map_err(|e| Error::InvalidKey {
                provider,
                name: k.name.clone(),
                reason: e.to_string(),
            })?;
            Ok(NamedKey::new(k.name.clone(), secret))
        })
        .collect()
}

/// The transformers of a configuration, one per group-resource of its rules.
///
/// Built by [`EncryptionConfiguration::build`]. Look one up with
/// [`for_resource`](Self::for_resource); resources that no rule covers get an
/// identity-only transformer, as in the apiserver.
#[derive(Clone)]
pub struct ResourceTransformers {
    /// group -> resource -> transformer, so lookups need no allocation.
    groups: BTreeMap<String, BTreeMap<String, Transformer>>,
    fallback: Transformer,
}

impl ResourceTransformers {
    /// The transformer for a resource given as a rule would name it
    /// (`secrets`, `deployments.apps`; see [`GroupResource::parse`]).
    ///
    /// The lookup is the apiserver's: the exact group-resource, else the
    /// group's `*.group` rule (`*.` for the core group), else `*.*`, else an
    /// identity-only transformer that stores plaintext and refuses to read
    /// encrypted values.
    pub fn for_resource(&self, resource: &str) -> &Transformer {
        let (group, resource) = match resource.split_once('.') {
            Some((resource, group)) => (group, resource),
            None => ("", resource),
        };
        self.lookup(group, resource)
    }

    /// The transformer for a group-resource; see
    /// [`for_resource`](Self::for_resource).
    pub fn for_group_resource(&self, gr: &GroupResource) -> &Transformer {
        self.lookup(&gr.group, &gr.resource)
    }

    fn lookup(&self, group: &str, resource: &str) -> &Transformer {
        lookup_order(group, resource)
            .into_iter()
            .find_map(|(group, resource)| self.get(group, resource))
            .unwrap_or(&self.fallback)
    }

    fn get(&self, group: &str, resource: &str) -> Option<&Transformer> {
        self.groups.get(group)?.get(resource)
    }

    /// Whether a rule covers the resource (exactly or through a wildcard).
    pub fn covers(&self, resource: &str) -> bool {
        !std::ptr::eq(self.for_resource(resource), &self.fallback)
    }

    /// Every group-resource named by a rule, with its transformer, sorted by
    /// group then resource.
    pub fn iter(&self) -> impl Iterator<Item = (GroupResource, &Transformer)> + '_ {
        self.groups.iter().flat_map(|(group, resources)| {
            resources
                .iter()
                .map(move |(resource, t)| (GroupResource::new(group.clone(), resource.clone()), t))
        })
    }
}

impl fmt::Debug for ResourceTransformers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<String> = self.iter().map(|(gr, _)| gr.to_string()).collect();
        f.debug_struct("ResourceTransformers")
            .field("resources", &rules)
            .finish_non_exhaustive()
    }
}
