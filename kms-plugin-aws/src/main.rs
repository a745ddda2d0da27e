//! `kms-plugin-aws`: a KMS v2 (and v1) plugin whose key-encryption key is
//! an AWS KMS key.
//!
//! ```text
//! kms-plugin-aws --socket /run/kms.sock --key alias/kubernetes-secrets [--old-key KEY]...
//! ```
//!
//! - `--key` is a key ID, key ARN, alias name (`alias/NAME`) or alias ARN
//!   of a symmetric `ENCRYPT_DECRYPT` key. Encrypt wraps the DEK or seed
//!   with KMS Encrypt under it; Decrypt unwraps what it or any `--old-key`
//!   wrapped and refuses anything else with INVALID_ARGUMENT.
//! - The encryption context binds each ciphertext to its purpose and key ID
//!   ([`key_id`] documents both; CloudTrail logs them).
//! - The key ID follows the key's material: it changes when AWS rotates the
//!   key (automatic or on demand) or `--key` resolves to another key, and at
//!   no other time, so the apiserver writes new DEKs or seeds and `scan` or
//!   `verify` shows what still needs re-encryption.
//! - Status answers from memory: a background refresh (`--refresh-seconds`)
//!   asks AWS, bounded by `--timeout-ms` ([`key_watch`]); one slow answer
//!   never fails the apiserver's health probe ([`health`]).
//! - Region, credentials and endpoint come from the AWS SDK's standard
//!   chain ([`service`] says which and why this SDK); never from the
//!   command line.
//! - AWS errors become gRPC codes with the AWS error code in the message
//!   ([`failure`]).
//! - The socket is the plugin kit's: mode 0600, peers checked, SIGTERM
//!   drains the calls in flight and removes it.

#![forbid(unsafe_code)]

mod failure;
mod health;
mod kek;
mod key_id;
mod key_watch;
mod service;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use k8s_envelope_kms_plugin::{
    socket_endpoint, AllowedPeers, PluginApis, PluginServer, Termination,
};

use crate::kek::AwsKek;
use crate::key_watch::KeyWatch;
use crate::service::{CallLimits, KmsService};

/// A KMS plugin (v2 and v1 APIs) whose key-encryption key is an AWS KMS
/// key. Region, credentials and endpoint come from the standard AWS
/// configuration (AWS_REGION, AWS_PROFILE, web identity, container or
/// instance metadata; AWS_ENDPOINT_URL_KMS for an emulator or a VPC
/// endpoint).
#[derive(Parser, Debug)]
#[command(name = "kms-plugin-aws", version)]
struct Args {
    /// Where to listen: a socket path, `@name` for an abstract socket, or a
    /// `unix://` endpoint.
    #[arg(long, value_name = "PATH")]
    socket: String,

    /// The KMS key that wraps: a key ID, key ARN, `alias/NAME` or alias
    /// ARN of a symmetric encryption key.
    #[arg(long, value_name = "KEY")]
    key: String,

    /// A key whose values still unwrap, after a move to another --key
    /// (repeatable).
    #[arg(long, value_name = "KEY")]
    old_key: Vec<String>,

    /// Which plugin APIs to serve.
    #[arg(long, value_enum, default_value = "both")]
    api: Api,

    /// How often the key, its rotation and its health are asked of AWS
    /// (a rotation shows in Status within twice this).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    refresh_seconds: u64,

    /// How long one AWS call may take, its retries included; keep it under
    /// the KMS provider's `timeout` in the EncryptionConfiguration (3 s by
    /// default).
    #[arg(long, value_name = "MS", default_value_t = 2500, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    timeout_ms: u64,

    /// Attempts of one AWS call (throttling, 5xx and timeouts are retried
    /// with backoff while --timeout-ms lasts).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    max_attempts: u32,

    /// Also serve the processes of this user ID (repeatable; only the
    /// plugin's own user otherwise). A kube-apiserver running as root, with
    /// the plugin as another user, needs `--allow-uid 0`.
    #[arg(long, value_name = "UID")]
    allow_uid: Vec<u32>,

    /// Also serve the processes whose primary group is this group ID
    /// (repeatable).
    #[arg(long, value_name = "GID")]
    allow_gid: Vec<u32>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Api {
    V2,
    V1,
    Both,
}

/// How long a stop waits for calls in flight and for clients to hang up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kms-plugin-aws: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kms-plugin-aws: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = socket_endpoint(&args.socket)?;
    let limits = CallLimits {
        timeout: Duration::from_millis(args.timeout_ms),
        max_attempts: args.max_attempts,
    };
    let kms = KmsService::connect(limits).await?;
    let refresh = Duration::from_secs(args.refresh_seconds);
    let watch = KeyWatch::start(kms, &args.key, &args.old_key, refresh).await?;
    let key_id = watch.current()?.key_id;
    let apis = match args.api {
        Api::V2 => PluginApis::V2,
        Api::V1 => PluginApis::V1,
        Api::Both => PluginApis::Both,
    };
    let mut peers = AllowedPeers::default();
    for uid in &args.allow_uid {
        peers = peers.with_user(*uid);
    }
    for gid in &args.allow_gid {
        peers = peers.with_group(*gid);
    }
    // Installed before serving, so that a signal sent as soon as the socket
    // exists is not lost.
    let mut termination = Termination::install()?;
    let handle = PluginServer::new(AwsKek::new(watch))
        .apis(apis)
        .allow_peers(peers)
        .runtime("kms-plugin-aws", env!("CARGO_PKG_VERSION"))
        .serve(&endpoint)
        .await?;
    eprintln!(
        "kms-plugin-aws: serving {apis} on {endpoint} with key ID {key_id} (pid {})",
        std::process::id()
    );
    let name = termination.recv().await;
    handle.shutdown_within(SHUTDOWN_GRACE).await?;
    eprintln!("kms-plugin-aws: {name}, stopped");
    Ok(())
}
