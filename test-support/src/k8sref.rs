//! The Go reference of the apiserver's transformers (`k8sref`, built by
//! `../shared/tools/k8sref/build.sh` beside the repository), for the tests
//! that run it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// `k8sref encrypt` or `k8sref decrypt` (`command`) with `config`, of JSON
/// Lines requests (`{"resource", "aad", "plaintext_b64"}` to encrypt,
/// `{"resource", "aad", "stored_b64"}` to decrypt): its answers, one per
/// request, in order.
pub fn transform_lines(
    command: &str,
    config: &Path,
    lines: &[serde_json::Value],
) -> Vec<serde_json::Value> {
    let mut child = Command::new(k8sref())
        .args([command, "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run k8sref");
    let mut input = Vec::new();
    for line in lines {
        input.extend_from_slice(line.to_string().as_bytes());
        input.push(b'\n');
    }
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("k8sref");
    writer.join().expect("writer").expect("write to k8sref");
    assert!(
        out.status.success(),
        "k8sref {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("k8sref JSON line"))
        .collect();
    assert_eq!(answers.len(), lines.len());
    answers
}
