//! `kms-plugin-pkcs11`: a KMS v2 (and v1) plugin whose key-encryption key
//! lives in a PKCS#11 token, an HSM, and never leaves it.
//!
//! ```text
//! kms-plugin-pkcs11 --socket /run/kms.sock --module /usr/lib/softhsm/libsofthsm2.so \
//!     --token-label kms --pin-file /etc/kms/pin --key-label kek-2026 [--create-key]
//! ```
//!
//! - The KEK is an AES-256 secret key on the token, found by its label.
//!   With `--create-key` (and only when the token has none with the label)
//!   it is created inside the token: a token object, private, sensitive,
//!   never extractable, not copyable, for encryption and decryption only,
//!   with a random 16-byte CKA_ID. A key found with CKA_EXTRACTABLE true,
//!   CKA_SENSITIVE false, CKA_ALWAYS_SENSITIVE or CKA_NEVER_EXTRACTABLE
//!   false (it may have left the token once) or CKA_PRIVATE false is
//!   refused unless `--allow-extractable-key`.
//! - Encrypt wraps the DEK or seed with CKM_AES_GCM inside the token: a
//!   fresh 96-bit IV from the OS, stored before the ciphertext, and the key
//!   ID as additional data. The value of the key is never read.
//! - Key IDs are `pkcs11-` and the key's CKA_ID in hex: stable across
//!   restarts and not derived from key bytes. Decrypt finds the key by the
//!   key ID it is given, among every AES key on the token, so after a
//!   rotation (a restart with a new `--key-label`) values wrapped by the old
//!   key still read, and read as stale.
//! - The PIN comes from `--pin-file` (mode 0600, owned by the plugin's
//!   user) or from the environment variable `KMS_PLUGIN_PKCS11_PIN`; never
//!   from the command line.
//! - Sessions are pooled (at most `--max-sessions` calls at once). When the
//!   token goes away, Status reports healthz other than "ok" and calls fail
//!   with UNAVAILABLE; the plugin resets the module and logs in again by
//!   itself once the token is back (tried at most once a second).
//! - Token errors become gRPC codes (UNAVAILABLE for a lost token,
//!   INVALID_ARGUMENT for a ciphertext that does not authenticate,
//!   FAILED_PRECONDITION for a PIN or key problem) with a message naming the
//!   PKCS#11 function and return value, never a key or the PIN.
//! - The socket is the plugin kit's: mode 0600, peers checked, SIGTERM
//!   drains the calls in flight and removes it.
//!
//! Why cryptoki: it is the maintained PKCS#11 binding (the Parsec project,
//! tested against SoftHSM2 in its own CI), it loads the module at run time
//! with libloading and ships its bindings, so a build needs no C toolchain
//! or bindgen, and all of the FFI's `unsafe` stays inside it. `pkcs11` (the
//! older crate) is unmaintained and exposes raw `CK_*` structures; binding
//! the C API here would mean writing `unsafe` code, which this workspace
//! forbids.

#![forbid(unsafe_code)]

mod failure;
mod kek;
mod key;
mod pin;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use k8s_envelope_kms_plugin::{
    socket_endpoint, AllowedPeers, PluginApis, PluginServer, Termination,
};

use crate::kek::HsmKek;
use crate::key::KeyPolicy;
use crate::token::{Token, TokenConfig};

/// A KMS plugin (v2 and v1 APIs) whose key-encryption key stays inside a
/// PKCS#11 token. The PIN comes from --pin-file or the environment variable
/// KMS_PLUGIN_PKCS11_PIN.
#[derive(Parser, Debug)]
#[command(name = "kms-plugin-pkcs11", version)]
struct Args {
    /// Where to listen: a socket path, `@name` for an abstract socket, or a
    /// `unix://` endpoint.
    #[arg(long, value_name = "PATH")]
    socket: String,

    /// The PKCS#11 module of the HSM (SoftHSM2:
    /// /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long, value_name = "LIB.so")]
    module: PathBuf,

    /// The label of the token.
    #[arg(long, value_name = "LABEL")]
    token_label: String,

    /// The user PIN, in a file of mode 0600 owned by the plugin's user (one
    /// trailing newline is ignored). Without it, the PIN is read from
    /// KMS_PLUGIN_PKCS11_PIN.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,

    /// The label of the AES-256 key that wraps (a new label rotates; every
    /// key on the token still decrypts what it wrapped).
    #[arg(long, value_name = "LABEL")]
    key_label: String,

    /// Create the key inside the token when none has the label.
    #[arg(long)]
    create_key: bool,

    /// Use a key whose value can leave the token or could once
    /// (CKA_EXTRACTABLE true, CKA_SENSITIVE false, CKA_ALWAYS_SENSITIVE
    /// false or CKA_NEVER_EXTRACTABLE false), or that is not private
    /// (CKA_PRIVATE false). Refused without this.
    #[arg(long)]
    allow_extractable_key: bool,

    /// Which plugin APIs to serve.
    #[arg(long, value_enum, default_value = "both")]
    api: Api,

    /// At most this many calls use the token at once (one session each).
    #[arg(long, value_name = "N", default_value_t = 8)]
    max_sessions: usize,

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
            eprintln!("kms-plugin-pkcs11: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kms-plugin-pkcs11: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = socket_endpoint(&args.socket)?;
    let pin = pin::read_pin(args.pin_file.as_deref())?;
    let config = TokenConfig {
        module: args.module.clone(),
        token_label: args.token_label.clone(),
        key_label: args.key_label.clone(),
        create_key: args.create_key,
        policy: KeyPolicy {
            allow_extractable: args.allow_extractable_key,
        },
    };
    let token = tokio::task::spawn_blocking(move || Token::open(config, pin)).await??;
    let key_id = token.write_key_id();
    let kek = HsmKek::new(token, args.max_sessions);
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
    let handle = PluginServer::new(kek)
        .apis(apis)
        .allow_peers(peers)
        .runtime("kms-plugin-pkcs11", env!("CARGO_PKG_VERSION"))
        .serve(&endpoint)
        .await?;
    eprintln!(
        "kms-plugin-pkcs11: serving {apis} on {endpoint} with key {key_id} of token {:?} (pid {})",
        args.token_label,
        std::process::id()
    );
    let name = termination.recv().await;
    handle.shutdown_within(SHUTDOWN_GRACE).await?;
    eprintln!("kms-plugin-pkcs11: {name}, stopped");
    Ok(())
}
