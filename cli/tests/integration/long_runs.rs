//! Long runs over a store: the same output in key order at every
//! concurrency (`export`, `verify`), progress lines in a log (stderr not a
//! terminal) for `scan`, `verify`, `export` and `reencrypt`, and the shapes
//! of `scan --output json` and `jsonl`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use k8s_envelope::store::DumpStore;
use k8s_envelope::EncryptionConfiguration;
use k8s_envelope_test_support::objects::secret_protobuf;
use serde_json::Value;

const CLI: &str = env!("CARGO_BIN_EXE_k8s-envelope");
const CONFIG: &str = k8s_envelope_test_support::fixtures::SECRETS_AESGCM_KEY1;

/// A dump of `n` Secrets under key1 in `dir`, every 97th one unreadable
/// (under a key the configuration lacks) and every 89th a plaintext that
/// is no object; the config beside it.
fn setup(dir: &Path, n: usize) {
    std::fs::write(dir.join("enc.yaml"), CONFIG).expect("config");
    let t = EncryptionConfiguration::from_yaml(CONFIG.as_bytes())
        .expect("config")
        .build()
        .expect("build");
    let dump = DumpStore::new("long runs");
    for i in 0..n {
        let key = format!("/registry/secrets/ns{:02}/s-{i:05}", i % 7);
        let value = if i % 97 == 96 {
            b"k8s:enc:aesgcm:v1:lost:0123456789012345678901234567890123456789".to_vec()
        } else {
            let plaintext = if i % 89 == 88 {
                b"no object".to_vec()
            } else {
                secret_protobuf(
                    &format!("ns{:02}", i % 7),
                    &format!("s-{i:05}"),
                    &[("k", b"v")],
                )
            };
            t.for_resource("secrets")
                .encrypt_blocking(&plaintext, key.as_str().into())
                .expect("encrypt")
        };
        dump.put(key.as_bytes(), &value);
    }
    dump.write(dir.join("dump.json")).expect("write dump");
}

fn run(dir: &Path, args: &[&str], interval_ms: Option<u64>) -> Output {
    let mut command = Command::new(CLI);
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match interval_ms {
        Some(ms) => command.env("K8S_ENVELOPE_PROGRESS_INTERVAL_MS", ms.to_string()),
        None => command.env_remove("K8S_ENVELOPE_PROGRESS_INTERVAL_MS"),
    };
    command.output().expect("run the CLI")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn export_and_verify_print_the_same_at_every_concurrency() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path(), 2_000);
    for command in [
        &[
            "export",
            "--config",
            "enc.yaml",
            "--dump",
            "dump.json",
            "--output",
            "jsonl",
        ][..],
        &[
            "verify",
            "--config",
            "enc.yaml",
            "--dump",
            "dump.json",
            "--output",
            "jsonl",
        ][..],
    ] {
        let outputs: Vec<Output> = ["1", "3", "16"]
            .iter()
            .map(|c| {
                let mut args = command.to_vec();
                args.extend(["--concurrency", c]);
                run(dir.path(), &args, None)
            })
            .collect();
        for out in &outputs {
            // Unreadable values: exit 1, and the rest still printed.
            assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
            assert_eq!(out.stdout, outputs[0].stdout, "{command:?}");
        }
        let stdout = text(&outputs[0].stdout);
        let keys: Vec<String> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                // verify: each unreadable value's key; export: each object's
                // namespace and name, which sort as their keys do.
                v.get("key")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| {
                        let ns = v.pointer("/metadata/namespace")?.as_str()?;
                        let name = v.pointer("/metadata/name")?.as_str()?;
                        Some(format!("{ns}/{name}"))
                    })
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{command:?}: not in key order");
        assert!(keys.len() > 20, "{command:?}: {} lines", keys.len());
    }
}

#[test]
fn long_runs_print_progress_lines_when_stderr_is_a_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path(), 6_000);
    for (command, args) in [
        (
            "scan",
            &["scan", "--config", "enc.yaml", "--dump", "dump.json"][..],
        ),
        (
            "verify",
            &[
                "verify",
                "--config",
                "enc.yaml",
                "--dump",
                "dump.json",
                "--output",
                "jsonl",
            ][..],
        ),
        (
            "export",
            &[
                "export",
                "--config",
                "enc.yaml",
                "--dump",
                "dump.json",
                "--output",
                "jsonl",
            ][..],
        ),
        (
            "reencrypt",
            &[
                "reencrypt",
                "--config",
                "enc.yaml",
                "--dump",
                "dump.json",
                "--dry-run",
            ][..],
        ),
    ] {
        let out = run(dir.path(), args, Some(10));
        let stderr = text(&out.stderr);
        // A dump file is read as it streams: no total to give a share of.
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| {
                l.starts_with(&format!("k8s-envelope: {command}: ")) && l.contains(" values in ")
            })
            .collect();
        assert!(
            lines.len() > 1,
            "{command}: no progress lines in:\n{stderr}"
        );
        assert!(lines.iter().all(|l| l.ends_with("/s")), "{lines:?}");
        // The count moves: the last line counts values.
        let last: u64 = lines[lines.len() - 1]
            .trim_start_matches(&format!("k8s-envelope: {command}: "))
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a count");
        assert!(last > 0, "{lines:?}");
        // Not every 10 ms without the variable: every 10 s.
        let quiet = run(dir.path(), args, None);
        assert!(
            !text(&quiet.stderr).contains(" values in "),
            "{command}: {}",
            text(&quiet.stderr)
        );
    }
}

#[test]
fn scan_json_is_rows_and_totals_and_jsonl_the_same_as_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path(), 300);
    let jsonl = run(
        dir.path(),
        &[
            "scan",
            "--config",
            "enc.yaml",
            "--dump",
            "dump.json",
            "--output",
            "jsonl",
        ],
        None,
    );
    assert_eq!(jsonl.status.code(), Some(1), "3 values are unreadable");
    let lines: Vec<Value> = text(&jsonl.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let (totals, rows) = lines.split_last().expect("lines");
    assert_eq!(totals["type"], "totals");
    assert_eq!(totals["values"], 300);
    assert_eq!(totals["unreadable"], 3);
    assert_eq!(totals["current"], 297);
    assert!(rows.iter().all(|r| r["type"] == "row"));
    let counted: u64 = rows
        .iter()
        .map(|r| r["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(counted, 300);

    let json = run(
        dir.path(),
        &[
            "scan",
            "--config",
            "enc.yaml",
            "--dump",
            "dump.json",
            "--output",
            "json",
        ],
        None,
    );
    let document: Value = serde_json::from_slice(&json.stdout).expect("one JSON object");
    assert_eq!(document["rows"].as_array().expect("rows"), rows);
    assert_eq!(&document["totals"], totals);
}
