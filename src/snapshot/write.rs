//! The bbolt file format, written: a fresh database built bucket by bucket
//! from keys in ascending order, as an etcd snapshot file.
//!
//! Layout: pages 0 and 1 are the meta pages (written last, when the root is
//! known), page 2 an empty freelist (every page of the file is in use), then
//! each bucket's tree, leaves first and the branch levels above them, then
//! the root bucket's leaf. Every bucket gets pages of its own (none is
//! inline: bbolt reads both, and inlines small buckets itself when it next
//! writes them). A leaf is filled until the next element would not fit; an
//! element larger than a page gets a page of its own with overflow pages.
//! The file ends with the SHA-256 of everything before it, as
//! `etcdctl snapshot save` appends it.

use std::io::{self, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

use super::bolt::{
    Meta, BRANCH_PAGE, BUCKET_HEADER, BUCKET_LEAF, ELEMENT, FREELIST_PAGE, LEAF_PAGE, META_PAGE,
    PAGE_HEADER,
};
use crate::private_file::PrivateFile;

/// The freelist's page.
const FREELIST: u64 = 2;

/// A bbolt database being written to a private file.
pub(crate) struct BoltWriter {
    out: PrivateFile,
    page_size: usize,
    /// The next page ID to write.
    next: u64,
}

/// One element of a page being filled.
struct Element {
    flags: u32,
    key: Vec<u8>,
    value: Vec<u8>,
    /// For a branch element: the child page.
    child: u64,
}

/// A bucket being written: a level of leaves, then branches.
pub(crate) struct BucketWriter {
    /// The current leaf's elements and their bytes.
    leaf: Vec<Element>,
    leaf_bytes: usize,
    /// (first key, page) of every page of the level above the leaves.
    written: Vec<(Vec<u8>, u64)>,
    last_key: Option<Vec<u8>>,
}

impl BoltWriter {
    /// Starts a database in `out`, with pages of `page_size` bytes.
    pub(crate) fn new(mut out: PrivateFile, page_size: u32) -> io::Result<Self> {
        let page_size = page_size as usize;
        // Room for the meta pages, then the (empty) freelist.
        out.write_all(&vec![0u8; 2 * page_size])?;
        let mut freelist = vec![0u8; page_size];
        page_header(&mut freelist, FREELIST, FREELIST_PAGE, 0, 0);
        out.write_all(&freelist)?;
        Ok(Self {
            out,
            page_size,
            next: 3,
        })
    }

    /// A new bucket; fill it with [`BucketWriter::push`], then
    /// [`finish_bucket`](Self::finish_bucket).
    pub(crate) fn bucket(&self) -> BucketWriter {
        BucketWriter {
            leaf: Vec::new(),
            leaf_bytes: 0,
            written: Vec::new(),
            last_key: None,
        }
    }

    /// Adds a key and value to `bucket` (keys in strictly ascending order);
    /// writes a leaf when it is full.
    pub(crate) fn push(
        &mut self,
        bucket: &mut BucketWriter,
        key: &[u8],
        value: &[u8],
        is_bucket: bool,
    ) -> io::Result<()> {
        if bucket.last_key.as_deref().is_some_and(|last| last >= key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bbolt keys must be written in ascending order",
            ));
        }
        bucket.last_key = Some(key.to_vec());
        let size = ELEMENT + key.len() + value.len();
        if !bucket.leaf.is_empty() && PAGE_HEADER + bucket.leaf_bytes + size > self.page_size {
            self.flush_leaf(bucket)?;
        }
        bucket.leaf.push(Element {
            flags: if is_bucket { BUCKET_LEAF } else { 0 },
            key: key.to_vec(),
            value: value.to_vec(),
            child: 0,
        });
        bucket.leaf_bytes += size;
        Ok(())
    }

    /// Writes the rest of `bucket` and its branch levels; its root page.
    pub(crate) fn finish_bucket(&mut self, mut bucket: BucketWriter) -> io::Result<u64> {
        if !bucket.leaf.is_empty() || bucket.written.is_empty() {
            self.flush_leaf(&mut bucket)?;
        }
        let mut level = bucket.written;
        while level.len() > 1 {
            level = self.branch_level(level)?;
        }
        Ok(level[0].1)
    }

    /// Writes the root bucket (`buckets`: name, root page, sequence, in
    /// ascending name order), both meta pages and the hash, and renames the
    /// file into place.
    pub(crate) fn finish(mut self, buckets: &[(Vec<u8>, u64, u64)], txid: u64) -> io::Result<()> {
        let mut root = self.bucket();
        for (name, page, sequence) in buckets {
            let mut header = Vec::with_capacity(BUCKET_HEADER);
            header.extend_from_slice(&page.to_le_bytes());
            header.extend_from_slice(&sequence.to_le_bytes());
            self.push(&mut root, name, &header, true)?;
        }
        let root = self.finish_bucket(root)?;
        let pages = self.next;
        let file = self.out.file_mut()?;
        for (id, txid) in [(0u64, txid), (1, txid + 1)] {
            let meta = Meta {
                page_size: self.page_size as u32,
                flags: 0,
                root,
                root_sequence: 0,
                freelist: FREELIST,
                pages,
                txid,
            };
            let mut page = vec![0u8; PAGE_HEADER];
            page_header(&mut page, id, META_PAGE, 0, 0);
            page.extend_from_slice(&meta.encode());
            file.seek(SeekFrom::Start(id * self.page_size as u64))?;
            file.write_all(&page)?;
        }
        let hash = hash_of(file)?;
        file.seek(SeekFrom::End(0))?;
        file.write_all(&hash)?;
        self.out.commit()
    }

    /// Writes the elements of the current leaf as one page (with overflow
    /// pages if they need them).
    fn flush_leaf(&mut self, bucket: &mut BucketWriter) -> io::Result<()> {
        let elements = std::mem::take(&mut bucket.leaf);
        bucket.leaf_bytes = 0;
        let first = elements.first().map(|e| e.key.clone()).unwrap_or_default();
        let id = self.write_page(LEAF_PAGE, &elements)?;
        bucket.written.push((first, id));
        Ok(())
    }

    /// Writes one level of branch pages over `children`; the level's pages.
    /// A branch page holds at least two children (bbolt's rule: a branch
    /// with one child breaks its later deletes).
    fn branch_level(&mut self, children: Vec<(Vec<u8>, u64)>) -> io::Result<Vec<(Vec<u8>, u64)>> {
        let mut pages: Vec<Vec<Element>> = vec![Vec::new()];
        let mut bytes = 0usize;
        for (key, child) in children {
            let size = ELEMENT + key.len();
            // A page is closed once full, and never with fewer than two
            // children (a page of long keys then spans overflow pages).
            let current = pages.last().map_or(0, Vec::len);
            if current >= 2 && PAGE_HEADER + bytes + size > self.page_size {
                pages.push(Vec::new());
                bytes = 0;
            }
            bytes += size;
            if let Some(page) = pages.last_mut() {
                page.push(Element {
                    flags: 0,
                    key,
                    value: Vec::new(),
                    child,
                });
            }
        }
        // A last page of one child joins the page before it.
        if pages.len() > 1 && pages.last().is_some_and(|p| p.len() < 2) {
            if let Some(last) = pages.pop() {
                if let Some(before) = pages.last_mut() {
                    before.extend(last);
                }
            }
        }
        let mut level = Vec::with_capacity(pages.len());
        for page in pages {
            let first = page.first().map(|e| e.key.clone()).unwrap_or_default();
            level.push((first, self.write_page(BRANCH_PAGE, &page)?));
        }
        Ok(level)
    }

    /// Writes a page of `elements`; its ID.
    fn write_page(&mut self, flags: u16, elements: &[Element]) -> io::Result<u64> {
        let count = u16::try_from(elements.len())
            .map_err(|_| io::Error::other("too many elements for a bbolt page"))?;
        let data: usize = elements.iter().map(|e| e.key.len() + e.value.len()).sum();
        let used = PAGE_HEADER + elements.len() * ELEMENT + data;
        let span = used.div_ceil(self.page_size).max(1);
        let overflow = u32::try_from(span - 1)
            .map_err(|_| io::Error::other("a value too large for a bbolt page"))?;
        let id = self.next;
        let mut page = Vec::with_capacity(span * self.page_size);
        page.resize(PAGE_HEADER + elements.len() * ELEMENT, 0);
        page_header(&mut page, id, flags, count, overflow);
        for (i, element) in elements.iter().enumerate() {
            let at = PAGE_HEADER + i * ELEMENT;
            let pos = u32::try_from(page.len() - at)
                .map_err(|_| io::Error::other("a bbolt page too large"))?;
            let ksize = element.key.len() as u32;
            let fields: [u8; ELEMENT] = if flags == BRANCH_PAGE {
                let mut f = [0u8; ELEMENT];
                f[0..4].copy_from_slice(&pos.to_le_bytes());
                f[4..8].copy_from_slice(&ksize.to_le_bytes());
                f[8..16].copy_from_slice(&element.child.to_le_bytes());
                f
            } else {
                let mut f = [0u8; ELEMENT];
                f[0..4].copy_from_slice(&element.flags.to_le_bytes());
                f[4..8].copy_from_slice(&pos.to_le_bytes());
                f[8..12].copy_from_slice(&ksize.to_le_bytes());
                f[12..16].copy_from_slice(&(element.value.len() as u32).to_le_bytes());
                f
            };
            page[at..at + ELEMENT].copy_from_slice(&fields);
            page.extend_from_slice(&element.key);
            page.extend_from_slice(&element.value);
        }
        page.resize(span * self.page_size, 0);
        self.out.write_all(&page)?;
        self.next += span as u64;
        Ok(id)
    }
}

/// Writes a page header at the start of `page`.
fn page_header(page: &mut [u8], id: u64, flags: u16, count: u16, overflow: u32) {
    page[0..8].copy_from_slice(&id.to_le_bytes());
    page[8..10].copy_from_slice(&flags.to_le_bytes());
    page[10..12].copy_from_slice(&count.to_le_bytes());
    page[12..16].copy_from_slice(&overflow.to_le_bytes());
}

/// The SHA-256 of the whole file.
fn hash_of(file: &mut std::fs::File) -> io::Result<[u8; 32]> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}
