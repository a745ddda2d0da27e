//! The source of nonces, IVs and generated keys.

use crate::Error;

/// Fills `buf` with bytes from the operating system's cryptographically
/// secure generator.
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|_| Error::Random)
}
