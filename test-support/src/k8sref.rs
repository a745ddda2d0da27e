//! The Go reference of the apiserver's transformers (`k8sref`, built by
//! `../shared/tools/k8sref/build.sh` beside the repository), for the tests
//! that run it.

use std::path::PathBuf;

use crate::gate::require;
use crate::paths::shared_dir;

/// The Go reference binary: `$K8SREF`, or
/// `../shared/tools/k8sref/bin/k8sref`. Panics when neither is there: the
/// tests that call it are `#[ignore = "needs the Go reference ..."]`.
pub fn k8sref() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("K8SREF") {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(shared_dir().join("tools/k8sref/bin/k8sref"));
    let found = candidates.iter().find(|p| p.is_file()).cloned();
    require(
        found,
        &format!("the Go reference (k8sref, looked for in {candidates:?})"),
        "build it with ../shared/tools/k8sref/build.sh, or set K8SREF",
    )
}
