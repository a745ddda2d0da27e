//! A KMS plugin process serving on a socket in its own temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Reaped;

/// A plugin process, killed on drop, with its socket in a private directory
/// (removed on drop too).
pub struct PluginProcess {
    // Killed before the directory goes.
    _child: Reaped,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl PluginProcess {
    /// Runs `program args... --socket <dir>/kms.sock` and waits (at most
    /// 10 s) for the socket to appear.
    pub fn start(program: &Path, args: &[&str], label: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("kms.sock");
        let child = Command::new(program)
            .args(args)
            .arg("--socket")
            .arg(&socket)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the plugin");
        let child = Reaped(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "{label} plugin did not create its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            _child: child,
            dir,
            socket,
        }
    }

    /// `unix:///.../kms.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The plugin's private directory (its working directory too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
