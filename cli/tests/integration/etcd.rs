//! Rotation and re-encryption against a real etcd server (Debian package
//! etcd-server; `.ci/run` installs it and sets K8S_ENVELOPE_REQUIRE_ETCD=1).
//! Each test starts its own etcd on free loopback ports with a temporary
//! data directory, and drives the CLI as an operator would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_envelope::store::{DumpStore, Entry, EtcdOptions, EtcdStore, EtcdTls, Store, Swap};
use k8s_envelope::{EncryptionConfiguration, ResourceTransformers};
use k8s_envelope_test_support::etcd::{etcdctl, EtcdServer, ServerTls};

pub(super) const CLI: &str = env!("CARGO_BIN_EXE_k8s-envelope");

const OLD_CONFIG: &str = k8s_envelope_test_support::fixtures::SECRETS_AESGCM_KEY1;

use k8s_envelope_test_support::rt;

pub(super) fn cli(args: &[&str]) -> Output {
    Command::new(CLI)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the CLI")
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(super) fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// A number from a summary line such as `  rewritten            2000`.
pub(super) fn summary(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix(label)?;
            rest.trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
}

/// The old configuration, and the promoted one made with the CLI's
/// `rotate add-key` and `rotate promote` (key2 writes, key1 reads).
pub(super) fn rotate(dir: &Path) -> (PathBuf, PathBuf) {
    let old = dir.join("old.yaml");
    std::fs::write(&old, OLD_CONFIG).expect("write config");
    let added = dir.join("added.yaml");
    let new = dir.join("new.yaml");
    let s = |p: &Path| p.display().to_string();
    ok(&cli(&[
        "rotate",
        "add-key",
        "--config",
        &s(&old),
        "--out",
        &s(&added),
        "--name",
        "key2",
    ]));
    ok(&cli(&[
        "rotate",
        "promote",
        "--config",
        &s(&added),
        "--out",
        &s(&new),
        "--name",
        "key2",
    ]));
    (old, new)
}

pub(super) fn transformers(path: &Path) -> ResourceTransformers {
    EncryptionConfiguration::load(path)
        .expect("load")
        .build()
        .expect("build")
}

/// Deterministic pseudo-random plaintexts (a JSON-ish Secret of 100 to 1100
/// bytes).
pub(super) fn plaintext(i: usize, round: usize) -> Vec<u8> {
    let len = 100 + (i * 7919 + round * 104_729) % 1000;
    let mut out =
        format!("{{\"kind\":\"Secret\",\"i\":{i},\"round\":{round},\"data\":\"").into_bytes();
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ round as u64;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(b'a' + (x % 26) as u8);
    }
    out.extend_from_slice(b"\"}");
    out
}

async fn connect(url: &str) -> Arc<EtcdStore> {
    Arc::new(
        EtcdStore::connect(EtcdOptions::new([url]))
            .await
            .expect("connect to etcd"),
    )
}

/// Writes `keys` with `transformers`' writer, 32 at a time.
pub(super) async fn fill(store: &Arc<EtcdStore>, t: &Arc<ResourceTransformers>, keys: &[String]) {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, key) in keys.iter().enumerate() {
        if tasks.len() >= 32 {
            tasks.join_next().await.expect("task").expect("put");
        }
        let (store, t, key) = (store.clone(), t.clone(), key.clone());
        tasks.spawn(async move {
            let value = t
                .for_resource("secrets")
                .encrypt(&plaintext(i, 0), key.as_str().into())
                .await
                .expect("encrypt");
            store.put(key.as_bytes(), &value).await.expect("put");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("put");
    }
}

pub(super) async fn all(store: &EtcdStore, prefix: &[u8]) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store
            .list(prefix, after.as_deref(), 500)
            .await
            .expect("list");
        let Some(last) = page.entries.last().map(|e| e.key.clone()) else {
            break;
        };
        for e in page.entries {
            out.insert(e.key.clone(), e);
        }
        if !page.more {
            break;
        }
        after = Some(last);
    }
    out
}

pub(super) fn secret_keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("/registry/secrets/ns{}/secret-{i:04}", i % 10))
        .collect()
}

/// Keys outside `/registry/secrets/`: a neighbour prefix, the prefix without
/// its slash, and another resource.
async fn write_outside(store: &EtcdStore, old: &ResourceTransformers) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for key in [
        "/registry/secretsX/ns/a",
        "/registry/secrets",
        "/registry/configmaps/ns/cm",
    ] {
        let value = old
            .for_resource("secrets")
            .encrypt(b"outside", key.into())
            .await
            .expect("encrypt");
        store.put(key.as_bytes(), &value).await.expect("put");
        keys.push(key.as_bytes().to_vec());
    }
    keys
}

/// The scenario: 2,000 values under an old key; rotate; re-encrypt
/// with concurrency 8 while another task keeps updating 200 random keys.
#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn reencrypt_with_concurrent_writers_loses_nothing() {
    let etcd = EtcdServer::start();
    let rt = rt();
    let (old_path, new_path) = rotate(etcd.dir());
    let old = Arc::new(transformers(&old_path));
    let new = Arc::new(transformers(&new_path));
    let store = rt.block_on(connect(&etcd.url));
    let keys = secret_keys(2000);
    rt.block_on(fill(&store, &old, &keys));
    let outside = rt.block_on(async {
        let keys = write_outside(&store, &old).await;
        let mut before = Vec::new();
        for key in keys {
            before.push(store.get(&key).await.expect("get").expect("present"));
        }
        before
    });

    // 200 keys picked at random (deterministically), updated by "a
    // kube-apiserver" that has the new configuration, from before the
    // re-encryption starts until after it ends.
    let chosen: Vec<usize> = (0..200).map(|i| (i * 7_919 + 13) % keys.len()).collect();
    let mut last: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let (updates, output) = rt.block_on(async {
        let mut round = 0usize;
        let update = |round: usize, last: &mut BTreeMap<usize, Vec<u8>>| {
            let i = chosen[round % chosen.len()];
            let plaintext = plaintext(i, round + 1);
            last.insert(i, plaintext.clone());
            let (store, new, key) = (store.clone(), new.clone(), keys[i].clone());
            async move {
                let value = new
                    .for_resource("secrets")
                    .encrypt(&plaintext, key.as_str().into())
                    .await
                    .expect("encrypt");
                store.put(key.as_bytes(), &value).await.expect("put");
            }
        };
        for _ in 0..20 {
            update(round, &mut last).await;
            round += 1;
        }
        let mut child = tokio::process::Command::new(CLI)
            .args([
                "reencrypt",
                "--config",
                &new_path.display().to_string(),
                "--etcd",
                &etcd.url,
                "--concurrency",
                "8",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn reencrypt");
        let during = round;
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            update(round, &mut last).await;
            round += 1;
        }
        // A few more after it ended, as a live cluster would.
        for _ in 0..20 {
            update(round, &mut last).await;
            round += 1;
        }
        (
            round - during - 20,
            child.wait_with_output().await.expect("output"),
        )
    });
    let stdout = ok(&output);
    eprintln!("{stdout}\n{updates} updates during the run");
    assert!(updates > 0, "the updater ran while the re-encryption did");
    assert_eq!(summary(&stdout, "failed"), 0);
    assert!(summary(&stdout, "read") >= 2000);
    assert!(summary(&stdout, "rewritten") + summary(&stdout, "already current") >= 2000);

    rt.block_on(async {
        let stored = all(&store, b"/registry/secrets/").await;
        assert_eq!(stored.len(), 2000);
        for (i, key) in keys.iter().enumerate() {
            let entry = &stored[key.as_bytes()];
            let read = new
                .for_resource("secrets")
                .decrypt(&entry.value, key.as_str().into())
                .await
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            assert!(!read.stale, "{key} is stale");
            assert!(entry.value.starts_with(b"k8s:enc:aesgcm:v1:key2:"), "{key}");
            let want = last.get(&i).cloned().unwrap_or_else(|| plaintext(i, 0));
            assert!(
                read.plaintext == want,
                "{key} does not hold its writer's last value"
            );
        }
        for before in &outside {
            let now = store.get(&before.key).await.expect("get").expect("present");
            assert_eq!(&now, before, "{} changed", text(&before.key));
        }
    });
    let scan = ok(&cli(&[
        "scan",
        "--config",
        &new_path.display().to_string(),
        "--etcd",
        &etcd.url,
    ]));
    assert!(
        scan.contains("total: 2000 values: 2000 current, 0 stale, 0 unreadable"),
        "{scan}"
    );
}

#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn dry_run_changes_nothing() {
    let etcd = EtcdServer::start();
    let rt = rt();
    let (old_path, new_path) = rotate(etcd.dir());
    let store = rt.block_on(connect(&etcd.url));
    rt.block_on(fill(
        &store,
        &Arc::new(transformers(&old_path)),
        &secret_keys(300),
    ));
    let before = rt.block_on(all(&store, b"/registry/"));
    let stdout = ok(&cli(&[
        "reencrypt",
        "--config",
        &new_path.display().to_string(),
        "--etcd",
        &etcd.url,
        "--dry-run",
    ]));
    assert!(stdout.contains("dry run: nothing written"), "{stdout}");
    assert_eq!(summary(&stdout, "stale (to rewrite)"), 300);
    assert_eq!(summary(&stdout, "read"), 300);
    assert_eq!(rt.block_on(all(&store, b"/registry/")), before);
}

/// Kill the CLI mid-run (SIGKILL), run it again with the same checkpoint:
/// it resumes after the saved key and finishes.
#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn interrupted_run_resumes_and_finishes() {
    let etcd = EtcdServer::start();
    let rt = rt();
    let (old_path, new_path) = rotate(etcd.dir());
    let store = rt.block_on(connect(&etcd.url));
    rt.block_on(fill(
        &store,
        &Arc::new(transformers(&old_path)),
        &secret_keys(2000),
    ));
    let checkpoint = etcd.dir().join("reencrypt.checkpoint");
    let args = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "reencrypt",
            "--config",
            &new_path.display().to_string(),
            "--etcd",
            &etcd.url,
            "--checkpoint",
            &checkpoint.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let mut child = Command::new(CLI)
        .args(args(&["--rate-limit", "400", "--concurrency", "2"]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Wait until the checkpoint shows progress, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(30);
    let saved_read = loop {
        assert!(Instant::now() < deadline, "no progress in the checkpoint");
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "finished before it could be killed"
        );
        let read = std::fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["totals"]["read"].as_u64())
            .unwrap_or(0);
        if read >= 300 {
            break read;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");

    let rewritten = |prefix: &[u8]| {
        rt.block_on(all(&store, b"/registry/secrets/"))
            .values()
            .filter(|e| e.value.starts_with(prefix))
            .count()
    };
    let done = rewritten(b"k8s:enc:aesgcm:v1:key2:");
    assert!(
        done >= saved_read as usize && done < 2000,
        "{done} rewritten before the kill"
    );

    let output = Command::new(CLI).args(args(&[])).output().expect("rerun");
    let stdout = ok(&output);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("resuming after /registry/secrets/"),
        "{stderr}"
    );
    assert!(
        summary(&stdout, "read") < 2000,
        "the second run resumed:\n{stdout}"
    );
    assert!(stdout.contains("with the earlier run(s)"), "{stdout}");
    assert_eq!(rewritten(b"k8s:enc:aesgcm:v1:key2:"), 2000);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).expect("checkpoint")).expect("json");
    assert_eq!(saved["finished"], true);
    assert!(saved["totals"]["rewritten"].as_u64().expect("count") >= 2000 - saved_read);
}

/// A value that no provider can read is reported, exit status 1, and left
/// exactly as it was (same bytes, same revision).
#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn unreadable_values_are_reported_and_left_alone() {
    let etcd = EtcdServer::start();
    let rt = rt();
    let (old_path, new_path) = rotate(etcd.dir());
    let store = rt.block_on(connect(&etcd.url));
    rt.block_on(fill(
        &store,
        &Arc::new(transformers(&old_path)),
        &secret_keys(100),
    ));
    let foreign = EncryptionConfiguration::from_yaml(
        OLD_CONFIG
            .replace(
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=",
            )
            .as_bytes(),
    )
    .expect("parses")
    .build()
    .expect("builds");
    let bad: Vec<Entry> = rt.block_on(async {
        let k1 = b"/registry/secrets/ns0/foreign-key";
        let v1 = foreign
            .for_resource("secrets")
            .encrypt(b"x", "/registry/secrets/ns0/foreign-key".into())
            .await
            .expect("encrypt");
        store.put(k1, &v1).await.expect("put");
        let k2 = b"/registry/secrets/ns0/garbage";
        store
            .put(k2, b"k8s:enc:aesgcm:v1:lost:not really a value")
            .await
            .expect("put");
        vec![
            store.get(k1).await.expect("get").expect("present"),
            store.get(k2).await.expect("get").expect("present"),
        ]
    });
    let output = cli(&[
        "reencrypt",
        "--config",
        &new_path.display().to_string(),
        "--etcd",
        &etcd.url,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(summary(&stdout, "failed"), 2);
    assert_eq!(summary(&stdout, "rewritten"), 100);
    assert!(
        stderr.contains("/registry/secrets/ns0/foreign-key: aesgcm: decryption failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/registry/secrets/ns0/garbage: aesgcm: no matching key"),
        "{stderr}"
    );
    assert!(!stderr.contains("not really"), "no value in messages");
    rt.block_on(async {
        for before in &bad {
            assert_eq!(
                &store.get(&before.key).await.expect("get").expect("present"),
                before
            );
        }
    });
    // The scan says the same, with exit status 1.
    let output = cli(&[
        "scan",
        "--config",
        &new_path.display().to_string(),
        "--etcd",
        &etcd.url,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("100 current, 0 stale, 2 unreadable"),
        "{}",
        text(&output.stdout)
    );
}

/// The store's compare-and-swap against etcd: compares the mod revision,
/// keeps a key's lease, and reports changes and deletions.
#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn etcd_compare_and_swap_and_paging() {
    let etcd = EtcdServer::start();
    let rt = rt();
    let store = rt.block_on(connect(&etcd.url));
    rt.block_on(async {
        for i in 0..25 {
            store
                .put(format!("/p/k{i:02}").as_bytes(), b"v")
                .await
                .expect("put");
        }
        store.put(b"/p", b"not in /p/").await.expect("put");
        store.put(b"/p0", b"not in /p/").await.expect("put");
        assert_eq!(store.count(b"/p/").await.expect("count"), Some(25));
        let mut seen = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store.list(b"/p/", after.as_deref(), 7).await.expect("list");
            seen += page.entries.len();
            assert!(page.entries.iter().all(|e| e.key.starts_with(b"/p/")));
            match (page.more, page.entries.last()) {
                (true, Some(last)) => after = Some(last.key.clone()),
                _ => break,
            }
        }
        assert_eq!(seen, 25);

        let e = store.get(b"/p/k00").await.expect("get").expect("present");
        let moved = store.put(b"/p/k00", b"changed").await.expect("put");
        match store
            .compare_and_swap(b"/p/k00", e.revision, b"mine")
            .await
            .expect("cas")
        {
            Swap::Changed(now) => {
                assert_eq!(now.value, b"changed");
                assert_eq!(now.revision, moved);
            }
            other => panic!("expected a change, got {other:?}"),
        }
        assert!(matches!(
            store
                .compare_and_swap(b"/p/k00", moved, b"mine")
                .await
                .expect("cas"),
            Swap::Written(_)
        ));
        assert_eq!(
            store
                .get(b"/p/k00")
                .await
                .expect("get")
                .expect("present")
                .value,
            b"mine"
        );
        assert_eq!(
            store
                .compare_and_swap(b"/p/none", 1, b"x")
                .await
                .expect("cas"),
            Swap::Deleted
        );
    });

    // A key with a lease (as events have) keeps it through a swap.
    let etcdctl = etcdctl();
    let ctl = |args: &[&str]| {
        let out = Command::new(&etcdctl)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", etcd.url))
            .args(args)
            .output()
            .expect("etcdctl");
        ok(&out)
    };
    let lease = ctl(&["lease", "grant", "600"]);
    let lease_id = lease
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_owned();
    ctl(&[
        "put",
        "--lease",
        &lease_id,
        "/registry/events/ns/e1",
        "event",
    ]);
    rt.block_on(async {
        let e = store
            .get(b"/registry/events/ns/e1")
            .await
            .expect("get")
            .expect("present");
        assert!(matches!(
            store
                .compare_and_swap(&e.key, e.revision, b"rewritten")
                .await
                .expect("cas"),
            Swap::Written(_)
        ));
    });
    let json = ctl(&["get", "/registry/events/ns/e1", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    // etcdctl prints lease IDs in hex, zero-padded to 16 digits; compare
    // the numbers (a lease ID with a leading zero digit broke a string
    // comparison one run in sixteen).
    assert_eq!(
        v["kvs"][0]["lease"].as_i64(),
        Some(i64::from_str_radix(&lease_id, 16).expect("a hex lease ID")),
        "lease {lease_id}"
    );
}

/// `etcdctl get --prefix -w json` as the store, offline: scan, re-encrypt
/// into a new file, and the original file and etcd are left alone.
#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn etcdctl_dump_offline() {
    let etcd = EtcdServer::start();
    let etcdctl = etcdctl();
    let rt = rt();
    let (old_path, new_path) = rotate(etcd.dir());
    let old = Arc::new(transformers(&old_path));
    let store = rt.block_on(connect(&etcd.url));
    rt.block_on(fill(&store, &old, &secret_keys(50)));
    rt.block_on(write_outside(&store, &old));
    let dump_path = etcd.dir().join("dump.json");
    let out = Command::new(&etcdctl)
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints={}", etcd.url),
            "get",
            "--prefix",
            "/registry/",
            "-w",
            "json",
        ])
        .output()
        .expect("etcdctl");
    std::fs::write(&dump_path, ok(&out)).expect("write dump");
    let s = |p: &Path| p.display().to_string();
    let scan = ok(&cli(&[
        "scan",
        "--config",
        &s(&new_path),
        "--dump",
        &s(&dump_path),
    ]));
    assert!(
        scan.contains("50 current") || scan.contains("0 current, 50 stale"),
        "{scan}"
    );
    let out_path = etcd.dir().join("dump.reencrypted.json");
    let stdout = ok(&cli(&[
        "reencrypt",
        "--config",
        &s(&new_path),
        "--dump",
        &s(&dump_path),
        "--out",
        &s(&out_path),
    ]));
    assert_eq!(summary(&stdout, "rewritten"), 50);
    let before = DumpStore::load(&dump_path).expect("load");
    let after = DumpStore::load(&out_path).expect("load");
    let new = transformers(&new_path);
    for (b, a) in before.entries().iter().zip(after.entries()) {
        assert_eq!(b.key, a.key);
        if b.key.starts_with(b"/registry/secrets/") {
            let read = new
                .for_resource("secrets")
                .decrypt_blocking(&a.value, a.key.as_slice().into())
                .expect("reads");
            assert!(!read.stale);
            assert!(a.revision > b.revision);
        } else {
            assert_eq!(b, &a);
        }
    }
    // The dump in: unchanged. etcd: unchanged (still key1).
    assert_eq!(
        std::fs::read(&dump_path).expect("read"),
        ok(&out).into_bytes()
    );
    let live = rt.block_on(all(&store, b"/registry/secrets/"));
    assert!(live
        .values()
        .all(|e| e.value.starts_with(b"k8s:enc:aesgcm:v1:key1:")));
    // Without --out, a dump is not re-encrypted.
    assert_eq!(
        cli(&[
            "reencrypt",
            "--config",
            &s(&new_path),
            "--dump",
            &s(&dump_path)
        ])
        .status
        .code(),
        Some(2)
    );
}

/// etcd with TLS and client certificates (as real clusters run it): the CLI
/// scans and re-encrypts with --cacert/--cert/--key, and is refused without
/// a client certificate.
#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn mutual_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = make_certs(dir.path());
    let etcd = EtcdServer::start_tls(&tls);
    let rt = rt();
    let (old_path, new_path) = rotate(etcd.dir());
    let options = EtcdOptions::new([etcd.url.clone()]).with_tls(
        EtcdTls::from_files(
            &tls.ca,
            Some(&dir.path().join("client.crt")),
            Some(&dir.path().join("client.key")),
        )
        .expect("tls"),
    );
    let store = Arc::new(
        rt.block_on(EtcdStore::connect(options))
            .expect("mTLS connect"),
    );
    rt.block_on(fill(
        &store,
        &Arc::new(transformers(&old_path)),
        &secret_keys(40),
    ));
    let s = |p: &Path| p.display().to_string();
    let (ca, cert, key) = (
        s(&tls.ca),
        s(&dir.path().join("client.crt")),
        s(&dir.path().join("client.key")),
    );
    let config = s(&new_path);
    let scan = ok(&cli(&[
        "scan", "--config", &config, "--etcd", &etcd.url, "--cacert", &ca, "--cert", &cert,
        "--key", &key,
    ]));
    assert!(scan.contains("0 current, 40 stale"), "{scan}");
    let stdout = ok(&cli(&[
        "reencrypt",
        "--config",
        &config,
        "--etcd",
        &etcd.url,
        "--cacert",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "--concurrency",
        "8",
    ]));
    assert_eq!(summary(&stdout, "rewritten"), 40);
    // No client certificate: etcd refuses the connection.
    let output = cli(&[
        "scan", "--config", &config, "--etcd", &etcd.url, "--cacert", &ca,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    // The wrong CA: our client refuses etcd.
    let other = make_certs(&dir.path().join("other"));
    let output = cli(&[
        "scan",
        "--config",
        &config,
        "--etcd",
        &etcd.url,
        "--cacert",
        &s(&other.ca),
        "--cert",
        &cert,
        "--key",
        &key,
    ]);
    assert_eq!(output.status.code(), Some(1));
    // TLS settings with an http:// URL are a usage error.
    let output = cli(&[
        "scan",
        "--config",
        &config,
        "--etcd",
        &etcd.url.replace("https", "http"),
        "--cacert",
        &ca,
    ]);
    assert_eq!(output.status.code(), Some(2));
}

/// A CA, a server certificate for 127.0.0.1 and localhost, and a client
/// certificate, in `dir`.
fn make_certs(dir: &Path) -> ServerTls {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    std::fs::create_dir_all(dir).expect("dir");
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "k8s-envelope test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |name: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params.signed_by(&key, &issuer).expect("sign");
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).expect("write");
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write");
    };
    leaf(
        "server",
        vec!["127.0.0.1".into(), "localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    leaf("client", vec![], ExtendedKeyUsagePurpose::ClientAuth);
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).expect("write");
    ServerTls {
        ca: dir.join("ca.crt"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    }
}
