//! The CLI package's integration tests, in one binary: the `k8s-envelope`
//! and `kms-plugin-local` binaries run as real processes (the commands'
//! contract, plugin processes killed and restarted, real etcd servers, the
//! Go reference's plugin), with the library's tests of the same paths.
//!
//! What the workspace's tests share (runtimes, the etcd server guard, the Go
//! reference, plugin processes) is in the test-support crate; tests that
//! need etcd or the Go reference are `#[ignore = "needs ..."]`.

mod cli;
mod cli_bench;
mod dump_memory;
mod etcd;
mod etcd_failover;
mod etcd_listing;
mod export_tree;
mod fingerprint;
mod kms_check;
mod kms_faults;
mod kms_grpc;
mod kms_vectors;
mod kubectl;
mod lint;
mod long_runs;
mod objects;
mod outputs;
mod plugin_keyring;
mod plugin_socket;
mod rotate_cli;
mod snapshot;
mod verify;
