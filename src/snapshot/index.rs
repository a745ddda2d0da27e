//! Every live key of a snapshot and where its latest revision is: the
//! keys' bytes in one buffer, sorted, and a fixed-size entry a key (about
//! 48 bytes and the key itself, against some 160 in a map of owned keys).

use std::ops::Range;

use super::mvcc::Revision;

/// Where the latest revision of a live key is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latest {
    /// The key's bytes in [`Index::names`].
    name_at: u64,
    name_len: u32,
    /// The `KeyValue` message's length.
    pub(crate) len: u32,
    pub(crate) revision: Revision,
    /// The `KeyValue` message's place in the file.
    pub(crate) offset: u64,
}

impl Latest {
    fn name(&self) -> Range<usize> {
        let start = self.name_at as usize;
        start..start + self.name_len as usize
    }
}

/// The index, sorted by key.
#[derive(Default)]
pub(crate) struct Index {
    names: Vec<u8>,
    entries: Vec<Latest>,
}

/// Every revision met in a walk of the `key` bucket, in the order met
/// (revision order), to be made into an [`Index`] in place.
pub(crate) struct IndexBuilder {
    names: Vec<u8>,
    entries: Vec<Latest>,
}

impl IndexBuilder {
    /// A builder for `revisions` entries whose keys take `name_bytes` in
    /// all (counted by a first walk, so that nothing is allocated twice).
    pub(crate) fn with_capacity(revisions: usize, name_bytes: usize) -> Self {
        Self {
            names: Vec::with_capacity(name_bytes),
            entries: Vec::with_capacity(revisions),
        }
    }

    /// Records a revision of `key` (a deletion when its revision says so).
    pub(crate) fn push(
        &mut self,
        key: &[u8],
        revision: Revision,
        offset: u64,
        len: u32,
    ) -> Result<(), &'static str> {
        let name_len = u32::try_from(key.len()).map_err(|_| "a key longer than 4 GiB")?;
        let name_at = self.names.len() as u64;
        self.names.extend_from_slice(key);
        self.entries.push(Latest {
            name_at,
            name_len,
            len,
            revision,
            offset,
        });
        Ok(())
    }

    /// Each key as of its highest revision; keys whose highest revision is
    /// a deletion left out. Sorted and thinned in place: the memory is the
    /// builder's (the bytes of keys' older revisions stay in the buffer).
    pub(crate) fn build(self) -> Index {
        let Self { names, mut entries } = self;
        // Unstable is enough (the order is total) and allocates nothing.
        entries.sort_unstable_by(|a, b| {
            names[a.name()]
                .cmp(&names[b.name()])
                .then(a.revision.cmp(&b.revision))
        });
        let mut kept = 0;
        let mut i = 0;
        while i < entries.len() {
            let mut last = i;
            while last + 1 < entries.len()
                && names[entries[last + 1].name()] == names[entries[i].name()]
            {
                last += 1;
            }
            if !entries[last].revision.tombstone {
                entries[kept] = entries[last];
                kept += 1;
            }
            i = last + 1;
        }
        entries.truncate(kept);
        entries.shrink_to_fit();
        Index { names, entries }
    }
}

impl Index {
    /// The number of live keys.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The key of entry `at`.
    pub(crate) fn name(&self, at: usize) -> &[u8] {
        &self.names[self.entries[at].name()]
    }

    /// The entry of entry `at`.
    pub(crate) fn latest(&self, at: usize) -> &Latest {
        &self.entries[at]
    }

    /// The position of `key`, if it is live.
    pub(crate) fn find(&self, key: &[u8]) -> Option<usize> {
        self.entries
            .binary_search_by(|e| self.names[e.name()].cmp(key))
            .ok()
    }

    /// The positions of the keys that start with `prefix`, after `after`.
    pub(crate) fn range(&self, prefix: &[u8], after: Option<&[u8]>) -> Range<usize> {
        let start = match after {
            Some(after) if after >= prefix => self
                .entries
                .partition_point(|e| &self.names[e.name()] <= after),
            _ => self
                .entries
                .partition_point(|e| &self.names[e.name()] < prefix),
        };
        let end = start
            + self.entries[start..].partition_point(|e| self.names[e.name()].starts_with(prefix));
        start..end
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test's panic is its failure report")]
mod tests {
    use super::*;

    fn rev(main: i64, tombstone: bool) -> Revision {
        Revision {
            main,
            sub: 0,
            tombstone,
        }
    }

    #[test]
    fn the_latest_revision_wins_and_deleted_keys_are_left_out() {
        let mut builder = IndexBuilder::with_capacity(0, 0);
        for (key, main, dead) in [
            ("b", 2, false),
            ("a", 3, false),
            ("b", 4, false),
            ("c", 5, false),
            ("c", 6, true),
            ("a", 7, true),
            ("a", 8, false),
        ] {
            builder
                .push(key.as_bytes(), rev(main, dead), main as u64 * 10, 1)
                .unwrap();
        }
        let index = builder.build();
        assert_eq!(index.len(), 2);
        assert_eq!(index.name(0), b"a");
        assert_eq!(index.latest(0).revision.main, 8);
        assert_eq!(index.latest(1).offset, 40);
        assert_eq!(index.find(b"b"), Some(1));
        assert_eq!(index.find(b"c"), None);
        assert_eq!(index.range(b"", None), 0..2);
        assert_eq!(index.range(b"b", None), 1..2);
        assert_eq!(index.range(b"", Some(b"a")), 1..2);
        assert_eq!(index.range(b"z", None), 2..2);
    }
}
