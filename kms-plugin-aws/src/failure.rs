//! AWS errors as the plugin reports them: a [`KekError`] whose kind picks
//! the gRPC code and whose message names the KMS operation and the AWS
//! error code (`KMS Encrypt: AccessDeniedException: ...`), never a DEK,
//! a credential or the request.
//!
//! | AWS says | gRPC code | why |
//! |---|---|---|
//! | throttling, `KMSInternalException`, `DependencyTimeoutException`, `KeyUnavailableException`, any 5xx, a timeout, no connection, a credential provider that failed or timed out (instance metadata, STS) | `UNAVAILABLE` | retrying later can help (the SDK already retried inside the call's time) |
//! | `AccessDeniedException`, `DisabledException`, `KMSInvalidStateException` (pending deletion), `NotFoundException`, `InvalidKeyUsageException`, `UnsupportedOperationException`, rejected credentials, no region, no credentials found | `FAILED_PRECONDITION` | an operator must fix something; retrying the same call cannot help |
//! | `InvalidCiphertextException`, `IncorrectKeyException`, `ValidationException` | `INVALID_ARGUMENT` | the value itself is refused: damaged, another key's, or another context's |
//! | anything else | `INTERNAL` | |

use std::fmt;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use k8s_envelope::kms::clip_message;
use k8s_envelope_kms_plugin::{KekError, KekErrorKind};

/// A failed AWS KMS call, reduced to what decides the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsFailure {
    /// The service answered with an error code (and maybe a message).
    Service {
        /// `AccessDeniedException`, `ThrottlingException`, ...
        code: String,
        /// The service's message (it names principals and resources, which
        /// helps an operator), clipped as plugin messages are
        /// ([`clip_message`]: control characters out, 512 bytes at most).
        message: Option<String>,
        /// The HTTP status was 5xx.
        server_error: bool,
    },
    /// No answer within the plugin's time for the call (`--timeout-ms`).
    TimedOut,
    /// No connection, or an answer that could not be read.
    Unreachable(String),
    /// The request could not be made: no region, no credentials.
    NotConfigured(String),
}

impl AwsFailure {
    /// What went wrong in `error`, the SDK's error of any operation.
    pub fn of<E>(error: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match error {
            SdkError::ServiceError(service) => Self::Service {
                code: service
                    .err()
                    .code()
                    .unwrap_or("an error without a code")
                    .to_owned(),
                message: service.err().message().map(clip_message),
                server_error: service.raw().status().is_server_error(),
            },
            SdkError::TimeoutError(_) => Self::TimedOut,
            SdkError::DispatchFailure(failure) if failure.is_timeout() => Self::TimedOut,
            _ => {
                let said = clip_message(&DisplayErrorContext(error).to_string());
                match credentials_error(error) {
                    Some(
                        CredentialsError::CredentialsNotLoaded(_)
                        | CredentialsError::InvalidConfiguration(_),
                    ) => Self::NotConfigured(format!("no usable AWS credentials: {said}")),
                    Some(CredentialsError::ProviderTimedOut(_)) => Self::TimedOut,
                    Some(_) => Self::Unreachable(format!("AWS credentials: {said}")),
                    None if matches!(error, SdkError::ConstructionFailure(_)) => {
                        Self::NotConfigured(said)
                    }
                    None => Self::Unreachable(said),
                }
            }
        }
    }

    /// The AWS error code, when the service answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The plugin's answer: the gRPC code, and a message naming `operation`.
    pub fn kek_error(&self, operation: &str) -> KekError {
        KekError::new(self.kind(), format!("KMS {operation}: {self}"))
    }

    /// The kind, and with it the gRPC code (the module's table).
    pub fn kind(&self) -> KekErrorKind {
        match self {
            Self::Service {
                code, server_error, ..
            } => kind_of_code(code, *server_error),
            Self::TimedOut | Self::Unreachable(_) => KekErrorKind::Unavailable,
            Self::NotConfigured(_) => KekErrorKind::FailedPrecondition,
        }
    }

    /// Whether retrying later can help (and a passing failure must not
    /// turn the plugin unhealthy at once).
    pub fn is_transient(&self) -> bool {
        self.kind() == KekErrorKind::Unavailable
    }
}

/// The credential provider's error behind `error`, if that is what failed:
/// the SDK resolves credentials as it sends, so a missing or refused
/// identity arrives as a dispatch failure, not as the service's answer.
fn credentials_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a CredentialsError> {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(found) = error.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        source = error.source();
    }
    None
}

fn kind_of_code(code: &str, server_error: bool) -> KekErrorKind {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "LimitExceededException"
        | "KMSInternalException"
        | "KMSInternal"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "DependencyTimeoutException"
        | "KeyUnavailableException"
        | "RequestTimeout"
        | "RequestTimeoutException" => KekErrorKind::Unavailable,
        "AccessDeniedException"
        | "DisabledException"
        | "KMSInvalidStateException"
        | "NotFoundException"
        | "InvalidKeyUsageException"
        | "InvalidArnException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "InvalidClientTokenId"
        | "MissingAuthenticationToken"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "SignatureDoesNotMatch"
        | "CustomKeyStoreInvalidStateException"
        | "UnsupportedOperationException" => KekErrorKind::FailedPrecondition,
        "InvalidCiphertextException"
        | "IncorrectKeyException"
        | "ValidationException"
        | "InvalidGrantTokenException" => KekErrorKind::InvalidArgument,
        _ if server_error => KekErrorKind::Unavailable,
        _ => KekErrorKind::Internal,
    }
}

/// What an error code means, for the operator reading the message.
fn meaning_of_code(code: &str) -> Option<&'static str> {
    Some(match code {
        "AccessDeniedException" => {
            "the plugin's AWS identity may not do this with the key (key policy, IAM policy or grants)"
        }
        "DisabledException" => "the key is disabled",
        "KMSInvalidStateException" => "the key's state forbids this (pending deletion or import?)",
        "NotFoundException" => "no such key or alias in this account and region",
        "InvalidCiphertextException" => {
            "the ciphertext does not decrypt: damaged, or wrapped with another encryption context"
        }
        "IncorrectKeyException" => "the ciphertext was wrapped by another key than its key ID names",
        "ThrottlingException" => "AWS KMS throttled the call (the account's request quota)",
        "UnrecognizedClientException" | "InvalidClientTokenId" | "InvalidSignatureException" => {
            "AWS refused the plugin's credentials"
        }
        "ExpiredTokenException" | "ExpiredToken" => "the plugin's AWS credentials expired",
        _ => return None,
    })
}

impl fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service { code, message, .. } => {
                f.write_str(code)?;
                if let Some(meaning) = meaning_of_code(code) {
                    write!(f, " ({meaning})")?;
                }
                if let Some(message) = message {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Self::TimedOut => f.write_str("no answer in time (AWS KMS unreachable or slow)"),
            Self::Unreachable(why) => write!(f, "AWS KMS unreachable: {why}"),
            Self::NotConfigured(why) => write!(f, "the request could not be made: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_kms::error::ErrorMetadata;
    use aws_sdk_kms::operation::decrypt::DecryptError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn service_error(code: &str, message: &str, status: u16) -> SdkError<DecryptError> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::empty(),
        );
        SdkError::service_error(DecryptError::generic(meta), raw)
    }

    fn answer(code: &str, status: u16) -> KekError {
        AwsFailure::of(&service_error(code, "m", status)).kek_error("Decrypt")
    }

    #[test]
    fn retryable_errors_are_unavailable() {
        for code in [
            "ThrottlingException",
            "KMSInternalException",
            "DependencyTimeoutException",
            "KeyUnavailableException",
        ] {
            assert_eq!(
                answer(code, 400).kind(),
                KekErrorKind::Unavailable,
                "{code}"
            );
        }
        assert_eq!(
            answer("SomethingNew", 503).kind(),
            KekErrorKind::Unavailable
        );
        assert!(AwsFailure::TimedOut.is_transient());
        assert_eq!(
            AwsFailure::TimedOut.kek_error("Encrypt").kind(),
            KekErrorKind::Unavailable
        );
    }

    /// What moto cannot produce (it never answers DisabledException or
    /// KMSInvalidStateException): the codes of real AWS KMS.
    #[test]
    fn what_an_operator_must_fix_is_failed_precondition() {
        for code in [
            "AccessDeniedException",
            "DisabledException",
            "KMSInvalidStateException",
            "NotFoundException",
            "UnrecognizedClientException",
            "ExpiredTokenException",
        ] {
            let e = answer(code, 400);
            assert_eq!(e.kind(), KekErrorKind::FailedPrecondition, "{code}");
            assert!(
                e.message().starts_with(&format!("KMS Decrypt: {code}")),
                "{e}"
            );
            assert!(!AwsFailure::of(&service_error(code, "", 400)).is_transient());
        }
    }

    #[test]
    fn refused_values_are_invalid_argument() {
        for code in ["InvalidCiphertextException", "IncorrectKeyException"] {
            assert_eq!(
                answer(code, 400).kind(),
                KekErrorKind::InvalidArgument,
                "{code}"
            );
        }
        assert_eq!(answer("Unheard", 400).kind(), KekErrorKind::Internal);
    }

    #[test]
    fn messages_name_the_code_and_clip_the_service_text() {
        let e = AwsFailure::of(&service_error(
            "DisabledException",
            "key\nx is disabled\u{7}",
            400,
        ))
        .kek_error("Encrypt");
        assert_eq!(
            e.message(),
            "KMS Encrypt: DisabledException (the key is disabled): key x is disabled "
        );
        let long = "y".repeat(1000);
        let e = AwsFailure::of(&service_error("X", &long, 400)).kek_error("Encrypt");
        assert!(e.message().len() < 540, "{}", e.message().len());
    }
}
