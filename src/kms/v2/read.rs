//! The KMS v2 read path: a value of the current write key is opened at
//! once; one of another DEK or seed goes through the DEK cache, and on a
//! miss to the plugin's `Decrypt`, whose answer is cached.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::lock::Mutex as AsyncMutex;

use super::data_key::DataKey;
use super::{cache_key, request_uid, Inner};
use crate::kms::encrypted_object::{split_encrypted_data, EncryptedObjectRef};
use crate::kms::error::provider_error;
use crate::kms::KmsErrorKind;
use crate::{Decrypted, Error, StorageKey};

/// The outcome of [`Inner::decrypt_now`].
// The object is moved once into the slow path's future; boxing it would cost
// the allocation the fast path exists to avoid.
#[allow(clippy::large_enum_variant)]
pub(super) enum FastRead<'s> {
    /// Read (or failed) without waiting.
    Done(Result<Decrypted, Error>),
    /// Written with another DEK or seed: needs the cache or the plugin.
    NeedsCache(EncryptedObjectRef<'s>),
}

impl Inner {
    /// Reads `stored` at once if it was written with the current write key
    /// (most reads in a steady state): no cache lookup, no await. Otherwise
    /// hands back the decoded object for
    /// [`decrypt_cached`](Self::decrypt_cached).
    pub(super) fn decrypt_now<'s>(
        &self,
        stored: &'s [u8],
        storage_key: StorageKey<'_>,
    ) -> FastRead<'s> {
        let Some(body) = stored.strip_prefix(self.prefix.as_bytes()) else {
            return FastRead::Done(Err(Error::NoMatchingPrefix));
        };
        let guard = self.write_key.load();
        // The exact bytes this provider writes with its current key: the data
        // field, then the key's header (fields checked when the plugin
        // returned them). Decoding would find the same fields, so it is
        // skipped.
        if let Some(current) = guard.as_ref() {
            if let Some((data, header)) = split_encrypted_data(body) {
                if !data.is_empty() && header == current.header.as_slice() {
                    let plaintext =
                        current
                            .data_key
                            .open(data, storage_key.as_bytes(), &self.derived_keys);
                    return FastRead::Done(plaintext.map(|plaintext| Decrypted {
                        plaintext,
                        stale: false,
                    }));
                }
            }
        }
        let object = match EncryptedObjectRef::decode_deferring_annotations(body) {
            Ok(object) => object,
            Err(e) => return FastRead::Done(Err(e)),
        };
        match guard.as_ref() {
            // Annotations equal to the write key's were checked when the
            // plugin returned them.
            Some(current) if current.wrote(&object) => {
                let plaintext = current.data_key.open(
                    object.encrypted_data,
                    storage_key.as_bytes(),
                    &self.derived_keys,
                );
                // Same key ID and source type as the current ones: not stale.
                FastRead::Done(plaintext.map(|plaintext| Decrypted {
                    plaintext,
                    stale: false,
                }))
            }
            None => FastRead::Done(
                object
                    .validate_annotations()
                    .and_then(|()| Err(provider_error(&self.name, KmsErrorKind::NotReady))),
            ),
            // The annotations are checked on a cache miss, before the plugin
            // sees them; a hit means these exact annotations (they are part
            // of the cache key) were checked when the entry was made.
            Some(_) => FastRead::NeedsCache(object),
        }
    }

    /// Reads a value written with another DEK or seed than the current one,
    /// whose data key comes from the cache or else from the plugin.
    pub(super) async fn decrypt_cached(
        &self,
        object: EncryptedObjectRef<'_>,
        storage_key: StorageKey<'_>,
    ) -> Result<Decrypted, Error> {
        let data_key = self.cached_data_key(&object).await?;
        self.open_object(&data_key, &object, storage_key)
    }

    /// [`decrypt_cached`](Self::decrypt_cached) without waiting, when the
    /// data key is in the cache; `None` when it is not.
    pub(super) fn decrypt_from_cache(
        &self,
        object: &EncryptedObjectRef<'_>,
        storage_key: StorageKey<'_>,
    ) -> Option<Result<Decrypted, Error>> {
        let data_key = self.dek_cache.get(&object_cache_key(object))?;
        // A miss is recorded by the lookup that then asks the plugin.
        self.dek_cache_metrics
            .record_lookup(true, self.dek_cache.len());
        Some(self.open_object(&data_key, object, storage_key))
    }

    /// Opens `object` with its data key; stale unless written with the
    /// current key ID and source type.
    fn open_object(
        &self,
        data_key: &DataKey,
        object: &EncryptedObjectRef<'_>,
        storage_key: StorageKey<'_>,
    ) -> Result<Decrypted, Error> {
        let current = self.current_write_key()?;
        let plaintext = data_key.open(
            object.encrypted_data,
            storage_key.as_bytes(),
            &self.derived_keys,
        )?;
        let stale = object.key_id != current.key_id || object.source_type != current.source_type;
        Ok(Decrypted { plaintext, stale })
    }

    /// The data key of `object` from the cache, or else from the plugin:
    /// one request per DEK or seed, however many readers miss it at once.
    async fn cached_data_key(
        &self,
        object: &EncryptedObjectRef<'_>,
    ) -> Result<Arc<DataKey>, Error> {
        let key = object_cache_key(object);
        let cached = self.dek_cache.get(&key);
        self.dek_cache_metrics
            .record_lookup(cached.is_some(), self.dek_cache.len());
        if let Some(data_key) = cached {
            return Ok(data_key);
        }
        let request = self.dek_requests.join(&key);
        let _turn = request.lock().lock().await;
        // The reader before us may have filled the cache meanwhile.
        let data_key = match self.dek_cache.get(&key) {
            Some(data_key) => data_key,
            None => {
                object.validate_annotations()?;
                let annotations: BTreeMap<String, Vec<u8>> = object
                    .annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                    .collect();
                let uid = request_uid()?;
                let plaintext = self
                    .timed(
                        "Decrypt",
                        self.service.decrypt(
                            &uid,
                            object.key_id,
                            object.encrypted_dek_source,
                            &annotations,
                        ),
                    )
                    .await?;
                let data_key = Arc::new(DataKey::new(object.source_type, &plaintext)?);
                self.dek_cache.insert(key, data_key.clone());
                data_key
            }
        };
        Ok(data_key)
    }
}

/// One lock per DEK cache key being asked of the plugin, shared by the
/// readers that missed it: the first asks, the others wait and find the
/// answer in the cache. (A failed request is not shared: each waiter then
/// asks in turn, as it would have without this.) An entry lives while a
/// reader holds it, so the map holds at most one per reader in flight.
#[derive(Default)]
pub(super) struct DekRequests(std::sync::Mutex<HashMap<Box<[u8]>, RequestLock>>);

/// What the readers of one request wait on.
type RequestLock = Arc<AsyncMutex<()>>;

/// A reader's hold on one request; the last to let go removes its entry.
struct DekRequest<'a> {
    requests: &'a DekRequests,
    key: Box<[u8]>,
    /// Ours until dropped (`None` only inside `drop`).
    lock: Option<RequestLock>,
}

impl DekRequests {
    /// The request for `key`, made by the first reader.
    fn join(&self, key: &[u8]) -> DekRequest<'_> {
        let mut requests = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let lock = requests.entry(key.into()).or_default().clone();
        DekRequest {
            requests: self,
            key: key.into(),
            lock: Some(lock),
        }
    }

    /// How many requests are held (for the tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl DekRequest<'_> {
    /// What the readers of this request take turns on.
    fn lock(&self) -> &AsyncMutex<()> {
        self.lock
            .as_deref()
            .unwrap_or_else(|| unreachable!("taken only in drop"))
    }
}

impl Drop for DekRequest<'_> {
    fn drop(&mut self) {
        let mut requests = self.requests.0.lock().unwrap_or_else(|e| e.into_inner());
        // Our reference goes while the map is locked, so two readers letting
        // go at once cannot each see the other's and leave the entry behind.
        drop(self.lock.take());
        if requests
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            requests.remove(&self.key);
        }
    }
}

/// The DEK cache's key for the data key of `object`.
fn object_cache_key(object: &EncryptedObjectRef<'_>) -> Box<[u8]> {
    cache_key(
        object.source_type,
        object.encrypted_dek_source,
        object.key_id,
        object.annotations.iter().copied(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last reader to let go removes the entry, whichever order they
    /// go in, and from threads letting go at once.
    #[test]
    fn requests_leave_nothing_behind() {
        let requests = DekRequests::default();
        let first = requests.join(b"k");
        let second = requests.join(b"k");
        let other = requests.join(b"o");
        assert_eq!(requests.len(), 2);
        drop(first);
        assert_eq!(requests.len(), 2);
        drop(second);
        drop(other);
        assert_eq!(requests.len(), 0);

        for _ in 0..200 {
            let held: Vec<_> = (0..4).map(|_| requests.join(b"k")).collect();
            std::thread::scope(|scope| {
                for request in held {
                    scope.spawn(move || drop(request));
                }
            });
            assert_eq!(requests.len(), 0);
        }
    }
}
