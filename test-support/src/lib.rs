//! What the workspace's tests, benches, examples and fuzz targets share,
//! written once (as rustls has rustls-test): not published, not an API.
//!
//! - [`runtime`]: Tokio runtimes and a one-poll executor ([`ready()`](fn@ready)).
//! - [`paths`]: the repository, `../shared` beside it, the binaries cargo
//!   built.
//! - [`fixtures`]: the vectors and conformance files in `tests/data` and
//!   Kubernetes' API fixtures in `../shared` (a missing fixture fails).
//! - [`fake_kms`]: one configurable in-process KMS v1 and v2 service (key ID,
//!   health, faults, counters).
//! - [`encrypted_object`]: the KMS v2 storage envelope as its own protobuf
//!   message, independent of the library's; [`objects`]: a Secret as the
//!   apiserver stores it.
//! - [`kms_values`]: values written and read through a KMS v2 plugin as
//!   a freshly started apiserver does.
//! - [`checks`]: the fuzz targets' invariants, replayed by the regression
//!   tests; [`crafted_snapshot`]: an etcd snapshot made into an attack on
//!   its reader.
//! - Real processes, each killed and cleaned up on drop: [`etcd`] (one
//!   member or a cluster), [`k8sref`] (the Go reference),
//!   [`softhsm`] (a SoftHSM2 token), [`moto`] (an AWS KMS emulator),
//!   [`plugin_process`], [`process`],
//!   measured with [`peak_memory`]; [`kubectl`] reading back what the CLI
//!   writes.
//! - With the `kit` feature: [`slow_kek`], [`misbehaving_plugin`] and
//!   [`local_plugin`] (the wrap benchmarks' baseline).
//!
//! Tests that need what a fresh clone lacks (etcd, SoftHSM2, the Go
//! reference, moto) are `#[ignore = "needs ..."]`, so plain `cargo test` lists them
//! as ignored; CI runs them with `--ignored`. There the helpers fail through
//! [`gate::require`] when the tool is missing: never a silent pass.

#![forbid(unsafe_code)]
#![allow(
    missing_docs,
    clippy::unwrap_used,
    reason = "test code: a panic is a failed test"
)]

pub mod checks;
pub mod crafted_snapshot;
pub mod encrypted_object;
pub mod etcd;
pub mod fake_kms;
pub mod fixtures;
pub mod gate;
pub mod k8sref;
pub mod kms_values;
pub mod kubectl;
#[cfg(feature = "kit")]
pub mod local_plugin;
#[cfg(feature = "kit")]
pub mod misbehaving_plugin;
pub mod moto;
pub mod objects;
pub mod paths;
pub mod peak_memory;
pub mod plugin_process;
pub mod process;
pub mod ready;
pub mod runtime;
#[cfg(feature = "kit")]
pub mod slow_kek;
pub mod softhsm;

pub use ready::ready;
pub use runtime::{block_on, rt};
