//! Where things are: the repository, `../shared` beside it, and the binaries
//! cargo built.

use std::path::{Path, PathBuf};

/// The workspace's root (where `tests/data` is).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support is inside the workspace")
        .to_path_buf()
}

/// `../shared` beside the repository: Kubernetes' API fixtures and the Go
/// reference's sources.
pub fn shared_dir() -> PathBuf {
    repository_root().join("../shared")
}

/// A binary of another package of the workspace, built beside the running
/// test binary (`target/<profile>/NAME`): `cargo test` at the top builds
/// every member's binaries. Panics, saying how to build it, when missing.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary> or target/<profile>/examples/<example>.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/<dir>");
    let binary = profile_dir.join(name);
    assert!(
        binary.is_file(),
        "{} is missing: build it first (`cargo build -p {name}`; `cargo test` at the top of the workspace builds it)",
        binary.display()
    );
    binary
}
