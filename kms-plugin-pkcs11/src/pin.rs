//! The user PIN: from a file only its owner can read, or from an
//! environment variable; never from the command line (where `ps` shows it).

use std::path::Path;

use cryptoki::types::AuthPin;
use k8s_envelope_kms_plugin::{read_private_file, KekError};
use zeroize::Zeroizing;

/// The environment variable the PIN can come from when no `--pin-file` is
/// given.
pub const PIN_ENV: &str = "KMS_PLUGIN_PKCS11_PIN";

/// The longest PIN read (PKCS#11 tokens take far shorter ones).
const MAX_PIN: u64 = 256;

/// Reads the PIN from `file`, or else from [`PIN_ENV`].
///
/// One trailing newline (`\n` or `\r\n`) is dropped, as `echo` writes one.
///
/// # Errors
///
/// The file is not private (see `read_private_file`), is empty, is longer
/// than 256 bytes or not UTF-8; or, without a file, the variable is unset
/// or empty. The messages never contain the PIN.
pub fn read_pin(file: Option<&Path>) -> Result<AuthPin, KekError> {
    let raw: Zeroizing<Vec<u8>> = match file {
        Some(path) => read_private_file(path, "PIN file", MAX_PIN)?,
        None => match std::env::var_os(PIN_ENV) {
            Some(value) => Zeroizing::new(value.into_encoded_bytes()),
            None => {
                return Err(KekError::failed_precondition(format!(
                    "no PIN: give --pin-file FILE (mode 0600), or set {PIN_ENV}"
                )))
            }
        },
    };
    let source = match file {
        Some(path) => format!("PIN file {}", path.display()),
        None => PIN_ENV.to_owned(),
    };
    let pin = raw
        .strip_suffix(b"\n")
        .map(|p| p.strip_suffix(b"\r").unwrap_or(p))
        .unwrap_or(&raw);
    if pin.is_empty() {
        return Err(KekError::failed_precondition(format!(
            "{source}: the PIN is empty"
        )));
    }
    let pin = std::str::from_utf8(pin)
        .map_err(|_| KekError::failed_precondition(format!("{source}: the PIN is not UTF-8")))?;
    // Copied once into a box of exactly its size, which AuthPin wipes on
    // drop; `raw` is wiped when it goes out of scope.
    Ok(AuthPin::new(Box::from(pin)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use cryptoki::types::AuthPin;
    use zeroize::Zeroize as _;

    use super::*;

    fn exposed(pin: &AuthPin) -> String {
        use secrecy::ExposeSecret as _;
        pin.expose_secret().to_owned()
    }

    #[test]
    fn a_private_file_with_a_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let pin = read_pin(Some(&path)).expect("pin");
        let mut text = exposed(&pin);
        assert_eq!(text, "1234");
        text.zeroize();
    }

    #[test]
    fn a_file_others_can_read_is_refused_without_its_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pin");
        std::fs::write(&path, "98761234").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read_pin(Some(&path)).expect_err("refused");
        assert!(err.message().contains("chmod 600"), "{err}");
        assert!(!err.message().contains("98761234"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, "\n").expect("write");
        let err = read_pin(Some(&path)).expect_err("empty");
        assert!(err.message().contains("empty"), "{err}");
    }
}
