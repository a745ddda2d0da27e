//! kms-plugin-aws against moto's server, an AWS KMS emulator no one here
//! wrote, on a loopback port: the plugin as a real process on a real unix
//! socket, checked with kms-check's library, its values exchanged with the
//! Go reference's KMS v2 client, the keys managed through the AWS SDK as an
//! operator would (create, alias, rotate on demand, disable).
//!
//! Each test is `#[ignore = "needs moto ..."]`: plain `cargo test` lists
//! them as ignored; `cargo test -- --ignored` (CI) runs them and fails when
//! moto is missing (test-support's `moto` module says how to install it).

#![cfg(unix)]

mod emulator;

mod conformance;
mod interop;
mod outage;
mod refusals;
mod rotation;
