//! Hot reload of an EncryptionConfiguration file, as kube-apiserver does it
//! with `--encryption-provider-config-automatic-reload`.
//!
//! [`ReloadingTransformers`] serves one [`LoadedConfig`] at a time. A check
//! ([`check`](ReloadingTransformers::check), or the loop
//! [`run`](ReloadingTransformers::run)) reads the file; when its content hash
//! changed, the new file is parsed, validated and built (KMS providers
//! connected and given a write key) before anything is swapped. The swap is
//! one atomic pointer store: readers never block and never see a half-built
//! set. An invalid file leaves the old set serving and is reported by
//! [`last_error`](ReloadingTransformers::last_error). The old set is dropped
//! (closing its KMS connections and status loops) after a grace period, so
//! requests in flight finish on it.
//!
//! ```no_run
//! # async fn run() -> Result<(), k8s_envelope::Error> {
//! use std::time::Duration;
//! use k8s_envelope::reload::{ReloadOptions, ReloadingTransformers};
//!
//! let reloading = ReloadingTransformers::open("/etc/kubernetes/enc.yaml", ReloadOptions::default()).await?;
//! tokio::spawn(reloading.clone().run(Duration::from_secs(60)));
//!
//! // Per request: take the current set.
//! let set = reloading.current();
//! let stored = set.transformers().for_resource("secrets")
//!     .encrypt(b"value", "/registry/secrets/ns/a".into()).await?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::config::{ConfigError, EncryptionConfiguration, MAX_CONFIG_BYTES};
use crate::fingerprint::config_hash;
use crate::kms::{GrpcKmsFactory, KmsV2Options};
use crate::{Error, ResourceTransformers};

/// How a [`ReloadingTransformers`] builds and retires transformer sets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReloadOptions {
    /// How long a replaced set stays alive for requests in flight before its
    /// KMS connections are closed. Default: 1 minute.
    pub grace_period: Duration,
    /// Options of the KMS v2 providers of each set.
    pub kms_v2: KmsV2Options,
}

impl ReloadOptions {
    /// These options with another `grace_period`: how long a replaced set stays alive for requests in flight before its KMS connections are closed.
    pub fn with_grace_period(mut self, grace_period: Duration) -> Self {
        self.grace_period = grace_period;
        self
    }

    /// These options with another `kms_v2`: options of the KMS v2 providers of each set.
    pub fn with_kms_v2(mut self, kms_v2: KmsV2Options) -> Self {
        self.kms_v2 = kms_v2;
        self
    }
}

impl Default for ReloadOptions {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(60),
            kms_v2: KmsV2Options::default(),
        }
    }
}

/// One built configuration.
#[derive(Debug)]
pub struct LoadedConfig {
    hash: String,
    config: EncryptionConfiguration,
    transformers: ResourceTransformers,
    kms: GrpcKmsFactory,
    status_loops: Vec<tokio::task::JoinHandle<()>>,
}

impl LoadedConfig {
    /// `sha256:<hex>` of the file this set was built from (the apiserver's
    /// reload hash).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The configuration.
    pub fn config(&self) -> &EncryptionConfiguration {
        &self.config
    }

    /// The transformers.
    pub fn transformers(&self) -> &ResourceTransformers {
        &self.transformers
    }

    /// The KMS providers of this set.
    pub fn kms(&self) -> &GrpcKmsFactory {
        &self.kms
    }
}

impl Drop for LoadedConfig {
    fn drop(&mut self) {
        for task in &self.status_loops {
            task.abort();
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadOutcome {
    /// The file's content is what is being served.
    Unchanged,
    /// A new set is being served; its hash.
    Reloaded(String),
}

/// A transformer set that follows its configuration file. Cheap to clone.
#[derive(Clone)]
pub struct ReloadingTransformers {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    options: ReloadOptions,
    current: arc_swap::ArcSwap<LoadedConfig>,
    last_error: Mutex<Option<Arc<Error>>>,
    /// One check at a time.
    check_lock: tokio::sync::Mutex<()>,
}

impl ReloadingTransformers {
    /// Loads and builds `path`. Must run inside a Tokio runtime (KMS status
    /// loops are spawned on it).
    ///
    /// # Errors
    ///
    /// The file cannot be read, parsed, validated or built, or a KMS v2
    /// plugin gave no good status.
    pub async fn open(path: impl AsRef<Path>, options: ReloadOptions) -> Result<Self, Error> {
        let path = path.as_ref().to_owned();
        let loaded = load(&path, &options).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                options,
                current: arc_swap::ArcSwap::from_pointee(loaded),
                last_error: Mutex::new(None),
                check_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The set being served. Hold it for the length of one request.
    pub fn current(&self) -> Arc<LoadedConfig> {
        self.inner.current.load_full()
    }

    /// Why the last check did not reload, if it failed: the same error
    /// [`check`](Self::check) returned (it holds no key material).
    pub fn last_error(&self) -> Option<Arc<Error>> {
        self.inner
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the file and swaps in a new set if its content changed and it
    /// builds.
    ///
    /// # Errors
    ///
    /// The changed file is unreadable, invalid or does not build; the old set
    /// keeps serving and the error is also kept for
    /// [`last_error`](Self::last_error) (shared, hence the `Arc`).
    pub async fn check(&self) -> Result<ReloadOutcome, Arc<Error>> {
        let inner = &self.inner;
        let _one_at_a_time = inner.check_lock.lock().await;
        let result = self.reload_if_changed().await.map_err(Arc::new);
        *inner.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
            result.as_ref().err().cloned();
        result
    }

    async fn reload_if_changed(&self) -> Result<ReloadOutcome, Error> {
        let inner = &self.inner;
        let bytes = read_config(&inner.path)?;
        if config_hash(&bytes) == inner.current.load().hash {
            return Ok(ReloadOutcome::Unchanged);
        }
        let loaded = build(bytes, &inner.options).await?;
        let hash = loaded.hash.clone();
        let old = inner.current.swap(Arc::new(loaded));
        let grace = inner.options.grace_period;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            drop(old);
        });
        Ok(ReloadOutcome::Reloaded(hash))
    }

    /// Checks every `interval`, forever; failures are kept for
    /// [`last_error`](Self::last_error). Spawn it.
    pub async fn run(self, interval: Duration) {
        loop {
            tokio::time::sleep(interval).await;
            let _ = self.check().await;
        }
    }
}

impl std::fmt::Debug for ReloadingTransformers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingTransformers")
            .field("path", &self.inner.path)
            .field("hash", &self.inner.current.load().hash)
            .finish_non_exhaustive()
    }
}

/// The file's bytes (which hold key material: zeroized when dropped).
fn read_config(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    use std::io::Read as _;
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // Sized up front from the file's length (as `Config::load` does):
    // growing the buffer would leave copies of the keys behind.
    let expected = file.metadata().map_or(0, |m| m.len());
    let capacity =
        usize::try_from(expected).map_or(MAX_CONFIG_BYTES, |len| len.min(MAX_CONFIG_BYTES));
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity + 1));
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            len: bytes.len() as u64,
            limit: MAX_CONFIG_BYTES as u64,
        }
        .into());
    }
    Ok(bytes)
}

async fn load(path: &Path, options: &ReloadOptions) -> Result<LoadedConfig, Error> {
    build(read_config(path)?, options).await
}

/// Parses, validates and builds one file's bytes, with KMS providers ready.
async fn build(bytes: Zeroizing<Vec<u8>>, options: &ReloadOptions) -> Result<LoadedConfig, Error> {
    let hash = config_hash(&bytes);
    let config = EncryptionConfiguration::from_slice(&bytes)?;
    drop(bytes);
    let kms = GrpcKmsFactory::with_v2_options(options.kms_v2.clone());
    let transformers = config.build_with_kms(&kms)?;
    kms.refresh_all().await?;
    let status_loops = kms
        .v2_providers()
        .into_iter()
        .map(|provider| tokio::spawn(provider.run_status_loop()))
        .collect();
    Ok(LoadedConfig {
        hash,
        config,
        transformers,
        kms,
        status_loops,
    })
}
