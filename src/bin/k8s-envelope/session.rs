//! A loaded configuration, ready to transform values: the transformers, and
//! the runtime and plugin connections that its KMS providers need.

use std::path::Path;

use k8s_envelope::kms::GrpcKmsFactory;
use k8s_envelope::{Decrypted, EncryptionConfiguration, Error, ResourceTransformers};

use crate::cli::Failure;

/// Transforms values with one configuration.
pub struct Session {
    transformers: ResourceTransformers,
    runtime: tokio::runtime::Runtime,
}

impl Session {
    /// Loads, validates and builds `path`. KMS providers connect to their
    /// plugins and fetch a write key now; a plugin that does not answer is
    /// reported on stderr, and the values that need it fail one by one.
    pub fn open(path: &Path) -> Result<Self, Failure> {
        let config_failure =
            |e: &dyn std::fmt::Display| Failure::usage(format!("{}: {e}", path.display()));
        let config = EncryptionConfiguration::load(path).map_err(|e| config_failure(&e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::usage(format!("starting the async runtime: {e}")))?;
        let kms = GrpcKmsFactory::new();
        let transformers = runtime
            .block_on(async { config.build_with_kms(&kms) })
            .map_err(|e| config_failure(&e))?;
        if let Err(e) = runtime.block_on(kms.refresh_all()) {
            eprintln!("k8s-envelope: warning: {e}");
        }
        Ok(Self {
            transformers,
            runtime,
        })
    }

    /// Encrypts with the first provider of `resource`.
    pub fn encrypt(
        &self,
        resource: &str,
        storage_key: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let transformer = self.transformers.for_resource(resource);
        self.runtime
            .block_on(transformer.encrypt(plaintext, storage_key.into()))
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
