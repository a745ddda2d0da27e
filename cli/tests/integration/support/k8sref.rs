//! Where the Go reference of the apiserver's transformers (`k8sref`, built
//! by ../shared/tools/k8sref/build.sh, beside the repository) is, for the
//! tests that run it.

use std::path::{Path, PathBuf};

/// The Go reference binary, or `None` (with a message) to skip.
pub fn k8sref() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("K8SREF") {
        candidates.push(PathBuf::from(path));
    }
    candidates
        .push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/k8sref/bin/k8sref"));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Some(found.clone());
    }
    let required = std::env::var("K8S_ENVELOPE_REQUIRE_K8SREF").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "K8S_ENVELOPE_REQUIRE_K8SREF=1 but the k8sref binary is in none of {candidates:?}; \
         build it with shared/tools/k8sref/build.sh"
    );
    eprintln!(
        "SKIPPED: k8sref binary not found in {candidates:?} (set K8SREF, or \
         K8S_ENVELOPE_REQUIRE_K8SREF=1 to make this a failure)"
    );
    None
}
