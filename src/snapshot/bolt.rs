//! The bbolt file format, read: meta pages, branch, leaf and overflow
//! pages, buckets (inline or not), the freelist page.
//!
//! A bbolt file is a sequence of pages of one size (the size is in the meta
//! pages). Pages 0 and 1 are meta pages, written in turn by successive
//! transactions; the valid one with the higher transaction ID is the file's
//! state. It names the root bucket's page. A bucket is a B+tree: branch
//! pages list (first key, child page) pairs, leaf pages list (flags, key,
//! value) elements; a leaf element flagged as a bucket holds a bucket header
//! (root page, sequence), and a bucket small enough to be *inline* has root
//! 0 and its one leaf page right after the header inside the value. A page
//! whose elements do not fit spans `overflow` more pages.
//!
//! Everything read here comes from a file that may be damaged or hostile:
//! every offset and length is checked against the bytes read before it is
//! used, a page is read only inside the file, a walk visits each page at
//! most once and no deeper than [`MAX_DEPTH`] (so a cycle or a deep chain
//! ends with an error), and nothing is allocated beyond the page being read.
//! The file is never written: it is opened read-only.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Mutex;

/// The magic number of a bbolt meta page.
pub(crate) const MAGIC: u32 = 0xED0C_DAED;
/// The file format version bbolt writes.
pub(crate) const VERSION: u32 = 2;
/// Bytes of a page header: id (8), flags (2), count (2), overflow (4).
pub(crate) const PAGE_HEADER: usize = 16;
/// Bytes of a branch or leaf element.
pub(crate) const ELEMENT: usize = 16;
/// Bytes of a bucket header: root page (8), sequence (8).
pub(crate) const BUCKET_HEADER: usize = 16;
/// Bytes of the meta fields the checksum covers (everything before it).
pub(crate) const META_SUMMED: usize = 56;

pub(crate) const BRANCH_PAGE: u16 = 0x01;
pub(crate) const LEAF_PAGE: u16 = 0x02;
pub(crate) const META_PAGE: u16 = 0x04;
pub(crate) const FREELIST_PAGE: u16 = 0x10;
/// A leaf element whose value is a bucket.
pub(crate) const BUCKET_LEAF: u32 = 0x01;

/// How deep a bucket's tree (and buckets in buckets) may go. A real tree of
/// 4 KiB pages holding a billion keys is about six levels deep.
pub(crate) const MAX_DEPTH: usize = 64;

/// What is wrong with a file, in words that hold none of its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Corrupt(pub(crate) String);

impl Corrupt {
    fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// A reason from an I/O error while reading.
fn io_error(what: &str, e: &std::io::Error) -> Corrupt {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Corrupt(format!("{what}: the file ends inside it (truncated?)"))
    } else {
        Corrupt(format!("{what}: {e}"))
    }
}

/// The fields of a meta page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) page_size: u32,
    pub(crate) flags: u32,
    /// The root bucket's root page.
    pub(crate) root: u64,
    pub(crate) root_sequence: u64,
    /// The freelist's page (`u64::MAX` when the freelist is not stored).
    pub(crate) freelist: u64,
    /// The number of pages in use (the high-water mark).
    pub(crate) pages: u64,
    pub(crate) txid: u64,
}

impl Meta {
    /// Decodes and checks the meta fields at the start of `bytes` (just
    /// past a page header); the reason when they are not valid.
    fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        if bytes.len() < META_SUMMED + 8 {
            return Err("too short for a meta page");
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        if u32_at(0) != MAGIC {
            return Err("no bbolt magic number");
        }
        if u32_at(4) != VERSION {
            return Err("an unsupported bbolt version");
        }
        if u64_at(META_SUMMED) != fnv64a(&bytes[..META_SUMMED]) {
            return Err("its checksum does not match");
        }
        let meta = Self {
            page_size: u32_at(8),
            flags: u32_at(12),
            root: u64_at(16),
            root_sequence: u64_at(24),
            freelist: u64_at(32),
            pages: u64_at(40),
            txid: u64_at(48),
        };
        if !meta.page_size.is_power_of_two() || !(512..=65536).contains(&meta.page_size) {
            return Err("an impossible page size");
        }
        Ok(meta)
    }

    /// The meta fields as bbolt writes them (after a page header),
    /// checksum included.
    pub(crate) fn encode(&self) -> [u8; META_SUMMED + 8] {
        let mut out = [0u8; META_SUMMED + 8];
        out[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        out[4..8].copy_from_slice(&VERSION.to_le_bytes());
        out[8..12].copy_from_slice(&self.page_size.to_le_bytes());
        out[12..16].copy_from_slice(&self.flags.to_le_bytes());
        out[16..24].copy_from_slice(&self.root.to_le_bytes());
        out[24..32].copy_from_slice(&self.root_sequence.to_le_bytes());
        out[32..40].copy_from_slice(&self.freelist.to_le_bytes());
        out[40..48].copy_from_slice(&self.pages.to_le_bytes());
        out[48..56].copy_from_slice(&self.txid.to_le_bytes());
        let sum = fnv64a(&out[..META_SUMMED]);
        out[56..64].copy_from_slice(&sum.to_le_bytes());
        out
    }
}

/// 64-bit FNV-1a, bbolt's meta checksum.
pub(crate) fn fnv64a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// One page (with its overflow pages), or an inline bucket's page.
pub(crate) struct Page {
    /// The page's ID (0 for an inline page).
    pub(crate) id: u64,
    pub(crate) flags: u16,
    pub(crate) count: u16,
    /// The page's bytes, header included.
    pub(crate) bytes: Vec<u8>,
    /// Where `bytes[0]` is in the file.
    pub(crate) offset: u64,
}

/// A leaf element: where its key and value are in the page.
pub(crate) struct LeafElement {
    pub(crate) flags: u32,
    pub(crate) key: Range<usize>,
    pub(crate) value: Range<usize>,
}

/// A branch element: the page it points to (the keys are checked in the
/// leaves).
pub(crate) struct BranchElement {
    pub(crate) child: u64,
}

impl Page {
    /// Reads a page's header fields from `bytes` (which holds at least a
    /// header).
    fn header(bytes: &[u8]) -> (u64, u16, u16, u32) {
        let id = u64::from_le_bytes(bytes[0..8].try_into().unwrap_or([0; 8]));
        let flags = u16::from_le_bytes([bytes[8], bytes[9]]);
        let count = u16::from_le_bytes([bytes[10], bytes[11]]);
        let overflow = u32::from_le_bytes(bytes[12..16].try_into().unwrap_or([0; 4]));
        (id, flags, count, overflow)
    }

    /// Checks that the page's element count fits in it.
    fn check_count(&self) -> Result<(), Corrupt> {
        match usize::from(self.count).checked_sub(1) {
            Some(last) => self.element(last).map(|_| ()),
            None => Ok(()),
        }
    }

    fn element(&self, index: usize) -> Result<usize, Corrupt> {
        let at = PAGE_HEADER + index * ELEMENT;
        if at + ELEMENT > self.bytes.len() {
            return Err(Corrupt(format!(
                "{}: {} elements do not fit in the page",
                self.name(),
                self.count
            )));
        }
        Ok(at)
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.bytes[at..at + 4].try_into().unwrap_or([0; 4]))
    }

    /// A range of `len` bytes at `start` inside the page, or what is wrong.
    fn range(&self, start: usize, len: u32) -> Result<Range<usize>, Corrupt> {
        let end = start
            .checked_add(len as usize)
            .filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) => Ok(start..end),
            None => Err(Corrupt(format!(
                "{}: an element points past the end of the page",
                self.name()
            ))),
        }
    }

    /// Where the page is, for errors: `page 12`, or an inline bucket's
    /// page by its offset in the file.
    fn name(&self) -> String {
        if self.id == 0 {
            format!("the inline bucket at byte {}", self.offset)
        } else {
            format!("page {}", self.id)
        }
    }

    /// The end of the element table, where the keys and values start.
    fn table_end(&self) -> usize {
        PAGE_HEADER + usize::from(self.count) * ELEMENT
    }

    /// Checks that an element's data starts at or after `cursor` (the end
    /// of the element table, then the end of the element before): bbolt
    /// writes keys and values after the table, one element after the other,
    /// so data that reaches back into the table or into another element's
    /// is a crafted page. Without this check, every element could claim the
    /// rest of the page as its key, and a page of N elements would hold N
    /// times its size.
    fn after(&self, cursor: usize, start: usize) -> Result<(), Corrupt> {
        if start < cursor {
            return Err(Corrupt(format!(
                "{}: an element's key or value overlaps the element table or another element",
                self.name()
            )));
        }
        Ok(())
    }

    /// The leaf elements, bounds-checked: their keys and values lie after
    /// the element table, in order, and overlap nothing.
    pub(crate) fn leaf_elements(&self) -> Result<Vec<LeafElement>, Corrupt> {
        self.check_count()?;
        let mut out = Vec::with_capacity(usize::from(self.count));
        let mut cursor = self.table_end();
        for index in 0..usize::from(self.count) {
            let at = self.element(index)?;
            let flags = self.u32_at(at);
            let pos = self.u32_at(at + 4) as usize;
            self.after(cursor, at + pos)?;
            let key = self.range(at + pos, self.u32_at(at + 8))?;
            let value = self.range(key.end, self.u32_at(at + 12))?;
            cursor = value.end;
            out.push(LeafElement { flags, key, value });
        }
        Ok(out)
    }

    /// The branch elements, bounds-checked as the leaf elements are.
    pub(crate) fn branch_elements(&self) -> Result<Vec<BranchElement>, Corrupt> {
        self.check_count()?;
        let mut out = Vec::with_capacity(usize::from(self.count));
        let mut cursor = self.table_end();
        for index in 0..usize::from(self.count) {
            let at = self.element(index)?;
            let pos = self.u32_at(at) as usize;
            self.after(cursor, at + pos)?;
            cursor = self.range(at + pos, self.u32_at(at + 4))?.end;
            let child =
                u64::from_le_bytes(self.bytes[at + 8..at + 16].try_into().unwrap_or([0; 8]));
            out.push(BranchElement { child });
        }
        Ok(out)
    }
}

/// Where a bucket's tree starts.
#[derive(Clone)]
pub(crate) enum BucketRoot {
    /// A tree of pages from this one.
    Page(u64),
    /// An inline bucket: its leaf page's bytes, and where they are in the
    /// file.
    Inline { bytes: Vec<u8>, offset: u64 },
}

impl BucketRoot {
    /// The bucket whose header (and inline page) is `value`, found at
    /// `offset` in the file; and its sequence number.
    pub(crate) fn from_value(value: &[u8], offset: u64) -> Result<(Self, u64), Corrupt> {
        if value.len() < BUCKET_HEADER {
            return Err(Corrupt::new("a bucket header is shorter than 16 bytes"));
        }
        let root = u64::from_le_bytes(value[..8].try_into().unwrap_or([0; 8]));
        let sequence = u64::from_le_bytes(value[8..16].try_into().unwrap_or([0; 8]));
        if root != 0 {
            return Ok((Self::Page(root), sequence));
        }
        let page = &value[BUCKET_HEADER..];
        if page.len() < PAGE_HEADER {
            return Err(Corrupt::new(
                "an inline bucket is shorter than a page header",
            ));
        }
        let inline = Self::Inline {
            bytes: page.to_vec(),
            offset: offset + BUCKET_HEADER as u64,
        };
        Ok((inline, sequence))
    }
}

/// One key and value of a bucket, as a walk meets it.
pub(crate) struct Item<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
    /// Where the value starts in the file.
    pub(crate) value_offset: u64,
    /// Whether the value is a bucket (a header, maybe an inline page).
    pub(crate) is_bucket: bool,
}

/// An open bbolt file, read-only.
pub(crate) struct BoltFile {
    file: Mutex<File>,
    /// The bytes of the file that are the database (a snapshot's hash is
    /// past them).
    len: u64,
    meta: Meta,
}

impl BoltFile {
    /// Opens the database in the first `len` bytes of `file`: reads both
    /// meta pages and keeps the valid one with the higher transaction ID.
    pub(crate) fn open(file: File, len: u64) -> Result<Self, Corrupt> {
        let mut file = file;
        let meta0 = read_meta(&mut file, 0, len);
        let page_size = match &meta0 {
            Ok(meta) => Some(u64::from(meta.page_size)),
            Err(_) => None,
        };
        // With page 0 unreadable, page 1 is where it would be with any page
        // size bbolt may have used.
        let candidates: Vec<u64> = match page_size {
            Some(size) => vec![size],
            None => vec![4096, 16384, 65536, 8192, 32768, 1024, 2048, 512],
        };
        let mut meta1 = Err("no second meta page");
        for offset in candidates {
            meta1 = read_meta(&mut file, offset, len);
            if let Ok(meta) = &meta1 {
                if u64::from(meta.page_size) == offset {
                    break;
                }
                meta1 = Err("the second meta page is not where its page size puts it");
            }
        }
        let meta = match (meta0, meta1) {
            (Ok(a), Ok(b)) => {
                if a.page_size != b.page_size {
                    return Err(Corrupt::new("its two meta pages disagree on the page size"));
                }
                if b.txid > a.txid {
                    b
                } else {
                    a
                }
            }
            (Ok(a), Err(_)) => a,
            (Err(_), Ok(b)) => b,
            (Err(a), Err(b)) => {
                return Err(Corrupt(format!(
                    "not a bbolt database: meta page 0 has {a}, meta page 1 has {b}"
                )))
            }
        };
        let size = u64::from(meta.page_size);
        let needed = meta.pages.checked_mul(size);
        match needed {
            Some(needed) if needed <= len && meta.pages >= 2 => {}
            _ => {
                return Err(Corrupt(format!(
                    "truncated: its meta page counts {} pages of {} bytes, but the database has {} bytes",
                    meta.pages, size, len
                )))
            }
        }
        if meta.root < 2 || meta.root >= meta.pages {
            return Err(Corrupt::new("the root bucket's page is outside the file"));
        }
        Ok(Self {
            file: Mutex::new(file),
            len,
            meta,
        })
    }

    /// The meta page in use.
    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The root bucket.
    pub(crate) fn root(&self) -> BucketRoot {
        BucketRoot::Page(self.meta.root)
    }

    /// Reads `len` bytes at `offset` (inside the database).
    pub(crate) fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, Corrupt> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(Corrupt::new("a read past the end of the database"));
        }
        let mut buf = vec![0u8; len];
        let mut file = self
            .file
            .lock()
            .map_err(|_| Corrupt::new("a reader of the file panicked"))?;
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| io_error("reading", &e))?;
        Ok(buf)
    }

    /// Reads page `id` with its overflow pages, claiming them in `claims`.
    fn page(&self, id: u64, claims: &mut Claims) -> Result<Page, Corrupt> {
        let size = u64::from(self.meta.page_size);
        if id < 2 || id >= self.meta.pages {
            return Err(Corrupt(format!(
                "a reference to page {id}, outside the {} pages in use",
                self.meta.pages
            )));
        }
        let offset = id * size;
        let head = self.read_at(offset, PAGE_HEADER)?;
        let (found, flags, count, overflow) = Page::header(&head);
        if found != id {
            return Err(Corrupt(format!("page {id} says it is page {found}")));
        }
        let span = u64::from(overflow) + 1;
        if id + span > self.meta.pages {
            return Err(Corrupt(format!(
                "page {id} claims {overflow} overflow pages, past the {} pages in use",
                self.meta.pages
            )));
        }
        claims.claim(id, span)?;
        let bytes = self.read_at(
            offset,
            usize::try_from(span * size).map_err(|_| Corrupt::new("a page too large"))?,
        )?;
        Ok(Page {
            id,
            flags,
            count,
            bytes,
            offset,
        })
    }

    /// A fresh record of the pages a pass over the file has read.
    pub(crate) fn claims(&self) -> Claims {
        Claims::new(self.meta.pages)
    }

    /// Calls `visit` with every key and value of the bucket at `root`, in
    /// key order. Every page read is claimed in `claims`: a page (or one of
    /// its overflow pages) met again, in this walk or in an earlier one of
    /// the same pass, is an error, so that one pass reads each byte of the
    /// file at most once, however the file's pages point at each other.
    pub(crate) fn walk(
        &self,
        root: &BucketRoot,
        claims: &mut Claims,
        visit: &mut dyn FnMut(&Item<'_>) -> Result<(), Corrupt>,
    ) -> Result<(), Corrupt> {
        let mut walk = Walk {
            file: self,
            claims,
            last_key: None,
            visit,
        };
        match root {
            BucketRoot::Page(id) => walk.page(*id, 0),
            BucketRoot::Inline { bytes, offset } => walk.inline(bytes, *offset),
        }
    }
}

/// The pages a pass over a file has read, with their overflow pages: one
/// bit a page.
pub(crate) struct Claims {
    bits: Vec<u64>,
}

impl Claims {
    fn new(pages: u64) -> Self {
        Self {
            bits: vec![0; usize::try_from(pages.div_ceil(64)).unwrap_or(0)],
        }
    }

    /// Claims pages `id..id + span` (checked to be inside the file).
    fn claim(&mut self, id: u64, span: u64) -> Result<(), Corrupt> {
        for page in id..id + span {
            let (word, bit) = ((page / 64) as usize, page % 64);
            let Some(slot) = self.bits.get_mut(word) else {
                return Err(Corrupt(format!("page {page} is outside the file")));
            };
            if *slot & (1 << bit) != 0 {
                return Err(Corrupt(format!(
                    "page {page} is reached twice (a cycle, or pages that overlap)"
                )));
            }
            *slot |= 1 << bit;
        }
        Ok(())
    }
}

fn read_meta(file: &mut File, offset: u64, len: u64) -> Result<Meta, &'static str> {
    let wanted = (PAGE_HEADER + META_SUMMED + 8) as u64;
    if offset + wanted > len {
        return Err("no room for a meta page");
    }
    let mut buf = [0u8; PAGE_HEADER + META_SUMMED + 8];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(|_| "a read error")?;
    let (_, flags, _, _) = Page::header(&buf);
    if flags & META_PAGE == 0 {
        return Err("no meta page flag");
    }
    Meta::decode(&buf[PAGE_HEADER..])
}

/// One walk of a bucket: the pages met so far (each is visited once).
struct Walk<'w, 'v> {
    file: &'w BoltFile,
    claims: &'w mut Claims,
    last_key: Option<Vec<u8>>,
    visit: &'v mut dyn FnMut(&Item<'_>) -> Result<(), Corrupt>,
}

impl Walk<'_, '_> {
    fn page(&mut self, id: u64, depth: usize) -> Result<(), Corrupt> {
        if depth > MAX_DEPTH {
            return Err(Corrupt::new(
                "a bucket's tree is deeper than any real one (a cycle?)",
            ));
        }
        let page = self.file.page(id, self.claims)?;
        if page.flags & BRANCH_PAGE != 0 {
            let children = page.branch_elements()?;
            // The branch's bytes are not needed below it.
            drop(page);
            for element in children {
                self.page(element.child, depth + 1)?;
            }
            Ok(())
        } else if page.flags & LEAF_PAGE != 0 {
            self.leaf(&page)
        } else {
            Err(Corrupt(format!(
                "page {id} is in a bucket's tree but is neither a branch nor a leaf"
            )))
        }
    }

    fn inline(&mut self, bytes: &[u8], offset: u64) -> Result<(), Corrupt> {
        let (_, flags, count, _) = Page::header(bytes);
        if flags & LEAF_PAGE == 0 {
            return Err(Corrupt::new("an inline bucket's page is not a leaf"));
        }
        let page = Page {
            id: 0,
            flags,
            count,
            bytes: bytes.to_vec(),
            offset,
        };
        self.leaf(&page)
    }

    fn leaf(&mut self, page: &Page) -> Result<(), Corrupt> {
        for element in page.leaf_elements()? {
            let key = &page.bytes[element.key.clone()];
            if self.last_key.as_deref().is_some_and(|last| last >= key) {
                return Err(Corrupt(format!(
                    "page {}: keys are not in ascending order",
                    page.id
                )));
            }
            self.last_key = Some(key.to_vec());
            let item = Item {
                key,
                value: &page.bytes[element.value.clone()],
                value_offset: page.offset + element.value.start as u64,
                is_bucket: element.flags & BUCKET_LEAF != 0,
            };
            (self.visit)(&item)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv64a_matches_the_reference_values() {
        // The FNV-1a test vectors of the specification.
        assert_eq!(fnv64a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv64a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_meta_page_round_trips_and_a_flipped_bit_is_caught() {
        let meta = Meta {
            page_size: 4096,
            flags: 0,
            root: 3,
            root_sequence: 0,
            freelist: 2,
            pages: 4,
            txid: 7,
        };
        let bytes = meta.encode();
        assert_eq!(Meta::decode(&bytes), Ok(meta));
        let mut flipped = bytes;
        flipped[20] ^= 1;
        assert_eq!(Meta::decode(&flipped), Err("its checksum does not match"));
    }

    /// A leaf page of `count` elements whose keys start one byte apart in
    /// one run of bytes after the element table and all run to the page's
    /// end: each in bounds, in ascending order, and overlapping the others.
    /// The bytes they claim, together.
    fn overlapping_leaf(page_size: usize, count: usize) -> (Page, usize) {
        let mut bytes = vec![0u8; page_size];
        let table_end = PAGE_HEADER + count * ELEMENT;
        for (i, byte) in bytes[table_end..].iter_mut().enumerate() {
            *byte = u8::try_from(i % 250 + 1).unwrap_or(1);
        }
        let mut claimed = 0;
        for i in 0..count {
            let at = PAGE_HEADER + i * ELEMENT;
            let key_start = table_end + i;
            let key_len = page_size - key_start;
            claimed += key_len;
            let put = |bytes: &mut Vec<u8>, at: usize, n: usize| {
                bytes[at..at + 4].copy_from_slice(&u32::try_from(n).unwrap_or(0).to_le_bytes());
            };
            put(&mut bytes, at + 4, key_start - at);
            put(&mut bytes, at + 8, key_len);
        }
        let page = Page {
            id: 7,
            flags: LEAF_PAGE,
            count: u16::try_from(count).unwrap_or(0),
            bytes,
            offset: 7 * page_size as u64,
        };
        (page, claimed)
    }

    /// Elements whose keys overlap claimed many times the page (what a
    /// crafted snapshot used to make the index allocate gigabytes): the
    /// page is corrupt, named in the error. Before the check, every one of
    /// these pages was read, its elements claiming 50 to 240 times its size.
    #[test]
    fn elements_that_overlap_are_a_corrupt_page() {
        for (page_size, count) in [(4096, 100), (16384, 240), (65536, 240)] {
            let (page, claimed) = overlapping_leaf(page_size, count);
            assert!(claimed > 50 * page_size, "{claimed} bytes claimed");
            let Err(Corrupt(reason)) = page.leaf_elements() else {
                panic!("a page of overlapping elements was read");
            };
            assert_eq!(
                reason,
                "page 7: an element's key or value overlaps the element table or another element"
            );
        }
        // An inline bucket's page is named by where it is.
        let (mut page, _) = overlapping_leaf(4096, 3);
        page.id = 0;
        page.offset = 1234;
        let Err(Corrupt(reason)) = page.leaf_elements() else {
            panic!("read");
        };
        assert!(
            reason.starts_with("the inline bucket at byte 1234: "),
            "{reason}"
        );
    }

    /// A key that starts inside the element table is refused too, on a
    /// branch page as on a leaf.
    #[test]
    fn a_key_inside_the_element_table_is_a_corrupt_page() {
        let mut bytes = vec![0u8; 4096];
        // Two branch elements: the first's key starts at the second's
        // element, inside the table.
        for (i, pos) in [(0usize, 16u32), (1, 16)] {
            let at = PAGE_HEADER + i * ELEMENT;
            bytes[at..at + 4].copy_from_slice(&pos.to_le_bytes());
            bytes[at + 4..at + 8].copy_from_slice(&4u32.to_le_bytes());
        }
        let page = Page {
            id: 9,
            flags: BRANCH_PAGE,
            count: 2,
            bytes,
            offset: 9 * 4096,
        };
        assert!(page
            .branch_elements()
            .is_err_and(|e| e.0.contains("overlaps")));
    }
}
