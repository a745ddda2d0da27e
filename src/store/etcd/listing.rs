//! A walk of a prefix whose cost to etcd is proportional to its length.
//!
//! etcd answers a `Range` with a limit by visiting every key to the end of
//! the range to count them (`RangeResponse.count`), so pages of 100 over N
//! keys cost it about N²/200 key visits. A walk here sends, instead:
//!
//! 1. one keys-only `Range` of what is left of the prefix, at the latest
//!    revision R (about 60 bytes a key on the wire; of the answer only every
//!    page-th key is kept, as the first key of a page);
//! 2. for each page, one `Range` at revision R from the page's first key to
//!    the next page's first key (the last page ends at the prefix's end).
//!
//! Every key is visited twice in all, and every request names its end. All
//! pages read revision R, so a walk sees one consistent state while
//! apiservers write: a value changed since R is read as it was at R, and a
//! re-encryption's compare-and-swap on its `mod_revision` then finds it
//! changed and reads it again; a key created after R is written by an
//! apiserver with the current configuration, so the walk does not need it.
//! When etcd compacts R mid-walk (the apiserver compacts every 5 minutes),
//! the walk lists what is left from its next key at the new latest revision
//! and goes on; [`ListingReport::revision_moves`] counts it.

use std::collections::VecDeque;

use prost::bytes::Buf as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;

use super::generated::RangeRequest;
use super::{entry, first_key, EtcdStore};
use crate::protowire::{Reader, Value};
use crate::store::{prefix_end, Listing, ListingReport, Page, StoreError, StoreFuture};

/// The largest keys-only listing accepted: 256 MiB, about four million keys
/// of 60 bytes under one prefix. It is held while it is read, once.
const MAX_KEY_LISTING: usize = 256 * 1024 * 1024;

/// How long one attempt of the keys-only listing may take: its answer grows
/// with the prefix (a few seconds for millions of keys), so the per-call
/// request timeout, meant for pages, would cut it short.
const KEY_LISTING_ATTEMPT: std::time::Duration = std::time::Duration::from_secs(300);

/// The keys of the rest of the prefix at one revision, cut into pages.
struct Plan {
    revision: i64,
    /// The first key of every page after the current one.
    starts: VecDeque<Vec<u8>>,
}

/// [`EtcdStore`]'s [`Listing`].
pub(super) struct EtcdListing<'a> {
    store: &'a EtcdStore,
    /// The first key not yet returned.
    from: Vec<u8>,
    /// The end of the prefix's range.
    end: Vec<u8>,
    page_size: usize,
    plan: Option<Plan>,
    done: bool,
    report: ListingReport,
}

impl<'a> EtcdListing<'a> {
    pub(super) fn new(
        store: &'a EtcdStore,
        prefix: &[u8],
        after: Option<&[u8]>,
        page_size: usize,
    ) -> Self {
        let from = first_key(prefix, after);
        Self {
            store,
            end: prefix_end(prefix),
            from,
            page_size: page_size.max(1),
            plan: None,
            done: false,
            report: ListingReport::default(),
        }
    }

    async fn next(&mut self) -> Result<Option<Page>, StoreError> {
        loop {
            if self.done || self.from >= self.end {
                return Ok(None);
            }
            if self.plan.is_none() {
                let moved = self.report.first_revision.is_some();
                self.plan = self.plan_rest().await?;
                if moved {
                    self.report.revision_moves += 1;
                }
                if self.plan.is_none() {
                    self.done = true;
                    return Ok(None);
                }
            }
            match self.read_page().await {
                Ok(page) => return Ok(Some(page)),
                // Compacted past the plan's revision: list the rest anew.
                Err(status) if is_compacted(&status) => self.plan = None,
                Err(status) => return Err(self.store.error("Range", &status)),
            }
        }
    }

    /// Lists the keys from `from` to the end at the latest revision; `None`
    /// when there are none.
    async fn plan_rest(&mut self) -> Result<Option<Plan>, StoreError> {
        let request = RangeRequest {
            key: self.from.clone(),
            range_end: self.end.clone(),
            keys_only: true,
            ..RangeRequest::default()
        };
        let every = self.page_size;
        self.report.requests += 1;
        let listed = self
            .store
            .members
            .call_within(None, KEY_LISTING_ATTEMPT, |channel| {
                let request = request.clone();
                let mut grpc =
                    tonic::client::Grpc::new(channel).max_decoding_message_size(MAX_KEY_LISTING);
                async move {
                    grpc.ready()
                        .await
                        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                    grpc.unary(
                        tonic::Request::new(request),
                        PathAndQuery::from_static("/etcdserverpb.KV/Range"),
                        PageStarts { every },
                    )
                    .await
                    .map(tonic::Response::into_inner)
                }
            })
            .await
            .map_err(|status| self.store.error("Range", &status))?;
        self.report.keys_visited += listed.count;
        self.report.first_revision.get_or_insert(listed.revision);
        self.report.last_revision = Some(listed.revision);
        if listed.count == 0 {
            return Ok(None);
        }
        Ok(Some(Plan {
            revision: listed.revision,
            starts: listed.starts.into(),
        }))
    }

    /// Reads the values from `from` to the next page's first key at the
    /// plan's revision, and moves on.
    async fn read_page(&mut self) -> Result<Page, tonic::Status> {
        let Some(plan) = &self.plan else {
            return Ok(Page::default());
        };
        let bound = plan.starts.front().unwrap_or(&self.end).clone();
        let revision = plan.revision;
        let mut limit = 0i64;
        loop {
            let request = RangeRequest {
                key: self.from.clone(),
                range_end: bound.clone(),
                revision,
                limit,
                ..RangeRequest::default()
            };
            self.report.requests += 1;
            let result = self
                .store
                .call_status(|mut kv| {
                    let request = request.clone();
                    async move { kv.range(request).await }
                })
                .await;
            let response = match result {
                Ok(response) => response,
                // Too large for one answer: the same range, in halves.
                Err(status) if is_too_large(&status) && limit != 1 => {
                    limit = if limit == 0 {
                        i64::try_from(self.page_size / 2).unwrap_or(i64::MAX).max(1)
                    } else {
                        (limit / 2).max(1)
                    };
                    continue;
                }
                Err(status) => return Err(status),
            };
            self.report.keys_visited += u64::try_from(response.count).unwrap_or(0);
            let entries: Vec<_> = response.kvs.into_iter().map(entry).collect();
            match entries.last() {
                Some(last) if response.more => {
                    self.from.clone_from(&last.key);
                    self.from.push(0);
                }
                _ => {
                    self.from = bound;
                    if let Some(plan) = &mut self.plan {
                        plan.starts.pop_front();
                    }
                }
            }
            return Ok(Page {
                more: self.from < self.end,
                entries,
            });
        }
    }
}

impl Listing for EtcdListing<'_> {
    fn next_page(&mut self) -> StoreFuture<'_, Option<Page>> {
        Box::pin(self.next())
    }

    fn report(&self) -> ListingReport {
        self.report.clone()
    }
}

fn is_compacted(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::OutOfRange && status.message().contains("compacted")
}

fn is_too_large(status: &tonic::Status) -> bool {
    status.message().contains("message length too large")
}

/// What is kept of a keys-only listing: the revision it read, how many keys
/// it holds, and every `every`-th key.
struct Listed {
    revision: i64,
    count: u64,
    starts: Vec<Vec<u8>>,
}

/// The codec of a keys-only `Range`: the request as prost writes it, the
/// answer read in place, keeping only the keys that start pages (a whole
/// decoded answer takes about three times its size).
struct PageStarts {
    every: usize,
}

struct RequestEncoder;

struct PageStartsDecoder {
    every: usize,
}

impl Codec for PageStarts {
    type Encode = RangeRequest;
    type Decode = Listed;
    type Encoder = RequestEncoder;
    type Decoder = PageStartsDecoder;

    fn encoder(&mut self) -> RequestEncoder {
        RequestEncoder
    }

    fn decoder(&mut self) -> PageStartsDecoder {
        PageStartsDecoder { every: self.every }
    }
}

impl Encoder for RequestEncoder {
    type Item = RangeRequest;
    type Error = tonic::Status;

    fn encode(&mut self, item: RangeRequest, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        prost::Message::encode(&item, dst)
            .map_err(|e| tonic::Status::internal(format!("encoding a Range request: {e}")))
    }
}

impl Decoder for PageStartsDecoder {
    type Item = Listed;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Listed>, tonic::Status> {
        let len = src.remaining();
        // A DecodeBuf is one contiguous buffer; copy only if it is not.
        let listed = if src.chunk().len() == len {
            read_listing(src.chunk(), self.every)
        } else {
            read_listing(&src.copy_to_bytes(len), self.every)
        };
        if src.remaining() == len {
            src.advance(len);
        }
        listed.map(Some).map_err(|what| {
            tonic::Status::internal(format!("etcd's keys-only Range answer: {what}"))
        })
    }
}

/// Reads a `RangeResponse` (header = 1 with revision = 3, kvs = 2 with
/// key = 1, count = 4), keeping the keys at positions `every`, `2 * every`...
fn read_listing(bytes: &[u8], every: usize) -> Result<Listed, &'static str> {
    let mut listed = Listed {
        revision: 0,
        count: 0,
        starts: Vec::new(),
    };
    let mut seen = 0usize;
    let mut reader = Reader::new(bytes);
    while let Some((field, value)) = reader.field().map_err(|e| e.0)? {
        match (field, value) {
            (1, Value::Bytes(header)) => {
                let mut header = Reader::new(header);
                while let Some((field, value)) = header.field().map_err(|e| e.0)? {
                    if let (3, Value::Varint(revision)) = (field, value) {
                        listed.revision = i64::try_from(revision).map_err(|_| "bad revision")?;
                    }
                }
            }
            (2, Value::Bytes(kv)) => {
                if seen > 0 && seen.is_multiple_of(every) {
                    listed.starts.push(key_of(kv)?.to_vec());
                }
                seen += 1;
            }
            (4, Value::Varint(count)) => listed.count = count,
            _ => {}
        }
    }
    if u64::try_from(seen).ok() != Some(listed.count) {
        return Err("the count does not match the keys listed");
    }
    Ok(listed)
}

fn key_of(kv: &[u8]) -> Result<&[u8], &'static str> {
    let mut reader = Reader::new(kv);
    while let Some((field, value)) = reader.field().map_err(|e| e.0)? {
        if let (1, Value::Bytes(key)) = (field, value) {
            return Ok(key);
        }
    }
    Err("a key-value without a key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protowire::{put_bytes_field, put_varint};

    fn response(keys: &[&[u8]], revision: u64) -> Vec<u8> {
        let mut header = Vec::new();
        put_varint(&mut header, 3 << 3);
        put_varint(&mut header, revision);
        let mut out = Vec::new();
        put_bytes_field(&mut out, 1, &header);
        for key in keys {
            let mut kv = Vec::new();
            put_bytes_field(&mut kv, 1, key);
            put_varint(&mut kv, 3 << 3);
            put_varint(&mut kv, 7);
            put_bytes_field(&mut out, 2, &kv);
        }
        put_varint(&mut out, 4 << 3);
        put_varint(&mut out, keys.len() as u64);
        out
    }

    #[test]
    fn a_listing_keeps_the_first_key_of_every_page_but_the_first() {
        let keys: Vec<&[u8]> = vec![b"/a", b"/b", b"/c", b"/d", b"/e"];
        let listed = read_listing(&response(&keys, 42), 2).expect("read");
        assert_eq!(listed.revision, 42);
        assert_eq!(listed.count, 5);
        assert_eq!(listed.starts, vec![b"/c".to_vec(), b"/e".to_vec()]);
        let listed = read_listing(&response(&keys, 42), 5).expect("read");
        assert!(listed.starts.is_empty());
    }

    #[test]
    fn a_listing_whose_count_disagrees_is_refused() {
        let mut bytes = response(&[b"/a", b"/b"], 1);
        bytes.truncate(bytes.len() - 1);
        put_varint(&mut bytes, 3);
        assert!(read_listing(&bytes, 1).is_err());
        assert!(read_listing(&[0xff], 1).is_err());
    }
}
