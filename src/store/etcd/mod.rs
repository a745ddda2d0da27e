//! An etcd v3 store over gRPC, plain or TLS (mTLS).

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use tonic::transport::Channel;

mod failover;
mod listing;
mod options;

pub use self::failover::EtcdRetries;
pub use self::options::{EtcdOptions, EtcdTls};

use self::failover::Members;
use self::options::endpoint;
use super::{prefix_end, Entry, Listing, Page, Store, StoreError, StoreFuture, Swap};

/// etcd's KV API (the part this crate uses), generated from
/// `proto/etcd/kv.proto` by `cargo codegen`.
#[allow(missing_docs, dead_code, clippy::all, clippy::pedantic)]
#[rustfmt::skip]
#[path = "generated/etcdserverpb.rs"]
mod generated;

use self::generated::compare::{CompareResult, CompareTarget, TargetUnion};
use self::generated::kv_client::KvClient;
use self::generated::request_op::Request;
use self::generated::response_op::Response;
use self::generated::{Compare, KeyValue, PutRequest, RangeRequest, RequestOp, TxnRequest};

/// The largest answer accepted from etcd: 64 MiB. A page of values larger
/// than that is read again in smaller pages.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// The largest request sent: etcd accepts 1.5 MiB by default
/// (`--max-request-bytes`); this leaves room for clusters that raised it.
const MAX_REQUEST: usize = 16 * 1024 * 1024;

/// How long [`EtcdStore::connect`] tries before it says etcd does not
/// answer (a mistyped URL should not wait out a whole outage limit).
const CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// How many times a compare-and-swap whose answer was lost is resolved and
/// tried again before it fails.
const CAS_ROUNDS: u32 = 16;

/// An etcd v3 server or cluster, through its gRPC KV API.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::path::Path;
/// use k8s_envelope::store::{EtcdOptions, EtcdStore, EtcdTls, Store};
///
/// let tls = EtcdTls::from_files(
///     Path::new("/etc/kubernetes/pki/etcd/ca.crt"),
///     Some(Path::new("/etc/kubernetes/pki/apiserver-etcd-client.crt")),
///     Some(Path::new("/etc/kubernetes/pki/apiserver-etcd-client.key")),
/// )?;
/// let etcd = EtcdStore::connect(EtcdOptions::new(["https://127.0.0.1:2379"]).with_tls(tls)).await?;
/// let page = etcd.list(b"/registry/secrets/", None, 100).await?;
/// # Ok(()) }
/// ```
///
/// - [`list`](Store::list) is a `Range` over the prefix with a limit, in
///   key order; a page whose answer would exceed 64 MiB is read again in
///   smaller pages. A walk goes through [`listing`](Store::listing)
///   instead (below).
/// - The compare-and-swap is a `Txn`: if the key's `mod_revision` is still
///   the one read, `Put` the new value with `ignore_lease` (a key with a
///   lease, such as an event, keeps it); otherwise `Range` the key, and
///   return what is there now. etcd applies it atomically, so a write by a
///   kube-apiserver in between is never overwritten.
/// - Reads are linearizable (etcd's default).
/// - A call that fails for lack of a connection (`Unavailable`) is tried up
///   to 4 times. That is safe for the compare-and-swap too: if an earlier
///   attempt was applied, the retry finds the key changed (by itself) and
///   reports it, and a re-encryption then finds the value current.
///
/// Not supported: etcd's user/password authentication (use client
/// certificates, as kube-apiserver does), and `unix://` endpoints.
///
/// # A cluster
///
/// Several endpoints are the members of one cluster, one connection each.
/// Calls go to one member until it stops answering (a refused or broken
/// connection, `Unavailable` such as "no leader", or no answer within
/// [`EtcdOptions::request_timeout`]); the call then moves to the next
/// member and is tried again, with a backoff from 50 ms to 2 s, until a
/// member answers or none has for [`EtcdOptions::outage_limit`] (60 s). A
/// read is simply tried again. A compare-and-swap whose answer was lost may
/// or may not have been applied, so the key is read first: still at the
/// expected `mod_revision`, the transaction is sent again; holding the value
/// this call wrote (a fresh nonce makes it unique), it was applied;
/// anything else is a change by someone else. [`EtcdStore::retries`]
/// counts the retries and the moves.
///
/// Why not the `etcd-client` crate, which balances endpoints itself: it
/// needs `protoc` at build time and brings its own copy of the gRPC stack
/// for the whole of etcd's API, where this store uses three calls of the
/// KV service, generated once into the repository (`cargo
/// codegen`); and it leaves retries to the caller, so the failover and the
/// resolution of a lost compare-and-swap would have to be written here
/// anyway.
///
/// # Walking a prefix
///
/// etcd answers a `Range` with a limit by visiting every key to the end of
/// its range, to count them; pages of 100 over N keys would cost it about
/// N²/200 key visits (80,000 keys: 15.8 s for a scan, against 0.58 s for
/// one unpaged read). A [`listing`](Store::listing) sends instead:
///
/// 1. one keys-only `Range` of the prefix (or of what is left of it after
///    the resume key), at the latest revision R: about 60 bytes a key on
///    the wire (up to 256 MiB, some four million keys), of which only the
///    first key of every page is kept;
/// 2. for each page, one `Range` at revision R from the page's first key to
///    the next page's first key.
///
/// So a walk of N keys in pages of P costs 1 + N/P requests, the keys'
/// names twice and the values once on the wire, and two key visits per
/// key in etcd ([`ListingReport::keys_visited`](super::ListingReport)
/// reports etcd's own count). Reading revision R throughout is safe while
/// apiservers write: a value changed since R is read as it was, and a
/// re-encryption's compare-and-swap on its `mod_revision` then finds it
/// changed and reads it again; a key created after R was written with the
/// current configuration and needs no rewrite. When etcd compacts R during
/// the walk (kube-apiserver compacts every 5 minutes), the walk lists what
/// is left at the new latest revision and goes on;
/// [`ListingReport::revision_moves`](super::ListingReport) counts it, and
/// `scan` and `reencrypt` print it.
pub struct EtcdStore {
    members: Members,
    endpoints: String,
}

impl EtcdStore {
    /// Connects (call it inside a Tokio runtime) and checks that etcd
    /// answers, with a count of an empty range.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for an endpoint that is not an `http://` or
    /// `https://` URL, an `https://` endpoint without TLS settings or TLS
    /// settings with an `http://` endpoint; [`StoreError::Etcd`] when etcd
    /// does not answer.
    pub async fn connect(options: EtcdOptions) -> Result<Self, StoreError> {
        let store = Self::connect_lazy(options)?;
        store
            .members
            .call(Some(CONNECT_LIMIT), |channel| {
                let mut kv = store.client(channel);
                async move {
                    kv.range(RangeRequest {
                        key: vec![0],
                        count_only: true,
                        ..RangeRequest::default()
                    })
                    .await
                }
            })
            .await
            .map_err(|status| store.error("Range", &status))?;
        Ok(store)
    }

    /// Sets up the connection without waiting for it; the first call dials.
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`], as [`connect`](Self::connect).
    pub fn connect_lazy(options: EtcdOptions) -> Result<Self, StoreError> {
        if options.endpoints.is_empty() {
            return Err(StoreError::Config {
                endpoint: String::new(),
                reason: "no endpoint given".to_owned(),
            });
        }
        if let Some(tls) = &options.tls {
            tls.check()?;
        }
        let mut channels = Vec::with_capacity(options.endpoints.len());
        for url in &options.endpoints {
            channels.push(endpoint(url, &options)?.connect_lazy());
        }
        Ok(Self {
            members: Members::new(channels, options.outage_limit, options.request_timeout),
            endpoints: options.endpoints.join(","),
        })
    }

    /// Writes a key unconditionally (a plain `Put`, no lease); returns the
    /// new revision. For preparing test data and tools; a re-encryption
    /// only ever writes through [`compare_and_swap`](Store::compare_and_swap).
    ///
    /// # Errors
    ///
    /// [`StoreError::Etcd`] when the call fails.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<i64, StoreError> {
        let response = self
            .call("Put", |mut kv| {
                let request = PutRequest {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    ..PutRequest::default()
                };
                async move { kv.put(request).await }
            })
            .await?;
        Ok(response.header.map_or(0, |h| h.revision))
    }

    /// What failing over between members has cost so far.
    pub fn retries(&self) -> EtcdRetries {
        self.members.retries()
    }

    fn client(&self, channel: Channel) -> KvClient<Channel> {
        KvClient::new(channel)
            .max_decoding_message_size(MAX_RESPONSE)
            .max_encoding_message_size(MAX_REQUEST)
    }

    /// Makes one call, tried on every member in turn while none answers.
    async fn call<T, F, Fut>(&self, operation: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnMut(KvClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call_status(f)
            .await
            .map_err(|status| self.error(operation, &status))
    }

    /// [`call`](Self::call), with the gRPC status of a failure.
    async fn call_status<T, F, Fut>(&self, mut f: F) -> Result<T, tonic::Status>
    where
        F: FnMut(KvClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.members
            .call(None, |channel| {
                let call = f(self.client(channel));
                async move { call.await.map(tonic::Response::into_inner) }
            })
            .await
    }

    /// The key as it is now.
    async fn read(&self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        let response = self
            .call("Range", |mut kv| {
                let request = RangeRequest {
                    key: key.to_vec(),
                    ..RangeRequest::default()
                };
                async move { kv.range(request).await }
            })
            .await?;
        Ok(response.kvs.into_iter().next().map(entry))
    }

    fn error(&self, operation: &'static str, status: &tonic::Status) -> StoreError {
        StoreError::Etcd {
            endpoints: self.endpoints.clone(),
            operation,
            message: describe(status),
        }
    }

    async fn range_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let key = first_key(prefix, after);
        let range_end = prefix_end(prefix);
        let mut limit = limit.max(1);
        loop {
            let request = RangeRequest {
                key: key.clone(),
                range_end: range_end.clone(),
                limit: i64::try_from(limit).unwrap_or(i64::MAX),
                ..RangeRequest::default()
            };
            let result = self
                .call("Range", |mut kv| {
                    let request = request.clone();
                    async move { kv.range(request).await }
                })
                .await;
            match result {
                Ok(response) => {
                    let entries: Vec<Entry> = response
                        .kvs
                        .into_iter()
                        .filter(|kv| kv.key.starts_with(prefix))
                        .map(entry)
                        .collect();
                    return Ok(Page {
                        entries,
                        more: response.more,
                    });
                }
                // The page was too large for one answer: smaller pages.
                Err(StoreError::Etcd { ref message, .. })
                    if limit > 1 && message.contains("message length too large") =>
                {
                    limit /= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The first key of a range of `prefix` that starts after `after`: the
/// least key greater than it (`after` and a zero byte), or the prefix.
fn first_key(prefix: &[u8], after: Option<&[u8]>) -> Vec<u8> {
    match after {
        Some(after) if after >= prefix => {
            let mut key = after.to_vec();
            key.push(0);
            key
        }
        _ => prefix.to_vec(),
    }
}

fn entry(kv: KeyValue) -> Entry {
    Entry {
        key: kv.key,
        value: kv.value,
        revision: kv.mod_revision,
    }
}

/// The status message and the chain of causes (a transport error says what
/// failed only in its causes).
fn describe(status: &tonic::Status) -> String {
    let mut out = format!("{:?}", status.code());
    if !status.message().is_empty() {
        out.push_str(": ");
        out.push_str(&clip(status.message()));
    }
    let mut source = status.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&clip(&text));
        }
        source = cause.source();
    }
    out
}

/// `s` (etcd's or the transport's words) with control and direction
/// characters escaped, cut to 512 bytes.
fn clip(s: &str) -> String {
    const MAX: usize = 512;
    let s = super::printable(s.as_bytes());
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Store for EtcdStore {
    fn list<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
        limit: usize,
    ) -> StoreFuture<'a, Page> {
        Box::pin(self.range_page(prefix, after, limit))
    }

    fn listing<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
        page_size: usize,
    ) -> Box<dyn Listing + 'a> {
        Box::new(listing::EtcdListing::new(self, prefix, after, page_size))
    }

    fn get<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Entry>> {
        Box::pin(self.read(key))
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a [u8],
        expected: i64,
        value: &'a [u8],
    ) -> StoreFuture<'a, Swap> {
        Box::pin(async move {
            let request = TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Mod as i32,
                    key: key.to_vec(),
                    target_union: Some(TargetUnion::ModRevision(expected)),
                }],
                success: vec![RequestOp {
                    request: Some(Request::RequestPut(PutRequest {
                        key: key.to_vec(),
                        value: value.to_vec(),
                        ignore_lease: true,
                        ..PutRequest::default()
                    })),
                }],
                failure: vec![RequestOp {
                    request: Some(Request::RequestRange(RangeRequest {
                        key: key.to_vec(),
                        ..RangeRequest::default()
                    })),
                }],
            };
            let mut txn = |channel| {
                let mut kv = self.client(channel);
                let request = request.clone();
                async move { kv.txn(request).await.map(tonic::Response::into_inner) }
            };
            let mut rounds = 0;
            let response = loop {
                let status = match self.members.once(&mut txn).await {
                    Ok(response) => break response,
                    Err(status) if failover::is_retryable(&status) => status,
                    Err(status) => return Err(self.error("Txn", &status)),
                };
                // The answer is lost: the transaction may or may not have
                // been applied. The key tells (its mod_revision moves only
                // with a write, and a written value holds a fresh nonce).
                rounds += 1;
                if rounds > CAS_ROUNDS {
                    return Err(self.error("Txn", &status));
                }
                self.members.count_retry();
                match self.read(key).await? {
                    None => return Ok(Swap::Deleted),
                    Some(now) if now.revision == expected => {} // not applied: again
                    Some(now) if now.value == value => return Ok(Swap::Written(now.revision)),
                    Some(now) => return Ok(Swap::Changed(now)),
                }
            };
            if response.succeeded {
                return Ok(Swap::Written(response.header.map_or(0, |h| h.revision)));
            }
            let current = response
                .responses
                .into_iter()
                .find_map(|r| match r.response {
                    Some(Response::ResponseRange(range)) => Some(range),
                    _ => None,
                })
                .ok_or_else(|| StoreError::Etcd {
                    endpoints: self.endpoints.clone(),
                    operation: "Txn",
                    message: "a failed transaction answered without the key's current value"
                        .to_owned(),
                })?;
            Ok(match current.kvs.into_iter().next() {
                // An attempt whose answer was lost, applied after it was
                // read back: the value is ours.
                Some(kv) if rounds > 0 && kv.value == value => Swap::Written(kv.mod_revision),
                Some(kv) => Swap::Changed(entry(kv)),
                None => Swap::Deleted,
            })
        })
    }

    fn count<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            let response = self
                .call("Range", |mut kv| {
                    let request = RangeRequest {
                        key: prefix.to_vec(),
                        range_end: prefix_end(prefix),
                        count_only: true,
                        ..RangeRequest::default()
                    };
                    async move { kv.range(request).await }
                })
                .await?;
            Ok(u64::try_from(response.count).ok())
        })
    }

    fn describe(&self) -> String {
        format!("etcd {}", self.endpoints)
    }
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn words_from_etcd_are_escaped_and_cut() {
        assert_eq!(
            clip("etcdserver: leader changed"),
            "etcdserver: leader changed"
        );
        assert_eq!(
            clip("a\u{1b}[2Jb\nc\u{202e}d"),
            "a\\u{1b}[2Jb\\nc\\u{202e}d"
        );
        let long = clip(&"é".repeat(400));
        assert!(
            long.len() <= 512 + '…'.len_utf8() && long.ends_with('…'),
            "{}",
            long.len()
        );
    }
}
