//! The CLI package's integration tests, in one binary: the `k8s-envelope`
//! and `kms-plugin-local` binaries run as real processes (the commands'
//! contract, plugin processes killed and restarted, real etcd servers, the
//! Go reference's plugin), with the library's tests of the same paths.
//!
//! Shared support lives in `support/` (and the etcd server guard in the
//! workspace's `tests/support/`, which the library's tests and example use too);
//! each helper is written once.

mod support;

mod cli;
mod cli_bench;
mod dump_memory;
mod etcd;
mod etcd_failover;
mod etcd_listing;
mod fingerprint;
mod kms_check;
mod kms_faults;
mod kms_grpc;
mod kms_vectors;
mod lint;
mod objects;
mod outputs;
mod plugin_keyring;
mod plugin_socket;
mod rotate_cli;
mod snapshot;
