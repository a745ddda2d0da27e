//! The key ID follows the key: a rotation on demand, a move to a second key
//! (the first as `--old-key`), an alias moved to another key. Values written
//! before keep reading, as stale, through the same state machine as the
//! apiserver's (a KMS v2 provider built from the configuration).

use std::time::{Duration, Instant};

use k8s_envelope_test_support::kms_values::{read_stale, read_values, write_values};
use k8s_envelope_test_support::plugin_process::PluginProcess;
use k8s_envelope_test_support::rt;

use crate::emulator::{client, config, Emulator};

/// The key ID in the plugin's Status.
fn status_key_id(plugin: &PluginProcess) -> String {
    let client = client(plugin, Duration::from_secs(5));
    rt().block_on(async {
        let status = client.as_v2().status().await.expect("Status");
        assert!(status.is_healthy(), "{status:?}");
        status.key_id
    })
}

/// Polls Status (20 s at most) until its key ID differs from `before`.
fn await_new_key_id(plugin: &PluginProcess, before: &str) -> (String, Duration) {
    let start = Instant::now();
    loop {
        let now = status_key_id(plugin);
        if now != before {
            return (now, start.elapsed());
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the key ID stayed {before}: {}",
            plugin.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs moto's server (K8S_ENVELOPE_MOTO_SERVER or moto_server on the PATH)"]
fn a_rotation_on_demand_changes_the_key_id_and_old_values_read_as_stale() {
    let aws = Emulator::start();
    let key = aws.create_key();
    let plugin = aws.plugin(&key.id, &["--refresh-seconds", "1"]);
    let yaml = config(&plugin);
    let first = status_key_id(&plugin);
    assert_eq!(first, format!("{}#original", key.arn));
    let old = write_values(&yaml, "old", 10);
    assert_eq!(read_stale(&yaml, &old), [false; 10]);

    aws.rotate(&key);
    let (second, took) = await_new_key_id(&plugin, &first);
    // The newest rotation's date, to the millisecond (moto does not report
    // the current key material, which AWS KMS does).
    let date = second
        .strip_prefix(&format!("{}#rotated-", key.arn))
        .unwrap_or_else(|| panic!("{second}"));
    let (seconds, millis) = date.split_once('.').unwrap_or_else(|| panic!("{second}"));
    assert!(
        seconds.parse::<u64>().is_ok() && millis.len() == 3,
        "{second}"
    );
    // Twice the 1 s refresh interval, with room for a loaded machine (the
    // default 30 s interval makes it 60 s).
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!(
        plugin.log().contains("the key ID changed"),
        "{}",
        plugin.log()
    );

    assert_eq!(
        read_stale(&yaml, &old),
        [true; 10],
        "old values read, stale"
    );
    let new = write_values(&yaml, "new", 10);
    assert_eq!(read_stale(&yaml, &new), [false; 10]);

    // Nothing else changes it: the same key ID over several refreshes.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(status_key_id(&plugin), second);

    // A second rotation: another key ID, and all values still read.
    aws.rotate(&key);
    let (third, _) = await_new_key_id(&plugin, &second);
    assert_ne!(third, first);
    let all: Vec<_> = old.iter().chain(&new).cloned().collect();
    assert_eq!(read_stale(&yaml, &all), [true; 20]);
}

#[test]
#[ignore = "needs moto's server (K8S_ENVELOPE_MOTO_SERVER or moto_server on the PATH)"]
fn a_second_key_with_the_first_as_old_key_reads_everything() {
    let aws = Emulator::start();
    let first_key = aws.create_key();
    aws.create_alias("alias/first", &first_key);
    let mut first = aws.plugin("alias/first", &[]);
    let old = write_values(&config(&first), "old", 10);
    assert!(first.terminate().success());

    let second_key = aws.create_key();
    let second = aws.plugin(&second_key.arn, &["--old-key", "alias/first"]);
    let yaml = config(&second);
    assert_eq!(
        status_key_id(&second),
        format!("{}#original", second_key.arn)
    );
    assert_eq!(read_stale(&yaml, &old), [true; 10]);
    let new = write_values(&yaml, "new", 10);
    assert_eq!(read_stale(&yaml, &new), [false; 10]);
    drop(second);

    // Without --old-key, the first key's values are refused: unknown key ID.
    let alone = aws.plugin(&second_key.arn, &[]);
    for read in read_values(&config(&alone), &old) {
        let err = read.expect_err("refused");
        assert!(err.to_string().contains("unknown key ID"), "{err}");
    }
    assert_eq!(read_stale(&config(&alone), &new), [false; 10]);
}

#[test]
#[ignore = "needs moto's server (K8S_ENVELOPE_MOTO_SERVER or moto_server on the PATH)"]
fn an_alias_moved_to_another_key_changes_the_key_id_and_keeps_the_old_key_readable() {
    let aws = Emulator::start();
    let one = aws.create_key();
    let two = aws.create_key();
    aws.create_alias("alias/kubernetes", &one);
    let plugin = aws.plugin("alias/kubernetes", &["--refresh-seconds", "1"]);
    let yaml = config(&plugin);
    let before = status_key_id(&plugin);
    let old = write_values(&yaml, "old", 5);

    aws.update_alias("alias/kubernetes", &two);
    let (after, _) = await_new_key_id(&plugin, &before);
    assert_eq!(after, format!("{}#original", two.arn));
    assert_eq!(read_stale(&yaml, &old), [true; 5]);
    let new = write_values(&yaml, "new", 5);
    assert_eq!(read_stale(&yaml, &new), [false; 5]);
}
