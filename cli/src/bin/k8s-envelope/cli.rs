//! Command-line arguments and the single-value commands.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use k8s_envelope::jsonl::Direction;
use k8s_envelope::store::{KeyLayout, KeyResource};
use k8s_envelope::SecretKey;

use crate::configuration;
use crate::failure::Failure;
use crate::jsonl;
use crate::session::{Session, TransformFailure};

/// The largest value read from standard input in single-value mode.
const MAX_STDIN_VALUE: u64 = 64 * 1024 * 1024;

/// Encrypt and decrypt values as kube-apiserver's encryption at rest does.
#[derive(Parser, Debug)]
#[command(name = "k8s-envelope", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check an EncryptionConfiguration and print every error with its field path.
    Validate {
        /// The EncryptionConfiguration file (YAML or JSON).
        config: PathBuf,
    },
    /// Warn about weaknesses validation allows (exit 1 when there are any).
    Lint {
        /// The EncryptionConfiguration file (YAML or JSON).
        config: PathBuf,
    },
    /// Print the key each rule writes with (fingerprints, never keys), and
    /// optionally prove with a probe that the file on disk reads it.
    Fingerprint(crate::fingerprint::FingerprintArgs),
    /// Print a random key, base64-encoded, for the `secret` field of a key.
    Keygen {
        /// Key length in bytes: 16, 24 or 32 for aescbc/aesgcm, 32 for secretbox.
        #[arg(long, default_value_t = 32, value_parser = key_length)]
        bytes: u16,
        /// Write the key to this file (mode 0600, atomically) instead of
        /// stdout: what kms-plugin-local's --kek-file wants.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Encrypt a value (stdin to stdout) with the first provider of its resource.
    Encrypt(TransformArgs),
    /// Decrypt a stored value (stdin to stdout); a stale value is noted on stderr.
    Decrypt(TransformArgs),
    /// Rotate keys: plan, add-key, promote, retire (each writes a new config).
    #[command(subcommand)]
    Rotate(crate::rotate::RotateCommand),
    /// Inventory a store (etcd, a dump or a snapshot): values by resource, provider/key and state.
    Scan(crate::scan::ScanArgs),
    /// Print one value of a store (etcd, a dump or a snapshot), decrypted and decoded.
    Get(crate::get::GetArgs),
    /// Export every value under a prefix, decrypted and decoded (a List, JSON Lines or files).
    Export(crate::export::ExportArgs),
    /// Check that every value of a store (a backup, a cluster) reads with these keys: what it depends on, and each value that does not, with why and what to do.
    Verify(crate::verify::VerifyArgs),
    /// Re-encrypt every stale value of a store (etcd, a dump, or a snapshot into a new file) with the first provider.
    Reencrypt(crate::reencrypt::ReencryptArgs),
    /// Measure every provider's write and read in process (ns/op, MB/s, allocations).
    Bench(crate::bench::BenchArgs),
    /// Check a running KMS plugin against what kube-apiserver requires (exit 1 if it falls short).
    KmsCheck(crate::kms_check::KmsCheckArgs),
}

#[derive(Args, Debug)]
struct TransformArgs {
    /// The EncryptionConfiguration file (YAML or JSON).
    #[arg(long)]
    config: PathBuf,
    /// The group-resource the value belongs to (`secrets`,
    /// `deployments.apps`). By default, the one the storage key names, as
    /// the apiserver lays keys out under /registry (as scan and reencrypt
    /// tell it).
    #[arg(long, conflicts_with = "jsonl")]
    resource: Option<String>,
    /// The etcd key of the object, bound as authenticated data. Required
    /// unless --jsonl (each line then carries its own).
    #[arg(long, required_unless_present = "jsonl", conflicts_with = "jsonl")]
    storage_key: Option<String>,
    /// Read one JSON object per line from stdin and write one per line.
    #[arg(long)]
    jsonl: bool,
    /// Encrypt even when the configuration would store the value in
    /// plaintext (no rule covers the resource, or its rule writes with
    /// identity); without it such a write is refused.
    #[arg(long)]
    allow_plaintext: bool,
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Validate { config } => validate(&config),
        Command::Lint { config } => lint(&config),
        Command::Fingerprint(args) => crate::fingerprint::run(&args),
        Command::Keygen { bytes, out } => keygen(bytes.into(), out.as_deref()),
        Command::Encrypt(args) => transform(&args, Direction::Encrypt),
        Command::Decrypt(args) => transform(&args, Direction::Decrypt),
        Command::Rotate(command) => crate::rotate::run(&command),
        Command::Scan(args) => crate::scan::run(&args),
        Command::Get(args) => crate::get::run(&args),
        Command::Export(args) => crate::export::run(&args),
        Command::Reencrypt(args) => crate::reencrypt::run(&args),
        Command::Verify(args) => crate::verify::run(&args),
        Command::Bench(args) => crate::bench::run(&args),
        Command::KmsCheck(args) => crate::kms_check::run(&args),
    }
}

fn validate(path: &Path) -> Result<(), Failure> {
    let config = configuration::read(path)?;
    match config.validate() {
        Ok(()) => {
            println!("{}: valid", path.display());
            Ok(())
        }
        Err(errors) => {
            for error in errors.iter() {
                println!("{error}");
            }
            Err(Failure::usage(format!(
                "{}: {} validation error(s)",
                path.display(),
                errors.len()
            )))
        }
    }
}

fn lint(path: &Path) -> Result<(), Failure> {
    let config = configuration::read(path)?;
    if let Err(errors) = config.validate() {
        for error in errors.iter() {
            println!("{error}");
        }
        return Err(Failure::usage(format!(
            "{}: {} validation error(s)",
            path.display(),
            errors.len()
        )));
    }
    let warnings = k8s_envelope::lint::lint(&config);
    for warning in &warnings {
        println!("{warning}");
    }
    if warnings.is_empty() {
        println!("{}: no warnings", path.display());
        return Ok(());
    }
    Err(Failure::transform(format!(
        "{}: {} warning(s)",
        path.display(),
        warnings.len()
    )))
}

/// A key length a provider takes: 16, 24 or 32 bytes (anything else is bad
/// usage, exit 2, rather than a key no configuration would accept).
fn key_length(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(n @ (16 | 24 | 32)) => Ok(n),
        _ => Err("a key is 16, 24 or 32 bytes (aescbc, aesgcm) or 32 (secretbox)".to_owned()),
    }
}

fn keygen(bytes: usize, out: Option<&Path>) -> Result<(), Failure> {
    let key = SecretKey::generate(bytes).map_err(|e| Failure::transform(e.to_string()))?;
    // to_base64 leaves room for the line end: no copy of the key is freed.
    let mut line = key.to_base64();
    line.push('\n');
    match out {
        Some(path) => crate::store_args::write_private(path, line.as_bytes()),
        None => {
            print!("{}", line.as_str());
            Ok(())
        }
    }
}

/// The group-resource a storage key names under the apiserver's default
/// `--etcd-prefix` (`/registry/configmaps/ns/x`: `configmaps`).
fn resource_of_key(storage_key: &str) -> Result<String, Failure> {
    match KeyLayout::default().resource_of(storage_key.as_bytes()) {
        KeyResource::Resource(resource) => Ok(resource.to_string()),
        _ => Err(Failure::usage(
            "cannot tell the resource from the storage key (it is not \
             /registry/RESOURCE/... or /registry/GROUP/RESOURCE/... of a resource this \
             tool knows): give it with --resource",
        )),
    }
}

fn transform(args: &TransformArgs, direction: Direction) -> Result<(), Failure> {
    let session = Session::open(&args.config)?.allow_plaintext(args.allow_plaintext);
    if args.jsonl {
        let stdin = io::stdin().lock();
        let stdout = io::stdout().lock();
        return jsonl::run(&session, direction, stdin, stdout);
    }
    let storage_key = args.storage_key.as_deref().unwrap_or_default();
    let resource = match &args.resource {
        Some(resource) => resource.clone(),
        None => resource_of_key(storage_key)?,
    };
    let mut input = Vec::new();
    io::stdin()
        .take(MAX_STDIN_VALUE + 1)
        .read_to_end(&mut input)
        .map_err(|e| Failure::usage(format!("reading stdin: {e}")))?;
    if input.len() as u64 > MAX_STDIN_VALUE {
        return Err(Failure::usage(format!(
            "the value on stdin is larger than {MAX_STDIN_VALUE} bytes"
        )));
    }
    let output = match direction {
        Direction::Encrypt => session.encrypt(&resource, storage_key, &input),
        Direction::Decrypt => session
            .decrypt(&resource, storage_key, &input)
            .map_err(TransformFailure::from)
            .map(|read| {
                if read.stale {
                    eprintln!("k8s-envelope: note: the value is stale (written by an older key or provider); re-encrypt it");
                }
                read.plaintext
            }),
    }
    .map_err(|e| Failure::transform(e.to_string()))?;
    io::stdout()
        .write_all(&output)
        .and_then(|()| io::stdout().flush())
        .map_err(|e| Failure::transform(format!("writing stdout: {e}")))
}
