//! Rotation to a second key label: the old values still read, as stale,
//! through the same state machine as the apiserver's (a KMS v2 provider
//! built from the configuration); a restart reads every value; a retired
//! (deleted) key's values no longer read.

use k8s_envelope::kms::GrpcKmsFactory;
use k8s_envelope::EncryptionConfiguration;

use crate::interop::config;
use crate::plugin::{rt, Plugin};
use k8s_envelope_test_support::softhsm::SoftHsm;

/// Reads each `(key, stored, plaintext)` through a freshly built provider
/// (an apiserver just started): whether each was stale.
fn read_all(plugin: &Plugin, values: &[(String, Vec<u8>, Vec<u8>)]) -> Vec<bool> {
    let config = EncryptionConfiguration::from_yaml(config(plugin).as_bytes()).expect("config");
    let kms = GrpcKmsFactory::new();
    let transformers = config.build_with_kms(&kms).expect("build");
    rt().block_on(async {
        kms.refresh_all().await.expect("healthy");
        let transformer = transformers.for_resource("secrets");
        let mut stale = Vec::new();
        for (key, stored, plain) in values {
            let read = transformer
                .decrypt(stored, key.as_str().into())
                .await
                .expect("decrypt");
            assert_eq!(&read.plaintext[..], &plain[..]);
            stale.push(read.stale);
        }
        stale
    })
}

fn write_some(plugin: &Plugin, tag: &str, n: usize) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let config = EncryptionConfiguration::from_yaml(config(plugin).as_bytes()).expect("config");
    let kms = GrpcKmsFactory::new();
    let transformers = config.build_with_kms(&kms).expect("build");
    rt().block_on(async {
        kms.refresh_all().await.expect("healthy");
        let transformer = transformers.for_resource("secrets");
        let mut out = Vec::new();
        for i in 0..n {
            let key = format!("/registry/secrets/default/{tag}-{i}");
            let plain = format!("{tag} value {i}").into_bytes();
            let stored = transformer
                .encrypt(&plain, key.as_str().into())
                .await
                .expect("encrypt");
            out.push((key, stored, plain));
        }
        out
    })
}

#[test]
#[ignore = "needs SoftHSM2 (apt-get install softhsm2 opensc)"]
fn a_new_label_writes_and_the_old_values_read_as_stale_across_restarts() {
    let hsm = SoftHsm::new_token();
    let first = Plugin::start(&hsm, "kek1", &["--create-key"]);
    let old = write_some(&first, "old", 20);
    assert!(read_all(&first, &old).iter().all(|stale| !stale));
    assert!(first.terminate().success());

    // Rotate: a restart with a new label.
    let second = Plugin::start(&hsm, "kek2", &["--create-key"]);
    assert!(
        read_all(&second, &old).iter().all(|stale| *stale),
        "old values are stale"
    );
    let new = write_some(&second, "new", 20);
    assert!(read_all(&second, &new).iter().all(|stale| !stale));
    assert!(second.terminate().success());

    // A restart reads every value.
    let again = Plugin::start(&hsm, "kek2", &[]);
    let all: Vec<_> = old.iter().chain(&new).cloned().collect();
    let stale = read_all(&again, &all);
    assert_eq!(stale, [vec![true; 20], vec![false; 20]].concat());

    // Retire kek1: its values no longer read; kek2's do.
    let deleted = hsm.pkcs11_tool(&["--delete-object", "--type", "secrkey", "--label", "kek1"]);
    assert!(deleted.status.success(), "{deleted:?}");
    let config = EncryptionConfiguration::from_yaml(config(&again).as_bytes()).expect("config");
    let kms = GrpcKmsFactory::new();
    let transformers = config.build_with_kms(&kms).expect("build");
    rt().block_on(async {
        kms.refresh_all().await.expect("healthy");
        let transformer = transformers.for_resource("secrets");
        let (key, stored, _) = &old[0];
        let err = transformer
            .decrypt(stored, key.as_str().into())
            .await
            .expect_err("the retired key's value");
        assert!(err.to_string().contains("unknown key ID"), "{err}");
        let (key, stored, plain) = &new[0];
        let read = transformer
            .decrypt(stored, key.as_str().into())
            .await
            .expect("kek2's value");
        assert_eq!(&read.plaintext[..], &plain[..]);
    });
}
