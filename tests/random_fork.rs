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

/// One test, so that no other test thread runs while this one forks.
#[test]
fn forked_children_never_repeat_their_parents_nonces() {
    a_forked_child_draws_other_nonces_than_its_parent();
    a_forked_child_never_writes_with_its_parents_counter_dek();
}

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

/// In `AES_GCM_KEY` mode a DEK's nonces are a counter: a child forked after
/// the parent made its DEK would count on from the same place with the same
/// key. The child refuses to write with it; the parent goes on.
fn a_forked_child_never_writes_with_its_parents_counter_dek() {
    use k8s_envelope::kms::mock::Base64Kms;
    use k8s_envelope::kms::{DekSourceType, KmsV2Options, KmsV2Provider};
    use k8s_envelope::Provider;
    use std::sync::Arc;

    let options = KmsV2Options::default().with_write_mode(DekSourceType::AesGcmKey);
    let provider = KmsV2Provider::new("v2", Arc::new(Base64Kms), options).expect("provider");
    ready(provider.refresh()).expect("refresh");
    let key = "/registry/secrets/ns/a";
    let write = || ready(provider.encrypt(b"same plaintext", key.into()));
    write().expect("the parent's DEK writes");

    match fork::fork().expect("fork") {
        Fork::Child => {
            // 0: refused, as it must be; 1: wrote with the parent's DEK.
            std::process::exit(i32::from(write().is_ok()));
        }
        Fork::Parent(child) => {
            let status = fork::waitpid(child).expect("waitpid");
            assert_eq!(status, 0, "the child wrote with its parent's DEK");
            write().expect("the parent still writes");
        }
    }
}

use k8s_envelope_test_support::ready;
