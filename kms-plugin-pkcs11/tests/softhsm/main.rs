//! kms-plugin-pkcs11 on a real SoftHSM2 token: a fresh token per test in a
//! temporary directory (`SOFTHSM2_CONF`), the plugin as a real process on a
//! real unix socket, checked with kms-check's library, the key inspected
//! with `pkcs11-tool`, values exchanged with the Go reference's KMS client.
//!
//! Each test is `#[ignore = "needs SoftHSM2 ..."]`: plain `cargo test`
//! lists them as ignored, `cargo test -- --ignored` (CI) runs them and fails
//! when SoftHSM2 or opensc's pkcs11-tool is missing.
//! Debian: `apt-get install softhsm2 opensc`.

#![cfg(unix)]

mod plugin;

mod conformance;
mod interop;
mod keys;
mod outage;
mod rotation;
