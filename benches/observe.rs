//! The cost of observing a transform: aesgcm at 1 KiB, plain, through an
//! [`Observer`] (metrics and tracing, no recorder or subscriber installed, as
//! in a service that has not set them up), and with a JSON Lines audit sink.
//! Reported as `observe/<plain|observer|observer+audit>/<encrypt|decrypt>`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use k8s_envelope::observe::{JsonLinesAuditSink, Observer};
use k8s_envelope::EncryptionConfiguration;

fn bench_observe(c: &mut Criterion) {
    let transformers = EncryptionConfiguration::from_yaml(
        b"kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n      - aesgcm:\n          keys:\n            - name: key1\n              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    )
    .expect("parses")
    .build()
    .expect("builds");
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = Arc::new(JsonLinesAuditSink::create(dir.path().join("audit.jsonl")).expect("sink"));
    let observers = [
        ("observer", Observer::new()),
        ("observer+audit", Observer::new().with_audit(sink.clone())),
    ];
    let plaintext = vec![7u8; 1024];
    let key = "/registry/secrets/default/db".into();
    let transformer = transformers.for_resource("secrets");
    let stored = transformer
        .encrypt_blocking(&plaintext, key)
        .expect("encrypt");

    let mut group = c.benchmark_group("observe");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .throughput(Throughput::Bytes(1024));
    group.bench_function("plain/encrypt", |b| {
        b.iter(|| {
            transformer
                .encrypt_blocking(black_box(&plaintext), key)
                .expect("encrypt")
        })
    });
    group.bench_function("plain/decrypt", |b| {
        b.iter(|| {
            transformer
                .decrypt_blocking(black_box(&stored), key)
                .expect("decrypt")
        })
    });
    for (name, observer) in &observers {
        group.bench_function(format!("{name}/encrypt"), |b| {
            b.iter(|| {
                observer
                    .encrypt_blocking(&transformers, "secrets", black_box(&plaintext), key)
                    .expect("encrypt")
            })
        });
        group.bench_function(format!("{name}/decrypt"), |b| {
            b.iter(|| {
                observer
                    .decrypt_blocking(&transformers, "secrets", black_box(&stored), key)
                    .expect("decrypt")
            })
        });
    }
    group.finish();
    sink.flush().expect("flush");
}

criterion_group!(benches, bench_observe);
criterion_main!(benches);
