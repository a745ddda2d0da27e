//! kms-plugin-pkcs11 as a process on a token of its own.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use k8s_envelope::kms::KmsEndpoint;

use k8s_envelope_test_support::softhsm::{SoftHsm, TOKEN_LABEL};

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_kms-plugin-pkcs11");

/// A running plugin, killed on drop.
pub struct Plugin {
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
}

/// The plugin's command on `hsm` with the key `key_label`, and `extra`.
pub fn command(hsm: &SoftHsm, key_label: &str, extra: &[&str]) -> Command {
    let mut command = hsm.command(PLUGIN);
    command
        .arg("--module")
        .arg(hsm.module())
        .args(["--token-label", TOKEN_LABEL, "--key-label", key_label])
        .args(extra);
    command
}

impl Plugin {
    /// Starts the plugin with the PIN file and waits (10 s at most) until
    /// it serves.
    pub fn start(hsm: &SoftHsm, key_label: &str, extra: &[&str]) -> Self {
        let mut command = command(hsm, key_label, extra);
        command.arg("--pin-file").arg(hsm.pin_file());
        Self::spawn(hsm, command)
    }

    /// Starts `command` (a [`command`] with the PIN given some way) with
    /// its socket in `hsm`'s directory, and waits until it says it serves
    /// (the line comes just after the socket).
    pub fn spawn(hsm: &SoftHsm, mut command: Command) -> Self {
        let socket = hsm.dir().join("kms.sock");
        let log = hsm.dir().join("plugin.log");
        let stderr = fs::File::create(&log).expect("log");
        let child = command
            .arg("--socket")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start kms-plugin-pkcs11");
        let mut plugin = Self {
            child: Some(child),
            socket,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(plugin.socket.exists() && plugin.log().contains("serving")) {
            if let Some(status) = plugin.child_mut().try_wait().expect("wait") {
                panic!("the plugin exited ({status}): {}", plugin.log());
            }
            assert!(Instant::now() < deadline, "no socket: {}", plugin.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        plugin
    }

    pub fn endpoint(&self) -> KmsEndpoint {
        KmsEndpoint::socket_file(&self.socket).expect("endpoint")
    }

    /// What the plugin wrote to stderr.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }

    /// SIGTERM, then the exit (10 s at most); the socket must be gone.
    pub fn terminate(mut self) -> ExitStatus {
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

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `command` to its exit (20 s at most): the status and stderr.
pub fn run_to_exit(mut command: Command) -> (i32, String) {
    let mut child = command
        .arg("--socket")
        .arg("@kms-plugin-pkcs11-test-never-served")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kms-plugin-pkcs11");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("wait").is_some() {
            let out = child.wait_with_output().expect("output");
            let code = out.status.code().unwrap_or(-1);
            return (code, String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the plugin did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A two-worker runtime.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
