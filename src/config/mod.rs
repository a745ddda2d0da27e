//! The EncryptionConfiguration: parse it, validate it like kube-apiserver,
//! and build one [`Transformer`](crate::Transformer) per resource rule.
//!
//! Three stages, as the apiserver has them:
//!
//! 1. **Load** ([`EncryptionConfiguration::load`], [`from_slice`],
//!    [`from_yaml`], [`from_json`]): strict decoding into the types of this
//!    module, which mirror the file field for field, then the apiserver's
//!    defaults (KMS `apiVersion` `v1`, `timeout` 3s, v1 `cachesize` 1000).
//!    Unknown fields, duplicate keys and documents of another kind are
//!    errors. See [Loading](#loading) for the limits on hostile input.
//! 2. **Validate** ([`EncryptionConfiguration::validate`]): every rule of the
//!    apiserver's validation, every error at once, each with its field path
//!    and the apiserver's message ([`FieldError`]).
//! 3. **Build** ([`EncryptionConfiguration::build`], or
//!    [`build_with_kms`](EncryptionConfiguration::build_with_kms) with a
//!    [`KmsProviderFactory`] when the configuration has `kms` providers):
//!    validates, then makes the providers and maps every group-resource to
//!    its [`Transformer`](crate::Transformer) ([`ResourceTransformers`]).
//!
//! ```no_run
//! use k8s_envelope::config::EncryptionConfiguration;
//!
//! let config = EncryptionConfiguration::load("/etc/kubernetes/enc/config.yaml")?;
//! let transformers = config.build()?;
//! let secrets = transformers.for_resource("secrets");
//! let stored = secrets.encrypt_blocking(b"value", "/registry/secrets/default/a".into())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Loading
//!
//! Input is at most [`MAX_CONFIG_BYTES`]. JSON (starting with `{"` or `{}`)
//! is decoded by `serde_json`; anything else as YAML by `serde-saphyr`,
//! with duplicate keys rejected, a single document, a nesting limit of
//! [`MAX_DEPTH`] and alias limits ([`MAX_ALIASES`],
//! [`MAX_ALIAS_REPLAY_EVENTS`]) so that alias bombs and deep nesting fail
//! quickly with an error. An absent or `null` field is its zero value, as in
//! Go, and validation reports it.
//!
//! # Rendering
//!
//! [`EncryptionConfiguration::to_yaml`] writes a configuration back out as
//! YAML, in the original order of every list (rules, resources, providers,
//! keys), in a zeroized buffer; the [`rotation`](crate::rotation) steps use
//! it to hand back each new configuration. Comments, anchors and the order
//! of fields within a mapping are not kept, and the KMS defaults filled in by
//! loading are written out. The types also implement `serde::Serialize`
//! (with Kubernetes' field names) for other formats; the secret is then
//! serialized as its text into whatever the serializer writes, which this
//! crate does not zeroize.
//!
//! # Secrets in errors
//!
//! No error of this module contains a key's secret, in any form: validation
//! prints `"REDACTED"` where the apiserver prints a secret, parse errors of the
//! `secret` field say only "secret must be a string", and string values that
//! a parser would echo in a type error are replaced by `a string`. `Debug` of
//! [`Key`] and [`SecretString`] prints `REDACTED`.
//!
//! # Differences from kube-apiserver
//!
//! - YAML is YAML 1.2 (`serde-saphyr`), where the apiserver reads YAML 1.1
//!   through JSON. Scalars in string fields keep their text either way
//!   (`name: 0x1F` is the name `"0x1F"`), except that the apiserver turns a
//!   YAML 1.1 boolean such as `yes` into `"true"`.
//! - A `secret` written as a YAML number or boolean is "secret must be a
//!   string" here; the apiserver converts it to text, which can never be a
//!   valid key of 16, 24 or 32 bytes anyway.
//! - A rendered provider element in an error shows `"REDACTED"` for every
//!   secret (the apiserver prints the secret).
//! - Resources masked by an earlier rule are reported as validation errors
//!   (all of them, with the apiserver's wording), where the apiserver stops at
//!   the first one while building.
//! - KMS provider names are unique only among non-v1 providers, as the
//!   apiserver checks them without hot reload.
//!
//! [`from_slice`]: EncryptionConfiguration::from_slice
//! [`from_yaml`]: EncryptionConfiguration::from_yaml
//! [`from_json`]: EncryptionConfiguration::from_json

use std::fmt;
use std::path::PathBuf;

mod build;
mod duration;
mod field;
mod go_url;
mod gofmt;
mod load;
mod render;
mod resources;
mod types;
mod validate;

pub use self::build::{KmsProviderFactory, ResourceTransformers};
pub use self::duration::{GoDuration, ParseDurationError};
pub use self::field::{FieldError, FieldErrorKind, ValidationErrors};
pub(crate) use self::load::redact_strings;
pub use self::load::{MAX_ALIASES, MAX_ALIAS_REPLAY_EVENTS, MAX_CONFIG_BYTES, MAX_DEPTH};
pub use self::resources::GroupResource;
pub use self::types::{
    AesConfiguration, EncryptionConfiguration, IdentityConfiguration, Key, KmsConfiguration,
    ProviderConfiguration, ResourceConfiguration, SecretString, SecretboxConfiguration,
    API_VERSION, DEFAULT_KMS_API_VERSION, DEFAULT_KMS_CACHE_SIZE, DEFAULT_KMS_TIMEOUT, KIND,
    LEGACY_API_VERSION, LEGACY_KIND,
};
pub use self::validate::validate;

/// Loading, validating or building an EncryptionConfiguration failed.
///
/// No variant's message contains key material.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("error reading encryption provider configuration file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },

    /// The input has no bytes at all.
    #[error("encryption provider configuration file is empty")]
    Empty,

    /// The input is larger than [`MAX_CONFIG_BYTES`].
    #[error("encryption provider configuration is too large: {len} bytes, the limit is {limit}")]
    TooLarge {
        /// The input's size in bytes (for a file that is not a regular file,
        /// the number of bytes read before giving up).
        len: u64,
        /// The limit, [`MAX_CONFIG_BYTES`].
        limit: u64,
    },

    /// The input is not well-formed YAML or JSON, or does not fit the
    /// configuration's types (including unknown and duplicate fields).
    #[error("error decoding encryption provider configuration ({format}): {message}")]
    Parse {
        /// Which decoder failed.
        format: ConfigFormat,
        /// The decoder's message, with any string values removed.
        message: String,
    },

    /// The document is not an EncryptionConfiguration: its `kind` or
    /// `apiVersion` is missing or not one the apiserver accepts.
    #[error("{}", TypeDisplay { kind, api_version })]
    UnexpectedType {
        /// The document's `kind` (empty when missing).
        kind: String,
        /// The document's `apiVersion` (empty when missing).
        api_version: String,
    },

    /// Validation failed; every problem is listed.
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),

    /// A `kms` provider is configured, but the build had no way to reach a
    /// plugin. Use [`EncryptionConfiguration::build_with_kms`].
    #[error(
        "kms provider {name:?} needs a KMS plugin connection; build the configuration with \
         build_with_kms and a KmsProviderFactory"
    )]
    KmsUnavailable {
        /// The KMS provider's name.
        name: String,
    },

    /// A provider could not be made.
    #[error("{path}: {source}")]
    Provider {
        /// The provider's field path, e.g. `resources[0].providers[1]`.
        path: String,
        /// Why.
        source: Box<crate::Error>,
    },
}

/// The two input formats.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigFormat {
    /// YAML (serde-saphyr).
    Yaml,
    /// JSON (serde_json).
    Json,
}

impl fmt::Display for ConfigFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigFormat::Yaml => "YAML",
            ConfigFormat::Json => "JSON",
        })
    }
}

/// Renders an unexpected type the way the apiserver's decoder reports it.
struct TypeDisplay<'a> {
    kind: &'a str,
    api_version: &'a str,
}

impl fmt::Display for TypeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.is_empty() {
            return f.write_str("Object 'Kind' is missing in encryption provider configuration");
        }
        if self.api_version.is_empty() {
            return f
                .write_str("Object 'apiVersion' is missing in encryption provider configuration");
        }
        // Go's GroupVersionKind.String(): "group/version, Kind=kind".
        let (group, version) = self
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", self.api_version));
        write!(
            f,
            "got unexpected config type: {group}/{version}, Kind={}",
            self.kind
        )
    }
}
