//! `get` and `export` on every store (a real etcd, a dump of it, a snapshot
//! of it): values written as the apiserver stores them (Kubernetes' own
//! protobuf fixtures, a custom resource's JSON, a CBOR value, bytes that are
//! no object), encrypted; decrypted and decoded to exactly the JSON and
//! YAML the API serves.

#![allow(
    clippy::unwrap_used,
    reason = "a test's panic, with the line it names, is its failure report"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use k8s_envelope::store::{EtcdOptions, EtcdStore};
use k8s_envelope::EncryptionConfiguration;

use super::etcd::{ok, text, CLI};
use k8s_envelope_test_support::etcd::EtcdServer;
use k8s_envelope_test_support::rt;

const CONFIG: &str = "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets, configmaps, deployments.apps, widgets.example.com]
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
      - identity: {}
";

/// Kubernetes' fixtures beside the repository: the tests fail without
/// them, they never pass without asserting.
fn fixtures() -> PathBuf {
    let dir = k8s_envelope_test_support::fixtures::api_testdata();
    assert!(
        dir.is_dir(),
        "{} is missing: Kubernetes' API fixtures, beside the repository (shared/k8s-api-testdata)",
        dir.display()
    );
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(CLI)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the CLI")
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

const SECRET: &str = "/registry/secrets/namespaceValue/nameValue";
const CONFIG_MAP: &str = "/registry/configmaps/namespaceValue/nameValue";
const DEPLOYMENT: &str = "/registry/deployments/namespaceValue/nameValue";
const WIDGET: &str = "/registry/example.com/widgets/ns/w";
const CBOR: &str = "/registry/secrets/ns/cbor";
const BYTES: &str = "/registry/secrets/ns/bytes";

#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn get_and_export_decode_what_every_store_holds() {
    let fixtures = fixtures();
    let etcd = EtcdServer::start();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let config = dir.join("enc.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let transformers = EncryptionConfiguration::load(&config)
        .unwrap()
        .build()
        .unwrap();
    let read = |name: &str| std::fs::read(fixtures.join(name)).unwrap();
    let widget = br#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"ns"},"spec":{"size":3}}"#;
    let values: Vec<(&str, &str, Vec<u8>)> = vec![
        (SECRET, "secrets", read("core.v1.Secret.pb")),
        (CONFIG_MAP, "configmaps", read("core.v1.ConfigMap.pb")),
        (
            DEPLOYMENT,
            "deployments.apps",
            read("apps.v1.Deployment.pb"),
        ),
        (WIDGET, "widgets.example.com", widget.to_vec()),
        (CBOR, "secrets", vec![0xd9, 0xd9, 0xf7, 0xa0]),
        (BYTES, "secrets", b"\x1b[2Jnot an object".to_vec()),
    ];
    rt().block_on(async {
        let store = EtcdStore::connect(EtcdOptions::new([etcd.url.as_str()]))
            .await
            .unwrap();
        for (key, resource, plain) in &values {
            let stored = transformers
                .for_resource(resource)
                .encrypt(plain, (*key).into())
                .await
                .unwrap();
            assert!(stored.starts_with(b"k8s:enc:aescbc:v1:key1:"));
            store.put(key.as_bytes(), &stored).await.unwrap();
        }
    });
    let etcdctl = |args: &[&str]| {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", etcd.url))
            .args(args)
            .output()
            .expect("etcdctl");
        assert!(out.status.success(), "{}", text(&out.stderr));
        out.stdout
    };
    let dump = dir.join("dump.json");
    std::fs::write(
        &dump,
        etcdctl(&["get", "--prefix", "/registry/", "-w", "json"]),
    )
    .unwrap();
    let snapshot = dir.join("backup.db");
    etcdctl(&["snapshot", "save", s(&snapshot)]);

    let stores: [[&str; 2]; 3] = [
        ["--etcd", etcd.url.as_str()],
        ["--dump", s(&dump)],
        ["--snapshot", s(&snapshot)],
    ];
    let mut exports = Vec::new();
    for store in &stores {
        let get = |key: &str, output: &str| {
            let mut args = vec!["get", "--config", s(&config)];
            args.extend_from_slice(store);
            args.extend_from_slice(&[key, "--output", output]);
            run(&args)
        };
        for (key, name) in [
            (SECRET, "core.v1.Secret"),
            (CONFIG_MAP, "core.v1.ConfigMap"),
        ] {
            let json = get(key, "json");
            assert_eq!(
                ok(&json),
                format!("{}\n", text(&read(&format!("{name}.json")))),
                "{store:?} {key}"
            );
            assert!(
                text(&json.stderr).contains(&format!("{key}: aescbc:key1, current, revision")),
                "{}",
                text(&json.stderr)
            );
            assert_eq!(ok(&get(key, "yaml")), text(&read(&format!("{name}.yaml"))));
            assert_eq!(get(key, "raw").stdout, read(&format!("{name}.pb")));
        }
        // Another kind: its metadata, and the rest kept.
        let deployment: serde_json::Value =
            serde_json::from_str(&ok(&get(DEPLOYMENT, "json"))).unwrap();
        let served: serde_json::Value =
            serde_json::from_slice(&read("apps.v1.Deployment.json")).unwrap();
        assert_eq!(deployment["metadata"], served["metadata"]);
        assert_eq!(deployment["kind"], "Deployment");
        assert!(deployment["x-k8s-envelope-undecoded-protobuf"].is_string());
        // JSON passed through; CBOR and bytes reported, never guessed at,
        // and never echoed.
        let widget_json: serde_json::Value =
            serde_json::from_str(&ok(&get(WIDGET, "json"))).unwrap();
        assert_eq!(widget_json["spec"]["size"], 3);
        let cbor = get(CBOR, "json");
        assert_eq!(cbor.status.code(), Some(1));
        assert!(
            text(&cbor.stderr).contains("CBOR"),
            "{}",
            text(&cbor.stderr)
        );
        let bytes = get(BYTES, "yaml");
        assert_eq!(bytes.status.code(), Some(1));
        assert!(text(&bytes.stderr).contains("not a Kubernetes object"));
        assert!(
            !text(&bytes.stderr).contains("[2J"),
            "{}",
            text(&bytes.stderr)
        );
        let missing = get("/registry/secrets/ns/none", "json");
        assert_eq!(missing.status.code(), Some(1));
        assert!(text(&missing.stderr).contains("no such key"));

        // export: every store gives the same lines; CBOR and bytes fail it.
        let mut args = vec!["export", "--config", s(&config)];
        args.extend_from_slice(store);
        args.extend_from_slice(&["--prefix", "/registry/", "--output", "jsonl"]);
        let export = run(&args);
        assert_eq!(export.status.code(), Some(1), "{}", text(&export.stderr));
        assert!(text(&export.stderr).contains("2 value(s) not exported"));
        exports.push(text(&export.stdout));
    }
    assert_eq!(exports[0].lines().count(), 4, "{}", exports[0]);
    assert!(
        exports.iter().all(|e| *e == exports[0]),
        "the stores export the same objects"
    );

    // A List, as kubectl prints one.
    let list = run(&[
        "export",
        "--config",
        s(&config),
        "--snapshot",
        s(&snapshot),
        "--prefix",
        "/registry/secrets/",
        "--output",
        "json",
    ]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("a JSON List");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // One file per object, 0600, in a tree; a symbolic link is not followed.
    let out = dir.join("export");
    let files = run(&[
        "export",
        "--config",
        s(&config),
        "--snapshot",
        s(&snapshot),
        "--prefix",
        "/registry/",
        "--dir",
        s(&out),
    ]);
    assert_eq!(files.status.code(), Some(1));
    let secret = out.join("namespaces/namespaceValue/secrets/nameValue.yaml");
    assert_eq!(std::fs::read(&secret).unwrap(), read("core.v1.Secret.yaml"));
    assert!(out
        .join("namespaces/ns/widgets.example.com/w.yaml")
        .is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let elsewhere = dir.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let trap = dir.join("trap");
        std::fs::create_dir_all(trap.join("namespaces")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, trap.join("namespaces/namespaceValue")).unwrap();
        let refused = run(&[
            "export",
            "--config",
            s(&config),
            "--snapshot",
            s(&snapshot),
            "--prefix",
            "/registry/secrets/",
            "--dir",
            s(&trap),
        ]);
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            text(&refused.stderr).contains("not followed"),
            "{}",
            text(&refused.stderr)
        );
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }
}
