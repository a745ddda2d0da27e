//! Helpers of the library's own tests (mounted as `support` by
//! `tests/integration/main.rs`; `observe_tracing.rs` mounts `observe.rs`).
//! What the workspace shares is in the test-support crate.

#![allow(dead_code)]

#[cfg(feature = "observe")]
pub mod observe;
