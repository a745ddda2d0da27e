//! `k8s-envelope bench`: every provider's write and read, in process, as a
//! table of ns/op, MB/s and allocations per op, or as JSON lines for scripts.
//!
//! The KMS providers talk to an in-process base64 plugin (as `k8sref bench`
//! does), so that the numbers are the provider's own cost and not a socket's.
//! Each phase runs batches of about 2 ms for `--seconds`; the figure reported
//! is the median of the batches. Allocations are counted over a separate
//! batch by a counting global allocator (`densa-alloc`, no unsafe code here).
//! For regression tracking use the criterion benches (`cargo bench`); this
//! command is for a quick look on any machine and for scripts.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
// Kubernetes' insecure base64 mock plugin, in process, for KMS v1 and v2.
use k8s_envelope::kms::mock::Base64Kms;
use k8s_envelope::kms::{DekSourceType, KmsV1Options, KmsV1Provider, KmsV2Options, KmsV2Provider};
use k8s_envelope::{
    AesCbc, AesGcm, Error, Identity, NamedKey, Provider, ProviderKind, SecretKey, Secretbox,
    StorageKey, Transformer, AES_BACKEND,
};

use crate::failure::Failure;

/// The storage key every value is bound to.
const STORAGE_KEY: &str = "/registry/secrets/default/bench";
/// The length of one timed batch.
const BATCH: Duration = Duration::from_millis(2);
/// Operations in the batch whose allocations are counted.
const ALLOC_OPS: u32 = 64;
/// The largest value size accepted.
const MAX_SIZE: usize = 64 * 1024 * 1024;

/// Options of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Providers to measure, comma-separated (kmsv2 writes in seed mode, as
    /// kube-apiserver 1.29+ does; kmsv2-seed-shared too, with one derived key
    /// per 1,024 writes; kmsv2-key writes with AES_GCM_KEY).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "identity,aescbc,aesgcm,secretbox,kmsv1,kmsv2"
    )]
    providers: Vec<BenchProvider>,
    /// Plaintext sizes in bytes, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "256,1024,4096,65536,1048576"
    )]
    sizes: Vec<usize>,
    /// Seconds spent on each of write and read, per provider and size.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// A provider `bench` can build.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum BenchProvider {
    Identity,
    Aescbc,
    Aesgcm,
    Secretbox,
    Kmsv1,
    Kmsv2,
    #[value(name = "kmsv2-seed-shared")]
    Kmsv2SeedShared,
    #[value(name = "kmsv2-key")]
    Kmsv2Key,
}

impl BenchProvider {
    fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Aescbc => "aescbc",
            Self::Aesgcm => "aesgcm",
            Self::Secretbox => "secretbox",
            Self::Kmsv1 => "kmsv1",
            Self::Kmsv2 => "kmsv2",
            Self::Kmsv2SeedShared => "kmsv2-seed-shared",
            Self::Kmsv2Key => "kmsv2-key",
        }
    }
}

/// The medians of one provider at one size.
struct Measurement {
    provider: BenchProvider,
    size: usize,
    write_ns: f64,
    read_ns: f64,
    write_allocs: f64,
    read_allocs: f64,
}

/// Runs `bench`.
pub fn run(args: &BenchArgs) -> Result<(), Failure> {
    if !(args.seconds > 0.0 && args.seconds <= 600.0) {
        return Err(Failure::usage("--seconds must be above 0 and at most 600"));
    }
    if let Some(size) = args.sizes.iter().find(|&&s| s > MAX_SIZE) {
        return Err(Failure::usage(format!(
            "--sizes: {size} is larger than {MAX_SIZE} bytes"
        )));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("starting the async runtime: {e}")))?;
    let phase = Duration::from_secs_f64(args.seconds);
    if !args.json {
        println!(
            "AES backend: {AES_BACKEND}; {} s per phase; medians of {} ms batches",
            args.seconds,
            BATCH.as_millis()
        );
        println!(
            "{:<17} {:>8} {:>12} {:>10} {:>12} {:>10} {:>13} {:>12}",
            "provider",
            "size",
            "write ns/op",
            "write MB/s",
            "read ns/op",
            "read MB/s",
            "allocs/write",
            "allocs/read"
        );
    }
    for &provider in &args.providers {
        let transformer = build(provider, &runtime).map_err(|e| failed(provider, &e))?;
        for &size in &args.sizes {
            let m = measure(provider, &transformer, size, phase, &runtime)
                .map_err(|e| failed(provider, &e))?;
            print(&m, args.json);
        }
    }
    Ok(())
}

fn failed(provider: BenchProvider, error: &Error) -> Failure {
    Failure::transform(format!("bench {}: {error}", provider.name()))
}

fn print(m: &Measurement, json: bool) {
    if json {
        /// One line of `--json`, fields in this order.
        #[derive(serde::Serialize)]
        struct Line {
            provider: &'static str,
            size: usize,
            write_ns: f64,
            read_ns: f64,
            write_allocs: f64,
            read_allocs: f64,
        }
        let line = serde_json::to_string(&Line {
            provider: m.provider.name(),
            size: m.size,
            write_ns: round(m.write_ns, 1),
            read_ns: round(m.read_ns, 1),
            write_allocs: round(m.write_allocs, 2),
            read_allocs: round(m.read_allocs, 2),
        })
        .unwrap_or_default();
        println!("{line}");
        return;
    }
    // Bytes per nanosecond times 1000 is MB (10^6 bytes) per second.
    let mb_s = |ns: f64| m.size as f64 * 1000.0 / ns;
    println!(
        "{:<17} {:>8} {:>12.1} {:>10.1} {:>12.1} {:>10.1} {:>13.2} {:>12.2}",
        m.provider.name(),
        m.size,
        m.write_ns,
        mb_s(m.write_ns),
        m.read_ns,
        mb_s(m.read_ns),
        m.write_allocs,
        m.read_allocs
    );
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// One provider behind a transformer, with a random key or the in-process
/// plugin.
fn build(provider: BenchProvider, runtime: &tokio::runtime::Runtime) -> Result<Transformer, Error> {
    let keys = || SecretKey::generate(32).map(|key| vec![NamedKey::new("key1", key)]);
    let kms_v2 =
        |mode: DekSourceType, writes_per_derived_key| -> Result<Arc<dyn Provider>, Error> {
            let options = KmsV2Options::default()
                .with_write_mode(mode)
                .with_writes_per_derived_key(writes_per_derived_key);
            let kms = KmsV2Provider::new("bench", Arc::new(Base64Kms), options)?;
            complete(runtime, kms.refresh())?;
            Ok(Arc::new(kms))
        };
    let provider: Arc<dyn Provider> = match provider {
        BenchProvider::Identity => Arc::new(Identity::new()),
        BenchProvider::Aescbc => Arc::new(AesCbc::new(keys()?)?),
        BenchProvider::Aesgcm => Arc::new(AesGcm::new(keys()?)?),
        BenchProvider::Secretbox => Arc::new(Secretbox::new(keys()?)?),
        BenchProvider::Kmsv1 => Arc::new(KmsV1Provider::new(
            "bench",
            Arc::new(Base64Kms),
            KmsV1Options::default(),
        )?),
        BenchProvider::Kmsv2 => kms_v2(DekSourceType::HkdfSha256XnonceAesGcmSeed, 1)?,
        BenchProvider::Kmsv2SeedShared => kms_v2(DekSourceType::HkdfSha256XnonceAesGcmSeed, 1024)?,
        BenchProvider::Kmsv2Key => kms_v2(DekSourceType::AesGcmKey, 1)?,
    };
    Transformer::new(vec![provider])
}

fn measure(
    provider: BenchProvider,
    transformer: &Transformer,
    size: usize,
    phase: Duration,
    runtime: &tokio::runtime::Runtime,
) -> Result<Measurement, Error> {
    let plaintext: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let storage_key = StorageKey::from(STORAGE_KEY);
    let write = || complete(runtime, transformer.encrypt(&plaintext, storage_key));
    // Warm up both paths (fills the DEK caches as in a steady-state server).
    let stored = write()?;
    let read = || complete(runtime, transformer.decrypt(&stored, storage_key));
    if read()?.plaintext != plaintext {
        return Err(Error::Decrypt {
            provider: ProviderKind::Identity,
        });
    }
    let write_ns = median_ns(phase, || write().map(drop))?;
    let read_ns = median_ns(phase, || read().map(drop))?;
    Ok(Measurement {
        provider,
        size,
        write_ns,
        read_ns,
        write_allocs: allocations_per_op(|| write().map(drop))?,
        read_allocs: allocations_per_op(|| read().map(drop))?,
    })
}

/// Runs `op` in batches of about [`BATCH`] for `phase`; the median ns/op of
/// the batches.
fn median_ns(phase: Duration, mut op: impl FnMut() -> Result<(), Error>) -> Result<f64, Error> {
    let started = Instant::now();
    op()?;
    let one = started.elapsed().max(Duration::from_nanos(1));
    let batch = u32::try_from(BATCH.as_nanos() / one.as_nanos())
        .unwrap_or(u32::MAX)
        .clamp(1, 1_000_000);
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < phase || samples.len() < 3 {
        let t = Instant::now();
        for _ in 0..batch {
            op()?;
        }
        samples.push(t.elapsed().as_nanos() as f64 / f64::from(batch));
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

/// Allocations (and reallocations) per call of `op`, over [`ALLOC_OPS`]
/// calls.
fn allocations_per_op(mut op: impl FnMut() -> Result<(), Error>) -> Result<f64, Error> {
    let (result, stats) = densa_alloc::measure(|| (0..ALLOC_OPS).try_for_each(|_| op()));
    result?;
    Ok((stats.allocs + stats.reallocs) as f64 / f64::from(ALLOC_OPS))
}

/// Polls `future` once without a runtime (with warm caches and the
/// in-process plugin every call completes at once, and no runtime's overhead
/// is measured); should it wait, the runtime finishes it.
fn complete<F: Future>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => runtime.block_on(future),
    }
}
