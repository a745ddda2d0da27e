//! Building KMS providers from an EncryptionConfiguration: one gRPC client
//! per provider, on the endpoint and with the timeout the config names.

use std::sync::{Arc, Mutex};

use crate::config::{KmsConfiguration, KmsProviderFactory};
use crate::kms::{
    GrpcClient, KmsEndpoint, KmsV1Options, KmsV1Provider, KmsV2Options, KmsV2Provider,
    DEFAULT_TIMEOUT,
};
use crate::{Error, Provider};

/// The default [`KmsProviderFactory`]: KMS providers that talk gRPC to the
/// plugin at each provider's `endpoint`.
///
/// KMS v2 providers need a good status from their plugin before they can
/// read or write; call [`refresh_all`](Self::refresh_all) once after the
/// build, and spawn each provider's
/// [`run_status_loop`](KmsV2Provider::run_status_loop) in a long-running
/// service.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use k8s_envelope::kms::GrpcKmsFactory;
/// use k8s_envelope::EncryptionConfiguration;
///
/// let kms = GrpcKmsFactory::new();
/// let transformers = EncryptionConfiguration::load("/etc/kubernetes/enc.yaml")?
///     .build_with_kms(&kms)?;
/// kms.refresh_all().await?;
/// for provider in kms.v2_providers() {
///     tokio::spawn(provider.run_status_loop());
/// }
/// let secrets = transformers.for_resource("secrets");
/// let stored = secrets.encrypt(b"value", "/registry/secrets/ns/name".into()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct GrpcKmsFactory {
    v2_options: KmsV2Options,
    v2_providers: Mutex<Vec<KmsV2Provider>>,
}

impl GrpcKmsFactory {
    /// A factory with the apiserver's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// A factory whose KMS v2 providers use `options` (write mode, cache
    /// limits, clock).
    pub fn with_v2_options(options: KmsV2Options) -> Self {
        Self {
            v2_options: options,
            v2_providers: Mutex::default(),
        }
    }

    /// The KMS v2 providers built so far.
    pub fn v2_providers(&self) -> Vec<KmsV2Provider> {
        self.v2_providers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Refreshes every KMS v2 provider built so far (status, and a write key
    /// for the current key ID).
    ///
    /// # Errors
    ///
    /// The failures of every provider that could not be refreshed.
    pub async fn refresh_all(&self) -> Result<(), Error> {
        let mut errors = Vec::new();
        for provider in self.v2_providers() {
            if let Err(e) = provider.refresh().await {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::from_list(errors))
        }
    }

    fn client(config: &KmsConfiguration) -> Result<Arc<GrpcClient>, Error> {
        let endpoint = KmsEndpoint::parse(&config.endpoint)?;
        let timeout = config
            .timeout
            .and_then(|t| t.to_std())
            .unwrap_or(DEFAULT_TIMEOUT);
        Ok(Arc::new(GrpcClient::new(endpoint, timeout)))
    }
}

impl KmsProviderFactory for GrpcKmsFactory {
    fn kms_v1(&self, config: &KmsConfiguration) -> Result<Arc<dyn Provider>, Error> {
        let options = config
            .cachesize
            .map_or_else(KmsV1Options::default, KmsV1Options::from_cache_size);
        let provider = KmsV1Provider::new(&config.name, Self::client(config)?, options)?;
        Ok(Arc::new(provider))
    }

    fn kms_v2(&self, config: &KmsConfiguration) -> Result<Arc<dyn Provider>, Error> {
        let provider =
            KmsV2Provider::new(&config.name, Self::client(config)?, self.v2_options.clone())?;
        self.v2_providers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(provider.clone());
        Ok(Arc::new(provider))
    }
}
