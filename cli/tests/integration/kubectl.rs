//! What `get` and `export` write, read back by kubectl (Go's YAML and JSON
//! readers, as `kubectl apply` would read the file): every string stays the
//! string it was, whatever YAML 1.1 would make of it unquoted, and a
//! Secret exported with `--decode-data` holds the same bytes.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use k8s_envelope::store::DumpStore;
use k8s_envelope_test_support::kubectl::read_back;
use k8s_envelope_test_support::objects::secret_protobuf;
use serde_json::{json, Value};

const CLI: &str = env!("CARGO_BIN_EXE_k8s-envelope");

const CONFIG: &str = "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets, configmaps, widgets.example.com]
    providers:
      - identity: {}
";

/// Strings Go's YAML reader reads as something else when unquoted, or
/// that are YAML syntax: integers of every base and case, floats, special
/// floats, booleans, nulls, dates and timestamps, merge keys, indicators,
/// white space, and a UID (which stays plain, as kubectl prints it).
const TRICKY: &[&str] = &[
    "0X1F",
    "0x1f",
    "0B101",
    "0b101",
    "0O17",
    "0o17",
    "0XdeadBEEF",
    "017",
    "019",
    "1_000",
    "0x_1f",
    "+1",
    "-1",
    "1e3",
    "1E3",
    "1.5",
    "1.",
    ".5",
    "-.5",
    "1.5e-3",
    ".inf",
    "-.inf",
    "+.INF",
    ".nan",
    ".NaN",
    "true",
    "True",
    "TRUE",
    "false",
    "yes",
    "Yes",
    "no",
    "No",
    "y",
    "Y",
    "n",
    "N",
    "on",
    "On",
    "off",
    "OFF",
    "null",
    "Null",
    "NULL",
    "~",
    "",
    "2024-01-02",
    "2024-1-2",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "<<",
    "=",
    "- a",
    "-",
    "? x",
    ":",
    ": y",
    "a: b",
    "a #b",
    "#c",
    "&a",
    "*a",
    "!t",
    "!!str",
    "|",
    "> x",
    "'q",
    "\"d",
    "%p",
    "@a",
    "`b",
    "[a]",
    "{a}",
    ",",
    " lead",
    "trail ",
    "multi\nline",
    "tab\tx",
    "1:20",
    "1:20:30",
    "12abc",
    "3c1a77e0-5d1f-4c33-9d1b-0a5e1f2c8d41",
];

fn cli(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(CLI)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the CLI");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn tricky_map(suffix: &str) -> serde_json::Map<String, Value> {
    TRICKY
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            [
                ((*s).to_owned(), json!(format!("{s}{suffix}"))),
                (format!("v{i}"), json!(s)),
            ]
        })
        .collect()
}

#[test]
#[ignore = "needs kubectl"]
fn exported_yaml_reads_back_the_same_through_kubectl() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("enc.yaml"), CONFIG).expect("config");
    let config_map = json!({
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "tricky", "namespace": "default", "annotations": tricky_map("")},
        "data": tricky_map("-value"),
    });
    let widget = json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"fields": tricky_map(""), "list": TRICKY},
    });
    let dump = DumpStore::new("test");
    dump.put(
        b"/registry/configmaps/default/tricky",
        config_map.to_string().as_bytes(),
    );
    dump.put(
        b"/registry/example.com/widgets/default/w",
        widget.to_string().as_bytes(),
    );
    dump.write(dir.path().join("dump.json")).expect("dump");

    let args = [
        "export",
        "--config",
        "enc.yaml",
        "--dump",
        "dump.json",
        "--prefix",
        "/registry/",
    ];
    let yaml = cli(dir.path(), &[&args[..], &["--output", "yaml"]].concat());
    let file = dir.path().join("export.yaml");
    std::fs::write(&file, &yaml).expect("write");
    let ours: Vec<Value> = cli(dir.path(), &[&args[..], &["--output", "jsonl"]].concat())
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let theirs = read_back(&file);
    assert_eq!(ours.len(), 2);
    assert_eq!(theirs.len(), ours.len(), "{yaml}");
    for (theirs, ours) in theirs.iter().zip(&ours) {
        // Entry by entry, so that a difference names the string.
        for part in ["data", "spec"] {
            if let (Some(t), Some(o)) = (theirs[part].as_object(), ours[part].as_object()) {
                for (key, value) in o {
                    assert_eq!(t.get(key), Some(value), "{part}.{key:?} in:\n{yaml}");
                }
            }
        }
        assert_eq!(theirs, ours, "{yaml}");
    }
    assert_eq!(ours[0], config_map);
    assert_eq!(ours[1], widget);
}

/// `--decode-data` writes UTF-8 values under `stringData` and binary ones
/// under `data`: kubectl reads back base64-decoded `data` plus
/// `stringData`, the stored bytes, key for key.
#[test]
#[ignore = "needs kubectl"]
fn decoded_data_reads_back_as_the_stored_bytes_through_kubectl() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("enc.yaml"), CONFIG).expect("config");
    let mut data: Vec<(String, Vec<u8>)> = TRICKY
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("text-{i}"), s.as_bytes().to_vec()))
        .collect();
    data.push(("binary".into(), vec![0xff, 0x00, 0xfe, 0x80]));
    data.push(("latin1".into(), b"caf\xe9".to_vec()));
    data.push(("empty".into(), Vec::new()));
    let borrowed: Vec<(&str, &[u8])> = data
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let dump = DumpStore::new("test");
    dump.put(
        b"/registry/secrets/default/s",
        &secret_protobuf("default", "s", &borrowed),
    );
    dump.write(dir.path().join("dump.json")).expect("dump");
    for (command, extra) in [
        ("export", &["--prefix", "/registry/secrets/"][..]),
        ("get", &["/registry/secrets/default/s"][..]),
    ] {
        let args = [
            &[
                command,
                "--config",
                "enc.yaml",
                "--dump",
                "dump.json",
                "--decode-data",
            ][..],
            extra,
        ]
        .concat();
        let yaml = cli(dir.path(), &args);
        let file = dir.path().join("secret.yaml");
        std::fs::write(&file, &yaml).expect("write");
        let theirs = read_back(&file);
        let [secret] = theirs.as_slice() else {
            panic!("{command}: {theirs:?}");
        };
        let mut read: Vec<(String, Vec<u8>)> = Vec::new();
        for (key, value) in secret["data"].as_object().into_iter().flatten() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().expect("base64"))
                .expect("base64");
            read.push((key.clone(), bytes));
        }
        for (key, value) in secret["stringData"].as_object().into_iter().flatten() {
            read.push((
                key.clone(),
                value.as_str().expect("text").as_bytes().to_vec(),
            ));
        }
        read.sort();
        let mut expected = data.clone();
        expected.sort();
        assert_eq!(read, expected, "{command}:\n{yaml}");
        assert!(
            secret["data"]["binary"].is_string(),
            "{command}: binary stays in data"
        );
        assert!(
            secret["stringData"]["text-0"].is_string(),
            "{command}: text in stringData"
        );
    }
}
