//! Every KEK of the kit, served by [`PluginServer`], passes kms-check
//! ([`crate::check`]): what kube-apiserver requires of a plugin, both APIs.

use std::time::Duration;

use super::{Base64MockKek, Keyring, LocalKek};
use crate::check::tests::check;
use crate::check::{CheckedApi, Outcome};
use k8s_envelope::{private_file, SecretKey};

const TIMEOUT: Duration = Duration::from_secs(3);

fn local_kek(dir: &std::path::Path) -> LocalKek {
    let path = dir.join("kek");
    let key = SecretKey::generate(32).expect("key");
    private_file::write(&path, format!("{}\n", key.to_base64().as_str()).as_bytes()).expect("kek");
    LocalKek::open(&path)
        .expect("open")
        .with_keyring(Keyring::beside(&path))
        .expect("keyring")
}

#[test]
fn local_kek_passes_every_check_strictly() {
    for api in [CheckedApi::V2, CheckedApi::V1] {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = check(local_kek(dir.path()), api, TIMEOUT);
        assert!(report.passed(true), "{api}: {report:#?}");
    }
}

#[test]
fn local_kek_after_a_rotation_passes_every_check_strictly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kek");
    let kek = local_kek(dir.path());
    Keyring::beside(&path).rotate(&path).expect("rotate");
    kek.reload().expect("reload");
    let report = check(kek, CheckedApi::V2, TIMEOUT);
    assert!(report.passed(true), "{report:#?}");
}

#[test]
fn base64_mock_fails_with_the_dek_in_clear_and_warns_that_it_does_not_authenticate() {
    for api in [CheckedApi::V2, CheckedApi::V1] {
        let report = check(Base64MockKek::new(), api, TIMEOUT);
        assert!(!report.passed(false), "{api}: {report:#?}");
        assert_eq!(
            report.check("encrypt.dek_concealed").map(|c| c.outcome),
            Some(Outcome::Fail)
        );
        assert_eq!(
            report.check("corrupted_ciphertext").map(|c| c.outcome),
            Some(Outcome::Warn)
        );
    }
}
