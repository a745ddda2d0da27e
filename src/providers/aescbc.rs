//! The `aescbc` provider: AES-CBC with PKCS#7 padding and a random IV.
//!
//! Stored value: `k8s:enc:aescbc:v1:<keyname>:` || IV(16) || ciphertext. Keys
//! are 16, 24 or 32 bytes. There is no integrity protection and the storage
//! key is not bound: this mode exists to read and migrate old clusters.
//!
//! The padding check accepts exactly what the apiserver accepts (a last byte
//! `n` with `1 <= n <= len`, and the last `n` bytes all equal to `n`, so `n`
//! may exceed 16), runs in constant time and reports every failure as the
//! same [`Error::Decrypt`]: the timing and the message do not tell a bad
//! padding from any other failure.
//!
//! That does not close the padding oracle. Whether a read succeeds at all
//! is itself the oracle: anyone who can put a modified value where it will
//! be read and see whether that read worked (an apiserver answering or
//! failing, `scan` reporting a value as readable or unreadable) learns one
//! bit about the padding per attempt, which is enough to decrypt a CBC value
//! block by block. CBC has no integrity, and no care in the check can add
//! it. Use an AEAD provider (KMS v2, or aesgcm or secretbox) and keep
//! aescbc only to read values until they are re-encrypted.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::keys::NamedKey;
use crate::primitive::{AesCbcCipher, AES_KEY_LENGTHS, BLOCK_LEN};
use crate::provider::provider_via_blocking;
use crate::providers::keyed::KeyRing;
use crate::{random, BlockingProvider, Decrypted, Error, ProviderKind, StorageKey};

/// The prefix of every aescbc value.
pub const AESCBC_PREFIX: &str = "k8s:enc:aescbc:v1:";

/// The `aescbc` provider.
///
/// ```
/// use k8s_envelope::{AesCbc, BlockingProvider, NamedKey, SecretKey};
///
/// let aescbc = AesCbc::new(vec![NamedKey::new("key1", SecretKey::generate(32)?)])?;
/// let stored = aescbc.encrypt_blocking(b"top secret", "/registry/secrets/ns/a".into())?;
/// let read = aescbc.decrypt_blocking(&stored, "/registry/secrets/ns/a".into())?;
/// assert_eq!(read.plaintext, b"top secret");
/// # Ok::<(), k8s_envelope::Error>(())
/// ```
pub struct AesCbc {
    prefix: &'static str,
    keys: KeyRing<AesCbcCipher>,
}

impl AesCbc {
    /// Creates the provider; the first key writes.
    ///
    /// # Errors
    ///
    /// [`Error::NoKeys`] for an empty list, [`Error::InvalidKey`] for an empty
    /// name or a key that is not 16, 24 or 32 bytes long.
    pub fn new(keys: Vec<NamedKey>) -> Result<Self, Error> {
        let keys = KeyRing::new(
            ProviderKind::AesCbc,
            AESCBC_PREFIX,
            keys,
            &AES_KEY_LENGTHS,
            |secret| AesCbcCipher::new(secret.expose()),
        )?;
        Ok(Self {
            prefix: AESCBC_PREFIX,
            keys,
        })
    }
}

impl BlockingProvider for AesCbc {
    fn encrypt_blocking(&self, plaintext: &[u8], _: StorageKey<'_>) -> Result<Vec<u8>, Error> {
        let (prefix, cipher) = self.keys.writer();
        let mut iv = [0u8; BLOCK_LEN];
        random::fill(&mut iv)?;
        let mut out = Vec::with_capacity(prefix.len() + cbc_sealed_len(plaintext.len()));
        out.extend_from_slice(prefix);
        seal_append(cipher, &iv, plaintext, &mut out);
        Ok(out)
    }

    fn decrypt_blocking(&self, stored: &[u8], _: StorageKey<'_>) -> Result<Decrypted, Error> {
        let (plaintext, stale) = self.keys.read(stored, |cipher, body| {
            open(cipher, body, ProviderKind::AesCbc)
        })?;
        Ok(Decrypted { plaintext, stale })
    }
}

provider_via_blocking!(AesCbc, ProviderKind::AesCbc);

impl fmt::Debug for AesCbc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AesCbc").field("keys", &self.keys).finish()
    }
}

/// Length of `IV || ciphertext` for a plaintext of `len` bytes.
pub(crate) const fn cbc_sealed_len(len: usize) -> usize {
    BLOCK_LEN + (len / BLOCK_LEN + 1) * BLOCK_LEN
}

/// Appends `IV || AES-CBC(PKCS#7(plaintext))` to `out`.
pub(crate) fn seal_append(
    cipher: &AesCbcCipher,
    iv: &[u8; BLOCK_LEN],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(iv);
    let start = out.len();
    out.extend_from_slice(plaintext);
    let padding = BLOCK_LEN - plaintext.len() % BLOCK_LEN;
    // `padding` is 1..=16, so the cast cannot truncate.
    out.resize(out.len() + padding, padding as u8);
    cipher.encrypt_blocks(iv, &mut out[start..]);
}

/// Opens `IV || ciphertext` into a new plaintext buffer.
pub(crate) fn open(
    cipher: &AesCbcCipher,
    body: &[u8],
    provider: ProviderKind,
) -> Result<Vec<u8>, Error> {
    let Some((iv, ciphertext)) = body.split_first_chunk::<BLOCK_LEN>() else {
        return Err(Error::Malformed {
            provider,
            reason: "the stored data was shorter than the required size",
        });
    };
    // The apiserver panics on an empty ciphertext here; we refuse it.
    if ciphertext.is_empty() || ciphertext.len() % BLOCK_LEN != 0 {
        return Err(Error::Malformed {
            provider,
            reason: "the stored data is not a non-empty multiple of the block size",
        });
    }
    let mut plaintext = ciphertext.to_vec();
    cipher.decrypt_blocks(iv, &mut plaintext);
    let unpadded: Option<usize> = unpadded_len(&plaintext).into();
    match unpadded {
        Some(len) => {
            plaintext[len..].zeroize();
            plaintext.truncate(len);
            Ok(plaintext)
        }
        None => {
            plaintext.zeroize();
            Err(Error::Decrypt { provider })
        }
    }
}

/// The length without padding, checked in constant time: the last byte `n`
/// must satisfy `1 <= n <= buf.len()` and the last `n` bytes must all equal
/// `n`. The time taken depends only on `buf.len()`.
///
/// Plain mask arithmetic over the last 255 bytes (which the compiler
/// vectorizes), with a single `subtle` comparison at the end, rather than a
/// `Choice` per byte: the same constant-time property at a tenth of the cost.
fn unpadded_len(buf: &[u8]) -> subtle::CtOption<usize> {
    let len = buf.len();
    let last = buf.last().copied().unwrap_or(0);
    let n = usize::from(last);
    // Every byte that could be padding (at most 255) is looked at, whatever n
    // is; `diff` collects the bits in which padding bytes differ from n.
    let mut diff = 0u8;
    for (i, &byte) in buf.iter().rev().take(usize::from(u8::MAX)).enumerate() {
        diff |= lt_mask(i, n) & (byte ^ last);
    }
    // n == 0 and n > len are invalid; both fold into `diff` without branches.
    diff |= !lt_mask(0, n);
    diff |= lt_mask(len, n);
    let valid = diff.ct_eq(&0);
    // When invalid, n may exceed len; the value is then discarded by CtOption.
    subtle::CtOption::new(len.saturating_sub(n), valid)
}

/// `0xff` when `a < b`, else `0`, without a branch (both are below 2^63).
fn lt_mask(a: usize, b: usize) -> u8 {
    let borrow = (a.wrapping_sub(b) >> (usize::BITS - 1)) as u8;
    0u8.wrapping_sub(borrow)
}

#[cfg(test)]
mod tests {
    use super::unpadded_len;

    fn check(buf: &[u8]) -> Option<usize> {
        unpadded_len(buf).into()
    }

    #[test]
    fn accepts_standard_padding() {
        let mut buf = vec![7u8; 16];
        buf[15] = 1;
        assert_eq!(check(&buf), Some(15));
        assert_eq!(check(&[16u8; 16]), Some(0));
    }

    #[test]
    fn accepts_padding_longer_than_a_block_as_the_apiserver_does() {
        let mut buf = vec![0u8; 32];
        buf[15..].fill(17);
        assert_eq!(check(&buf), Some(15));
        assert_eq!(check(&[32u8; 32]), Some(0));
    }

    #[test]
    fn rejects_zero_too_long_and_mismatched_padding() {
        assert_eq!(check(&[0u8; 16]), None);
        assert_eq!(check(&[17u8; 16]), None);
        let mut buf = [4u8; 16];
        buf[13] = 3;
        assert_eq!(check(&buf), None);
        assert_eq!(check(&[]), None);
    }

    /// The apiserver's rule, written plainly (and not in constant time).
    fn apiserver_rule(buf: &[u8]) -> Option<usize> {
        let n = usize::from(*buf.last()?);
        if n == 0 || n > buf.len() {
            return None;
        }
        let start = buf.len() - n;
        buf[start..]
            .iter()
            .all(|&b| usize::from(b) == n)
            .then_some(start)
    }

    proptest::proptest! {
        /// Buffers ending in a run of one byte value (the shapes that matter,
        /// which random bytes almost never hit), sometimes with one byte of
        /// the run changed.
        #[test]
        fn agrees_with_the_apiserver_rule(
            blocks in 1usize..=18,
            value in proptest::num::u8::ANY,
            run in 0usize..=300,
            noise in proptest::collection::vec(proptest::num::u8::ANY, 288),
            changed in proptest::option::of(0usize..300),
        ) {
            let mut buf = noise[..blocks * 16].to_vec();
            let len = buf.len();
            let run = run.min(len);
            buf[len - run..].fill(value);
            if let Some(at) = changed {
                let at = at % len;
                buf[at] = buf[at].wrapping_add(1);
            }
            proptest::prop_assert_eq!(check(&buf), apiserver_rule(&buf));
        }
    }

    #[test]
    fn checks_up_to_255_padding_bytes() {
        let mut buf = vec![255u8; 256];
        assert_eq!(check(&buf), Some(1));
        buf[1] = 0;
        assert_eq!(check(&buf), None);
        buf[1] = 255;
        buf[0] = 0;
        assert_eq!(check(&buf), Some(1));
    }
}
