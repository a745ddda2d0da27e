//! The KMS gRPC client and plugin server against real processes on real unix
//! sockets: our `kms-plugin-local`, and the independent Go reference plugin
//! (`k8sref kms-plugin`) when it is available.
//!
//! The reference binary is looked up in `$K8SREF`, then
//! `../shared/tools/k8sref/bin/k8sref` next to the repository. When it is
//! missing those tests
//! print a skip message, unless `K8S_ENVELOPE_REQUIRE_K8SREF=1`, which makes
//! them fail.

#![cfg(unix)]

use k8s_envelope_test_support::paths::workspace_binary;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_envelope::kms::{
    GrpcClient, KmsEndpoint, KmsError, KmsErrorKind, KmsServiceV1, KmsServiceV2, StatusCode,
};
use k8s_envelope::{Error, SecretKey};
use k8s_envelope_kms_plugin::generated::v2;
use k8s_envelope_kms_plugin::{LocalKek, PluginServer};

const TIMEOUT: Duration = Duration::from_secs(3);
const NO_ANNOTATIONS: &BTreeMap<String, Vec<u8>> = &BTreeMap::new();

// ---------------------------------------------------------------------------
// Helpers

/// A child process, killed (SIGKILL) and reaped on drop.
struct Proc {
    child: Reaped,
}

impl Proc {
    fn spawn(program: impl AsRef<Path>, args: &[&str]) -> Proc {
        let child = Command::new(program.as_ref())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", program.as_ref().display()));
        Proc {
            child: Reaped(child),
        }
    }

    /// Sends SIGTERM and waits for the exit (without blocking the runtime,
    /// whose client connections must keep answering the server's goodbye).
    async fn terminate(self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        self.wait_exit().await
    }

    /// Waits for the process to exit on its own (10 s at most).
    async fn wait_exit(mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn local_plugin() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        workspace_binary("kms-plugin-local")
            .to_string_lossy()
            .into_owned()
    })
}

/// Starts `kms-plugin-local` with a KEK file and waits until it answers.
async fn start_local(socket: &str, kek_file: &Path) -> (Proc, GrpcClient) {
    let proc = Proc::spawn(
        local_plugin(),
        &["--socket", socket, "--kek-file", path_str(kek_file)],
    );
    let client = client_for(socket);
    wait_ready(&client).await;
    (proc, client)
}

/// A client for `--socket` syntax: a path or `@name`.
fn client_for(socket: &str) -> GrpcClient {
    client_with_timeout(socket, TIMEOUT)
}

fn client_with_timeout(socket: &str, timeout: Duration) -> GrpcClient {
    let endpoint = match socket.strip_prefix('@') {
        Some(name) => format!("unix:///@{name}"),
        None => format!("unix://{socket}"),
    };
    GrpcClient::new(KmsEndpoint::parse(&endpoint).expect("endpoint"), timeout)
}

/// Polls v2 Status until the plugin answers (10 s at most).
async fn wait_ready(client: &GrpcClient) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.status().await {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => panic!("plugin did not come up: {e}"),
        }
    }
}

fn write_kek(path: &Path, byte: u8) -> SecretKey {
    let key = SecretKey::new(vec![byte; 32]);
    // 0600 and atomic, as kms-plugin-local requires of a KEK file.
    k8s_envelope::private_file::write(path, format!("{}\n", key.to_base64().as_str()).as_bytes())
        .expect("write KEK");
    key
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn kms_error(result: Result<impl std::fmt::Debug, Error>) -> KmsError {
    match result {
        Err(Error::Kms(e)) => e,
        other => panic!("expected a KMS error, got {other:?}"),
    }
}

/// A name for an abstract socket that no other test run uses.
fn abstract_name(tag: &str) -> String {
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).expect("random");
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("k8s-envelope-test-{tag}-{}-{hex}", std::process::id())
}

use k8s_envelope_test_support::k8sref::k8sref;
use k8s_envelope_test_support::process::Reaped;
use k8s_envelope_test_support::slow_kek::SlowKek;

/// Starts `k8sref kms-plugin --api both` with extra flags.
async fn start_k8sref(binary: &Path, socket: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["kms-plugin", "--socket", socket, "--api", "both"];
    args.extend_from_slice(extra);
    let proc = Proc::spawn(binary, &args);
    wait_ready(&client_for(socket)).await;
    proc
}

// ---------------------------------------------------------------------------
// (a) our client against our server

#[tokio::test]
async fn local_plugin_v2_round_trip_and_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek_file = dir.path().join("kek");
    let first = write_kek(&kek_file, 1);
    let socket = dir.path().join("kms.sock");
    let (proc, client) = start_local(path_str(&socket), &kek_file).await;

    let status = client.status().await.expect("status");
    assert_eq!(status.version, "v2");
    assert_eq!(status.healthz, "ok");
    assert!(status.is_healthy());
    assert_eq!(status.key_id, LocalKek::key_id_of(&first));

    let dek = [0x5Au8; 32];
    let wrapped = client
        .as_v2()
        .encrypt("uid-1", &dek)
        .await
        .expect("encrypt");
    assert_eq!(wrapped.key_id, status.key_id);
    assert!(wrapped.annotations.is_empty());
    assert_eq!(wrapped.ciphertext.len(), 12 + 32 + 16);
    let plain = client
        .as_v2()
        .decrypt(
            "uid-2",
            &wrapped.key_id,
            &wrapped.ciphertext,
            &wrapped.annotations,
        )
        .await
        .expect("decrypt");
    assert_eq!(&plain[..], &dek);

    // Rotation: a new KEK file; old ciphertexts stay readable.
    let second = write_kek(&kek_file, 2);
    let status = client.status().await.expect("status");
    assert_eq!(status.key_id, LocalKek::key_id_of(&second));
    let rewrapped = client
        .as_v2()
        .encrypt("uid-3", &dek)
        .await
        .expect("encrypt");
    assert_eq!(rewrapped.key_id, status.key_id);
    for w in [&wrapped, &rewrapped] {
        let plain = client
            .as_v2()
            .decrypt("uid-4", &w.key_id, &w.ciphertext, &w.annotations)
            .await
            .expect("decrypt after rotation");
        assert_eq!(&plain[..], &dek);
    }

    // Wrong key ID or tampered ciphertext: an error status, no plaintext.
    let e = kms_error(
        client
            .as_v2()
            .decrypt(
                "uid-5",
                &rewrapped.key_id,
                &wrapped.ciphertext,
                NO_ANNOTATIONS,
            )
            .await,
    );
    assert!(
        matches!(e.kind(), KmsErrorKind::Status { code, .. } if *code == StatusCode::InvalidArgument),
        "{e}"
    );
    assert_eq!(e.method(), Some("/v2.KeyManagementService/Decrypt"));

    // A broken KEK file: unhealthy, Encrypt refused, Decrypt still works.
    k8s_envelope::private_file::write(&kek_file, b"garbage").expect("write");
    let status = client.status().await.expect("status");
    assert!(!status.is_healthy());
    assert!(status.healthz.contains("not base64"), "{}", status.healthz);
    let e = kms_error(client.as_v2().encrypt("uid-6", &dek).await);
    assert!(
        matches!(e.kind(), KmsErrorKind::Status { code, .. } if *code == StatusCode::FailedPrecondition),
        "{e}"
    );
    client
        .as_v2()
        .decrypt(
            "uid-7",
            &wrapped.key_id,
            &wrapped.ciphertext,
            NO_ANNOTATIONS,
        )
        .await
        .expect("decrypt with a broken KEK file");

    // SIGTERM: clean exit, socket file removed.
    assert!(proc.terminate().await.success());
    assert!(!socket.exists(), "socket file left behind");
}

#[tokio::test]
async fn local_plugin_v1_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek_file = dir.path().join("kek");
    write_kek(&kek_file, 7);
    let socket = dir.path().join("kms.sock");
    let (_proc, client) = start_local(path_str(&socket), &kek_file).await;

    let version = client.version().await.expect("version");
    assert_eq!(version.version, "v1beta1");
    assert_eq!(version.runtime_name, "k8s-envelope");
    assert_eq!(version.runtime_version, env!("CARGO_PKG_VERSION"));

    let dek = [0x11u8; 32];
    let cipher = client.as_v1().encrypt(&dek).await.expect("encrypt");
    let plain = client.as_v1().decrypt(&cipher).await.expect("decrypt");
    assert_eq!(&plain[..], &dek);

    // Rotation keeps v1 ciphertexts readable too (the key ID is inside).
    write_kek(&kek_file, 8);
    let cipher2 = client.as_v1().encrypt(&dek).await.expect("encrypt");
    assert_ne!(cipher[..40], cipher2[..40]);
    for c in [&cipher, &cipher2] {
        let plain = client.as_v1().decrypt(c).await.expect("decrypt");
        assert_eq!(&plain[..], &dek);
    }
    let e = kms_error(client.as_v1().decrypt(b"\x00").await);
    assert!(matches!(e.kind(), KmsErrorKind::Status { .. }), "{e}");
}

#[tokio::test]
async fn local_plugin_mock_mode_matches_the_kubernetes_mock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("kms.sock");
    let key_id_file = dir.path().join("key-id");
    let _proc = Proc::spawn(
        local_plugin(),
        &[
            "--socket",
            path_str(&socket),
            "--mock-base64",
            "--key-id-file",
            path_str(&key_id_file),
        ],
    );
    let client = client_for(path_str(&socket));
    wait_ready(&client).await;
    check_base64_mock(&client, &key_id_file).await;
}

// ---------------------------------------------------------------------------
// (b) our client against the Go reference plugin

/// What the Kubernetes base64 mock must answer (ours and the reference).
async fn check_base64_mock(client: &GrpcClient, key_id_file: &Path) {
    let status = client.status().await.expect("status");
    assert_eq!(
        (
            status.version.as_str(),
            status.healthz.as_str(),
            status.key_id.as_str()
        ),
        ("v2", "ok", "1")
    );
    let dek = [0xC3u8; 32];
    let wrapped = client
        .as_v2()
        .encrypt("uid-1", &dek)
        .await
        .expect("encrypt");
    assert_eq!(
        wrapped.ciphertext,
        base64::engine::general_purpose::STANDARD
            .encode(dek)
            .into_bytes()
    );
    assert_eq!(wrapped.key_id, "1");
    assert_eq!(
        wrapped.annotations,
        BTreeMap::from([(
            "local-kek.kms.kubernetes.io".to_string(),
            b"encrypted-local-kek".to_vec()
        )])
    );
    let plain = client
        .as_v2()
        .decrypt(
            "uid-2",
            &wrapped.key_id,
            &wrapped.ciphertext,
            &wrapped.annotations,
        )
        .await
        .expect("decrypt");
    assert_eq!(&plain[..], &dek);

    // Key ID rotation through the key ID file.
    fs::write(key_id_file, "2\n").expect("write key id");
    assert_eq!(client.status().await.expect("status").key_id, "2");
    let rewrapped = client
        .as_v2()
        .encrypt("uid-3", &dek)
        .await
        .expect("encrypt");
    assert_eq!(rewrapped.key_id, "2");
    let plain = client
        .as_v2()
        .decrypt(
            "uid-4",
            &wrapped.key_id,
            &wrapped.ciphertext,
            &wrapped.annotations,
        )
        .await
        .expect("decrypt of a key ID 1 ciphertext");
    assert_eq!(&plain[..], &dek);
    fs::remove_file(key_id_file).expect("remove key id");

    // v1 on the same socket.
    assert_eq!(client.version().await.expect("version").version, "v1beta1");
    let cipher = client.as_v1().encrypt(&dek).await.expect("v1 encrypt");
    assert_eq!(
        cipher,
        base64::engine::general_purpose::STANDARD
            .encode(dek)
            .into_bytes()
    );
    let plain = client.as_v1().decrypt(&cipher).await.expect("v1 decrypt");
    assert_eq!(&plain[..], &dek);
}

#[tokio::test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh)"]
async fn k8sref_plugin_status_encrypt_decrypt_rotation() {
    let k8sref = k8sref();
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("kms.sock");
    let key_id_file = dir.path().join("key-id");
    let _proc = start_k8sref(
        &k8sref,
        path_str(&socket),
        &["--key-id-file", path_str(&key_id_file)],
    )
    .await;
    let client = client_for(path_str(&socket));
    check_base64_mock(&client, &key_id_file).await;
    let version = client.version().await.expect("version");
    assert_eq!(version.runtime_name, "k8sref");

    // The reference insists on uid and key_id: its error reaches us as a status.
    let e = kms_error(client.as_v2().encrypt("", b"x").await);
    assert!(
        matches!(e.kind(), KmsErrorKind::Status { code, message }
            if *code == StatusCode::InvalidArgument && message.contains("uid")),
        "{e}"
    );
}

#[tokio::test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh)"]
async fn k8sref_plugin_slower_than_the_timeout_gives_timeout() {
    let k8sref = k8sref();
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("kms.sock");
    // Started without delay to know it is up, then with one.
    let _proc = Proc::spawn(
        &k8sref,
        &[
            "kms-plugin",
            "--socket",
            path_str(&socket),
            "--api",
            "both",
            "--delay-ms",
            "3000",
        ],
    );
    let patient = client_with_timeout(path_str(&socket), Duration::from_secs(10));
    wait_ready(&patient).await;

    let timeout = Duration::from_millis(400);
    let client = client_with_timeout(path_str(&socket), timeout);
    for call in 0..3 {
        let started = Instant::now();
        let result = match call {
            0 => client.status().await.map(drop),
            1 => client.as_v2().encrypt("uid", &[1; 32]).await.map(drop),
            _ => client.as_v1().encrypt(&[1; 32]).await.map(drop),
        };
        let elapsed = started.elapsed();
        let e = kms_error(result);
        assert!(
            matches!(e.kind(), KmsErrorKind::Timeout(t) if *t == timeout),
            "{e}"
        );
        assert!(e.is_transient());
        assert!(
            elapsed >= timeout && elapsed < timeout + Duration::from_millis(600),
            "timed out after {elapsed:?}, configured {timeout:?}"
        );
        assert!(e.to_string().contains("timed out after 400ms"), "{e}");
    }
}

#[tokio::test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh)"]
async fn k8sref_plugin_failing_gives_unavailable() {
    let k8sref = k8sref();
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("kms.sock");
    let fail_file = dir.path().join("fail");
    let _proc = start_k8sref(
        &k8sref,
        path_str(&socket),
        &["--fail-file", path_str(&fail_file)],
    )
    .await;
    let client = client_for(path_str(&socket));
    client
        .as_v2()
        .encrypt("uid", &[2; 32])
        .await
        .expect("healthy first");

    fs::write(&fail_file, "").expect("create fail file");
    let status = client.status().await.expect("status still answers");
    assert_eq!(status.healthz, "down");
    assert!(!status.is_healthy());
    for result in [
        client.as_v2().encrypt("uid", &[2; 32]).await.map(drop),
        client
            .as_v2()
            .decrypt("uid", "1", b"AgICAg==", NO_ANNOTATIONS)
            .await
            .map(drop),
        client.version().await.map(drop),
    ] {
        let e = kms_error(result);
        assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");
        assert!(e.is_transient());
    }

    fs::remove_file(&fail_file).expect("remove fail file");
    client
        .as_v2()
        .encrypt("uid", &[2; 32])
        .await
        .expect("healthy again");
}

#[tokio::test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh)"]
async fn k8sref_plugin_on_an_abstract_socket() {
    let k8sref = k8sref();
    let socket = format!("@{}", abstract_name("k8sref"));
    let _proc = start_k8sref(&k8sref, &socket, &[]).await;
    let client = client_for(&socket);
    let wrapped = client
        .as_v2()
        .encrypt("uid", &[3; 32])
        .await
        .expect("encrypt");
    let plain = client
        .as_v2()
        .decrypt(
            "uid",
            &wrapped.key_id,
            &wrapped.ciphertext,
            &wrapped.annotations,
        )
        .await
        .expect("decrypt");
    assert_eq!(&plain[..], &[3; 32]);
}

#[tokio::test]
#[ignore = "needs the Go reference (../shared/tools/k8sref/build.sh)"]
async fn k8sref_plugin_restart_is_picked_up() {
    let k8sref = k8sref();
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("kms.sock");
    let proc = start_k8sref(&k8sref, path_str(&socket), &[]).await;
    let client = client_for(path_str(&socket));
    client.status().await.expect("first");
    drop(proc); // SIGKILL
    let e = kms_error(client.status().await);
    assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");
    let _proc = start_k8sref(&k8sref, path_str(&socket), &[]).await;
    client.status().await.expect("after restart");
}

// ---------------------------------------------------------------------------
// (c) reconnect after a restart, (e) stale sockets and permissions

#[tokio::test]
async fn client_reconnects_after_the_plugin_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek_file = dir.path().join("kek");
    write_kek(&kek_file, 4);
    let socket = dir.path().join("kms.sock");
    let (proc, client) = start_local(path_str(&socket), &kek_file).await;
    let wrapped = client
        .as_v2()
        .encrypt("uid", &[4; 32])
        .await
        .expect("encrypt");

    // Killed hard: the socket file stays behind, stale.
    drop(proc);
    assert!(fs::symlink_metadata(&socket)
        .expect("stale socket")
        .file_type()
        .is_socket());
    let started = Instant::now();
    let e = kms_error(client.status().await);
    assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no fast failure"
    );

    // Restarted on the same path: the stale socket is replaced, and the same
    // client (same channel) reaches the new process.
    let proc2 = Proc::spawn(
        local_plugin(),
        &[
            "--socket",
            path_str(&socket),
            "--kek-file",
            path_str(&kek_file),
        ],
    );
    wait_ready(&client).await;
    let plain = client
        .as_v2()
        .decrypt("uid", &wrapped.key_id, &wrapped.ciphertext, NO_ANNOTATIONS)
        .await
        .expect("decrypt after restart");
    assert_eq!(&plain[..], &[4; 32]);

    // Once more, and this time the first call of the old client after the
    // restart must succeed: its dead connection is replaced transparently.
    drop(proc2);
    let _proc3 = Proc::spawn(
        local_plugin(),
        &[
            "--socket",
            path_str(&socket),
            "--kek-file",
            path_str(&kek_file),
        ],
    );
    wait_ready(&client_for(path_str(&socket))).await;
    client.status().await.expect("first call after a restart");
}

#[tokio::test]
async fn socket_file_is_private_and_stale_sockets_are_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek_file = dir.path().join("kek");
    write_kek(&kek_file, 5);
    let socket = dir.path().join("kms.sock");

    // A stale socket: bound, then its listener closed.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists());

    let (proc, client) = start_local(path_str(&socket), &kek_file).await;
    let meta = fs::symlink_metadata(&socket).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    client.status().await.expect("status");

    // A second plugin on a live socket refuses, and leaves it alone.
    let second = Proc::spawn(
        local_plugin(),
        &[
            "--socket",
            path_str(&socket),
            "--kek-file",
            path_str(&kek_file),
        ],
    );
    assert_eq!(second.wait_exit().await.code(), Some(2));
    client.status().await.expect("first plugin still serving");
    assert!(proc.terminate().await.success());
    assert!(!socket.exists());
}

#[tokio::test]
async fn plugin_refuses_to_replace_a_file_that_is_not_a_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek_file = dir.path().join("kek");
    write_kek(&kek_file, 6);
    let path = dir.path().join("not-a-socket");
    fs::write(&path, "precious").expect("write");
    let proc = Proc::spawn(
        local_plugin(),
        &[
            "--socket",
            path_str(&path),
            "--kek-file",
            path_str(&kek_file),
        ],
    );
    assert_eq!(proc.wait_exit().await.code(), Some(2));
    assert_eq!(fs::read_to_string(&path).expect("still there"), "precious");
}

// ---------------------------------------------------------------------------
// (d) abstract sockets

#[tokio::test]
async fn local_plugin_on_an_abstract_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek_file = dir.path().join("kek");
    write_kek(&kek_file, 9);
    let socket = format!("@{}", abstract_name("local"));
    let (proc, client) = start_local(&socket, &kek_file).await;
    assert_eq!(
        client.endpoint().abstract_name(),
        socket.strip_prefix('@').map(str::as_bytes)
    );
    let wrapped = client
        .as_v2()
        .encrypt("uid", &[9; 32])
        .await
        .expect("encrypt");
    let plain = client
        .as_v2()
        .decrypt("uid", &wrapped.key_id, &wrapped.ciphertext, NO_ANNOTATIONS)
        .await
        .expect("decrypt");
    assert_eq!(&plain[..], &[9; 32]);
    assert!(proc.terminate().await.success());
    let e = kms_error(client.status().await);
    assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");
}

// ---------------------------------------------------------------------------
// (f) no plugin

#[tokio::test]
async fn absent_plugin_fails_fast_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("nobody-home.sock");
    let client = client_for(path_str(&socket));
    let started = Instant::now();
    let e = kms_error(client.status().await);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");
    let text = e.to_string();
    assert!(text.contains(path_str(&socket)), "{text}");
    assert!(text.contains("/v2.KeyManagementService/Status"), "{text}");
    assert!(text.contains("No such file"), "{text}");

    let e = kms_error(client.as_v1().encrypt(&[0; 32]).await);
    assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");

    let abstract_client = client_for(&format!("@{}", abstract_name("absent")));
    let e = kms_error(abstract_client.status().await);
    assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");
    assert!(e.to_string().contains("refused"), "{e}");
}

// ---------------------------------------------------------------------------
// In-process: graceful shutdown, :authority, message size limit

#[tokio::test]
async fn shutdown_finishes_calls_in_flight_and_removes_the_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("kms.sock");
    let endpoint = KmsEndpoint::socket_file(&socket).expect("endpoint");
    let handle = PluginServer::new(SlowKek {
        wrap: Duration::from_millis(500),
        ..SlowKek::all(Duration::ZERO)
    })
    .serve(&endpoint)
    .await
    .expect("serve");
    assert_eq!(handle.endpoint(), &endpoint);

    let client = Arc::new(GrpcClient::new(endpoint.clone(), TIMEOUT));
    client.status().await.expect("status");
    let in_flight = {
        let client = Arc::clone(&client);
        tokio::spawn(async move { client.as_v2().encrypt("uid", b"dek").await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    handle.shutdown().await.expect("shutdown");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "shutdown did not wait for the call in flight"
    );
    let wrapped = in_flight
        .await
        .expect("join")
        .expect("call in flight finished");
    assert_eq!(wrapped.ciphertext, b"dek");
    assert!(!socket.exists(), "socket file left behind");
    let e = kms_error(client.status().await);
    assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");
}

/// A v2 plugin that records the `:authority` of each request and answers
/// Encrypt with `size` bytes.
#[derive(Clone)]
struct Recording {
    authorities: Arc<std::sync::Mutex<Vec<String>>>,
    size: usize,
}

#[tonic::async_trait]
impl v2::key_management_service_server::KeyManagementService for Recording {
    async fn status(
        &self,
        _request: tonic::Request<v2::StatusRequest>,
    ) -> Result<tonic::Response<v2::StatusResponse>, tonic::Status> {
        Ok(tonic::Response::new(v2::StatusResponse {
            version: "v2".into(),
            healthz: "ok".into(),
            key_id: "k".into(),
        }))
    }

    async fn decrypt(
        &self,
        _request: tonic::Request<v2::DecryptRequest>,
    ) -> Result<tonic::Response<v2::DecryptResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("no"))
    }

    async fn encrypt(
        &self,
        _request: tonic::Request<v2::EncryptRequest>,
    ) -> Result<tonic::Response<v2::EncryptResponse>, tonic::Status> {
        Ok(tonic::Response::new(v2::EncryptResponse {
            ciphertext: vec![0; self.size],
            key_id: "k".into(),
            annotations: BTreeMap::new(),
        }))
    }
}

/// Serves `plugin` on `socket` with plain tonic (no limits of ours), and
/// records each request's authority.
async fn serve_recording(socket: &Path, plugin: Recording) -> tokio::sync::oneshot::Sender<()> {
    use tonic::codegen::http;
    let listener = tokio::net::UnixListener::bind(socket).expect("bind");
    let authorities = Arc::clone(&plugin.authorities);
    let inner = v2::key_management_service_server::KeyManagementServiceServer::new(plugin);
    let service = tower::service_fn(move |request: http::Request<tonic::body::Body>| {
        let authority = request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        authorities.lock().expect("lock").push(authority);
        let mut inner = inner.clone();
        async move { tower::Service::call(&mut inner, request).await }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder().serve_with_incoming_shutdown(
            service,
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            async move {
                let _ = stopped.await;
            },
        ),
    );
    stop
}

#[tokio::test]
async fn requests_carry_authority_localhost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("kms.sock");
    let plugin = Recording {
        authorities: Arc::default(),
        size: 16,
    };
    let authorities = Arc::clone(&plugin.authorities);
    let _stop = serve_recording(&socket, plugin).await;
    let client = client_for(path_str(&socket));
    client.status().await.expect("status");
    client
        .as_v2()
        .encrypt("uid", &[1; 32])
        .await
        .expect("encrypt");
    let seen = authorities.lock().expect("lock").clone();
    assert_eq!(seen, ["localhost", "localhost"]);
}

#[tokio::test]
async fn oversized_answers_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("kms.sock");
    let plugin = Recording {
        authorities: Arc::default(),
        size: k8s_envelope::kms::MAX_MESSAGE_SIZE + 1,
    };
    let _stop = serve_recording(&socket, plugin).await;
    let client = client_for(path_str(&socket));
    let e = kms_error(client.as_v2().encrypt("uid", &[1; 32]).await);
    assert!(
        matches!(e.kind(), KmsErrorKind::Status { code, .. } if *code == StatusCode::OutOfRange),
        "{e}"
    );
    client
        .status()
        .await
        .expect("the connection is still usable");
}

#[tokio::test]
async fn sigterm_with_a_silent_client_still_stops_within_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek_file = dir.path().join("kek");
    write_kek(&kek_file, 10);
    let socket = dir.path().join("kms.sock");
    let (proc, _client) = start_local(path_str(&socket), &kek_file).await;
    // Connected, but never speaks HTTP/2 nor reads.
    let _silent = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    let started = Instant::now();
    assert!(proc.terminate().await.success());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(!socket.exists());
}
