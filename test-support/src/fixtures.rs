//! The files tests read: `tests/data` in the repository and Kubernetes' API
//! fixtures in `../shared`. A missing fixture fails the test that wanted it.

use std::path::PathBuf;

use crate::paths::{repository_root, shared_dir};

/// The configuration most tests start from: Secrets written with aesgcm
/// `key1` (a fixed test key), identity second so plaintext still reads.
pub const SECRETS_AESGCM_KEY1: &str = "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
      - identity: {}
";

/// `tests/data/<relative>` in the repository.
pub fn data(relative: &str) -> PathBuf {
    let path = repository_root().join("tests/data").join(relative);
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// Every line of every `tests/data/vectors/*.jsonl` file (the Go
/// reference's vectors), parsed, with where it is (`FILE:LINE`).
pub fn vectors() -> Vec<(String, serde_json::Value)> {
    let dir = data("vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/data/vectors")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no vectors in {}", dir.display());
    let mut lines = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&file).expect("a vectors file");
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{name}:{}", number + 1);
            let value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{at}: a line that is not JSON: {e}"));
            lines.push((at, value));
        }
    }
    lines
}

/// Kubernetes' API fixtures (`../shared/k8s-api-testdata/HEAD`): one object
/// of every built-in kind as the apiserver stores it. Panics when missing:
/// a test that reads them must not pass without them.
pub fn api_testdata() -> PathBuf {
    let dir = shared_dir().join("k8s-api-testdata/HEAD");
    assert!(
        dir.is_dir(),
        "{} is missing: Kubernetes' API fixtures, beside the repository (shared/k8s-api-testdata)",
        dir.display()
    );
    dir
}
