//! The members of an etcd cluster, one connection each, and the rules for
//! moving between them: a call that finds its member gone goes to the next
//! one, with a backoff, until a member answers or none has for the outage
//! limit.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

/// The first wait between two attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One connection per member, and which one calls go to.
pub(super) struct Members {
    channels: Vec<Channel>,
    /// The member calls go to, until it stops answering.
    current: AtomicUsize,
    /// How long calls keep trying while no member answers.
    outage_limit: Duration,
    /// How long one attempt may take before the next member is tried.
    attempt_timeout: Duration,
    retries: AtomicU64,
    failovers: AtomicU64,
}

/// What failing over has cost so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EtcdRetries {
    /// Calls tried again after a member did not answer (or answered that it
    /// could not serve: no leader, timed out).
    pub retries: u64,
    /// Times calls moved to another member.
    pub failovers: u64,
}

/// Whether a failed attempt may be tried again, on another member: the
/// member is unreachable, or could not serve (no leader, a timeout inside
/// etcd), or did not answer in time.
pub(super) fn is_retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
    ) || (status.code() == tonic::Code::Unknown && status.message().contains("transport error"))
}

impl Members {
    pub(super) fn new(
        channels: Vec<Channel>,
        outage_limit: Duration,
        attempt_timeout: Duration,
    ) -> Self {
        Self {
            channels,
            current: AtomicUsize::new(0),
            outage_limit,
            attempt_timeout,
            retries: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
        }
    }

    pub(super) fn retries(&self) -> EtcdRetries {
        EtcdRetries {
            retries: self.retries.load(Ordering::Relaxed),
            failovers: self.failovers.load(Ordering::Relaxed),
        }
    }

    /// Calls `f` with the current member's channel; on a retryable failure
    /// moves to the next member and tries again, until `f` answers, fails
    /// for good, or no member has answered for `limit` (by default the
    /// outage limit).
    pub(super) async fn call<T, F, Fut>(
        &self,
        limit: Option<Duration>,
        mut f: F,
    ) -> Result<T, tonic::Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let limit = limit.unwrap_or(self.outage_limit);
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.once(&mut f).await {
                Err(status) if is_retryable(&status) && started.elapsed() < limit => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff.min(limit.saturating_sub(started.elapsed()))).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                result => return result,
            }
        }
    }

    /// One attempt on the current member; after a retryable failure the
    /// next call goes to the next member.
    pub(super) async fn once<T, F, Fut>(&self, f: &mut F) -> Result<T, tonic::Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let member = self.current.load(Ordering::Relaxed) % self.channels.len();
        let attempt = tokio::time::timeout(self.attempt_timeout, f(self.channels[member].clone()));
        let status = match attempt.await {
            Ok(result) => match result {
                Err(status) if is_retryable(&status) => status,
                result => return result,
            },
            Err(_) => tonic::Status::deadline_exceeded(format!(
                "no answer within {:?}",
                self.attempt_timeout
            )),
        };
        if self.channels.len() > 1
            && self
                .current
                .compare_exchange(member, member + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.failovers.fetch_add(1, Ordering::Relaxed);
        }
        Err(status)
    }

    /// Counts a retry made by a caller of [`once`](Self::once).
    pub(super) fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
}
