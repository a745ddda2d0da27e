//! Re-encryption throughput against a local etcd: values per second at
//! concurrency 1 and 8, and the same on the in-memory dump store (no etcd:
//! the driver and the crypto alone).
//!
//! ```sh
//! apt-get install etcd-server      # the `etcd` binary (or set ETCD_BIN)
//! cargo run --release --example reencrypt_throughput [-- VALUES [BYTES]]
//! ```
//!
//! It starts etcd on a free loopback port with its data directory on
//! /dev/shm (tmpfs: etcd's fsyncs cost next to nothing, so this measures the
//! client, not the disk; `ETCD_DATA_ON_DISK=1` puts it on disk), writes VALUES values (default 5000) of BYTES bytes
//! (default 1024) under `/registry/secrets/` with aesgcm key1, then for each
//! concurrency promotes a fresh key and re-encrypts everything through
//! [`k8s_envelope::walk::reencrypt`] (read, decrypt, encrypt, verify,
//! compare-and-swap).

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use k8s_envelope::rotation::{self, Change, ProviderId};

use k8s_envelope::store::{DumpStore, EtcdOptions, EtcdStore, Store};
use k8s_envelope::walk::{self, ReencryptOptions};
use k8s_envelope::EncryptionConfiguration;
use k8s_envelope_test_support::etcd;

const CONFIG: &str = "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
";

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let values: usize = args.next().map_or(Ok(5000), |a| a.parse())?;
    let size: usize = args.next().map_or(Ok(1024), |a| a.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "{values} values of {size} bytes, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let mut config = EncryptionConfiguration::from_yaml(CONFIG.as_bytes())?;
    let first = config.build()?;
    let plaintext = vec![b'x'; size];
    let keys: Vec<String> = (0..values)
        .map(|i| format!("/registry/secrets/ns{}/secret-{i:06}", i % 50))
        .collect();

    // The in-memory dump store: no network, no etcd.
    let dump = Arc::new(DumpStore::new("memory"));
    for key in &keys {
        let value = first
            .for_resource("secrets")
            .encrypt_blocking(&plaintext, key.as_str().into())?;
        dump.put(key.as_bytes(), &value);
    }
    let mut dump_config = config.clone();
    for concurrency in [1, 8] {
        dump_config = promote_new_key(&dump_config)?;
        let rate = measure(&runtime, dump.clone(), &dump_config, concurrency, values)?;
        println!("dump store (in memory)  concurrency {concurrency}: {rate:>8.0} values/s");
    }

    if etcd::etcd_binary().is_none() {
        println!("etcd: skipped, there is no etcd binary (apt-get install etcd-server)");
        return Ok(());
    }
    let etcd = etcd::EtcdServer::start();
    let store =
        Arc::new(runtime.block_on(EtcdStore::connect(EtcdOptions::new([etcd.url.clone()])))?);
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for key in &keys {
            if tasks.len() >= 32 {
                tasks.join_next().await.transpose()?.transpose()?;
            }
            let value = first
                .for_resource("secrets")
                .encrypt_blocking(&plaintext, key.as_str().into())?;
            let (store, key) = (store.clone(), key.clone());
            tasks.spawn(async move { store.put(key.as_bytes(), &value).await.map(|_| ()) });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        Ok::<(), Box<dyn Error>>(())
    })?;
    println!(
        "etcd {}: {values} values written in {:.2}s",
        etcd.url,
        started.elapsed().as_secs_f64()
    );
    for concurrency in [1, 8] {
        config = promote_new_key(&config)?;
        let rate = measure(&runtime, store.clone(), &config, concurrency, values)?;
        println!("etcd (loopback)         concurrency {concurrency}: {rate:>8.0} values/s");
    }
    Ok(())
}

/// Adds a fresh key and promotes it (steps 1 and 2 of a rotation).
fn promote_new_key(
    config: &EncryptionConfiguration,
) -> Result<EncryptionConfiguration, Box<dyn Error>> {
    let keys = config.resources[0].providers[0].keys();
    let key = rotation::generate_key(&ProviderId::AesGcm, &rotation::next_key_name(keys))?;
    let plan = rotation::plan(config, 0, Change::Key(key))?;
    Ok(plan.steps[1]
        .config
        .clone()
        .ok_or("no promoted configuration")?)
}

/// Re-encrypts everything once; values per second.
fn measure(
    runtime: &tokio::runtime::Runtime,
    store: Arc<dyn Store>,
    config: &EncryptionConfiguration,
    concurrency: usize,
    values: usize,
) -> Result<f64, Box<dyn Error>> {
    let transformers = Arc::new(config.build()?);
    let mut options = ReencryptOptions::new("/registry/secrets/");
    options.concurrency = concurrency;
    let started = Instant::now();
    let report = runtime.block_on(walk::reencrypt(store, transformers, options, &mut ()))?;
    let elapsed = started.elapsed().as_secs_f64();
    if report.totals.rewritten != values as u64 {
        return Err(format!("rewrote {} of {values}", report.totals.rewritten).into());
    }
    Ok(values as f64 / elapsed)
}
