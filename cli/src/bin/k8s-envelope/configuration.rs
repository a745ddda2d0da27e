//! The one place the CLI reads an EncryptionConfiguration and builds it:
//! every command that takes `--config` (or a config argument) comes here, so
//! each reports a bad file the same way, with its path, exit status 2.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use k8s_envelope::kms::GrpcKmsFactory;
use k8s_envelope::{EncryptionConfiguration, ResourceTransformers};

use crate::failure::Failure;

/// Parses a configuration file, without validating it (`validate` and
/// `lint` report its validation errors one by one).
pub fn read(path: &Path) -> Result<EncryptionConfiguration, Failure> {
    EncryptionConfiguration::load(path).map_err(|e| config_failure(path, &e))
}

/// Parses and validates a configuration file.
pub fn load(path: &Path) -> Result<EncryptionConfiguration, Failure> {
    let config = read(path)?;
    config.validate().map_err(|e| config_failure(path, &e))?;
    Ok(config)
}

/// A configuration built inside a runtime, with its KMS plugins connected.
pub struct Built {
    /// The transformer of every resource.
    pub transformers: Arc<ResourceTransformers>,
    /// The KMS providers' factory, to ask a v2 provider for its key ID.
    pub kms: GrpcKmsFactory,
}

/// Whether the KMS v2 providers keep polling their plugins.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StatusLoops {
    /// For as long as the runtime runs: a long walk outlives the 3-minute
    /// write key (needs a multi-threaded runtime, which runs the loops).
    Run,
    /// No: one value or a few, at once.
    None,
}

/// Builds `config` (read from `path`) inside `runtime`: KMS providers
/// connect to their plugins and fetch a write key now; a plugin that does
/// not answer is reported on stderr, and the values that need it fail one
/// by one.
pub fn build(
    config: &EncryptionConfiguration,
    path: &Path,
    runtime: &tokio::runtime::Runtime,
    loops: StatusLoops,
) -> Result<Built, Failure> {
    let kms = GrpcKmsFactory::new();
    let transformers = runtime
        .block_on(async { config.build_with_kms(&kms) })
        .map_err(|e| config_failure(path, &e))?;
    if let Err(e) = runtime.block_on(kms.refresh_all()) {
        warn_once(&e.to_string());
    }
    if loops == StatusLoops::Run {
        for provider in kms.v2_providers() {
            runtime.spawn(provider.run_status_loop());
        }
    }
    Ok(Built {
        transformers: Arc::new(transformers),
        kms,
    })
}

/// [`load`] then [`build`], with the status loops: what a command that
/// walks a store needs.
pub fn load_and_build(
    path: &Path,
    runtime: &tokio::runtime::Runtime,
) -> Result<Arc<ResourceTransformers>, Failure> {
    let config = load(path)?;
    Ok(build(&config, path, runtime, StatusLoops::Run)?.transformers)
}

/// Prints a warning on stderr, once per run: a command that builds the same
/// configuration twice (`fingerprint --self-test` reads it again from disk)
/// says what is wrong with it once.
fn warn_once(message: &str) {
    static WARNED: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if warned.insert(message.to_owned()) {
        eprintln!("k8s-envelope: warning: {message}");
    }
}

fn config_failure(path: &Path, e: &dyn std::fmt::Display) -> Failure {
    Failure::usage(format!("{}: {e}", path.display()))
}
