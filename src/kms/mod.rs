//! KMS: the v1 and v2 envelope providers, the service traits they call a
//! plugin through, and the gRPC client of the plugin protocol.
//!
//! kube-apiserver's KMS providers never see a key-encryption key (KEK): they
//! send data-encryption keys (DEKs, or KMS v2 seeds) to a *plugin* over gRPC
//! on a unix socket, and the plugin wraps and unwraps them.
//!
//! ```text
//!  KMS v2 provider ──KmsServiceV2──▶ GrpcClient ══ gRPC, unix socket ══▶ plugin server ──▶ Kek
//!  (envelope, DEK cache)             (this module)                      (the k8s-envelope-kms-plugin crate)
//! ```
//!
//! - [`KmsServiceV2`] / [`KmsServiceV1`]: what a provider needs from a plugin
//!   (`Status`/`Version`, `Encrypt`, `Decrypt`). Narrow on purpose; implement
//!   them to call a KMS in process.
//! - [`GrpcClient`]: the default implementation of both, speaking the
//!   upstream protocol (`v2.KeyManagementService`,
//!   `v1beta1.KeyManagementService`) on `unix:///path` or `unix:///@name`
//!   ([`KmsEndpoint`]).
//! - The plugin side is a crate of its own, `k8s-envelope-kms-plugin`
//!   (`kms-plugin/` in the repository): a kit that serves a key-encryption
//!   key as a KMS v2 and v1 plugin, a file-backed KEK, Kubernetes' base64
//!   mock, and `kms-check`, a conformance check of a running plugin. This
//!   crate never builds a gRPC server.
//! - [`rules`]: what kube-apiserver accepts from a plugin's answers.
//! - `mock` (feature `test-util`): Kubernetes' base64 mock plugin in
//!   process, for tests and benchmarks.
//!
//! # Errors
//!
//! Every failure is an [`Error::Kms`](crate::Error::Kms) holding a
//! [`KmsError`]: the endpoint, the gRPC method, and a [`KmsErrorKind`]
//! (timeout, unavailable, error status from the plugin, protocol violation,
//! invalid endpoint, socket setup). Messages never contain a DEK or seed.
//!
//! # Secrets in memory
//!
//! Plaintext DEKs and seeds are returned in [`zeroize::Zeroizing`] buffers and
//! the protobuf messages that carry them are zeroized on drop. Copies inside
//! the HTTP/2 and gRPC stacks (hyper, h2, tonic buffers) are not zeroized.
//!
//! # Untrusted plugin answers
//!
//! A plugin's answers are bounded: messages larger than [`MAX_MESSAGE_SIZE`]
//! are refused, every call is bounded by the timeout, and messages the plugin
//! sends back are cut to 512 bytes before they are put in an error.

mod cache;
mod clock;
pub(crate) mod encrypted_object;
mod endpoint;
mod error;
#[cfg(all(unix, feature = "grpc"))]
mod factory;
// The protobuf messages and gRPC client stubs: private, so that a prost or
// tonic upgrade never changes this crate's API. Tests that craft messages
// use their own definitions (the test-support crate) or the plugin kit's.
#[cfg(feature = "grpc")]
mod generated;
#[cfg(all(unix, feature = "grpc"))]
mod grpc;
#[cfg(feature = "test-util")]
pub mod mock;
mod service;
pub(crate) mod v1;
mod v2;

pub(crate) use self::cache::BoundedCache;
pub use self::cache::CacheLimits;
pub use self::clock::{Clock, ManualClock, SystemClock};
pub use self::encrypted_object::{
    DekSourceType, ANNOTATIONS_MAX_LEN, ENCRYPTED_DEK_SOURCE_MAX_LEN, KEY_ID_MAX_LEN,
};
pub use self::endpoint::KmsEndpoint;
pub use self::error::{clip_message, KmsError, KmsErrorKind, StatusCode};
#[cfg(all(unix, feature = "grpc"))]
pub use self::factory::GrpcKmsFactory;
#[cfg(all(unix, feature = "grpc"))]
pub use self::grpc::{GrpcClient, DEFAULT_TIMEOUT, MAX_MESSAGE_SIZE};
pub use self::service::{
    EncryptResponse, KmsFuture, KmsServiceV1, KmsServiceV2, StatusResponse, VersionResponse,
};
pub use self::v1::{KmsV1Options, KmsV1Provider};
pub use self::v2::{
    key_id_hash, request_uid, KmsHealth, KmsV2Options, KmsV2Provider, HEALTHY_POLL_INTERVAL,
    MAX_WRITES_PER_DERIVED_KEY, UNHEALTHY_POLL_INTERVAL, WRITE_KEY_TTL,
};

/// What kube-apiserver accepts from a KMS v2 plugin's `Encrypt` and `Status`
/// answers, with the apiserver's own messages: the providers here refuse
/// what these refuse, and a plugin (or a check of one) can hold its answers
/// to the same rules.
///
/// ```
/// use k8s_envelope::kms::rules;
///
/// assert!(rules::validate_key_id("key-1").is_ok());
/// assert_eq!(rules::validate_key_id(""), Err("keyID is empty"));
/// assert!(rules::validate_annotations([("kms.example.com", &b"v"[..])]).is_ok());
/// assert!(rules::validate_annotations([("no-dots", &b"v"[..])]).is_err());
/// ```
pub mod rules {
    pub use super::encrypted_object::{
        is_fully_qualified_domain_name, validate_annotations, validate_encrypted_dek_source,
        validate_key_id,
    };
}
