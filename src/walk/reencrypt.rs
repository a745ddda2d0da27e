//! The re-encryption driver: rewrite every stale value with the writing
//! provider, without ever overwriting a concurrent write.

use std::sync::Arc;

use super::engine::Stop;
use super::engine::{walk, Outcome, ValueReport, WalkConfig, WalkError, WalkSink};
use crate::config::ResourceTransformers;
use crate::store::{KeyLayout, SECRETS_PREFIX};
use crate::store::{ListingReport, Store};

/// At most this many failed values are listed in a report (all are counted).
pub const MAX_FAILURES_LISTED: usize = 1000;

/// How to re-encrypt. [`Default`] walks [`SECRETS_PREFIX`]; [`new`](Self::new)
/// takes another prefix, and the `with_*` methods change one option:
///
/// ```
/// use k8s_envelope::walk::ReencryptOptions;
///
/// let options = ReencryptOptions::new("/registry/configmaps/").with_concurrency(8).with_dry_run(true);
/// assert_eq!((options.concurrency, options.page_size), (8, 100));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReencryptOptions {
    /// Only keys that start with this are read, and only those are written.
    pub prefix: Vec<u8>,
    /// How to tell each key's resource (and so its providers).
    pub layout: KeyLayout,
    /// How many values are in flight at once. Default 4.
    pub concurrency: usize,
    /// How many keys one listing call returns. Default 100.
    pub page_size: usize,
    /// Read and decrypt everything, write nothing.
    pub dry_run: bool,
    /// Resume: start after this key (a checkpoint from an earlier run).
    pub start_after: Option<Vec<u8>>,
    /// At most this many values per second, to spare the store.
    pub rate_limit: Option<f64>,
    /// How many times a value that keeps changing under us is read again
    /// before it is left to its writers (and counted as failed). Default 10.
    pub max_attempts: u32,
    /// Stops the run when requested: no value is started after that, the
    /// ones in flight finish and are counted, and the report says it
    /// stopped ([`ReencryptReport::stopped`]).
    pub stop: Option<Stop>,
}

impl Default for ReencryptOptions {
    fn default() -> Self {
        Self::new(SECRETS_PREFIX)
    }
}

impl ReencryptOptions {
    /// Options for `prefix` with the defaults.
    pub fn new(prefix: impl Into<Vec<u8>>) -> Self {
        Self {
            prefix: prefix.into(),
            layout: KeyLayout::default(),
            concurrency: 4,
            page_size: 100,
            dry_run: false,
            start_after: None,
            rate_limit: None,
            max_attempts: 10,
            stop: None,
        }
    }

    /// These options with another `prefix`: only keys that start with this are read, and only those are written.
    pub fn with_prefix(mut self, prefix: Vec<u8>) -> Self {
        self.prefix = prefix;
        self
    }

    /// These options with another `layout`: how to tell each key's resource (and so its providers).
    pub fn with_layout(mut self, layout: KeyLayout) -> Self {
        self.layout = layout;
        self
    }

    /// These options with another `concurrency`: how many values are in flight at once.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// These options with another `page_size`: how many keys one listing call returns.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size;
        self
    }

    /// These options with another `dry_run`: read and decrypt everything, write nothing.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// These options with another `start_after`: resume: start after this key (a checkpoint from an earlier run).
    pub fn with_start_after(mut self, start_after: Option<Vec<u8>>) -> Self {
        self.start_after = start_after;
        self
    }

    /// These options with another `rate_limit`: at most this many values per second, to spare the store.
    pub fn with_rate_limit(mut self, rate_limit: Option<f64>) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// These options with another `max_attempts`: how many times a value that keeps changing under us is read again before it is left to its writers (and counted as failed).
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// These options with a `stop`: a handle that stops the run when requested.
    pub fn with_stop(mut self, stop: Stop) -> Self {
        self.stop = Some(stop);
        self
    }
}

/// The counts of a re-encryption.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ReencryptTotals {
    /// Values read.
    pub read: u64,
    /// Stale values rewritten with the writing provider.
    pub rewritten: u64,
    /// Stale values found by a dry run (not written).
    pub stale: u64,
    /// Values already current: left alone.
    pub already_current: u64,
    /// Times a value changed between our read and our write, and was read
    /// again (never overwritten).
    pub conflicts_retried: u64,
    /// Values that could not be re-encrypted: unreadable (no provider could
    /// read them), of a resource that could not be told from the key, or
    /// changing on every attempt. Each was left as it was.
    pub failed: u64,
    /// Values deleted while being processed.
    pub deleted: u64,
    /// The apiserver's own bookkeeping keys, never encrypted.
    pub skipped: u64,
}

impl ReencryptTotals {
    /// Counts one value.
    pub fn add(&mut self, report: &ValueReport) {
        self.read += 1;
        self.conflicts_retried += u64::from(report.conflicts);
        match report.outcome {
            Outcome::Current => self.already_current += 1,
            Outcome::Stale => self.stale += 1,
            Outcome::Rewritten => self.rewritten += 1,
            Outcome::Unreadable
            | Outcome::Unmapped
            | Outcome::KeptChanging
            | Outcome::NotAnObject => {
                self.failed += 1;
            }
            Outcome::Internal => self.skipped += 1,
            Outcome::Deleted => self.deleted += 1,
        }
    }

    /// Adds another run's counts (an interrupted run and its resumption).
    pub fn merge(&mut self, other: &ReencryptTotals) {
        self.read += other.read;
        self.rewritten += other.rewritten;
        self.stale += other.stale;
        self.already_current += other.already_current;
        self.conflicts_retried += other.conflicts_retried;
        self.failed += other.failed;
        self.deleted += other.deleted;
        self.skipped += other.skipped;
    }
}

/// A value that could not be re-encrypted (or read, in a scan).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedValue {
    /// The key, printable: lossily decoded, control characters escaped
    /// (see [`printable`](crate::store::printable)).
    pub key: String,
    /// Why: the provider errors, which contain no key material or
    /// plaintext.
    pub reason: String,
}

impl FailedValue {
    /// The failure a value's report describes, if it is one (unreadable,
    /// of an unknown resource, or changing on every attempt).
    pub fn from_report(report: &ValueReport) -> Option<Self> {
        let reason = match report.outcome {
            Outcome::Unreadable => report.error.as_ref().map_or_else(
                || "no provider could read it".to_owned(),
                ToString::to_string,
            ),
            Outcome::Unmapped => {
                "cannot tell the resource from the key; give the resource explicitly".to_owned()
            }
            Outcome::KeptChanging => format!(
                "changed on each of {} attempts; left to its writers",
                report.conflicts
            ),
            Outcome::NotAnObject => "it decrypts, but is not a Kubernetes object".to_owned(),
            _ => return None,
        };
        Some(Self {
            key: crate::store::printable(&report.key),
            reason,
        })
    }
}

/// What a re-encryption did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ReencryptReport {
    /// The counts.
    pub totals: ReencryptTotals,
    /// The values that failed (at most [`MAX_FAILURES_LISTED`]), in key
    /// order.
    pub failures: Vec<FailedValue>,
    /// The last key below which every value is done: where a resumed run
    /// starts ([`ReencryptOptions::start_after`]).
    pub last_key: Option<Vec<u8>>,
    /// What listing the prefix cost the store, and which revisions it read.
    pub listing: ListingReport,
    /// Whether the run stopped early because its [`Stop`] was requested;
    /// [`last_key`](Self::last_key) is then where to resume.
    pub stopped: bool,
}

/// Follows a re-encryption as it goes (a progress bar, a checkpoint file).
///
/// Called from the task that drives the run, never concurrently.
pub trait ReencryptProgress: Send {
    /// One value is done.
    fn value(&mut self, report: &ValueReport) {
        let _ = report;
    }

    /// Every value up to and including `last_key` is done; a resumed run
    /// can start after it. `totals` are this run's so far.
    fn checkpoint(&mut self, last_key: &[u8], totals: &ReencryptTotals) {
        let _ = (last_key, totals);
    }
}

/// No progress reporting.
impl ReencryptProgress for () {}

/// A re-encryption stopped before the end.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
#[non_exhaustive]
pub struct ReencryptError {
    /// Why it stopped.
    pub error: WalkError,
    /// What it did until then; `last_key` is where to resume.
    pub report: Box<ReencryptReport>,
}

struct Sink<'a> {
    report: ReencryptReport,
    progress: &'a mut dyn ReencryptProgress,
}

impl WalkSink for Sink<'_> {
    fn value(&mut self, report: ValueReport) {
        self.report.totals.add(&report);
        if self.report.failures.len() < MAX_FAILURES_LISTED {
            if let Some(failed) = FailedValue::from_report(&report) {
                self.report.failures.push(failed);
            }
        }
        self.progress.value(&report);
    }

    fn checkpoint(&mut self, key: &[u8]) {
        self.report.last_key = Some(key.to_vec());
        self.progress.checkpoint(key, &self.report.totals);
    }

    fn listing(&mut self, report: ListingReport) {
        self.report.listing = report;
    }
}

/// Re-encrypts every stale value under `options.prefix`.
///
/// For each value: read it with the current configuration (the
/// transformer of its resource, told from the key by `options.layout`);
/// if it is current, leave it; if it is stale, encrypt its plaintext with
/// the writing provider, check that the result reads back, and write it
/// with a compare-and-swap on the revision that was read. If the value
/// changed in between, nothing is written: the new value is read and
/// decided on again (a kube-apiserver that wrote it has most likely written
/// it current). Values that no provider can read, and keys whose resource
/// cannot be told, are reported and left as they are. Keys outside the
/// prefix are never read or written.
///
/// Runs `options.concurrency` values at a time, as futures of the returned
/// one: any executor drives it, and the store's own I/O runs wherever the
/// store put it. Dropping the future stops the run;
/// [`ReencryptProgress::checkpoint`] has by then reported the key to resume
/// after.
///
/// Here on an `etcdctl -w json` dump; with the `etcd` feature,
/// `store::EtcdStore::connect` gives a live etcd the same way.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use k8s_envelope::walk::{reencrypt, ReencryptOptions};
/// use k8s_envelope::store::DumpStore;
/// use k8s_envelope::EncryptionConfiguration;
///
/// let transformers = EncryptionConfiguration::load("/etc/kubernetes/enc.yaml")?.build()?;
/// let dump = Arc::new(DumpStore::load("dump.json")?);
/// let mut options = ReencryptOptions::new("/registry/secrets/");
/// options.concurrency = 8;
/// let report = reencrypt(dump.clone(), Arc::new(transformers), options, &mut ()).await?;
/// println!("{} rewritten, {} failed", report.totals.rewritten, report.totals.failed);
/// dump.write("dump.reencrypted.json")?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`ReencryptError`] when the store fails, the writing provider cannot
/// encrypt, or a rewritten value does not read back; the values in flight
/// are finished first, and the error carries the report so far.
pub async fn reencrypt(
    store: Arc<dyn Store>,
    transformers: Arc<ResourceTransformers>,
    options: ReencryptOptions,
    progress: &mut dyn ReencryptProgress,
) -> Result<ReencryptReport, ReencryptError> {
    let mut sink = Sink {
        report: ReencryptReport {
            last_key: options.start_after.clone(),
            ..ReencryptReport::default()
        },
        progress,
    };
    let config = WalkConfig {
        prefix: options.prefix,
        layout: options.layout,
        page_size: options.page_size,
        concurrency: options.concurrency,
        start_after: options.start_after,
        rate_limit: options.rate_limit,
        write: !options.dry_run,
        max_attempts: options.max_attempts,
        stop: options.stop.clone(),
        plaintext_check: None,
        progress: None,
    };
    let result = walk(store, transformers, config, &mut sink).await;
    if let Ok(walked) = &result {
        sink.report.stopped = walked.stopped;
    }
    let mut report = sink.report;
    report.failures.sort_by(|a, b| a.key.cmp(&b.key));
    match result {
        Ok(_) => Ok(report),
        Err(error) => Err(ReencryptError {
            error,
            report: Box::new(report),
        }),
    }
}
