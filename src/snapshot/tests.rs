//! Snapshots built here (by the writer) and then damaged: every kind of
//! damage gets its error, quickly, and no error repeats a key or a value.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::bolt::{fnv64a, BRANCH_PAGE, LEAF_PAGE, META_SUMMED, PAGE_HEADER};
use super::mvcc::{KeyValue, Revision};
use super::write::BoltWriter;
use super::{HashCheck, HashStatus, Snapshot, SnapshotError};
use crate::private_file::PrivateFile;

const PAGE: usize = 4096;
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
