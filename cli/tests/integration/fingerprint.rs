//! `k8s-envelope fingerprint`: config hash, key fingerprints (never keys),
//! KMS key-ID hashes from a real plugin, and the probe self-test.

use k8s_envelope_test_support::paths::workspace_binary;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "8PHy8/T19vf4+fr7/P3+/wABAgMEBQYHCAkKCwwNDg8=";

struct Dir(PathBuf);

impl Dir {
    fn new(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("k8s-envelope-fp-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn aesgcm_config(keys: &[(&str, &str)]) -> String {
    let mut yaml = String::from(
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets, \"*.apps\"]\n    providers:\n      - aesgcm:\n          keys:\n",
    );
    for (name, secret) in keys {
        yaml.push_str(&format!(
            "            - name: {name}\n              secret: {secret}\n"
        ));
    }
    yaml
}

fn run(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_k8s-envelope"))
        .arg("fingerprint")
        .args(args)
        .output()
        .expect("run the CLI")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn prints_the_config_hash_and_key_fingerprints_but_no_key() {
    let dir = Dir::new("print");
    let yaml = aesgcm_config(&[("new", KEY_A), ("old", KEY_B)]);
    let config = dir.file("config.yaml", &yaml);
    let out = run(&[&config]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    // The apiserver's reload hash: sha256 of the file's bytes.
    assert!(
        text.contains(&format!("sha256:{}", hex_sha256(&[yaml.as_bytes()]))),
        "{text}"
    );
    let key = BASE64.decode(KEY_A).expect("base64");
    let fingerprint = hex_sha256(&[b"k8s-envelope key fingerprint v1\0", &key]);
    assert!(
        text.contains(&format!(
            "resources[0] secrets,*.apps: writes with aesgcm \"new\" sha256:{fingerprint}"
        )),
        "{text}"
    );
    let everything = text + &String::from_utf8_lossy(&out.stderr);
    for secret in [KEY_A, KEY_B] {
        assert!(
            !everything.contains(secret),
            "a key was printed: {everything}"
        );
    }
}

#[test]
fn self_test_passes_when_the_file_on_disk_has_the_key_in_use() {
    let dir = Dir::new("self");
    let config = dir.file("config.yaml", &aesgcm_config(&[("new", KEY_A)]));
    let out = run(&[&config, Path::new("--self-test")]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("ok: read back, same key"));
}

#[test]
fn probe_against_another_config_fails_unless_it_writes_with_the_same_key() {
    let dir = Dir::new("against");
    let in_use = dir.file("in-use.yaml", &aesgcm_config(&[("new", KEY_A)]));
    let same = dir.file(
        "same.yaml",
        &aesgcm_config(&[("new", KEY_A), ("old", KEY_B)]),
    );
    let reader_only = dir.file(
        "reader.yaml",
        &aesgcm_config(&[("old", KEY_B), ("new", KEY_A)]),
    );
    let other = dir.file("other.yaml", &aesgcm_config(&[("new", KEY_B)]));

    let ok = run(&[&in_use, Path::new("--against"), &same]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));

    let stale = run(&[&in_use, Path::new("--against"), &reader_only]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(
        stdout(&stale).contains("another key (stale)"),
        "{}",
        stdout(&stale)
    );

    // Same key name, different key material: the probe does not decrypt.
    let wrong = run(&[&in_use, Path::new("--against"), &other]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stdout(&wrong).contains("FAILED: read back"),
        "{}",
        stdout(&wrong)
    );
}

use k8s_envelope_test_support::process::Reaped as Plugin;

#[test]
fn kms_v2_writers_show_the_plugins_key_id_hash_and_pass_the_probe() {
    let dir = Dir::new("kms");
    let socket = dir.0.join("kms.sock");
    let _plugin = Plugin(
        Command::new(workspace_binary("kms-plugin-local"))
            .args(["--mock-base64", "--socket"])
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the plugin"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "plugin did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let config = dir.file(
        "kms.yaml",
        &format!(
            "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n      - kms:\n          apiVersion: v2\n          name: mock\n          endpoint: unix://{}\n",
            socket.display()
        ),
    );
    let out = run(&[&config, Path::new("--self-test")]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The mock plugin's key ID is "1"; only its hash is shown.
    let hash = hex_sha256(&[b"1"]);
    assert!(
        text.contains(&format!("writes with kms v2 \"mock\" sha256:{hash}")),
        "{text}"
    );
    assert!(text.contains("ok: read back, same key"), "{text}");
}

/// A KMS plugin that does not answer is reported once, though
/// `--self-test` builds the configuration twice (in use, and read again
/// from disk).
#[test]
fn a_plugin_that_does_not_answer_is_reported_once() {
    let dir = Dir::new("down");
    let socket = dir.0.join("none.sock");
    let config = dir.file(
        "enc.yaml",
        &format!(
            "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n      - kms:\n          apiVersion: v2\n          name: down\n          endpoint: unix://{}\n          timeout: 1s\n",
            socket.display()
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_k8s-envelope"))
        .arg("fingerprint")
        .arg(&config)
        .arg("--self-test")
        .output()
        .expect("run the CLI");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
}
