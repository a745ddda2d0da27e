//! kubectl, as a reader of the files the CLI writes: `kubectl label --local
//! -f FILE k=v -o json` reads a file with Go's YAML reader and needs no
//! cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::gate::require;

/// The kubectl binary on the PATH; fails, saying so, when there is none
/// (the tests that use it are `#[ignore = "needs kubectl"]`).
pub fn kubectl() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kubectl"))
            .find(|path| path.is_file())
    });
    require(
        found,
        "kubectl",
        "install kubectl (https://kubernetes.io/docs/tasks/tools/)",
    )
}

/// The objects of `file` as kubectl reads them, each with the label `k=v`
/// added (what `kubectl label --local` needs to print them).
pub fn read_back(file: &Path) -> Vec<serde_json::Value> {
    let scratch = tempfile::tempdir().expect("a HOME for kubectl");
    let out = Command::new(kubectl())
        .args(["label", "--local", "-o", "json", "-f"])
        .arg(file)
        .arg("k=v")
        .env("HOME", scratch.path())
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl could not read {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<serde_json::Value>()
        .map(|value| {
            let mut value = value.expect("kubectl printed JSON");
            if let Some(labels) = value["metadata"]["labels"].as_object_mut() {
                labels.remove("k");
                if labels.is_empty() {
                    value["metadata"]
                        .as_object_mut()
                        .expect("metadata")
                        .remove("labels");
                }
            }
            value
        })
        .collect()
}
