//! The `aesgcm` provider: AES-GCM with a random 96-bit nonce, the storage key
//! as additional authenticated data.
//!
//! Stored value: `k8s:enc:aesgcm:v1:<keyname>:` || nonce(12) || ciphertext ||
//! tag(16). Keys are 16, 24 or 32 bytes.
//!
//! Random nonces collide after about 2^32 writes per key; rotate keys long
//! before that (the Kubernetes documentation says every 200,000 writes).

use std::fmt;

use crate::keys::NamedKey;
use crate::primitive::{AesGcmCipher, AES_KEY_LENGTHS, GCM_NONCE_LEN, GCM_TAG_LEN};
use crate::provider::provider_via_blocking;
use crate::providers::keyed::KeyRing;
use crate::{random, BlockingProvider, Decrypted, Error, ProviderKind, StorageKey};

/// The prefix of every aesgcm value.
pub const AESGCM_PREFIX: &str = "k8s:enc:aesgcm:v1:";

/// The `aesgcm` provider.
///
/// ```
/// use k8s_envelope::{AesGcm, BlockingProvider, NamedKey, SecretKey};
///
/// let aesgcm = AesGcm::new(vec![NamedKey::new("key1", SecretKey::generate(32)?)])?;
/// let stored = aesgcm.encrypt_blocking(b"top secret", "/registry/secrets/ns/a".into())?;
/// assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
/// let read = aesgcm.decrypt_blocking(&stored, "/registry/secrets/ns/a".into())?;
/// assert_eq!(read.plaintext, b"top secret");
/// // Bound to its storage key: a copied value does not decrypt.
/// assert!(aesgcm.decrypt_blocking(&stored, "/registry/secrets/ns/b".into()).is_err());
/// # Ok::<(), k8s_envelope::Error>(())
/// ```
pub struct AesGcm {
    prefix: &'static str,
    keys: KeyRing<AesGcmCipher>,
}

impl AesGcm {
    /// Creates the provider; the first key writes.
    ///
    /// # Errors
    ///
    /// [`Error::NoKeys`] for an empty list, [`Error::InvalidKey`] for an empty
    /// name or a key that is not 16, 24 or 32 bytes long.
    pub fn new(keys: Vec<NamedKey>) -> Result<Self, Error> {
        let keys = KeyRing::new(
            ProviderKind::AesGcm,
            AESGCM_PREFIX,
            keys,
            &AES_KEY_LENGTHS,
            |secret| AesGcmCipher::new(secret.expose()),
        )?;
        Ok(Self {
            prefix: AESGCM_PREFIX,
            keys,
        })
    }
}

impl BlockingProvider for AesGcm {
    fn encrypt_blocking(
        &self,
        plaintext: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Vec<u8>, Error> {
        let (prefix, cipher) = self.keys.writer();
        let mut nonce = [0u8; GCM_NONCE_LEN];
        random::fill(&mut nonce)?;
        let mut out = Vec::with_capacity(prefix.len() + sealed_len(plaintext.len()));
        out.extend_from_slice(prefix);
        seal_append(cipher, &nonce, storage_key.as_bytes(), plaintext, &mut out);
        Ok(out)
    }

    fn decrypt_blocking(
        &self,
        stored: &[u8],
        storage_key: StorageKey<'_>,
    ) -> Result<Decrypted, Error> {
        let (plaintext, stale) = self.keys.read(stored, |cipher, body| {
            open(cipher, body, storage_key.as_bytes(), ProviderKind::AesGcm)
        })?;
        Ok(Decrypted { plaintext, stale })
    }

    fn encrypt_blocking_into(
        &self,
        plaintext: &[u8],
        storage_key: StorageKey<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let (prefix, cipher) = self.keys.writer();
        let mut nonce = [0u8; GCM_NONCE_LEN];
        if let Err(e) = random::fill(&mut nonce) {
            out.clear();
            return Err(e);
        }
        // Overwrite what the buffer holds rather than clear it: resizing a
        // reused buffer to the value's length then zero-fills nothing.
        let header = prefix.len() + GCM_NONCE_LEN;
        out.resize(header + plaintext.len() + GCM_TAG_LEN, 0);
        out[..prefix.len()].copy_from_slice(prefix);
        out[prefix.len()..header].copy_from_slice(&nonce);
        cipher.seal_at(&nonce, storage_key.as_bytes(), plaintext, out, header);
        Ok(())
    }

    fn decrypt_blocking_into(
        &self,
        stored: &[u8],
        storage_key: StorageKey<'_>,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        let read = self.keys.read(stored, |cipher, body| {
            open_into(
                cipher,
                body,
                storage_key.as_bytes(),
                ProviderKind::AesGcm,
                out,
            )
        });
        match read {
            Ok(((), stale)) => Ok(stale),
            Err(e) => {
                out.clear();
                Err(e)
            }
        }
    }
}

provider_via_blocking!(AesGcm, ProviderKind::AesGcm);

impl fmt::Debug for AesGcm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AesGcm").field("keys", &self.keys).finish()
    }
}

/// Length of `nonce || ciphertext || tag` for a plaintext of `len` bytes.
pub(crate) const fn sealed_len(len: usize) -> usize {
    GCM_NONCE_LEN + len + GCM_TAG_LEN
}

/// Appends `nonce || ciphertext || tag` to `out` (reserve [`sealed_len`]
/// first to avoid a reallocation).
pub(crate) fn seal_append(
    cipher: &AesGcmCipher,
    nonce: &[u8; GCM_NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(nonce);
    cipher.seal_append(nonce, aad, plaintext, out);
}

/// Opens `nonce || ciphertext || tag` into a new plaintext buffer.
pub(crate) fn open(
    cipher: &AesGcmCipher,
    body: &[u8],
    aad: &[u8],
    provider: ProviderKind,
) -> Result<Vec<u8>, Error> {
    let body = Body::split(body, provider)?;
    cipher
        .open(body.nonce, aad, body.ciphertext, body.tag)
        .map_err(|_| Error::Decrypt { provider })
}

/// [`open`] into `out`, replacing its contents.
fn open_into(
    cipher: &AesGcmCipher,
    body: &[u8],
    aad: &[u8],
    provider: ProviderKind,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let body = Body::split(body, provider)?;
    cipher
        .open_into(body.nonce, aad, body.ciphertext, body.tag, out)
        .map_err(|_| Error::Decrypt { provider })
}

/// The parts of `nonce || ciphertext || tag`.
struct Body<'a> {
    nonce: &'a [u8; GCM_NONCE_LEN],
    ciphertext: &'a [u8],
    tag: &'a [u8; GCM_TAG_LEN],
}

impl<'a> Body<'a> {
    fn split(body: &'a [u8], provider: ProviderKind) -> Result<Self, Error> {
        let too_short = || Error::Malformed {
            provider,
            reason: "the stored data was shorter than the required size",
        };
        let (nonce, rest) = body
            .split_first_chunk::<GCM_NONCE_LEN>()
            .ok_or_else(too_short)?;
        let (ciphertext, tag) = rest
            .split_last_chunk::<GCM_TAG_LEN>()
            .ok_or_else(too_short)?;
        Ok(Self {
            nonce,
            ciphertext,
            tag,
        })
    }
}
