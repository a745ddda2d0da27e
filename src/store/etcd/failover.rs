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

/// `future`'s output, or `None` when it takes longer than `limit` (a timer
/// of its own, so that any executor can poll the store's futures).
async fn within<F: std::future::Future>(limit: Duration, future: F) -> Option<F::Output> {
    let future = std::pin::pin!(future);
    match futures_util::future::select(future, futures_timer::Delay::new(limit)).await {
        futures_util::future::Either::Left((output, _)) => Some(output),
        futures_util::future::Either::Right(((), _)) => None,
    }
}

/// Whether a failed attempt may be tried again, on another member: the
/// member is unreachable, or could not serve (no leader, a timeout inside
/// etcd), or did not answer in time; or the connection broke under the call
/// (the transport's own errors, told from etcd's answers by the error they
/// carry: a status etcd sent has none).
pub(super) fn is_retryable(status: &tonic::Status) -> bool {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => true,
        tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Cancelled => {
            std::error::Error::source(status).is_some()
        }
        _ => false,
    }
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
        f: F,
    ) -> Result<T, tonic::Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        self.call_within(limit, self.attempt_timeout, f).await
    }

    /// [`call`](Self::call), each attempt with `attempt_timeout`.
    pub(super) async fn call_within<T, F, Fut>(
        &self,
        limit: Option<Duration>,
        attempt_timeout: Duration,
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
            match self.once_within(attempt_timeout, &mut f).await {
                Err(status) if is_retryable(&status) && started.elapsed() < limit => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    futures_timer::Delay::new(backoff.min(limit.saturating_sub(started.elapsed())))
                        .await;
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
        self.once_within(self.attempt_timeout, f).await
    }

    /// [`once`](Self::once), with an attempt timeout of its own (a call
    /// whose answer grows with the store, such as a keys-only listing).
    pub(super) async fn once_within<T, F, Fut>(
        &self,
        attempt_timeout: Duration,
        f: &mut F,
    ) -> Result<T, tonic::Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        // The counter only grows; the member is its remainder, and moving
        // on is a compare-and-swap of the counter itself, so that calls
        // failing at once move on once.
        let turn = self.current.load(Ordering::Relaxed);
        let member = turn % self.channels.len();
        let attempt = f(self.channels[member].clone());
        let status = match within(attempt_timeout, attempt).await {
            Some(result) => match result {
                Err(status) if is_retryable(&status) => status,
                result => return result,
            },
            None => {
                tonic::Status::deadline_exceeded(format!("no answer within {attempt_timeout:?}"))
            }
        };
        if self.channels.len() > 1
            && self
                .current
                .compare_exchange(
                    turn,
                    turn.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the transport makes of a broken connection is tried again;
    /// what etcd answers (a status without an error inside) is not, but for
    /// the codes that say the member could not serve.
    #[test]
    fn transport_failures_and_unavailable_members_are_retried() {
        let broken = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(is_retryable(&tonic::Status::from_error(Box::new(broken))));
        assert!(is_retryable(&tonic::Status::unavailable(
            "etcdserver: no leader"
        )));
        assert!(is_retryable(&tonic::Status::deadline_exceeded("slow")));
        assert!(!is_retryable(&tonic::Status::unknown("etcd said so")));
        assert!(!is_retryable(&tonic::Status::internal("etcd said so")));
        assert!(!is_retryable(&tonic::Status::invalid_argument(
            "bad request"
        )));
        assert!(!is_retryable(&tonic::Status::out_of_range(
            "mvcc: required revision has been compacted"
        )));
    }

    /// Every failed attempt moves calls to the next member, round and
    /// round, however many times the counter passes the number of members.
    #[test]
    fn failing_attempts_move_round_the_members() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let channels = (0..2)
                .map(|_| {
                    tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy()
                })
                .collect();
            let members = Members::new(channels, Duration::ZERO, Duration::from_secs(1));
            let mut seen = Vec::new();
            for _ in 0..7 {
                seen.push(members.current.load(Ordering::Relaxed) % 2);
                let mut fail =
                    |_channel| async { Err::<(), _>(tonic::Status::unavailable("down")) };
                assert!(members.once(&mut fail).await.is_err());
            }
            assert_eq!(seen, [0, 1, 0, 1, 0, 1, 0]);
            assert_eq!(members.retries().failovers, 7);
        });
    }
}
