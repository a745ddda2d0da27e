//! The plugin server: a [`Kek`] served as KMS v2 and v1 on a unix socket.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::codegen::http;

use super::peers::{self, AllowedPeers};
use super::socket::{self, SocketFile};
use super::Kek;
use crate::generated::v1beta1::key_management_service_server as v1_server;
use crate::generated::v2::key_management_service_server as v2_server;
use crate::generated::{v1beta1, v2};
use k8s_envelope::kms::{KmsEndpoint, KmsError, KmsErrorKind, MAX_MESSAGE_SIZE};
use k8s_envelope::Error;

/// The KMS v1 API version a plugin reports, the only one kube-apiserver
/// accepts.
const V1_API_VERSION: &str = "v1beta1";

/// The KMS v2 API version a plugin server reports in `Status`.
const V2_API_VERSION: &str = "v2";

/// Which plugin APIs a [`PluginServer`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PluginApis {
    /// KMS v2 (`v2.KeyManagementService`) only.
    V2,
    /// KMS v1 (`v1beta1.KeyManagementService`) only.
    V1,
    /// Both on the same socket (the default).
    #[default]
    Both,
}

impl fmt::Display for PluginApis {
    /// `KMS v2`, `KMS v1` or `KMS v2 and v1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginApis::V2 => "KMS v2",
            PluginApis::V1 => "KMS v1",
            PluginApis::Both => "KMS v2 and v1",
        })
    }
}

/// Serves a [`Kek`] as a KMS plugin on a unix socket.
///
/// - KMS v2 `Status` answers version `"v2"`, healthz `"ok"` (or the
///   [`Kek::healthy`] / [`Kek::key_id`] error message) and the key ID;
///   `Encrypt` and `Decrypt` call [`Kek::wrap`] and [`Kek::unwrap`].
/// - KMS v1 `Version` answers `"v1beta1"` with the runtime name and version
///   (default: `k8s-envelope` and this crate's version); `Encrypt` and
///   `Decrypt` call [`Kek::wrap_v1`] and [`Kek::unwrap_v1`].
/// - A socket file is created with mode 0600 (a stale socket at the path is
///   replaced; a path that is not a socket, or a socket another process still
///   serves, is an error). An abstract socket (`unix:///@name`) has no
///   permissions: any process in the network namespace can connect.
/// - Every connection's peer credentials are checked: only the processes
///   of the users and groups of [`AllowedPeers`] are served (by default the
///   plugin's own user; see [`allow_peers`](Self::allow_peers)). That is
///   the only access control of an abstract socket.
/// - Messages are limited to [`MAX_MESSAGE_SIZE`]; HTTP/2 only, no TLS (the
///   socket's permissions are the access control, as for every KMS plugin).
pub struct PluginServer {
    kek: Arc<dyn Kek>,
    apis: PluginApis,
    runtime_name: String,
    runtime_version: String,
    peers: AllowedPeers,
}

impl PluginServer {
    /// A server for `kek`, serving both APIs.
    pub fn new(kek: impl Kek + 'static) -> Self {
        Self::from_arc(Arc::new(kek))
    }

    /// A server for a shared `kek`.
    pub fn from_arc(kek: Arc<dyn Kek>) -> Self {
        Self {
            kek,
            apis: PluginApis::Both,
            runtime_name: "k8s-envelope".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            peers: AllowedPeers::default(),
        }
    }

    /// Who may connect (by default the plugin's own user).
    #[must_use]
    pub fn allow_peers(mut self, peers: AllowedPeers) -> Self {
        self.peers = peers;
        self
    }

    /// Which APIs to serve.
    #[must_use]
    pub fn apis(mut self, apis: PluginApis) -> Self {
        self.apis = apis;
        self
    }

    /// The runtime name and version KMS v1 `Version` reports.
    #[must_use]
    pub fn runtime(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.runtime_name = name.into();
        self.runtime_version = version.into();
        self
    }

    /// Binds `endpoint` and serves until [`PluginHandle::shutdown`] (or the
    /// handle is dropped). Must be called inside a Tokio runtime; the server
    /// runs on it as a task.
    ///
    /// # Errors
    ///
    /// [`Error::Kms`] with [`KmsErrorKind::Socket`] when the socket cannot be
    /// bound: the path exists and is not a socket, another process serves
    /// it, the directory is missing or not writable, or an abstract name is
    /// taken.
    pub async fn serve(self, endpoint: &KmsEndpoint) -> Result<PluginHandle, Error> {
        let bound = socket::bind(endpoint)
            .await
            .map_err(|e| KmsError::new(KmsErrorKind::Socket(e)).at(endpoint))?;
        let router = Router {
            v2: matches!(self.apis, PluginApis::V2 | PluginApis::Both).then(|| {
                v2_server::KeyManagementServiceServer::new(V2Handler {
                    kek: Arc::clone(&self.kek),
                })
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE)
            }),
            v1: matches!(self.apis, PluginApis::V1 | PluginApis::Both).then(|| {
                v1_server::KeyManagementServiceServer::new(V1Handler {
                    kek: Arc::clone(&self.kek),
                    runtime_name: self.runtime_name.clone(),
                    runtime_version: self.runtime_version.clone(),
                })
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE)
            }),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let incoming = Box::pin(peers::admitted(bound.listener, self.peers.clone()));
        let task = tokio::spawn(
            tonic::transport::Server::builder().serve_with_incoming_shutdown(
                router,
                incoming,
                async move {
                    // A dropped sender stops the server too.
                    let _ = stopped.await;
                },
            ),
        );
        Ok(PluginHandle {
            endpoint: endpoint.clone(),
            stop: Some(stop),
            task: Some(task),
            file: bound.file,
        })
    }
}

impl fmt::Debug for PluginServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginServer")
            .field("apis", &self.apis)
            .field("runtime_name", &self.runtime_name)
            .field("runtime_version", &self.runtime_version)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

/// A running plugin server.
///
/// [`shutdown`](Self::shutdown) stops it cleanly. Dropping the handle stops
/// accepting connections and removes the socket file at once, without
/// waiting for calls in flight.
#[derive(Debug)]
pub struct PluginHandle {
    endpoint: KmsEndpoint,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    file: Option<SocketFile>,
}

impl PluginHandle {
    /// Where the server listens.
    pub fn endpoint(&self) -> &KmsEndpoint {
        &self.endpoint
    }

    /// Stops accepting connections, waits for the calls in flight to finish
    /// and for the clients to close their connections (they are asked to go
    /// away), and removes the socket file (if it is still the one this server
    /// created).
    ///
    /// A client that never answers keeps this waiting; see
    /// [`shutdown_within`](Self::shutdown_within).
    ///
    /// # Errors
    ///
    /// [`Error::Kms`] with [`KmsErrorKind::Socket`] when the server had
    /// failed or the socket file cannot be removed.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.stop_and_wait(None).await
    }

    /// As [`shutdown`](Self::shutdown), but stops waiting for connections
    /// after `grace`; connections still open then are dropped with the
    /// runtime (or at once, when the process exits).
    ///
    /// # Errors
    ///
    /// As for [`shutdown`](Self::shutdown).
    pub async fn shutdown_within(self, grace: Duration) -> Result<(), Error> {
        self.stop_and_wait(Some(grace)).await
    }

    async fn stop_and_wait(mut self, grace: Option<Duration>) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = match self.task.take() {
            Some(mut task) => {
                let joined = match grace {
                    None => Some((&mut task).await),
                    Some(grace) => tokio::time::timeout(grace, &mut task).await.ok(),
                };
                match joined {
                    Some(Ok(Ok(()))) => Ok(()),
                    Some(Ok(Err(e))) => Err(io::Error::other(e)),
                    Some(Err(e)) => Err(io::Error::other(e)),
                    None => {
                        task.abort();
                        Ok(())
                    }
                }
            }
            None => Ok(()),
        };
        let removed = match self.file.take() {
            Some(file) => file.remove(),
            None => Ok(()),
        };
        served.and(removed).map_err(|e| {
            KmsError::new(KmsErrorKind::Socket(e))
                .at(&self.endpoint)
                .into()
        })
    }
}

impl Drop for PluginHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(file) = self.file.take() {
            let _ = file.remove();
        }
    }
}

/// Sends each call to the service its path names.
#[derive(Clone)]
struct Router {
    v2: Option<v2_server::KeyManagementServiceServer<V2Handler>>,
    v1: Option<v1_server::KeyManagementServiceServer<V1Handler>>,
}

impl tower::Service<http::Request<Body>> for Router {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path();
        if let Some(service) = self.v2.as_mut() {
            if is_service_path(path, v2_server::SERVICE_NAME) {
                return service.call(request);
            }
        }
        if let Some(service) = self.v1.as_mut() {
            if is_service_path(path, v1_server::SERVICE_NAME) {
                return service.call(request);
            }
        }
        Box::pin(async { Ok(tonic::Status::unimplemented("unknown service").into_http()) })
    }
}

/// Whether `path` is `/<service>/<method>`.
fn is_service_path(path: &str, service: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(service))
        .is_some_and(|p| p.starts_with('/'))
}

/// KMS v2 calls on a [`Kek`].
struct V2Handler {
    kek: Arc<dyn Kek>,
}

#[tonic::async_trait]
impl v2_server::KeyManagementService for V2Handler {
    async fn status(
        &self,
        _request: tonic::Request<v2::StatusRequest>,
    ) -> Result<tonic::Response<v2::StatusResponse>, tonic::Status> {
        let (healthz, key_id) = match (self.kek.healthy().await, self.kek.key_id().await) {
            (Ok(()), Ok(key_id)) => ("ok".to_owned(), key_id),
            (Err(e), key_id) => (e.message().to_owned(), key_id.unwrap_or_default()),
            (Ok(()), Err(e)) => (e.message().to_owned(), String::new()),
        };
        Ok(tonic::Response::new(v2::StatusResponse {
            version: V2_API_VERSION.into(),
            healthz,
            key_id,
        }))
    }

    async fn decrypt(
        &self,
        request: tonic::Request<v2::DecryptRequest>,
    ) -> Result<tonic::Response<v2::DecryptResponse>, tonic::Status> {
        let request = request.into_inner();
        let mut plaintext = self
            .kek
            .unwrap(&request.key_id, &request.ciphertext, &request.annotations)
            .await
            .map_err(|e| e.to_status())?;
        Ok(tonic::Response::new(v2::DecryptResponse {
            plaintext: std::mem::take(&mut *plaintext),
        }))
    }

    async fn encrypt(
        &self,
        request: tonic::Request<v2::EncryptRequest>,
    ) -> Result<tonic::Response<v2::EncryptResponse>, tonic::Status> {
        let request = request.into_inner();
        let wrapped = self
            .kek
            .wrap(&request.plaintext)
            .await
            .map_err(|e| e.to_status())?;
        Ok(tonic::Response::new(v2::EncryptResponse {
            ciphertext: wrapped.ciphertext,
            key_id: wrapped.key_id,
            annotations: wrapped.annotations,
        }))
    }
}

/// KMS v1 calls on a [`Kek`].
struct V1Handler {
    kek: Arc<dyn Kek>,
    runtime_name: String,
    runtime_version: String,
}

#[tonic::async_trait]
impl v1_server::KeyManagementService for V1Handler {
    async fn version(
        &self,
        _request: tonic::Request<v1beta1::VersionRequest>,
    ) -> Result<tonic::Response<v1beta1::VersionResponse>, tonic::Status> {
        Ok(tonic::Response::new(v1beta1::VersionResponse {
            version: V1_API_VERSION.into(),
            runtime_name: self.runtime_name.clone(),
            runtime_version: self.runtime_version.clone(),
        }))
    }

    async fn decrypt(
        &self,
        request: tonic::Request<v1beta1::DecryptRequest>,
    ) -> Result<tonic::Response<v1beta1::DecryptResponse>, tonic::Status> {
        let request = request.into_inner();
        let mut plain = self
            .kek
            .unwrap_v1(&request.cipher)
            .await
            .map_err(|e| e.to_status())?;
        Ok(tonic::Response::new(v1beta1::DecryptResponse {
            plain: std::mem::take(&mut *plain),
        }))
    }

    async fn encrypt(
        &self,
        request: tonic::Request<v1beta1::EncryptRequest>,
    ) -> Result<tonic::Response<v1beta1::EncryptResponse>, tonic::Status> {
        let request = request.into_inner();
        let cipher = self
            .kek
            .wrap_v1(&request.plain)
            .await
            .map_err(|e| e.to_status())?;
        Ok(tonic::Response::new(v1beta1::EncryptResponse { cipher }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_paths() {
        assert!(is_service_path(
            "/v2.KeyManagementService/Status",
            "v2.KeyManagementService"
        ));
        assert!(!is_service_path(
            "/v2.KeyManagementServiceX/Status",
            "v2.KeyManagementService"
        ));
        assert!(!is_service_path(
            "/v2.KeyManagementService",
            "v2.KeyManagementService"
        ));
        assert_eq!(v2_server::SERVICE_NAME, "v2.KeyManagementService");
        assert_eq!(v1_server::SERVICE_NAME, "v1beta1.KeyManagementService");
    }
}
