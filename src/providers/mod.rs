//! The static-key providers: identity, aescbc, aesgcm and secretbox.

pub(crate) mod aescbc;
pub(crate) mod aesgcm;
mod identity;
mod keyed;
mod secretbox;

pub use self::aescbc::{AesCbc, AESCBC_PREFIX};
pub use self::aesgcm::{AesGcm, AESGCM_PREFIX};
pub use self::identity::{Identity, ENCRYPTED_PREFIX};
pub use self::secretbox::{Secretbox, SECRETBOX_PREFIX};
