//! The block-cipher and AEAD primitives, behind a seam.
//!
//! Providers call only the types here, never a cryptography crate directly, so
//! that a different backend can be swapped in by changing this module alone.
//! The default backend is RustCrypto (`aes-gcm`, `aes` + `cbc`,
//! `salsa20` + `poly1305`); the `aws-lc` feature moves AES-GCM and AES-CBC to
//! AWS-LC (`aws-lc-rs`), with the same bytes on the wire.

#[cfg(not(feature = "aws-lc"))]
mod cbc;
#[cfg(feature = "aws-lc")]
#[path = "cbc_aws_lc.rs"]
mod cbc;
#[cfg(not(feature = "aws-lc"))]
mod gcm;
#[cfg(feature = "aws-lc")]
#[path = "gcm_aws_lc.rs"]
mod gcm;
mod secretbox;

pub(crate) use self::cbc::AesCbcCipher;
pub(crate) use self::gcm::AesGcmCipher;
pub(crate) use self::secretbox::{
    SecretboxCipher, SECRETBOX_KEY_LEN, SECRETBOX_NONCE_LEN, SECRETBOX_TAG_LEN,
};

/// Key lengths AES accepts, in bytes.
pub(crate) const AES_KEY_LENGTHS: [usize; 3] = [16, 24, 32];

/// AES block (and CBC IV) length in bytes.
pub(crate) const BLOCK_LEN: usize = 16;

/// AES-GCM nonce length in bytes.
pub(crate) const GCM_NONCE_LEN: usize = 12;

/// AES-GCM tag length in bytes.
pub(crate) const GCM_TAG_LEN: usize = 16;

/// Which implementation runs AES-GCM and AES-CBC: `"RustCrypto"` or
/// `"AWS-LC"`.
pub const AES_BACKEND: &str = if cfg!(feature = "aws-lc") {
    "AWS-LC"
} else {
    "RustCrypto"
};

/// A key had a length the primitive does not accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadKeyLength;

/// Authentication or decryption failed; deliberately without detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenFailed;
