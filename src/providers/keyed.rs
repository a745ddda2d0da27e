//! The named keys of a static-key provider, and dispatch by key name.
//!
//! A static-key provider writes `PREFIX || <keyname>: || body` with its first
//! key. On read, the keys are tried in order; each key whose `<keyname>:`
//! matches gets the body, an error is remembered and the walk goes on, and the
//! first success wins. A read by any key but the first is stale.

use std::fmt;

use crate::keys::{NamedKey, SecretKey};
use crate::prefix::StoredPrefix;
use crate::primitive::BadKeyLength;
use crate::{Error, ProviderKind};

/// One key: the full prefix it writes and its expanded cipher.
struct KeyEntry<C> {
    /// `PREFIX || name || ':'`.
    prefix: Box<[u8]>,
    name: String,
    cipher: C,
}

/// The ordered keys of one provider; the first one writes.
pub(crate) struct KeyRing<C> {
    kind: ProviderKind,
    keys: Vec<KeyEntry<C>>,
}

impl<C> KeyRing<C> {
    /// Expands every key with `expand`, in order.
    pub(crate) fn new(
        kind: ProviderKind,
        provider_prefix: &str,
        keys: Vec<NamedKey>,
        expected_lengths: &[usize],
        expand: impl Fn(&SecretKey) -> Result<C, BadKeyLength>,
    ) -> Result<Self, Error> {
        if keys.is_empty() {
            return Err(Error::NoKeys { provider: kind });
        }
        let keys = keys
            .into_iter()
            .map(|key| {
                if key.name.is_empty() {
                    return Err(invalid_key(kind, &key, "key name is empty".to_owned()));
                }
                let cipher = expand(&key.secret).map_err(|BadKeyLength| {
                    let reason = format!(
                        "secret is not of the expected length, got {}, expected one of {:?}",
                        key.secret.len(),
                        expected_lengths
                    );
                    invalid_key(kind, &key, reason)
                })?;
                let mut prefix = Vec::with_capacity(provider_prefix.len() + key.name.len() + 1);
                prefix.extend_from_slice(provider_prefix.as_bytes());
                prefix.extend_from_slice(key.name.as_bytes());
                prefix.push(b':');
                Ok(KeyEntry {
                    prefix: prefix.into_boxed_slice(),
                    name: key.name,
                    cipher,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self { kind, keys })
    }

    /// The full prefix and cipher of the writing key.
    pub(crate) fn writer(&self) -> (&[u8], &C) {
        let first = &self.keys[0];
        (&first.prefix, &first.cipher)
    }

    /// Reads `stored` with the first key whose prefix matches and succeeds;
    /// `open` gets the cipher and the body after the key's prefix.
    pub(crate) fn read<T>(
        &self,
        stored: &[u8],
        mut open: impl FnMut(&C, &[u8]) -> Result<T, Error>,
    ) -> Result<(T, bool), Error> {
        let mut errors = Vec::new();
        for (index, key) in self.keys.iter().enumerate() {
            let Some(body) = stored.strip_prefix(&*key.prefix) else {
                continue;
            };
            match open(&key.cipher, body) {
                Ok(value) => return Ok((value, index != 0)),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            return Err(Error::NoMatchingKey {
                provider: self.kind,
                key: key_name_of(stored),
            });
        }
        Err(Error::from_list(errors))
    }

    /// The key names, in order (names are not secret).
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.name.as_str())
    }
}

impl<C> fmt::Debug for KeyRing<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// The longest key name an error repeats from a stored value.
const MAX_KEY_NAME: usize = 128;

/// The key name in a stored value's prefix (`k8s:enc:aesgcm:v1:NAME:`),
/// printable and cut to [`MAX_KEY_NAME`] characters.
fn key_name_of(stored: &[u8]) -> String {
    let name = match StoredPrefix::parse(stored) {
        StoredPrefix::Known { name, .. } => name,
        StoredPrefix::Identity | StoredPrefix::Unknown => &[],
    };
    crate::store::printable(name)
        .chars()
        .take(MAX_KEY_NAME)
        .collect()
}

fn invalid_key(provider: ProviderKind, key: &NamedKey, reason: String) -> Error {
    Error::InvalidKey {
        provider,
        name: key.name.clone(),
        reason,
    }
}
