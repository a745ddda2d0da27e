//! Token errors as the plugin reports them: a [`KekError`] whose kind picks
//! the gRPC code and whose message names the PKCS#11 function and return
//! value (`C_Encrypt: CKR_DEVICE_REMOVED`), never a key or the PIN.

use cryptoki::context::Function;
use cryptoki::error::{Error, RvError};
use k8s_envelope_kms_plugin::{KekError, KekErrorKind};

/// What a failed PKCS#11 call means for the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// The token, its sessions or the module's state are gone: drop the
    /// sessions and connect again (`UNAVAILABLE` until then).
    TokenLost,
    /// The ciphertext does not decrypt under the key of its key ID
    /// (`INVALID_ARGUMENT`).
    NotAuthentic,
    /// Something an operator must fix: the PIN, the key's attributes, a
    /// mechanism the token lacks (`FAILED_PRECONDITION`).
    Misconfigured,
    /// Anything else (`INTERNAL`).
    Other,
}

/// Classifies a cryptoki error.
pub fn meaning(error: &Error) -> Meaning {
    let Error::Pkcs11(rv, function) = error else {
        return match error {
            Error::LibraryLoading(_) | Error::MissingSymbol(_) | Error::NullFunctionPointer => {
                Meaning::Misconfigured
            }
            _ => Meaning::Other,
        };
    };
    match rv {
        // SoftHSM 2.6 answers a wrong GCM tag with CKR_GENERAL_ERROR from
        // C_Decrypt (2.7 and the standard: CKR_ENCRYPTED_DATA_INVALID).
        RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange => Meaning::NotAuthentic,
        RvError::GeneralError if matches!(function, Function::Decrypt) => Meaning::NotAuthentic,
        RvError::DeviceRemoved
        | RvError::DeviceError
        | RvError::DeviceMemory
        | RvError::TokenNotPresent
        | RvError::TokenNotRecognized
        | RvError::SessionHandleInvalid
        | RvError::SessionClosed
        | RvError::SessionCount
        | RvError::SlotIdInvalid
        | RvError::CryptokiNotInitialized
        | RvError::UserNotLoggedIn
        | RvError::ObjectHandleInvalid
        | RvError::KeyHandleInvalid
        | RvError::GeneralError
        | RvError::FunctionFailed => Meaning::TokenLost,
        RvError::PinIncorrect
        | RvError::PinInvalid
        | RvError::PinLenRange
        | RvError::PinExpired
        | RvError::PinLocked
        | RvError::UserPinNotInitialized
        | RvError::KeyFunctionNotPermitted
        | RvError::KeyTypeInconsistent
        | RvError::KeySizeRange
        | RvError::MechanismInvalid
        | RvError::MechanismParamInvalid
        | RvError::TemplateIncomplete
        | RvError::TemplateInconsistent
        | RvError::AttributeValueInvalid
        | RvError::TokenWriteProtected => Meaning::Misconfigured,
        _ => Meaning::Other,
    }
}

/// `CKR_PIN_INCORRECT` for [`RvError::PinIncorrect`]: the standard's name
/// of a return value (cryptoki prints the standard's prose instead).
pub fn ckr_name(rv: &RvError) -> String {
    match rv {
        RvError::VendorDefined(code) => format!("CKR_VENDOR_DEFINED+{code:#x}"),
        RvError::UnknownErrorCode(code) => format!("unknown return value {code:#x}"),
        other => format!("CKR_{}", screaming_snake(&format!("{other:?}"))),
    }
}

/// `C_Encrypt` for [`Function::Encrypt`].
pub fn function_name(function: &Function) -> String {
    format!("C_{function:?}")
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// `C_Encrypt: CKR_DEVICE_REMOVED`, or cryptoki's own words for an error
/// that is not a PKCS#11 return value.
pub fn describe(error: &Error) -> String {
    match error {
        Error::Pkcs11(rv, function) => format!("{}: {}", function_name(function), ckr_name(rv)),
        Error::LibraryLoading(e) => format!("cannot load the PKCS#11 module: {e}"),
        other => other.to_string(),
    }
}

/// `error`, while doing `what`, as the plugin answers it.
pub fn kek_error(what: &str, error: &Error) -> KekError {
    let kind = match meaning(error) {
        Meaning::TokenLost => KekErrorKind::Unavailable,
        Meaning::NotAuthentic => KekErrorKind::InvalidArgument,
        Meaning::Misconfigured => KekErrorKind::FailedPrecondition,
        Meaning::Other => KekErrorKind::Internal,
    };
    let message = match meaning(error) {
        Meaning::NotAuthentic => format!(
            "{what}: the ciphertext does not decrypt with the key of its key ID ({})",
            describe(error)
        ),
        _ => format!("{what}: {}", describe(error)),
    };
    KekError::new(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_by_their_standard_names() {
        assert_eq!(ckr_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(ckr_name(&RvError::DeviceRemoved), "CKR_DEVICE_REMOVED");
        assert_eq!(
            ckr_name(&RvError::EncryptedDataLenRange),
            "CKR_ENCRYPTED_DATA_LEN_RANGE"
        );
        assert_eq!(
            ckr_name(&RvError::CryptokiAlreadyInitialized),
            "CKR_CRYPTOKI_ALREADY_INITIALIZED"
        );
        assert_eq!(function_name(&Function::Encrypt), "C_Encrypt");
        assert_eq!(
            describe(&Error::Pkcs11(
                RvError::ObjectHandleInvalid,
                Function::EncryptInit
            )),
            "C_EncryptInit: CKR_OBJECT_HANDLE_INVALID"
        );
    }

    #[test]
    fn codes_follow_what_went_wrong() {
        let gone = Error::Pkcs11(RvError::DeviceRemoved, Function::Encrypt);
        assert_eq!(kek_error("wrap", &gone).kind(), KekErrorKind::Unavailable);
        let pin = Error::Pkcs11(RvError::PinIncorrect, Function::Login);
        let e = kek_error("log in", &pin);
        assert_eq!(e.kind(), KekErrorKind::FailedPrecondition);
        assert_eq!(e.message(), "log in: C_Login: CKR_PIN_INCORRECT");
        let tag = Error::Pkcs11(RvError::GeneralError, Function::Decrypt);
        assert_eq!(
            kek_error("unwrap", &tag).kind(),
            KekErrorKind::InvalidArgument
        );
        let init = Error::Pkcs11(RvError::GeneralError, Function::DecryptInit);
        assert_eq!(meaning(&init), Meaning::TokenLost);
    }
}
