//! The calls a check makes: timed, and skipped once one has timed out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::CheckResult;
use k8s_envelope::kms::{KmsErrorKind, KmsFuture};
use k8s_envelope::Error;

/// How many round trips the `concurrency` check runs at once (an apiserver
/// under load has many writes in flight; 16 is a modest number of them).
pub const CONCURRENT_ROUND_TRIPS: usize = 16;

/// Why a call gave no answer to check.
pub(super) enum NoAnswer {
    /// The plugin answered with an error, or not in time: what happened.
    Failed(String),
    /// Not made: an earlier call timed out.
    Skipped(String),
}

impl NoAnswer {
    /// The result of check `id` when the call it needed gave no answer.
    pub(super) fn result(&self, id: &'static str, required: bool) -> CheckResult {
        match self {
            NoAnswer::Failed(detail) if required => CheckResult::required(id, Err(detail.clone())),
            NoAnswer::Failed(detail) => CheckResult::advisory(id, Err(detail.clone())),
            NoAnswer::Skipped(why) => CheckResult::skipped(id, required, why),
        }
    }
}

/// The calls of one check run: their latencies, and whether one timed out.
pub(super) struct Calls {
    timeout: Duration,
    record: Mutex<Record>,
}

#[derive(Default)]
struct Record {
    slowest: Option<(Duration, &'static str)>,
    timed_out: Vec<&'static str>,
}

impl Calls {
    pub(super) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            record: Mutex::new(Record::default()),
        }
    }

    /// Makes the call `method` (a name like `Encrypt`), timing it. Once any
    /// call has timed out, no further call is made.
    pub(super) async fn call<T>(
        &self,
        method: &'static str,
        call: KmsFuture<'_, T>,
    ) -> Result<T, NoAnswer> {
        if let Some(first) = self.first_timed_out() {
            return Err(NoAnswer::Skipped(format!(
                "{first} did not answer within {}",
                seconds(self.timeout)
            )));
        }
        let started = Instant::now();
        let answer = call.await;
        let elapsed = started.elapsed();
        let mut record = self.lock();
        if record.slowest.is_none_or(|(slowest, _)| elapsed > slowest) {
            record.slowest = Some((elapsed, method));
        }
        match answer {
            Ok(value) => Ok(value),
            Err(e) => {
                if is_timeout(&e) {
                    record.timed_out.push(method);
                    return Err(NoAnswer::Failed(format!(
                        "{method} did not answer within {} (the call timeout)",
                        seconds(self.timeout)
                    )));
                }
                Err(NoAnswer::Failed(format!("{method} failed: {}", reason(&e))))
            }
        }
    }

    /// Makes a call that neither counts towards `latency` nor stops later
    /// calls when it times out (the 1 MiB round trip, which the apiserver
    /// never makes).
    pub(super) async fn call_aside<T>(
        &self,
        method: &'static str,
        call: KmsFuture<'_, T>,
    ) -> Result<T, NoAnswer> {
        if let Some(first) = self.first_timed_out() {
            return Err(NoAnswer::Skipped(format!(
                "{first} did not answer within {}",
                seconds(self.timeout)
            )));
        }
        call.await.map_err(|e| {
            if is_timeout(&e) {
                NoAnswer::Failed(format!(
                    "{method} did not answer within {}",
                    seconds(self.timeout)
                ))
            } else {
                NoAnswer::Failed(format!("{method} failed: {}", reason(&e)))
            }
        })
    }

    /// The `latency` check: every call answered within the timeout, and the
    /// slowest took less than half of it.
    pub(super) fn latency(&self) -> CheckResult {
        let record = self.lock();
        let timeout = seconds(self.timeout);
        if let Some(first) = record.timed_out.first() {
            return CheckResult::required(
                "latency",
                Err(format!(
                    "{first} did not answer within {timeout}; the apiserver gives up after its provider's timeout"
                )),
            );
        }
        let Some((slowest, method)) = record.slowest else {
            return CheckResult::skipped("latency", true, "no call was made");
        };
        let detail = format!(
            "the slowest call, {method}, took {} (timeout {timeout})",
            millis(slowest)
        );
        if slowest >= self.timeout / 2 {
            CheckResult::new(
                "latency",
                true,
                super::Outcome::Warn,
                format!("{detail}: half the timeout or more, close to failing under load"),
            )
        } else {
            CheckResult::required("latency", Ok(detail))
        }
    }

    fn first_timed_out(&self) -> Option<&'static str> {
        self.lock().timed_out.first().copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn is_timeout(e: &Error) -> bool {
    matches!(e, Error::Kms(kms) if matches!(kms.kind(), KmsErrorKind::Timeout(_)))
}

/// What went wrong, without the endpoint and method (the report names them).
fn reason(e: &Error) -> String {
    match e {
        Error::Kms(kms) => match kms.kind() {
            KmsErrorKind::Unavailable(detail) => format!("unavailable: {detail}"),
            KmsErrorKind::Status { code, message } => {
                format!("{code:?} ({}): {message}", code.number())
            }
            KmsErrorKind::InvalidAnswer(detail) => format!("invalid answer: {detail}"),
            _ => kms.to_string(),
        },
        other => other.to_string(),
    }
}

/// `3s`, `1.5s`.
pub(super) fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// `0.42 ms`, `1234.5 ms`.
pub(super) fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
