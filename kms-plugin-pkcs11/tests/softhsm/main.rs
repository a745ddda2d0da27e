//! kms-plugin-pkcs11 on a real SoftHSM2 token: a fresh token per test in a
//! temporary directory (`SOFTHSM2_CONF`), the plugin as a real process on a
//! real unix socket, checked with kms-check's library, the key inspected
//! with `pkcs11-tool`, values exchanged with the Go reference's KMS client.
//!
//! Skipped, with a message, when SoftHSM2 or opensc's pkcs11-tool is
//! missing; `K8S_ENVELOPE_REQUIRE_SOFTHSM=1` (CI) makes that a failure.
//! Debian: `apt-get install softhsm2 opensc`.

#![cfg(unix)]

#[path = "../../../cli/tests/integration/support/k8sref.rs"]
mod k8sref;
mod plugin;
mod token;

mod conformance;
mod interop;
mod keys;
mod outage;
mod rotation;
