//! The one gate for what a fresh clone lacks (etcd, SoftHSM2, the Go
//! reference).
//!
//! A test that needs such a tool carries `#[ignore = "needs ..."]`, so plain
//! `cargo test` shows it as ignored with what it needs. When it runs anyway
//! (`cargo test -- --ignored`, as CI does), a missing tool is a failure that
//! says how to install it: never a pass that asserted nothing.

/// `found`, or a panic naming `what` is missing and `install`, how to get it.
pub fn require<T>(found: Option<T>, what: &str, install: &str) -> T {
    match found {
        Some(found) => found,
        None => panic!(
            "this test needs {what}, which is missing: {install}. \
             Plain `cargo test` leaves it ignored; `cargo test -- --ignored` runs it."
        ),
    }
}
