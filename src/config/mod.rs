//! Placeholder; replaced by the config module.

/// Placeholder.
#[derive(Debug, thiserror::Error)]
#[error("config")]
pub struct ConfigError;
