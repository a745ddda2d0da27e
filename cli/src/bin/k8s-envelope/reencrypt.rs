//! `k8s-envelope reencrypt`: rewrite every stale value, with a progress bar
//! on a terminal, a checkpoint file to resume from, and a summary.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use clap::Args;
use k8s_envelope::snapshot::SnapshotWritten;
use k8s_envelope::store::{printable, ListingReport};
use k8s_envelope::walk::{
    self, ReencryptOptions, ReencryptProgress, ReencryptTotals, Stop, ValueReport,
};
use serde::{Deserialize, Serialize};

use crate::configuration;
use crate::failure::Failure;
use crate::progress_log::ProgressLog;
use crate::store_args::{self, StoreArgs};

/// How many failed values are listed on stderr.
const LISTED: usize = 20;

/// How often the checkpoint file is rewritten during a run.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

#[derive(Args, Debug)]
#[command(group = store_args::required_store())]
pub struct ReencryptArgs {
    /// The EncryptionConfiguration the kube-apiservers use now: its first
    /// provider writes (YAML or JSON).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// Take every value to be of this group-resource (`secrets`,
    /// `widgets.example.com`) instead of telling it from its key.
    #[arg(long)]
    resource: Option<String>,
    /// With --dump: where to write the re-encrypted dump; with --snapshot:
    /// where to write the re-keyed snapshot (a new file, 0600). Not with
    /// --etcd, which is re-encrypted in place.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "etcd",
        required_unless_present_any = ["etcd", "dry_run"]
    )]
    out: Option<PathBuf>,
    /// Read and decrypt everything; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// How many values are in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Keys per listing call.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    page_size: u32,
    /// At most this many values per second.
    #[arg(long, value_name = "N")]
    rate_limit: Option<f64>,
    /// Save progress here, and resume from it when it holds an unfinished
    /// run over the same store and prefix (etcd only).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dump", "snapshot"])]
    checkpoint: Option<PathBuf>,
}

/// The checkpoint file.
#[derive(Serialize, Deserialize, Debug, Default)]
struct Checkpoint {
    store: String,
    prefix: String,
    /// The last key below which every value is done (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_key_b64: Option<String>,
    /// Counts of every run so far, this one included.
    totals: ReencryptTotals,
    finished: bool,
}

/// Shared between the run and the code that reports it (also after the
/// run's future is dropped on a signal).
struct State {
    /// Counts of earlier runs (from the checkpoint).
    before: ReencryptTotals,
    /// This run's counts.
    totals: ReencryptTotals,
    last_key: Option<Vec<u8>>,
    saved_at: Instant,
    failures_listed: usize,
}

struct Progress {
    state: Arc<Mutex<State>>,
    checkpoint: Option<CheckpointFile>,
    bar: Option<indicatif::ProgressBar>,
    /// Values done, for the progress lines of a log.
    done: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Clone)]
struct CheckpointFile {
    path: PathBuf,
    store: String,
    prefix: String,
}

impl CheckpointFile {
    fn save(&self, state: &State, finished: bool) -> Result<(), Failure> {
        let mut totals = state.before.clone();
        totals.merge(&state.totals);
        let checkpoint = Checkpoint {
            store: self.store.clone(),
            prefix: self.prefix.clone(),
            last_key_b64: state.last_key.as_ref().map(|k| BASE64.encode(k)),
            totals,
            finished,
        };
        let json = serde_json::to_vec_pretty(&checkpoint).unwrap_or_default();
        store_args::write_private(&self.path, &json)
    }
}

impl ReencryptProgress for Progress {
    fn value(&mut self, report: &ValueReport) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut state = lock(&self.state);
        state.totals.add(report);
        if let Some(failed) = walk::FailedValue::from_report(report) {
            if state.failures_listed < LISTED {
                state.failures_listed += 1;
                let line = format!("k8s-envelope: {}: {}", failed.key, failed.reason);
                match &self.bar {
                    Some(bar) => bar.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
            }
        }
    }

    fn checkpoint(&mut self, last_key: &[u8], _totals: &ReencryptTotals) {
        let mut state = lock(&self.state);
        state.last_key = Some(last_key.to_vec());
        if let Some(file) = &self.checkpoint {
            if state.saved_at.elapsed() >= CHECKPOINT_EVERY {
                state.saved_at = Instant::now();
                if let Err(e) = file.save(&state, false) {
                    eprintln!("k8s-envelope: warning: {}", e.message);
                }
            }
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the run ended.
enum End {
    Done,
    Stopped(String),
    Interrupted,
}

/// Whether two paths name the same file (the second may not exist yet).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Re-encrypts; exit status 0 only when nothing failed.
pub fn run(args: &ReencryptArgs) -> Result<(), Failure> {
    check_outputs(args)?;
    let runtime = store_args::runtime()?;
    let transformers = configuration::load_and_build(&args.config, &runtime)?;
    let out = args.out.as_deref().filter(|_| !args.dry_run);
    let opened = args.store.open_writing(&runtime, out)?;
    let store_name = opened.store.describe();

    let mut options = ReencryptOptions::new(args.store.prefix().as_bytes());
    options.layout = args.store.layout(args.resource.as_deref());
    options.concurrency = usize::from(args.concurrency);
    options.page_size = args.page_size as usize;
    options.dry_run = args.dry_run;
    options.rate_limit = args.rate_limit;

    let checkpoint = args.checkpoint.as_ref().map(|path| CheckpointFile {
        path: path.clone(),
        store: store_name.clone(),
        prefix: args.store.prefix().to_owned(),
    });
    let before = match &checkpoint {
        Some(file) => resume(file, &mut options)?,
        None => ReencryptTotals::default(),
    };

    let total = runtime
        .block_on(opened.store.count(args.store.prefix().as_bytes()))
        .ok()
        .flatten();
    let bar = std::io::stderr().is_terminal().then(|| progress_bar(total));
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let _log = {
        let done = done.clone();
        ProgressLog::start("reencrypt", total, move || {
            done.load(std::sync::atomic::Ordering::Relaxed)
        })
    };
    let state = Arc::new(Mutex::new(State {
        before,
        totals: ReencryptTotals::default(),
        last_key: options.start_after.clone(),
        saved_at: Instant::now(),
        failures_listed: 0,
    }));
    let mut progress = Progress {
        state: state.clone(),
        checkpoint: checkpoint.clone(),
        bar: bar.clone(),
        done,
    };
    let started = Instant::now();
    let (end, listing) = runtime.block_on(drive(
        opened.store.clone(),
        transformers,
        options,
        &mut progress,
    ));
    let elapsed = started.elapsed();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    // Dropping the run stopped its tasks: what the state says is final.
    let state = lock(&state);
    if let Some(file) = &checkpoint {
        file.save(&state, matches!(end, End::Done))?;
    }
    let snapshot_written = finish_outputs(&end, &opened, args.dry_run)?;
    print_summary(&state, args.dry_run, elapsed, &store_name, &end);
    print_revision_moves(&listing);
    print_store_figures(&opened, snapshot_written.as_ref());
    let mut all = state.before.clone();
    all.merge(&state.totals);
    outcome(end, &all, &opened, checkpoint.is_some())
}

/// Refuses outputs that do not fit the store (what clap cannot say): a dump
/// or snapshot needs `--out` unless it is a dry run, and `--out` is never
/// the input.
/// Refuses an output that is the input (clap has refused `--out` with
/// etcd, and a dump or snapshot without `--out` unless `--dry-run`).
fn check_outputs(args: &ReencryptArgs) -> Result<(), Failure> {
    let offline = [
        ("dump", &args.store.dump),
        ("snapshot", &args.store.snapshot),
    ]
    .into_iter()
    .find_map(|(what, path)| Some((what, path.as_ref()?)));
    match (offline, &args.out) {
        (Some((what, input)), Some(out)) if same_file(input, out) => Err(Failure::usage(format!(
            "--out {} is the input {what}: write the re-encrypted {what} to a new file",
            out.display()
        ))),
        _ => Ok(()),
    }
}

/// Reads the checkpoint, if there is one: a run it left unfinished goes on
/// after its last key (set in `options`), and its counts are returned to
/// add this run's to.
fn resume(
    file: &CheckpointFile,
    options: &mut ReencryptOptions,
) -> Result<ReencryptTotals, Failure> {
    let Some(saved) = read_checkpoint(&file.path)? else {
        return Ok(ReencryptTotals::default());
    };
    if saved.prefix != file.prefix {
        return Err(Failure::usage(format!(
            "{}: the checkpoint is for prefix {:?}, not {:?}",
            file.path.display(),
            saved.prefix,
            file.prefix
        )));
    }
    if saved.finished {
        eprintln!(
            "k8s-envelope: {}: the last run finished; starting a new pass",
            file.path.display()
        );
        return Ok(ReencryptTotals::default());
    }
    if saved.store != file.store {
        eprintln!(
            "k8s-envelope: warning: the checkpoint was written for {}, resuming on {}",
            printable(saved.store.as_bytes()),
            printable(file.store.as_bytes())
        );
    }
    options.start_after = match &saved.last_key_b64 {
        Some(b64) => Some(BASE64.decode(b64).map_err(|_| {
            Failure::usage(format!(
                "{}: last_key_b64 is not base64",
                file.path.display()
            ))
        })?),
        None => None,
    };
    if let Some(key) = &options.start_after {
        eprintln!("k8s-envelope: resuming after {}", printable(key));
    }
    Ok(saved.totals)
}

/// Runs the re-encryption until it ends or a signal stops it. The first
/// SIGINT or SIGTERM stops it gracefully: no new value starts, the ones in
/// flight finish and are counted and checkpointed. A second one stops at
/// once.
async fn drive(
    store: Arc<dyn k8s_envelope::store::Store>,
    transformers: Arc<k8s_envelope::ResourceTransformers>,
    options: ReencryptOptions,
    progress: &mut Progress,
) -> (End, ListingReport) {
    let stop = Stop::new();
    let options = options.with_stop(stop.clone());
    let run = walk::reencrypt(store, transformers, options, progress);
    tokio::pin!(run);
    let ended = |result: Result<walk::ReencryptReport, walk::ReencryptError>| match result {
        Ok(report) if report.stopped => (End::Interrupted, report.listing),
        Ok(report) => (End::Done, report.listing),
        Err(e) => (End::Stopped(e.to_string()), e.report.listing.clone()),
    };
    tokio::select! {
        result = &mut run => ended(result),
        () = interrupted() => {
            stop.request();
            eprintln!(
                "k8s-envelope: stopping: finishing the values in flight (signal again to stop at once)"
            );
            tokio::select! {
                // Stopped on request, or done anyway if the signal came
                // after the last value started.
                result = &mut run => ended(result),
                () = interrupted() => (End::Interrupted, ListingReport::default()),
            }
        }
    }
}

/// Writes a finished run's output: the re-encrypted dump, or the re-keyed
/// snapshot (what it wrote is returned to report).
fn finish_outputs(
    end: &End,
    opened: &store_args::Opened,
    dry_run: bool,
) -> Result<Option<SnapshotWritten>, Failure> {
    if !matches!(end, End::Done) {
        return Ok(None);
    }
    if let Some(dump) = &opened.dump {
        dump.finish()
            .map_err(|e| Failure::transform(e.to_string()))?;
    }
    match &opened.snapshot {
        Some(snapshot) if !dry_run => snapshot
            .finish()
            .map(Some)
            .map_err(|e| Failure::transform(e.to_string())),
        _ => Ok(None),
    }
}

/// The summary's last lines: the snapshot written, and etcd's retries.
fn print_store_figures(opened: &store_args::Opened, snapshot_written: Option<&SnapshotWritten>) {
    if let Some(written) = snapshot_written {
        println!(
            "  {:<20} {} ({} keys kept as they were, {} rewritten; revision and compaction {})",
            "snapshot written",
            written.path.display(),
            written.kept,
            written.rewritten,
            written.revision
        );
    }
    if let Some(etcd) = &opened.etcd {
        let retries = etcd.retries();
        println!(
            "  {:<20} {} ({} moves to another endpoint)",
            "etcd retries", retries.retries, retries.failovers
        );
    }
}

/// The exit status of the run, with the next step when it did not finish.
fn outcome(
    end: End,
    all: &ReencryptTotals,
    opened: &store_args::Opened,
    checkpointed: bool,
) -> Result<(), Failure> {
    match end {
        End::Interrupted => Err(Failure {
            status: 130,
            message: if checkpointed {
                "interrupted; run again with the same --checkpoint to resume".to_owned()
            } else if opened.dump.is_some() {
                "interrupted; the output dump was not written".to_owned()
            } else if opened.snapshot.is_some() {
                "interrupted; the output snapshot was not written".to_owned()
            } else {
                "interrupted; values rewritten so far stay rewritten, a new run skips them as current"
                    .to_owned()
            },
        }),
        End::Stopped(e) => Err(Failure::transform(format!(
            "stopped: {e}{}",
            if checkpointed {
                "; run again with the same --checkpoint to resume"
            } else {
                ""
            }
        ))),
        End::Done if all.failed > 0 => Err(Failure::transform(format!(
            "{} value(s) could not be re-encrypted and were left as they were",
            all.failed
        ))),
        End::Done => Ok(()),
    }
}

fn read_checkpoint(path: &Path) -> Result<Option<Checkpoint>, Failure> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Failure::usage(format!("{}: not a checkpoint file: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::usage(format!("{}: {e}", path.display()))),
    }
}

fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let template = if total.is_some() {
        "{bar:40} {pos}/{len} values, {elapsed} (eta {eta})"
    } else {
        "{spinner} {pos} values, {elapsed}"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Says when the walk had to move to a newer revision (etcd compacted the
/// one it read): the run's values were then not all read at one revision.
fn print_revision_moves(listing: &ListingReport) {
    if listing.revision_moves > 0 {
        println!(
            "  {:<20} {} (etcd compacted the revision being read; went on at revision {})",
            "revision moves",
            listing.revision_moves,
            listing.last_revision.unwrap_or_default()
        );
    }
}

fn print_summary(state: &State, dry_run: bool, elapsed: Duration, store: &str, end: &End) {
    let t = &state.totals;
    let how = match end {
        End::Done => "done",
        End::Stopped(_) => "stopped",
        End::Interrupted => "interrupted",
    };
    let rate = t.read as f64 / elapsed.as_secs_f64().max(1e-9);
    println!(
        "re-encryption of {store} {how}{} in {:.1}s ({rate:.0} values/s)",
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        },
        elapsed.as_secs_f64()
    );
    let mut lines = vec![
        ("read", t.read),
        (
            if dry_run {
                "stale (to rewrite)"
            } else {
                "rewritten"
            },
            if dry_run { t.stale } else { t.rewritten },
        ),
        ("already current", t.already_current),
        ("conflicts retried", t.conflicts_retried),
        ("failed", t.failed),
    ];
    if t.deleted > 0 {
        lines.push(("deleted meanwhile", t.deleted));
    }
    if t.skipped > 0 {
        lines.push(("skipped (apiserver bookkeeping)", t.skipped));
    }
    for (label, n) in lines {
        println!("  {label:<20} {n}");
    }
    if state.before.read > 0 {
        let mut all = state.before.clone();
        all.merge(t);
        println!(
            "  with the earlier run(s): {} read, {} rewritten, {} already current, {} conflicts retried, {} failed",
            all.read, all.rewritten, all.already_current, all.conflicts_retried, all.failed
        );
    }
}
