//! `k8s-envelope kms-check` against real plugin processes: our
//! `kms-plugin-local` (a KEK file, and its base64 mock), and the Go
//! reference's grpc-go mock plugin, sound and with each of its fault flags.

#![cfg(unix)]

use k8s_envelope_test_support::paths::workspace_binary;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use k8s_envelope_test_support::k8sref::k8sref;
use k8s_envelope_test_support::plugin_process::PluginProcess;

const CLI: &str = env!("CARGO_BIN_EXE_k8s-envelope");

/// Runs `kms-check --output json` on `endpoint`: the exit status and the report.
fn kms_check(endpoint: &str, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(CLI)
        .args(["kms-check", "--endpoint", endpoint, "--output", "json"])
        .args(extra)
        .output()
        .expect("run kms-check");
    let code = out.status.code().expect("exit status");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "kms-check printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, report)
}

/// The ids of the checks with `result`.
fn with_result(report: &Value, result: &str) -> Vec<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["result"] == result)
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

fn local_plugin(api: &str) -> PluginProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek = dir.path().join("kek.b64");
    let status = Command::new(CLI)
        .args(["keygen", "--out"])
        .arg(&kek)
        .status()
        .expect("keygen");
    assert!(status.success());
    let kek = kek.to_str().expect("utf-8 path");
    let plugin = PluginProcess::start(
        &workspace_binary("kms-plugin-local"),
        &["--kek-file", kek, "--api", api],
        "kms-plugin-local",
    );
    // The plugin has read its KEK (it serves); the keyring stays in `dir`.
    std::mem::forget(dir);
    plugin
}

#[test]
fn kms_plugin_local_passes_every_check_v2_and_v1() {
    let plugin = local_plugin("both");
    let (code, report) = kms_check(&plugin.endpoint(), &["--strict"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["passed"], true);
    assert_eq!(report["summary"]["pass"], 17, "{report:#}");
    assert_eq!(report["api"], "v2");
    let (code, report) = kms_check(&plugin.endpoint(), &["--strict", "--api", "v1"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["pass"], 11, "{report:#}");
    assert_eq!(report["api"], "v1");
}

#[test]
fn our_base64_mock_fails_with_the_dek_in_clear_unless_allowed() {
    let ours = PluginProcess::start(
        &workspace_binary("kms-plugin-local"),
        &["--mock-base64"],
        "kms-plugin-local --mock-base64",
    );
    a_base64_mock_fails_with_the_dek_in_clear_unless_allowed(&ours);
}

#[test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh)"]
fn the_go_base64_mock_fails_with_the_dek_in_clear_unless_allowed() {
    let theirs = PluginProcess::start(&k8sref(), &["kms-plugin", "--api", "both"], "k8sref");
    a_base64_mock_fails_with_the_dek_in_clear_unless_allowed(&theirs);
}

/// A plugin that leaves the DEK in clear fails (exit 1) on that alone,
/// saying so; `--allow-insecure` passes it with the finding as a warning.
fn a_base64_mock_fails_with_the_dek_in_clear_unless_allowed(plugin: &PluginProcess) {
    let (code, report) = kms_check(&plugin.endpoint(), &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        with_result(&report, "fail"),
        ["encrypt.dek_concealed"],
        "{report:#}"
    );
    let (code, report) = kms_check(&plugin.endpoint(), &["--allow-insecure"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["allow_insecure"], true);
    assert_eq!(
        with_result(&report, "warn"),
        [
            "encrypt.dek_concealed",
            "corrupted_ciphertext",
            "foreign_key_id"
        ],
        "{report:#}"
    );
    assert!(with_result(&report, "fail").is_empty());
    let (code, report) = kms_check(&plugin.endpoint(), &["--allow-insecure", "--strict"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["passed"], false);
    let (code, report) = kms_check(&plugin.endpoint(), &["--api", "v1", "--allow-insecure"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        with_result(&report, "warn"),
        ["encrypt.dek_concealed", "corrupted_ciphertext"]
    );
    let out = Command::new(CLI)
        .args(["kms-check", "--endpoint", &plugin.endpoint()])
        .output()
        .expect("run");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("1 failed, 0 skipped: the plugin leaves the DEK in clear (--allow-insecure passes a test mock)"),
        "{table}"
    );
}

/// The Go reference's plugins that leave the DEK in clear in each way
/// (`--cipher base64|hex|identity`) each fail on it, and on nothing else
/// that a sound plugin passes.
#[test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh)"]
fn every_go_plugin_that_leaves_the_dek_in_clear_fails() {
    let k8sref = k8sref();
    for cipher in ["base64", "hex", "identity"] {
        let plugin = PluginProcess::start(&k8sref, &["kms-plugin", "--cipher", cipher], "k8sref");
        let (code, report) = kms_check(&plugin.endpoint(), &[]);
        assert_eq!(code, 1, "{cipher}: {report:#}");
        assert_eq!(
            with_result(&report, "fail"),
            ["encrypt.dek_concealed"],
            "{cipher}: {report:#}"
        );
        let detail = report["checks"]
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["id"] == "encrypt.dek_concealed"))
            .and_then(|c| c["detail"].as_str())
            .unwrap_or_default()
            .to_owned();
        assert!(
            detail.contains("holds the DEK in clear"),
            "{cipher}: {detail}"
        );
    }
}

/// Each fault flag of the Go mock fails the checks of the rule it breaks.
#[test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh)"]
fn the_go_mock_with_each_fault_fails_its_checks() {
    let k8sref = k8sref();
    let scratch = tempfile::tempdir().expect("tempdir");
    let empty = scratch.path().join("empty-key-id");
    fs::write(&empty, "").expect("write");
    let long = scratch.path().join("long-key-id");
    fs::write(&long, "k".repeat(2048)).expect("write");
    let fail = scratch.path().join("fail");
    fs::write(&fail, "").expect("write");
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    let cases: Vec<(Vec<String>, &[&str])> = vec![
        (
            vec!["--key-id-file".into(), path(&empty)],
            &["status.key_id", "encrypt.key_id"],
        ),
        (
            vec!["--key-id-file".into(), path(&long)],
            &["status.key_id", "encrypt.key_id"],
        ),
        (
            vec!["--delay-ms".into(), "5000".into()],
            &["status.answers", "latency"],
        ),
        (
            vec!["--fail-file".into(), path(&fail)],
            &["status.healthz", "encrypt.answers", "concurrency"],
        ),
        (
            vec!["--encrypt-key-id".into(), "not-the-status-key".into()],
            &["encrypt.key_id"],
        ),
        (
            vec!["--annotation-key".into(), "Not_A_Domain".into()],
            &["encrypt.annotations"],
        ),
        (
            vec!["--ciphertext-pad".into(), "1100".into()],
            &["encrypt.ciphertext"],
        ),
    ];
    for (flags, failing) in cases {
        let mut args = vec!["kms-plugin"];
        args.extend(flags.iter().map(String::as_str));
        let plugin = PluginProcess::start(&k8sref, &args, "k8sref");
        // The Go mock is base64: allowed, so that each fault is what fails.
        let (code, report) = kms_check(&plugin.endpoint(), &["--allow-insecure"]);
        assert_eq!(code, 1, "{flags:?}: {report:#}");
        // The checks of the broken rule fail; a broken answer can break
        // later calls too (the Go mock refuses a Decrypt without a key ID).
        let failed = with_result(&report, "fail");
        for id in failing {
            assert!(
                failed.iter().any(|f| f == id),
                "{flags:?}: {id} passed: {report:#}"
            );
        }
        eprintln!("{flags:?}: failed {failed:?}");
    }
}

#[test]
fn the_table_names_every_check_and_sums_up() {
    let plugin = local_plugin("v2");
    let out = Command::new(CLI)
        .args(["kms-check", "--endpoint", &plugin.endpoint()])
        .output()
        .expect("run");
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<_> = table.lines().collect();
    assert_eq!(
        lines[0],
        format!("kms-check: {} (KMS v2), timeout 3s", plugin.endpoint())
    );
    assert!(lines[1].starts_with("CHECK") && lines[1].contains("RESULT  DETAIL"));
    assert!(lines[2].starts_with("status.answers") && lines[2].contains("  pass  "));
    assert_eq!(
        lines.last().copied(),
        Some("17 checks: 17 passed, 0 warning(s), 0 failed, 0 skipped")
    );
}

#[test]
fn bad_usage_and_no_plugin_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let none = format!("unix://{}", dir.path().join("none.sock").display());
    for args in [
        vec!["kms-check", "--endpoint", none.as_str()],
        vec!["kms-check", "--endpoint", "tcp://127.0.0.1:1"],
        vec!["kms-check", "--endpoint", none.as_str(), "--timeout", "0s"],
        vec![
            "kms-check",
            "--endpoint",
            none.as_str(),
            "--timeout",
            "soon",
        ],
        vec!["kms-check"],
    ] {
        let out = Command::new(CLI).args(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = Command::new(CLI)
        .args(["kms-check", "--endpoint", &none])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no KMS plugin listens on"), "{stderr}");
}

/// A socket's path given without `unix://` says what to write instead.
#[test]
fn a_bare_socket_path_says_to_write_unix() {
    for endpoint in ["/run/kms/kms.sock", "@kms"] {
        let out = Command::new(CLI)
            .args(["kms-check", "--endpoint", endpoint])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{endpoint}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("give the socket's path as unix://PATH"),
            "{endpoint}: {stderr}"
        );
    }
}
