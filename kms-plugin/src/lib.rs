//! A kit for Kubernetes KMS plugins: serve a key-encryption key as a KMS v2
//! and v1 plugin on a unix socket, and check that a running plugin answers
//! as kube-apiserver requires.
//!
//! The plugin side of [`k8s_envelope`], which holds the client side (the
//! envelope formats, the providers and the gRPC client). This crate adds
//! tonic's gRPC server; a library consumer that only reads and writes
//! values never builds it.
//!
//! Implement [`Kek`] (four methods: current key ID, wrap, unwrap, health), or
//! use [`LocalKek`] (a KEK in a file) or [`Base64MockKek`] (tests only), and
//! hand it to [`PluginServer`]:
//!
//! ```no_run
//! use k8s_envelope_kms_plugin::{LocalKek, PluginServer};
//! use k8s_envelope::kms::KmsEndpoint;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let kek = LocalKek::open("/etc/kms/kek.b64")?;
//! let endpoint = KmsEndpoint::parse("unix:///var/run/kms-plugin.sock")?;
//! let handle = PluginServer::new(kek).serve(&endpoint).await?;
//! tokio::signal::ctrl_c().await?;
//! handle.shutdown().await?; // finishes in-flight calls, removes the socket
//! # Ok(()) }
//! ```
//!
//! The `kms-plugin-local` binary does exactly this from the command line;
//! `kms-plugin-pkcs11` implements [`Kek`] over an HSM.
//!
//! - [`check`]: `kms-check`, a conformance check of a running plugin
//!   against kube-apiserver's rules, for a plugin's own tests (the kit's
//!   and the plugins' tests run it) and the `k8s-envelope kms-check`
//!   command.
//! - [`generated`]: the gRPC server stubs of both plugin APIs, for tests
//!   that need a plugin answering what no [`Kek`] would.

#![forbid(unsafe_code)]

/// The README's snippets, compiled and run as doctests (never rendered).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeSnippets;

pub mod check;
#[cfg(test)]
mod conformance;
pub mod generated;
mod keyring;
mod local;
mod mock;
mod peers;
mod secret_file;
mod server;
mod socket;
mod termination;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use zeroize::Zeroizing;

pub use self::keyring::Keyring;
pub use self::local::LocalKek;
pub use self::mock::Base64MockKek;
pub use self::peers::AllowedPeers;
pub use self::secret_file::read_private_file;
pub use self::server::{PluginApis, PluginHandle, PluginServer};
pub use self::socket::socket_endpoint;
pub use self::termination::Termination;

/// The future a [`Kek`] returns.
pub type KekFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KekError>> + Send + 'a>>;

/// A key-encryption key: what a KMS plugin wraps DEKs and seeds with.
///
/// The single extension point of the plugin kit. [`PluginServer`] turns a
/// `Kek` into the KMS v2 `Status`/`Encrypt`/`Decrypt` calls and the KMS v1
/// `Version`/`Encrypt`/`Decrypt` calls.
///
/// The contract:
/// - [`key_id`](Self::key_id) names the key the next [`wrap`](Self::wrap)
///   uses: non-empty, at most 1024 bytes, and different for every distinct
///   key (kube-apiserver re-wraps its DEK/seed when it changes). It must not
///   reveal the key.
/// - [`wrap`](Self::wrap) encrypts a DEK or seed and says which key ID did
///   it (returned together so that a rotation between two calls cannot
///   mislabel a ciphertext). Annotation keys must be fully qualified domain
///   names; keys and values together at most 32 KiB.
/// - [`unwrap`](Self::unwrap) gets back exactly what `wrap` returned and
///   must keep working for every key ID it ever returned that is still in
///   use in storage (that is, across rotations).
/// - [`healthy`](Self::healthy) is cheap; an error becomes the KMS v2
///   `healthz` text, so it must not contain secrets.
/// - Errors carry a [`KekErrorKind`] that becomes the gRPC status code;
///   their messages go to the client, so they must not contain key material
///   or plaintext.
///
/// KMS v1 has no key ID or annotations on the wire. By default,
/// [`wrap_v1`](Self::wrap_v1) stores the key ID inside the ciphertext
/// (`key ID length, 2 bytes big-endian || key ID || wrap ciphertext`) and
/// refuses KEKs that return annotations; override both v1 methods to use
/// another format.
pub trait Kek: Send + Sync {
    /// The key ID the next [`wrap`](Self::wrap) will use.
    fn key_id(&self) -> KekFuture<'_, String>;

    /// Wraps `plaintext` (a DEK or seed) with the current key.
    fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> KekFuture<'a, Wrapped>;

    /// Unwraps a ciphertext [`wrap`](Self::wrap) returned with `key_id` and
    /// `annotations`.
    fn unwrap<'a>(
        &'a self,
        key_id: &'a str,
        ciphertext: &'a [u8],
        annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KekFuture<'a, Zeroizing<Vec<u8>>>;

    /// Whether the KEK can be used; by default, whether
    /// [`key_id`](Self::key_id) succeeds.
    fn healthy(&self) -> KekFuture<'_, ()> {
        Box::pin(async move { self.key_id().await.map(drop) })
    }

    /// Wraps a DEK for KMS v1, whose ciphertext must carry the key ID.
    fn wrap_v1<'a>(&'a self, plaintext: &'a [u8]) -> KekFuture<'a, Vec<u8>> {
        Box::pin(async move {
            let wrapped = self.wrap(plaintext).await?;
            if !wrapped.annotations.is_empty() {
                return Err(KekError::internal(
                    "this KEK returns annotations, which the KMS v1 API cannot carry",
                ));
            }
            let key_id = wrapped.key_id.as_bytes();
            let len = u16::try_from(key_id.len())
                .map_err(|_| KekError::internal("the key ID is longer than 65535 bytes"))?;
            let mut out = Vec::with_capacity(2 + key_id.len() + wrapped.ciphertext.len());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(key_id);
            out.extend_from_slice(&wrapped.ciphertext);
            Ok(out)
        })
    }

    /// Unwraps what [`wrap_v1`](Self::wrap_v1) returned.
    fn unwrap_v1<'a>(&'a self, ciphertext: &'a [u8]) -> KekFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(async move {
            let malformed = || KekError::invalid_argument("malformed KMS v1 ciphertext");
            let (len, rest) = ciphertext.split_first_chunk::<2>().ok_or_else(malformed)?;
            let len = usize::from(u16::from_be_bytes(*len));
            if rest.len() < len {
                return Err(malformed());
            }
            let (key_id, body) = rest.split_at(len);
            let key_id = std::str::from_utf8(key_id).map_err(|_| malformed())?;
            self.unwrap(key_id, body, &BTreeMap::new()).await
        })
    }
}

/// What [`Kek::wrap`] returns.
#[derive(Clone, PartialEq, Eq, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the answer every `Kek` implementation builds"
)]
pub struct Wrapped {
    /// The wrapped DEK or seed.
    pub ciphertext: Vec<u8>,
    /// The key ID that wrapped it.
    pub key_id: String,
    /// What [`Kek::unwrap`] needs back besides the ciphertext and key ID.
    pub annotations: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wrapped")
            .field("ciphertext_len", &self.ciphertext.len())
            .field("key_id", &self.key_id)
            .field("annotations", &self.annotations.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A [`Kek`] operation failed.
///
/// The message is sent to the plugin's client: it must not contain key
/// material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekError {
    kind: KekErrorKind,
    message: Cow<'static, str>,
}

/// The kind of a [`KekError`], which decides the gRPC status code.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KekErrorKind {
    /// The request cannot succeed: unknown key ID, malformed or
    /// unauthentic ciphertext (`INVALID_ARGUMENT`).
    InvalidArgument,
    /// The KEK is unusable until something is fixed, for example a
    /// missing or invalid key file (`FAILED_PRECONDITION`).
    FailedPrecondition,
    /// The KEK is temporarily out of reach; retrying may help
    /// (`UNAVAILABLE`).
    Unavailable,
    /// Anything else (`INTERNAL`).
    Internal,
}

impl KekError {
    /// An error of `kind` with `message`.
    pub fn new(kind: KekErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// [`KekErrorKind::InvalidArgument`].
    pub fn invalid_argument(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(KekErrorKind::InvalidArgument, message)
    }

    /// [`KekErrorKind::FailedPrecondition`].
    pub fn failed_precondition(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(KekErrorKind::FailedPrecondition, message)
    }

    /// [`KekErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(KekErrorKind::Unavailable, message)
    }

    /// [`KekErrorKind::Internal`].
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(KekErrorKind::Internal, message)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> KekErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The gRPC status the plugin server answers with.
    pub(crate) fn to_status(&self) -> tonic::Status {
        let code = match self.kind {
            KekErrorKind::InvalidArgument => tonic::Code::InvalidArgument,
            KekErrorKind::FailedPrecondition => tonic::Code::FailedPrecondition,
            KekErrorKind::Unavailable => tonic::Code::Unavailable,
            KekErrorKind::Internal => tonic::Code::Internal,
        };
        tonic::Status::new(code, self.message.as_ref())
    }
}

impl fmt::Display for KekError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KekError {}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A KEK that "wraps" by reversing, remembering one key ID.
    struct Reverse(Mutex<String>);

    impl Kek for Reverse {
        fn key_id(&self) -> KekFuture<'_, String> {
            let id = self.0.lock().map(|g| g.clone()).unwrap_or_default();
            Box::pin(async move { Ok(id) })
        }

        fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> KekFuture<'a, Wrapped> {
            Box::pin(async move {
                Ok(Wrapped {
                    ciphertext: plaintext.iter().rev().copied().collect(),
                    key_id: self.key_id().await?,
                    annotations: BTreeMap::new(),
                })
            })
        }

        fn unwrap<'a>(
            &'a self,
            key_id: &'a str,
            ciphertext: &'a [u8],
            _annotations: &'a BTreeMap<String, Vec<u8>>,
        ) -> KekFuture<'a, Zeroizing<Vec<u8>>> {
            Box::pin(async move {
                if key_id != "k1" {
                    return Err(KekError::invalid_argument("unknown key ID"));
                }
                Ok(Zeroizing::new(ciphertext.iter().rev().copied().collect()))
            })
        }
    }

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn default_v1_framing_round_trips() {
        let kek = Reverse(Mutex::new("k1".into()));
        let cipher = block_on(kek.wrap_v1(b"abc")).expect("wrap");
        assert_eq!(cipher, [0, 2, b'k', b'1', b'c', b'b', b'a']);
        let plain = block_on(kek.unwrap_v1(&cipher)).expect("unwrap");
        assert_eq!(&plain[..], b"abc");
    }

    #[test]
    fn default_v1_framing_rejects_garbage() {
        let kek = Reverse(Mutex::new("k1".into()));
        for bad in [&[][..], &[0], &[0, 5, b'k'], &[0, 2, b'k', b'2', b'x']] {
            let err = block_on(kek.unwrap_v1(bad)).expect_err("must fail");
            assert_eq!(err.kind(), KekErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn errors_map_to_grpc_codes() {
        assert_eq!(
            KekError::unavailable("x").to_status().code(),
            tonic::Code::Unavailable
        );
        assert_eq!(
            KekError::failed_precondition("x").to_status().code(),
            tonic::Code::FailedPrecondition
        );
    }
}
