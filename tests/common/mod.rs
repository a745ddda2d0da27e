//! Helpers shared by integration tests (and the re-encryption example).

pub mod etcd_server;
pub mod observe;
