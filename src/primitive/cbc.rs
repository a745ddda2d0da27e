//! AES-CBC over whole blocks; padding is the caller's business. The
//! RustCrypto backend (`aes` + `cbc`), the default.

use aes::cipher::inout::InOutBuf;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit};
use aes::{Aes128, Aes192, Aes256};

use super::{BadKeyLength, BLOCK_LEN};

/// An AES key schedule used in CBC mode (zeroized on drop by the `aes` crate).
pub(crate) enum AesCbcCipher {
    Aes128(Box<Aes128>),
    Aes192(Box<Aes192>),
    Aes256(Box<Aes256>),
}

impl AesCbcCipher {
    /// Expands a 16-, 24- or 32-byte key.
    pub(crate) fn new(key: &[u8]) -> Result<Self, BadKeyLength> {
        Ok(match key.len() {
            16 => Self::Aes128(Box::new(
                Aes128::new_from_slice(key).map_err(|_| BadKeyLength)?,
            )),
            24 => Self::Aes192(Box::new(
                Aes192::new_from_slice(key).map_err(|_| BadKeyLength)?,
            )),
            32 => Self::Aes256(Box::new(
                Aes256::new_from_slice(key).map_err(|_| BadKeyLength)?,
            )),
            _ => return Err(BadKeyLength),
        })
    }

    /// Encrypts `buf` in place; `buf.len()` must be a multiple of 16 (the
    /// caller pads).
    pub(crate) fn encrypt_blocks(&self, iv: &[u8; BLOCK_LEN], buf: &mut [u8]) {
        debug_assert_eq!(buf.len() % BLOCK_LEN, 0);
        let (blocks, _) = InOutBuf::from(buf).into_chunks();
        let iv = (*iv).into();
        match self {
            Self::Aes128(c) => {
                cbc::Encryptor::inner_iv_init((**c).clone(), &iv).encrypt_blocks_inout(blocks)
            }
            Self::Aes192(c) => {
                cbc::Encryptor::inner_iv_init((**c).clone(), &iv).encrypt_blocks_inout(blocks)
            }
            Self::Aes256(c) => {
                cbc::Encryptor::inner_iv_init((**c).clone(), &iv).encrypt_blocks_inout(blocks)
            }
        }
    }

    /// Decrypts `buf` in place; `buf.len()` must be a multiple of 16.
    pub(crate) fn decrypt_blocks(&self, iv: &[u8; BLOCK_LEN], buf: &mut [u8]) {
        debug_assert_eq!(buf.len() % BLOCK_LEN, 0);
        let (blocks, _) = InOutBuf::from(buf).into_chunks();
        let iv = (*iv).into();
        match self {
            Self::Aes128(c) => {
                cbc::Decryptor::inner_iv_init((**c).clone(), &iv).decrypt_blocks_inout(blocks)
            }
            Self::Aes192(c) => {
                cbc::Decryptor::inner_iv_init((**c).clone(), &iv).decrypt_blocks_inout(blocks)
            }
            Self::Aes256(c) => {
                cbc::Decryptor::inner_iv_init((**c).clone(), &iv).decrypt_blocks_inout(blocks)
            }
        }
    }
}
