//! Observability: metrics through the `metrics` facade, `tracing` events and
//! JSON Lines audit events, and none of them ever holds key material or
//! plaintext.

use std::sync::Arc;

use k8s_envelope::kms::{KmsV1Options, KmsV1Provider, KmsV2Options, KmsV2Provider};
use k8s_envelope::observe::metrics as names;
use k8s_envelope::observe::{JsonLinesAuditSink, Observer};
use k8s_envelope::Transformer;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

use crate::support::observe::*;

fn counter(snapshot: &[Metric], name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshot
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, value)| match value {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

/// The metrics `work` records, run on a runtime of its own.
fn recorded_async(work: impl std::future::Future<Output = ()>) -> Vec<Metric> {
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || runtime.block_on(work));
    snapshot(&recorder)
}

/// A recorded metric: name, labels, value.
type Metric = (String, Vec<(String, String)>, DebugValue);

fn snapshot(recorder: &DebuggingRecorder) -> Vec<Metric> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, value)
        })
        .collect()
}

#[test]
fn transforms_are_counted_and_timed_by_operation_prefix_and_outcome() {
    let recorder = DebuggingRecorder::new();
    let transformers = transformers();
    metrics::with_local_recorder(&recorder, || exercise(&Observer::new(), &transformers));
    let snap = snapshot(&recorder);
    let gcm = "k8s:enc:aesgcm:v1:";
    let ops = names::TRANSFORMATION_OPERATIONS;
    assert_eq!(
        counter(
            &snap,
            ops,
            &[
                ("transformation_type", "to_storage"),
                ("transformer_prefix", gcm),
                ("status", "ok")
            ]
        ),
        1
    );
    assert_eq!(
        counter(
            &snap,
            ops,
            &[
                ("transformation_type", "from_storage"),
                ("transformer_prefix", gcm),
                ("status", "ok")
            ]
        ),
        1
    );
    assert_eq!(
        counter(
            &snap,
            ops,
            &[
                ("transformation_type", "from_storage"),
                ("transformer_prefix", gcm),
                ("status", "error")
            ]
        ),
        2
    );
    assert_eq!(
        counter(
            &snap,
            ops,
            &[
                ("transformer_prefix", "k8s:enc:secretbox:v1:"),
                ("status", "ok")
            ]
        ),
        1
    );
    assert_eq!(
        counter(
            &snap,
            ops,
            &[("transformer_prefix", "identity"), ("status", "error")]
        ),
        1
    );
    assert_eq!(
        counter(
            &snap,
            names::STALE_READS,
            &[("transformer_prefix", "k8s:enc:secretbox:v1:")]
        ),
        1
    );
    assert!(snap
        .iter()
        .any(|(n, _, v)| n == names::TRANSFORMATION_DURATION
            && matches!(v, DebugValue::Histogram(h) if !h.is_empty())));
    assert_clean(&format!("{snap:?}"));
}

#[test]
fn kms_calls_caches_and_key_id_hashes_are_recorded() {
    let snap = recorded_async(async {
        let service = FakeKms::with_key_id("distinctive-key-id-77");
        let writer = KmsV2Provider::new("vault", service.clone(), KmsV2Options::default())
            .expect("provider");
        writer.refresh().await.expect("refresh");
        let reader =
            KmsV2Provider::new("vault", service, KmsV2Options::default()).expect("provider");
        reader.refresh().await.expect("refresh");
        let writer = Transformer::new(vec![Arc::new(writer)]).expect("transformer");
        let reader = Transformer::new(vec![Arc::new(reader)]).expect("transformer");
        let stored = writer
            .encrypt(PLAINTEXT, "/k".into())
            .await
            .expect("encrypt");
        reader
            .decrypt(&stored, "/k".into())
            .await
            .expect("miss: the plugin decrypts the seed");
    });
    let vault = ("provider_name", "vault");
    assert_eq!(
        counter(
            &snap,
            names::KMS_OPERATIONS,
            &[vault, ("method_name", "Status"), ("status", "ok")]
        ),
        2
    );
    assert_eq!(
        counter(
            &snap,
            names::KMS_OPERATIONS,
            &[vault, ("method_name", "Encrypt"), ("status", "ok")]
        ),
        2
    );
    assert_eq!(
        counter(
            &snap,
            names::KMS_OPERATIONS,
            &[vault, ("method_name", "Decrypt"), ("status", "ok")]
        ),
        1
    );
    assert_eq!(
        counter(&snap, names::DEK_CACHE_MISSES, &[vault, ("cache", "dek")]),
        1
    );
    let text = format!("{snap:?}");
    assert!(
        text.contains(&k8s_envelope::kms::key_id_hash("distinctive-key-id-77")),
        "{text}"
    );
    assert!(
        !text.contains("distinctive-key-id-77"),
        "a raw key ID in metrics: {text}"
    );
    assert_clean(&text);
}

#[test]
fn kms_v1_cache_lookups_are_counted_once_each() {
    let snap = recorded_async(async {
        let provider = || {
            let service = Arc::new(k8s_envelope::kms::mock::Base64Kms);
            KmsV1Provider::new("legacy", service, KmsV1Options::default()).expect("provider")
        };
        let writer = Transformer::new(vec![Arc::new(provider())]).expect("transformer");
        let reader = Transformer::new(vec![Arc::new(provider())]).expect("transformer");
        let stored = writer
            .encrypt(PLAINTEXT, "/k".into())
            .await
            .expect("encrypt");
        for _ in 0..3 {
            // The first read misses and asks the plugin; the others are
            // answered from the cache without a future.
            reader.decrypt(&stored, "/k".into()).await.expect("decrypt");
        }
    });
    let legacy = [("provider_name", "legacy"), ("cache", "dek")];
    assert_eq!(counter(&snap, names::DEK_CACHE_MISSES, &legacy), 1);
    assert_eq!(counter(&snap, names::DEK_CACHE_HITS, &legacy), 2);
    assert_eq!(
        counter(
            &snap,
            names::KMS_OPERATIONS,
            &[
                ("provider_name", "legacy"),
                ("method_name", "Decrypt"),
                ("status", "ok")
            ]
        ),
        1
    );
}

#[test]
fn the_audit_log_has_one_line_per_transform_and_never_the_value() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let sink = Arc::new(JsonLinesAuditSink::create(&path).expect("sink"));
    let observer = Observer::new().with_audit(sink.clone());
    let transformers = transformers();
    exercise(&observer, &transformers);
    sink.flush().expect("flush");
    let log = std::fs::read_to_string(&path).expect("read");
    assert_clean(&log);
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(events.len(), 6);
    let first = &events[0];
    assert_eq!(first["operation"], "encrypt");
    assert_eq!(first["resource"], "secrets");
    assert_eq!(first["storage_key"], "/registry/secrets/default/a");
    assert_eq!(first["provider"], "aesgcm");
    assert_eq!(first["key"], "new");
    assert_eq!(first["outcome"], "ok");
    assert!(first["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(first["duration_us"].is_u64());
    assert_eq!(events[1]["stale"], false);
    assert_eq!(
        (
            &events[2]["provider"],
            &events[2]["key"],
            &events[2]["stale"]
        ),
        (&"secretbox".into(), &"old".into(), &true.into())
    );
    assert_eq!(events[3]["outcome"], "error");
    assert!(events[3]["error"]
        .as_str()
        .is_some_and(|e| e.contains("decryption failed")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Dropping the last handle drains the queue.
    drop(observer);
    let sink = Arc::into_inner(sink).expect("last handle");
    drop(sink);
}

#[test]
fn audit_lines_stay_valid_json_whatever_the_storage_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let sink = Arc::new(JsonLinesAuditSink::create(&path).expect("sink"));
    let observer = Observer::new().with_audit(sink.clone());
    let transformers = transformers();
    let odd = "/registry/secrets/ns/\"quoted\"\\back\nline\u{1}é";
    let stored = observer
        .encrypt_blocking(&transformers, "secrets", b"v", odd.into())
        .expect("encrypt");
    observer
        .decrypt_blocking(&transformers, "secrets", &stored, odd.into())
        .expect("decrypt");
    sink.flush().expect("flush");
    let log = std::fs::read_to_string(&path).expect("read");
    assert_eq!(log.lines().count(), 2);
    for line in log.lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        assert_eq!(event["storage_key"], odd);
    }
}
