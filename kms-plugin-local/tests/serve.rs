//! The `kms-plugin-local` binary as a process: it serves its KEK on a real
//! unix socket, passes the kit's conformance check on both APIs, and stops
//! on SIGTERM, removing its socket. (The CLI package's tests run it too, as
//! the plugin behind the KMS commands.)

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_envelope::kms::KmsEndpoint;
use k8s_envelope::{private_file, SecretKey};
use k8s_envelope_kms_plugin::check::{CheckedApi, Outcome, PluginCheck};

const PLUGIN: &str = env!("CARGO_BIN_EXE_kms-plugin-local");

/// Starts the plugin on `socket` with the KEK in `kek_file`, and waits (at
/// most 10 s) for its "serving" line on stderr.
fn start(socket: &Path, kek_file: &Path) -> Child {
    let mut child = Command::new(PLUGIN)
        .arg("--socket")
        .arg(socket)
        .arg("--kek-file")
        .arg(kek_file)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kms-plugin-local");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("serving") => return child,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("kms-plugin-local did not start within 10 s: {e}");
            }
        }
    }
}

#[test]
fn serves_its_kek_as_kube_apiserver_requires_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek_file = dir.path().join("kek.b64");
    let kek = SecretKey::generate(32).expect("a KEK");
    private_file::write(&kek_file, kek.to_base64().as_bytes()).expect("write the KEK");
    let socket = dir.path().join("kms.sock");
    let mut plugin = start(&socket, &kek_file);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let endpoint = KmsEndpoint::socket_file(&socket).expect("endpoint");
    for api in [CheckedApi::V2, CheckedApi::V1] {
        let report = runtime
            .block_on(PluginCheck::new(endpoint.clone()).api(api).run())
            .expect("the plugin listens");
        let failed: Vec<_> = report
            .checks()
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.id)
            .collect();
        assert!(report.passed(false), "{api}: failed checks {failed:?}");
    }

    let pid = plugin.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = plugin.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(!socket.exists(), "the socket file is left behind");
}

/// A KEK rotated under a running plugin (`rotate-kek`) shows in its log,
/// old and new key IDs, when the plugin next reads the file.
#[test]
fn a_key_id_change_is_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek_file = dir.path().join("kek.b64");
    let kek = SecretKey::generate(32).expect("a KEK");
    private_file::write(&kek_file, kek.to_base64().as_bytes()).expect("write the KEK");
    let socket = dir.path().join("kms.sock");
    let mut plugin = Command::new(PLUGIN)
        .arg("--socket")
        .arg(&socket)
        .arg("--kek-file")
        .arg(&kek_file)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kms-plugin-local");
    let stderr = plugin.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |what: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(e) => panic!("no {what:?} line within 10 s: {e}"),
            }
        }
    };
    wait_for("serving");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = k8s_envelope::kms::GrpcClient::new(
        KmsEndpoint::socket_file(&socket).expect("endpoint"),
        Duration::from_secs(5),
    );
    let before = runtime
        .block_on(client.as_v2().status())
        .expect("status")
        .key_id;
    let rotated = Command::new(PLUGIN)
        .args(["rotate-kek", "--kek-file"])
        .arg(&kek_file)
        .output()
        .expect("rotate-kek");
    assert!(rotated.status.success(), "{rotated:?}");
    let after = runtime
        .block_on(client.as_v2().status())
        .expect("status")
        .key_id;
    assert_ne!(before, after);
    let line = wait_for("the key ID changed");
    assert!(line.contains(&before) && line.contains(&after), "{line}");
    let _ = plugin.kill();
    let _ = plugin.wait();
}
