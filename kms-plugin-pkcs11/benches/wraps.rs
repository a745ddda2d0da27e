//! DEK wraps per second (KMS v2 `Encrypt` of a 32-byte DEK or seed over the
//! plugin's unix socket) through kms-plugin-pkcs11 on SoftHSM2, beside the
//! KEK-in-a-file plugin, kms-plugin-local, in the same run.
//!
//! Benchmark IDs: `dek_wrap/<clients>/<plugin>`, where clients is `1` (one
//! call at a time) or `8` (eight clients on their own connections, one call
//! each at once; the throughput is per call) and plugin is
//! `kms-plugin-pkcs11` (the binary, as a process, on a fresh SoftHSM2 token)
//! or `kms-plugin-local` (its KEK and server, `LocalKek` on the plugin kit's
//! `PluginServer`, in a runtime of its own in this process).
//!
//! Skipped, with a message, when SoftHSM2 is missing.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use k8s_envelope::kms::{GrpcClient, KmsEndpoint};
use k8s_envelope_test_support::local_plugin::LocalPlugin;

#[path = "../tests/softhsm/plugin.rs"]
#[allow(dead_code, reason = "shared with the tests, which use all of it")]
mod plugin;
use k8s_envelope_test_support::softhsm as token;

const DEK: [u8; 32] = [7; 32];

fn clients(endpoint: &KmsEndpoint, n: usize) -> Vec<Arc<GrpcClient>> {
    (0..n)
        .map(|_| Arc::new(GrpcClient::new(endpoint.clone(), Duration::from_secs(10))))
        .collect()
}

fn bench_wraps(c: &mut Criterion) {
    // Fails, saying what to install, without SoftHSM2.
    let hsm = token::SoftHsm::new_token();
    let pkcs11 = plugin::Plugin::start(&hsm, "bench", &["--create-key"]);
    let local = LocalPlugin::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let plugins = [
        ("kms-plugin-local", local.endpoint().clone()),
        ("kms-plugin-pkcs11", pkcs11.endpoint()),
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
