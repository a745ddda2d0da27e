//! Completes a future that needs no runtime (an in-process plugin, warm
//! caches) with one poll, so that no runtime's work is counted: for the
//! allocation tests and the KMS benches.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The future's output; panics if it waited (nothing here does I/O).
pub fn ready<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a future waited, but nothing here does I/O"),
    }
}
