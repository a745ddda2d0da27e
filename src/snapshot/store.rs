//! An etcd snapshot file as a store: [`SnapshotStore`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{HashCheck, Rewrites, Snapshot, SnapshotError, HASH_MISMATCH};
use crate::private_file::PrivateFile;
use crate::store::{Entry, Page, Store, StoreError, StoreFuture, Swap};

/// An etcd snapshot file (`etcdctl snapshot save`) as a store, read with no
/// etcd running (see [`crate::snapshot`]).
///
/// Opened alone it is read-only: a compare-and-swap fails with
/// [`StoreError::ReadOnly`]. [`with_output`](Self::with_output) makes it the
/// input of an offline re-keying: a compare-and-swap records the new value
/// (in a private spill file next to the output, so memory does not grow
/// with the values), and [`finish`](Self::finish) writes a new snapshot
/// file with every value as it now is (the input is never written; the
/// module docs of [`crate::snapshot`] say how revisions are handled).
///
/// ```no_run
/// use k8s_envelope::snapshot::{HashCheck, SnapshotStore};
/// use k8s_envelope::store::Store;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
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
    output: Mutex<Option<Output>>,
}

/// Where a re-keyed snapshot goes, and what was rewritten so far.
struct Output {
    file: PrivateFile,
    rewrites: Rewrites,
}

/// What [`SnapshotStore::finish`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotWritten {
    /// The new snapshot file.
    pub path: PathBuf,
    /// Keys carried over as they were.
    pub kept: u64,
    /// Keys with a new value.
    pub rewritten: u64,
    /// The new file's revision (and compaction mark).
    pub revision: i64,
}

impl SnapshotStore {
    /// Opens a snapshot file (see [`Snapshot::open`]).
    ///
    /// # Errors
    ///
    /// [`SnapshotError`] with what is wrong with the file.
    pub fn open(path: impl AsRef<Path>, check: HashCheck) -> Result<Self, SnapshotError> {
        let snapshot = Snapshot::open(path, check)?;
        Ok(Self::new(snapshot))
    }

    /// A store of a snapshot already open.
    pub fn new(snapshot: Snapshot) -> Self {
        let what = format!("snapshot {}", snapshot.path().display());
        Self {
            snapshot,
            what,
            output: Mutex::new(None),
        }
    }

    /// Re-keys into a new snapshot file at `path`, written by
    /// [`finish`](Self::finish) (a private file: 0600, atomic, fsynced).
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Io`] when `path` is the input or its directory is
    /// not writable.
    pub fn with_output(self, path: impl AsRef<Path>) -> Result<Self, SnapshotError> {
        let path = path.as_ref();
        let io = |source| SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        };
        if same_file(self.snapshot.path(), path) {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the output is the input snapshot: write the re-keyed snapshot to a new file",
            )));
        }
        let file = PrivateFile::create(path).map_err(io)?;
        let rewrites = Rewrites::new(&self.snapshot, path).map_err(io)?;
        *self.lock() = Some(Output { file, rewrites });
        Ok(self)
    }

    /// Writes the re-keyed snapshot (see [`with_output`](Self::with_output))
    /// and renames it into place; what it holds.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::ReadOnly`] without an output, or when it was
    /// already written; another [`SnapshotError`] when writing fails
    /// (nothing is then at the output's path).
    pub fn finish(&self) -> Result<SnapshotWritten, SnapshotError> {
        let Some(mut output) = self.lock().take() else {
            return Err(SnapshotError::ReadOnly {
                path: self.snapshot.path().to_path_buf(),
            });
        };
        let path = output.file.target().to_path_buf();
        let written = self
            .snapshot
            .write_rewritten(&mut output.rewrites, output.file)?;
        Ok(SnapshotWritten {
            path,
            kept: written.kept,
            rewritten: written.rewritten,
            revision: written.revision,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Output>> {
        self.output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the rewrites, or reads the snapshot when there is no
    /// output.
    fn with_rewrites<T>(
        &self,
        f: impl FnOnce(&mut Rewrites) -> Result<T, SnapshotError>,
    ) -> Option<Result<T, StoreError>> {
        let mut output = self.lock();
        let output = output.as_mut()?;
        Some(f(&mut output.rewrites).map_err(store_error))
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
            .map_err(store_error)
            .and_then(|(mut entries, more)| {
                // Keys rewritten since show as they now are.
                if let Some(result) = self.with_rewrites(|rewrites| {
                    for entry in &mut entries {
                        if rewrites.contains(&self.snapshot, &entry.key) {
                            if let Some(now) = rewrites.get(&self.snapshot, &entry.key)? {
                                *entry = now;
                            }
                        }
                    }
                    Ok(())
                }) {
                    result?;
                }
                Ok(Page { entries, more })
            });
        Box::pin(std::future::ready(page))
    }

    fn get<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Entry>> {
        let entry = self
            .with_rewrites(|rewrites| rewrites.get(&self.snapshot, key))
            .unwrap_or_else(|| self.snapshot.get(key).map_err(store_error));
        Box::pin(std::future::ready(entry))
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a [u8],
        expected: i64,
        value: &'a [u8],
    ) -> StoreFuture<'a, Swap> {
        let swap = self
            .with_rewrites(|rewrites| {
                rewrites.compare_and_swap(&self.snapshot, key, expected, value)
            })
            .unwrap_or_else(|| {
                Err(StoreError::ReadOnly {
                    what: self.what.clone(),
                })
            });
        Box::pin(std::future::ready(swap))
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

/// A snapshot's failure as the [`Store`] trait reports it.
fn store_error(e: SnapshotError) -> StoreError {
    match e {
        SnapshotError::Io { path, source } => StoreError::Io { path, source },
        SnapshotError::Invalid { path, reason } => StoreError::Damaged {
            path,
            reason: format!("not a usable etcd snapshot: {reason}"),
        },
        SnapshotError::HashMismatch { path } => StoreError::Damaged {
            path,
            reason: HASH_MISMATCH.to_owned(),
        },
        SnapshotError::ReadOnly { path } => StoreError::ReadOnly {
            what: format!("snapshot {}", path.display()),
        },
    }
}

/// Whether two paths name the same file (the second may not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
