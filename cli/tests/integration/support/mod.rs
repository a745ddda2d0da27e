//! Helpers shared by the CLI package's integration tests.

#[path = "../../../../tests/support/etcd_server.rs"]
pub mod etcd_server;
pub mod k8sref;
#[path = "../../../../tests/support/peak_memory.rs"]
pub mod peak_memory;
pub mod plugin_process;
pub mod process;
pub mod slow_kek;

use std::path::{Path, PathBuf};

/// A two-worker Tokio runtime with I/O and timers.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The workspace's root, where `tests/data` is.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the CLI package is inside the workspace")
        .to_path_buf()
}
