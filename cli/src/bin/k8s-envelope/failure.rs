//! [`Failure`]: how a command fails, and the exit status that says so. Every
//! command returns it; `main` prints its message and exits with its status.

/// Why the command failed, and the exit status that says so.
pub struct Failure {
    pub status: i32,
    pub message: String,
}

impl Failure {
    /// A value could not be transformed (exit status 1).
    pub fn transform(message: impl Into<String>) -> Self {
        Self {
            status: 1,
            message: message.into(),
        }
    }

    /// Bad usage, input or config (exit status 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            status: 2,
            message: message.into(),
        }
    }
}
