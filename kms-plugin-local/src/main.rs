//! `kms-plugin-local`: a KMS v2 and v1 plugin with a key-encryption key in a
//! local file, on a unix socket.
//!
//! ```text
//! kms-plugin-local --socket /var/run/kms.sock --kek-file /etc/kms/kek.b64 [--keyring DIR] [--old-kek-file F]...
//! kms-plugin-local rotate-kek --kek-file /etc/kms/kek.b64 [--keyring DIR]
//! kms-plugin-local --socket @kms --mock-base64 [--key-id-file F]      # insecure, tests only
//! ```
//!
//! Retired KEKs live in the keyring, `<kek-file>.keyring/` by default:
//! `rotate-kek` moves the current KEK there and writes a new one, and the
//! plugin reads every value any of them wrapped. The keyring also records
//! the key ID that wraps; a plugin whose KEK file was replaced by hand, so
//! that it could no longer read what it wrote last, refuses to start.
//!
//! Stops cleanly on SIGTERM or SIGINT: no new connections, calls in flight
//! finish (waiting at most 5 s for clients to hang up), the socket file is
//! removed.

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    unix::main()
}

#[cfg(not(unix))]
fn main() -> std::process::ExitCode {
    eprintln!("kms-plugin-local: unix sockets are not available on this platform");
    std::process::ExitCode::from(2)
}

#[cfg(unix)]
mod unix {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::time::Duration;

    use clap::Parser;
    use k8s_envelope_kms_plugin::{
        socket_endpoint, AllowedPeers, Base64MockKek, Kek, Keyring, LocalKek, PluginApis,
        PluginServer, Termination,
    };

    /// A KMS plugin (v2 and v1 APIs) that wraps DEKs with a key-encryption
    /// key read from a local file.
    #[derive(Parser, Debug)]
    #[command(name = "kms-plugin-local", version, subcommand_negates_reqs = true)]
    struct Args {
        #[command(subcommand)]
        command: Option<Command>,

        /// Where to listen: a socket path, `@name` for an abstract socket, or
        /// a `unix://` endpoint.
        #[arg(long, value_name = "PATH", required = true)]
        socket: Option<String>,

        /// Where retired KEKs are kept (and the key ID that wraps is
        /// recorded). Default: `<kek-file>.keyring`.
        #[arg(long, value_name = "DIR", requires = "kek_file")]
        keyring: Option<PathBuf>,

        /// The KEK: 32 bytes, base64 (`k8s-envelope keygen` prints one).
        /// Re-read when the file changes (the key ID change is logged); a
        /// replaced KEK goes into the keyring, so it still decrypts after a
        /// restart (see --keyring and `rotate-kek`).
        #[arg(long, value_name = "FILE", required_unless_present = "mock_base64")]
        kek_file: Option<PathBuf>,

        /// A retired KEK, still accepted for decryption (repeatable).
        #[arg(long, value_name = "FILE", requires = "kek_file")]
        old_kek_file: Vec<PathBuf>,

        /// INSECURE, tests only: "encrypt" with base64, like Kubernetes' mock
        /// plugin.
        #[arg(long, conflicts_with_all = ["kek_file", "old_kek_file"])]
        mock_base64: bool,

        /// With --mock-base64: read the key ID from this file on every call
        /// (missing file: "1").
        #[arg(long, value_name = "FILE", requires = "mock_base64")]
        key_id_file: Option<PathBuf>,

        /// Which plugin APIs to serve.
        #[arg(long, value_enum, default_value = "both")]
        api: Api,

        /// Also serve the processes of this user ID (repeatable). Only the
        /// plugin's own user is served otherwise: every connection's peer
        /// credentials are checked (`SO_PEERCRED`), the only access control
        /// of an abstract socket. A kube-apiserver running as root, with
        /// the plugin as another user, needs `--allow-uid 0`.
        #[arg(long, value_name = "UID")]
        allow_uid: Vec<u32>,

        /// Also serve the processes whose primary group is this group ID
        /// (repeatable).
        #[arg(long, value_name = "GID")]
        allow_gid: Vec<u32>,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Command {
        /// Move the current KEK into the keyring and write a new one to the
        /// KEK file; a running plugin picks it up, and a restarted one still
        /// reads what the old KEK wrapped.
        RotateKek {
            /// The KEK file.
            #[arg(long, value_name = "FILE")]
            kek_file: PathBuf,
            /// The keyring. Default: `<kek-file>.keyring`.
            #[arg(long, value_name = "DIR")]
            keyring: Option<PathBuf>,
        },
    }

    /// How long a stop waits for calls in flight and for clients to hang up.
    const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

    #[derive(clap::ValueEnum, Clone, Copy, Debug)]
    enum Api {
        V2,
        V1,
        Both,
    }

    pub(super) fn main() -> ExitCode {
        let args = Args::parse();
        // The kit's log lines (a key ID change, a peer refused, a keyring
        // that cannot be written) go to stderr, with the plugin's own.
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_target(false)
            .init();
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("kms-plugin-local: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        match runtime.block_on(run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kms-plugin-local: {e}");
                ExitCode::from(2)
            }
        }
    }

    fn keyring(kek_file: &std::path::Path, dir: Option<&PathBuf>) -> Keyring {
        dir.map_or_else(|| Keyring::beside(kek_file), Keyring::at)
    }

    async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
        if let Some(Command::RotateKek {
            kek_file,
            keyring: dir,
        }) = &args.command
        {
            let keyring = keyring(kek_file, dir.as_ref());
            let (old, new) = keyring.rotate(kek_file)?;
            println!(
                "kms-plugin-local: {old} moved to the keyring {}; {} now holds {new}",
                keyring.dir().display(),
                kek_file.display()
            );
            return Ok(());
        }
        let socket = args.socket.as_deref().ok_or("--socket is required")?;
        let endpoint = socket_endpoint(socket)?;
        let kek: Box<dyn Kek> = match (&args.kek_file, args.mock_base64) {
            (_, true) => {
                eprintln!("kms-plugin-local: WARNING: --mock-base64 does not encrypt anything");
                Box::new(match &args.key_id_file {
                    Some(file) => Base64MockKek::with_key_id_file(file),
                    None => Base64MockKek::new(),
                })
            }
            (Some(file), false) => {
                let mut kek = LocalKek::open(file)?;
                for old in &args.old_kek_file {
                    kek = kek.with_retired_key_file(old)?;
                }
                kek = kek.with_keyring(keyring(file, args.keyring.as_ref()))?;
                Box::new(kek)
            }
            (None, false) => return Err("--kek-file or --mock-base64 is required".into()),
        };
        let apis = match args.api {
            Api::V2 => PluginApis::V2,
            Api::V1 => PluginApis::V1,
            Api::Both => PluginApis::Both,
        };
        // Installed before serving, so that a signal sent as soon as the
        // socket exists is not lost.
        let mut termination = Termination::install()?;
        let mut peers = AllowedPeers::default();
        for uid in &args.allow_uid {
            peers = peers.with_user(*uid);
        }
        for gid in &args.allow_gid {
            peers = peers.with_group(*gid);
        }
        let handle = PluginServer::from_arc(kek.into())
            .apis(apis)
            .allow_peers(peers)
            .serve(&endpoint)
            .await?;
        eprintln!(
            "kms-plugin-local: serving {apis} on {endpoint} (pid {})",
            std::process::id()
        );
        let name = termination.recv().await;
        handle.shutdown_within(SHUTDOWN_GRACE).await?;
        eprintln!("kms-plugin-local: {name}, stopped");
        Ok(())
    }
}
