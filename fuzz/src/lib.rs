//! The fuzz targets' invariants, shared by the targets in `fuzz_targets/`
//! (each a few lines that call one `check_*`) and by the library's
//! regression tests, which mount `checks.rs` directly.

#![forbid(unsafe_code)]

pub mod checks;
