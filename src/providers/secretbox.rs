//! The `secretbox` provider: NaCl secretbox (XSalsa20-Poly1305) with a random
//! 192-bit nonce.
//!
//! Stored value: `k8s:enc:secretbox:v1:<keyname>:` || nonce(24) || tag(16) ||
//! ciphertext. Keys are 32 bytes. The storage key is not bound (as in the
//! apiserver), so a value copied to another key still decrypts.

use std::fmt;

use crate::keys::NamedKey;
use crate::primitive::{
    SecretboxCipher, SECRETBOX_KEY_LEN, SECRETBOX_NONCE_LEN, SECRETBOX_TAG_LEN,
};
use crate::provider::provider_via_blocking;
use crate::providers::keyed::KeyRing;
use crate::{random, BlockingProvider, Decrypted, Error, ProviderKind, StorageKey};

/// The prefix of every secretbox value.
pub const SECRETBOX_PREFIX: &str = "k8s:enc:secretbox:v1:";

/// The `secretbox` provider.
///
/// ```
/// use k8s_envelope::{BlockingProvider, NamedKey, SecretKey, Secretbox};
///
/// let secretbox = Secretbox::new(vec![NamedKey::new("key1", SecretKey::generate(32)?)])?;
/// let stored = secretbox.encrypt_blocking(b"top secret", "/registry/secrets/ns/a".into())?;
/// let read = secretbox.decrypt_blocking(&stored, "/registry/secrets/ns/a".into())?;
/// assert_eq!(read.plaintext, b"top secret");
/// # Ok::<(), k8s_envelope::Error>(())
/// ```
pub struct Secretbox {
    prefix: &'static str,
    keys: KeyRing<SecretboxCipher>,
}

impl Secretbox {
    /// Creates the provider; the first key writes.
    ///
    /// # Errors
    ///
    /// [`Error::NoKeys`] for an empty list, [`Error::InvalidKey`] for an empty
    /// name or a key that is not 32 bytes long.
    pub fn new(keys: Vec<NamedKey>) -> Result<Self, Error> {
        let keys = KeyRing::new(
            ProviderKind::Secretbox,
            SECRETBOX_PREFIX,
            keys,
            &[SECRETBOX_KEY_LEN],
            |secret| SecretboxCipher::new(secret.expose()),
        )?;
        Ok(Self {
            prefix: SECRETBOX_PREFIX,
            keys,
        })
    }
}

impl BlockingProvider for Secretbox {
    fn encrypt_blocking(&self, plaintext: &[u8], _: StorageKey<'_>) -> Result<Vec<u8>, Error> {
        let (prefix, cipher) = self.keys.writer();
        let mut nonce = [0u8; SECRETBOX_NONCE_LEN];
        random::fill(&mut nonce)?;
        let header = prefix.len() + SECRETBOX_NONCE_LEN + SECRETBOX_TAG_LEN;
        let mut out = Vec::with_capacity(header + plaintext.len());
        out.extend_from_slice(prefix);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&[0u8; SECRETBOX_TAG_LEN]);
        out.extend_from_slice(plaintext);
        let tag = cipher.seal_in_place(&nonce, &mut out[header..]);
        out[header - SECRETBOX_TAG_LEN..header].copy_from_slice(&tag);
        Ok(out)
    }

    fn decrypt_blocking(&self, stored: &[u8], _: StorageKey<'_>) -> Result<Decrypted, Error> {
        let (plaintext, stale) = self.keys.read(stored, open)?;
        Ok(Decrypted { plaintext, stale })
    }
}

provider_via_blocking!(Secretbox, ProviderKind::Secretbox);

impl fmt::Debug for Secretbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secretbox")
            .field("keys", &self.keys)
            .finish()
    }
}

/// Opens `nonce || tag || ciphertext`.
fn open(cipher: &SecretboxCipher, body: &[u8]) -> Result<Vec<u8>, Error> {
    let malformed = Error::Malformed {
        provider: ProviderKind::Secretbox,
        reason: "the stored data was shorter than the required size",
    };
    let Some((nonce, rest)) = body.split_first_chunk::<SECRETBOX_NONCE_LEN>() else {
        return Err(malformed);
    };
    let Some((tag, ciphertext)) = rest.split_first_chunk::<SECRETBOX_TAG_LEN>() else {
        return Err(malformed);
    };
    let mut plaintext = ciphertext.to_vec();
    cipher
        .open_in_place(nonce, &mut plaintext, tag)
        .map_err(|_| Error::Decrypt {
            provider: ProviderKind::Secretbox,
        })?;
    Ok(plaintext)
}
