//! AES-CBC over whole blocks; padding is the caller's business. The AWS-LC
//! backend (`aws-lc-rs`), with the `aws-lc` feature.

use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128,
    AES_192, AES_256,
};
use aws_lc_rs::iv::FixedLength;

use super::{BadKeyLength, BLOCK_LEN};

/// An AES key schedule used in CBC mode (AWS-LC cleanses it when freed).
pub(crate) struct AesCbcCipher {
    encrypting: EncryptingKey,
    decrypting: DecryptingKey,
}

impl AesCbcCipher {
    /// Expands a 16-, 24- or 32-byte key.
    pub(crate) fn new(key: &[u8]) -> Result<Self, BadKeyLength> {
        let algorithm = match key.len() {
            16 => &AES_128,
            24 => &AES_192,
            32 => &AES_256,
            _ => return Err(BadKeyLength),
        };
        let unbound = || UnboundCipherKey::new(algorithm, key).map_err(|_| BadKeyLength);
        Ok(Self {
            encrypting: EncryptingKey::cbc(unbound()?).map_err(|_| BadKeyLength)?,
            decrypting: DecryptingKey::cbc(unbound()?).map_err(|_| BadKeyLength)?,
        })
    }

    /// Encrypts `buf` in place; `buf.len()` must be a multiple of 16 (the
    /// caller pads).
    pub(crate) fn encrypt_blocks(&self, iv: &[u8; BLOCK_LEN], buf: &mut [u8]) {
        debug_assert_eq!(buf.len() % BLOCK_LEN, 0);
        let context = EncryptionContext::Iv128(FixedLength::from(*iv));
        // Fails only when the length is not a multiple of the block size,
        // which the callers rule out; the buffer is then left as it was...
        if self.encrypting.less_safe_encrypt(buf, context).is_err() {
            // ...so no plaintext may remain in it.
            buf.fill(0);
        }
    }

    /// Decrypts `buf` in place; `buf.len()` must be a multiple of 16.
    pub(crate) fn decrypt_blocks(&self, iv: &[u8; BLOCK_LEN], buf: &mut [u8]) {
        debug_assert_eq!(buf.len() % BLOCK_LEN, 0);
        let context = DecryptionContext::Iv128(FixedLength::from(*iv));
        // As above: a failure leaves zeros, which the padding check refuses.
        if self.decrypting.decrypt(buf, context).is_err() {
            buf.fill(0);
        }
    }
}
