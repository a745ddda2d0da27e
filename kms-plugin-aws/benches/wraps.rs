//! DEK wraps per second (KMS v2 `Encrypt` of a 32-byte DEK or seed over the
//! plugin's unix socket) through kms-plugin-aws on moto's AWS KMS emulator,
//! beside the KEK-in-a-file plugin, kms-plugin-local, in the same run (the
//! HSM plugin's bench measures beside the same baseline).
//!
//! Benchmark IDs: `dek_wrap/<clients>/<plugin>`, where clients is `1` (one
//! call at a time) or `8` (eight clients on their own connections, one call
//! each at once; the throughput is per call) and plugin is `kms-plugin-aws`
//! (the binary, as a process, against moto's server on a loopback port) or
//! `kms-plugin-local` (in this process).
//!
//! Fails, saying what to install, when moto is missing.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use k8s_envelope::kms::{GrpcClient, KmsEndpoint};
use k8s_envelope_test_support::local_plugin::LocalPlugin;

#[path = "../tests/moto/emulator.rs"]
#[allow(dead_code, reason = "shared with the tests, which use all of it")]
mod emulator;

const DEK: [u8; 32] = [7; 32];

fn clients(endpoint: &KmsEndpoint, n: usize) -> Vec<Arc<GrpcClient>> {
    (0..n)
        .map(|_| Arc::new(GrpcClient::new(endpoint.clone(), Duration::from_secs(10))))
        .collect()
}

fn bench_wraps(c: &mut Criterion) {
    let aws = emulator::Emulator::start();
    let key = aws.create_key();
    let plugin = aws.plugin(&key.id, &[]);
    let local = LocalPlugin::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let plugins = [
        ("kms-plugin-local", local.endpoint().clone()),
        ("kms-plugin-aws", emulator::endpoint(&plugin)),
    ];
    for n in [1usize, 8] {
        let mut group = c.benchmark_group(format!("dek_wrap/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(4));
        for (name, endpoint) in &plugins {
            let clients = clients(endpoint, n);
            // Connect, and check the plugin wraps, before measuring.
            runtime.block_on(async {
                for client in &clients {
                    client
                        .as_v2()
                        .encrypt("warm-up", &DEK)
                        .await
                        .expect("encrypt");
                }
            });
            group.bench_function(*name, |b| {
                b.iter(|| {
                    runtime.block_on(futures_util::future::join_all(clients.iter().map(
                        |client| async move {
                            black_box(client.as_v2().encrypt("bench", &DEK).await.expect("wrap"))
                        },
                    )))
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_wraps);
criterion_main!(benches);
