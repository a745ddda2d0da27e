//! Nonces stay unpredictable across `fork`: a child process does not continue
//! its parent's random stream.
//!
//! The parent warms its thread's generator, forks, and both processes then
//! write the same plaintext. Were the child's generator a copy of the
//! parent's, both nonces (and so both stored values) would be equal.

#![cfg(unix)]

use fork::Fork;
use k8s_envelope::{AesGcm, BlockingProvider, NamedKey, SecretKey};

const NONCE: std::ops::Range<usize> = 23..35; // after `k8s:enc:aesgcm:v1:k1:`

#[test]
fn a_forked_child_draws_other_nonces_than_its_parent() {
    let aesgcm = AesGcm::new(vec![NamedKey::new("k1", SecretKey::new(vec![9; 32]))]).expect("key");
    let write = || {
        aesgcm
            .encrypt_blocking(b"same plaintext", "/registry/secrets/ns/a".into())
            .expect("encrypt")
    };
    // Seed this thread's generator before the fork.
    let _ = write();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("child");

    match fork::fork().expect("fork") {
        Fork::Child => {
            // Only this thread exists here: write and leave without unwinding.
            let ok = std::fs::write(&path, write()).is_ok();
            std::process::exit(if ok { 0 } else { 1 });
        }
        Fork::Parent(child) => {
            let parent = write();
            let status = fork::waitpid(child).expect("waitpid");
            assert_eq!(status, 0, "child exit status");
            let child = std::fs::read(&path).expect("child's value");
            assert_eq!(parent.len(), child.len());
            assert_ne!(
                parent[NONCE], child[NONCE],
                "the child reused its parent's random stream"
            );
        }
    }
}
