//! Helpers shared by the CLI package's integration tests.

#[path = "../../../../tests/common/etcd_server.rs"]
pub mod etcd_server;
pub mod k8sref;

use std::path::{Path, PathBuf};

/// The workspace's root, where `tests/data` is.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the CLI package is inside the workspace")
        .to_path_buf()
}
