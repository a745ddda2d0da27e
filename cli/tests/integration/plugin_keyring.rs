//! kms-plugin-local's keyring: `rotate-kek` keeps the old KEK, so a
//! restarted plugin still reads what it wrapped; a KEK file replaced by hand
//! makes the plugin refuse to start, saying why, instead of serving values
//! it can no longer read.

use k8s_envelope_test_support::paths::workspace_binary;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_envelope_test_support::process::Reaped;

const CLI: &str = env!("CARGO_BIN_EXE_k8s-envelope");
const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
const STORAGE_KEY: &str = "/registry/secrets/default/a";

struct Setup {
    dir: tempfile::TempDir,
    kek: PathBuf,
    socket: PathBuf,
    config: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek = dir.path().join("kek.b64");
    k8s_envelope::private_file::write(&kek, KEK.as_bytes()).expect("kek");
    let socket = dir.path().join("kms.sock");
    let config = dir.path().join("config.yaml");
    fs::write(
        &config,
        format!(
            "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n      - kms:\n          apiVersion: v2\n          name: local\n          endpoint: unix://{}\n          timeout: 3s\n",
            socket.display()
        ),
    )
    .expect("config");
    Setup {
        dir,
        kek,
        socket,
        config,
    }
}

/// Starts the plugin and waits for its socket.
fn serve(setup: &Setup) -> Reaped {
    let _ = fs::remove_file(&setup.socket);
    let plugin = Reaped(
        Command::new(workspace_binary("kms-plugin-local"))
            .args(["--socket", setup.socket.to_str().expect("UTF-8")])
            .args(["--kek-file", setup.kek.to_str().expect("UTF-8")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kms-plugin-local"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !setup.socket.exists() {
        assert!(Instant::now() < deadline, "the plugin did not serve");
        std::thread::sleep(Duration::from_millis(20));
    }
    plugin
}

fn transform(setup: &Setup, command: &str, input: &[u8]) -> Output {
    let mut child = Command::new(CLI)
        .args([command, "--config", setup.config.to_str().expect("UTF-8")])
        .args(["--storage-key", STORAGE_KEY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn k8s-envelope");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    child.wait_with_output().expect("wait")
}

fn ok(output: Output) -> Vec<u8> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn rotate_kek_keeps_the_old_kek_and_a_replaced_kek_is_refused() {
    let setup = setup();
    let plugin = serve(&setup);
    let before = ok(transform(&setup, "encrypt", b"hello"));
    drop(plugin);

    let rotated = Command::new(workspace_binary("kms-plugin-local"))
        .args([
            "rotate-kek",
            "--kek-file",
            setup.kek.to_str().expect("UTF-8"),
        ])
        .output()
        .expect("rotate-kek");
    assert!(rotated.status.success(), "{rotated:?}");
    assert_ne!(fs::read_to_string(&setup.kek).expect("kek"), KEK);
    assert_eq!(mode(&setup.kek), 0o600);
    let keyring = setup.dir.path().join("kek.b64.keyring");
    assert_eq!(mode(&keyring), 0o700);
    let retired: Vec<PathBuf> = fs::read_dir(&keyring)
        .expect("keyring")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "kek"))
        .collect();
    assert_eq!(retired.len(), 1, "{retired:?}");
    assert_eq!(mode(&retired[0]), 0o600);
    assert_eq!(
        fs::read_to_string(&retired[0]).expect("retired").trim(),
        KEK.trim()
    );

    // A restarted plugin reads what the old KEK wrapped and writes with the
    // new one.
    let plugin = serve(&setup);
    assert_eq!(ok(transform(&setup, "decrypt", &before)), b"hello");
    let after = ok(transform(&setup, "encrypt", b"again"));
    assert_eq!(ok(transform(&setup, "decrypt", &after)), b"again");
    drop(plugin);

    // The KEK file replaced by hand: what the plugin wrapped last would be
    // unreadable, so it does not start.
    k8s_envelope::private_file::write(
        &setup.kek,
        b"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n",
    )
    .expect("kek");
    let _ = fs::remove_file(&setup.socket); // the killed plugin's
    let refused = Command::new(workspace_binary("kms-plugin-local"))
        .args(["--socket", setup.socket.to_str().expect("UTF-8")])
        .args(["--kek-file", setup.kek.to_str().expect("UTF-8")])
        .stdin(Stdio::null())
        .output()
        .expect("run kms-plugin-local");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("wrapped last"), "{stderr}");
    assert!(stderr.contains("rotate-kek"), "{stderr}");
    assert!(
        !stderr.contains("ICEiIyQl") && !stderr.contains("AAECAwQF"),
        "{stderr}"
    );
    assert!(!setup.socket.exists());
}
