//! AES-GCM with a 96-bit nonce and a 128-bit tag, for 128-, 192- and 256-bit
//! keys: the AWS-LC backend (`aws-lc-rs`), with the `aws-lc` feature.
//!
//! Same interface and bytes as the RustCrypto backend in `gcm.rs`; AWS-LC
//! runs its fused AES-GCM assembly (AES-NI with PCLMULQDQ, or VAES with
//! VPCLMULQDQ on AVX-512 machines). Seal and open are out of place, so the
//! plaintext is not copied first: the output is written once.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_192_GCM, AES_256_GCM};
use zeroize::Zeroize;

use super::{BadKeyLength, OpenFailed, GCM_NONCE_LEN, GCM_TAG_LEN};

/// An AES-GCM key (AWS-LC cleanses its key schedule when it is freed).
pub(crate) struct AesGcmCipher(LessSafeKey);

impl AesGcmCipher {
    /// Expands a 16-, 24- or 32-byte key.
    pub(crate) fn new(key: &[u8]) -> Result<Self, BadKeyLength> {
        let algorithm = match key.len() {
            16 => &AES_128_GCM,
            24 => &AES_192_GCM,
            32 => &AES_256_GCM,
            _ => return Err(BadKeyLength),
        };
        let key = UnboundKey::new(algorithm, key).map_err(|_| BadKeyLength)?;
        Ok(Self(LessSafeKey::new(key)))
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
        self.seal_at(nonce, aad, plaintext, out, start);
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
        out.resize(start + plaintext.len() + GCM_TAG_LEN, 0);
        let (ciphertext, tag) = out[start..].split_at_mut(plaintext.len());
        let sealed = self.0.seal_out_of_place_scatter(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            plaintext,
            ciphertext,
            &[],
            tag,
        );
        // Fails only on inconsistent lengths (not the case here) or inputs
        // over 64 GiB; an all-zero tag then makes the value unreadable rather
        // than silently wrong, and no plaintext is left behind.
        if sealed.is_err() {
            out[start..].fill(0);
        }
    }

    /// [`seal_append`](Self::seal_append) with a one-off AES-256 key (a KMS
    /// v2 seed-mode write derives a key per value).
    pub(crate) fn seal_append_with_key(
        key: &[u8; 32],
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) {
        match Self::new(key) {
            Ok(cipher) => cipher.seal_append(nonce, aad, plaintext, out),
            // A 32-byte key is always accepted; were it not, the value would
            // be unreadable zeros rather than silently wrong.
            Err(BadKeyLength) => out.resize(out.len() + plaintext.len() + GCM_TAG_LEN, 0),
        }
    }

    /// Verifies `tag` and decrypts `ciphertext` into `out`, replacing its
    /// contents and reusing its allocation (bytes it already holds are
    /// overwritten, not zero-filled first). On failure `out` is zeroized and
    /// left empty.
    pub(crate) fn open_into(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; GCM_TAG_LEN],
        out: &mut Vec<u8>,
    ) -> Result<(), OpenFailed> {
        out.resize(ciphertext.len(), 0);
        self.0
            .open_separate_gather(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                ciphertext,
                tag,
                out,
            )
            .map_err(|_| {
                // AWS-LC may have written unauthenticated plaintext.
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
        let mut plaintext = Vec::new();
        self.open_into(nonce, aad, ciphertext, tag, &mut plaintext)?;
        Ok(plaintext)
    }
}
