//! Rotation to a second key label: the old values still read, as stale,
//! through the same state machine as the apiserver's (a KMS v2 provider
//! built from the configuration); a restart reads every value; a retired
//! (deleted) key's values no longer read.

use crate::interop::config;
use crate::plugin::Plugin;
use k8s_envelope_test_support::kms_values::{read_stale, read_values, write_values};
use k8s_envelope_test_support::softhsm::SoftHsm;

#[test]
#[ignore = "needs SoftHSM2 (apt-get install softhsm2 opensc)"]
fn a_new_label_writes_and_the_old_values_read_as_stale_across_restarts() {
    let hsm = SoftHsm::new_token();
    let first = Plugin::start(&hsm, "kek1", &["--create-key"]);
    let old = write_values(&config(&first), "old", 20);
    assert_eq!(read_stale(&config(&first), &old), [false; 20]);
    assert!(first.terminate().success());

    // Rotate: a restart with a new label.
    let second = Plugin::start(&hsm, "kek2", &["--create-key"]);
    assert_eq!(
        read_stale(&config(&second), &old),
        [true; 20],
        "old values are stale"
    );
    let new = write_values(&config(&second), "new", 20);
    assert_eq!(read_stale(&config(&second), &new), [false; 20]);
    assert!(second.terminate().success());

    // A restart reads every value.
    let again = Plugin::start(&hsm, "kek2", &[]);
    let all: Vec<_> = old.iter().chain(&new).cloned().collect();
    let stale = read_stale(&config(&again), &all);
    assert_eq!(stale, [vec![true; 20], vec![false; 20]].concat());

    // Retire kek1: its values no longer read; kek2's do.
    let deleted = hsm.pkcs11_tool(&["--delete-object", "--type", "secrkey", "--label", "kek1"]);
    assert!(deleted.status.success(), "{deleted:?}");
    let reads = read_values(&config(&again), &[old[0].clone(), new[0].clone()]);
    let err = reads[0].as_ref().expect_err("the retired key's value");
    assert!(err.to_string().contains("unknown key ID"), "{err}");
    assert_eq!(reads[1].as_ref().ok(), Some(&false), "kek2's value reads");
}
