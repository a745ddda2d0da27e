//! What can go wrong talking to, or serving, a KMS plugin.

use std::fmt;
use std::io;
use std::time::Duration;

/// A KMS plugin call failed, an endpoint is invalid, or a plugin could not be
/// served.
///
/// Wrapped in [`Error::Kms`](crate::Error::Kms). The message names the
/// endpoint and the gRPC method; it never contains plaintext, DEKs or seeds.
/// A message the plugin sent back is shown, cut to 512 bytes.
///
/// ```
/// use k8s_envelope::kms::{KmsEndpoint, KmsErrorKind};
/// use k8s_envelope::Error;
///
/// let Err(Error::Kms(e)) = KmsEndpoint::parse("tcp://127.0.0.1:8080") else { panic!() };
/// assert!(matches!(e.kind(), KmsErrorKind::InvalidEndpoint(_)));
/// assert_eq!(e.to_string(), r#"invalid KMS endpoint "tcp://127.0.0.1:8080": unsupported scheme "tcp" for remote KMS provider"#);
/// ```
#[derive(Debug)]
pub struct KmsError {
    provider: Option<String>,
    endpoint: Option<String>,
    method: Option<&'static str>,
    kind: KmsErrorKind,
}

/// The kind of a [`KmsError`].
#[non_exhaustive]
#[derive(Debug)]
pub enum KmsErrorKind {
    /// An endpoint is not `unix:///absolute/path` or `unix:///@abstract-name`;
    /// the string says why.
    InvalidEndpoint(String),
    /// The call did not finish within the configured timeout (or the plugin
    /// answered `DEADLINE_EXCEEDED`). The configured timeout.
    Timeout(Duration),
    /// The plugin could not be reached (no socket, connection refused or
    /// lost), or answered `UNAVAILABLE`. The details.
    Unavailable(String),
    /// The plugin answered with another gRPC error status.
    Status {
        /// The gRPC status code.
        code: StatusCode,
        /// The plugin's message, cut to 512 bytes.
        message: String,
    },
    /// The plugin answered, but not as the protocol requires (sizes, key
    /// ID, annotations, an API version other than the one spoken); nothing
    /// from the answer was used. What was wrong.
    InvalidAnswer(String),
    /// A KMS v2 provider has no write key yet: the plugin has not answered
    /// a good Status and Encrypt since the provider was created.
    NotReady,
    /// A KMS provider refuses to write (its write key expired, its DEK's
    /// nonce counter is spent). Why.
    WriteRefused(String),
    /// The plugin's Status was not good (healthz not "ok", a wrong version,
    /// an invalid key ID). What was wrong.
    Unhealthy(String),
    /// A plugin server could not bind, secure or remove its socket.
    Socket(io::Error),
}

/// A gRPC status code, as a plugin answers it (the codes of
/// `google.rpc.Code`), so that no gRPC library's type is part of this API.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// `OK` (0).
    Ok,
    /// `CANCELLED` (1).
    Cancelled,
    /// `UNKNOWN` (2), and any number outside the known codes.
    Unknown,
    /// `INVALID_ARGUMENT` (3).
    InvalidArgument,
    /// `DEADLINE_EXCEEDED` (4).
    DeadlineExceeded,
    /// `NOT_FOUND` (5).
    NotFound,
    /// `ALREADY_EXISTS` (6).
    AlreadyExists,
    /// `PERMISSION_DENIED` (7).
    PermissionDenied,
    /// `RESOURCE_EXHAUSTED` (8).
    ResourceExhausted,
    /// `FAILED_PRECONDITION` (9).
    FailedPrecondition,
    /// `ABORTED` (10).
    Aborted,
    /// `OUT_OF_RANGE` (11).
    OutOfRange,
    /// `UNIMPLEMENTED` (12).
    Unimplemented,
    /// `INTERNAL` (13).
    Internal,
    /// `UNAVAILABLE` (14).
    Unavailable,
    /// `DATA_LOSS` (15).
    DataLoss,
    /// `UNAUTHENTICATED` (16).
    Unauthenticated,
}

impl StatusCode {
    /// Every code, in the order of its number.
    const ALL: [StatusCode; 17] = [
        StatusCode::Ok,
        StatusCode::Cancelled,
        StatusCode::Unknown,
        StatusCode::InvalidArgument,
        StatusCode::DeadlineExceeded,
        StatusCode::NotFound,
        StatusCode::AlreadyExists,
        StatusCode::PermissionDenied,
        StatusCode::ResourceExhausted,
        StatusCode::FailedPrecondition,
        StatusCode::Aborted,
        StatusCode::OutOfRange,
        StatusCode::Unimplemented,
        StatusCode::Internal,
        StatusCode::Unavailable,
        StatusCode::DataLoss,
        StatusCode::Unauthenticated,
    ];

    /// The code of gRPC's number; numbers outside the known codes are
    /// [`Unknown`](Self::Unknown), as gRPC reads them.
    pub fn from_number(number: i32) -> Self {
        usize::try_from(number)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
            .unwrap_or(StatusCode::Unknown)
    }

    /// The code's number on the wire.
    pub fn number(self) -> i32 {
        // The discriminants are the numbers, in order.
        self as i32
    }
}

#[cfg(any(feature = "grpc", feature = "etcd"))]
impl From<tonic::Code> for StatusCode {
    fn from(code: tonic::Code) -> Self {
        StatusCode::from_number(code as i32)
    }
}

#[cfg(any(feature = "grpc", feature = "etcd"))]
impl From<StatusCode> for tonic::Code {
    fn from(code: StatusCode) -> Self {
        tonic::Code::from_i32(code.number())
    }
}

/// Longest plugin message kept in an error, in bytes.
const MAX_MESSAGE: usize = 512;

impl KmsError {
    /// An error of `kind` with no endpoint or method attached; for
    /// implementations of the KMS service traits outside this crate.
    pub fn new(kind: KmsErrorKind) -> Self {
        Self {
            provider: None,
            endpoint: None,
            method: None,
            kind,
        }
    }

    /// Attaches the name of the provider the error is about.
    pub(crate) fn for_provider(mut self, name: &str) -> Self {
        self.provider = Some(name.to_owned());
        self
    }

    /// Attaches the endpoint the error is about (a plugin server names the
    /// socket it could not serve on).
    #[must_use]
    pub fn at(mut self, endpoint: impl fmt::Display) -> Self {
        self.endpoint = Some(endpoint.to_string());
        self
    }

    /// Attaches the gRPC method that failed.
    #[cfg(feature = "grpc")]
    pub(crate) fn in_method(mut self, method: &'static str) -> Self {
        self.method = Some(method);
        self
    }

    /// The name of the KMS provider the error is about (its `name` in the
    /// configuration), for the provider's own refusals: not ready, not
    /// healthy, refusing to write, an invalid answer.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// The endpoint (`unix:///...`) the error is about, if any.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The full gRPC method that failed, for example
    /// `/v2.KeyManagementService/Encrypt`, if the error comes from a call.
    pub fn method(&self) -> Option<&'static str> {
        self.method
    }

    /// What went wrong.
    pub fn kind(&self) -> &KmsErrorKind {
        &self.kind
    }

    /// Whether retrying later may help: a timeout, an unavailable or
    /// unhealthy plugin, or a KMS v2 provider not ready yet (its status
    /// loop will try again).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            KmsErrorKind::Timeout(_)
                | KmsErrorKind::Unavailable(_)
                | KmsErrorKind::NotReady
                | KmsErrorKind::Unhealthy(_)
        )
    }
}

impl fmt::Display for KmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.provider {
            match &self.kind {
                KmsErrorKind::NotReady => {
                    return write!(
                        f,
                        "kms provider {name:?} is not ready: no good status and key from the plugin yet"
                    )
                }
                KmsErrorKind::WriteRefused(why) => {
                    return write!(f, "kms provider {name:?} refuses to write: {why}")
                }
                KmsErrorKind::Unhealthy(what) => {
                    return write!(f, "kms provider {name:?} is not healthy: {what}")
                }
                KmsErrorKind::InvalidAnswer(what) => {
                    return write!(f, "kms provider {name:?}: invalid answer from the plugin: {what}")
                }
                _ => {}
            }
        }
        match (&self.kind, &self.endpoint) {
            (KmsErrorKind::InvalidEndpoint(reason), Some(endpoint)) => {
                return write!(f, "invalid KMS endpoint {endpoint:?}: {reason}");
            }
            (KmsErrorKind::InvalidEndpoint(reason), None) => {
                return write!(f, "invalid KMS endpoint: {reason}");
            }
            _ => {}
        }
        f.write_str("KMS plugin")?;
        if let Some(endpoint) = &self.endpoint {
            write!(f, " {endpoint}")?;
        }
        if let Some(method) = self.method {
            write!(f, " {method}")?;
        }
        f.write_str(": ")?;
        match &self.kind {
            KmsErrorKind::InvalidEndpoint(_) => Ok(()),
            KmsErrorKind::Timeout(timeout) => write!(f, "timed out after {timeout:?}"),
            KmsErrorKind::Unavailable(detail) => write!(f, "unavailable: {detail}"),
            KmsErrorKind::Status { code, message } => {
                write!(f, "error status {code:?} ({}): {message}", code.number())
            }
            KmsErrorKind::InvalidAnswer(detail) => write!(f, "invalid answer: {detail}"),
            KmsErrorKind::NotReady => f.write_str("not ready"),
            KmsErrorKind::WriteRefused(why) => write!(f, "refuses to write: {why}"),
            KmsErrorKind::Unhealthy(what) => write!(f, "not healthy: {what}"),
            KmsErrorKind::Socket(e) => write!(f, "socket: {e}"),
        }
    }
}

impl std::error::Error for KmsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            KmsErrorKind::Socket(e) => Some(e),
            _ => None,
        }
    }
}

/// The error of a KMS provider's own refusal, named after the provider.
pub(crate) fn provider_error(name: &str, kind: KmsErrorKind) -> crate::Error {
    crate::Error::Kms(KmsError::new(kind).for_provider(name))
}

/// Text a plugin sent (a message, a key ID, `healthz`) as this crate shows
/// it: cut to at most 512 bytes on a character boundary (with `...` when
/// cut), control characters replaced by spaces.
///
/// ```
/// assert_eq!(k8s_envelope::kms::clip_message("bad\nkey"), "bad key");
/// ```
pub fn clip_message(message: &str) -> String {
    let mut end = message.len().min(MAX_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut out: String = message[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if end < message.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "grpc")]
    fn display_names_endpoint_and_method() {
        let e = KmsError::new(KmsErrorKind::Timeout(Duration::from_secs(3)))
            .at("unix:///tmp/kms.sock")
            .in_method("/v2.KeyManagementService/Encrypt");
        assert_eq!(
            e.to_string(),
            "KMS plugin unix:///tmp/kms.sock /v2.KeyManagementService/Encrypt: timed out after 3s"
        );
        assert!(e.is_transient());
    }

    #[test]
    fn status_display() {
        let e = KmsError::new(KmsErrorKind::Status {
            code: StatusCode::InvalidArgument,
            message: "uid is required".into(),
        });
        assert_eq!(
            e.to_string(),
            "KMS plugin: error status InvalidArgument (3): uid is required"
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn provider_refusals_name_the_provider_and_say_if_retrying_helps() {
        let cases = [
            (
                KmsErrorKind::NotReady,
                "kms provider \"vault\" is not ready: no good status and key from the plugin yet",
                true,
            ),
            (
                KmsErrorKind::Unhealthy("healthz \"down\"".into()),
                "kms provider \"vault\" is not healthy: healthz \"down\"",
                true,
            ),
            (
                KmsErrorKind::WriteRefused("expired".into()),
                "kms provider \"vault\" refuses to write: expired",
                false,
            ),
            (
                KmsErrorKind::InvalidAnswer("empty key ID".into()),
                "kms provider \"vault\": invalid answer from the plugin: empty key ID",
                false,
            ),
        ];
        for (kind, message, transient) in cases {
            let crate::Error::Kms(e) = provider_error("vault", kind) else {
                panic!("not a KMS error")
            };
            assert_eq!(e.provider(), Some("vault"));
            assert_eq!(e.to_string(), message);
            assert_eq!(e.is_transient(), transient, "{e}");
        }
        let e = KmsError::new(KmsErrorKind::InvalidAnswer("version \"v9\"".into()))
            .at("unix:///tmp/kms.sock");
        assert_eq!(
            e.to_string(),
            "KMS plugin unix:///tmp/kms.sock: invalid answer: version \"v9\""
        );
        assert_eq!(e.provider(), None);
    }

    #[test]
    fn status_codes_keep_their_numbers() {
        for number in 0..17 {
            assert_eq!(StatusCode::from_number(number).number(), number);
        }
        assert_eq!(StatusCode::from_number(3), StatusCode::InvalidArgument);
        assert_eq!(StatusCode::from_number(16), StatusCode::Unauthenticated);
        assert_eq!(StatusCode::from_number(17), StatusCode::Unknown);
        assert_eq!(StatusCode::from_number(-1), StatusCode::Unknown);
    }

    #[test]
    fn clip_message_bounds_length_and_strips_controls() {
        assert_eq!(clip_message("a\nb"), "a b");
        let long = "é".repeat(400);
        let clipped = clip_message(&long);
        assert!(clipped.len() <= MAX_MESSAGE + 3);
        assert!(clipped.ends_with("..."));
    }
}
