//! The CLI contract (DESIGN.md): commands, JSON Lines mode, exit statuses
//! 0 (success), 1 (a value could not be transformed), 2 (bad usage or config).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

const CLI: &str = env!("CARGO_BIN_EXE_k8s-envelope");

const CONFIG: &str = "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: new
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
      - aescbc:
          keys:
            - name: old
              secret: c2VjcmV0IGlzIHNlY3VyZQ==
";

const OLD_CONFIG: &str = "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - name: old
              secret: c2VjcmV0IGlzIHNlY3VyZQ==
";

/// A config file in a fresh temporary directory, removed on drop.
struct TempConfig {
    dir: PathBuf,
    path: PathBuf,
}

impl TempConfig {
    fn new(name: &str, contents: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("k8s-envelope-cli-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("config.yaml");
        std::fs::write(&path, contents).expect("write config");
        Self { dir, path }
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(CLI)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the CLI");
    let written = child.stdin.take().expect("stdin").write_all(stdin);
    // The CLI may exit (bad usage or config) before reading its input.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    child.wait_with_output().expect("CLI output")
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

fn path(config: &TempConfig) -> &str {
    config.path.to_str().expect("utf-8 temp path")
}

#[test]
fn validate_accepts_a_valid_config() {
    let config = TempConfig::new("valid", CONFIG);
    let out = run(&["validate", path(&config)], b"");
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
}

#[test]
fn validate_prints_every_error_with_its_field_path_and_exits_2() {
    let bad = CONFIG
        .replace("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "c2hvcnQ=")
        .replace("name: old", "name: \"\"");
    let config = TempConfig::new("invalid", &bad);
    let out = run(&["validate", path(&config)], b"");
    assert_eq!(status(&out), 2);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 5, expected one of [16 24 32]"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("resources[0].providers[1].aescbc.keys[0].name: Required value"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("c2hvcnQ="),
        "a secret was printed: {stdout}"
    );
}

#[test]
fn a_missing_or_unparsable_config_exits_2() {
    let out = run(&["validate", "/nonexistent/config.yaml"], b"");
    assert_eq!(status(&out), 2);
    let config = TempConfig::new("garbage", "kind: [unclosed");
    let out = run(
        &[
            "encrypt",
            "--config",
            path(&config),
            "--storage-key",
            "/registry/secrets/default/k",
        ],
        b"x",
    );
    assert_eq!(status(&out), 2);
}

#[test]
fn bad_usage_exits_2() {
    let config = TempConfig::new("usage", CONFIG);
    // --storage-key is required outside JSON Lines mode.
    assert_eq!(
        status(&run(&["encrypt", "--config", path(&config)], b"")),
        2
    );
    assert_eq!(status(&run(&["frobnicate"], b"")), 2);
    assert_eq!(status(&run(&["keygen", "--bytes", "0"], b"")), 2);
    // Only lengths a provider takes: 7 or 64 bytes would make keys that no
    // configuration accepts.
    for bad in ["7", "15", "31", "64", "1024", "x"] {
        let out = run(&["keygen", "--bytes", bad], b"");
        assert_eq!(status(&out), 2, "--bytes {bad}");
        assert!(out.stdout.is_empty(), "--bytes {bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("16, 24 or 32"));
    }
    // --help says when --storage-key is required.
    for command in ["encrypt", "decrypt"] {
        let help = String::from_utf8_lossy(&run(&[command, "--help"], b"").stdout).into_owned();
        assert!(help.contains("Required unless --jsonl"), "{help}");
    }
}

#[test]
fn keygen_prints_a_random_base64_key_of_the_requested_length() {
    for (args, len) in [
        (&["keygen"][..], 32),
        (&["keygen", "--bytes", "16"][..], 16),
        (&["keygen", "--bytes", "24"][..], 24),
    ] {
        let out = run(args, b"");
        assert_eq!(status(&out), 0);
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let key = BASE64.decode(text.trim()).expect("base64 key");
        assert_eq!(key.len(), len);
    }
    let a = run(&["keygen"], b"").stdout;
    let b = run(&["keygen"], b"").stdout;
    assert_ne!(a, b);
}

#[test]
fn single_value_encrypt_then_decrypt_round_trips() {
    let config = TempConfig::new("single", CONFIG);
    let key = "/registry/secrets/default/db";
    let plaintext = b"\x00binary\xffpayload\n";
    let enc = run(
        &["encrypt", "--config", path(&config), "--storage-key", key],
        plaintext,
    );
    assert_eq!(status(&enc), 0, "{}", String::from_utf8_lossy(&enc.stderr));
    assert!(enc.stdout.starts_with(b"k8s:enc:aesgcm:v1:new:"));

    let dec = run(
        &["decrypt", "--config", path(&config), "--storage-key", key],
        &enc.stdout,
    );
    assert_eq!(status(&dec), 0);
    assert_eq!(dec.stdout, plaintext);
    assert!(dec.stderr.is_empty(), "a current value has no stale note");

    // AES-GCM binds the storage key: another key cannot read it (exit 1).
    let moved = run(
        &[
            "decrypt",
            "--config",
            path(&config),
            "--storage-key",
            "/registry/secrets/default/other",
        ],
        &enc.stdout,
    );
    assert_eq!(status(&moved), 1);
    assert!(moved.stdout.is_empty());
}

#[test]
fn single_value_decrypt_notes_a_stale_value_on_stderr() {
    let old = TempConfig::new("stale-old", OLD_CONFIG);
    let new = TempConfig::new("stale-new", CONFIG);
    let enc = run(
        &[
            "encrypt",
            "--config",
            path(&old),
            "--storage-key",
            "/registry/secrets/default/k",
        ],
        b"value",
    );
    assert_eq!(status(&enc), 0);
    let dec = run(
        &[
            "decrypt",
            "--config",
            path(&new),
            "--storage-key",
            "/registry/secrets/default/k",
        ],
        &enc.stdout,
    );
    assert_eq!(status(&dec), 0);
    assert_eq!(dec.stdout, b"value");
    assert!(String::from_utf8_lossy(&dec.stderr).contains("stale"));
}

fn jsonl_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each output line is JSON"))
        .collect()
}

#[test]
fn jsonl_answers_every_line_in_order_and_goes_on_after_bad_lines() {
    let config = TempConfig::new("jsonl", CONFIG);
    let input = [
        r#"{"resource":"secrets","storage_key":"/a","plaintext_b64":"aGVsbG8="}"#,
        r#"not json"#,
        r#"{"storage_key":"/b","plaintext_b64":"not base64!"}"#,
        r#"{"storage_key":"/c","plaintext_b64":""}"#,
        r#"{"resource":"configmaps","storage_key":"/d","plaintext_b64":"cGxhaW4="}"#,
    ]
    .join("\n");
    let out = run(
        &["encrypt", "--config", path(&config), "--jsonl"],
        input.as_bytes(),
    );
    assert_eq!(status(&out), 1, "a failed line makes the exit status 1");
    let lines = jsonl_lines(&out);
    assert_eq!(lines.len(), 5);
    assert!(lines[0]["stored_b64"].is_string());
    assert!(lines[1]["error"].is_string());
    assert!(lines[2]["error"].is_string());
    assert!(lines[3]["stored_b64"].is_string());
    // configmaps is not covered by the config: it would be stored in
    // plaintext, so it is refused (`--allow-plaintext` stores it as is).
    assert!(lines[4]["error"]
        .as_str()
        .is_some_and(|e| e.contains("refusing to write \"configmaps\" in plaintext")));
    let out = run(
        &[
            "encrypt",
            "--config",
            path(&config),
            "--jsonl",
            "--allow-plaintext",
        ],
        input.as_bytes(),
    );
    assert_eq!(jsonl_lines(&out)[4]["stored_b64"], "cGxhaW4=");

    let decrypt_input = format!(
        "{}\n{}\n",
        serde_json::json!({"storage_key": "/a", "stored_b64": lines[0]["stored_b64"]}),
        serde_json::json!({"storage_key": "/wrong", "stored_b64": lines[0]["stored_b64"]}),
    );
    let out = run(
        &["decrypt", "--config", path(&config), "--jsonl"],
        decrypt_input.as_bytes(),
    );
    assert_eq!(status(&out), 1);
    let lines = jsonl_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["plaintext_b64"], "aGVsbG8=");
    assert_eq!(lines[0]["stale"], false);
    assert!(lines[1]["error"].is_string());
}

#[test]
fn jsonl_exits_0_when_every_line_succeeds() {
    let config = TempConfig::new("jsonl-ok", CONFIG);
    let input = "{\"storage_key\":\"/a\",\"plaintext_b64\":\"aGk=\"}\n\n{\"storage_key\":\"/b\",\"plaintext_b64\":\"aGk=\"}\n";
    let out = run(
        &["encrypt", "--config", path(&config), "--jsonl"],
        input.as_bytes(),
    );
    assert_eq!(status(&out), 0);
    assert_eq!(jsonl_lines(&out).len(), 2, "blank lines are skipped");
}

#[test]
fn errors_never_print_the_plaintext_or_keys() {
    let config = TempConfig::new("leak", CONFIG);
    let dec = run(
        &[
            "decrypt",
            "--config",
            path(&config),
            "--storage-key",
            "/registry/secrets/default/k",
        ],
        b"k8s:enc:aesgcm:v1:new:SUPERSECRETPLAINTEXTBYTES-not-a-real-ciphertext",
    );
    assert_eq!(status(&dec), 1);
    let stderr = String::from_utf8_lossy(&dec.stderr);
    assert!(!stderr.contains("SUPERSECRET"), "{stderr}");
    assert!(!stderr.contains("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="));
}

/// An etcd URL with a password in it is refused before anything is
/// dialled, and no message repeats the password or the user.
#[test]
fn etcd_urls_with_user_info_are_refused_without_echo() {
    let config = TempConfig::new("userinfo.yaml", CONFIG);
    let path = config.path.to_str().expect("UTF-8 path");
    for command in ["scan", "reencrypt"] {
        let out = run(
            &[
                command,
                "--config",
                path,
                "--etcd",
                "http://127.0.0.1:2379,http://admin:hunter2@127.0.0.1:9",
            ],
            b"",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command}: {stderr}");
        assert!(stderr.contains("user info"), "{command}: {stderr}");
        for secret in ["hunter2", "admin"] {
            assert!(!stderr.contains(secret), "{command}: {stderr}");
            assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
        }
    }
}

const MIXED_CONFIG: &str = "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: new
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
  - resources: [configmaps]
    providers:
      - identity: {}
      - aesgcm:
          keys:
            - name: new
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
";

/// `encrypt` never writes plaintext by surprise: a resource no rule covers
/// (a typo) or a rule that writes with identity is refused with the rules
/// that exist, in both modes, unless `--allow-plaintext` says so.
#[test]
fn encrypt_refuses_to_write_plaintext_unless_allowed() {
    let config = TempConfig::new("plaintext.yaml", MIXED_CONFIG);
    let path = config.path.to_str().expect("UTF-8 path");
    let key = "/registry/secrets/default/a";
    for (resource, why) in [
        ("secret", "no resource rule covers it"),
        ("Secrets", "no resource rule covers it"),
        ("pods", "no resource rule covers it"),
        (
            "configmaps",
            "resources[1] (configmaps) writes with identity",
        ),
    ] {
        let args = [
            "encrypt",
            "--config",
            path,
            "--resource",
            resource,
            "--storage-key",
            key,
        ];
        let out = run(&args, b"top secret");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(status(&out), 1, "{resource}: {stderr}");
        assert!(out.stdout.is_empty(), "{resource}: plaintext was written");
        assert!(stderr.contains(why), "{resource}: {stderr}");
        assert!(stderr.contains(&format!("{resource:?}")), "{stderr}");
        assert!(
            stderr.contains("resources[0]: secrets; resources[1]: configmaps"),
            "{stderr}"
        );
        assert!(stderr.contains("--allow-plaintext"), "{stderr}");
        assert!(!stderr.contains("top secret"), "{stderr}");

        let mut allowed = args.to_vec();
        allowed.push("--allow-plaintext");
        let out = run(&allowed, b"top secret");
        assert_eq!(status(&out), 0, "{resource} allowed: {out:?}");
        assert_eq!(out.stdout, b"top secret");
    }
    // The resource with an encrypting writer is unaffected.
    let out = run(
        &["encrypt", "--config", path, "--storage-key", key],
        b"top secret",
    );
    assert_eq!(status(&out), 0, "{out:?}");
    assert!(out.stdout.starts_with(b"k8s:enc:aesgcm:v1:new:"));

    // JSON Lines: an error line for the refused one, the others go through.
    let lines = concat!(
        r#"{"resource":"secret","storage_key":"/registry/secret/a","plaintext_b64":"dG9wIHNlY3JldA=="}"#,
        "\n",
        r#"{"resource":"secrets","storage_key":"/registry/secrets/a","plaintext_b64":"dG9wIHNlY3JldA=="}"#,
        "\n",
    );
    let out = run(&["encrypt", "--config", path, "--jsonl"], lines.as_bytes());
    assert_eq!(status(&out), 1, "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answers: Vec<&str> = stdout.lines().collect();
    assert_eq!(answers.len(), 2, "{stdout}");
    assert!(
        answers[0].starts_with(r#"{"error":"refusing to write \"secret\" in plaintext"#),
        "{stdout}"
    );
    assert!(answers[1].starts_with(r#"{"stored_b64":"#), "{stdout}");
    let out = run(
        &["encrypt", "--config", path, "--jsonl", "--allow-plaintext"],
        lines.as_bytes(),
    );
    assert_eq!(status(&out), 0, "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#"{"stored_b64":"dG9wIHNlY3JldA=="}"#));
}

/// Without `--resource`, `encrypt` and `decrypt` take the resource from the
/// storage key, as `scan` and `reencrypt` do: a ConfigMap's key writes
/// with the ConfigMaps' rule, not the Secrets' one. A key that names no
/// resource is bad usage, saying to give `--resource`.
#[test]
fn the_resource_comes_from_the_storage_key() {
    let config = TempConfig::new("by-key.yaml", BY_RESOURCE_CONFIG);
    let path = config.path.to_str().expect("UTF-8 path");
    for (key, prefix) in [
        (
            "/registry/secrets/default/a",
            "k8s:enc:aesgcm:v1:for-secrets:",
        ),
        (
            "/registry/configmaps/default/a",
            "k8s:enc:secretbox:v1:for-configmaps:",
        ),
        (
            "/registry/deployments/default/a",
            "k8s:enc:aescbc:v1:for-deployments:",
        ),
    ] {
        let enc = run(
            &["encrypt", "--config", path, "--storage-key", key],
            b"value",
        );
        assert_eq!(status(&enc), 0, "{key}: {enc:?}");
        assert!(enc.stdout.starts_with(prefix.as_bytes()), "{key}: {enc:?}");
        let dec = run(
            &["decrypt", "--config", path, "--storage-key", key],
            &enc.stdout,
        );
        assert_eq!(
            (status(&dec), dec.stdout.as_slice()),
            (0, &b"value"[..]),
            "{key}"
        );
    }
    let out = run(
        &["encrypt", "--config", path, "--storage-key", "/elsewhere/x"],
        b"value",
    );
    assert_eq!(status(&out), 2, "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("give it with --resource"), "{stderr}");
    assert!(out.stdout.is_empty());
}

const BY_RESOURCE_CONFIG: &str = "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: for-secrets
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
  - resources: [configmaps]
    providers:
      - secretbox:
          keys:
            - name: for-configmaps
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
  - resources: [deployments.apps]
    providers:
      - aescbc:
          keys:
            - name: for-deployments
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
";

/// A secret written where a field name belongs (YAML and JSON) is never
/// printed, by any command that loads the configuration.
#[test]
fn a_secret_in_a_field_name_is_never_printed() {
    const SECRET: &str = "U0VDUkVUIGlzIHNlY3VyZSBzZWNyZXQ=";
    let yaml = format!(
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n      - aesgcm:\n          keys:\n            - name: key1\n              {SECRET}: x\n"
    );
    let json = format!(
        r#"{{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{{"resources":["secrets"],"providers":[{{"aesgcm":{{"keys":[{{"name":"k","{SECRET}":"x"}}]}}}}]}}]}}"#
    );
    // A repeated key (YAML names it), and a name holding the marker that
    // ends a name in serde's message.
    let duplicate = format!(
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\n{SECRET}: 1\n{SECRET}: 2\nresources: []\n"
    );
    let marker = format!(
        r#"{{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","x`, expected {SECRET}":1,"resources":[]}}"#
    );
    for (name, contents) in [
        ("field-secret-yaml", yaml),
        ("field-secret-json", json),
        ("duplicate-key-yaml", duplicate),
        ("marker-in-name-json", marker),
    ] {
        let config = TempConfig::new(name, &contents);
        let path = config.path.to_str().expect("UTF-8 path");
        let out_file = config.dir.join("out.yaml");
        let out_path = out_file.to_str().expect("UTF-8 path");
        let commands: [&[&str]; 6] = [
            &["validate", path],
            &["lint", path],
            &["fingerprint", path],
            &[
                "encrypt",
                "--config",
                path,
                "--storage-key",
                "/registry/secrets/default/k",
            ],
            &["rotate", "add-key", "--config", path, "--out", out_path],
            &["rotate", "plan", "--config", path],
        ];
        for args in commands {
            let out = run(args, b"x");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_ne!(status(&out), 0, "{name} {args:?}: {text}");
            assert!(!text.contains(SECRET), "{name} {args:?}: {text}");
            assert!(!text.contains(&SECRET[..12]), "{name} {args:?}: {text}");
        }
    }
}
