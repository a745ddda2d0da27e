//! Audit events: one per transform, never the value.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::Error;

/// Which way a value went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
pub struct AuditEvent<'a> {
    /// When the transform finished.
    pub time: SystemTime,
    /// Which way.
    pub operation: Operation,
    /// The group-resource.
    pub resource: &'a str,
    /// The etcd key.
    pub storage_key: &'a [u8],
    /// `identity`, `aescbc`, `aesgcm`, `secretbox`, `kms v1`, `kms v2` or
    /// `unknown`.
    pub provider: &'static str,
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
        let time: chrono_free::Rfc3339 = self.time.into();
        let mut object = serde_json::Map::new();
        object.insert("time".into(), time.to_string().into());
        object.insert("operation".into(), self.operation.as_str().into());
        object.insert("resource".into(), self.resource.into());
        object.insert(
            "storage_key".into(),
            String::from_utf8_lossy(self.storage_key)
                .into_owned()
                .into(),
        );
        object.insert("provider".into(), self.provider.into());
        object.insert("key".into(), self.key.into());
        object.insert("stale".into(), self.stale.into());
        object.insert(
            "outcome".into(),
            if self.error.is_none() { "ok" } else { "error" }.into(),
        );
        if let Some(error) = self.error {
            object.insert("error".into(), error.to_string().into());
        }
        object.insert(
            "duration_us".into(),
            u64::try_from(self.duration.as_micros())
                .unwrap_or(u64::MAX)
                .into(),
        );
        serde_json::Value::Object(object).to_string()
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
/// Events are formatted on the caller's thread (about a microsecond) and
/// written by a background thread through a bounded queue of 65,536 lines; a
/// full queue makes callers wait rather than lose events.
/// [`flush`](Self::flush) waits until everything recorded so far is written;
/// dropping the sink flushes and closes the file.
pub struct JsonLinesAuditSink {
    sender: Mutex<Option<SyncSender<Message>>>,
    writer: Mutex<Option<JoinHandle<io::Result<()>>>>,
}

enum Message {
    Line(String),
    Flush(SyncSender<io::Result<()>>),
}

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
        let (sender, receiver) = mpsc::sync_channel(65_536);
        let writer = std::thread::Builder::new()
            .name("k8s-envelope-audit".into())
            .spawn(move || write_lines(file, receiver))?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Waits until every event recorded so far is written to the file.
    ///
    /// # Errors
    ///
    /// The last write or flush failed, or the writer is gone.
    pub fn flush(&self) -> io::Result<()> {
        let (done, wait) = mpsc::sync_channel(1);
        self.send(Message::Flush(done))?;
        wait.recv()
            .map_err(|_| io::Error::other("the audit writer stopped"))?
    }

    fn send(&self, message: Message) -> io::Result<()> {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        sender
            .ok_or_else(|| io::Error::other("the audit sink is closed"))?
            .send(message)
            .map_err(|_| io::Error::other("the audit writer stopped"))
    }
}

impl AuditSink for JsonLinesAuditSink {
    fn record(&self, event: &AuditEvent<'_>) {
        let mut line = event.to_json();
        line.push('\n');
        if self.send(Message::Line(line)).is_err() {
            tracing::error!("audit event lost: the audit writer stopped");
        }
    }
}

impl Drop for JsonLinesAuditSink {
    fn drop(&mut self) {
        // Closing the channel ends the writer after it drains the queue.
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
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

fn write_lines(file: File, receiver: Receiver<Message>) -> io::Result<()> {
    let mut out = BufWriter::new(file);
    let mut result = Ok(());
    while let Ok(first) = receiver.recv() {
        // Take everything queued, then write it out: the log trails the
        // requests by little, at one write per burst.
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(line) => {
                    if let Err(e) = out.write_all(line.as_bytes()) {
                        result = Err(e);
                    }
                }
                Message::Flush(done) => {
                    let flushed = out.flush();
                    let outcome = match (&result, flushed) {
                        (Err(e), _) => Err(io::Error::new(e.kind(), e.to_string())),
                        (Ok(()), flushed) => flushed,
                    };
                    let _ = done.send(outcome);
                }
            }
            next = receiver.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            result = Err(e);
        }
    }
    out.flush()?;
    result
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
