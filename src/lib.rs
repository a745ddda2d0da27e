//! Envelope encryption of secret payloads, byte-compatible with Kubernetes'
//! encryption at rest.
//!
//! Load the same `EncryptionConfiguration` a kube-apiserver uses, and read and
//! write values exactly as it would:
//!
//! ```
//! use k8s_envelope::EncryptionConfiguration;
//!
//! let config = EncryptionConfiguration::from_yaml(br#"
//! kind: EncryptionConfiguration
//! apiVersion: apiserver.config.k8s.io/v1
//! resources:
//!   - resources: [secrets]
//!     providers:
//!       - aesgcm:
//!           keys:
//!             - name: key1
//!               secret: c2VjcmV0IGlzIHNlY3VyZQ==
//!       - identity: {}
//! "#)?;
//! let transformers = config.build()?;
//! let secrets = transformers.for_resource("secrets");
//! // A resource no rule encrypts (a typo such as "secret") is stored in
//! // plaintext, as kube-apiserver stores it: check before trusting a write.
//! assert!(!secrets.writes_plaintext());
//!
//! let key = "/registry/secrets/default/db-creds".into();
//! let stored = secrets.encrypt_blocking(b"password", key)?;
//! assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
//!
//! let read = secrets.decrypt_blocking(&stored, key)?;
//! assert_eq!(read.plaintext, b"password");
//! assert!(!read.stale);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Overview
//!
//! - [`EncryptionConfiguration`] parses (YAML or JSON) and validates a config
//!   with the apiserver's rules and field-path messages, and builds one
//!   [`Transformer`] per resource rule ([`ResourceTransformers`]).
//! - A [`Transformer`] is an ordered list of [`Provider`]s: it writes with the
//!   first and reads with whichever prefix matches, reporting `stale` when the
//!   value should be rewritten.
//! - Providers: [`Identity`], [`AesCbc`], [`AesGcm`], [`Secretbox`], and in
//!   [`kms`] the KMS v1 and v2 envelope providers, which talk to a KMS plugin
//!   over gRPC on a unix socket (`kms::GrpcKmsFactory` builds them from a
//!   config, feature `grpc`); implement [`Provider`] for your own.
//! - The plugin side is the `k8s-envelope-kms-plugin` crate: a kit that
//!   turns a key-encryption key into a KMS plugin, and `kms-check`; the
//!   `kms-plugin-local` binary serves a KEK kept in a local file.
//! - [`rotation`] rotates keys safely (add, promote, re-encrypt, retire, as
//!   pure functions on a configuration), scans a store for stale values, and
//!   re-encrypts them without losing a concurrent write; [`store`] reaches
//!   etcd v3 (plain, TLS or mTLS; feature `etcd`), an `etcdctl -w json`
//!   dump, or an etcd snapshot file read offline (`snapshot`, feature
//!   `snapshot`; also re-keyed into a new snapshot).
//! - `object` (feature `objects`) decodes what the apiserver stores (the
//!   `k8s\0` protobuf envelope, JSON, CBOR recognised): Secrets and
//!   ConfigMaps to exactly the JSON the API serves, the metadata of every
//!   other built-in kind.
//! - The provider trait is async (KMS needs network I/O). Static-key providers
//!   also implement [`BlockingProvider`], and [`Transformer::encrypt_blocking`]
//!   / [`Transformer::decrypt_blocking`] work without any async runtime.
//!
//! # Untrusted input
//!
//! Stored values, configuration files and KMS plugin answers are treated as
//! hostile: malformed input gives an [`Error`], never a panic, and memory is
//! bounded by the input, not by lengths written inside it. Errors, `Debug`
//! and `Display` never contain key material or plaintext; key bytes live in
//! [`SecretKey`], which is zeroized on drop.
//!
//! - Sizes: a [`Transformer`] reads stored values of at most
//!   [`MAX_STORED_VALUE_LEN`] (16 MiB) and writes plaintexts of at most
//!   [`MAX_PLAINTEXT_LEN`]; a configuration has at most
//!   [`config::MAX_CONFIG_BYTES`]; a plugin message at most
//!   [`kms::MAX_MESSAGE_SIZE`](kms#untrusted-plugin-answers).
//! - Lengths inside values (the KMS v1 DEK length, protobuf lengths of the
//!   KMS v2 `EncryptedObject`) are checked against the bytes present before
//!   anything is sliced or allocated.
//! - YAML aliases, anchors and nesting have budgets (see [`config`]); JSON
//!   nesting stops at 128 levels. A plugin that never answers is cut off by
//!   the provider's timeout.
//! - Fuzzing: `fuzz/` holds libFuzzer targets for the configuration parser
//!   (and its validation blown up to thousands of resources, so that work
//!   growing faster than the input shows), the read path over every
//!   provider, write-then-read through the static-key providers, the KMS v1
//!   and v2 envelope parsers, the CLI's JSON Lines parser, the etcd dump and
//!   snapshot readers and the object decoder. CI runs each
//!   of them with AddressSanitizer, and every input that ever broke one is
//!   replayed by `tests/integration/fuzz_regressions.rs`.
//!
//! # Feature flags
//!
//! Without default features the crate is the core a library needs and
//! nothing more: configuration (parse, validate, render), the static-key
//! providers, the transformer, the KMS v1 and v2 envelope formats with their
//! providers and state machine over the service traits
//! ([`kms::KmsServiceV1`], [`kms::KmsServiceV2`]; bring your own transport),
//! rotation steps, the scan and re-encryption drivers over the [`Store`
//! trait](store::Store), and the dump store. It pulls in RustCrypto, serde
//! and small async helpers (`futures-util`, `futures-timer`), no async
//! runtime and no gRPC or TLS stack: about 80 crates in all.
//!
//! | feature | default | adds | pulls in |
//! |---|---|---|---|
//! | `grpc` | yes | `kms::GrpcClient` and `kms::GrpcKmsFactory`: the KMS plugin protocol on a unix socket, what a tool reading a production cluster needs | tonic, prost, tokio, hyper, tower |
//! | `etcd` | no | `store::EtcdStore`: etcd v3, plain, TLS or mTLS | tonic with rustls and ring, prost, tokio |
//! | `snapshot` | no | `snapshot`, with `snapshot::SnapshotStore`: etcd snapshot files (bbolt) read offline and re-keyed into new ones | nothing |
//! | `objects` | no | `object`: stored Kubernetes objects decoded to the API's JSON and kubectl's YAML | nothing |
//! | `observe` | no | `observe`: metrics, `tracing` spans and audit events per transform, and the KMS providers' cache and call metrics | `metrics` |
//! | `reload` | no | `reload`: hot reload of the configuration file | `grpc` |
//! | `aws-lc` | no | AES-GCM and AES-CBC from AWS-LC instead of RustCrypto: same bytes, about 2.5x the AES-GCM speed at 1 KiB; needs a C compiler (see the [`manual`]) | aws-lc-rs |
//! | `test-util` | no | `kms::mock::Base64Kms`: Kubernetes' insecure base64 mock plugin in process, a test double for code built on the crate | nothing |
//!
//! ```toml
//! # Static keys and the KMS formats only, no runtime:
//! k8s-envelope = { version = "0.1", default-features = false }
//! # A tool that reads and re-encrypts a live cluster:
//! k8s-envelope = { version = "0.1", features = ["etcd"] }
//! ```
//!
//! The `k8s-envelope` binary is the `k8s-envelope-cli` package, and the
//! plugins (`kms-plugin-local`, `kms-plugin-pkcs11`) and their kit are
//! packages of their own: a library consumer never builds clap, the
//! progress bars or a gRPC server.
//!
//! # Performance
//!
//! Writes draw nonces from a per-thread ChaCha20 generator (no system call
//! per value, reseeded after `fork`); static-key writes and reads allocate
//! only their output and share no lock, so they scale over threads. The
//! `k8s-envelope bench` command and `cargo bench` measure every provider.
//!
//! See the [`manual`] for the wire formats, the choices behind the
//! dependencies, and every deliberate difference from kube-apiserver.

#![forbid(unsafe_code)]
// Public types can grow without breaking users: options and reports are
// `#[non_exhaustive]`; the few that users build themselves say why not.
#![warn(clippy::exhaustive_structs, clippy::exhaustive_enums)]

mod error;
mod keys;
#[cfg(not(feature = "observe"))]
#[path = "observe/off.rs"]
mod observe;
mod prefix;
mod primitive;
mod protowire;
mod provider;
mod providers;
mod random;

// The public interface: the topic modules, then the names at the root.
pub mod config;
pub mod fingerprint;
pub mod jsonl;
pub mod kms;
pub mod lint;
pub mod manual;
#[cfg(feature = "objects")]
pub mod object;
#[cfg(feature = "observe")]
pub mod observe;
pub mod private_file;
#[cfg(feature = "reload")]
pub mod reload;
pub mod rotation;
#[cfg(feature = "snapshot")]
pub mod snapshot;
pub mod store;
pub mod walk;

pub use crate::config::{EncryptionConfiguration, ResourceTransformers};
pub use crate::error::{Error, KmsApiVersion, ProviderKind};
pub use crate::keys::{InvalidBase64, NamedKey, SecretKey};
pub use crate::prefix::{Transformer, MAX_PLAINTEXT_LEN, MAX_STORED_VALUE_LEN};
pub use crate::primitive::AES_BACKEND;
pub use crate::provider::{BlockingProvider, Decrypted, Provider, ProviderFuture, StorageKey};
pub use crate::providers::{
    AesCbc, AesGcm, Identity, Secretbox, AESCBC_PREFIX, AESGCM_PREFIX, ENCRYPTED_PREFIX,
    SECRETBOX_PREFIX,
};

/// The Rust snippets of the README and the guides in docs/, compiled and run
/// as doctests so that they cannot drift from the API. `cfg(doctest)`: they
/// are never rendered into the API documentation.
#[cfg(doctest)]
mod documentation_snippets {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../CONTRIBUTING.md")]
    struct Contributing;
    #[doc = include_str!("../docs/checking-a-plugin.md")]
    struct CheckingAPlugin;
    #[doc = include_str!("../docs/cli.md")]
    struct Cli;
    #[doc = include_str!("../docs/kms-plugins.md")]
    struct KmsPlugins;
    #[doc = include_str!("../docs/performance.md")]
    struct Performance;
    /// Its snippet uses hot reload and metrics.
    #[cfg(all(feature = "observe", feature = "reload"))]
    #[doc = include_str!("../docs/production.md")]
    struct Production;
    #[doc = include_str!("../docs/recovering-from-a-backup.md")]
    struct RecoveringFromABackup;
    #[doc = include_str!("../docs/rotating-a-key.md")]
    struct RotatingAKey;
}

/// Hooks for the fuzz targets in `fuzz/` and their regression tests, as
/// rustls keeps its own: **not part of the API**, hidden from the
/// documentation and free to change in any release.
#[doc(hidden)]
pub mod internal {
    pub use crate::kms::encrypted_object::EncryptedObjectRef;
    pub use crate::kms::v1::split_body as split_kms_v1_body;
}
