//! An etcd snapshot file as a store: [`SnapshotStore`].

use std::path::Path;

use super::{Entry, Page, Store, StoreError, StoreFuture, Swap};
use crate::snapshot::{HashCheck, Snapshot};

/// An etcd snapshot file (`etcdctl snapshot save`) as a store, read with no
/// etcd running (see [`crate::snapshot`]).
///
/// It is read-only: a compare-and-swap fails with [`StoreError::ReadOnly`].
///
/// ```no_run
/// use k8s_envelope::snapshot::HashCheck;
/// use k8s_envelope::store::{SnapshotStore, Store};
///
/// # async fn run() -> Result<(), k8s_envelope::store::StoreError> {
/// let store = SnapshotStore::open("backup.db", HashCheck::Verify)?;
/// let page = store.list(b"/registry/secrets/", None, 100).await?;
/// for entry in page.entries {
///     println!("{}", k8s_envelope::store::printable(&entry.key));
/// }
/// # Ok(()) }
/// ```
pub struct SnapshotStore {
    snapshot: Snapshot,
    what: String,
}

impl SnapshotStore {
    /// Opens a snapshot file (see [`Snapshot::open`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Snapshot`] with what is wrong with the file.
    pub fn open(path: impl AsRef<Path>, check: HashCheck) -> Result<Self, StoreError> {
        let snapshot = Snapshot::open(path, check)?;
        Ok(Self::new(snapshot))
    }

    /// A store of a snapshot already open.
    pub fn new(snapshot: Snapshot) -> Self {
        let what = format!("snapshot {}", snapshot.path().display());
        Self { snapshot, what }
    }

    /// The snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl Store for SnapshotStore {
    fn list<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
        limit: usize,
    ) -> StoreFuture<'a, Page> {
        let page = self
            .snapshot
            .range(prefix, after, limit)
            .map(|(entries, more)| Page { entries, more })
            .map_err(StoreError::from);
        Box::pin(std::future::ready(page))
    }

    fn get<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Entry>> {
        Box::pin(std::future::ready(
            self.snapshot.get(key).map_err(StoreError::from),
        ))
    }

    fn compare_and_swap<'a>(
        &'a self,
        _key: &'a [u8],
        _expected: i64,
        _value: &'a [u8],
    ) -> StoreFuture<'a, Swap> {
        Box::pin(std::future::ready(Err(StoreError::ReadOnly {
            what: self.what.clone(),
        })))
    }

    fn count<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Option<u64>> {
        Box::pin(std::future::ready(Ok(Some(
            self.snapshot.count(prefix) as u64
        ))))
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}
