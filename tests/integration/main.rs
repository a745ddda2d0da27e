//! The library's integration tests, in one binary: configuration and
//! conformance files, every provider against the vectors, KMS v1 and v2
//! (in-process services and the plugin kit on real unix sockets), limits on
//! hostile input, rotation and re-encryption over stores, rendering, reload
//! and observation. Tests that need a feature are compiled with it (`cargo
//! test` at the top builds the library with the CLI's features, so all run).
//!
//! Separate binaries hold what cannot share a process: a counting global
//! allocator (`allocations.rs`, `hostile_lengths.rs`), `fork`
//! (`random_fork.rs`) and a process-wide `tracing` subscriber
//! (`observe_tracing.rs`). What the workspace's tests share is in the
//! test-support crate (`test-support/`); `tests/support/` holds the
//! observability helpers of this package alone.

#[path = "../support/mod.rs"]
mod support;

mod config;
#[cfg(feature = "grpc")]
mod fuzz_regressions;
#[cfg(all(unix, feature = "grpc"))]
mod kms_v1;
#[cfg(feature = "grpc")]
mod kms_v2;
#[cfg(feature = "grpc")]
mod limits;
mod no_secret_leaks;
#[cfg(feature = "observe")]
mod observe;
mod providers;
#[cfg(feature = "reload")]
mod reload;
mod render;
#[cfg(all(unix, feature = "grpc"))]
mod rotation;
mod vectors;
#[cfg(all(unix, feature = "grpc", feature = "objects"))]
mod verify;
