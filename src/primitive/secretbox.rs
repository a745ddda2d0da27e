//! NaCl secretbox: XSalsa20-Poly1305 with a 192-bit nonce and a 128-bit tag,
//! built from RustCrypto's `salsa20` and `poly1305` exactly as NaCl's
//! `crypto_secretbox` is: the first 32 bytes of the XSalsa20 keystream are
//! the one-time Poly1305 key, the rest encrypts the message, and the tag is
//! the Poly1305 of the ciphertext.
//!
//! Why not the `xsalsa20poly1305` crate: its last release pins `poly1305`
//! 0.8, whose AVX2 backend takes three times as long as the portable one
//! under current rustc (its intrinsics are not inlined), and the crate
//! replacing it (`crypto_secretbox` 0.2) is not yet released. The
//! composition is the construction's definition; every secretbox vector of
//! the Go reference holds it to the bytes.

use poly1305::universal_hash::KeyInit as _;
use poly1305::Poly1305;
use salsa20::cipher::{KeyIvInit, StreamCipher};
use salsa20::XSalsa20;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{BadKeyLength, OpenFailed};

/// Nonce length in bytes.
pub(crate) const SECRETBOX_NONCE_LEN: usize = 24;
/// Tag length in bytes.
pub(crate) const SECRETBOX_TAG_LEN: usize = 16;
/// The only key length secretbox accepts.
pub(crate) const SECRETBOX_KEY_LEN: usize = 32;

/// A secretbox key, zeroized on drop.
pub(crate) struct SecretboxCipher(Zeroizing<[u8; SECRETBOX_KEY_LEN]>);

impl SecretboxCipher {
    /// Takes a 32-byte key.
    pub(crate) fn new(key: &[u8]) -> Result<Self, BadKeyLength> {
        let key: [u8; SECRETBOX_KEY_LEN] = key.try_into().map_err(|_| BadKeyLength)?;
        Ok(Self(Zeroizing::new(key)))
    }

    /// The keystream for `nonce`, past the 32 bytes that became the
    /// returned one-time Poly1305 key. Both zeroize their state on drop.
    fn start(&self, nonce: &[u8; SECRETBOX_NONCE_LEN]) -> (XSalsa20, Poly1305) {
        let mut stream = XSalsa20::new((&*self.0).into(), nonce.into());
        let mut mac_key = Zeroizing::new([0u8; 32]);
        stream.apply_keystream(&mut mac_key[..]);
        let mac = Poly1305::new((&*mac_key).into());
        (stream, mac)
    }

    /// Encrypts `buf` in place and returns the tag.
    pub(crate) fn seal_in_place(
        &self,
        nonce: &[u8; SECRETBOX_NONCE_LEN],
        buf: &mut [u8],
    ) -> [u8; SECRETBOX_TAG_LEN] {
        let (mut stream, mac) = self.start(nonce);
        stream.apply_keystream(buf);
        mac.compute_unpadded(buf).into()
    }

    /// Verifies `tag` (in constant time) and only then decrypts `buf` in
    /// place; on failure `buf` is left as it was.
    pub(crate) fn open_in_place(
        &self,
        nonce: &[u8; SECRETBOX_NONCE_LEN],
        buf: &mut [u8],
        tag: &[u8; SECRETBOX_TAG_LEN],
    ) -> Result<(), OpenFailed> {
        let (mut stream, mac) = self.start(nonce);
        let expected: [u8; SECRETBOX_TAG_LEN] = mac.compute_unpadded(buf).into();
        if bool::from(expected.ct_eq(tag)) {
            stream.apply_keystream(buf);
            Ok(())
        } else {
            Err(OpenFailed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NaCl's own test: `tests/secretbox.c` (key `firstkey`, nonce
    /// `nonce`), the tag and the first and last bytes of the ciphertext.
    #[test]
    fn nacl_secretbox_test_vector() {
        let key = [
            0x1b, 0x27, 0x55, 0x64, 0x73, 0xe9, 0x85, 0xd4, 0x62, 0xcd, 0x51, 0x19, 0x7a, 0x9a,
            0x46, 0xc7, 0x60, 0x09, 0x54, 0x9e, 0xac, 0x64, 0x74, 0xf2, 0x06, 0xc4, 0xee, 0x08,
            0x44, 0xf6, 0x83, 0x89,
        ];
        let nonce = [
            0x69, 0x69, 0x6e, 0xe9, 0x55, 0xb6, 0x2b, 0x73, 0xcd, 0x62, 0xbd, 0xa8, 0x75, 0xfc,
            0x73, 0xd6, 0x82, 0x19, 0xe0, 0x03, 0x6b, 0x7a, 0x0b, 0x37,
        ];
        let mut m = [
            0xbe, 0x07, 0x5f, 0xc5, 0x3c, 0x81, 0xf2, 0xd5, 0xcf, 0x14, 0x13, 0x16, 0xeb, 0xeb,
            0x0c, 0x7b, 0x52, 0x28, 0xc5, 0x2a, 0x4c, 0x62, 0xcb, 0xd4, 0x4b, 0x66, 0x84, 0x9b,
            0x64, 0x24, 0x4f, 0xfc, 0xe5, 0xec, 0xba, 0xaf, 0x33, 0xbd, 0x75, 0x1a, 0x1a, 0xc7,
            0x28, 0xd4, 0x5e, 0x6c, 0x61, 0x29, 0x6c, 0xdc, 0x3c, 0x01, 0x23, 0x35, 0x61, 0xf4,
            0x1d, 0xb6, 0x6c, 0xce, 0x31, 0x4a, 0xdb, 0x31, 0x0e, 0x3b, 0xe8, 0x25, 0x0c, 0x46,
            0xf0, 0x6d, 0xce, 0xea, 0x3a, 0x7f, 0xa1, 0x34, 0x80, 0x57, 0xe2, 0xf6, 0x55, 0x6a,
            0xd6, 0xb1, 0x31, 0x8a, 0x02, 0x4a, 0x83, 0x8f, 0x21, 0xaf, 0x1f, 0xde, 0x04, 0x89,
            0x77, 0xeb, 0x48, 0xf5, 0x9f, 0xfd, 0x49, 0x24, 0xca, 0x1c, 0x60, 0x90, 0x2e, 0x52,
            0xf0, 0xa0, 0x89, 0xbc, 0x76, 0x89, 0x70, 0x40, 0xe0, 0x82, 0xf9, 0x37, 0x76, 0x38,
            0x48, 0x64, 0x5e, 0x07, 0x05,
        ];
        let cipher = SecretboxCipher::new(&key).expect("32-byte key");
        let tag = cipher.seal_in_place(&nonce, &mut m);
        assert_eq!(
            tag,
            [
                0xf3, 0xff, 0xc7, 0x70, 0x3f, 0x94, 0x00, 0xe5, 0x2a, 0x7d, 0xfb, 0x4b, 0x3d, 0x33,
                0x05, 0xd9
            ]
        );
        assert_eq!(m[..4], [0x8e, 0x99, 0x3b, 0x9f]);
        assert_eq!(m[m.len() - 4..], [0x74, 0xe3, 0x55, 0xa5]);
        let sealed = m;
        cipher.open_in_place(&nonce, &mut m, &tag).expect("opens");
        assert_eq!(m[..4], [0xbe, 0x07, 0x5f, 0xc5]);

        let mut forged = sealed;
        forged[0] ^= 1;
        assert_eq!(
            cipher.open_in_place(&nonce, &mut forged, &tag),
            Err(OpenFailed)
        );
        assert_eq!(forged[1..], sealed[1..], "left as it was");
    }
}
