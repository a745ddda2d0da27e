//! A snapshot re-keyed offline: the values a re-encryption rewrites, kept
//! in a private spill file as they come ([`Rewrites`]), and the new snapshot
//! written from them and the input ([`Snapshot::write_rewritten`]).
//!
//! # Revisions
//!
//! A rewritten value gets a new revision above every revision of the input
//! (and above its compaction), one per write, in the order they were made,
//! as an online re-encryption would have etcd assign them: its
//! `mod_revision` is that revision, its `version` grows by one, its
//! `create_revision` and lease stay. A value not rewritten keeps its
//! revision key and `KeyValue` bytes exactly.
//!
//! The output holds each live key's latest revision and nothing older: the
//! history of a key (its earlier values, its deletions) is what a
//! compaction at the output's revision would drop, and it is dropped here,
//! since those earlier values are still encrypted with the keys being
//! retired. The `meta` bucket's compaction marks say so (both at the
//! output's revision), so a restored etcd serves the same as one that
//! compacted there, and its revision does not go back below the input's.
//! Every other bucket (`members`, `cluster`, `auth*`, `lease`, `alarm`, the
//! rest of `meta`) is carried over entry by entry.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::bolt::Corrupt;
use super::mvcc::{self, KeyValue, Revision};
use super::write::BoltWriter;
use super::{Snapshot, SnapshotError};
use crate::private_file::PrivateFile;
use crate::store::{Entry, Swap};

/// What [`Snapshot::write_rewritten`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    /// Keys whose value was carried over as it was.
    pub(crate) kept: u64,
    /// Keys with a rewritten value.
    pub(crate) rewritten: u64,
    /// The output's revision (and compaction mark).
    pub(crate) revision: i64,
}

/// A rewritten value's place in the spill file.
#[derive(Debug, Clone, Copy)]
struct Rewrite {
    revision: i64,
    offset: u64,
    len: u32,
}

/// The values rewritten so far, in a private spill file next to the output
/// (removed when this is dropped): memory per rewritten key, not per value.
pub(crate) struct Rewrites {
    spill: PrivateFile,
    spilled: u64,
    /// By the key's position in the snapshot's index.
    by_key: Vec<Option<Rewrite>>,
    rewritten: usize,
    next_revision: i64,
}

impl Rewrites {
    /// No rewrites yet; the spill file next to `output`.
    pub(crate) fn new(snapshot: &Snapshot, output: &Path) -> io::Result<Self> {
        let spill_name = {
            let mut name = output.file_name().unwrap_or_default().to_os_string();
            name.push(".spill");
            name
        };
        let spill = PrivateFile::create(output.with_file_name(spill_name))?;
        let info = snapshot.info();
        Ok(Self {
            spill,
            spilled: 0,
            by_key: vec![None; snapshot.index.len()],
            rewritten: 0,
            next_revision: info.revision.max(info.compacted.unwrap_or(0)) + 1,
        })
    }

    /// The key as it now is (rewritten, or as in the snapshot).
    pub(crate) fn get(
        &mut self,
        snapshot: &Snapshot,
        key: &[u8],
    ) -> Result<Option<Entry>, SnapshotError> {
        match self.find(snapshot, key) {
            Some(rewrite) => {
                let bytes = self.read(rewrite).map_err(|e| snapshot.io(e))?;
                let kv = KeyValue::decode(&bytes)
                    .map_err(|_| snapshot.invalid("the spill file changed".to_owned()))?;
                Ok(Some(Entry {
                    key: key.to_vec(),
                    value: kv.value.to_vec(),
                    revision: rewrite.revision,
                }))
            }
            None => snapshot.get(key),
        }
    }

    /// Writes `value` to `key` if its revision is still `expected`.
    pub(crate) fn compare_and_swap(
        &mut self,
        snapshot: &Snapshot,
        key: &[u8],
        expected: i64,
        value: &[u8],
    ) -> Result<Swap, SnapshotError> {
        let Some(at) = snapshot.index.find(key) else {
            return Ok(Swap::Deleted);
        };
        let (old, revision) = match self.by_key[at] {
            Some(rewrite) => (
                self.read(rewrite).map_err(|e| snapshot.io(e))?,
                rewrite.revision,
            ),
            None => {
                let latest = snapshot.index.latest(at);
                (snapshot.read(latest)?, latest.revision.main)
            }
        };
        let old = KeyValue::decode(&old)
            .map_err(|_| snapshot.invalid("an entry changed while the file was open".to_owned()))?;
        if revision != expected || old.mod_revision != expected {
            return Ok(Swap::Changed(Entry {
                key: key.to_vec(),
                value: old.value.to_vec(),
                revision: old.mod_revision,
            }));
        }
        let revision = self.next_revision;
        let new = KeyValue {
            key,
            create_revision: old.create_revision,
            mod_revision: revision,
            version: old.version.saturating_add(1),
            value,
            lease: old.lease,
        }
        .encode();
        let len = u32::try_from(new.len())
            .map_err(|_| snapshot.invalid("a value too large".to_owned()))?;
        let offset = self.spilled;
        self.spill.write_all(&new).map_err(|e| snapshot.io(e))?;
        self.spilled += u64::from(len);
        self.next_revision += 1;
        if self.by_key[at].is_none() {
            self.rewritten += 1;
        }
        self.by_key[at] = Some(Rewrite {
            revision,
            offset,
            len,
        });
        Ok(Swap::Written(revision))
    }

    /// The rewrite of `key`, if it has one.
    fn find(&self, snapshot: &Snapshot, key: &[u8]) -> Option<Rewrite> {
        snapshot.index.find(key).and_then(|at| self.by_key[at])
    }

    /// Whether `key` has been rewritten.
    pub(crate) fn contains(&self, snapshot: &Snapshot, key: &[u8]) -> bool {
        self.find(snapshot, key).is_some()
    }

    /// How many keys have been rewritten.
    pub(crate) fn len(&self) -> usize {
        self.rewritten
    }

    fn read(&mut self, rewrite: Rewrite) -> io::Result<Vec<u8>> {
        let file = self.spill.file_mut()?;
        file.seek(SeekFrom::Start(rewrite.offset))?;
        let mut bytes = vec![0u8; rewrite.len as usize];
        file.read_exact(&mut bytes)?;
        file.seek(SeekFrom::End(0))?;
        Ok(bytes)
    }
}

impl Snapshot {
    /// Writes the snapshot with `rewrites` applied to `out` (see the module
    /// docs), with the hash appended, and renames it into place.
    pub(crate) fn write_rewritten(
        &self,
        rewrites: &mut Rewrites,
        out: PrivateFile,
    ) -> Result<Written, SnapshotError> {
        let target = out.target().to_path_buf();
        let io = |e: io::Error| SnapshotError::Io {
            path: target.clone(),
            source: e,
        };
        if super::find(&self.buckets, mvcc::META_BUCKET).is_none() {
            return Err(self.invalid("no `meta` bucket: not an etcd v3 store".to_owned()));
        }
        let revision = rewrites.next_revision - 1;
        let mut writer = BoltWriter::new(out, self.info.page_size).map_err(io)?;
        let mut roots = Vec::with_capacity(self.buckets.len());
        let mut written = Written {
            kept: 0,
            rewritten: rewrites.len() as u64,
            revision,
        };
        for bucket in &self.buckets {
            let mut tree = writer.bucket();
            if bucket.name == mvcc::KEY_BUCKET {
                written.kept = self.write_keys(&mut writer, &mut tree, rewrites)?;
            } else if bucket.name == mvcc::META_BUCKET {
                self.write_meta(&mut writer, &mut tree, &bucket.root, revision)?;
            } else {
                self.copy_bucket(&mut writer, &mut tree, &bucket.root)?;
            }
            let root = writer.finish_bucket(tree).map_err(io)?;
            roots.push((bucket.name.clone(), root, bucket.sequence));
        }
        let txid = self
            .bolt
            .meta()
            .txid
            .checked_add(1)
            .filter(|t| *t < u64::MAX)
            .ok_or_else(|| self.invalid("its transaction ID is at its maximum".to_owned()))?;
        writer.finish(&roots, txid).map_err(io)?;
        Ok(written)
    }

    /// The `key` bucket: each live key not rewritten as it was, in revision
    /// order, then the rewritten ones in the order they were written.
    fn write_keys(
        &self,
        writer: &mut BoltWriter,
        tree: &mut super::write::BucketWriter,
        rewrites: &mut Rewrites,
    ) -> Result<u64, SnapshotError> {
        let mut kept: Vec<&super::Latest> = (0..self.index.len())
            .filter(|&at| rewrites.by_key[at].is_none())
            .map(|at| self.index.latest(at))
            .collect();
        kept.sort_by_key(|latest| latest.revision);
        for latest in &kept {
            let bytes = self.read(latest)?;
            // Read again at the end of a long run: the file must not have
            // changed under it.
            match KeyValue::decode(&bytes) {
                Ok(kv) if kv.mod_revision == latest.revision.main => {}
                _ => return Err(self.invalid("the input changed while it was open".to_owned())),
            }
            writer
                .push(tree, &latest.revision.encode(), &bytes, false)
                .map_err(|e| self.output_error(e))?;
        }
        let mut rewritten: Vec<Rewrite> = rewrites.by_key.iter().flatten().copied().collect();
        rewritten.sort_by_key(|r| r.revision);
        for rewrite in rewritten {
            let bytes = rewrites.read(rewrite).map_err(|e| self.io(e))?;
            let key = Revision {
                main: rewrite.revision,
                sub: 0,
                tombstone: false,
            }
            .encode();
            writer
                .push(tree, &key, &bytes, false)
                .map_err(|e| self.output_error(e))?;
        }
        Ok(kept.len() as u64)
    }

    /// The `meta` bucket, with both compaction marks at `revision`.
    fn write_meta(
        &self,
        writer: &mut BoltWriter,
        tree: &mut super::write::BucketWriter,
        root: &super::BucketRoot,
        revision: i64,
    ) -> Result<(), SnapshotError> {
        let mut entries: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut claims = self.bolt.claims();
        self.bolt
            .walk(root, &mut claims, &mut |item| {
                if item.is_bucket {
                    return Err(Corrupt("the `meta` bucket holds a bucket".into()));
                }
                entries.insert(item.key.to_vec(), item.value.to_vec());
                Ok(())
            })
            .map_err(|c| self.invalid(c.0))?;
        let mark = Revision {
            main: revision,
            sub: 0,
            tombstone: false,
        }
        .encode();
        entries.insert(mvcc::FINISHED_COMPACT.to_vec(), mark.clone());
        entries.insert(mvcc::SCHEDULED_COMPACT.to_vec(), mark);
        for (key, value) in &entries {
            writer
                .push(tree, key, value, false)
                .map_err(|e| self.output_error(e))?;
        }
        Ok(())
    }

    /// Any other bucket, entry by entry.
    fn copy_bucket(
        &self,
        writer: &mut BoltWriter,
        tree: &mut super::write::BucketWriter,
        root: &super::BucketRoot,
    ) -> Result<(), SnapshotError> {
        let mut failed = None;
        // Opening walked every bucket in one pass: no two share a page, so
        // each is copied once.
        let mut claims = self.bolt.claims();
        let walked = self.bolt.walk(root, &mut claims, &mut |item| {
            if item.is_bucket {
                return Err(Corrupt(
                    "a bucket inside a bucket (etcd writes none)".into(),
                ));
            }
            writer.push(tree, item.key, item.value, false).map_err(|e| {
                failed = Some(e);
                Corrupt(String::new())
            })
        });
        if let Some(e) = failed {
            return Err(self.output_error(e));
        }
        walked.map_err(|c| self.invalid(c.0))
    }

    fn output_error(&self, e: io::Error) -> SnapshotError {
        SnapshotError::Io {
            path: self.path.clone(),
            source: io::Error::new(e.kind(), format!("writing the output: {e}")),
        }
    }
}
