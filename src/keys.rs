//! Key material: bytes that are zeroized on drop and never printed.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Secret key bytes.
///
/// The bytes are overwritten with zeros when the value is dropped, and neither
/// `Debug` nor any error message of this crate ever shows them: `Debug` prints
/// only the length.
///
/// ```
/// use k8s_envelope::SecretKey;
///
/// let key = SecretKey::from_base64("c2VjcmV0IGlzIHNlY3VyZQ==").unwrap();
/// assert_eq!(key.len(), 16);
/// assert_eq!(format!("{key:?}"), "SecretKey { len: 16, .. }");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Zeroizing<Vec<u8>>);

impl SecretKey {
    /// Wraps key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Decodes standard base64 the way Go's `base64.StdEncoding` does, as
    /// kube-apiserver decodes the `secret` field of a key: padding required,
    /// line breaks (`\r`, `\n`) ignored anywhere, and the unused bits of the
    /// last character not checked.
    ///
    /// # Errors
    ///
    /// [`InvalidBase64`] when `encoded` is not standard base64; the error does
    /// not contain the input.
    pub fn from_base64(encoded: &str) -> Result<Self, InvalidBase64> {
        const GO_STD: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new()
                .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
                .with_decode_allow_trailing_bits(true),
        );
        let mut stripped = Zeroizing::new(String::new());
        let input = if encoded.contains(['\r', '\n']) {
            // Sized up front: a reallocation would leave a copy behind.
            stripped.reserve_exact(encoded.len());
            stripped.extend(encoded.chars().filter(|c| !matches!(c, '\r' | '\n')));
            stripped.as_str()
        } else {
            encoded
        };
        let mut bytes = Zeroizing::new(Vec::with_capacity(input.len() / 4 * 3 + 3));
        GO_STD
            .decode_vec(input, &mut bytes)
            .map_err(|_| InvalidBase64)?;
        Ok(Self(bytes))
    }

    /// Generates `len` random bytes from the operating system's generator.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Random`] when the operating system's generator fails.
    pub fn generate(len: usize) -> Result<Self, crate::Error> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        crate::random::fill_key(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Number of key bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The key bytes. Handle with care: copies made from this slice are not
    /// zeroized by this type.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The key as standard base64, in a buffer that is zeroized on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        use base64::Engine as _;
        // Room for a line end: pushing it would otherwise move the text to
        // a larger allocation and free this one with the key in it.
        let len = base64::encoded_len(self.0.len(), true).unwrap_or(0);
        let mut text = Zeroizing::new(String::with_capacity(len + 1));
        base64::engine::general_purpose::STANDARD.encode_string(&self.0[..], &mut text);
        text
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("len", &self.0.len())
            .finish_non_exhaustive()
    }
}

impl Zeroize for SecretKey {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for SecretKey {}

/// A key of a static-key provider (aescbc, aesgcm, secretbox) with the name
/// that is written into every value it encrypts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NamedKey {
    /// The key name, written as `<name>:` after the provider prefix.
    pub name: String,
    /// The key bytes.
    pub secret: SecretKey,
}

impl NamedKey {
    /// Pairs a name with key bytes.
    pub fn new(name: impl Into<String>, secret: SecretKey) -> Self {
        Self {
            name: name.into(),
            secret,
        }
    }
}

/// A string was not valid standard base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("secrets must be base64 encoded")]
#[non_exhaustive]
pub struct InvalidBase64;

#[cfg(test)]
mod tests {
    use super::*;

    /// A line end pushed onto the text moves nothing: no copy of the key
    /// is left in freed memory.
    #[test]
    fn base64_text_has_room_for_a_line_end() {
        for len in [16, 24, 32] {
            let text = SecretKey::new(vec![7; len]).to_base64();
            assert!(text.capacity() > text.len(), "{len}: {}", text.capacity());
            assert_eq!(
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text.as_str())
                    .expect("base64"),
                vec![7; len]
            );
        }
    }
}
