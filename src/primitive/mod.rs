//! The block-cipher and AEAD primitives, behind a seam.
//!
//! Providers call only the types here, never a cryptography crate directly, so
//! that a different backend (for example an accelerated AES-GCM) can be
//! swapped in by changing this module alone.

mod cbc;
mod gcm;
mod secretbox;

pub(crate) use self::cbc::{AesCbcCipher, BLOCK_LEN};
pub(crate) use self::gcm::{AesGcmCipher, GCM_NONCE_LEN, GCM_TAG_LEN};
pub(crate) use self::secretbox::{
    SecretboxCipher, SECRETBOX_KEY_LEN, SECRETBOX_NONCE_LEN, SECRETBOX_TAG_LEN,
};

/// Key lengths AES accepts, in bytes.
pub(crate) const AES_KEY_LENGTHS: [usize; 3] = [16, 24, 32];

/// A key had a length the primitive does not accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadKeyLength;

/// Authentication or decryption failed; deliberately without detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenFailed;
