//! `k8s-envelope verify` on real stores: values written by the Go reference
//! (aesgcm, aescbc, secretbox, KMS v2 through its mock plugin) and plaintext
//! ConfigMaps in a real etcd, read there, from its `etcdctl get -w json`
//! dump and from its `etcdctl snapshot save` file, with a configuration that
//! lacks one key; a tampered value and a plaintext that is no object; then
//! the plugin stopped.

#![allow(
    clippy::unwrap_used,
    reason = "a test's panic, with the line it names, is its failure report"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use k8s_envelope::store::{EtcdOptions, EtcdStore};
use serde_json::{json, Value};

use super::etcd::{cli, ok, text};
use k8s_envelope_test_support::etcd::{etcdctl, EtcdServer};
use k8s_envelope_test_support::k8sref::{k8sref, transform_lines};
use k8s_envelope_test_support::objects::secret_protobuf;
use k8s_envelope_test_support::plugin_process::PluginProcess;
use k8s_envelope_test_support::rt;

const AESGCM1: &str = "      - aesgcm:\n          keys:\n            - name: key1\n              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
const AESGCM2: &str = "      - aesgcm:\n          keys:\n            - name: key2\n              secret: YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8=\n";
const AESCBC: &str = "      - aescbc:\n          keys:\n            - name: key0\n              secret: ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n";
const SECRETBOX: &str = "      - secretbox:\n          keys:\n            - name: box1\n              secret: QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=\n";
const PLAINTEXT_MARK: &str = "PLAINTEXT-NEVER-SHOWN";

fn config(dir: &Path, name: &str, providers: &[&str]) -> PathBuf {
    let mut text = String::from(
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n",
    );
    for p in providers {
        text.push_str(p);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn kms(endpoint: &str) -> String {
    format!("      - kms: {{apiVersion: v2, name: gomock, endpoint: \"{endpoint}\"}}\n")
}

/// The Go reference's stored value of a Secret `name` in namespace `ns`.
fn go_encrypt(writer: &Path, name: &str, plaintext: &[u8]) -> (String, Vec<u8>) {
    let key = format!("/registry/secrets/ns/{name}");
    let answer = transform_lines(
        "encrypt",
        writer,
        &[json!({"resource": "secrets", "aad": key, "plaintext_b64": BASE64.encode(plaintext)})],
    );
    let stored = BASE64
        .decode(answer[0]["stored_b64"].as_str().unwrap())
        .unwrap();
    (key, stored)
}

fn secret(name: &str) -> Vec<u8> {
    secret_protobuf("ns", name, &[("password", PLAINTEXT_MARK.as_bytes())])
}

/// `verify --output jsonl` over `store` args: exit status and lines.
fn verify_jsonl(config: &Path, store: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut args = vec!["verify", "--config", config.to_str().unwrap()];
    args.extend_from_slice(store);
    args.extend(["--output", "jsonl", "--concurrency", "8"]);
    let out = cli(&args);
    let stdout = text(&out.stdout);
    for shown in [&stdout, &text(&out.stderr)] {
        assert!(!shown.contains(PLAINTEXT_MARK), "{shown}");
    }
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out.status.code(), lines, text(&out.stderr))
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client) and the Go reference (../shared/tools/k8sref/build.sh)"]
fn verify_names_what_a_backup_needs_and_every_value_it_cannot_read() {
    let etcd = EtcdServer::start();
    let plugin = PluginProcess::start(&k8sref(), &["kms-plugin", "--api", "v2"], "k8sref");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let endpoint = plugin.endpoint();

    // Written by the Go reference, one provider at a time.
    let mut values: Vec<(String, Vec<u8>)> = Vec::new();
    let writers = [
        ("gcm", config(dir, "w-gcm.yaml", &[AESGCM1])),
        ("cbc", config(dir, "w-cbc.yaml", &[AESCBC])),
        ("box", config(dir, "w-box.yaml", &[SECRETBOX])),
        ("kms", config(dir, "w-kms.yaml", &[&kms(&endpoint)])),
    ];
    for (label, writer) in &writers {
        for i in 0..3 {
            let name = format!("{label}-{i}");
            values.push(go_encrypt(writer, &name, &secret(&name)));
        }
    }
    let key2 = config(dir, "w-key2.yaml", &[AESGCM2]);
    values.push(go_encrypt(&key2, "z1-key2", &secret("z1")));
    let (key, mut tampered) = go_encrypt(&writers[0].1, "z2-tampered", &secret("z2"));
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x40;
    values.push((key, tampered));
    values.push(go_encrypt(
        &writers[0].1,
        "z3-no-object",
        PLAINTEXT_MARK.as_bytes(),
    ));
    for i in 0..2 {
        values.push((
            format!("/registry/configmaps/ns/plain-{i}"),
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"p","namespace":"ns"},"data":{"a":"b"}}"#.to_vec(),
        ));
    }
    rt().block_on(async {
        let store = EtcdStore::connect(EtcdOptions::new([etcd.url.as_str()]))
            .await
            .unwrap();
        for (key, value) in &values {
            store.put(key.as_bytes(), value).await.unwrap();
        }
    });
    let dump = dir.join("dump.json");
    let listed = Command::new(etcdctl())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", etcd.url))
        .args(["get", "--prefix", "/registry/", "-w", "json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(listed.status.success());
    std::fs::write(&dump, &listed.stdout).unwrap();
    let snapshot = dir.join("backup.db");
    let saved = Command::new(etcdctl())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", etcd.url))
        .args(["snapshot", "save", snapshot.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(saved.success());

    // The keys at hand: key1 (writes), key0, box1, the plugin; not key2.
    let reader = config(
        dir,
        "read.yaml",
        &[
            AESGCM1,
            AESCBC,
            SECRETBOX,
            &kms(&endpoint),
            "      - identity: {}\n",
        ],
    );
    let expected = [
        ("/registry/secrets/ns/z1-key2", "unknown-key"),
        ("/registry/secrets/ns/z2-tampered", "authentication-failed"),
        ("/registry/secrets/ns/z3-no-object", "not-an-object"),
    ];
    let (dump_arg, snapshot_arg) = (dump.to_str().unwrap(), snapshot.to_str().unwrap());
    let stores: [&[&str]; 3] = [
        &["--etcd", etcd.url.as_str()],
        &["--dump", dump_arg],
        &["--snapshot", snapshot_arg],
    ];
    let mut seen: Vec<BTreeSet<String>> = Vec::new();
    for store in stores {
        let (status, lines, stderr) = verify_jsonl(&reader, store);
        assert_eq!(status, Some(1), "{store:?}: {stderr}");
        assert!(
            stderr.contains("3 of 17 value(s) cannot be read"),
            "{stderr}"
        );
        let unreadable = of_type(&lines, "unreadable");
        let got: Vec<(&str, &str)> = unreadable
            .iter()
            .map(|l| (l["key"].as_str().unwrap(), l["reason"].as_str().unwrap()))
            .collect();
        assert_eq!(got, expected, "{store:?}");
        assert_eq!(unreadable[0]["namespace"], "ns");
        assert_eq!(unreadable[0]["name"], "z1-key2");
        assert_eq!(unreadable[0]["resource"], "secrets");
        assert_eq!(
            unreadable[0]["delete"],
            "kubectl delete secrets z1-key2 -n ns --ignore-store-read-error-with-cluster-breaking-potential=true"
        );
        assert!(unreadable[0]["error"]
            .as_str()
            .unwrap()
            .contains("\"key2\""));

        let dependencies = of_type(&lines, "dependency");
        let gcm = dependencies
            .iter()
            .find(|d| d["key"] == "key1")
            .expect("key1 line");
        // As `fingerprint` prints it for the rule key1 writes.
        let printed = ok(&cli(&["fingerprint", reader.to_str().unwrap()]));
        let fingerprint = gcm["fingerprint"].as_str().unwrap();
        assert!(
            printed.contains(fingerprint),
            "{fingerprint} not in {printed}"
        );
        assert_eq!(
            (gcm["values"].as_u64(), gcm["readable"].as_u64()),
            (Some(5), Some(3))
        );
        let kms_line = dependencies
            .iter()
            .find(|d| d["kms"] == "gomock")
            .expect("kms line");
        assert_eq!(kms_line["api_version"], "v2");
        assert!(kms_line["key_id_hash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
        assert_eq!(kms_line["plugin_read"], true);
        assert_eq!(kms_line["readable"], 3);
        let plaintext = dependencies
            .iter()
            .find(|d| d["resource"] == "configmaps")
            .expect("configmaps");
        assert_eq!(plaintext["plaintext"], true);
        assert!(dependencies
            .iter()
            .any(|d| d["key"] == "key2" && d["fingerprint"].is_null()));

        let totals = lines.last().unwrap();
        assert_eq!(totals["type"], "totals");
        assert_eq!(totals["values"], 17);
        assert_eq!(totals["readable"], 14);
        assert_eq!(totals["stale"], 9);
        assert_eq!(totals["unreadable"], 3);
        assert_eq!(totals["all_readable"], false);
        seen.push(lines.iter().map(ToString::to_string).collect());
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "etcd, dump and snapshot differ"
    );

    // `verify` of the dump with the reader's configuration, and `extra`.
    let verify_dump = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            "--config",
            reader.to_str().unwrap(),
            "--dump",
            dump_arg,
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };

    // The table: each unreadable value, what it needs, what to do.
    let out = verify_dump(&[]);
    assert_eq!(out.status.code(), Some(1));
    let table = text(&out.stdout);
    assert!(!table.contains(PLAINTEXT_MARK));
    for wanted in [
        "unreadable: /registry/secrets/ns/z1-key2: unknown-key (aesgcm: no matching key was found",
        "  delete with: kubectl delete secrets z1-key2 -n ns --ignore-store-read-error-with-cluster-breaking-potential=true\n",
        "unreadable: /registry/secrets/ns/z2-tampered: authentication-failed (aesgcm: decryption failed",
        "total: 17 values: 14 readable (9 stale), 3 unreadable",
        "unknown-key: ",
        "not-an-object: ",
    ] {
        assert!(table.contains(wanted), "{wanted:?} not in:\n{table}");
    }
    // One JSON document: the same objects as the lines.
    let (_, lines, _) = verify_jsonl(&reader, &["--dump", dump_arg]);
    let out = verify_dump(&["--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let document: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (member, kind) in [("unreadable", "unreadable"), ("dependencies", "dependency")] {
        let listed: Vec<&Value> = document[member].as_array().unwrap().iter().collect();
        assert_eq!(listed, of_type(&lines, kind), "{member}");
    }
    assert_eq!(&document["totals"], of_type(&lines, "totals")[0]);
    assert_eq!(document["unreadable"].as_array().unwrap().len(), 3);

    // Only what reads: exit 0.
    let out = verify_dump(&["--prefix", "/registry/configmaps/"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // The plugin stopped: its values are no verdict.
    drop(plugin);
    let (status, lines, _) = verify_jsonl(&reader, &["--dump", dump_arg]);
    assert_eq!(status, Some(1));
    let unavailable: Vec<&str> = of_type(&lines, "unreadable")
        .iter()
        .filter(|l| l["reason"] == "kms-unavailable")
        .inspect(|l| assert!(l["delete"].is_null(), "no verdict, no delete: {l}"))
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        unavailable,
        [
            "/registry/secrets/ns/kms-0",
            "/registry/secrets/ns/kms-1",
            "/registry/secrets/ns/kms-2"
        ]
    );
}

#[test]
fn verify_fails_when_its_report_cannot_be_written() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let reader = config(dir, "r.yaml", &["      - identity: {}\n"]);
    let key = "/registry/secrets/ns/a";
    let dump = dir.join("dump.json");
    let listed = json!({
        "header": {"cluster_id": 1, "member_id": 2, "revision": 2, "raft_term": 2},
        "kvs": [{
            "key": BASE64.encode(key),
            "create_revision": 2,
            "mod_revision": 2,
            "version": 1,
            "value": BASE64.encode(secret("a")),
        }],
    });
    std::fs::write(&dump, listed.to_string()).unwrap();
    for output in ["table", "json", "jsonl"] {
        let args = [
            "verify",
            "--config",
            reader.to_str().unwrap(),
            "--dump",
            dump.to_str().unwrap(),
            "--output",
            output,
        ];
        // The report reads: exit 0 where it can be written.
        let written = cli(&args);
        assert_eq!(written.status.code(), Some(0), "{output}");
        if output == "json" {
            let document: Value = serde_json::from_slice(&written.stdout).unwrap();
            assert_eq!(document["unreadable"], json!([]));
            assert_eq!(document["totals"]["all_readable"], true);
            assert_eq!(document["dependencies"][0]["plaintext"], true);
        }
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full, Linux's device whose writes fail");
        let out = Command::new(super::etcd::CLI)
            .args(args)
            .stdin(Stdio::null())
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{output}: {stderr}");
        assert!(stderr.contains("writing stdout"), "{output}: {stderr}");
    }
}
