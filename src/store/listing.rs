//! A walk of a prefix, page by page: what [`Store::listing`] returns.

use super::{Page, Store, StoreFuture};

/// Pages of a walk of one prefix, in ascending key order; from
/// [`Store::listing`].
pub trait Listing: Send {
    /// The next page, or `None` after the last one. A page may be empty
    /// only when it is the last.
    fn next_page(&mut self) -> StoreFuture<'_, Option<Page>>;

    /// What the walk has cost and seen so far.
    fn report(&self) -> ListingReport;
}

/// What a [`Listing`] cost the store and which revisions it read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListingReport {
    /// Requests sent to the store for the listing.
    pub requests: u64,
    /// Keys the store visited to answer them, where it says (etcd's
    /// `count` of each range: a limited range counts to its end). For a
    /// walk whose cost is proportional to its length this stays within a
    /// small multiple of the number of keys.
    pub keys_visited: u64,
    /// The store revision the walk read first, where the store has
    /// revisions.
    pub first_revision: Option<i64>,
    /// The store revision the walk read last; newer than the first when
    /// the walk moved on after a compaction.
    pub last_revision: Option<i64>,
    /// How many times the walk moved to a newer revision because the store
    /// compacted the one it was reading.
    pub revision_moves: u32,
}

/// The default listing: one [`Store::list`] after another, each after the
/// last key of the page before.
pub(super) struct ListPages<'a, S: Store + ?Sized> {
    store: &'a S,
    prefix: &'a [u8],
    after: Option<Vec<u8>>,
    page_size: usize,
    done: bool,
    requests: u64,
}

impl<'a, S: Store + ?Sized> ListPages<'a, S> {
    pub(super) fn new(
        store: &'a S,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
        page_size: usize,
    ) -> Self {
        Self {
            store,
            prefix,
            after: after.map(<[u8]>::to_vec),
            page_size: page_size.max(1),
            done: false,
            requests: 0,
        }
    }
}

impl<S: Store + ?Sized> Listing for ListPages<'_, S> {
    fn next_page(&mut self) -> StoreFuture<'_, Option<Page>> {
        Box::pin(async move {
            if self.done {
                return Ok(None);
            }
            self.requests += 1;
            let page = self
                .store
                .list(self.prefix, self.after.as_deref(), self.page_size)
                .await?;
            match page.entries.last() {
                Some(last) if page.more => self.after = Some(last.key.clone()),
                _ => self.done = true,
            }
            Ok(Some(page))
        })
    }

    fn report(&self) -> ListingReport {
        ListingReport {
            requests: self.requests,
            ..ListingReport::default()
        }
    }
}
