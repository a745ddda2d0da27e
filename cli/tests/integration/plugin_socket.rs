//! kms-plugin-local's socket under a careless umask (000): a missing
//! directory is created 0700, the socket is 0600 when it appears, and the
//! staging directory it was bound in is gone. A KEK file others can read is
//! refused, saying how to fix it.

use k8s_envelope_test_support::paths::workspace_binary;
use std::fs;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_envelope_test_support::process::Reaped;

fn plugin_with_umask_000(args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(workspace_binary("kms-plugin-local"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_socket_is_private_from_the_start_and_its_directory_is_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek = dir.path().join("kek.b64");
    k8s_envelope::private_file::write(&kek, b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
        .expect("kek");
    let run_dir = dir.path().join("run").join("kms");
    let socket = run_dir.join("local.sock");
    let socket_arg = socket.to_str().expect("UTF-8");
    let kek_arg = kek.to_str().expect("UTF-8");
    let _plugin = Reaped(
        plugin_with_umask_000(&["--socket", socket_arg, "--kek-file", kek_arg])
            .spawn()
            .expect("spawn kms-plugin-local"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the plugin did not create its socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first moment the socket is at its path, it is already 0600.
    assert!(fs::symlink_metadata(&socket)
        .expect("meta")
        .file_type()
        .is_socket());
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(&run_dir), 0o700);
    let entries: Vec<_> = fs::read_dir(&run_dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        entries,
        ["local.sock"],
        "a staging directory was left behind"
    );
}

#[test]
fn a_kek_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek = dir.path().join("kek.b64");
    fs::write(&kek, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").expect("kek");
    fs::set_permissions(&kek, fs::Permissions::from_mode(0o644)).expect("chmod");
    let socket = dir.path().join("kms.sock");
    let mut plugin = Reaped(
        plugin_with_umask_000(&[
            "--socket",
            socket.to_str().expect("UTF-8"),
            "--kek-file",
            kek.to_str().expect("UTF-8"),
        ])
        .spawn()
        .expect("spawn kms-plugin-local"),
    );
    // It must refuse at once; a plugin that serves is killed by the guard.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = plugin.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the plugin accepted the KEK file and serves"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut plugin.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("mode 0644"), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!stderr.contains("AAECAwQF"), "{stderr}");
    assert!(!socket.exists());
}

/// As root, a client running as another user (nobody, 65534) connects to
/// the plugin's abstract socket, which has no permissions at all: the
/// plugin refuses it by its peer credentials, until `--allow-uid 65534`.
#[test]
fn another_user_is_refused_on_an_abstract_socket() {
    if !is_root() {
        eprintln!("skipped: needs root, to run a client as another user");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let name = format!("k8s-envelope-peer-test-{}", std::process::id());
    let config = dir.path().join("config.yaml");
    fs::write(
        &config,
        format!(
            "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n      - kms:\n          apiVersion: v2\n          name: hsm\n          endpoint: unix:///@{name}\n          timeout: 3s\n"
        ),
    )
    .expect("config");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).expect("chmod");
    for (extra, admitted) in [(&[][..], false), (&["--allow-uid", "65534"][..], true)] {
        let socket = format!("@{name}");
        let mut args = vec!["--socket", socket.as_str(), "--mock-base64"];
        args.extend_from_slice(extra);
        let mut plugin = Reaped(
            Command::new(workspace_binary("kms-plugin-local"))
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn kms-plugin-local"),
        );
        // It says so on stderr once it serves (an abstract socket has no
        // file to wait for).
        let mut stderr = std::io::BufReader::new(plugin.stderr.take().expect("stderr"));
        let mut line = String::new();
        while !line.contains("serving") {
            line.clear();
            let read = std::io::BufRead::read_line(&mut stderr, &mut line).expect("read");
            assert!(read > 0, "the plugin stopped before serving");
        }
        let output = encrypt_as_nobody(&config);
        assert_eq!(
            output.status.success(),
            admitted,
            "{extra:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn encrypt_as_nobody(config: &Path) -> std::process::Output {
    use std::io::Write as _;
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_k8s-envelope"))
        .args(["encrypt", "--config", config.to_str().expect("UTF-8")])
        .args(["--storage-key", "/registry/secrets/default/a"])
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn k8s-envelope as nobody");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hello")
        .expect("write");
    child.wait_with_output().expect("wait")
}

/// Whether this process runs as root (the owner of a file it creates).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let file = tempfile::NamedTempFile::new().expect("temp file");
    file.as_file().metadata().expect("metadata").uid() == 0
}
