//! Fault injection for the KMS v2 provider against real gRPC plugins on real
//! unix sockets: absent, killed, restarted, slow and hostile plugins, and a
//! key-ID rotation.
//!
//! Nothing is mocked below the `KmsServiceV2` trait: every provider talks to
//! its plugin through `GrpcClient` over a socket in a temp dir, and the
//! plugin is either the `kms-plugin-local` process, an in-process
//! `PluginServer`, or (hostile answers) a hand-written implementation of the
//! generated tonic server trait. Expiry is driven by a `ManualClock`, so no
//! test sleeps for minutes.

#![cfg(unix)]

use k8s_envelope_test_support::paths::workspace_binary;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_envelope::kms::{
    key_id_hash, GrpcClient, KmsEndpoint, KmsError, KmsErrorKind, KmsServiceV2, KmsV2Options,
    KmsV2Provider, ManualClock,
};
use k8s_envelope::{Decrypted, Error, Provider, StorageKey, Transformer};
use k8s_envelope_kms_plugin::generated::v2;
use k8s_envelope_kms_plugin::generated::v2::key_management_service_server::{
    KeyManagementService, KeyManagementServiceServer,
};
use k8s_envelope_kms_plugin::{Base64MockKek, PluginHandle, PluginServer};
use k8s_envelope_test_support::encrypted_object::{EncryptedDekSourceType, EncryptedObject};
use prost::Message as _;

/// The apiserver's default call timeout.
const TIMEOUT: Duration = Duration::from_secs(3);
const NAME: &str = "faults";
const PREFIX: &str = "k8s:enc:kms:v2:faults:";
const STORAGE_KEY: &str = "/registry/secrets/default/db-creds";
const STATUS: &str = "/v2.KeyManagementService/Status";
const ENCRYPT: &str = "/v2.KeyManagementService/Encrypt";
const DECRYPT: &str = "/v2.KeyManagementService/Decrypt";

// ---------------------------------------------------------------------------
// Helpers

fn endpoint(socket: &Path) -> KmsEndpoint {
    KmsEndpoint::socket_file(socket).expect("absolute socket path")
}

/// The provider under test: a real gRPC client, a manual clock.
fn provider(socket: &Path, timeout: Duration, clock: &Arc<ManualClock>) -> KmsV2Provider {
    KmsV2Provider::new(
        NAME,
        Arc::new(GrpcClient::new(endpoint(socket), timeout)),
        KmsV2Options::default().with_clock(clock.clone()),
    )
    .expect("provider")
}

async fn write(provider: &KmsV2Provider, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    provider
        .encrypt(plaintext, StorageKey::from(STORAGE_KEY))
        .await
}

async fn read(provider: &KmsV2Provider, stored: &[u8]) -> Result<Decrypted, Error> {
    provider
        .decrypt(stored, StorageKey::from(STORAGE_KEY))
        .await
}

/// Reads `stored` and checks its plaintext and staleness.
async fn assert_reads(provider: &KmsV2Provider, stored: &[u8], plaintext: &[u8], stale: bool) {
    let got = read(provider, stored).await.expect("read");
    assert_eq!(got.plaintext, plaintext);
    assert_eq!(got.stale, stale, "stale flag");
}

fn kms_error<T: std::fmt::Debug>(result: Result<T, Error>) -> KmsError {
    match result {
        Err(Error::Kms(e)) => e,
        other => panic!("expected Error::Kms, got {other:?}"),
    }
}

fn assert_not_ready<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(Error::Kms(e)) if matches!(e.kind(), KmsErrorKind::NotReady) => {
            assert_eq!(e.provider(), Some(NAME));
            assert!(e.is_transient(), "{e}");
        }
        other => panic!("expected a KMS provider not ready, got {other:?}"),
    }
}

/// The `EncryptedObject` of a stored value.
fn decode_object(stored: &[u8]) -> EncryptedObject {
    let body = stored
        .strip_prefix(PREFIX.as_bytes())
        .expect("KMS v2 prefix");
    EncryptedObject::decode(body).expect("EncryptedObject")
}

/// A syntactically valid KMS v2 value that no plugin ever wrapped.
fn crafted_value() -> Vec<u8> {
    let object = EncryptedObject {
        encrypted_data: vec![7; 64],
        key_id: "1".into(),
        encrypted_dek_source: b"c2VlZA==".to_vec(),
        annotations: BTreeMap::new(),
        encrypted_dek_source_type: EncryptedDekSourceType::HkdfSha256XnonceAesGcmSeed as i32,
    };
    let mut out = PREFIX.as_bytes().to_vec();
    out.extend_from_slice(&object.encode_to_vec());
    out
}

/// Polls `Status` on a client of its own until the plugin answers (10 s at
/// most).
async fn wait_ready(socket: &Path) {
    let client = GrpcClient::new(endpoint(socket), TIMEOUT);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.status().await {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("plugin did not come up: {e}"),
        }
    }
}

/// `kms-plugin-local --mock-base64` as a child process, SIGKILLed and reaped
/// on drop.
struct PluginProcess {
    child: Reaped,
}

impl PluginProcess {
    async fn start(socket: &Path) -> PluginProcess {
        let child = Command::new(workspace_binary("kms-plugin-local"))
            .args(["--mock-base64", "--api", "both", "--socket"])
            .arg(socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kms-plugin-local");
        let process = PluginProcess {
            child: Reaped(child),
        };
        wait_ready(socket).await;
        process
    }

    /// SIGKILL: no goodbye to clients, the socket file stays behind.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

async fn serve_mock(socket: &Path) -> PluginHandle {
    PluginServer::new(Base64MockKek::new())
        .serve(&endpoint(socket))
        .await
        .expect("serve")
}

fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("kms.sock")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

// ---------------------------------------------------------------------------
// 1. Plugin absent at start

#[tokio::test]
async fn absent_plugin_fails_fast_then_provider_works_once_it_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let clock = Arc::new(ManualClock::new());
    let a = provider(&socket, TIMEOUT, &clock);

    let started = Instant::now();
    let e = kms_error(a.refresh().await);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "refresh took {took:?}, the timeout is {TIMEOUT:?}"
    );
    assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");
    assert_eq!(e.method(), Some(STATUS));
    let text = e.to_string();
    assert!(text.contains(path_str(&socket)), "{text}");

    let health = a.health();
    assert!(!health.healthy);
    assert!(!health.can_write);
    assert_eq!(health.key_id_hash, None);
    assert!(
        health
            .error
            .as_deref()
            .is_some_and(|m| m.contains(path_str(&socket))),
        "{health:?}"
    );

    assert_not_ready(write(&a, b"too early").await);
    assert_not_ready(read(&a, &crafted_value()).await);
    assert_eq!(a.dek_cache_len(), 0);

    let handle = serve_mock(&socket).await;
    a.refresh().await.expect("refresh once the plugin is up");
    let health = a.health();
    assert!(health.healthy && health.can_write, "{health:?}");
    assert_eq!(health.error, None);
    assert_eq!(health.key_id_hash, Some(key_id_hash("1")));

    let stored = write(&a, b"finally").await.expect("write");
    assert_eq!(decode_object(&stored).key_id, "1");
    assert_reads(&a, &stored, b"finally", false).await;
    handle.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------
// 2. Plugin killed mid-run

#[tokio::test]
async fn killed_plugin_keeps_cached_reads_writes_until_expiry_and_recovers_on_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let plugin = PluginProcess::start(&socket).await;

    let clock_a = Arc::new(ManualClock::new());
    let a = provider(&socket, TIMEOUT, &clock_a);
    a.refresh().await.expect("refresh A");
    let v1 = write(&a, b"value one").await.expect("A writes V1");

    // B: same plugin, its own provider and caches.
    let clock_b = Arc::new(ManualClock::new());
    let b = provider(&socket, TIMEOUT, &clock_b);
    b.refresh().await.expect("refresh B");
    let v2 = write(&b, b"value two").await.expect("B writes V2");
    assert_ne!(
        decode_object(&v1).encrypted_dek_source,
        decode_object(&v2).encrypted_dek_source,
        "A and B have seeds of their own"
    );
    assert_eq!(a.dek_cache_len(), 1, "only A's own seed");

    plugin.kill();

    // Within the 3 minutes: writes go on with the current seed.
    clock_a.advance(Duration::from_secs(120));
    let during = write(&a, b"during the outage")
        .await
        .expect("write 2 min into the outage");
    assert_reads(&a, &during, b"during the outage", false).await;
    // V1's seed is cached; V2's never was, and the plugin is gone.
    assert_reads(&a, &v1, b"value one", false).await;
    let e = kms_error(read(&a, &v2).await);
    assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");
    assert_eq!(e.method(), Some(DECRYPT));
    let text = e.to_string();
    assert!(text.contains("Decrypt"), "{text}");
    assert!(text.contains(path_str(&socket)), "{text}");
    assert_eq!(a.dek_cache_len(), 1, "a failed decrypt caches nothing");

    let e = kms_error(a.refresh().await);
    assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");
    assert_eq!(e.method(), Some(STATUS));
    let health = a.health();
    assert!(!health.healthy, "{health:?}");
    assert!(health.can_write, "still within 3 min: {health:?}");

    // Past 3 minutes since the last good status: writes refused, reads go on.
    clock_a.advance(Duration::from_secs(61));
    match write(&a, b"too late").await {
        Err(Error::Kms(e)) if matches!(e.kind(), KmsErrorKind::WriteRefused(_)) => {
            assert_eq!(e.provider(), Some(NAME));
            assert!(e.to_string().contains("expired"), "{e}");
        }
        other => panic!("expected a refusal to write, got {other:?}"),
    }
    let health = a.health();
    assert!(!health.healthy && !health.can_write, "{health:?}");
    assert_eq!(health.key_id_hash, Some(key_id_hash("1")));
    assert_reads(&a, &v1, b"value one", false).await;
    assert_reads(&a, &during, b"during the outage", false).await;

    // Restarted on the same path (the dead process left its socket file).
    assert!(socket.exists(), "SIGKILL leaves the socket file");
    let _plugin = PluginProcess::start(&socket).await;
    a.refresh().await.expect("refresh after the restart");
    let health = a.health();
    assert!(health.healthy && health.can_write, "{health:?}");
    let after = write(&a, b"after the restart")
        .await
        .expect("write after the restart");
    assert_reads(&a, &after, b"after the restart", false).await;
    assert_reads(&a, &v2, b"value two", false).await;
    assert_eq!(a.dek_cache_len(), 2, "A's seed and, now, B's");
}

// ---------------------------------------------------------------------------
// 3. Plugin slower than the timeout

use k8s_envelope_test_support::process::Reaped;
use k8s_envelope_test_support::slow_kek::SlowKek;

const SLOW: Duration = Duration::from_secs(2);
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a call with [`SHORT_TIMEOUT`] may take at most, with slack.
const SHORT_TIMEOUT_BOUND: Duration = Duration::from_millis(1500);

async fn serve_slow(socket: &Path, kek: SlowKek) -> PluginHandle {
    PluginServer::new(kek)
        .serve(&endpoint(socket))
        .await
        .expect("serve")
}

#[tokio::test]
async fn slow_plugin_status_times_out_within_the_call_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let _handle = serve_slow(&socket, SlowKek::all(SLOW)).await;
    let clock = Arc::new(ManualClock::new());
    let a = provider(&socket, SHORT_TIMEOUT, &clock);

    let started = Instant::now();
    let result = a.refresh().await;
    let took = started.elapsed();
    assert!(took < SHORT_TIMEOUT_BOUND, "refresh took {took:?}");
    assert!(
        took >= SHORT_TIMEOUT - Duration::from_millis(50),
        "{took:?}"
    );
    // A failed Status call comes back as the KMS error itself.
    let e = kms_error(result);
    assert!(
        matches!(e.kind(), KmsErrorKind::Timeout(t) if *t == SHORT_TIMEOUT),
        "{e}"
    );
    assert!(e.is_transient());
    assert_eq!(e.method(), Some(STATUS));
    assert!(e.to_string().contains("timed out after 300ms"), "{e}");

    let health = a.health();
    assert!(!health.healthy && !health.can_write, "{health:?}");
    assert!(
        health
            .error
            .as_deref()
            .is_some_and(|m| m.contains("timed out")),
        "{health:?}"
    );
    assert_not_ready(write(&a, b"x").await);
    assert_eq!(a.dek_cache_len(), 0);
}

#[tokio::test]
async fn slow_plugin_encrypt_timeout_fails_the_refresh_as_a_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let _handle = serve_slow(
        &socket,
        SlowKek {
            status: Duration::ZERO,
            wrap: SLOW,
            unwrap: SLOW,
        },
    )
    .await;
    let clock = Arc::new(ManualClock::new());
    let a = provider(&socket, SHORT_TIMEOUT, &clock);

    let started = Instant::now();
    let result = a.refresh().await;
    let took = started.elapsed();
    assert!(took < SHORT_TIMEOUT_BOUND, "refresh took {took:?}");
    // Status answered; the Encrypt of the new seed timed out. The status
    // had no other problem, so the refresh fails with the Encrypt's own
    // error, of its own kind (a timeout: transient).
    match result {
        Err(Error::Kms(e)) => {
            assert_eq!(e.provider(), Some(NAME));
            assert!(e.is_transient(), "{e}");
            assert!(
                !matches!(e.kind(), KmsErrorKind::Unhealthy(_)),
                "the timeout became an unhealthy status: {e}"
            );
            let text = e.to_string();
            assert!(text.contains(ENCRYPT), "{text}");
            assert!(text.contains("timed out after 300ms"), "{text}");
        }
        other => panic!("expected the Encrypt's timeout, got {other:?}"),
    }
    let health = a.health();
    assert!(!health.healthy && !health.can_write, "{health:?}");
    assert_not_ready(write(&a, b"x").await);
    assert_eq!(a.dek_cache_len(), 0);
}

#[tokio::test]
async fn slow_plugin_decrypt_times_out_on_a_cache_miss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let _handle = serve_slow(
        &socket,
        SlowKek {
            status: Duration::ZERO,
            wrap: Duration::ZERO,
            unwrap: SLOW,
        },
    )
    .await;
    let clock = Arc::new(ManualClock::new());
    // B writes; A, with its own cache, must ask the plugin to unwrap.
    let b = provider(&socket, TIMEOUT, &clock);
    b.refresh().await.expect("refresh B");
    let stored = write(&b, b"slow to read").await.expect("write");
    let a = provider(&socket, SHORT_TIMEOUT, &clock);
    a.refresh().await.expect("refresh A");

    let started = Instant::now();
    let e = kms_error(read(&a, &stored).await);
    let took = started.elapsed();
    assert!(took < SHORT_TIMEOUT_BOUND, "read took {took:?}");
    assert!(
        matches!(e.kind(), KmsErrorKind::Timeout(t) if *t == SHORT_TIMEOUT),
        "{e}"
    );
    assert_eq!(e.method(), Some(DECRYPT));
    assert_eq!(a.dek_cache_len(), 1, "only A's own seed");
    // A's own values never need the plugin.
    let own = write(&a, b"fast").await.expect("write");
    assert_reads(&a, &own, b"fast", false).await;
}

// ---------------------------------------------------------------------------
// 4. Key-ID rotation through a real plugin

#[tokio::test]
async fn key_id_rotation_marks_old_values_stale_and_rewrites_use_the_new_key_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let key_id_file = dir.path().join("key-id");
    fs::write(&key_id_file, "1\n").expect("write key ID");
    let _handle = PluginServer::new(Base64MockKek::with_key_id_file(&key_id_file))
        .serve(&endpoint(&socket))
        .await
        .expect("serve");
    let clock = Arc::new(ManualClock::new());
    let a = provider(&socket, TIMEOUT, &clock);
    a.refresh().await.expect("refresh");
    assert_eq!(a.health().key_id_hash, Some(key_id_hash("1")));

    let v = write(&a, b"rotate me").await.expect("write V");
    let object = decode_object(&v);
    assert_eq!(object.key_id, "1");
    assert_eq!(
        object
            .annotations
            .get(Base64MockKek::ANNOTATION_KEY)
            .map(Vec::as_slice),
        Some(Base64MockKek::ANNOTATION_VALUE)
    );
    assert_reads(&a, &v, b"rotate me", false).await;

    fs::write(&key_id_file, "2\n").expect("rotate key ID");
    a.refresh().await.expect("refresh after rotation");
    let health = a.health();
    assert!(health.healthy && health.can_write, "{health:?}");
    assert_eq!(health.key_id_hash, Some(key_id_hash("2")));

    // Re-encrypt: read the plaintext, write it again.
    let old = read(&a, &v).await.expect("read V");
    assert_eq!(old.plaintext, b"rotate me");
    assert!(old.stale, "V has key ID 1, the plugin is at 2");
    let rewritten = write(&a, &old.plaintext).await.expect("rewrite");
    let object = decode_object(&rewritten);
    assert_eq!(object.key_id, "2");
    assert_eq!(
        object.encrypted_dek_source_type,
        EncryptedDekSourceType::HkdfSha256XnonceAesGcmSeed as i32
    );
    assert_ne!(
        object.encrypted_dek_source,
        decode_object(&v).encrypted_dek_source
    );
    assert_reads(&a, &rewritten, b"rotate me", false).await;

    // The same through a Transformer.
    let transformer =
        Transformer::new(vec![Arc::new(a.clone()) as Arc<dyn Provider>]).expect("transformer");
    let key = StorageKey::from(STORAGE_KEY);
    let old = transformer.decrypt(&v, key).await.expect("read V");
    assert_eq!(old.plaintext, b"rotate me");
    assert!(old.stale);
    let rewritten = transformer
        .encrypt(&old.plaintext, key)
        .await
        .expect("rewrite");
    assert_eq!(decode_object(&rewritten).key_id, "2");
    let new = transformer.decrypt(&rewritten, key).await.expect("read");
    assert_eq!(new.plaintext, b"rotate me");
    assert!(!new.stale);

    // A fresh provider (empty cache) reads the key-ID-1 value through the
    // plugin's Decrypt, and finds it stale too.
    let c = provider(&socket, TIMEOUT, &clock);
    c.refresh().await.expect("refresh C");
    assert_eq!(c.dek_cache_len(), 1);
    assert_reads(&c, &v, b"rotate me", true).await;
    assert_reads(&c, &rewritten, b"rotate me", false).await;
    assert_eq!(c.dek_cache_len(), 3, "own seed, V's and A's second seed");
}

// ---------------------------------------------------------------------------
// 5. Invalid plugin answers are rejected

/// What a hostile plugin gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hostility {
    StatusKeyIdEmpty,
    StatusKeyIdTooLong,
    EncryptCiphertextTooLong,
    EncryptAnnotationKeyNotDns,
    EncryptAnnotationsTooLarge,
    StatusVersionV1,
    StatusHealthzDown,
    EncryptKeyIdMismatch,
    DecryptShortSeed,
}

const HOSTILE_KEY_ID: &str = "k1";
const HOSTILE_ANNOTATION: &str = "hostile.example.com";

fn long_key_id() -> String {
    "K".repeat(2048)
}

/// A KMS v2 plugin written against the generated tonic trait, answering
/// one thing wrong; otherwise it "wraps" as identity.
#[derive(Clone)]
struct HostilePlugin {
    hostility: Hostility,
    encrypt_calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl KeyManagementService for HostilePlugin {
    async fn status(
        &self,
        _request: tonic::Request<v2::StatusRequest>,
    ) -> Result<tonic::Response<v2::StatusResponse>, tonic::Status> {
        let key_id = match self.hostility {
            Hostility::StatusKeyIdEmpty => String::new(),
            Hostility::StatusKeyIdTooLong => long_key_id(),
            _ => HOSTILE_KEY_ID.to_owned(),
        };
        let version = match self.hostility {
            Hostility::StatusVersionV1 => "v1",
            _ => "v2",
        };
        let healthz = match self.hostility {
            Hostility::StatusHealthzDown => "down",
            _ => "ok",
        };
        Ok(tonic::Response::new(v2::StatusResponse {
            version: version.to_owned(),
            healthz: healthz.to_owned(),
            key_id,
        }))
    }

    async fn decrypt(
        &self,
        request: tonic::Request<v2::DecryptRequest>,
    ) -> Result<tonic::Response<v2::DecryptResponse>, tonic::Status> {
        let mut plaintext = request.get_ref().ciphertext.clone();
        if self.hostility == Hostility::DecryptShortSeed {
            plaintext.truncate(8);
        }
        Ok(tonic::Response::new(v2::DecryptResponse { plaintext }))
    }

    async fn encrypt(
        &self,
        request: tonic::Request<v2::EncryptRequest>,
    ) -> Result<tonic::Response<v2::EncryptResponse>, tonic::Status> {
        self.encrypt_calls.fetch_add(1, Ordering::SeqCst);
        let mut ciphertext = request.get_ref().plaintext.clone();
        let mut key_id = HOSTILE_KEY_ID.to_owned();
        let mut annotations = BTreeMap::from([(HOSTILE_ANNOTATION.to_owned(), b"v".to_vec())]);
        match self.hostility {
            Hostility::EncryptCiphertextTooLong => ciphertext = vec![0xC7; 2048],
            Hostility::EncryptAnnotationKeyNotDns => {
                annotations.insert("not_a_dns_name".to_owned(), b"v".to_vec());
            }
            Hostility::EncryptAnnotationsTooLarge => {
                // Five 8 KiB values: 40 KiB and a bit, over the 32 KiB limit.
                for i in 0..5 {
                    annotations.insert(format!("a{i}.example.com"), vec![b'x'; 8 * 1024]);
                }
            }
            Hostility::EncryptKeyIdMismatch => key_id = "k2".to_owned(),
            _ => {}
        }
        Ok(tonic::Response::new(v2::EncryptResponse {
            ciphertext,
            key_id,
            annotations,
        }))
    }
}

/// Serves `plugin` with plain tonic on a fresh unix socket; stops when the
/// sender is dropped.
fn serve_hostile(socket: &Path, plugin: HostilePlugin) -> tokio::sync::oneshot::Sender<()> {
    let listener = tokio::net::UnixListener::bind(socket).expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder().serve_with_incoming_shutdown(
            KeyManagementServiceServer::new(plugin),
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            async move {
                let _ = stopped.await;
            },
        ),
    );
    stop
}

/// Runs one hostile plugin against a fresh provider's first refresh and
/// returns the provider and the refresh's error text.
async fn first_refresh_against(hostility: Hostility) -> (KmsV2Provider, String, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let encrypt_calls = Arc::new(AtomicUsize::new(0));
    let _stop = serve_hostile(
        &socket,
        HostilePlugin {
            hostility,
            encrypt_calls: encrypt_calls.clone(),
        },
    );
    let clock = Arc::new(ManualClock::new());
    let a = provider(&socket, TIMEOUT, &clock);
    let message = match a.refresh().await {
        Ok(()) => panic!("{hostility:?}: refresh accepted the answer"),
        Err(e) => e.to_string(),
    };
    let health = a.health();
    assert!(!health.healthy, "{hostility:?}: {health:?}");
    assert_eq!(
        health.error.as_deref(),
        Some(message.as_str()),
        "{hostility:?}"
    );
    (a, message, encrypt_calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn invalid_plugin_answers_are_rejected_and_nothing_is_adopted() {
    let cases = [
        (Hostility::StatusKeyIdEmpty, "keyID is empty", 0),
        (
            Hostility::StatusKeyIdTooLong,
            "keyID exceeds the max size of 1024 bytes",
            0,
        ),
        (
            Hostility::EncryptCiphertextTooLong,
            "encrypted DEK source exceeds the max size of 1024 bytes",
            1,
        ),
        (
            Hostility::EncryptAnnotationKeyNotDns,
            "annotation key is not a fully qualified domain name",
            1,
        ),
        (
            Hostility::EncryptAnnotationsTooLarge,
            "total size of annotations exceeds the max size of 32768 bytes",
            1,
        ),
        (
            Hostility::EncryptKeyIdMismatch,
            "Encrypt answered key ID hash",
            1,
        ),
    ];
    for (hostility, problem, encrypt_calls) in cases {
        let (a, message, calls) = first_refresh_against(hostility).await;
        assert!(message.contains(problem), "{hostility:?}: {message}");
        assert!(message.contains(NAME), "{hostility:?}: {message}");
        assert!(
            !message.contains(&long_key_id()),
            "{hostility:?}: the key ID is echoed"
        );
        assert_eq!(calls, encrypt_calls, "{hostility:?}: Encrypt calls");
        let health = a.health();
        assert!(!health.can_write, "{hostility:?}: {health:?}");
        assert_eq!(health.key_id_hash, None, "{hostility:?}");
        assert_not_ready(write(&a, b"x").await);
        assert_eq!(a.dek_cache_len(), 0, "{hostility:?}");
    }

    let (_, message, _) = first_refresh_against(Hostility::EncryptKeyIdMismatch).await;
    assert!(message.contains(&key_id_hash("k2")), "{message}");
    assert!(message.contains(&key_id_hash(HOSTILE_KEY_ID)), "{message}");
}

/// A bad `healthz` or `version` with a valid key ID makes the refresh fail
/// and the provider unhealthy, but — exactly as kube-apiserver's
/// `isKMSv2ProviderHealthyAndMaybeRotateDEK`, which runs
/// `rotateDEKOnKeyIDChange` whenever the key ID is valid, whatever healthz
/// and version say — the seed is still rotated and adopted for writes.
#[tokio::test]
async fn bad_healthz_or_version_is_unhealthy_but_rotates_like_the_apiserver() {
    let cases = [
        (
            Hostility::StatusVersionV1,
            "expected KMSv2 API version v2, got v1",
        ),
        (
            Hostility::StatusHealthzDown,
            "unexpected healthz status: down",
        ),
    ];
    for (hostility, problem) in cases {
        let (a, message, calls) = first_refresh_against(hostility).await;
        assert!(message.contains(problem), "{hostility:?}: {message}");
        assert!(
            matches!(a.refresh().await, Err(Error::Kms(e)) if matches!(e.kind(), KmsErrorKind::Unhealthy(_))),
            "{hostility:?}"
        );
        assert_eq!(calls, 1, "{hostility:?}: Encrypt calls");
        let health = a.health();
        assert!(!health.healthy, "{hostility:?}");
        assert!(health.can_write, "{hostility:?}: {health:?}");
        assert_eq!(health.key_id_hash, Some(key_id_hash(HOSTILE_KEY_ID)));
        assert_eq!(a.dek_cache_len(), 1, "{hostility:?}");
        let stored = write(&a, b"x").await.expect("write");
        assert_reads(&a, &stored, b"x", false).await;
    }
}

#[tokio::test]
async fn invalid_decrypt_answer_is_rejected_and_not_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let _stop = serve_hostile(
        &socket,
        HostilePlugin {
            hostility: Hostility::DecryptShortSeed,
            encrypt_calls: Arc::default(),
        },
    );
    let clock = Arc::new(ManualClock::new());
    let b = provider(&socket, TIMEOUT, &clock);
    b.refresh().await.expect("refresh B");
    let stored = write(&b, b"needs an unwrap").await.expect("write");
    let a = provider(&socket, TIMEOUT, &clock);
    a.refresh().await.expect("refresh A");
    for _ in 0..2 {
        match read(&a, &stored).await {
            Err(Error::Malformed { reason, .. }) => {
                assert!(reason.contains("seed shorter than 32 bytes"), "{reason}")
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
        assert_eq!(a.dek_cache_len(), 1, "only A's own seed");
    }
    assert_reads(&b, &stored, b"needs an unwrap", false).await;
}

// ---------------------------------------------------------------------------
// 6. Reconnect after a restart

#[tokio::test]
async fn same_provider_reconnects_after_the_plugin_restarts_on_the_same_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(&dir);
    let handle = serve_mock(&socket).await;
    let clock = Arc::new(ManualClock::new());
    let a = provider(&socket, TIMEOUT, &clock);
    let b = provider(&socket, TIMEOUT, &clock);
    a.refresh().await.expect("refresh A");
    b.refresh().await.expect("refresh B");
    let from_b = write(&b, b"written by B").await.expect("B writes");
    let from_b_later = write(&b, b"also by B").await.expect("B writes");

    // Down: A's established connection is told to go away.
    handle.shutdown().await.expect("shutdown");
    assert!(!socket.exists());
    let e = kms_error(a.refresh().await);
    assert!(matches!(e.kind(), KmsErrorKind::Unavailable(_)), "{e}");

    // Up again on the same path: the same provider picks it up.
    let handle = serve_mock(&socket).await;
    a.refresh().await.expect("refresh after restart");
    assert!(a.health().healthy);
    assert_reads(&a, &from_b, b"written by B", false).await;
    let own = write(&a, b"by A").await.expect("write");
    assert_reads(&a, &own, b"by A", false).await;

    // Restarted again with no failed call in between: the first call on the
    // old (dead) connection must succeed, and so must a read that needs the
    // plugin.
    handle.shutdown().await.expect("shutdown");
    let _handle = serve_mock(&socket).await;
    a.refresh()
        .await
        .expect("first refresh after the second restart");
    assert!(a.health().healthy);
    let c = provider(&socket, TIMEOUT, &clock);
    c.refresh().await.expect("refresh C");
    // B's second value shares B's seed, which A has cached by now; use a
    // fresh writer so that A has to call Decrypt.
    let from_c = write(&c, b"written by C").await.expect("C writes");
    assert_reads(&a, &from_c, b"written by C", false).await;
    assert_reads(&a, &from_b_later, b"also by B", false).await;
}
