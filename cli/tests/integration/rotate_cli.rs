//! The rotation commands end to end on an offline dump (no etcd needed):
//! `rotate plan|add-key|promote|retire`, `scan` and `reencrypt --dump`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use k8s_envelope::rotation;
use k8s_envelope::store::DumpStore;
use k8s_envelope::EncryptionConfiguration;

const CLI: &str = env!("CARGO_BIN_EXE_k8s-envelope");

const SECRET1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

const CONFIG: &str = "# the cluster's encryption config
kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
      - identity: {}
  - resources: ['*.apps']
    providers:
      - identity: {}
";

struct Run {
    dir: tempfile::TempDir,
    /// Every secret seen in a configuration so far: no output may show one.
    secrets: Vec<String>,
}

impl Run {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("enc.yaml"), CONFIG).expect("write");
        Self {
            dir,
            secrets: vec![SECRET1.to_owned()],
        }
    }

    fn cli(&mut self, args: &[&str]) -> Output {
        let output = Command::new(CLI)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run the CLI");
        for secret in &self.secrets {
            for stream in [&output.stdout, &output.stderr] {
                assert!(
                    !String::from_utf8_lossy(stream).contains(secret.as_str()),
                    "a secret in the output of {args:?}"
                );
            }
        }
        output
    }

    /// Runs and expects `status`; learns the secrets of the file it wrote.
    fn expect(&mut self, status: i32, args: &[&str]) -> String {
        let output = self.cli(args);
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert_eq!(
            output.status.code(),
            Some(status),
            "{args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        if let Some(i) = args.iter().position(|a| *a == "--out") {
            let out = self.dir.path().join(args[i + 1]);
            if out.extension().is_some_and(|e| e == "yaml") && out.exists() {
                for rule in load(&out).resources {
                    for p in rule.providers {
                        for k in p.keys() {
                            self.secrets.push(k.secret.expose().to_owned());
                        }
                    }
                }
            }
        }
        format!("{stdout}{stderr}")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn load(path: &Path) -> EncryptionConfiguration {
    let config = EncryptionConfiguration::load(path).expect("load");
    config.validate().expect("valid");
    config
}

/// 30 secrets written with key1, a deployment in plaintext.
fn dump(run: &Run) -> PathBuf {
    let t = load(&run.dir.path().join("enc.yaml"))
        .build()
        .expect("build");
    let dump = DumpStore::new("test");
    for i in 0..30 {
        let key = format!("/registry/secrets/default/s{i}");
        let value = t
            .for_resource("secrets")
            .encrypt_blocking(format!("secret {i}").as_bytes(), key.as_str().into())
            .expect("encrypt");
        dump.put(key.as_bytes(), &value);
    }
    dump.put(
        b"/registry/deployments/default/web",
        b"{\"kind\":\"Deployment\"}",
    );
    let path = run.dir.path().join("dump.json");
    dump.write(&path).expect("write");
    path
}

#[test]
fn a_key_rotation_from_start_to_finish() {
    let mut run = Run::new();
    dump(&run);

    let plan = run.expect(
        0,
        &[
            "rotate",
            "plan",
            "--config",
            "enc.yaml",
            "--dump",
            "dump.json",
        ],
    );
    for expected in [
        "Rotation of resources[0] (secrets): aesgcm key \"key1\" -> aesgcm key \"key2\"",
        "$ k8s-envelope rotate add-key --config enc.yaml --out enc.1-add.yaml --resource secrets --name key2",
        "$ k8s-envelope rotate promote --config enc.1-add.yaml --out enc.2-promote.yaml --resource secrets --name key2",
        "$ k8s-envelope reencrypt --config enc.2-promote.yaml --dump dump.json --out dump.reencrypted.json --prefix /registry/secrets/",
        "$ k8s-envelope rotate retire --config enc.2-promote.yaml --out enc.4-retire.yaml --resource secrets --name key1 --dump dump.reencrypted.json",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in:\n{plan}");
    }

    // Out of order: promoting a key that is not a reader yet.
    let out = run.expect(
        2,
        &[
            "rotate", "promote", "--config", "enc.yaml", "--out", "x.yaml", "--name", "key2",
        ],
    );
    assert!(
        out.contains("refused: resources[0] has no aesgcm key \"key2\""),
        "{out}"
    );

    run.expect(
        0,
        &[
            "rotate",
            "add-key",
            "--config",
            "enc.yaml",
            "--out",
            "enc.1-add.yaml",
            "--name",
            "key2",
        ],
    );
    let added = load(&run.dir.path().join("enc.1-add.yaml"));
    assert_eq!(
        rotation::describe_providers(&added.resources[0]),
        "aesgcm[key1 (writes), key2], identity"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(run.dir.path().join("enc.1-add.yaml"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the new configuration holds keys");
    }
    // The other rule and the rule order are kept; the comment is not.
    let text = std::fs::read_to_string(run.dir.path().join("enc.1-add.yaml")).expect("read");
    assert!(!text.contains("# the cluster"));
    assert!(text.find("- secrets").expect("secrets") < text.find("\"*.apps\"").expect("*.apps"));

    // Out of order: retiring the key that writes.
    let out = run.expect(
        2,
        &[
            "rotate",
            "retire",
            "--config",
            "enc.1-add.yaml",
            "--out",
            "x.yaml",
            "--name",
            "key1",
            "--force",
        ],
    );
    assert!(out.contains("writes new values"), "{out}");

    run.expect(
        0,
        &[
            "rotate",
            "promote",
            "--config",
            "enc.1-add.yaml",
            "--out",
            "enc.2-promote.yaml",
            "--name",
            "key2",
        ],
    );

    // Retiring needs a store to check, and refuses while values use the key.
    let out = run.expect(
        2,
        &[
            "rotate",
            "retire",
            "--config",
            "enc.2-promote.yaml",
            "--out",
            "enc.4-retire.yaml",
            "--name",
            "key1",
        ],
    );
    assert!(out.contains("give the store"), "{out}");
    let out = run.expect(
        1,
        &[
            "rotate",
            "retire",
            "--config",
            "enc.2-promote.yaml",
            "--out",
            "enc.4-retire.yaml",
            "--name",
            "key1",
            "--dump",
            "dump.json",
        ],
    );
    assert!(
        out.contains("30 stored value(s) still use aesgcm key \"key1\""),
        "{out}"
    );
    // A typo in --prefix (a prefix no key of the rule's resources starts
    // with) scanned nothing and retired a key 30 values still used.
    let out = run.expect(
        2,
        &[
            "rotate",
            "retire",
            "--config",
            "enc.2-promote.yaml",
            "--out",
            "enc.4-retire.yaml",
            "--name",
            "key1",
            "--dump",
            "dump.json",
            "--prefix",
            "/registry/secret/",
        ],
    );
    assert!(
        out.contains(
            "refused: --prefix /registry/secret/ is outside every resource of resources[0] \
             (secrets), whose keys are under /registry/secrets/"
        ),
        "{out}"
    );
    assert!(!run.dir.path().join("enc.4-retire.yaml").exists());
    assert!(!run.dir.path().join("enc.4-retire.yaml").exists());

    let out = run.expect(
        0,
        &[
            "scan",
            "--config",
            "enc.2-promote.yaml",
            "--dump",
            "dump.json",
        ],
    );
    assert!(out.contains("secrets   aesgcm:key1  stale     30"), "{out}");

    // A dry run first, then the re-encryption into a new dump.
    let out = run.expect(
        0,
        &[
            "reencrypt",
            "--config",
            "enc.2-promote.yaml",
            "--dump",
            "dump.json",
            "--dry-run",
        ],
    );
    assert!(out.contains("stale (to rewrite)   30"), "{out}");
    assert!(!run.dir.path().join("dump.reencrypted.json").exists());
    let out = run.expect(
        0,
        &[
            "reencrypt",
            "--config",
            "enc.2-promote.yaml",
            "--dump",
            "dump.json",
            "--out",
            "dump.reencrypted.json",
        ],
    );
    assert!(out.contains("rewritten            30"), "{out}");

    let out = run.expect(
        0,
        &[
            "scan",
            "--config",
            "enc.2-promote.yaml",
            "--dump",
            "dump.reencrypted.json",
            "--output",
            "jsonl",
        ],
    );
    assert!(
        out.contains(
            r#"{"count":30,"resource":"secrets","state":"current","type":"row","written_by":"aesgcm:key2"}"#
        ),
        "{out}"
    );

    run.expect(
        0,
        &[
            "rotate",
            "retire",
            "--config",
            "enc.2-promote.yaml",
            "--out",
            "enc.4-retire.yaml",
            "--name",
            "key1",
            "--dump",
            "dump.reencrypted.json",
        ],
    );
    let retired = load(&run.dir.path().join("enc.4-retire.yaml"));
    assert_eq!(
        rotation::describe_providers(&retired.resources[0]),
        "aesgcm[key2 (writes)], identity"
    );
    let out = run.expect(
        0,
        &[
            "scan",
            "--config",
            "enc.4-retire.yaml",
            "--dump",
            "dump.reencrypted.json",
            "--prefix",
            "/registry/",
        ],
    );
    assert!(
        out.contains("total: 31 values: 31 current, 0 stale, 0 unreadable"),
        "{out}"
    );
}

#[test]
fn a_provider_migration_and_the_decrypting_path() {
    let mut run = Run::new();
    dump(&run);
    // aesgcm -> secretbox, a new provider.
    run.expect(
        0,
        &[
            "rotate",
            "add-key",
            "--config",
            "enc.yaml",
            "--out",
            "c1.yaml",
            "--provider",
            "secretbox",
        ],
    );
    let c1 = load(&run.dir.path().join("c1.yaml"));
    assert_eq!(
        rotation::describe_providers(&c1.resources[0]),
        "aesgcm[key1 (writes)], secretbox[key1], identity"
    );
    let out = run.expect(
        2,
        &[
            "rotate", "promote", "--config", "c1.yaml", "--out", "c2.yaml", "--name", "key1",
        ],
    );
    assert!(out.contains("several providers"), "{out}");
    run.expect(
        0,
        &[
            "rotate",
            "promote",
            "--config",
            "c1.yaml",
            "--out",
            "c2.yaml",
            "--provider",
            "secretbox",
        ],
    );
    run.expect(
        0,
        &[
            "reencrypt",
            "--config",
            "c2.yaml",
            "--dump",
            "dump.json",
            "--out",
            "d2.json",
        ],
    );
    run.expect(
        0,
        &[
            "rotate",
            "retire",
            "--config",
            "c2.yaml",
            "--out",
            "c3.yaml",
            "--provider",
            "aesgcm",
            "--dump",
            "d2.json",
        ],
    );
    let c3 = load(&run.dir.path().join("c3.yaml"));
    assert_eq!(
        rotation::describe_providers(&c3.resources[0]),
        "secretbox[key1 (writes)], identity"
    );

    // Decrypting a dump: identity first, then re-encrypt.
    run.expect(
        0,
        &[
            "rotate",
            "promote",
            "--config",
            "c3.yaml",
            "--out",
            "plain.yaml",
            "--provider",
            "identity",
        ],
    );
    run.expect(
        0,
        &[
            "reencrypt",
            "--config",
            "plain.yaml",
            "--dump",
            "d2.json",
            "--out",
            "plain.json",
        ],
    );
    let plain = DumpStore::load(run.dir.path().join("plain.json")).expect("load");
    let values: Vec<Vec<u8>> = plain
        .entries()
        .into_iter()
        .filter(|e| e.key.starts_with(b"/registry/secrets/"))
        .map(|e| e.value)
        .collect();
    assert_eq!(values.len(), 30);
    assert!(values.iter().all(|v| v.starts_with(b"secret ")));

    // The deployments rule: identity -> aesgcm, told apart by the key layout.
    run.expect(
        0,
        &[
            "rotate",
            "add-key",
            "--config",
            "enc.yaml",
            "--out",
            "a1.yaml",
            "--resource",
            "deployments.apps",
            "--provider",
            "aesgcm",
        ],
    );
    run.expect(
        0,
        &[
            "rotate",
            "promote",
            "--config",
            "a1.yaml",
            "--out",
            "a2.yaml",
            "--resource",
            "deployments.apps",
            "--provider",
            "aesgcm",
        ],
    );
    let out = run.expect(
        0,
        &[
            "reencrypt",
            "--config",
            "a2.yaml",
            "--dump",
            "dump.json",
            "--out",
            "a.json",
            "--prefix",
            "/registry/",
        ],
    );
    assert!(out.contains("rewritten            1"), "{out}");
    assert!(out.contains("already current      30"), "{out}");
    // Retiring identity from that rule scans the rule's prefixes (all of
    // /registry/ for `*.apps`), and counts only the rule's values.
    let out = run.expect(
        1,
        &[
            "rotate",
            "retire",
            "--config",
            "a2.yaml",
            "--out",
            "a3.yaml",
            "--resource",
            "deployments.apps",
            "--provider",
            "identity",
            "--dump",
            "dump.json",
        ],
    );
    assert!(
        out.contains("scanned 31 value(s) under /registry/: 1 written by provider identity"),
        "{out}"
    );
    run.expect(
        0,
        &[
            "rotate",
            "retire",
            "--config",
            "a2.yaml",
            "--out",
            "a3.yaml",
            "--resource",
            "deployments.apps",
            "--provider",
            "identity",
            "--dump",
            "a.json",
        ],
    );

    // A KMS provider needs its endpoint; unknown providers are refused.
    let out = run.expect(
        2,
        &[
            "rotate",
            "add-key",
            "--config",
            "enc.yaml",
            "--out",
            "k.yaml",
            "--provider",
            "kms:vault",
        ],
    );
    assert!(out.contains("--kms-endpoint"), "{out}");
    run.expect(
        0,
        &[
            "rotate",
            "add-key",
            "--config",
            "enc.yaml",
            "--out",
            "k.yaml",
            "--provider",
            "kms:vault",
            "--kms-endpoint",
            "unix:///run/kms.sock",
        ],
    );
    let k = load(&run.dir.path().join("k.yaml"));
    assert_eq!(
        rotation::describe_providers(&k.resources[0]),
        "aesgcm[key1 (writes)], kms:vault, identity"
    );
    run.expect(
        2,
        &[
            "rotate",
            "add-key",
            "--config",
            "enc.yaml",
            "--out",
            "k.yaml",
            "--provider",
            "rot13",
        ],
    );
    run.expect(
        2,
        &[
            "rotate",
            "add-key",
            "--config",
            "enc.yaml",
            "--out",
            "k.yaml",
            "--resource",
            "pods",
        ],
    );
}

/// A rule of two resources: each printed re-encryption on etcd has its
/// own checkpoint (one file for both made the second refuse to run), and
/// on a dump each reads what the one before wrote, the last writing the
/// file the retirement reads.
#[test]
fn a_plan_for_a_rule_of_two_resources_gives_each_command_its_own_files() {
    let mut run = Run::new();
    std::fs::write(
        run.dir.path().join("two.yaml"),
        CONFIG.replace("[secrets]", "[secrets, configmaps]"),
    )
    .expect("write");
    let plan = run.expect(
        0,
        &[
            "rotate",
            "plan",
            "--config",
            "two.yaml",
            "--etcd",
            "http://127.0.0.1:2379",
        ],
    );
    for expected in [
        "$ k8s-envelope reencrypt --config two.2-promote.yaml --etcd http://127.0.0.1:2379 --prefix /registry/secrets/ --checkpoint reencrypt-secrets.checkpoint",
        "$ k8s-envelope reencrypt --config two.2-promote.yaml --etcd http://127.0.0.1:2379 --prefix /registry/configmaps/ --checkpoint reencrypt-configmaps.checkpoint",
        "$ k8s-envelope scan --config two.2-promote.yaml --etcd http://127.0.0.1:2379 --prefix /registry/configmaps/",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in:\n{plan}");
    }
    let plan = run.expect(
        0,
        &[
            "rotate",
            "plan",
            "--config",
            "two.yaml",
            "--dump",
            "dump.json",
        ],
    );
    let reencrypts: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains("$ k8s-envelope reencrypt"))
        .collect();
    assert_eq!(reencrypts.len(), 2, "{plan}");
    // A password in a URL is refused, and not printed.
    for url in [
        "http://root:hunter2@127.0.0.1:2379",
        "hunter2@127.0.0.1:2379",
        // A password with a `/` unencoded: still refused, still not printed.
        "http://root:hun/ter2@127.0.0.1:2379",
    ] {
        let refused = run.expect(
            2,
            &["rotate", "plan", "--config", "two.yaml", "--etcd", url],
        );
        assert!(refused.contains("user info"), "{refused}");
        assert!(
            !refused.contains("hunter2") && !refused.contains("ter2"),
            "{refused}"
        );
    }
    let (first, second) = (reencrypts[0], reencrypts[1]);
    let out = |line: &str| {
        line.split("--out ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .map(str::to_owned)
    };
    let input = |line: &str| {
        line.split("--dump ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .map(str::to_owned)
    };
    assert_eq!(input(first).as_deref(), Some("dump.json"), "{plan}");
    assert_eq!(input(second), out(first), "{plan}");
    assert_eq!(
        out(second).as_deref(),
        Some("dump.reencrypted.json"),
        "{plan}"
    );
    assert!(
        plan.contains("rotate retire") && plan.contains("--name key1 --dump dump.reencrypted.json"),
        "{plan}"
    );
}
