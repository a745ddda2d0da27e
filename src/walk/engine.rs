//! The engine under [`scan`](super::scan) and [`reencrypt`](super::reencrypt):
//! list a prefix in pages, process every value on a bounded set of tasks,
//! and track the last key below which every value is done.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt as _};
use futures_util::FutureExt as _;

use super::origin::ValueOrigin;
use crate::config::{GroupResource, ResourceTransformers};
use crate::store::{Entry, ListingReport, Store, StoreError, Swap};
use crate::store::{KeyLayout, KeyResource};

/// What a walk found of one value, or did to it: the one answer of a scan
/// (per value and per row of its inventory) and of a re-encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Outcome {
    /// It reads with the current configuration and is not stale.
    Current,
    /// It is stale (a scan or a dry run: nothing was written).
    Stale,
    /// It was stale and was rewritten with the writing provider.
    Rewritten,
    /// No provider could read it; it was left as it was (the report's
    /// [`error`](ValueReport::error) says why).
    Unreadable,
    /// Its key is not a resource this crate can name (see
    /// [`KeyLayout`]); it was left as it was.
    Unmapped,
    /// It is one of the apiserver's own keys, never encrypted; left alone.
    Internal,
    /// It was deleted while it was being processed.
    Deleted,
    /// It changed on every attempt; it was left to its writers.
    KeptChanging,
    /// It decrypts, but what it holds is not a Kubernetes object (a walk
    /// that decodes what it reads: `verify`, with the `objects` feature).
    NotAnObject,
}

impl Outcome {
    /// `current`, `stale`, `rewritten`, `unreadable`, `unmapped`,
    /// `internal`, `deleted`, `kept-changing` or `not-an-object`: the words
    /// the CLI's reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Current => "current",
            Outcome::Stale => "stale",
            Outcome::Rewritten => "rewritten",
            Outcome::Unreadable => "unreadable",
            Outcome::Unmapped => "unmapped",
            Outcome::Internal => "internal",
            Outcome::Deleted => "deleted",
            Outcome::KeptChanging => "kept-changing",
            Outcome::NotAnObject => "not-an-object",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value, processed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ValueReport {
    /// The key.
    pub key: Vec<u8>,
    /// The resource the key holds, if known.
    pub resource: Option<GroupResource>,
    /// Which provider and key wrote the value (as last read).
    pub origin: ValueOrigin,
    /// What happened.
    pub outcome: Outcome,
    /// Why it is [`Unreadable`](Outcome::Unreadable): the providers' error
    /// (it holds no key material or plaintext), shared so that the report
    /// stays cheap to clone. `None` for every other outcome.
    pub error: Option<Arc<crate::Error>>,
    /// How many times the value changed under us and was read again.
    pub conflicts: u32,
}

/// Why a walk stopped before the end.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The store failed (listing, reading or writing).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writing provider could not encrypt (a KMS plugin down, no
    /// randomness); nothing was written for the value.
    #[error("{key}: the writing provider failed: {error}")]
    Encrypt {
        /// The key being rewritten.
        key: String,
        /// Why.
        error: crate::Error,
    },
    /// A freshly written value did not read back to the same plaintext (a
    /// provider bug); it was not written.
    #[error("{key}: the re-encrypted value does not read back as current; nothing was written")]
    Verify {
        /// The key.
        key: String,
    },
    /// Processing one value panicked (a bug); the walk stopped.
    #[error("a worker task failed: {0}")]
    Task(String),
}

/// Asks a running re-encryption to stop: no value is started after the
/// request, the ones in flight finish (and are reported), and the run
/// returns what it did. Clones share one request.
///
/// ```
/// use k8s_envelope::walk::{ReencryptOptions, Stop};
///
/// let stop = Stop::new();
/// let options = ReencryptOptions::new("/registry/secrets/").with_stop(stop.clone());
/// // ... run `reencrypt` with `options`; on a signal:
/// stop.request();
/// assert!(stop.requested());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A stop not yet requested.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests the stop.
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the stop was requested.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How far a walk is: the values it has done so far, readable from another
/// thread while it runs (to print a progress line). Clones share one count.
///
/// ```
/// use k8s_envelope::walk::{Progress, ScanOptions};
///
/// let progress = Progress::new();
/// let options = ScanOptions::new("/registry/").with_progress(progress.clone());
/// // ... run `scan` with `options`; meanwhile, on another thread:
/// assert_eq!(progress.values_done(), 0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    /// A count at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The values done so far.
    pub fn values_done(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add_one(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The longest wait between two values of a rate-limited walk.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// How to walk.
pub(crate) struct WalkConfig {
    pub(crate) prefix: Vec<u8>,
    pub(crate) layout: KeyLayout,
    pub(crate) page_size: usize,
    pub(crate) concurrency: usize,
    pub(crate) start_after: Option<Vec<u8>>,
    pub(crate) rate_limit: Option<f64>,
    pub(crate) write: bool,
    pub(crate) max_attempts: u32,
    pub(crate) stop: Option<Stop>,
    /// Whether a decrypted value holds what the store should hold (a
    /// Kubernetes object); a value that fails it is
    /// [`Outcome::NotAnObject`]. `None` checks nothing.
    pub(crate) plaintext_check: Option<fn(&[u8]) -> bool>,
    /// Counts the values done, if given.
    pub(crate) progress: Option<Progress>,
}

/// What a walk hands back as it goes.
pub(crate) trait WalkSink {
    /// One value is done; values come in key order.
    fn value(&mut self, report: ValueReport);
    /// Every value up to and including `key` is done.
    fn checkpoint(&mut self, key: &[u8]);
    /// The walk is over: what listing the prefix cost and saw.
    fn listing(&mut self, report: ListingReport);
}

struct Engine {
    store: Arc<dyn Store>,
    transformers: Arc<ResourceTransformers>,
    layout: KeyLayout,
    write: bool,
    max_attempts: u32,
    plaintext_check: Option<fn(&[u8]) -> bool>,
}

impl Engine {
    async fn process(&self, mut entry: Entry) -> Result<ValueReport, WalkError> {
        let resource = match self.layout.resource_of(&entry.key) {
            KeyResource::Resource(gr) => gr,
            other => {
                let outcome = if other == KeyResource::Internal {
                    Outcome::Internal
                } else {
                    Outcome::Unmapped
                };
                return Ok(ValueReport {
                    origin: ValueOrigin::of(&entry.value),
                    key: entry.key,
                    resource: None,
                    outcome,
                    error: None,
                    conflicts: 0,
                });
            }
        };
        let transformer = self.transformers.for_group_resource(&resource);
        let mut conflicts = 0;
        loop {
            let key = entry.key.as_slice();
            let origin = ValueOrigin::of(&entry.value);
            let report = |outcome, conflicts| ValueReport {
                key: key.to_vec(),
                resource: Some(resource.clone()),
                origin: origin.clone(),
                outcome,
                error: None,
                conflicts,
            };
            let read = match transformer.decrypt(&entry.value, key.into()).await {
                Err(e) => {
                    return Ok(ValueReport {
                        error: Some(Arc::new(e)),
                        ..report(Outcome::Unreadable, conflicts)
                    })
                }
                Ok(read)
                    if self
                        .plaintext_check
                        .is_some_and(|holds| !holds(&read.plaintext)) =>
                {
                    return Ok(report(Outcome::NotAnObject, conflicts))
                }
                Ok(read) if !read.stale => return Ok(report(Outcome::Current, conflicts)),
                Ok(read) => read,
            };
            if !self.write {
                return Ok(report(Outcome::Stale, conflicts));
            }
            let lossy = || crate::store::printable(key);
            let rewritten = transformer
                .encrypt(&read.plaintext, key.into())
                .await
                .map_err(|error| WalkError::Encrypt {
                    key: lossy(),
                    error,
                })?;
            // Never write what does not read back.
            match transformer.decrypt(&rewritten, key.into()).await {
                Ok(check) if !check.stale && check.plaintext == read.plaintext => {}
                _ => return Err(WalkError::Verify { key: lossy() }),
            }
            drop(read);
            match self
                .store
                .compare_and_swap(key, entry.revision, &rewritten)
                .await?
            {
                Swap::Written(_) => return Ok(report(Outcome::Rewritten, conflicts)),
                Swap::Deleted => return Ok(report(Outcome::Deleted, conflicts)),
                Swap::Changed(current) => {
                    conflicts += 1;
                    if conflicts >= self.max_attempts {
                        return Ok(report(Outcome::KeptChanging, conflicts));
                    }
                    entry = current;
                }
            }
        }
    }
}

/// How many values the completion window holds per value in flight, and
/// at least: values finished after a slow one wait there (a few hundred
/// bytes each) to be reported in key order.
const WINDOW_PER_TASK: usize = 16;
const MIN_WINDOW: usize = 64;

/// One item of the completion window: a dispatched key, and its report once
/// it is done.
struct Slot {
    seq: u64,
    key: Vec<u8>,
    done: Option<ValueReport>,
}

/// The values being processed, each with its place in the window.
type InFlight =
    FuturesUnordered<Pin<Box<dyn Future<Output = (u64, Result<ValueReport, WalkError>)> + Send>>>;

/// Lists `config.prefix` and processes every value, at most
/// `config.concurrency` at a time, reporting to `sink`. The values are
/// processed as futures of the walk itself, not spawned tasks, so any
/// executor drives it: the stores' own I/O (etcd's gRPC connection) runs
/// wherever the store put it.
pub(crate) async fn walk(
    store: Arc<dyn Store>,
    transformers: Arc<ResourceTransformers>,
    config: WalkConfig,
    sink: &mut dyn WalkSink,
) -> Result<Walked, WalkError> {
    let engine = Arc::new(Engine {
        store: store.clone(),
        transformers,
        layout: config.layout,
        write: config.write,
        max_attempts: config.max_attempts.max(1),
        plaintext_check: config.plaintext_check,
    });
    let concurrency = config.concurrency.max(1);
    // Values done behind a slow one wait in the window to be reported in
    // key order; past this many, no more start until it is done.
    let window = concurrency.saturating_mul(WINDOW_PER_TASK).max(MIN_WINDOW);
    let interval = config
        .rate_limit
        .filter(|r| r.is_finite() && *r > 0.0)
        // A rate so low that its interval overflows waits an hour a value.
        .map(|r| {
            Duration::try_from_secs_f64(1.0 / r)
                .unwrap_or(MAX_INTERVAL)
                .min(MAX_INTERVAL)
        });
    let mut next_start = Instant::now();
    let mut tasks = InFlight::new();
    let mut done = Completion {
        window: VecDeque::new(),
        sink,
        store: &*store,
        progress: config.progress,
    };
    let mut seq = 0u64;
    let mut listing = store.listing(
        &config.prefix,
        config.start_after.as_deref(),
        config.page_size.max(1),
    );
    let mut failure: Option<WalkError> = None;
    let mut stopped = false;

    'pages: loop {
        let page = match drive(listing.next_page(), &mut tasks, &mut done).await {
            Ok(Ok(Some(page))) => page,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                failure = Some(e.into());
                break;
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        for entry in page.entries {
            if config.stop.as_ref().is_some_and(Stop::requested) {
                stopped = true;
                break 'pages;
            }
            // Values outside the prefix are never touched, whatever the store
            // returned.
            if !entry.key.starts_with(&config.prefix) {
                continue;
            }
            if let Some(interval) = interval {
                let now = Instant::now();
                if next_start > now {
                    let delay = futures_timer::Delay::new(next_start - now);
                    if let Err(e) = drive(delay, &mut tasks, &mut done).await {
                        failure = Some(e);
                        break 'pages;
                    }
                }
                next_start = next_start.max(Instant::now()) + interval;
                // A stop requested during the wait starts no more values.
                if config.stop.as_ref().is_some_and(Stop::requested) {
                    stopped = true;
                    break 'pages;
                }
            }
            while tasks.len() >= concurrency || done.window.len() >= window {
                if let Some(e) = finish_one(&mut tasks, &mut done).await {
                    failure = Some(e);
                    break 'pages;
                }
            }
            done.window.push_back(Slot {
                seq,
                key: entry.key.clone(),
                done: None,
            });
            let engine = engine.clone();
            let this = seq;
            tasks.push(Box::pin(async move {
                // A panic is reported as a failed walk, as a panicking task
                // would be: the values before it keep their checkpoint.
                let processed = AssertUnwindSafe(engine.process(entry)).catch_unwind().await;
                (
                    this,
                    processed.unwrap_or_else(|panic| Err(WalkError::Task(panic_message(&panic)))),
                )
            }));
            seq += 1;
        }
        if !page.more {
            break;
        }
    }
    while !tasks.is_empty() {
        if let Some(e) = finish_one(&mut tasks, &mut done).await {
            failure.get_or_insert(e);
        }
    }
    // Values done behind one that failed were processed (a re-encryption
    // wrote them): they are reported, though the checkpoint stays before
    // the failed one.
    done.report_the_rest();
    done.sink.listing(listing.report());
    match failure {
        Some(e) => Err(e),
        None => Ok(Walked { stopped }),
    }
}

/// How a walk that did not fail ended.
pub(crate) struct Walked {
    /// Its [`Stop`] was requested before every value was started.
    pub(crate) stopped: bool,
}

/// Awaits `future` while the values in flight go on: a store's listing or
/// a rate limit's delay must not stall values already started (a custom
/// store may need them to finish before it answers). Returns the first
/// value's error instead, if one fails meanwhile.
async fn drive<F: Future + Unpin>(
    mut future: F,
    tasks: &mut InFlight,
    done: &mut Completion<'_>,
) -> Result<F::Output, WalkError> {
    futures_util::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.poll_unpin(cx) {
            return Poll::Ready(Ok(output));
        }
        while let Poll::Ready(Some((seq, result))) = tasks.poll_next_unpin(cx) {
            if let Some(e) = done.record(seq, result) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Pending
    })
    .await
}

/// Waits for one task and records it. Returns the task's error, if it
/// failed (its key then stays undone).
async fn finish_one(tasks: &mut InFlight, done: &mut Completion<'_>) -> Option<WalkError> {
    let (seq, result) = tasks.next().await?;
    done.record(seq, result)
}

/// The values dispatched and not yet all done, in key order, and who hears
/// of them: the sink of each value and checkpoint, and the store of what
/// is settled.
struct Completion<'a> {
    window: VecDeque<Slot>,
    sink: &'a mut dyn WalkSink,
    store: &'a dyn Store,
    progress: Option<Progress>,
}

impl Completion<'_> {
    /// Records one finished value, then reports, in key order, every value
    /// done from the front of the window, and advances the checkpoint past
    /// them.
    fn record(&mut self, seq: u64, result: Result<ValueReport, WalkError>) -> Option<WalkError> {
        let report = match result {
            Ok(report) => report,
            Err(e) => return Some(e),
        };
        let front = self.window.front().map_or(seq, |s| s.seq);
        if let Some(slot) = usize::try_from(seq - front)
            .ok()
            .and_then(|i| self.window.get_mut(i))
        {
            slot.done = Some(report);
        }
        let mut last_done = None;
        while self.window.front().is_some_and(|s| s.done.is_some()) {
            if let Some(Slot {
                key,
                done: Some(report),
                ..
            }) = self.window.pop_front()
            {
                self.sink.value(report);
                if let Some(progress) = &self.progress {
                    progress.add_one();
                }
                last_done = Some(key);
            }
        }
        if let Some(key) = last_done {
            self.sink.checkpoint(&key);
            self.store.settled(&key);
        }
        None
    }
}

impl Completion<'_> {
    /// Reports, in key order, every value left in the window that is done
    /// (after a failure, those behind the failed one), moving no
    /// checkpoint.
    fn report_the_rest(&mut self) {
        for slot in self.window.drain(..) {
            if let Some(report) = slot.done {
                self.sink.value(report);
                if let Some(progress) = &self.progress {
                    progress.add_one();
                }
            }
        }
    }
}

/// What a panic said, if it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        format!("panicked: {message}")
    } else if let Some(message) = panic.downcast_ref::<String>() {
        format!("panicked: {message}")
    } else {
        "panicked".to_owned()
    }
}
