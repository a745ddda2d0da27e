//! The default KMS service: a gRPC client on the plugin's unix socket.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint, Uri};
use zeroize::Zeroizing;

use crate::kms::endpoint::{abstract_addr, Addr};
use crate::kms::error::clip_message;
use crate::kms::generated::{v1beta1, v2};
use crate::kms::{
    EncryptResponse, KmsEndpoint, KmsError, KmsErrorKind, KmsFuture, KmsServiceV1, KmsServiceV2,
    StatusResponse, VersionResponse,
};
use crate::Error;

/// The call timeout kube-apiserver uses when a KMS provider sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest gRPC message the client and the plugin server accept or send:
/// 4 MiB, gRPC's usual default.
///
/// Everything legitimate is far smaller: a wrapped DEK or seed is stored in at
/// most 1024 bytes (KMS v2) or 65535 bytes (KMS v1), and annotations in at
/// most 32 KiB. The limit is there so that a broken or hostile peer cannot
/// make the other side buffer gigabytes.
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// The KMS v1 API version, sent with every v1 request and required in the
/// plugin's `Version` answer.
pub(crate) const V1_API_VERSION: &str = "v1beta1";

const V2_STATUS: &str = "/v2.KeyManagementService/Status";
const V2_ENCRYPT: &str = "/v2.KeyManagementService/Encrypt";
const V2_DECRYPT: &str = "/v2.KeyManagementService/Decrypt";
const V1_VERSION: &str = "/v1beta1.KeyManagementService/Version";
const V1_ENCRYPT: &str = "/v1beta1.KeyManagementService/Encrypt";
const V1_DECRYPT: &str = "/v1beta1.KeyManagementService/Decrypt";

/// A gRPC client for a KMS plugin on a unix socket; implements both
/// [`KmsServiceV2`] and [`KmsServiceV1`].
///
/// ```no_run
/// use std::time::Duration;
/// use k8s_envelope::kms::{GrpcClient, KmsEndpoint};
///
/// # async fn run() -> Result<(), k8s_envelope::Error> {
/// let endpoint = KmsEndpoint::parse("unix:///var/run/kms-plugin.sock")?;
/// let client = GrpcClient::new(endpoint, Duration::from_secs(3));
/// let plugin = client.as_v2();
/// let status = plugin.status().await?;
/// assert!(status.is_healthy());
/// let wrapped = plugin.encrypt("request-1", &[7u8; 32]).await?;
/// let dek = plugin
///     .decrypt("request-2", &wrapped.key_id, &wrapped.ciphertext, &wrapped.annotations)
///     .await?;
/// assert_eq!(&dek[..], &[7u8; 32]);
/// # Ok(()) }
/// ```
///
/// How it talks to the plugin, as kube-apiserver does:
/// - One HTTP/2 connection, dialled on first use and redialled after it is
///   lost, so a plugin that restarts on the same socket is picked up again.
///   A call that fails because the connection was lost is retried once on a
///   fresh connection, within the same timeout.
/// - The HTTP/2 `:authority` is `localhost`. (Some gRPC stacks put the socket
///   path there, which strict HTTP/2 servers reject; kube-apiserver pins
///   `localhost` for the same reason.)
/// - Every call, connecting included, is bounded by the timeout, which is also
///   sent to the plugin as the gRPC deadline.
/// - Messages are limited to [`MAX_MESSAGE_SIZE`] both ways.
/// - KMS v1: requests carry version `v1beta1`, and before the first
///   `Encrypt` or `Decrypt` the plugin's `Version` must answer `v1beta1`.
///
/// Deliberate difference: when nothing listens on the socket, calls fail at
/// once with [`KmsErrorKind::Unavailable`]; kube-apiserver's client waits for
/// the plugin until the timeout expires.
///
/// The connection is set up on the first call, on the Tokio runtime that
/// makes it; use a client from one runtime (the usual case).
pub struct GrpcClient {
    endpoint: KmsEndpoint,
    timeout: Duration,
    channel: OnceLock<Channel>,
    v1_version_checked: AtomicBool,
}

impl GrpcClient {
    /// A client for the plugin at `endpoint`, with `timeout` for every call.
    ///
    /// Nothing is dialled yet, and no runtime is needed to create a client.
    pub fn new(endpoint: KmsEndpoint, timeout: Duration) -> Self {
        Self {
            endpoint,
            timeout,
            channel: OnceLock::new(),
            v1_version_checked: AtomicBool::new(false),
        }
    }

    /// The plugin's endpoint.
    pub fn endpoint(&self) -> &KmsEndpoint {
        &self.endpoint
    }

    /// The timeout of every call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// This client as a KMS v2 service. `GrpcClient` implements both
    /// service traits, whose `encrypt` and `decrypt` share names; this
    /// picks one without naming the trait.
    pub fn as_v2(&self) -> &dyn KmsServiceV2 {
        self
    }

    /// This client as a KMS v1 service (see [`as_v2`](Self::as_v2)).
    pub fn as_v1(&self) -> &dyn KmsServiceV1 {
        self
    }

    /// The shared channel, created on first use (inside a Tokio runtime).
    fn channel(&self) -> Channel {
        self.channel
            .get_or_init(|| {
                let addr = self.endpoint.addr().clone();
                let connector = tower::service_fn(move |_: Uri| {
                    let addr = addr.clone();
                    async move { connect(&addr).await.map(TokioIo::new) }
                });
                // The URI only sets the :authority and :scheme of requests;
                // the connector ignores it and dials the socket.
                Endpoint::from_static("http://localhost").connect_with_connector_lazy(connector)
            })
            .clone()
    }

    fn v2(&self) -> v2::key_management_service_client::KeyManagementServiceClient<Channel> {
        v2::key_management_service_client::KeyManagementServiceClient::new(self.channel())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    fn v1(&self) -> v1beta1::key_management_service_client::KeyManagementServiceClient<Channel> {
        v1beta1::key_management_service_client::KeyManagementServiceClient::new(self.channel())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// Runs `body` within the timeout and turns its failure into an
    /// [`Error::Kms`] for `method`.
    async fn bounded<T>(
        &self,
        method: &'static str,
        body: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Error> {
        let (kind, method) = match tokio::time::timeout(self.timeout, body).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(Failure {
                method: failed,
                kind,
            })) => (kind, failed),
            Err(_elapsed) => (KmsErrorKind::Timeout(self.timeout), method),
        };
        Err(KmsError::new(kind)
            .at(&self.endpoint)
            .in_method(method)
            .into())
    }

    /// Makes one unary call, retried once on a fresh connection when the
    /// first attempt failed locally (connection refused or lost) rather than
    /// with an answer from the plugin.
    async fn unary<T, F, Fut>(
        &self,
        method: &'static str,
        deadline: Instant,
        mut call: F,
    ) -> Result<T, Failure>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut retried = false;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match call(remaining).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if is_local(&status) && !retried => retried = true,
                Err(status) => {
                    return Err(Failure {
                        method,
                        kind: self.classify(&status),
                    })
                }
            }
        }
    }

    /// Maps a gRPC status to an error kind.
    fn classify(&self, status: &tonic::Status) -> KmsErrorKind {
        match status.code() {
            tonic::Code::DeadlineExceeded => KmsErrorKind::Timeout(self.timeout),
            tonic::Code::Unavailable => KmsErrorKind::Unavailable(describe(status)),
            _ if is_local(status) => KmsErrorKind::Unavailable(describe(status)),
            code => KmsErrorKind::Status {
                code: code.into(),
                message: clip_message(status.message()),
            },
        }
    }

    /// Calls v1 `Version` once per client and checks the API version.
    async fn check_v1_version(&self, deadline: Instant) -> Result<(), Failure> {
        if self.v1_version_checked.load(Ordering::Acquire) {
            return Ok(());
        }
        let response = self.v1_version(deadline).await?;
        if response.version != V1_API_VERSION {
            return Err(Failure {
                method: V1_VERSION,
                kind: KmsErrorKind::InvalidAnswer(format!(
                    "KMS provider api version {:?} is not supported, only {V1_API_VERSION} is supported now",
                    clip_message(&response.version)
                )),
            });
        }
        self.v1_version_checked.store(true, Ordering::Release);
        Ok(())
    }

    async fn v1_version(&self, deadline: Instant) -> Result<v1beta1::VersionResponse, Failure> {
        self.unary(V1_VERSION, deadline, |remaining| {
            let mut client = self.v1();
            async move {
                client
                    .version(request(
                        v1beta1::VersionRequest {
                            version: V1_API_VERSION.into(),
                        },
                        remaining,
                    ))
                    .await
            }
        })
        .await
    }
}

impl KmsServiceV2 for GrpcClient {
    fn status(&self) -> KmsFuture<'_, StatusResponse> {
        Box::pin(self.bounded(V2_STATUS, async move {
            let deadline = Instant::now() + self.timeout;
            let response = self
                .unary(V2_STATUS, deadline, |remaining| {
                    let mut client = self.v2();
                    async move {
                        client
                            .status(request(v2::StatusRequest {}, remaining))
                            .await
                    }
                })
                .await?;
            Ok(StatusResponse {
                version: response.version,
                healthz: response.healthz,
                key_id: response.key_id,
            })
        }))
    }

    fn encrypt<'a>(&'a self, uid: &'a str, plaintext: &'a [u8]) -> KmsFuture<'a, EncryptResponse> {
        Box::pin(self.bounded(V2_ENCRYPT, async move {
            let deadline = Instant::now() + self.timeout;
            let response = self
                .unary(V2_ENCRYPT, deadline, |remaining| {
                    let mut client = self.v2();
                    // Zeroized on drop (see the generated module).
                    let message = v2::EncryptRequest {
                        plaintext: plaintext.to_vec(),
                        uid: uid.to_owned(),
                    };
                    async move { client.encrypt(request(message, remaining)).await }
                })
                .await?;
            Ok(EncryptResponse {
                ciphertext: response.ciphertext,
                key_id: response.key_id,
                annotations: response.annotations,
            })
        }))
    }

    fn decrypt<'a>(
        &'a self,
        uid: &'a str,
        key_id: &'a str,
        ciphertext: &'a [u8],
        annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KmsFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(self.bounded(V2_DECRYPT, async move {
            let deadline = Instant::now() + self.timeout;
            let mut response = self
                .unary(V2_DECRYPT, deadline, |remaining| {
                    let mut client = self.v2();
                    let message = v2::DecryptRequest {
                        ciphertext: ciphertext.to_vec(),
                        uid: uid.to_owned(),
                        key_id: key_id.to_owned(),
                        annotations: annotations.clone(),
                    };
                    async move { client.decrypt(request(message, remaining)).await }
                })
                .await?;
            Ok(Zeroizing::new(std::mem::take(&mut response.plaintext)))
        }))
    }
}

impl KmsServiceV1 for GrpcClient {
    fn version(&self) -> KmsFuture<'_, VersionResponse> {
        Box::pin(self.bounded(V1_VERSION, async move {
            let response = self.v1_version(Instant::now() + self.timeout).await?;
            Ok(VersionResponse {
                version: response.version,
                runtime_name: response.runtime_name,
                runtime_version: response.runtime_version,
            })
        }))
    }

    fn encrypt<'a>(&'a self, plaintext: &'a [u8]) -> KmsFuture<'a, Vec<u8>> {
        Box::pin(self.bounded(V1_ENCRYPT, async move {
            let deadline = Instant::now() + self.timeout;
            self.check_v1_version(deadline).await?;
            let response = self
                .unary(V1_ENCRYPT, deadline, |remaining| {
                    let mut client = self.v1();
                    let message = v1beta1::EncryptRequest {
                        version: V1_API_VERSION.into(),
                        plain: plaintext.to_vec(),
                    };
                    async move { client.encrypt(request(message, remaining)).await }
                })
                .await?;
            Ok(response.cipher)
        }))
    }

    fn decrypt<'a>(&'a self, ciphertext: &'a [u8]) -> KmsFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(self.bounded(V1_DECRYPT, async move {
            let deadline = Instant::now() + self.timeout;
            self.check_v1_version(deadline).await?;
            let mut response = self
                .unary(V1_DECRYPT, deadline, |remaining| {
                    let mut client = self.v1();
                    let message = v1beta1::DecryptRequest {
                        version: V1_API_VERSION.into(),
                        cipher: ciphertext.to_vec(),
                    };
                    async move { client.decrypt(request(message, remaining)).await }
                })
                .await?;
            Ok(Zeroizing::new(std::mem::take(&mut response.plain)))
        }))
    }
}

impl fmt::Debug for GrpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcClient")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A failed call: which method, and what went wrong.
struct Failure {
    method: &'static str,
    kind: KmsErrorKind,
}

/// A request with the gRPC deadline set to what is left of the timeout.
fn request<T>(message: T, remaining: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(remaining);
    request
}

/// Whether a status was made on our side (the connection failed) rather than
/// sent by the plugin: tonic attaches the underlying error as the source.
fn is_local(status: &tonic::Status) -> bool {
    status.source().is_some()
}

/// The status message and, for local failures, the chain of causes.
fn describe(status: &tonic::Status) -> String {
    let mut out = clip_message(status.message());
    let mut source = status.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&clip_message(&text));
        }
        source = cause.source();
    }
    out
}

/// Dials a unix socket without blocking the runtime.
pub(crate) async fn connect(addr: &Addr) -> io::Result<UnixStream> {
    match addr {
        Addr::Path(path) => UnixStream::connect(path).await,
        Addr::Abstract(name) => {
            let addr = abstract_addr(name)?;
            UnixStream::connect_addr(&addr.into()).await
        }
    }
}
