//! NaCl secretbox: XSalsa20-Poly1305 with a 192-bit nonce and a 128-bit tag.

use xsalsa20poly1305::aead::{AeadInPlace, KeyInit};
use xsalsa20poly1305::{Tag, XSalsa20Poly1305};

use super::{BadKeyLength, OpenFailed};

/// Nonce length in bytes.
pub(crate) const SECRETBOX_NONCE_LEN: usize = 24;
/// Tag length in bytes.
pub(crate) const SECRETBOX_TAG_LEN: usize = 16;
/// The only key length secretbox accepts.
pub(crate) const SECRETBOX_KEY_LEN: usize = 32;

/// A secretbox key (zeroized on drop by the underlying crate).
pub(crate) struct SecretboxCipher(Box<XSalsa20Poly1305>);

impl SecretboxCipher {
    /// Takes a 32-byte key.
    pub(crate) fn new(key: &[u8]) -> Result<Self, BadKeyLength> {
        if key.len() != SECRETBOX_KEY_LEN {
            return Err(BadKeyLength);
        }
        XSalsa20Poly1305::new_from_slice(key)
            .map(|c| Self(Box::new(c)))
            .map_err(|_| BadKeyLength)
    }

    /// Encrypts `buf` in place and returns the tag.
    pub(crate) fn seal_in_place(
        &self,
        nonce: &[u8; SECRETBOX_NONCE_LEN],
        buf: &mut [u8],
    ) -> [u8; SECRETBOX_TAG_LEN] {
        // Fails only for messages over 256 GiB; a zero tag keeps such a value
        // unreadable rather than silently wrong.
        self.0
            .encrypt_in_place_detached(nonce.into(), b"", buf)
            .map(Into::into)
            .unwrap_or([0u8; SECRETBOX_TAG_LEN])
    }

    /// Verifies `tag` and decrypts `buf` in place.
    pub(crate) fn open_in_place(
        &self,
        nonce: &[u8; SECRETBOX_NONCE_LEN],
        buf: &mut [u8],
        tag: &[u8; SECRETBOX_TAG_LEN],
    ) -> Result<(), OpenFailed> {
        self.0
            .decrypt_in_place_detached(nonce.into(), b"", buf, Tag::from_slice(tag))
            .map_err(|_| OpenFailed)
    }
}
