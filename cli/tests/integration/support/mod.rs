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

/// The `kms-plugin-local` binary (its own package), built beside this test
/// binary: `cargo test` at the top builds it, as its package's own tests
/// need it.
pub fn kms_plugin_local() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/<test binary> -> target/<profile>/
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary is in target/<profile>/deps");
        let bin = profile_dir.join("kms-plugin-local");
        assert!(
            bin.is_file(),
            "{} is missing: build it first (`cargo build -p kms-plugin-local`; `cargo test` at the top of the workspace builds it)",
            bin.display()
        );
        bin.to_string_lossy().into_owned()
    })
}
