//! moto's server: an implementation of the AWS KMS API (and the rest of
//! AWS) in Python, which no one here wrote, on a loopback port, for the
//! AWS KMS plugin's tests. Its keys live in its memory: a restart is a new,
//! empty KMS.
//!
//! Install: `python3 -m venv .venv-moto && .venv-moto/bin/pip install
//! moto flask flask-cors` (moto's server needs Flask; `moto[server]` pulls
//! in every other service's dependencies too), then point
//! `K8S_ENVELOPE_MOTO_SERVER` at `.venv-moto/bin/moto_server`; without it,
//! `moto_server` on the `PATH`.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::gate::require;
use crate::process::Reaped;

/// What the gate says when moto is missing.
const INSTALL: &str =
    "python3 -m venv .venv-moto && .venv-moto/bin/pip install moto flask flask-cors, \
     then export K8S_ENVELOPE_MOTO_SERVER=$PWD/.venv-moto/bin/moto_server";

/// The AWS secret key the tests' processes get: distinctive, so that a
/// test can check no output contains it.
pub const SECRET_ACCESS_KEY: &str = "moto-secret-4f1c9e2b7a";

/// The region of every test.
pub const REGION: &str = "us-east-1";

/// `moto_server`: `$K8S_ENVELOPE_MOTO_SERVER`, or the first on the `PATH`.
pub fn moto_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("K8S_ENVELOPE_MOTO_SERVER") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.is_file())
}

/// A moto server on a free loopback port, killed on drop.
pub struct Moto {
    child: Reaped,
    port: u16,
    paused: bool,
}

impl Moto {
    /// Starts the server on a free loopback port and waits (30 s at most)
    /// until it answers HTTP. The port is free when chosen; should another
    /// process take it before moto binds it, moto exits and another port
    /// is tried.
    pub fn start() -> Self {
        let program = require(moto_server(), "moto's server (moto_server)", INSTALL);
        for _ in 0..5 {
            if let Some(moto) = Self::start_on_a_free_port(&program) {
                return moto;
            }
        }
        panic!("moto_server exited at start five times");
    }

    /// The server, or `None` when it exited before answering.
    fn start_on_a_free_port(program: &std::path::Path) -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let mut moto = Self {
            child: Reaped(child),
            port,
            paused: false,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Alive first, then answering: an answer on the port from a
            // process other than ours must not count.
            if moto.child.try_wait().expect("wait").is_some() {
                return None;
            }
            if moto.answers() && moto.child.try_wait().expect("wait").is_none() {
                return Some(moto);
            }
            assert!(Instant::now() < deadline, "moto_server did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server answers an HTTP request (1 s at most).
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let timeout = Some(Duration::from_secs(1));
        let _ = stream.set_read_timeout(timeout);
        let _ = stream.set_write_timeout(timeout);
        let request = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        let mut head = [0u8; 5];
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut head).is_ok()
            && &head == b"HTTP/"
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment an AWS SDK client needs to use this server and
    /// nothing else: endpoint, region, fake credentials, no profile files,
    /// no instance metadata.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_KMS", self.endpoint()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "moto-access-key".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_CONFIG_FILE", "/nonexistent/aws-config".to_owned()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials".to_owned(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// `command` with [`env`](Self::env) and no other AWS variables.
    pub fn configure(&self, command: &mut Command) {
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command.envs(self.env());
    }

    /// Stops the server (SIGSTOP): connections are accepted by the kernel,
    /// nothing answers.
    pub fn pause(&mut self) {
        self.signal("-STOP");
        self.paused = true;
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&mut self) {
        self.signal("-CONT");
        self.paused = false;
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill {signal}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // A stopped process dies of SIGKILL too, but resume it so that its
        // sockets close in order.
        if self.paused {
            let _ = Command::new("kill")
                .args(["-CONT", &self.child.id().to_string()])
                .status();
        }
    }
}
