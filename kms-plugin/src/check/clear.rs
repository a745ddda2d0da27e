//! `encrypt.dek_concealed`: the DEK must not show in the ciphertext. A
//! plugin that "wraps" a DEK by encoding it (Kubernetes' base64 mock, a
//! plugin left in a debug mode, one that returns the DEK as it is) passes
//! every rule kube-apiserver checks, and leaves every Secret readable by
//! anyone who can read etcd.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;

use super::{CheckResult, Outcome};

/// The check's id.
pub(super) const ID: &str = "encrypt.dek_concealed";

/// Bytes of the DEK whose base64 is searched: a multiple of three, so that
/// its text does not depend on what follows it in the ciphertext.
const BASE64_PREFIX: usize = 30;

/// How the DEK shows in `ciphertext`, if it does: its bytes, or its
/// base64 (standard or URL-safe) or hex, anywhere.
fn shown_as(dek: &[u8], ciphertext: &[u8]) -> Option<&'static str> {
    if contains(ciphertext, dek) {
        return Some("its own bytes");
    }
    let prefix = &dek[..dek.len().min(BASE64_PREFIX)];
    let encodings = [
        ("base64", STANDARD.encode(prefix)),
        ("URL-safe base64", URL_SAFE.encode(prefix)),
        ("hex", hex(dek, false)),
        ("hex", hex(dek, true)),
    ];
    encodings
        .into_iter()
        .find(|(_, text)| contains(ciphertext, text.as_bytes()))
        .map(|(how, _)| how)
}

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The check of `ciphertext`, the plugin's Encrypt of `dek`. With
/// `allow_insecure` (a test mock) a DEK in clear warns instead of failing.
pub(super) fn check(dek: &[u8], ciphertext: &[u8], allow_insecure: bool) -> CheckResult {
    let Some(how) = shown_as(dek, ciphertext) else {
        return CheckResult::required(
            ID,
            Ok("the DEK is not in the ciphertext (as bytes, base64 or hex)".into()),
        );
    };
    let detail = format!(
        "the ciphertext holds the DEK in clear (as {how}): the plugin does not encrypt, \
         and anyone who can read etcd can read every value it wraps"
    );
    if allow_insecure {
        CheckResult::new(
            ID,
            false,
            Outcome::Warn,
            format!("{detail} (allowed by --allow-insecure, for a test mock)"),
        )
    } else {
        CheckResult::new(
            ID,
            true,
            Outcome::Fail,
            format!("{detail}; --allow-insecure passes a test mock"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts with bytes whose base64 differs between the alphabets
    /// (`+/+/`, `-_-_`).
    fn dek() -> Vec<u8> {
        let mut dek = vec![0xfb, 0xff, 0xbf];
        dek.extend_from_slice(b"a DEK of thirty-two bytes....");
        assert_eq!(dek.len(), 32);
        dek
    }

    #[test]
    fn the_dek_is_found_raw_base64_url_safe_and_hex() {
        let dek = dek();
        let embedded = |text: &[u8]| [b"prefix:".as_slice(), text, b":suffix"].concat();
        for (ciphertext, how) in [
            (embedded(&dek), "its own bytes"),
            (STANDARD.encode(&dek).into_bytes(), "base64"),
            (embedded(STANDARD.encode(&dek).as_bytes()), "base64"),
            (
                URL_SAFE
                    .encode([&[1_u8, 2, 3][..], &dek].concat())
                    .into_bytes(),
                "URL-safe base64",
            ),
            (embedded(hex(&dek, false).as_bytes()), "hex"),
            (embedded(hex(&dek, true).as_bytes()), "hex"),
        ] {
            assert_eq!(shown_as(&dek, &ciphertext), Some(how), "{how}");
        }
        let sealed = [0x5a_u8; 60];
        assert_eq!(shown_as(&dek, &sealed), None);
    }

    #[test]
    fn a_dek_in_clear_fails_unless_allowed() {
        let dek = dek();
        let ciphertext = STANDARD.encode(&dek).into_bytes();
        let failed = check(&dek, &ciphertext, false);
        assert_eq!((failed.outcome, failed.required), (Outcome::Fail, true));
        assert!(
            failed.detail.contains("holds the DEK in clear (as base64)"),
            "{}",
            failed.detail
        );
        let allowed = check(&dek, &ciphertext, true);
        assert_eq!((allowed.outcome, allowed.required), (Outcome::Warn, false));
        assert_eq!(check(&dek, &[7; 60], false).outcome, Outcome::Pass);
    }
}
