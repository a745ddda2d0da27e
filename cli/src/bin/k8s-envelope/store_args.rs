//! What the store commands share: which store (`--etcd`, `--dump` or
//! `--snapshot`), which keys (`--prefix`, `--etcd-prefix`, `--resource`),
//! and the multi-threaded runtime they walk it on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use k8s_envelope::config::GroupResource;
use k8s_envelope::snapshot::{HashCheck, SnapshotError, SnapshotStore};
use k8s_envelope::store::{DumpFile, EtcdOptions, EtcdStore, EtcdTls, Store, StoreError};
use k8s_envelope::store::{KeyLayout, DEFAULT_ETCD_PREFIX, SECRETS_PREFIX};

use crate::failure::Failure;

/// Whether a file starts (after white space) with `{`: a JSON dump given
/// where a snapshot belongs.
fn looks_like_json(path: &std::path::Path) -> bool {
    use std::io::Read as _;
    let mut start = [0u8; 64];
    let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut start));
    read.is_ok_and(|n| start[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
}

/// The rule of every command that reads a store: exactly one of `--etcd`,
/// `--dump` and `--snapshot` (for `#[command(group = ...)]`).
pub fn required_store() -> clap::ArgGroup {
    clap::ArgGroup::new("store")
        .args(["etcd", "dump", "snapshot"])
        .required(true)
        .multiple(false)
}

/// Where the values are.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// etcd client URL(s), e.g. http://127.0.0.1:2379 or https://10.0.0.1:2379
    /// (repeat the flag or separate with commas).
    #[arg(
        long,
        value_name = "URL",
        value_delimiter = ',',
        conflicts_with_all = ["dump", "snapshot"]
    )]
    pub etcd: Vec<String>,
    /// CA certificate (PEM) that signed etcd's server certificates (https:// URLs).
    #[arg(long, value_name = "FILE", requires = "etcd")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, value_name = "FILE", requires_all = ["cacert", "key"])]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["cacert", "cert"])]
    pub key: Option<PathBuf>,
    /// How long to keep trying, every etcd endpoint in turn, while none
    /// answers (a member down, a leader election), before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub etcd_outage_limit: u64,
    /// The output of `etcdctl get --prefix -w json`, instead of a live etcd.
    #[arg(long, value_name = "FILE", conflicts_with = "snapshot")]
    pub dump: Option<PathBuf>,
    /// An etcd snapshot file (`etcdctl snapshot save`, or a member's
    /// member/snap/db), read with no etcd running.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Read a snapshot whose appended SHA-256 does not match (as etcdctl's
    /// flag of the same name).
    #[arg(long, requires = "snapshot")]
    pub skip_hash_check: bool,
    /// Only keys that start with this are read (and written). Default
    /// /registry/secrets/; for `rotate retire`, the prefixes of every
    /// resource of the rule.
    #[arg(long)]
    pub prefix: Option<String>,
    /// The kube-apiserver's --etcd-prefix, to tell each key's resource.
    #[arg(long, default_value = DEFAULT_ETCD_PREFIX)]
    pub etcd_prefix: String,
}

/// An opened store; for a dump, the dump itself too (to finish its output).
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub dump: Option<Arc<DumpFile>>,
    /// For a snapshot, the snapshot store (to write its re-keyed copy).
    pub snapshot: Option<Arc<SnapshotStore>>,
    /// The etcd store, for what its failovers cost.
    pub etcd: Option<Arc<EtcdStore>>,
}

impl StoreArgs {
    /// The key prefix: as given, or every Secret.
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or(SECRETS_PREFIX)
    }

    /// Whether a store was named at all.
    pub fn given(&self) -> bool {
        !self.etcd.is_empty() || self.dump.is_some() || self.snapshot.is_some()
    }

    /// How keys map to resources: from the key, or every key `resource`.
    pub fn layout(&self, resource: Option<&str>) -> KeyLayout {
        let layout = KeyLayout::new(&self.etcd_prefix);
        match resource {
            Some(resource) => layout.with_resource(GroupResource::parse(resource)),
            None => layout,
        }
    }

    /// Opens the store (inside `runtime`).
    pub fn open(&self, runtime: &tokio::runtime::Runtime) -> Result<Opened, Failure> {
        self.open_writing(runtime, None)
    }

    /// Opens the store; a dump with its re-encrypted copy written to `out`
    /// as the walk goes (see [`DumpFile::finish`]), a snapshot with its
    /// re-keyed copy written to `out` at the end ([`SnapshotStore::finish`]).
    pub fn open_writing(
        &self,
        runtime: &tokio::runtime::Runtime,
        out: Option<&Path>,
    ) -> Result<Opened, Failure> {
        if let Some(path) = &self.dump {
            let mut dump = DumpFile::open(path).map_err(|e| Failure::usage(e.to_string()))?;
            if let Some(out) = out {
                dump = dump
                    .with_output(out)
                    .map_err(|e| Failure::transform(e.to_string()))?;
            }
            let dump = Arc::new(dump);
            return Ok(Opened {
                store: dump.clone(),
                dump: Some(dump),
                snapshot: None,
                etcd: None,
            });
        }
        if let Some(path) = &self.snapshot {
            let check = if self.skip_hash_check {
                HashCheck::Skip
            } else {
                HashCheck::Verify
            };
            let mut snapshot = SnapshotStore::open(path, check).map_err(|e| match e {
                SnapshotError::Io { .. } => Failure::usage(e.to_string()),
                SnapshotError::HashMismatch { .. } => {
                    Failure::transform(format!("{e} (--skip-hash-check)"))
                }
                SnapshotError::Invalid { .. } if looks_like_json(path) => Failure::usage(format!(
                    "{e}; the file is JSON: read an etcdctl JSON dump (etcdctl get --prefix -w json) with --dump"
                )),
                e => Failure::transform(e.to_string()),
            })?;
            if let Some(out) = out {
                snapshot = snapshot
                    .with_output(out)
                    .map_err(|e| Failure::transform(e.to_string()))?;
            }
            let snapshot = Arc::new(snapshot);
            return Ok(Opened {
                store: snapshot.clone(),
                dump: None,
                snapshot: Some(snapshot),
                etcd: None,
            });
        }
        if self.etcd.is_empty() {
            return Err(Failure::usage(
                "no store: give --etcd URL (with --cacert/--cert/--key for TLS), --dump FILE or --snapshot FILE",
            ));
        }
        let mut options = EtcdOptions::new(self.etcd.iter().cloned())
            .with_outage_limit(std::time::Duration::from_secs(self.etcd_outage_limit));
        if let Some(ca) = &self.cacert {
            let tls = EtcdTls::from_files(ca, self.cert.as_deref(), self.key.as_deref())
                .map_err(|e| Failure::usage(e.to_string()))?;
            options = options.with_tls(tls);
        }
        let etcd = runtime
            .block_on(EtcdStore::connect(options))
            .map_err(|e| match e {
                // A bad URL or TLS setting is bad usage; etcd not answering is not.
                StoreError::Config { .. } => Failure::usage(e.to_string()),
                e => Failure::transform(e.to_string()),
            })?;
        let etcd = Arc::new(etcd);
        Ok(Opened {
            store: etcd.clone(),
            dump: None,
            snapshot: None,
            etcd: Some(etcd),
        })
    }
}

/// A multi-threaded runtime for the store commands.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("starting the async runtime: {e}")))
}

/// Writes a file that can hold keys or plaintext through the library's one
/// private atomic writer (0600 from creation, exclusive random temporary
/// name, fsync, rename, fsync of the directory).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), Failure> {
    k8s_envelope::private_file::write(path, contents)
        .map_err(|e| Failure::transform(format!("writing {}: {e}", path.display())))
}
