//! An etcd snapshot turned into an attack on its reader: every large leaf
//! page of the `key` bucket rewritten so that its elements overlap. Written
//! from bbolt's page layout (kept here apart from the library's reader, as
//! [`crate::encrypted_object`] is from its envelope code), so the tests do
//! not craft files with the code they test.
//!
//! Each crafted element has a revision key of its own (17 bytes, ascending,
//! in bounds), and a value that is a valid `mvcc.KeyValue` (its
//! `mod_revision` is the key's revision) whose `key` field runs to the end
//! of the page: it takes in the keys and values of every element after it.
//! Each element passes the checks it gets alone; together they claim about
//! `count × span / 2` bytes of user keys from one page of `span` bytes, the
//! shape of the files an outside review made (327 KB asking for 721 MB,
//! 2.5 MB for 49 GB).

use std::ops::Range;

const PAGE_HEADER: usize = 16;
const ELEMENT: usize = 16;
const LEAF_PAGE: u16 = 0x02;
/// The etcd snapshot's SHA-256 of everything before it.
const HASH: usize = 32;
/// A revision key: 8 bytes of main revision, `_`, 8 bytes of sub.
const REVISION_KEY: usize = 17;

/// What [`overlap_large_leaves`] did to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crafted {
    /// Leaf pages rewritten.
    pub pages: usize,
    /// The elements written to them.
    pub elements: usize,
    /// The bytes of user keys their values claim, together.
    pub claimed: u64,
}

/// Rewrites every leaf page with overflow pages (a page of `span` bytes)
/// whose first element is a revision key, as the module says, and writes
/// the snapshot's trailing SHA-256 again so that the file passes its hash
/// check. `bytes` is a whole `etcdctl snapshot save` file.
pub fn overlap_large_leaves(bytes: &mut [u8]) -> Crafted {
    let page_size = u32_at(bytes, PAGE_HEADER + 8) as usize;
    assert!(
        page_size.is_power_of_two() && page_size >= 1024,
        "not a bbolt file"
    );
    let db_len = bytes.len() - HASH;
    let mut crafted = Crafted {
        pages: 0,
        elements: 0,
        claimed: 0,
    };
    let mut at = 2 * page_size; // past the two meta pages
    while at + PAGE_HEADER <= db_len {
        let overflow = u32_at(bytes, at + 12) as usize;
        let span = (overflow + 1) * page_size;
        if overflow > 0 && at + span <= db_len && is_revision_leaf(bytes, at) {
            let (elements, claimed) = overlap_leaf(&mut bytes[at..at + span]);
            crafted.pages += 1;
            crafted.elements += elements;
            crafted.claimed += claimed;
        }
        at += span;
    }
    let hash = sha256(&bytes[..db_len]);
    bytes[db_len..].copy_from_slice(&hash);
    crafted
}

fn is_revision_leaf(bytes: &[u8], page: usize) -> bool {
    let flags = u16::from_le_bytes([bytes[page + 8], bytes[page + 9]]);
    let count = u16::from_le_bytes([bytes[page + 10], bytes[page + 11]]);
    if flags != LEAF_PAGE || count == 0 {
        return false;
    }
    let element = page + PAGE_HEADER;
    let key = element + u32_at(bytes, element + 4) as usize;
    u32_at(bytes, element) == 0
        && u32_at(bytes, element + 8) as usize == REVISION_KEY
        && bytes.get(key + 8) == Some(&b'_')
}

/// Rewrites one leaf page (`page`: its whole span) with as many
/// overlapping elements as fit; their count and the bytes they claim.
fn overlap_leaf(page: &mut [u8]) -> (usize, u64) {
    let first = PAGE_HEADER + u32_at(page, PAGE_HEADER + 4) as usize;
    let main = i64::from_be_bytes(page[first..first + 8].try_into().unwrap());
    let sub = i64::from_be_bytes(page[first + 9..first + 17].try_into().unwrap());
    // Each element takes its table entry, its key and a value header of at
    // most 1 + 10 + 1 + 10 bytes (two tags, two varints).
    let per_element = ELEMENT + REVISION_KEY + 22;
    let count = ((page.len() - PAGE_HEADER) / per_element).min(usize::from(u16::MAX));
    page[10..12].copy_from_slice(&u16::try_from(count).unwrap().to_le_bytes());
    let mut data = PAGE_HEADER + count * ELEMENT;
    let mut claimed = 0u64;
    for i in 0..count {
        let entry = PAGE_HEADER + i * ELEMENT;
        page[data..data + 8].copy_from_slice(&main.to_be_bytes());
        page[data + 8] = b'_';
        page[data + 9..data + 17].copy_from_slice(&(sub + i as i64).to_be_bytes());
        let value_start = data + REVISION_KEY;
        let value = value_start..page.len();
        let header = key_value_header(main, value.len());
        page[value_start..value_start + header.len()].copy_from_slice(&header);
        claimed += (value.len() - header.len()) as u64;
        put_element(page, entry, data, value);
        // The next element starts inside this value's `key` field.
        data = value_start + header.len();
    }
    (count, claimed)
}

/// A leaf element at `entry`: flags 0, its key of [`REVISION_KEY`] bytes at
/// `key`, its value at `value` (bbolt's positions count from the entry).
fn put_element(page: &mut [u8], entry: usize, key: usize, value: Range<usize>) {
    let fields = [0, key - entry, REVISION_KEY, value.len()];
    for (i, field) in fields.into_iter().enumerate() {
        let at = entry + 4 * i;
        page[at..at + 4].copy_from_slice(&u32::try_from(field).unwrap().to_le_bytes());
    }
}

/// `mod_revision: revision` (field 3), then the tag and length of a `key`
/// (field 1) that fills the rest of a value of `value_len` bytes.
fn key_value_header(revision: i64, value_len: usize) -> Vec<u8> {
    let mut head = vec![3 << 3];
    put_varint(&mut head, revision as u64);
    head.push(1 << 3 | 2);
    // The length's own varint counts against the value: settle it.
    let mut key_len = value_len - head.len() - 1;
    loop {
        let mut len = Vec::new();
        put_varint(&mut len, key_len as u64);
        let total = head.len() + len.len() + key_len;
        if total == value_len {
            head.extend_from_slice(&len);
            return head;
        }
        key_len = value_len - head.len() - len.len();
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_header_makes_the_key_fill_the_value() {
        for len in [30usize, 127 + 4, 128 + 4, 300, 16_389, 1 << 21, 3 << 20] {
            let head = key_value_header(70_000, len);
            // tag 3, varint, tag 1, varint of len - head.len()
            assert_eq!(head[0], 0x18);
            let mut rest = &head[1..];
            while rest[0] & 0x80 != 0 {
                rest = &rest[1..];
            }
            assert_eq!(rest[1], 0x0a);
            let mut key_len = 0u64;
            for (i, b) in rest[2..].iter().enumerate() {
                key_len |= u64::from(b & 0x7f) << (7 * i);
            }
            assert_eq!(key_len as usize, len - head.len(), "{len}");
        }
    }
}
