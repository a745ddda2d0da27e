//! Hooks for the fuzz targets in `fuzz/` and for the CLI. **Not part of the
//! API**: hidden from the documentation and free to change in any release,
//! as rustls keeps its own.

/// The CLI's JSON Lines protocol.
pub mod jsonl {
    pub use crate::jsonl::{run, Direction, Request, Response, RunError, Transform, MAX_LINE};
}
