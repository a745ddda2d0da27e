//! Where encrypted values live: a small key-value store trait, with etcd v3
//! and an offline dump as implementations.
//!
//! [`Store`] is what a scan and a re-encryption need and nothing more: list
//! a key prefix in pages, get one key, and a compare-and-swap put that
//! writes only if the key still has the revision that was read. A walk of a
//! whole prefix goes through [`Store::listing`], which a store can answer
//! better than page by page (etcd does). Two
//! implementations:
//!
//! - `EtcdStore` (feature `etcd`): an etcd v3 server (or cluster) over gRPC, plain or with
//!   TLS (a CA, and a client certificate and key for mTLS, as real clusters
//!   use). The compare-and-swap is an etcd transaction that compares the
//!   key's `mod_revision`, so a concurrent write by a kube-apiserver is never
//!   overwritten. A walk costs etcd work proportional to the number of keys.
//! - [`DumpStore`]: the JSON that `etcdctl get --prefix -w json` prints
//!   (keys and values in base64), held in memory, so that a dump can be
//!   scanned, decrypted or re-encrypted offline and written to a new file.
//! - `SnapshotStore` (feature `snapshot`, in the `snapshot` module beside the
//!   snapshot reader): an etcd snapshot file, read offline and re-keyed
//!   into a new file.
//!
//! Implement [`Store`] for anything else that holds apiserver values.
//!
//! # Errors
//!
//! A [`StoreError`] names the store and the operation, never a value.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

mod dump;
#[cfg(feature = "etcd")]
mod etcd;
mod layout;
mod listing;

pub use self::dump::{DumpFile, DumpStore};
#[cfg(feature = "etcd")]
pub use self::etcd::{EtcdOptions, EtcdRetries, EtcdStore, EtcdTls};
pub use self::layout::{KeyLayout, KeyResource, ObjectKey, DEFAULT_ETCD_PREFIX, SECRETS_PREFIX};
pub use self::listing::{Listing, ListingReport};

/// A key (or any string) from a store as it may be printed: lossily
/// decoded, with control characters and backslashes escaped (`\u{1b}`,
/// `\\`), so that a key holding an escape sequence cannot drive the
/// terminal it is shown on; and with the invisible characters that reorder
/// or hide text (bidirectional overrides and isolates, zero-width
/// characters) escaped too, so that a key cannot show as another.
///
/// ```
/// use k8s_envelope::store::printable;
///
/// assert_eq!(printable(b"/registry/secrets/ns/a"), "/registry/secrets/ns/a");
/// assert_eq!(printable(b"/registry/\x1b[2Jx"), "/registry/\\u{1b}[2Jx");
/// assert_eq!(printable("/registry/a\u{202e}b".as_bytes()), "/registry/a\\u{202e}b");
/// ```
pub fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || c == '\\' {
            out.extend(c.escape_debug());
        } else if reorders_or_hides(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The format characters that change how text around them shows: marks and
/// overrides of direction, isolates, zero-width characters, the byte-order
/// mark.
pub(crate) fn reorders_or_hides(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
    )
}

/// The future a [`Store`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// One key with its value and revision.
#[derive(Clone, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "what every `Store` implementation builds"
)]
pub struct Entry {
    /// The key.
    pub key: Vec<u8>,
    /// The stored value.
    pub value: Vec<u8>,
    /// The revision of the key's last modification (etcd's `mod_revision`);
    /// [`Store::compare_and_swap`] writes only if it is still this.
    pub revision: i64,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value_len", &self.value.len())
            .field("revision", &self.revision)
            .finish()
    }
}

/// One page of a listing.
#[derive(Clone, Debug, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "what every `Store` implementation builds"
)]
pub struct Page {
    /// The entries, in ascending key order.
    pub entries: Vec<Entry>,
    /// Whether more keys follow the last one.
    pub more: bool,
}

/// What a [`Store::compare_and_swap`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Swap {
    /// The value was written; the key's new revision.
    Written(i64),
    /// The key was modified since it was read; nothing was written. The
    /// current entry.
    Changed(Entry),
    /// The key was deleted since it was read; nothing was written.
    Deleted,
}

/// A store of apiserver values: what a scan and a re-encryption need.
///
/// Contract:
/// - [`list`](Store::list) returns keys that start with `prefix`, greater
///   than `after` (from the start when `None`), in ascending byte order, at
///   most `limit` of them;
/// - [`compare_and_swap`](Store::compare_and_swap) writes `value` only if
///   the key's revision is still `expected`, atomically, and keeps whatever
///   else the store attaches to the key (an etcd lease);
/// - no method ever touches a key it was not given (or, for `list`, outside
///   the prefix).
pub trait Store: Send + Sync {
    /// Lists up to `limit` entries under `prefix`, after the key `after`.
    fn list<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
        limit: usize,
    ) -> StoreFuture<'a, Page>;

    /// Reads one key.
    fn get<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Entry>>;

    /// Writes `value` to `key` if the key's revision is still `expected`.
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a [u8],
        expected: i64,
        value: &'a [u8],
    ) -> StoreFuture<'a, Swap>;

    /// Every entry under `prefix` after the key `after` (from the start
    /// when `None`), in ascending key order, in pages of about `page_size`.
    ///
    /// The default asks [`list`](Store::list) for one page after another.
    /// A store whose limited listing costs more than the page (etcd counts
    /// every key to the end of the range it is given) answers with a
    /// listing of its own.
    fn listing<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
        page_size: usize,
    ) -> Box<dyn Listing + 'a> {
        Box::new(listing::ListPages::new(self, prefix, after, page_size))
    }

    /// Every entry up to and including `through` is done with: the walk
    /// that listed it will not write it again. Called by a walk as it goes
    /// (a store that writes in key order, such as [`DumpFile`], writes out
    /// what is settled). The default does nothing.
    fn settled(&self, through: &[u8]) {
        let _ = through;
    }

    /// The number of keys under `prefix`, if the store can tell cheaply
    /// (for a progress bar). The default says nothing.
    fn count<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Option<u64>> {
        let _ = prefix;
        Box::pin(std::future::ready(Ok(None)))
    }

    /// A short description for messages: `etcd http://127.0.0.1:2379`,
    /// `dump backup.json`.
    fn describe(&self) -> String;
}

/// The end of the key range of `prefix` (etcd's `range_end`): the prefix
/// with its last byte below 0xff incremented and everything after it dropped;
/// `[0]` (every key) when there is no such byte.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A store operation failed.
///
/// Messages name the store, the operation and the cause; never a value.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A dump is not the JSON `etcdctl get -w json` prints.
    #[error("{what}: not an etcdctl JSON dump: {reason}")]
    Dump {
        /// The dump (its file name, or `input`).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A store's file is damaged or is not what it claims to be (an etcd
    /// snapshot whose pages do not hold together, say).
    #[error("{}: {reason}", path.display())]
    Damaged {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, in words that hold nothing from the file.
        reason: String,
    },
    /// The store is open for reading only.
    #[error("{what}: opened for reading only")]
    ReadOnly {
        /// The store.
        what: String,
    },
    /// An etcd endpoint or TLS setting is unusable.
    #[error("etcd {endpoint}: {reason}")]
    Config {
        /// The endpoint (or `tls`).
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
    /// An etcd call failed.
    #[error("etcd {endpoints}: {operation}: {message}")]
    Etcd {
        /// The endpoints.
        endpoints: String,
        /// The operation (`Range`, `Txn`, ...).
        operation: &'static str,
        /// The gRPC status or transport error.
        message: String,
    },
}
