//! AES-GCM with a 96-bit nonce and a 128-bit tag, for 128-, 192- and 256-bit
//! keys: the RustCrypto backend (`aes-gcm`), the default.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce, Tag};
use zeroize::Zeroize;

use super::{BadKeyLength, OpenFailed, GCM_NONCE_LEN, GCM_TAG_LEN};

type Aes192Gcm = AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

/// An AES-GCM key schedule (zeroized on drop by the underlying crates).
pub(crate) enum AesGcmCipher {
    Aes128(Box<Aes128Gcm>),
    Aes192(Box<Aes192Gcm>),
    Aes256(Box<Aes256Gcm>),
}

impl AesGcmCipher {
    /// Expands a 16-, 24- or 32-byte key.
    pub(crate) fn new(key: &[u8]) -> Result<Self, BadKeyLength> {
        Ok(match key.len() {
            16 => Self::Aes128(Box::new(
                Aes128Gcm::new_from_slice(key).map_err(|_| BadKeyLength)?,
            )),
            24 => Self::Aes192(Box::new(
                Aes192Gcm::new_from_slice(key).map_err(|_| BadKeyLength)?,
            )),
            32 => Self::Aes256(Box::new(
                Aes256Gcm::new_from_slice(key).map_err(|_| BadKeyLength)?,
            )),
            _ => return Err(BadKeyLength),
        })
    }

    /// Appends `ciphertext || tag` of `plaintext` to `out` (reserve
    /// `plaintext.len() + GCM_TAG_LEN` first to avoid a reallocation).
    pub(crate) fn seal_append(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.extend_from_slice(plaintext);
        let buf = &mut out[start..];
        let nonce = Nonce::from(*nonce);
        // Encryption fails only for inputs over 64 GiB, far beyond any value
        // this crate accepts; an all-zero tag then makes the value unreadable
        // rather than silently wrong.
        let tag = match self {
            Self::Aes128(c) => c.encrypt_inout_detached(&nonce, aad, buf.into()),
            Self::Aes192(c) => c.encrypt_inout_detached(&nonce, aad, buf.into()),
            Self::Aes256(c) => c.encrypt_inout_detached(&nonce, aad, buf.into()),
        };
        out.extend_from_slice(&tag.map(Into::into).unwrap_or([0u8; GCM_TAG_LEN]));
    }

    /// Writes `ciphertext || tag` of `plaintext` into `out` from `start` on,
    /// making `out` exactly that long. Bytes `out` already holds are
    /// overwritten, not zero-filled first: a reused buffer costs nothing.
    pub(crate) fn seal_at(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
        start: usize,
    ) {
        out.truncate(start);
        self.seal_append(nonce, aad, plaintext, out);
    }

    /// [`seal_append`](Self::seal_append) with a one-off AES-256 key, whose
    /// schedule stays on the stack (a KMS v2 seed-mode write derives a key per
    /// value).
    pub(crate) fn seal_append_with_key(
        key: &[u8; 32],
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) {
        let cipher = Aes256Gcm::new(key.into());
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag =
            cipher.encrypt_inout_detached(&Nonce::from(*nonce), aad, (&mut out[start..]).into());
        out.extend_from_slice(&tag.map(Into::into).unwrap_or([0u8; GCM_TAG_LEN]));
    }

    /// Verifies `tag` and decrypts `ciphertext` into `out`, replacing its
    /// contents and reusing its allocation. On failure `out` is zeroized
    /// and left empty.
    pub(crate) fn open_into(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; GCM_TAG_LEN],
        out: &mut Vec<u8>,
    ) -> Result<(), OpenFailed> {
        out.clear();
        out.extend_from_slice(ciphertext);
        let nonce = Nonce::from(*nonce);
        let tag = Tag::from(*tag);
        let buf = out.as_mut_slice();
        let result = match self {
            Self::Aes128(c) => c.decrypt_inout_detached(&nonce, aad, buf.into(), &tag),
            Self::Aes192(c) => c.decrypt_inout_detached(&nonce, aad, buf.into(), &tag),
            Self::Aes256(c) => c.decrypt_inout_detached(&nonce, aad, buf.into(), &tag),
        };
        result.map_err(|_| {
            out.zeroize();
            OpenFailed
        })
    }

    /// Verifies `tag` and decrypts `ciphertext` into a new buffer.
    pub(crate) fn open(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; GCM_TAG_LEN],
    ) -> Result<Vec<u8>, OpenFailed> {
        let mut plaintext = Vec::with_capacity(ciphertext.len());
        self.open_into(nonce, aad, ciphertext, tag, &mut plaintext)?;
        Ok(plaintext)
    }
}
