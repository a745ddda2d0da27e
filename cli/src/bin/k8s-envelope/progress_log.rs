//! A long walk's progress as plain lines on stderr when stderr is not a
//! terminal (a job's log, where a progress bar draws nothing): every 10 s,
//! the values done, the rate, and, when the store can count the prefix,
//! the share done and an estimate of the time left.
//!
//! `K8S_ENVELOPE_PROGRESS_INTERVAL_MS` changes the interval (at least 10 ms;
//! the tests use it so as not to wait 10 s).

use std::io::IsTerminal as _;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a line is printed.
const INTERVAL: Duration = Duration::from_secs(10);

/// Prints progress lines until dropped.
pub struct ProgressLog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressLog {
    /// Prints `command`'s progress, `done()` values out of `total`, every
    /// interval, unless stderr is a terminal (where the command draws its
    /// own bar, or the operator watches the summary come).
    pub fn start(
        command: &'static str,
        total: Option<u64>,
        done: impl Fn() -> u64 + Send + 'static,
    ) -> Self {
        if std::io::stderr().is_terminal() {
            return Self {
                stop: None,
                thread: None,
            };
        }
        let interval = std::env::var("K8S_ENVELOPE_PROGRESS_INTERVAL_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(INTERVAL, Duration::from_millis)
            .max(Duration::from_millis(10));
        let (stop, stopped) = mpsc::channel::<()>();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            // Wakes every interval until the sender is dropped.
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                eprintln!(
                    "k8s-envelope: {command}: {}",
                    line(done(), total, started.elapsed())
                );
            }
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for ProgressLog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `1200 of 3000 values (40%) in 30 s, 40/s, about 45 s left`.
fn line(done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    let mut line = match total {
        Some(total) if total > 0 => format!(
            "{done} of {total} values ({}%)",
            (done.min(total) * 100) / total
        ),
        _ => format!("{done} values"),
    };
    line.push_str(&format!(" in {} s, {rate:.0}/s", elapsed.as_secs()));
    if let Some(total) = total.filter(|t| *t > done) {
        if rate > 0.0 {
            let left = (total - done) as f64 / rate;
            line.push_str(&format!(", about {left:.0} s left"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_counts_rate_and_estimate() {
        assert_eq!(
            line(1200, Some(3000), Duration::from_secs(30)),
            "1200 of 3000 values (40%) in 30 s, 40/s, about 45 s left"
        );
        assert_eq!(
            line(1200, None, Duration::from_secs(30)),
            "1200 values in 30 s, 40/s"
        );
        assert_eq!(
            line(0, Some(10), Duration::from_secs(10)),
            "0 of 10 values (0%) in 10 s, 0/s"
        );
        // A store that counted fewer than were read (keys added meanwhile).
        assert_eq!(
            line(12, Some(10), Duration::from_secs(4)),
            "12 of 10 values (100%) in 4 s, 3/s"
        );
    }
}
