//! Audit events: one per transform, never the value.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::{Error, ProviderKind};

/// Which way a value went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Plaintext to stored value (`to_storage`).
    Encrypt,
    /// Stored value to plaintext (`from_storage`).
    Decrypt,
}

impl Operation {
    /// `encrypt` or `decrypt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
        }
    }

    /// The apiserver's `transformation_type` label.
    pub fn transformation_type(self) -> &'static str {
        match self {
            Self::Encrypt => "to_storage",
            Self::Decrypt => "from_storage",
        }
    }
}

/// One transform, as an audit record. Never holds the value.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuditEvent<'a> {
    /// When the transform finished.
    pub time: SystemTime,
    /// Which way.
    pub operation: Operation,
    /// The group-resource.
    pub resource: &'a str,
    /// The etcd key.
    pub storage_key: &'a [u8],
    /// The kind of provider whose prefix the value has; `None` for a
    /// prefix no provider here reads (`"unknown"` in the JSON).
    pub provider: Option<ProviderKind>,
    /// The key name, KMS v1 provider name, or `sha256:` hash of the KMS v2
    /// key ID.
    pub key: Option<&'a str>,
    /// For successful reads: whether the value should be re-encrypted.
    pub stale: Option<bool>,
    /// The error, when the transform failed (messages hold no secrets).
    pub error: Option<&'a Error>,
    /// How long the transform took.
    pub duration: Duration,
}

impl AuditEvent<'_> {
    /// The event as one JSON object (no trailing newline).
    pub fn to_json(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{{\"time\":\"{}\"",
            chrono_free::Rfc3339::from(self.time)
        );
        json_field(&mut out, "operation", Some(self.operation.as_str()));
        json_field(&mut out, "resource", Some(self.resource));
        json_field(
            &mut out,
            "storage_key",
            Some(&String::from_utf8_lossy(self.storage_key)),
        );
        json_field(
            &mut out,
            "provider",
            Some(self.provider.map_or("unknown", ProviderKind::as_str)),
        );
        json_field(&mut out, "key", self.key);
        let stale = match self.stale {
            Some(true) => "true",
            Some(false) => "false",
            None => "null",
        };
        let _ = write!(out, ",\"stale\":{stale}");
        json_field(
            &mut out,
            "outcome",
            Some(if self.error.is_none() { "ok" } else { "error" }),
        );
        if let Some(error) = self.error {
            json_field(&mut out, "error", Some(&error.to_string()));
        }
        let micros = u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX);
        let _ = write!(out, ",\"duration_us\":{micros}}}");
        out
    }
}

/// Appends `,"name":value` with `value` as a JSON string, or `null`.
fn json_field(out: &mut String, name: &str, value: Option<&str>) {
    use std::fmt::Write as _;
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    let Some(value) = value else {
        out.push_str("null");
        return;
    };
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // Every control character (DEL and C1 too) and the marks that
            // reorder or hide text, so that `cat` of the log shows what
            // the store holds (JSON allows them raw; a terminal acts on them).
            c if c.is_control() || crate::store::reorders_or_hides(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod json_tests {
    use super::json_field;

    /// A key from the store with a terminal escape, DEL, a C1 control and a
    /// direction override: each written as `\uXXXX`, and still JSON that
    /// reads back to the same text.
    #[test]
    fn controls_and_direction_marks_are_escaped() {
        let key = "/registry/secrets/ns/a\u{1b}[2J\u{7f}\u{85}\u{202e}b\"\\é";
        let mut out = String::from("{\"v\":1");
        json_field(&mut out, "key", Some(key));
        out.push('}');
        assert_eq!(
            out,
            r#"{"v":1,"key":"/registry/secrets/ns/a\u001b[2J\u007f\u0085\u202eb\"\\é"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(back["key"], key);
    }
}

/// Receives one event per observed transform.
///
/// `record` runs on the request's path: it must be quick and must not block
/// for long (hand the event to a background writer, as
/// [`JsonLinesAuditSink`] does).
pub trait AuditSink: Send + Sync {
    /// Records one event.
    fn record(&self, event: &AuditEvent<'_>);
}

/// Appends events to a file, one JSON object per line.
///
/// `record` formats the event on the caller's thread and appends it to an
/// in-memory batch (a mutex and a copy, no system call); a background thread
/// writes the batch out every 20 ms, or at once when it passes 1 MiB. A
/// batch that reaches 16 MiB (the disk cannot keep up) makes callers wait
/// for the writer rather than lose events. [`flush`](Self::flush) waits
/// until everything recorded so far is on its way to the disk; dropping the
/// sink writes the rest and closes the file.
pub struct JsonLinesAuditSink {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<io::Result<()>>>>,
}

/// The batch between callers and the writer thread.
struct Shared {
    state: Mutex<Batch>,
    /// Wakes the writer (a big batch, a flush, closing).
    wake_writer: Condvar,
    /// Wakes callers waiting for room or for a flush.
    written: Condvar,
}

#[derive(Default)]
struct Batch {
    lines: Vec<u8>,
    /// Counts completed writes, so a flush can wait for the one after it.
    generation: u64,
    flush_requested: bool,
    closed: bool,
    error: Option<io::ErrorKind>,
}

/// Written out at once past this size.
const EAGER_WRITE: usize = 1 << 20;
/// Callers wait past this size.
const MAX_BATCH: usize = 16 << 20;
/// The longest an event waits in memory.
const WRITE_INTERVAL: Duration = Duration::from_millis(20);

impl JsonLinesAuditSink {
    /// Opens (creating or appending to) `path`, with mode 0600 on Unix.
    ///
    /// # Errors
    ///
    /// The file cannot be opened, or the writer thread cannot start.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(Batch::default()),
            wake_writer: Condvar::new(),
            written: Condvar::new(),
        });
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("k8s-envelope-audit".into())
            .spawn(move || write_batches(file, &writer_shared))?;
        Ok(Self {
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Waits until every event recorded so far is written to the file.
    ///
    /// # Errors
    ///
    /// A write failed since the sink was created.
    pub fn flush(&self) -> io::Result<()> {
        let mut batch = self.shared.lock();
        let target = batch.generation + 1;
        batch.flush_requested = true;
        self.shared.wake_writer.notify_one();
        while batch.generation < target && !batch.closed {
            batch = self
                .shared
                .written
                .wait(batch)
                .unwrap_or_else(|e| e.into_inner());
        }
        match batch.error {
            Some(kind) => Err(io::Error::new(kind, "writing the audit log failed")),
            None => Ok(()),
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Batch> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl AuditSink for JsonLinesAuditSink {
    fn record(&self, event: &AuditEvent<'_>) {
        let mut line = event.to_json();
        line.push('\n');
        let mut batch = self.shared.lock();
        while batch.lines.len() >= MAX_BATCH && !batch.closed {
            self.shared.wake_writer.notify_one();
            batch = self
                .shared
                .written
                .wait(batch)
                .unwrap_or_else(|e| e.into_inner());
        }
        batch.lines.extend_from_slice(line.as_bytes());
        if batch.lines.len() >= EAGER_WRITE {
            self.shared.wake_writer.notify_one();
        }
    }
}

impl Drop for JsonLinesAuditSink {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake_writer.notify_one();
        if let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if let Ok(Err(e)) = writer.join() {
                tracing::error!(error = %e, "writing the audit log failed");
            }
        }
    }
}

impl std::fmt::Debug for JsonLinesAuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesAuditSink").finish_non_exhaustive()
    }
}

/// The writer thread: every interval (or when woken), takes the batch and
/// writes it, until the sink is closed and drained.
fn write_batches(file: File, shared: &Shared) -> io::Result<()> {
    let mut out = BufWriter::new(file);
    let mut lines = Vec::new();
    loop {
        let closed = {
            let mut batch = shared.lock();
            if batch.lines.is_empty() && !batch.flush_requested && !batch.closed {
                batch = shared
                    .wake_writer
                    .wait_timeout(batch, WRITE_INTERVAL)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::swap(&mut lines, &mut batch.lines);
            batch.flush_requested = false;
            batch.closed
        };
        let result = out.write_all(&lines).and_then(|()| out.flush());
        lines.clear();
        let mut batch = shared.lock();
        if let Err(e) = &result {
            batch.error.get_or_insert(e.kind());
        }
        batch.generation += 1;
        shared.written.notify_all();
        if closed && batch.lines.is_empty() {
            return result;
        }
    }
}

/// RFC 3339 UTC timestamps without a date-time dependency.
mod chrono_free {
    use std::fmt;
    use std::time::{SystemTime, UNIX_EPOCH};

    pub(super) struct Rfc3339 {
        secs: i64,
        micros: u32,
    }

    impl From<SystemTime> for Rfc3339 {
        fn from(time: SystemTime) -> Self {
            let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
            Self {
                secs: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
                micros: since.subsec_micros(),
            }
        }
    }

    impl fmt::Display for Rfc3339 {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let days = self.secs.div_euclid(86_400);
            let rem = self.secs.rem_euclid(86_400);
            let (year, month, day) = civil_from_days(days);
            write!(
                f,
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60,
                self.micros
            )
        }
    }

    /// Days since 1970-01-01 to a proleptic Gregorian date (Howard
    /// Hinnant's algorithm).
    fn civil_from_days(days: i64) -> (i64, u32, u32) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }

    #[cfg(test)]
    mod tests {
        use std::time::{Duration, UNIX_EPOCH};

        use super::Rfc3339;

        #[test]
        fn formats_utc() {
            let t = UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456);
            assert_eq!(Rfc3339::from(t).to_string(), "2026-11-18T11:06:40.123456Z");
            assert_eq!(
                Rfc3339::from(UNIX_EPOCH).to_string(),
                "1970-01-01T00:00:00.000000Z"
            );
            let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
            assert_eq!(
                Rfc3339::from(leap).to_string(),
                "2000-02-29T00:00:00.000000Z"
            );
        }
    }
}
