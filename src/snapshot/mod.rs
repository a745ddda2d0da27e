//! etcd snapshot files (`etcdctl snapshot save`, or a member's `db` file),
//! read offline with no etcd running: [`Snapshot`], and the same as a
//! [`Store`](crate::store::Store), [`SnapshotStore`], which also re-keys a
//! snapshot into a new file.
//!
//! A snapshot is etcd's bbolt database as a file, with the SHA-256 of the
//! database appended by `snapshot save`. Opening one checks that hash when
//! it is there (as `etcdctl snapshot restore` does), reads both meta pages
//! and keeps the valid one with the higher transaction ID, and walks the
//! `key` bucket once to index every key's latest revision: a key deleted
//! since is absent, a key written several times shows its last value. The
//! index holds each live key's name and where its value is in the file, not
//! the value; values are read from the file when asked for.
//!
//! ```no_run
//! use k8s_envelope::snapshot::{HashCheck, Snapshot};
//!
//! let snapshot = Snapshot::open("backup.db", HashCheck::Verify)?;
//! println!("revision {}, {} keys", snapshot.info().revision, snapshot.info().keys);
//! if let Some(entry) = snapshot.get(b"/registry/secrets/default/db-password")? {
//!     println!("{} bytes at revision {}", entry.value.len(), entry.revision);
//! }
//! # Ok::<(), k8s_envelope::snapshot::SnapshotError>(())
//! ```
//!
//! # Why a reader of our own
//!
//! The bbolt crates for Rust (bbolt-rs, a port of the Go library) map the
//! file into memory with `unsafe` code and trust what they find in it: a
//! damaged page can make them panic or read out of bounds. The part of the
//! format a reader needs is small and has not changed since bbolt's version
//! 2 (meta, branch, leaf and overflow pages, inline buckets, about 300
//! lines here), so it is read here, with safe code, every offset checked
//! against the bytes read, and each page visited once: a hostile file costs
//! time and memory in proportion to its size, and gets a clear error.
//!
//! # Trust
//!
//! The file is opened read-only and never written. Errors name the file
//! and what is wrong with it, never a value or a key from it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::store::Entry;

mod bolt;
mod index;
mod mvcc;
mod rewrite;
mod store;
#[cfg(test)]
mod tests;
mod write;

pub(crate) use self::rewrite::Rewrites;
pub use self::store::{SnapshotStore, SnapshotWritten};

use self::bolt::{BoltFile, BucketRoot, Claims, Corrupt};
use self::index::{Index, IndexBuilder, Latest};
use self::mvcc::{KeyValue, Revision};

/// The highest revision (and version) a snapshot may hold: far above any
/// real store's, and low enough that counting on from it cannot overflow.
const MAX_REVISION: i64 = 1 << 62;

/// Bytes of the SHA-256 that `etcdctl snapshot save` appends.
const HASH_LEN: u64 = 32;

/// Whether to check the SHA-256 that `etcdctl snapshot save` appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashCheck {
    /// Check it when the file has one (its size is 32 bytes past a multiple
    /// of 512, as etcdctl tells); a file without one is read as a bare
    /// database (a member's `db` file).
    Verify,
    /// Do not check it (etcdctl's `--skip-hash-check`); a hash that is
    /// there is still not read as part of the database.
    Skip,
}

/// What was found about the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashStatus {
    /// The appended SHA-256 matches the database.
    Verified,
    /// There is an appended hash and it was not checked.
    Skipped,
    /// The file has no appended hash (a bare bbolt database).
    Absent,
}

/// What a snapshot holds, as read when it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotInfo {
    /// The highest revision in the `key` bucket: the store's revision when
    /// the snapshot was taken (or the last one still recorded).
    pub revision: i64,
    /// The revision of the last finished compaction, if any.
    pub compacted: Option<i64>,
    /// The raft index applied last (the `meta` bucket's consistent index).
    pub consistent_index: Option<u64>,
    /// Live keys (each key's latest revision is not a deletion).
    pub keys: usize,
    /// Entries of the `key` bucket: every revision still recorded.
    pub revisions: u64,
    /// The bbolt page size.
    pub page_size: u32,
    /// Bytes of the database (the file without its hash).
    pub size: u64,
    /// The appended hash.
    pub hash: HashStatus,
}

/// A snapshot file could not be read.
///
/// Messages name the file and what is wrong; never a key or a value.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The appended SHA-256 does not match the database.
    #[error("{}: {HASH_MISMATCH}", path.display())]
    HashMismatch {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a usable etcd snapshot.
    #[error("{}: not a usable etcd snapshot: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words that hold nothing from the file.
        reason: String,
    },
    /// [`SnapshotStore::finish`] on a store opened without an output, or
    /// called a second time.
    #[error("{}: opened for reading only: there is no re-keyed copy to write", path.display())]
    ReadOnly {
        /// The snapshot.
        path: PathBuf,
    },
}

/// What is wrong with a snapshot whose appended hash does not match.
const HASH_MISMATCH: &str = "the snapshot's SHA-256 does not match its contents (a damaged or \
     partial copy); skip the hash check to read it anyway";

/// An etcd snapshot, open for reading (see the module docs).
pub struct Snapshot {
    path: PathBuf,
    bolt: BoltFile,
    /// The root bucket's buckets, in name order.
    buckets: Vec<Bucket>,
    index: Index,
    info: SnapshotInfo,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// Opens a snapshot: checks its hash (as `check` says), reads its meta
    /// pages and indexes its keys.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Io`] when it cannot be read,
    /// [`SnapshotError::HashMismatch`], and [`SnapshotError::Invalid`] with
    /// what is wrong (truncated, not bbolt, a damaged page, no `key` bucket,
    /// an entry that is not a revision or not a `KeyValue`).
    pub fn open(path: impl AsRef<Path>, check: HashCheck) -> Result<Self, SnapshotError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| SnapshotError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let has_hash = size % 512 == HASH_LEN;
        let db_len = if has_hash { size - HASH_LEN } else { size };
        let hash = match (has_hash, check) {
            (false, _) => HashStatus::Absent,
            (true, HashCheck::Skip) => HashStatus::Skipped,
            (true, HashCheck::Verify) => {
                if !hash_matches(&mut file, db_len).map_err(io)? {
                    return Err(SnapshotError::HashMismatch { path });
                }
                HashStatus::Verified
            }
        };
        let invalid = |c: Corrupt| SnapshotError::Invalid {
            path: path.clone(),
            reason: c.0,
        };
        let bolt = BoltFile::open(file, db_len).map_err(invalid)?;
        // One pass: every page is read once at most, whichever bucket
        // points at it.
        let mut claims = bolt.claims();
        let buckets = read_buckets(&bolt, &mut claims).map_err(invalid)?;
        let key = find(&buckets, mvcc::KEY_BUCKET).ok_or_else(|| {
            invalid(Corrupt(
                "no `key` bucket: this bbolt file is not an etcd v3 store".into(),
            ))
        })?;
        let (index, revisions, revision) =
            index_keys(&bolt, &key.root, &mut claims).map_err(invalid)?;
        let marks = find(&buckets, mvcc::META_BUCKET)
            .map(|meta| read_marks(&bolt, &meta.root, &mut claims))
            .transpose()
            .map_err(invalid)?
            .unwrap_or_default();
        // The other buckets are carried over by a re-keying: each must be
        // a tree of its own, sharing no page with another (nor holding one).
        for bucket in &buckets {
            if bucket.name != mvcc::KEY_BUCKET && bucket.name != mvcc::META_BUCKET {
                bolt.walk(&bucket.root, &mut claims, &mut |_| Ok(()))
                    .map_err(invalid)?;
            }
        }
        let info = SnapshotInfo {
            revision,
            compacted: marks.compacted,
            consistent_index: marks.consistent_index,
            keys: index.len(),
            revisions,
            page_size: bolt.meta().page_size,
            size: db_len,
            hash,
        };
        Ok(Self {
            path,
            bolt,
            buckets,
            index,
            info,
        })
    }

    /// What the snapshot holds.
    pub fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One key as it was when the snapshot was taken; `None` when it did not
    /// exist (or was deleted).
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Invalid`] when its entry cannot be read back.
    pub fn get(&self, key: &[u8]) -> Result<Option<Entry>, SnapshotError> {
        match self.index.find(key) {
            Some(at) => self.entry(key, self.index.latest(at)).map(Some),
            None => Ok(None),
        }
    }

    /// Up to `limit` entries whose keys start with `prefix`, after `after`
    /// (from the start when `None`), in key order; and whether more follow.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Invalid`] when an entry cannot be read back.
    pub fn range(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), SnapshotError> {
        let positions = self.index.range(prefix, after);
        let more = positions.len() > limit;
        let mut entries = Vec::with_capacity(positions.len().min(limit));
        for at in positions.take(limit) {
            entries.push(self.entry(self.index.name(at), self.index.latest(at))?);
        }
        Ok((entries, more))
    }

    /// The number of live keys under `prefix`.
    pub fn count(&self, prefix: &[u8]) -> usize {
        self.index.range(prefix, None).len()
    }

    /// The `KeyValue` bytes of a key's latest revision.
    fn read(&self, latest: &Latest) -> Result<Vec<u8>, SnapshotError> {
        self.bolt
            .read_at(latest.offset, latest.len as usize)
            .map_err(|c| self.invalid(c.0))
    }

    fn entry(&self, key: &[u8], latest: &Latest) -> Result<Entry, SnapshotError> {
        let bytes = self.read(latest)?;
        let kv = KeyValue::decode(&bytes)
            .map_err(|reason| self.invalid(format!("an entry changed while open: {reason}")))?;
        if kv.key != key {
            return Err(self.invalid("an entry changed while the file was open".to_owned()));
        }
        Ok(Entry {
            key: key.to_vec(),
            value: kv.value.to_vec(),
            revision: kv.mod_revision,
        })
    }

    /// An error of the spill file of a rewrite (next to the output).
    fn io(&self, e: io::Error) -> SnapshotError {
        SnapshotError::Io {
            path: self.path.clone(),
            source: io::Error::new(e.kind(), format!("the spill file of the output: {e}")),
        }
    }

    fn invalid(&self, reason: String) -> SnapshotError {
        SnapshotError::Invalid {
            path: self.path.clone(),
            reason,
        }
    }
}

/// Whether the last 32 bytes of the file are the SHA-256 of the `db_len`
/// bytes before them.
fn hash_matches(file: &mut File, db_len: u64) -> io::Result<bool> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut left = db_len;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        file.read_exact(&mut buf[..n])?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    let mut stored = [0u8; HASH_LEN as usize];
    file.read_exact(&mut stored)?;
    Ok(hasher.finalize().as_slice() == stored)
}

/// A bucket of the root bucket.
#[derive(Clone)]
struct Bucket {
    name: Vec<u8>,
    root: BucketRoot,
    sequence: u64,
}

/// The root bucket's buckets (etcd keeps every one there: `key`, `meta`,
/// `lease`, `members`, ...).
fn read_buckets(bolt: &BoltFile, claims: &mut Claims) -> Result<Vec<Bucket>, Corrupt> {
    let mut buckets = Vec::new();
    bolt.walk(&bolt.root(), claims, &mut |item| {
        if !item.is_bucket {
            return Err(Corrupt(
                "the root bucket holds a value, not a bucket".into(),
            ));
        }
        let (root, sequence) = BucketRoot::from_value(item.value, item.value_offset)?;
        buckets.push(Bucket {
            name: item.key.to_vec(),
            root,
            sequence,
        });
        Ok(())
    })?;
    Ok(buckets)
}

fn find<'a>(buckets: &'a [Bucket], name: &[u8]) -> Option<&'a Bucket> {
    buckets.iter().find(|b| b.name == name)
}

/// Walks the `key` bucket: every live key's latest revision, the number of
/// entries, and the highest revision.
fn index_keys(
    bolt: &BoltFile,
    bucket: &BucketRoot,
    claims: &mut Claims,
) -> Result<(Index, u64, i64), Corrupt> {
    // A first walk checks every entry and counts what the index needs, so
    // that the second one fills buffers of exactly that size.
    let (revisions, name_bytes, highest) = check_keys(bolt, bucket, claims)?;
    let mut builder = IndexBuilder::with_capacity(
        usize::try_from(revisions).map_err(|_| Corrupt("too many revisions".into()))?,
        name_bytes,
    );
    bolt.walk(bucket, &mut bolt.claims(), &mut |item| {
        let revision = Revision::parse(item.key)
            .ok_or_else(|| Corrupt("the `key` bucket changed while read".into()))?;
        let kv = KeyValue::decode(item.value)
            .map_err(|_| Corrupt("the `key` bucket changed while read".into()))?;
        let len = u32::try_from(item.value.len())
            .map_err(|_| Corrupt("a value larger than 4 GiB".into()))?;
        builder
            .push(kv.key, revision, item.value_offset, len)
            .map_err(|reason| Corrupt(reason.into()))
    })?;
    Ok((builder.build(), revisions, highest))
}

/// Checks every entry of the `key` bucket; the number of entries, the
/// bytes of their keys, and the highest revision.
fn check_keys(
    bolt: &BoltFile,
    bucket: &BucketRoot,
    claims: &mut Claims,
) -> Result<(u64, usize, i64), Corrupt> {
    let mut entries = 0u64;
    let mut name_bytes = 0usize;
    let mut highest = 0i64;
    bolt.walk(bucket, claims, &mut |item| {
        entries += 1;
        if item.is_bucket {
            return Err(Corrupt(
                "the `key` bucket holds a bucket inside a value".into(),
            ));
        }
        let revision = Revision::parse(item.key)
            .ok_or_else(|| Corrupt(format!("`key` bucket entry {entries} is not a revision")))?;
        let kv = KeyValue::decode(item.value).map_err(|reason| {
            Corrupt(format!(
                "`key` bucket entry {entries} is not a KeyValue: {reason}"
            ))
        })?;
        if !revision.tombstone && kv.mod_revision != revision.main {
            return Err(Corrupt(format!(
                "`key` bucket entry {entries}: its KeyValue's mod_revision is not its revision"
            )));
        }
        if revision.main > MAX_REVISION || kv.version > MAX_REVISION || kv.version < 0 {
            return Err(Corrupt(format!(
                "`key` bucket entry {entries}: a revision or version out of range"
            )));
        }
        highest = highest.max(revision.main);
        name_bytes += kv.key.len();
        Ok(())
    })?;
    Ok((entries, name_bytes, highest))
}

#[derive(Default)]
struct Marks {
    compacted: Option<i64>,
    consistent_index: Option<u64>,
}

fn read_marks(bolt: &BoltFile, meta: &BucketRoot, claims: &mut Claims) -> Result<Marks, Corrupt> {
    let mut marks = Marks::default();
    bolt.walk(meta, claims, &mut |item| {
        if item.key == mvcc::CONSISTENT_INDEX {
            if let Ok(bytes) = <[u8; 8]>::try_from(item.value) {
                marks.consistent_index = Some(u64::from_be_bytes(bytes));
            }
        } else if item.key == mvcc::FINISHED_COMPACT {
            marks.compacted = Revision::parse(item.value).map(|r| r.main);
            if marks.compacted.is_some_and(|r| r > MAX_REVISION) {
                return Err(Corrupt("the compaction mark is out of range".into()));
            }
        }
        Ok(())
    })?;
    Ok(marks)
}
