//! The data keys behind KMS v2 values: a DEK used directly (`AES_GCM_KEY`)
//! or a seed from which each value's key is derived
//! (`HKDF_SHA256_XNONCE_AES_GCM_SEED`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::kms::error::provider_error;
use crate::kms::{BoundedCache, DekSourceType, KmsErrorKind};
use crate::primitive::{AesGcmCipher, GCM_NONCE_LEN};
use crate::providers::aesgcm;
use crate::KmsApiVersion;
use crate::{random, Error, ProviderKind};

/// Length of the random HKDF info at the start of seed-mode data.
pub(crate) const INFO_LEN: usize = 32;
/// The seed length written, and the least accepted on read.
pub(crate) const SEED_LEN: usize = 32;
/// The DEK length written in `AES_GCM_KEY` mode.
pub(crate) const DEK_LEN: usize = 32;

/// Where `AES_GCM_KEY` write counters start, as in the apiserver: the first
/// nonce counter is one more, and wrapping back to it is refused.
const COUNTER_ZERO: u64 = 1_000_000_000;

/// Derived keys of seed-mode values, shared by all seeds of one provider and
/// keyed by (seed number, info).
pub(crate) type DerivedKeyCache = BoundedCache<(u64, [u8; INFO_LEN]), Arc<AesGcmCipher>>;

/// The most writes one derived key may seal (see
/// `KmsV2Options::writes_per_derived_key`): 2^20, so that the chance of two
/// of its random 96-bit nonces colliding stays below 2^-57.
pub const MAX_WRITES_PER_DERIVED_KEY: u32 = 1 << 20;

/// A derived key that seals more than one write.
pub(crate) struct SharedDerivedKey {
    info: [u8; INFO_LEN],
    cipher: Arc<AesGcmCipher>,
    /// Writes it may still seal.
    writes_left: AtomicU32,
}

/// A decrypted DEK or seed, ready to open (and write) values.
pub(crate) enum DataKey {
    /// `AES_GCM_KEY`.
    Key {
        cipher: AesGcmCipher,
        /// The last nonce counter used for writes; at `u64::MAX` it stays
        /// there and writes are refused for good.
        counter: AtomicU64,
        /// A child process forked after the key was made would continue the
        /// parent's counter with the same key: it never writes with it.
        made_in: random::ForkCheck,
    },
    /// `HKDF_SHA256_XNONCE_AES_GCM_SEED`: the HKDF state keyed by the seed.
    Seed {
        /// Tells this seed's entries apart in the shared derived-key cache.
        number: u64,
        hkdf: Box<Hkdf<Sha256>>,
        /// How many writes one derived key seals (1: a new key per write,
        /// as the apiserver does).
        writes_per_key: u32,
        /// The derived key writes are sealed with, when `writes_per_key` is
        /// more than 1.
        shared: arc_swap::ArcSwapOption<SharedDerivedKey>,
    },
}

static SEED_NUMBERS: AtomicU64 = AtomicU64::new(0);

fn decrypt_failure() -> Error {
    Error::Decrypt {
        provider: ProviderKind::Kms(KmsApiVersion::V2),
    }
}

impl DataKey {
    /// Builds the key from the plaintext the plugin returned.
    pub(crate) fn new(source_type: DekSourceType, plaintext: &[u8]) -> Result<Self, Error> {
        match source_type {
            DekSourceType::AesGcmKey => {
                let cipher = AesGcmCipher::new(plaintext).map_err(|_| Error::Malformed {
                    provider: ProviderKind::Kms(KmsApiVersion::V2),
                    reason: "the plugin returned a DEK that is not 16, 24 or 32 bytes",
                })?;
                Ok(Self::Key {
                    cipher,
                    counter: AtomicU64::new(COUNTER_ZERO),
                    made_in: random::ForkCheck::new(),
                })
            }
            DekSourceType::HkdfSha256XnonceAesGcmSeed => {
                if plaintext.len() < SEED_LEN {
                    return Err(Error::Malformed {
                        provider: ProviderKind::Kms(KmsApiVersion::V2),
                        reason: "the plugin returned a seed shorter than 32 bytes",
                    });
                }
                let hkdf = Hkdf::<Sha256>::from_prk(plaintext).map_err(|_| Error::Malformed {
                    provider: ProviderKind::Kms(KmsApiVersion::V2),
                    reason: "the plugin returned a seed shorter than 32 bytes",
                })?;
                Ok(Self::Seed {
                    number: SEED_NUMBERS.fetch_add(1, Ordering::Relaxed),
                    hkdf: Box::new(hkdf),
                    writes_per_key: 1,
                    shared: arc_swap::ArcSwapOption::empty(),
                })
            }
        }
    }

    /// A fresh random DEK or seed for writes; a seed's derived keys seal
    /// `writes_per_key` writes each (clamped to 1 to
    /// [`MAX_WRITES_PER_DERIVED_KEY`]).
    pub(crate) fn generate(
        source_type: DekSourceType,
        writes_per_key: u32,
    ) -> Result<(Self, Zeroizing<Vec<u8>>), Error> {
        let mut plaintext = Zeroizing::new(vec![0u8; DEK_LEN.max(SEED_LEN)]);
        random::fill_key(&mut plaintext)?;
        let mut key = Self::new(source_type, &plaintext)?;
        if let Self::Seed {
            writes_per_key: n, ..
        } = &mut key
        {
            *n = writes_per_key.clamp(1, MAX_WRITES_PER_DERIVED_KEY);
        }
        Ok((key, plaintext))
    }

    /// Length of `encryptedData` for a plaintext of `len` bytes.
    pub(crate) fn sealed_len(&self, len: usize) -> usize {
        match self {
            Self::Key { .. } => aesgcm::sealed_len(len),
            Self::Seed { .. } => INFO_LEN + aesgcm::sealed_len(len),
        }
    }

    /// Appends `encryptedData` for `plaintext` to `out`. A seed's shared
    /// derived keys go into `derived` as they are made, so that reads of
    /// their values need no derivation.
    pub(crate) fn seal_append(
        &self,
        provider_name: &str,
        plaintext: &[u8],
        aad: &[u8],
        derived: &DerivedKeyCache,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        match self {
            Self::Key {
                cipher,
                counter,
                made_in,
            } => {
                let refused = |why: &str| {
                    provider_error(provider_name, KmsErrorKind::WriteRefused(why.into()))
                };
                if made_in.forked_since_made() {
                    return Err(refused(
                        "this process was forked from the one that made the DEK, whose nonce counter it would repeat; wait for a new DEK",
                    ));
                }
                let mut nonce = [0u8; GCM_NONCE_LEN];
                random::fill(&mut nonce[..4])?;
                // Never wraps: at the end the counter stays there.
                let next = counter
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1))
                    .ok()
                    .and_then(|c| c.checked_add(1))
                    .filter(|&next| next > COUNTER_ZERO);
                let Some(next) = next else {
                    return Err(refused(
                        "the DEK's nonce counter is exhausted; wait for a new DEK",
                    ));
                };
                nonce[4..].copy_from_slice(&next.to_le_bytes());
                aesgcm::seal_append(cipher, &nonce, aad, plaintext, out);
            }
            Self::Seed {
                number,
                hkdf,
                writes_per_key,
                shared,
            } if *writes_per_key > 1 => {
                let key = shared_derived_key(*number, hkdf, *writes_per_key, shared, derived)?;
                let mut nonce = [0u8; GCM_NONCE_LEN];
                random::fill(&mut nonce)?;
                out.extend_from_slice(&key.info);
                out.extend_from_slice(&nonce);
                key.cipher.seal_append(&nonce, aad, plaintext, out);
            }
            Self::Seed { hkdf, .. } => {
                // One draw for both: info(32) || nonce(12).
                let mut random_bytes = [0u8; INFO_LEN + GCM_NONCE_LEN];
                random::fill(&mut random_bytes)?;
                let (info, nonce) = random_bytes.split_at(INFO_LEN);
                let info: &[u8; INFO_LEN] = info.try_into().map_err(|_| decrypt_failure())?;
                let nonce: &[u8; GCM_NONCE_LEN] =
                    nonce.try_into().map_err(|_| decrypt_failure())?;
                let key = derive_key(hkdf, info)?;
                out.extend_from_slice(info);
                out.extend_from_slice(nonce);
                AesGcmCipher::seal_append_with_key(&key, nonce, aad, plaintext, out);
            }
        }
        Ok(())
    }

    /// Opens `encryptedData`.
    pub(crate) fn open(
        &self,
        data: &[u8],
        aad: &[u8],
        derived: &DerivedKeyCache,
    ) -> Result<Vec<u8>, Error> {
        match self {
            Self::Key { cipher, .. } => {
                aesgcm::open(cipher, data, aad, ProviderKind::Kms(KmsApiVersion::V2))
            }
            Self::Seed { number, hkdf, .. } => {
                let Some((info, body)) = data.split_first_chunk::<INFO_LEN>() else {
                    return Err(Error::Malformed {
                        provider: ProviderKind::Kms(KmsApiVersion::V2),
                        reason: "the stored data was shorter than the required size",
                    });
                };
                let cache_key = (*number, *info);
                let cipher = match derived.get(&cache_key) {
                    Some(cipher) => cipher,
                    None => {
                        let cipher = Arc::new(derive(hkdf, info)?);
                        derived.insert(cache_key, cipher.clone());
                        cipher
                    }
                };
                aesgcm::open(&cipher, body, aad, ProviderKind::Kms(KmsApiVersion::V2))
            }
        }
    }
}

/// A derived key with a write left to seal, taking that write: the shared
/// one, or a new one (with a fresh random info) once it has sealed
/// `writes_per_key` writes.
fn shared_derived_key(
    number: u64,
    hkdf: &Hkdf<Sha256>,
    writes_per_key: u32,
    shared: &arc_swap::ArcSwapOption<SharedDerivedKey>,
    derived: &DerivedKeyCache,
) -> Result<Arc<SharedDerivedKey>, Error> {
    if let Some(key) = shared.load_full() {
        let took = key
            .writes_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if took.is_ok() {
            return Ok(key);
        }
    }
    // Two writers may both get here and each make a key; each key still
    // seals at most `writes_per_key` writes.
    let mut info = [0u8; INFO_LEN];
    random::fill(&mut info)?;
    let cipher = Arc::new(derive(hkdf, &info)?);
    derived.insert((number, info), cipher.clone());
    let key = Arc::new(SharedDerivedKey {
        info,
        cipher,
        writes_left: AtomicU32::new(writes_per_key - 1),
    });
    shared.store(Some(key.clone()));
    Ok(key)
}

/// The data key of one seed-mode value: the first 32 bytes of
/// HKDF-Expand(SHA-256, PRK = seed, info).
fn derive_key(hkdf: &Hkdf<Sha256>, info: &[u8; INFO_LEN]) -> Result<Zeroizing<[u8; 32]>, Error> {
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf.expand(info, &mut key[..])
        .map_err(|_| decrypt_failure())?;
    Ok(key)
}

/// The expanded data key of one seed-mode value.
fn derive(hkdf: &Hkdf<Sha256>, info: &[u8; INFO_LEN]) -> Result<AesGcmCipher, Error> {
    AesGcmCipher::new(&derive_key(hkdf, info)?[..]).map_err(|_| decrypt_failure())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At the end of its counter an `AES_GCM_KEY` DEK refuses every write
    /// from then on; it never wraps to a counter it used.
    #[test]
    fn an_exhausted_counter_refuses_writes_for_good() {
        let (key, _) = DataKey::generate(DekSourceType::AesGcmKey, 1).expect("key");
        let derived = DerivedKeyCache::new(
            crate::kms::CacheLimits::disabled(),
            Arc::new(crate::kms::SystemClock),
        );
        let DataKey::Key { counter, .. } = &key else {
            panic!("an AES_GCM_KEY DEK")
        };
        counter.store(u64::MAX - 1, Ordering::Relaxed);
        let mut out = Vec::new();
        key.seal_append("kms", b"x", b"aad", &derived, &mut out)
            .expect("the last counter");
        for _ in 0..3 {
            let refused = key.seal_append("kms", b"x", b"aad", &derived, &mut out);
            assert!(refused.is_err(), "wrote past the end of the counter");
        }
        assert_eq!(counter.load(Ordering::Relaxed), u64::MAX);
    }

    /// The state a seed's HKDF keeps (an HMAC-SHA-256 keyed with the seed,
    /// which derives every data key of the seed) and every SHA-256 state are
    /// wiped when dropped: `sha2`'s `zeroize` feature (without it this does
    /// not compile).
    #[test]
    fn hkdf_and_sha256_states_are_zeroized_on_drop() {
        fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroized_on_drop::<sha2::Sha256>();
        // `Hkdf<Sha256>` holds an `Hmac<Sha256>`, whose state is two of
        // these cores (the inner and outer keyed hashes): they wipe
        // themselves, so the HMAC (which carries no marker of its own) is
        // wiped with them.
        zeroized_on_drop::<sha2::block_api::Sha256VarCore>();
        let _: fn(&hkdf::Hkdf<sha2::Sha256>) = |_| {};
    }
}
