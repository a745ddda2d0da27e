//! A KMS plugin process serving on a socket in its own temporary directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::process::Reaped;

/// A plugin process, killed on drop, with its socket in a private directory
/// (removed on drop too).
pub struct PluginProcess {
    // Killed before the directory goes.
    child: Option<Reaped>,
    dir: tempfile::TempDir,
    socket: PathBuf,
    log: Option<PathBuf>,
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
            child: Some(child),
            dir,
            socket,
            log: None,
        }
    }

    /// Runs `command --socket <dir>/kms.sock` with its stderr in
    /// `<dir>/plugin.log`, and waits (at most 20 s) until the socket exists
    /// and the log says `serving`. Panics with the log when the plugin
    /// exits first.
    pub fn spawn(mut command: Command) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("kms.sock");
        let log = dir.path().join("plugin.log");
        let child = command
            .arg("--socket")
            .arg(&socket)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start the plugin");
        let mut plugin = Self {
            child: Some(Reaped(child)),
            dir,
            socket,
            log: Some(log),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(plugin.socket.exists() && plugin.log().contains("serving")) {
            if let Some(status) = plugin.child_mut().try_wait().expect("wait") {
                panic!("the plugin exited ({status}): {}", plugin.log());
            }
            assert!(Instant::now() < deadline, "no socket: {}", plugin.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        plugin
    }

    /// `unix:///.../kms.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The plugin's private directory (its working directory too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What a [`spawn`](Self::spawn)ed plugin wrote to stderr.
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|log| fs::read_to_string(log).ok())
            .unwrap_or_default()
    }

    fn child_mut(&mut self) -> &mut Reaped {
        self.child.as_mut().expect("running")
    }

    /// SIGTERM, then the exit (10 s at most); the socket must be gone.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child_mut().id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child_mut().try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        self.child = None;
        assert!(!self.socket.exists(), "the socket is left behind");
        status
    }
}

/// Runs `command --socket <an abstract name never served>` to its exit
/// (20 s at most): the exit code and stderr.
pub fn run_to_exit(mut command: Command) -> (i32, String) {
    let mut child = command
        .arg("--socket")
        .arg("@k8s-envelope-test-never-served")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the plugin");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("wait").is_some() {
            let out = child.wait_with_output().expect("output");
            let code = out.status.code().unwrap_or(-1);
            return (code, String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the plugin did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
