//! An inventory of a store: per resource, which provider and key wrote each
//! value, and whether it is current, stale or unreadable.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::engine::{walk, Outcome, Progress, ValueReport, WalkConfig, WalkError, WalkSink};
use super::origin::ValueOrigin;
use super::reencrypt::{FailedValue, MAX_FAILURES_LISTED};
use crate::config::{EncryptionConfiguration, GroupResource, ResourceTransformers};
use crate::rotation::rule_for_resource;
use crate::rotation::Member;
use crate::store::{KeyLayout, SECRETS_PREFIX};
use crate::store::{ListingReport, Store};

/// How to scan. [`Default`] scans [`SECRETS_PREFIX`];
/// [`new`](Self::new) takes another prefix, and the `with_*` methods change
/// one option.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Only keys that start with this are read.
    pub prefix: Vec<u8>,
    /// How to tell each key's resource.
    pub layout: KeyLayout,
    /// How many values are decrypted at once. Default 4.
    pub concurrency: usize,
    /// How many keys one listing call returns. Default 100.
    pub page_size: usize,
    /// Counts the values read as the scan goes, if given.
    pub progress: Option<Progress>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self::new(SECRETS_PREFIX)
    }
}

impl ScanOptions {
    /// Options for `prefix` with the defaults.
    pub fn new(prefix: impl Into<Vec<u8>>) -> Self {
        Self {
            prefix: prefix.into(),
            layout: KeyLayout::default(),
            concurrency: 4,
            page_size: 100,
            progress: None,
        }
    }

    /// These options with another `prefix`: only keys that start with this are read.
    pub fn with_prefix(mut self, prefix: Vec<u8>) -> Self {
        self.prefix = prefix;
        self
    }

    /// These options with another `layout`: how to tell each key's resource.
    pub fn with_layout(mut self, layout: KeyLayout) -> Self {
        self.layout = layout;
        self
    }

    /// These options with another `concurrency`: how many values are decrypted at once.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// These options with another `page_size`: how many keys one listing call returns.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size;
        self
    }

    /// These options with a `progress` count of the values read.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }
}

/// One line of an inventory: values of a resource, written by one provider
/// and key, in one state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct ScanRow {
    /// The resource (`None` when it cannot be told, or for internal keys).
    pub resource: Option<GroupResource>,
    /// The provider and key that wrote the values.
    pub origin: ValueOrigin,
    /// Their state.
    pub state: Outcome,
}

/// What a scan found.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ScanReport {
    /// How many values of each kind.
    pub counts: BTreeMap<ScanRow, u64>,
    /// Unreadable and unmapped values (at most [`MAX_FAILURES_LISTED`]), in
    /// key order.
    pub failures: Vec<FailedValue>,
    /// How many values were read.
    pub total: u64,
    /// What listing the prefix cost the store, and which revisions it read.
    pub listing: ListingReport,
}

impl ScanReport {
    /// The number of values in `state`.
    pub fn count(&self, state: Outcome) -> u64 {
        self.count_where(|row| row.state == state)
    }

    /// The number of values whose row matches.
    pub fn count_where(&self, mut matches: impl FnMut(&ScanRow) -> bool) -> u64 {
        self.counts
            .iter()
            .filter(|(row, _)| matches(row))
            .map(|(_, n)| n)
            .sum()
    }

    /// The number of values of rule `rule` of `config` that `member` wrote:
    /// what retiring it from that rule would make unreadable.
    pub fn written_by(
        &self,
        config: &EncryptionConfiguration,
        rule: usize,
        member: &Member,
    ) -> u64 {
        self.count_where(|row| {
            row.origin.written_by(member)
                && row
                    .resource
                    .as_ref()
                    .is_some_and(|gr| rule_for_resource(config, &gr.to_string()) == Some(rule))
        })
    }
}

impl fmt::Display for ScanReport {
    /// A table (resource, written by, state, count) and a total line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<[String; 4]> = self
            .counts
            .iter()
            .map(|(row, n)| {
                [
                    row.resource
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), ToString::to_string),
                    row.origin.to_string(),
                    row.state.to_string(),
                    n.to_string(),
                ]
            })
            .collect();
        let header = ["RESOURCE", "WRITTEN BY", "STATE", "COUNT"].map(str::to_owned);
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            writeln!(
                f,
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            )?;
        }
        write!(
            f,
            "total: {} values: {} current, {} stale, {} unreadable",
            self.total,
            self.count(Outcome::Current),
            self.count(Outcome::Stale),
            self.count(Outcome::Unreadable)
        )?;
        let unmapped = self.count(Outcome::Unmapped);
        if unmapped > 0 {
            write!(f, ", {unmapped} of an unknown resource")?;
        }
        let internal = self.count(Outcome::Internal);
        if internal > 0 {
            write!(f, ", {internal} internal")?;
        }
        if self.listing.revision_moves > 0 {
            write!(
                f,
                "\nthe store compacted the revision being read {} time(s); the scan went on at revision {}",
                self.listing.revision_moves,
                self.listing.last_revision.unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

struct Sink {
    report: ScanReport,
}

impl WalkSink for Sink {
    fn value(&mut self, report: ValueReport) {
        // A scan writes nothing: current, stale, unreadable, unmapped or
        // internal.
        let state = report.outcome;
        if self.report.failures.len() < MAX_FAILURES_LISTED {
            if let Some(failed) = FailedValue::from_report(&report) {
                self.report.failures.push(failed);
            }
        }
        self.report.total += 1;
        *self
            .report
            .counts
            .entry(ScanRow {
                resource: report.resource,
                origin: report.origin,
                state,
            })
            .or_default() += 1;
    }

    fn checkpoint(&mut self, _key: &[u8]) {}

    fn listing(&mut self, report: ListingReport) {
        self.report.listing = report;
    }
}

/// Reads and decrypts every value under `options.prefix`, writing nothing,
/// and counts them by resource, origin ([`ValueOrigin`]: provider and key
/// name, or KMS provider and key-ID hash) and state.
///
/// Decrypting is what tells stale from current (a KMS v2 value is stale when
/// its key ID is not the plugin's current one, which only the provider
/// knows), so the configuration's KMS plugins must be reachable.
///
/// # Errors
///
/// [`WalkError::Store`] when the store fails.
pub async fn scan(
    store: Arc<dyn Store>,
    transformers: Arc<ResourceTransformers>,
    options: ScanOptions,
) -> Result<ScanReport, WalkError> {
    let mut sink = Sink {
        report: ScanReport::default(),
    };
    let config = WalkConfig {
        prefix: options.prefix,
        layout: options.layout,
        page_size: options.page_size,
        concurrency: options.concurrency,
        start_after: None,
        rate_limit: None,
        write: false,
        max_attempts: 1,
        stop: None,
        plaintext_check: None,
        progress: options.progress,
    };
    walk(store, transformers, config, &mut sink).await?;
    sink.report.failures.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(sink.report)
}
