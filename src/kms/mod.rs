//! KMS plugins: the service traits, the gRPC client, and a kit for writing
//! plugins.
//!
//! kube-apiserver's KMS providers never see a key-encryption key (KEK): they
//! send data-encryption keys (DEKs, or KMS v2 seeds) to a *plugin* over gRPC
//! on a unix socket, and the plugin wraps and unwraps them.
//!
//! ```text
//!  KMS v2 provider ──KmsServiceV2──▶ GrpcClient ══ gRPC, unix socket ══▶ plugin server ──▶ Kek
//!  (envelope, DEK cache)             (this module)                      (plugin::PluginServer)   (LocalKek, your KMS)
//! ```
//!
//! - [`KmsServiceV2`] / [`KmsServiceV1`]: what a provider needs from a plugin
//!   (`Status`/`Version`, `Encrypt`, `Decrypt`). Narrow on purpose; implement
//!   them to call a KMS in process.
//! - [`GrpcClient`]: the default implementation of both, speaking the
//!   upstream protocol (`v2.KeyManagementService`,
//!   `v1beta1.KeyManagementService`) on `unix:///path` or `unix:///@name`
//!   ([`KmsEndpoint`]).
//! - [`plugin`]: serve a [`plugin::Kek`] as a KMS v2 and v1 plugin, with a
//!   file-backed [`plugin::LocalKek`] and the insecure test
//!   [`plugin::Base64MockKek`]. The `kms-plugin-local` binary runs them.
//! - [`generated`]: the protobuf messages, including the KMS v2 storage
//!   envelope `EncryptedObject`.
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
#[cfg(all(unix, feature = "grpc"))]
pub mod check;
mod clock;
pub(crate) mod encrypted_object;
mod endpoint;
mod error;
#[cfg(all(unix, feature = "grpc"))]
mod factory;
#[cfg(feature = "grpc")]
pub mod generated;
#[cfg(all(unix, feature = "grpc"))]
mod grpc;
pub mod mock;
#[cfg(all(unix, feature = "plugin"))]
pub mod plugin;
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
pub use self::error::{KmsError, KmsErrorKind, StatusCode};
#[cfg(all(unix, feature = "grpc"))]
pub use self::factory::GrpcKmsFactory;
#[cfg(all(unix, feature = "grpc"))]
pub use self::grpc::{GrpcClient, DEFAULT_TIMEOUT, MAX_MESSAGE_SIZE};
pub use self::service::{
    EncryptResponse, KmsFuture, KmsServiceV1, KmsServiceV2, StatusResponse, VersionResponse,
};
pub use self::v1::{KmsV1Options, KmsV1Provider};
pub use self::v2::{
    key_id_hash, KmsHealth, KmsV2Options, KmsV2Provider, HEALTHY_POLL_INTERVAL,
    MAX_WRITES_PER_DERIVED_KEY, UNHEALTHY_POLL_INTERVAL, WRITE_KEY_TTL,
};
