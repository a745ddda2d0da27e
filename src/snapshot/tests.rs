//! Snapshots built here (by the writer) and then damaged: every kind of
//! damage gets its error, quickly, and no error repeats a key or a value.

#![allow(
    clippy::unwrap_used,
    reason = "a test's panic, with the line it names, is its failure report"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::bolt::{fnv64a, BRANCH_PAGE, LEAF_PAGE, META_SUMMED, PAGE_HEADER};
use super::mvcc::{KeyValue, Revision};
use super::write::BoltWriter;
use super::{HashCheck, HashStatus, Snapshot, SnapshotError};
use crate::private_file::PrivateFile;

const PAGE: usize = 4096;

/// Real etcd snapshots with one page crafted so that its elements overlap
/// (tests/data/fuzz/snapshot/, seeds of the snapshot fuzz target too): a
/// corrupt page, whichever hash check, named in the error with the file.
#[test]
fn crafted_overlapping_elements_are_refused_with_the_page() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz/snapshot");
    for (file, page) in [
        ("overlapping-root-elements.db", "page 3: "),
        (
            "overlapping-inline-elements.db",
            "the inline bucket at byte ",
        ),
    ] {
        let path = dir.join(file);
        for check in [HashCheck::Verify, HashCheck::Skip] {
            let started = Instant::now();
            let Err(e) = Snapshot::open(&path, check) else {
                panic!("{file}: read");
            };
            assert!(started.elapsed() < Duration::from_secs(5));
            let SnapshotError::Invalid {
                path: named,
                reason,
            } = &e
            else {
                panic!("{file}: {e}");
            };
            assert_eq!(named, &path);
            assert!(
                reason.contains(page) && reason.contains("overlaps"),
                "{file}: {reason}"
            );
        }
    }
}
const SECRET: &[u8] = b"SECRET-VALUE-NEVER-PRINTED";

/// A snapshot of `n` keys (each written twice, the second time with a
/// value that holds [`SECRET`]), key 0 deleted; returns its path.
fn build(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("snap.db");
    let mut writer = BoltWriter::new(PrivateFile::create(&path).unwrap(), PAGE as u32).unwrap();
    let mut keys = writer.bucket();
    let mut main = 1;
    let name = |i: usize| format!("/registry/secrets/ns/s-{i:05}").into_bytes();
    let mut put = |writer: &mut BoltWriter, key: &[u8], value: &[u8], tombstone: bool| {
        main += 1;
        let kv = KeyValue {
            key,
            create_revision: 2,
            mod_revision: main,
            version: 1,
            value,
            lease: 0,
        };
        let rev = Revision {
            main,
            sub: 0,
            tombstone,
        };
        writer
            .push(&mut keys, &rev.encode(), &kv.encode(), false)
            .unwrap();
    };
    for i in 0..n {
        put(&mut writer, &name(i), b"first", false);
    }
    let mut value = SECRET.to_vec();
    value.extend_from_slice(&[b'x'; 60]);
    for i in 0..n {
        put(&mut writer, &name(i), &value, false);
    }
    put(&mut writer, &name(0), b"", true);
    let keys = writer.finish_bucket(keys).unwrap();
    let mut meta = writer.bucket();
    writer
        .push(&mut meta, b"consistent_index", &9u64.to_be_bytes(), false)
        .unwrap();
    let meta = writer.finish_bucket(meta).unwrap();
    writer
        .finish(
            &[(b"key".to_vec(), keys, 0), (b"meta".to_vec(), meta, 0)],
            1,
        )
        .unwrap();
    path
}

fn open_skip(path: &Path) -> Result<Snapshot, SnapshotError> {
    Snapshot::open(path, HashCheck::Skip)
}

/// Opens a damaged copy: it must fail quickly, and the message must not
/// hold a value.
fn refused(path: &Path, bytes: &[u8], expected: &str) {
    std::fs::write(path, bytes).unwrap();
    let started = Instant::now();
    let error = open_skip(path).expect_err("a damaged snapshot was opened");
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = error.to_string();
    assert!(message.contains(expected), "{message}");
    assert!(message.contains("snap"), "the file is named: {message}");
    assert!(!message.contains("SECRET"), "{message}");
}

fn page_flags(bytes: &[u8], id: usize) -> u16 {
    u16::from_le_bytes([bytes[id * PAGE + 8], bytes[id * PAGE + 9]])
}

fn pages(bytes: &[u8]) -> usize {
    (bytes.len() - 32) / PAGE
}

#[test]
fn a_snapshot_built_here_reads_back_each_key_at_its_latest_revision() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), 500);
    let snapshot = Snapshot::open(&path, HashCheck::Verify).unwrap();
    let info = snapshot.info();
    assert_eq!(info.hash, HashStatus::Verified);
    assert_eq!(info.keys, 499, "key 0 was deleted");
    assert_eq!(info.revisions, 1001);
    assert_eq!(info.revision, 1002);
    assert_eq!(info.consistent_index, Some(9));
    assert_eq!(snapshot.get(b"/registry/secrets/ns/s-00000").unwrap(), None);
    let entry = snapshot
        .get(b"/registry/secrets/ns/s-00001")
        .unwrap()
        .unwrap();
    assert!(entry.value.starts_with(SECRET));
    assert_eq!(entry.revision, 503);
    let (page, more) = snapshot.range(b"/registry/secrets/", None, 10).unwrap();
    assert_eq!(page.len(), 10);
    assert!(more);
    assert_eq!(page[0].key, b"/registry/secrets/ns/s-00001");
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        (0..pages(&bytes)).any(|id| page_flags(&bytes, id) == BRANCH_PAGE),
        "500 keys span a branch page"
    );
}

#[test]
fn a_wrong_hash_truncation_and_random_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), 300);
    let good = std::fs::read(&path).unwrap();
    let damaged = dir.path().join("snap-damaged.db");

    let mut flipped = good.clone();
    flipped[3 * PAGE + 100] ^= 1;
    std::fs::write(&damaged, &flipped).unwrap();
    let e = Snapshot::open(&damaged, HashCheck::Verify).unwrap_err();
    assert!(matches!(e, SnapshotError::HashMismatch { .. }), "{e}");
    assert!(e.to_string().contains("SHA-256"), "{e}");

    refused(&damaged, &good[..good.len() / 2], "truncated");
    let mut cut = good[..3 * PAGE].to_vec();
    cut.extend_from_slice(&[0; 32]);
    refused(&damaged, &cut, "truncated");
    let mut random = vec![0u8; 10_000];
    getrandom::fill(&mut random).unwrap();
    refused(&damaged, &random, "not a bbolt database");
    refused(&damaged, b"", "not a bbolt database");
}

#[test]
fn a_wrong_page_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), 50);
    let mut bytes = std::fs::read(&path).unwrap();
    for meta in [0, PAGE] {
        let at = meta + PAGE_HEADER;
        bytes[at + 8..at + 12].copy_from_slice(&8192u32.to_le_bytes());
        let sum = fnv64a(&bytes[at..at + META_SUMMED]);
        bytes[at + META_SUMMED..at + META_SUMMED + 8].copy_from_slice(&sum.to_le_bytes());
    }
    refused(
        &dir.path().join("snap-pagesize.db"),
        &bytes,
        "pages of 8192 bytes",
    );
}

#[test]
fn references_past_the_end_cycles_buckets_in_values_and_absurd_overflows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), 300);
    let good = std::fs::read(&path).unwrap();
    let damaged = dir.path().join("snap-damaged.db");
    let n = pages(&good);

    // The root bucket's page is the last one; its first element is `key`.
    let root = n - 1;
    assert_eq!(page_flags(&good, root), LEAF_PAGE);
    let element = root * PAGE + PAGE_HEADER;
    let pos = u32::from_le_bytes(good[element + 4..element + 8].try_into().unwrap()) as usize;
    let value = element + pos + 3; // past the name "key"
    let mut past = good.clone();
    past[value..value + 8].copy_from_slice(&1_000_000u64.to_le_bytes());
    refused(&damaged, &past, "page 1000000, outside");

    // The `meta` bucket pointing at the `key` bucket's tree: each page is
    // read once in a pass, so two buckets cannot share one.
    let key_root = &good[value..value + 8];
    let second = element + crate::snapshot::bolt::ELEMENT;
    let pos2 = u32::from_le_bytes(good[second + 4..second + 8].try_into().unwrap()) as usize;
    let meta_value = second + pos2 + 4; // past the name "meta"
    let mut shared = good.clone();
    shared[meta_value..meta_value + 8].copy_from_slice(key_root);
    refused(&damaged, &shared, "reached twice");

    // A branch page whose first child is itself.
    let branch = (0..n)
        .find(|&id| page_flags(&good, id) == BRANCH_PAGE)
        .expect("a branch page");
    let mut cycle = good.clone();
    let child = branch * PAGE + PAGE_HEADER + 8;
    cycle[child..child + 8].copy_from_slice(&(branch as u64).to_le_bytes());
    refused(&damaged, &cycle, "reached twice");

    // A leaf element of the `key` bucket flagged as a bucket.
    let leaf = 3;
    assert_eq!(page_flags(&good, leaf), LEAF_PAGE);
    let mut nested = good.clone();
    nested[leaf * PAGE + PAGE_HEADER] = 1;
    refused(&damaged, &nested, "bucket inside a value");

    // A page claiming four billion overflow pages.
    let mut overflow = good.clone();
    overflow[leaf * PAGE + 12..leaf * PAGE + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    refused(&damaged, &overflow, "overflow pages");

    // An element count past the page.
    let mut count = good.clone();
    count[leaf * PAGE + 10..leaf * PAGE + 12].copy_from_slice(&u16::MAX.to_le_bytes());
    refused(&damaged, &count, "do not fit");

    // A page that says it is another.
    let mut moved = good;
    moved[leaf * PAGE..leaf * PAGE + 8].copy_from_slice(&7u64.to_le_bytes());
    refused(&damaged, &moved, "says it is page 7");
}

/// Keys longer than half a page: every branch page still has two children
/// at least, each branch key is its child's first key, and the tree reads
/// back (bbolt's rules for a file it will write to).
#[test]
fn long_keys_make_branch_pages_of_two_children_at_least() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.db");
    let mut writer = BoltWriter::new(PrivateFile::create(&path).unwrap(), PAGE as u32).unwrap();
    let mut keys = writer.bucket();
    let n = 41;
    for i in 0..n {
        let name = format!("/registry/secrets/ns/{i:03}-{}", "x".repeat(2100)).into_bytes();
        let kv = KeyValue {
            key: &name,
            create_revision: 2 + i,
            mod_revision: 2 + i,
            version: 1,
            value: b"v",
            lease: 0,
        };
        let rev = Revision {
            main: 2 + i,
            sub: 0,
            tombstone: false,
        };
        writer
            .push(&mut keys, &rev.encode(), &kv.encode(), false)
            .unwrap();
    }
    let keys = writer.finish_bucket(keys).unwrap();
    let mut meta = writer.bucket();
    writer
        .push(&mut meta, b"consistent_index", &[0; 8], false)
        .unwrap();
    let meta = writer.finish_bucket(meta).unwrap();
    // A bucket carried over as it is, with keys of more than half a page.
    let mut members = writer.bucket();
    for i in 0..n {
        let name = format!("{i:03}-{}", "m".repeat(2100)).into_bytes();
        writer.push(&mut members, &name, b"{}", false).unwrap();
    }
    let members = writer.finish_bucket(members).unwrap();
    writer
        .finish(
            &[
                (b"key".to_vec(), keys, 0),
                (b"members".to_vec(), members, 0),
                (b"meta".to_vec(), meta, 0),
            ],
            1,
        )
        .unwrap();
    let snapshot = Snapshot::open(&path, HashCheck::Verify).unwrap();
    assert_eq!(snapshot.info().keys, n as usize);
    let bytes = std::fs::read(&path).unwrap();
    let mut branches = 0;
    let mut id = 2;
    while id < pages(&bytes) {
        let at = id * PAGE;
        let count = u16::from_le_bytes([bytes[at + 10], bytes[at + 11]]) as usize;
        let overflow = u32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap()) as usize;
        if page_flags(&bytes, id) == BRANCH_PAGE {
            branches += 1;
            assert!(count >= 2, "branch page {id} has {count} children");
        }
        id += 1 + overflow;
    }
    assert!(branches >= 2, "{branches}");
}

/// The store over a snapshot: read-only without an output; with one, a
/// swap at a stale revision is refused with the current entry, a swap of a
/// key that is not there says so, the output cannot be the input, and a
/// store writes its output once.
#[test]
fn the_snapshot_store_refuses_what_a_store_must_refuse() {
    use futures_util::FutureExt as _;

    use super::{SnapshotError, SnapshotStore};
    use crate::store::{Store, StoreError, Swap};

    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), 20);
    let key = b"/registry/secrets/ns/s-00003";
    let ready = |f: crate::store::StoreFuture<'_, Swap>| f.now_or_never().expect("ready");

    let read_only = SnapshotStore::open(&path, HashCheck::Verify).unwrap();
    let current = read_only.get(key).now_or_never().unwrap().unwrap().unwrap();
    assert!(matches!(
        ready(read_only.compare_and_swap(key, current.revision, b"x")),
        Err(StoreError::ReadOnly { .. })
    ));
    assert!(matches!(
        read_only.finish(),
        Err(SnapshotError::ReadOnly { .. })
    ));

    let onto_input = SnapshotStore::open(&path, HashCheck::Verify)
        .unwrap()
        .with_output(&path);
    assert!(onto_input.is_err_and(|e| e.to_string().contains("is the input")));

    let out = dir.path().join("out.db");
    let store = SnapshotStore::open(&path, HashCheck::Verify)
        .unwrap()
        .with_output(&out)
        .unwrap();
    match ready(store.compare_and_swap(key, current.revision - 1, b"x")) {
        Ok(Swap::Changed(now)) => assert_eq!(now, current),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ready(store.compare_and_swap(b"/registry/secrets/ns/s-00000", 1, b"x")),
        Ok(Swap::Deleted)
    ));
    let Ok(Swap::Written(revision)) = ready(store.compare_and_swap(key, current.revision, b"new"))
    else {
        panic!("not written");
    };
    // Rewritten again, from its new revision only.
    assert!(matches!(
        ready(store.compare_and_swap(key, current.revision, b"newer")),
        Ok(Swap::Changed(_))
    ));
    let written = store.finish().unwrap();
    assert_eq!(
        (written.kept, written.rewritten, written.revision),
        (18, 1, revision)
    );
    assert!(matches!(
        store.finish(),
        Err(SnapshotError::ReadOnly { .. })
    ));
    let copy = Snapshot::open(&out, HashCheck::Verify).unwrap();
    assert_eq!(copy.get(key).unwrap().unwrap().value, b"new");
    assert_eq!(copy.info().compacted, Some(revision));
}
