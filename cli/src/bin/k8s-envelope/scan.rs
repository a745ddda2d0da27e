//! `k8s-envelope scan`: an inventory of a store.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use k8s_envelope::walk::{self, Outcome, Progress, ScanOptions, ScanReport};

use crate::configuration;
use crate::failure::Failure;
use crate::progress_log::ProgressLog;
use crate::store_args::{self, StoreArgs};

/// How many unreadable values are listed on stderr.
const LISTED: usize = 20;

#[derive(Args, Debug)]
#[command(group = store_args::required_store())]
pub struct ScanArgs {
    /// The EncryptionConfiguration the kube-apiservers use (YAML or JSON).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// Take every value to be of this group-resource (`secrets`,
    /// `widgets.example.com`) instead of telling it from its key.
    #[arg(long)]
    resource: Option<String>,
    /// How many values are decrypted at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A table and a total line.
    Table,
    /// One JSON object: `rows` (resource, written_by, state, count) and
    /// `totals`.
    Json,
    /// JSON Lines: one line per row, then one totals line.
    Jsonl,
}

/// Scans; exit status 1 when a value is unreadable or of an unknown resource.
pub fn run(args: &ScanArgs) -> Result<(), Failure> {
    let runtime = store_args::runtime()?;
    let transformers = configuration::load_and_build(&args.config, &runtime)?;
    let report = scan(args, &runtime, transformers)?;
    match args.output {
        Format::Table => println!("{report}"),
        Format::Json => {
            let document = serde_json::json!({
                "rows": rows_json(&report),
                "totals": totals_json(&report),
            });
            println!("{document:#}");
        }
        Format::Jsonl => {
            for line in rows_json(&report) {
                println!("{line}");
            }
            println!("{}", totals_json(&report));
        }
    }
    let bad = report.count(Outcome::Unreadable) + report.count(Outcome::Unmapped);
    if bad > 0 {
        for failed in report.failures.iter().take(LISTED) {
            eprintln!("k8s-envelope: {}: {}", failed.key, failed.reason);
        }
        return Err(Failure::transform(format!(
            "{bad} value(s) cannot be read with this configuration"
        )));
    }
    Ok(())
}

/// Each row of the inventory as JSON (docs/cli.md lists the fields).
fn rows_json(report: &ScanReport) -> Vec<serde_json::Value> {
    report
        .counts
        .iter()
        .map(|(row, count)| {
            serde_json::json!({
                "type": "row",
                "resource": row.resource.as_ref().map(ToString::to_string),
                "written_by": row.origin.to_string(),
                "state": row.state.as_str(),
                "count": count,
            })
        })
        .collect()
}

/// The totals of the inventory as JSON.
fn totals_json(report: &ScanReport) -> serde_json::Value {
    serde_json::json!({
        "type": "totals",
        "values": report.total,
        "current": report.count(Outcome::Current),
        "stale": report.count(Outcome::Stale),
        "unreadable": report.count(Outcome::Unreadable),
        "unmapped": report.count(Outcome::Unmapped),
        "internal": report.count(Outcome::Internal),
        "revision_moves": report.listing.revision_moves,
    })
}

/// Runs a scan of the store named by `args`.
fn scan(
    args: &ScanArgs,
    runtime: &tokio::runtime::Runtime,
    transformers: std::sync::Arc<k8s_envelope::ResourceTransformers>,
) -> Result<ScanReport, Failure> {
    scan_store(
        &args.store,
        args.store.prefix(),
        args.resource.as_deref(),
        usize::from(args.concurrency),
        runtime,
        transformers,
    )
}

/// A scan of a store, for `scan` and for `rotate retire`'s check.
pub fn scan_store(
    store: &StoreArgs,
    prefix: &str,
    resource: Option<&str>,
    concurrency: usize,
    runtime: &tokio::runtime::Runtime,
    transformers: std::sync::Arc<k8s_envelope::ResourceTransformers>,
) -> Result<ScanReport, Failure> {
    let opened = store.open(runtime)?;
    let progress = Progress::new();
    let mut options = ScanOptions::new(prefix.as_bytes()).with_progress(progress.clone());
    options.layout = store.layout(resource);
    options.concurrency = concurrency;
    let total = runtime
        .block_on(opened.store.count(prefix.as_bytes()))
        .ok()
        .flatten();
    let _log = ProgressLog::start("scan", total, move || progress.values_done());
    runtime
        .block_on(walk::scan(opened.store, transformers, options))
        .map_err(|e| Failure::transform(e.to_string()))
}
