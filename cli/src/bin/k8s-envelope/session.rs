//! A loaded configuration, ready to transform values: the transformers, and
//! the runtime and plugin connections that its KMS providers need.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use k8s_envelope::kms::GrpcKmsFactory;
use k8s_envelope::rotation::rule_for_resource;
use k8s_envelope::{Decrypted, EncryptionConfiguration, Error, ResourceTransformers};

use crate::configuration::{self, Built, StatusLoops};
use crate::failure::Failure;

/// Transforms values with one configuration.
pub struct Session {
    config: EncryptionConfiguration,
    transformers: Arc<ResourceTransformers>,
    kms: GrpcKmsFactory,
    runtime: Arc<tokio::runtime::Runtime>,
    /// Whether a write may go out in plaintext (identity as the writer).
    allow_plaintext: bool,
}

/// Why a value was not transformed.
#[derive(Debug)]
pub enum TransformFailure {
    /// The library's error.
    Transform(Error),
    /// The write would have stored plaintext, and `--allow-plaintext` was
    /// not given: why, with the rules that exist.
    Plaintext(String),
}

impl fmt::Display for TransformFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransformFailure::Transform(e) => e.fmt(f),
            TransformFailure::Plaintext(why) => f.write_str(why),
        }
    }
}

impl From<Error> for TransformFailure {
    fn from(e: Error) -> Self {
        TransformFailure::Transform(e)
    }
}

impl Session {
    /// Loads, validates and builds `path`. KMS providers connect to their
    /// plugins and fetch a write key now; a plugin that does not answer is
    /// reported on stderr, and the values that need it fail one by one.
    pub fn open(path: &Path) -> Result<Self, Failure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::usage(format!("starting the async runtime: {e}")))?;
        Self::open_on(path, Arc::new(runtime))
    }

    /// [`open`](Self::open) on an existing runtime: sessions that are used
    /// together must share one, since a plugin connection belongs to the
    /// runtime that made it.
    pub fn open_on(path: &Path, runtime: Arc<tokio::runtime::Runtime>) -> Result<Self, Failure> {
        let config = configuration::read(path)?;
        let Built { transformers, kms } =
            configuration::build(&config, path, &runtime, StatusLoops::None)?;
        Ok(Self {
            config,
            transformers,
            kms,
            runtime,
            allow_plaintext: false,
        })
    }

    /// Lets writes go out in plaintext when the configuration says so
    /// (`--allow-plaintext`); by default they are refused.
    pub fn allow_plaintext(mut self, allow: bool) -> Self {
        self.allow_plaintext = allow;
        self
    }

    /// Refuses a write of `resource` that would be stored in plaintext: a
    /// resource no rule covers (a typo such as `secret` or `Secrets`), or a
    /// rule whose first provider is identity. The library keeps the
    /// apiserver's behaviour; refusing is the CLI's contract.
    fn refuse_plaintext(&self, resource: &str) -> Result<(), TransformFailure> {
        if self.allow_plaintext || !self.transformers.for_resource(resource).writes_plaintext() {
            return Ok(());
        }
        let why = match rule_for_resource(&self.config, resource) {
            Some(rule) => format!(
                "resources[{rule}] ({}) writes with identity",
                self.config.resources[rule].resources.join(", ")
            ),
            None => "no resource rule covers it".to_owned(),
        };
        let rules: Vec<String> = self
            .config
            .resources
            .iter()
            .enumerate()
            .map(|(i, rule)| format!("resources[{i}]: {}", rule.resources.join(", ")))
            .collect();
        Err(TransformFailure::Plaintext(format!(
            "refusing to write {resource:?} in plaintext: {why} (the rules: {}); \
             check the resource's spelling, put an encrypting provider first, or pass \
             --allow-plaintext to write it anyway",
            rules.join("; ")
        )))
    }

    /// The configuration as loaded.
    pub fn config(&self) -> &EncryptionConfiguration {
        &self.config
    }

    /// The built transformers.
    pub fn transformers(&self) -> &ResourceTransformers {
        &self.transformers
    }

    /// The runtime the KMS providers run on.
    pub fn runtime(&self) -> &Arc<tokio::runtime::Runtime> {
        &self.runtime
    }

    /// The current key-ID hash of the KMS v2 provider `name`.
    pub fn kms_key_id_hash(&self, name: &str) -> Option<String> {
        self.kms
            .v2_providers()
            .into_iter()
            .find(|p| p.name() == name)
            .and_then(|p| p.health().key_id_hash)
    }

    /// Encrypts with the first provider of `resource`.
    pub fn encrypt(
        &self,
        resource: &str,
        storage_key: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, TransformFailure> {
        self.refuse_plaintext(resource)?;
        let transformer = self.transformers.for_resource(resource);
        Ok(self
            .runtime
            .block_on(transformer.encrypt(plaintext, storage_key.into()))?)
    }

    /// Decrypts with whichever provider of `resource` matches.
    pub fn decrypt(
        &self,
        resource: &str,
        storage_key: &str,
        stored: &[u8],
    ) -> Result<Decrypted, Error> {
        let transformer = self.transformers.for_resource(resource);
        self.runtime
            .block_on(transformer.decrypt(stored, storage_key.into()))
    }
}
