//! Helpers shared by the library's integration tests (mounted as
//! `support` by `tests/integration/main.rs`; the separate test binaries,
//! the example and the CLI's tests mount the files they need by path).

#![allow(dead_code)]

pub mod etcd_server;
#[cfg(feature = "grpc")]
pub mod fake_plugin;
#[cfg(feature = "observe")]
pub mod observe;
pub mod ready;

/// Runs `future` on a fresh current-thread Tokio runtime with I/O and timers.
#[cfg(feature = "grpc")]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// A two-worker Tokio runtime with I/O and timers.
#[cfg(feature = "grpc")]
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
