//! Re-encryption while etcd fails: a three-member cluster on loopback ports
//! losing the member the run started on (then getting it back) and later
//! its leader, with a concurrent writer; and a single etcd stopped for 10 s
//! mid-run. The run finishes with exit 0, nothing is lost, and every value
//! is current. The runs are slowed with `--rate-limit` so that the faults
//! land in the middle of them.

use std::collections::BTreeMap;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_envelope::store::{EtcdOptions, EtcdStore};
use k8s_envelope::ResourceTransformers;

use super::etcd::{all, fill, ok, plaintext, rotate, secret_keys, summary, CLI};
use k8s_envelope_test_support::etcd::EtcdCluster;
use k8s_envelope_test_support::rt;

const VALUES: usize = 2000;
/// Values per second: the run takes about 10 s.
const RATE: &str = "200";

async fn connect(urls: &[String]) -> Arc<EtcdStore> {
    Arc::new(
        EtcdStore::connect(EtcdOptions::new(urls.iter().cloned()))
            .await
            .expect("connect to etcd"),
    )
}

/// Starts the re-encryption over `urls`.
fn start_reencrypt(
    config: &std::path::Path,
    urls: &[String],
    extra: &[&str],
) -> tokio::process::Child {
    tokio::process::Command::new(CLI)
        .args(["reencrypt", "--config", &config.display().to_string()])
        .args(["--etcd", &urls.join(",")])
        .args(["--concurrency", "4", "--rate-limit", RATE])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn reencrypt")
}

/// Every value is current under `new` and holds what was written last.
async fn check_all_current(
    store: &EtcdStore,
    new: &ResourceTransformers,
    keys: &[String],
    last: &BTreeMap<usize, Vec<u8>>,
) {
    let stored = all(store, b"/registry/secrets/").await;
    assert_eq!(stored.len(), keys.len(), "values lost");
    for (i, key) in keys.iter().enumerate() {
        let read = new
            .for_resource("secrets")
            .decrypt(&stored[key.as_bytes()].value, key.as_str().into())
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(!read.stale, "{key} is stale");
        let want = last.get(&i).cloned().unwrap_or_else(|| plaintext(i, 0));
        assert!(read.plaintext == want, "{key} lost its writer's last value");
    }
}

fn retries(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("etcd retries"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no etcd retries line in:\n{stdout}"))
}

#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn reencryption_survives_its_member_and_then_the_leader_going_down() {
    let mut cluster = EtcdCluster::start(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let (old_path, new_path) = rotate(dir.path());
    let rt = rt();
    let urls = cluster.urls();
    let old = Arc::new(super::etcd::transformers(&old_path));
    let new = Arc::new(super::etcd::transformers(&new_path));
    let store = rt.block_on(connect(&urls));
    let keys = secret_keys(VALUES);
    rt.block_on(fill(&store, &old, &keys));

    let mut last: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let output: Output = rt.block_on(async {
        let mut child = start_reencrypt(&new_path, &urls, &[]);
        let started = Instant::now();
        // The faults, at these times into the run: the first member (the
        // one the run talks to) killed, started again, then the leader
        // killed for good (two of three keep quorum).
        let mut faults = vec![
            (Duration::from_secs(2), "kill m0"),
            (Duration::from_secs(5), "start m0"),
            (Duration::from_secs(7), "kill leader"),
        ];
        let mut round = 0usize;
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the run hangs"
            );
            if faults
                .first()
                .is_some_and(|(at, _)| started.elapsed() >= *at)
            {
                let (_, fault) = faults.remove(0);
                eprintln!("{:?}: {fault}", started.elapsed());
                match fault {
                    "kill m0" => cluster.kill(0),
                    "start m0" => cluster.start_member(0),
                    _ => {
                        // Quorum must hold: m0 back and healthy first.
                        let deadline = Instant::now() + Duration::from_secs(30);
                        while !cluster.healthy(0) {
                            assert!(
                                Instant::now() < deadline,
                                "m0 did not come back: {}",
                                cluster.member_state(0)
                            );
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        let leader = cluster.leader().expect("a leader");
                        eprintln!("the leader is m{leader}");
                        cluster.kill(leader);
                    }
                }
            }
            // "A kube-apiserver" with the new configuration keeps writing.
            let i = (round * 7_919 + 13) % keys.len();
            let value = plaintext(i, round + 1);
            let stored = new
                .for_resource("secrets")
                .encrypt(&value, keys[i].as_str().into())
                .await
                .expect("encrypt");
            store
                .put(keys[i].as_bytes(), &stored)
                .await
                .expect("the writer's put");
            last.insert(i, value);
            round += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            faults.is_empty(),
            "the run ended before every fault: {faults:?}"
        );
        child.wait_with_output().await.expect("output")
    });
    let stdout = ok(&output);
    eprintln!("{stdout}");
    assert_eq!(summary(&stdout, "failed"), 0);
    assert!(
        retries(&stdout) > 0,
        "no retry was needed: the faults missed the run"
    );
    rt.block_on(check_all_current(&store, &new, &keys, &last));
}

#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn reencryption_waits_for_a_stopped_etcd() {
    let mut etcd = EtcdCluster::start(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let (old_path, new_path) = rotate(dir.path());
    let rt = rt();
    let urls = etcd.urls();
    let old = Arc::new(super::etcd::transformers(&old_path));
    let new = Arc::new(super::etcd::transformers(&new_path));
    let store = rt.block_on(connect(&urls));
    let keys = secret_keys(VALUES);
    rt.block_on(fill(&store, &old, &keys));

    let output = rt.block_on(async {
        let mut child = start_reencrypt(&new_path, &urls, &[]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the run ended already"
        );
        etcd.kill(0);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the run gave up"
        );
        etcd.start_member(0);
        tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("the run finishes")
            .expect("output")
    });
    let stdout = ok(&output);
    eprintln!("{stdout}");
    assert_eq!(summary(&stdout, "failed"), 0);
    assert!(retries(&stdout) > 0);
    rt.block_on(check_all_current(&store, &new, &keys, &BTreeMap::new()));
}

/// With etcd gone for longer than `--etcd-outage-limit`, the run stops
/// (exit 1, naming etcd) instead of waiting for ever, soon after the limit.
#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn reencryption_gives_up_after_the_outage_limit() {
    let mut etcd = EtcdCluster::start(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let (old_path, new_path) = rotate(dir.path());
    let rt = rt();
    let urls = etcd.urls();
    let old = Arc::new(super::etcd::transformers(&old_path));
    let store = rt.block_on(connect(&urls));
    rt.block_on(fill(&store, &old, &secret_keys(VALUES)));

    let (output, after_kill) = rt.block_on(async {
        let child = start_reencrypt(&new_path, &urls, &["--etcd-outage-limit", "3"]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        etcd.kill(0);
        let killed = Instant::now();
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("the run gives up")
            .expect("output");
        (output, killed.elapsed())
    });
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("etcd"), "{stderr}");
    assert!(
        after_kill >= Duration::from_secs(3),
        "gave up before the limit: {after_kill:?}"
    );
}
