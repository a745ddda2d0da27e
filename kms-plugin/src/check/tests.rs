//! The checks against plugins served in process by the plugin kit, each
//! broken in one way (the CLI's tests run them against real processes:
//! kms-plugin-local, kms-plugin-pkcs11 and the Go reference's mock).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use zeroize::Zeroizing;

use super::*;
use crate::{Kek, KekError, KekFuture, LocalKek, PluginServer, Wrapped};
use k8s_envelope::{private_file, SecretKey};

/// One way a plugin can be broken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    None,
    EmptyKeyId,
    LongKeyId,
    Delay(Duration),
    Unhealthy,
    EncryptKeyId,
    AnnotationKey,
    LongCiphertext,
    WrongPlaintext,
    RotatesEveryStatus,
}

/// A [`LocalKek`] with one [`Fault`].
struct Faulty {
    inner: LocalKek,
    fault: Fault,
    statuses: std::sync::atomic::AtomicUsize,
}

impl Faulty {
    fn key_id_now(&self, id: String) -> String {
        match self.fault {
            Fault::EmptyKeyId => String::new(),
            Fault::LongKeyId => "k".repeat(2048),
            _ => id,
        }
    }
}

impl Kek for Faulty {
    fn key_id(&self) -> KekFuture<'_, String> {
        Box::pin(async move {
            if let Fault::Delay(d) = self.fault {
                tokio::time::sleep(d).await;
            }
            let id = self.inner.key_id().await?;
            if self.fault == Fault::RotatesEveryStatus {
                let n = self
                    .statuses
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(format!("{id}-{n}"));
            }
            Ok(self.key_id_now(id))
        })
    }

    fn healthy(&self) -> KekFuture<'_, ()> {
        Box::pin(async move {
            match self.fault {
                Fault::Unhealthy => Err(KekError::unavailable("the token is gone")),
                _ => Ok(()),
            }
        })
    }

    fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> KekFuture<'a, Wrapped> {
        Box::pin(async move {
            if self.fault == Fault::Unhealthy {
                return Err(KekError::unavailable("the token is gone"));
            }
            let mut wrapped = self.inner.wrap(plaintext).await?;
            match self.fault {
                Fault::EncryptKeyId => wrapped.key_id = "another-key".into(),
                Fault::AnnotationKey => {
                    wrapped
                        .annotations
                        .insert("Not_A_Domain".into(), b"x".to_vec());
                }
                Fault::LongCiphertext => wrapped.ciphertext.resize(2048, 0),
                Fault::EmptyKeyId | Fault::LongKeyId => {
                    wrapped.key_id = self.key_id_now(wrapped.key_id)
                }
                _ => {}
            }
            Ok(wrapped)
        })
    }

    fn unwrap<'a>(
        &'a self,
        key_id: &'a str,
        ciphertext: &'a [u8],
        annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KekFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(async move {
            let real_id = self.inner.key_id().await?;
            let key_id = match self.fault {
                Fault::EmptyKeyId | Fault::LongKeyId | Fault::EncryptKeyId => &real_id,
                Fault::RotatesEveryStatus => &real_id,
                _ => key_id,
            };
            let mut ciphertext = ciphertext;
            if self.fault == Fault::LongCiphertext {
                ciphertext = &ciphertext[..ciphertext.len().min(12 + 32 + 16)];
            }
            let mut plain = self.inner.unwrap(key_id, ciphertext, annotations).await?;
            if self.fault == Fault::WrongPlaintext {
                plain[0] ^= 1;
            }
            Ok(plain)
        })
    }
}

fn kek(dir: &Path) -> LocalKek {
    let path = dir.join("kek");
    let key = SecretKey::new(vec![3; 32]);
    private_file::write(&path, format!("{}\n", key.to_base64().as_str()).as_bytes()).expect("kek");
    LocalKek::open(&path).expect("open")
}

/// Serves `kek` and checks it with `allow_insecure`.
fn check_allowing_insecure(kek: impl Kek + 'static, api: CheckedApi) -> CheckReport {
    check_with(kek, api, Duration::from_secs(3), true)
}

/// Serves `kek` on a socket in a temporary directory and checks it.
pub(crate) fn check(kek: impl Kek + 'static, api: CheckedApi, timeout: Duration) -> CheckReport {
    check_with(kek, api, timeout, false)
}

fn check_with(
    kek: impl Kek + 'static,
    api: CheckedApi,
    timeout: Duration,
    allow_insecure: bool,
) -> CheckReport {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = KmsEndpoint::socket_file(dir.path().join("kms.sock")).expect("endpoint");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let handle = PluginServer::new(kek)
            .serve(&endpoint)
            .await
            .expect("serve");
        let report = PluginCheck::new(endpoint.clone())
            .timeout(timeout)
            .api(api)
            .allow_insecure(allow_insecure)
            .run()
            .await
            .expect("a plugin listens");
        handle.shutdown().await.expect("shutdown");
        report
    })
}

/// A check of a plugin with `fault`, with the apiserver's default timeout
/// (a test build under the load of the other tests can take a good part of
/// a second for the 1 MiB round trip).
fn faulty(fault: Fault) -> CheckReport {
    faulty_within(fault, Duration::from_secs(3))
}

/// A check of a plugin with `fault`, with calls timing out after `timeout`.
fn faulty_within(fault: Fault, timeout: Duration) -> CheckReport {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek = Faulty {
        inner: kek(dir.path()),
        fault,
        statuses: 0.into(),
    };
    check(kek, CheckedApi::V2, timeout)
}

/// The timeout of the delay tests: short, so that they run quickly.
const SHORT_TIMEOUT: Duration = Duration::from_millis(400);

fn outcome(report: &CheckReport, id: &str) -> Outcome {
    report
        .check(id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#?}"))
        .outcome
}

#[test]
fn a_sound_plugin_passes_every_check() {
    let report = faulty(Fault::None);
    for check in report.checks() {
        assert_eq!(check.outcome, Outcome::Pass, "{check:?}");
    }
    assert!(report.passed(true));
    let ids: Vec<_> = report.checks().iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        [
            "status.answers",
            "status.version",
            "status.healthz",
            "status.key_id",
            "encrypt.answers",
            "encrypt.key_id",
            "encrypt.ciphertext",
            "encrypt.dek_concealed",
            "encrypt.annotations",
            "decrypt.round_trip",
            "concurrency",
            "status.key_id_stable",
            "large_round_trip",
            "corrupted_ciphertext",
            "foreign_key_id",
            "socket_permissions",
            "latency",
        ]
    );
}

#[test]
fn each_broken_rule_fails_its_check() {
    let cases = [
        (Fault::EmptyKeyId, &["status.key_id", "encrypt.key_id"][..]),
        (Fault::LongKeyId, &["status.key_id", "encrypt.key_id"]),
        (
            Fault::Unhealthy,
            &["status.healthz", "encrypt.answers", "concurrency"],
        ),
        (Fault::EncryptKeyId, &["encrypt.key_id"]),
        (Fault::AnnotationKey, &["encrypt.annotations"]),
        (Fault::LongCiphertext, &["encrypt.ciphertext"]),
        (
            Fault::WrongPlaintext,
            &["decrypt.round_trip", "concurrency"],
        ),
        (
            Fault::RotatesEveryStatus,
            &["encrypt.key_id", "status.key_id_stable"],
        ),
    ];
    for (fault, failing) in cases {
        let report = faulty(fault);
        let failed: Vec<_> = report
            .checks()
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.id)
            .collect();
        assert_eq!(failed, failing, "{fault:?}: {report:#?}");
        assert!(!report.passed(false), "{fault:?}");
    }
}

#[test]
fn a_call_past_the_timeout_fails_latency_and_skips_what_follows() {
    let started = std::time::Instant::now();
    let report = faulty_within(Fault::Delay(Duration::from_millis(1500)), SHORT_TIMEOUT);
    assert_eq!(outcome(&report, "status.answers"), Outcome::Fail);
    assert_eq!(outcome(&report, "latency"), Outcome::Fail);
    assert_eq!(outcome(&report, "concurrency"), Outcome::Skip);
    assert_eq!(outcome(&report, "status.version"), Outcome::Skip);
    let detail = &report.check("latency").expect("latency").detail;
    assert!(
        detail.contains("Status did not answer within 0.4s"),
        "{detail}"
    );
    // One timeout, not one per check.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_slow_plugin_warns_on_latency() {
    // Half the timeout exactly, and 300 ms of room before it runs out.
    let report = faulty_within(
        Fault::Delay(Duration::from_millis(300)),
        Duration::from_millis(600),
    );
    assert_eq!(outcome(&report, "latency"), Outcome::Warn);
    assert!(report.passed(false));
    assert!(!report.passed(true), "strict makes warnings failures");
}

/// Kubernetes' base64 mock leaves the DEK in clear: it fails, unless
/// allowed (a test mock), and then passes with that and two more warnings.
#[test]
fn the_base64_mock_fails_unless_allowed() {
    for api in [CheckedApi::V2, CheckedApi::V1] {
        let report = check(crate::Base64MockKek::new(), api, Duration::from_secs(3));
        assert!(!report.passed(false), "{api}: {report:#?}");
        let failed: Vec<_> = report
            .checks()
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.id)
            .collect();
        assert_eq!(failed, ["encrypt.dek_concealed"], "{api}");
    }
    let report = check_allowing_insecure(crate::Base64MockKek::new(), CheckedApi::V2);
    assert!(report.passed(false), "{report:#?}");
    assert_eq!(outcome(&report, "encrypt.dek_concealed"), Outcome::Warn);
    assert_eq!(outcome(&report, "corrupted_ciphertext"), Outcome::Warn);
    assert_eq!(outcome(&report, "foreign_key_id"), Outcome::Warn);
    assert_eq!(report.count(Outcome::Warn), 3, "{report:#?}");
}

#[test]
fn kms_v1_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = check(kek(dir.path()), CheckedApi::V1, Duration::from_secs(3));
    assert!(report.passed(true), "{report:#?}");
    let ids: Vec<_> = report.checks().iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        [
            "version.answers",
            "version.api",
            "encrypt.answers",
            "encrypt.ciphertext",
            "encrypt.dek_concealed",
            "decrypt.round_trip",
            "concurrency",
            "large_round_trip",
            "corrupted_ciphertext",
            "socket_permissions",
            "latency",
        ]
    );
}

#[test]
fn nothing_listening_is_an_error_not_a_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = KmsEndpoint::socket_file(dir.path().join("none.sock")).expect("endpoint");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let err = runtime
        .block_on(PluginCheck::new(endpoint).run())
        .expect_err("nothing listens");
    assert!(matches!(err, CheckError::NotListening { .. }), "{err}");
    assert!(err.to_string().contains("none.sock"), "{err}");
}
