//! `k8s-envelope export`: every value under a prefix, decrypted and
//! decoded: as one List, one object a line, or one file per object.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clap::{Args, ValueEnum};
use k8s_envelope::object::{DecodeOptions, Decoded, Object};
use k8s_envelope::store::{printable, Entry, KeyLayout};
use k8s_envelope::walk::ValueOrigin;
use k8s_envelope::ResourceTransformers;

use crate::configuration;
use crate::export_tree::ExportTree;
use crate::failure::Failure;
use crate::progress_log::ProgressLog;
use crate::shown;
use crate::store_args::{self, StoreArgs};

/// Keys per listing call.
const PAGE: usize = 100;

/// How many values one task decrypts, decodes and renders.
const BATCH: usize = 32;
/// How many failures are listed on stderr.
const LISTED: usize = 20;

#[derive(Args, Debug)]
#[command(group = store_args::required_store())]
pub struct ExportArgs {
    /// The EncryptionConfiguration the kube-apiservers use (YAML or JSON).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// Take every value to be of this group-resource instead of telling it
    /// from its key.
    #[arg(long)]
    resource: Option<String>,
    /// Output format: a List (json), YAML documents (yaml), or one compact
    /// object a line (jsonl).
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    output: Format,
    /// Write one file per object under this directory instead of stdout
    /// (namespaces/NS/RESOURCE/NAME.yaml, cluster/RESOURCE/NAME.yaml; files
    /// 0600). Symbolic links in it are refused, not followed.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Show Secrets' UTF-8 data values as text, under stringData (binary
    /// values stay base64 under data), so the file applies back to the
    /// same bytes.
    #[arg(long)]
    decode_data: bool,
    /// How many batches of 32 values are decrypted and decoded at once (on
    /// the CPUs' threads); the output stays in key order.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// YAML documents separated by `---` (with --dir, one per file).
    Yaml,
    /// A List, as `kubectl get -o json` prints one (with --dir, one
    /// object per file).
    Json,
    /// One compact JSON object a line.
    Jsonl,
}

/// Where the objects go.
enum Sink {
    Stdout {
        format: Format,
        written: usize,
        /// Buffered: stdout alone writes each line through (a system call
        /// an object).
        out: std::io::BufWriter<std::io::Stdout>,
    },
    Dir {
        tree: ExportTree,
        format: Format,
        /// Files written, so that two keys naming the same file fail
        /// instead of the second overwriting the first.
        written: std::collections::HashSet<Vec<String>>,
    },
}

/// Exports; exit status 1 when any value could not be read or written.
pub fn run(args: &ExportArgs) -> Result<(), Failure> {
    if args.dir.is_some() && args.output == Format::Jsonl {
        return Err(Failure::usage(
            "--dir writes one object per file: use --output yaml or json",
        ));
    }
    let runtime = store_args::runtime()?;
    let transformers = configuration::load_and_build(&args.config, &runtime)?;
    let opened = args.store.open(&runtime)?;
    let mut options = DecodeOptions::default();
    if args.decode_data {
        options = options.with_decoded_data();
    }
    let layout = args.store.layout(args.resource.as_deref());
    let mut sink = match &args.dir {
        Some(root) => Sink::Dir {
            tree: ExportTree::open(root).map_err(Failure::usage)?,
            format: args.output,
            written: std::collections::HashSet::new(),
        },
        None => Sink::Stdout {
            format: args.output,
            written: 0,
            out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
        },
    };
    let mut origins: BTreeMap<(ValueOrigin, bool), u64> = BTreeMap::new();
    let mut tally = Tally::default();
    let prefix = args.store.prefix().as_bytes();
    let total = runtime.block_on(opened.store.count(prefix)).ok().flatten();
    let done = Arc::new(AtomicU64::new(0));
    let _log = {
        let done = done.clone();
        ProgressLog::start("export", total, move || done.load(Ordering::Relaxed))
    };
    // Values are decrypted, decoded and rendered on the runtime's threads
    // in batches (one task each: a task per value cost more than a small
    // value's work), at most `window` batches at once, and written here in
    // key order as they finish.
    let window = usize::from(args.concurrency);
    let decoding = Decoding {
        transformers,
        layout,
        options: Arc::new(options),
        format: args.output,
        to_dir: args.dir.is_some(),
    };
    runtime.block_on(async {
        let mut listing = opened.store.listing(prefix, None, PAGE);
        let mut in_flight: VecDeque<BatchTask> = VecDeque::new();
        let mut write_front = |(key, result): Answer| {
            result.and_then(|rendered| {
                *origins.entry(rendered.how_written).or_default() += 1;
                rendered.text.and_then(|text| sink.write(&key, &text))
            })
        };
        // Each batch written is settled: a store may keep what it listed
        // until then (a dump keeps every entry, for a writer).
        let store = &opened.store;
        let mut write_batch = |batch: JoinedBatch| {
            done.fetch_add(batch.size as u64, Ordering::Relaxed);
            tally.batch(batch.size, batch.answers, &mut write_front);
            store.settled(&batch.last);
        };
        let mut listing_failed = None;
        loop {
            let page = match listing.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) => {
                    listing_failed = Some(e.to_string());
                    break;
                }
            };
            let mut entries = page.entries.into_iter().peekable();
            while entries.peek().is_some() {
                if in_flight.len() >= window {
                    if let Some(front) = in_flight.pop_front() {
                        write_batch(front.joined().await);
                    }
                }
                let batch: Vec<Entry> = entries.by_ref().take(BATCH).collect();
                in_flight.push_back(BatchTask::spawn(batch, |batch| {
                    decoding.clone().show_all(batch)
                }));
            }
        }
        while let Some(front) = in_flight.pop_front() {
            write_batch(front.joined().await);
        }
        tally.listing_failed = listing_failed;
    });
    sink.finish().map_err(Failure::transform)?;
    // In the order of their words, as `scan` lists them.
    let summary: BTreeMap<String, u64> = origins
        .into_iter()
        .map(|((origin, stale), n)| (how_written(&origin, stale), n))
        .collect();
    let summary: Vec<String> = summary.iter().map(|(o, n)| format!("{o} {n}")).collect();
    eprintln!(
        "k8s-envelope: exported {} of {} values from {} ({})",
        tally.values - tally.not_exported,
        tally.values,
        opened.store.describe(),
        summary.join(", ")
    );
    for failure in &tally.listed {
        eprintln!("k8s-envelope: {failure}");
    }
    if let Some(why) = &tally.listing_failed {
        eprintln!("k8s-envelope: the listing failed, so the export is incomplete: {why}");
    }
    match tally.verdict() {
        Some(why) => Err(Failure::transform(why)),
        None => Ok(()),
    }
}

/// What an export did: the values it was given, those it could not export
/// (the first few named), and whether the listing failed.
#[derive(Debug, Default)]
struct Tally {
    values: usize,
    not_exported: usize,
    /// The first [`LISTED`] failures: however many values fail, the
    /// memory stays the window's.
    listed: Vec<String>,
    listing_failed: Option<String>,
}

impl Tally {
    /// Counts a batch of `size` values: each of its `answers` written with
    /// `write`, or, when its task failed, all of them not exported.
    fn batch(
        &mut self,
        size: usize,
        answers: Result<Vec<Answer>, String>,
        mut write: impl FnMut(Answer) -> Result<(), String>,
    ) {
        self.values += size;
        match answers {
            Ok(answers) => {
                for answer in answers {
                    if let Err(why) = write(answer) {
                        self.not_exported(1, why);
                    }
                }
            }
            Err(why) => self.not_exported(size, why),
        }
    }

    fn not_exported(&mut self, values: usize, why: String) {
        self.not_exported += values;
        if self.listed.len() < LISTED {
            self.listed.push(why);
        }
    }

    /// Why the export failed, or `None` when every value listed was
    /// exported and the listing ended.
    fn verdict(&self) -> Option<String> {
        let listing = self.listing_failed.as_ref().map(|_| "the listing failed");
        match (self.not_exported, listing) {
            (0, None) => None,
            (0, Some(listing)) => Some(listing.to_owned()),
            (n, None) => Some(format!("{n} value(s) not exported")),
            (n, Some(listing)) => Some(format!("{n} value(s) not exported, and {listing}")),
        }
    }
}

/// A value's key, and its text or why it could not be shown.
type Answer = (Vec<u8>, Result<Rendered, String>);

/// A value as the sink writes it.
struct Rendered {
    /// Who wrote it and whether it is stale, for the summary.
    how_written: (ValueOrigin, bool),
    /// Its text, or why it is not exported (it is no object).
    text: Result<String, String>,
}

/// What decrypting, decoding and rendering a value needs, shared by the
/// tasks.
#[derive(Clone)]
struct Decoding {
    transformers: Arc<ResourceTransformers>,
    layout: KeyLayout,
    options: Arc<DecodeOptions>,
    format: Format,
    to_dir: bool,
}

impl Decoding {
    /// [`show`](Self::show) of each of `batch` in turn (batches run at
    /// once, as many as `--concurrency` says), the answers in its order.
    async fn show_all(self, batch: Vec<Entry>) -> Vec<Answer> {
        let mut answers = Vec::with_capacity(batch.len());
        for entry in batch {
            answers.push(self.show(entry).await);
        }
        answers
    }

    /// Decrypts, decodes and renders `entry` (the plaintext is dropped,
    /// zeroized, here).
    async fn show(&self, entry: Entry) -> Answer {
        let shown = shown::show(&self.transformers, &self.layout, &entry, &self.options).await;
        let rendered = shown.map(|shown| Rendered {
            how_written: (shown.origin.clone(), shown.stale),
            text: match &shown.decoded {
                Decoded::Object(object) => Ok(Sink::render_for(self.format, self.to_dir, object)),
                Decoded::Cbor => Err(format!(
                    "{}: a CBOR object: not decoded (get --output raw prints it)",
                    printable(&entry.key)
                )),
                _ => Err(format!(
                    "{}: not a Kubernetes object (get --output raw prints it)",
                    printable(&entry.key)
                )),
            },
        });
        (entry.key, rendered)
    }
}

/// One batch of values being shown on a task of its own.
struct BatchTask {
    /// Its first key, to name the batch if its task fails.
    first: Vec<u8>,
    /// Its last key, to settle the store through once it is written.
    last: Vec<u8>,
    /// How many values it holds.
    size: usize,
    task: tokio::task::JoinHandle<Vec<Answer>>,
}

/// A batch whose task has ended.
struct JoinedBatch {
    size: usize,
    last: Vec<u8>,
    /// Its values' answers, in its order, or why its task failed.
    answers: Result<Vec<Answer>, String>,
}

impl BatchTask {
    /// Spawns `show` of `batch` (inside the runtime).
    fn spawn<F>(batch: Vec<Entry>, show: impl FnOnce(Vec<Entry>) -> F) -> Self
    where
        F: std::future::Future<Output = Vec<Answer>> + Send + 'static,
    {
        Self {
            first: batch.first().map(|e| e.key.clone()).unwrap_or_default(),
            last: batch.last().map(|e| e.key.clone()).unwrap_or_default(),
            size: batch.len(),
            task: tokio::spawn(show(batch)),
        }
    }

    /// The batch once its task has ended; a task that panicked (a bug) is
    /// a failure of its batch, named, not of the export.
    async fn joined(self) -> JoinedBatch {
        let answers = self.task.await.map_err(|e| {
            format!(
                "{} and the {} value(s) after it in its batch: their task failed: {e}",
                printable(&self.first),
                self.size.saturating_sub(1)
            )
        });
        JoinedBatch {
            size: self.size,
            last: self.last,
            answers,
        }
    }
}

/// A provider and key and whether its values are stale, for the summary:
/// `aescbc:key1 (stale)`.
fn how_written(origin: &ValueOrigin, stale: bool) -> String {
    format!("{origin} ({})", if stale { "stale" } else { "current" })
}

fn with_newline(mut text: String) -> String {
    text.push('\n');
    text
}

impl Sink {
    /// The text of `object` as this sink writes it (rendered on the
    /// tasks, in parallel): without the separators the order decides.
    fn render_for(format: Format, to_dir: bool, object: &Object) -> String {
        match (format, to_dir) {
            (Format::Json, true) => with_newline(object.to_json()),
            (_, true) | (Format::Yaml, false) => object.to_yaml(),
            (Format::Jsonl, false) => with_newline(object.to_json_compact()),
            (Format::Json, false) => indented(&object.to_json(), "    "),
        }
    }

    fn write(&mut self, key: &[u8], text: &str) -> Result<(), String> {
        match self {
            Sink::Stdout {
                format,
                written,
                out,
            } => {
                let head = match format {
                    Format::Yaml => "---\n",
                    Format::Jsonl => "",
                    Format::Json if *written == 0 => {
                        "{\n  \"apiVersion\": \"v1\",\n  \"items\": [\n"
                    }
                    Format::Json => ",\n",
                };
                *written += 1;
                print(out, head).and_then(|()| print(out, text))
            }
            Sink::Dir {
                tree,
                format,
                written,
            } => {
                let relative = object_path(key, *format).ok_or_else(|| {
                    format!(
                        "{}: a key this command cannot name a file after",
                        printable(key)
                    )
                })?;
                if !written.insert(relative.clone()) {
                    return Err(format!(
                        "{}: names the same file as another key ({}); not overwritten",
                        printable(key),
                        relative.join("/")
                    ));
                }
                tree.write(&relative, text.as_bytes()).map(|_| ())
            }
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        if let Sink::Stdout {
            format,
            written,
            out,
        } = self
        {
            if *format == Format::Json {
                let head = if *written == 0 {
                    "{\n  \"apiVersion\": \"v1\",\n  \"items\": []"
                } else {
                    "\n  ]"
                };
                print(
                    out,
                    &format!(
                        "{head},\n  \"kind\": \"List\",\n  \"metadata\": {{\n    \"resourceVersion\": \"\"\n  }}\n}}\n"
                    ),
                )?;
            }
            out.flush().map_err(|e| format!("writing stdout: {e}"))?;
        }
        Ok(())
    }
}

fn print(out: &mut impl std::io::Write, text: &str) -> Result<(), String> {
    out.write_all(text.as_bytes())
        .map_err(|e| format!("writing stdout: {e}"))
}

fn indented(text: &str, by: &str) -> String {
    text.lines()
        .map(|line| format!("{by}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The file of the object at `key`, as path segments under the export
/// directory: `namespaces/NS/RESOURCE/NAME.EXT` for a key
/// `/<root>/RESOURCE/NS/NAME`, `cluster/RESOURCE/NAME.EXT` for
/// `/<root>/RESOURCE/NAME` (a group's resources are `RESOURCE.GROUP`).
/// `None` for a key of another shape, or with a segment that is empty, `.`,
/// `..`, not UTF-8, or holds a control character or a backslash.
fn object_path(key: &[u8], format: Format) -> Option<Vec<String>> {
    let key = std::str::from_utf8(key).ok()?;
    let mut segments: Vec<&str> = key.strip_prefix('/')?.split('/').collect();
    if segments.len() < 3 {
        return None;
    }
    segments.remove(0); // the etcd prefix's root (`registry`)
    let safe = |s: &&str| {
        !s.is_empty()
            && *s != "."
            && *s != ".."
            && s.len() <= 200
            && !s.chars().any(|c| c.is_control() || c == '\\' || c == ':')
    };
    if !segments.iter().all(safe) {
        return None;
    }
    // Services and their endpoints: /registry/services/specs|endpoints/NS/NAME.
    if segments[0] == "services" && matches!(segments.get(1), Some(&"specs" | &"endpoints")) {
        let resource = if segments[1] == "specs" {
            "services"
        } else {
            "endpoints"
        };
        segments.splice(0..2, [resource]);
        return name_segments(&segments, format);
    }
    // A group's resources are stored under the group: /registry/GROUP/RESOURCE/...
    if segments[0].contains('.') && segments.len() >= 3 {
        let resource = format!("{}.{}", segments[1], segments[0]);
        segments.splice(0..2, [resource.as_str()]);
        return name_segments(&segments, format);
    }
    name_segments(&segments, format)
}

fn name_segments(segments: &[&str], format: Format) -> Option<Vec<String>> {
    let ext = if format == Format::Json {
        "json"
    } else {
        "yaml"
    };
    match segments {
        [resource, name] => Some(vec![
            "cluster".into(),
            (*resource).into(),
            format!("{name}.{ext}"),
        ]),
        [resource, namespace, name] => Some(vec![
            "namespaces".into(),
            (*namespace).into(),
            (*resource).into(),
            format!("{name}.{ext}"),
        ]),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test's panic is its failure report")]
mod tests {
    use super::*;

    fn entry(key: &str) -> Entry {
        Entry {
            key: key.as_bytes().to_vec(),
            value: Vec::new(),
            revision: 2,
        }
    }

    /// A batch whose task panics fails as a whole, named by its first key
    /// and size; the export goes on (each batch is joined on its own).
    #[tokio::test]
    async fn a_panicking_batch_fails_alone_and_whole() {
        let batch = |keys: &[&str]| keys.iter().map(|k| entry(k)).collect::<Vec<_>>();
        let failed = BatchTask::spawn(
            batch(&["/registry/secrets/ns/a", "/registry/secrets/ns/b"]),
            |_| async { panic!("a bug while showing a value") },
        );
        let answered = BatchTask::spawn(batch(&["/registry/secrets/ns/c"]), |batch| async move {
            batch
                .into_iter()
                .map(|e| (e.key, Err("not an object".to_owned())))
                .collect()
        });
        let joined = failed.joined().await;
        assert_eq!(
            (joined.size, joined.last.as_slice()),
            (2, &b"/registry/secrets/ns/b"[..])
        );
        let why = joined.answers.err().unwrap();
        assert!(
            why.starts_with("/registry/secrets/ns/a and the 1 value(s) after it in its batch: their task failed: "),
            "{why}"
        );
        let joined = answered.joined().await;
        let answers = joined.answers.unwrap();
        assert_eq!((joined.size, answers.len()), (1, 1));
        assert_eq!(answers[0].0, b"/registry/secrets/ns/c");
    }

    /// Every value of a failed batch counts, each failed value once; the
    /// first few are named; a failed listing is said, and counts no value.
    #[test]
    fn the_tally_counts_values_not_messages() {
        let answer = |key: &str, shown: bool| -> Answer {
            let result = if shown {
                Ok(Rendered {
                    how_written: (ValueOrigin::Identity, false),
                    text: Ok(String::new()),
                })
            } else {
                Err(format!("{key}: not shown"))
            };
            (key.as_bytes().to_vec(), result)
        };
        let mut tally = Tally::default();
        let mut written = Vec::new();
        let mut write = |(key, result): Answer| {
            result.map(|_| ())?;
            if key == b"/k/unwritable" {
                return Err("/k/unwritable: cannot write".to_owned());
            }
            written.push(key);
            Ok(())
        };
        let batch = vec![
            answer("/k/a", true),
            answer("/k/b", false),
            answer("/k/unwritable", true),
        ];
        tally.batch(3, Ok(batch), &mut write);
        assert_eq!((tally.values, tally.not_exported), (3, 2));
        assert_eq!(tally.verdict().as_deref(), Some("2 value(s) not exported"));
        tally.batch(
            BATCH,
            Err("/k/c and the 31 value(s) after it: failed".to_owned()),
            &mut write,
        );
        assert_eq!((tally.values, tally.not_exported), (3 + BATCH, 2 + BATCH));
        assert_eq!(tally.listed.len(), 3);
        tally.listing_failed = Some("etcd went away".to_owned());
        assert_eq!(
            tally.verdict().as_deref(),
            Some("34 value(s) not exported, and the listing failed")
        );
        // However many fail, a few are kept.
        for _ in 0..100 {
            tally.batch(BATCH, Err("failed".to_owned()), &mut write);
        }
        assert_eq!(tally.listed.len(), LISTED);
        assert_eq!(tally.not_exported, 2 + 101 * BATCH);
        assert_eq!(written, [b"/k/a".to_vec()]);

        let mut listing_only = Tally::default();
        assert_eq!(listing_only.verdict(), None);
        listing_only.listing_failed = Some("etcd went away".to_owned());
        assert_eq!(
            listing_only.verdict().as_deref(),
            Some("the listing failed")
        );
    }

    #[test]
    fn keys_name_files_inside_the_directory_only() {
        let path = |k: &str| object_path(k.as_bytes(), Format::Yaml);
        assert_eq!(
            path("/registry/secrets/default/db").unwrap(),
            ["namespaces", "default", "secrets", "db.yaml"]
        );
        assert_eq!(
            path("/registry/namespaces/kube-system").unwrap(),
            ["cluster", "namespaces", "kube-system.yaml"]
        );
        assert_eq!(
            path("/registry/services/specs/default/kubernetes").unwrap(),
            ["namespaces", "default", "services", "kubernetes.yaml"]
        );
        assert_eq!(
            path("/registry/example.com/widgets/ns/w").unwrap(),
            ["namespaces", "ns", "widgets.example.com", "w.yaml"]
        );
        for bad in [
            "/registry/secrets/../x",
            "/registry/secrets/ns/..",
            "/registry/secrets//x",
            "/registry/secrets/ns/a\u{1b}b",
            "/registry/secrets/ns/a\\b",
            "/registry/secrets/ns/C:",
            "/registry/secrets/a/b/c/d",
            "/registry/x",
            "registry/secrets/ns/a",
        ] {
            assert_eq!(path(bad), None, "{bad}");
        }
        assert_eq!(
            object_path(b"/registry/secrets/ns/\xff", Format::Yaml),
            None
        );
    }
}
