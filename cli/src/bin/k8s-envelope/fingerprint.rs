//! `k8s-envelope fingerprint`: which key each rule writes with, and a probe
//! proving that the configuration on disk reads what the one in use writes.

use std::path::{Path, PathBuf};

use clap::Args;
use k8s_envelope::fingerprint::{config_hash, fingerprints, probe};

use crate::failure::Failure;
use crate::session::Session;

/// Arguments of `fingerprint`.
#[derive(Args, Debug)]
pub struct FingerprintArgs {
    /// The EncryptionConfiguration file (YAML or JSON).
    config: PathBuf,
    /// Write a probe value per rule with CONFIG as loaded, then read it back
    /// with CONFIG as read from disk again.
    #[arg(long)]
    self_test: bool,
    /// Read the probes back with this configuration instead (implies
    /// --self-test): proves OTHER reads what CONFIG writes, with the same key.
    #[arg(long, value_name = "OTHER")]
    against: Option<PathBuf>,
}

/// Prints the fingerprints, then runs the probe when asked; fails with
/// status 1 when a probe fails.
pub fn run(args: &FingerprintArgs) -> Result<(), Failure> {
    let in_use = Session::open(&args.config)?;
    // The file holds the keys: zeroized when dropped.
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(&args.config)
            .map_err(|e| Failure::usage(format!("{}: {e}", args.config.display())))?,
    );
    println!("config {} {}", args.config.display(), config_hash(&bytes));
    for rule in fingerprints(in_use.config(), |name| in_use.kms_key_id_hash(name)) {
        println!("{rule}");
    }
    if !args.self_test && args.against.is_none() {
        return Ok(());
    }
    let reader_path: &Path = args.against.as_deref().unwrap_or(&args.config);
    let on_disk = Session::open_on(reader_path, in_use.runtime().clone())?;
    let results = in_use
        .runtime()
        .block_on(probe(
            in_use.config(),
            in_use.transformers(),
            on_disk.transformers(),
        ))
        .map_err(|e| Failure::transform(e.to_string()))?;
    let mut failed = 0;
    for result in &results {
        let verdict = match &result.outcome {
            Ok(false) => "ok: read back, same key".to_owned(),
            Ok(true) => {
                "FAILED: read back, but the reader writes with another key (stale)".to_owned()
            }
            Err(e) => format!("FAILED: {e}"),
        };
        if !result.passed() {
            failed += 1;
        }
        println!(
            "probe resources[{}] ({}), written with {}, read with {}: {verdict}",
            result.rule,
            result.resource,
            args.config.display(),
            reader_path.display()
        );
    }
    if failed > 0 {
        return Err(Failure::transform(format!("{failed} probe(s) failed")));
    }
    Ok(())
}
