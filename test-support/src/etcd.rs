//! A real etcd server for tests and examples: the `etcd` binary (Debian
//! package etcd-server) on free loopback ports, with a temporary data
//! directory (on /dev/shm when there is one), killed and removed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::gate::require;

/// TLS files for an etcd that requires client certificates.
pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A running etcd.
pub struct EtcdServer {
    child: Child,
    /// The client URL.
    pub url: String,
    dir: tempfile::TempDir,
}

/// The etcd binary: `$ETCD_BIN`, or `etcd` on the PATH.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ETCD_BIN") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .find(|path| path.is_file())
    })
}

/// `etcdctl`: beside the etcd binary, or on the PATH. Fails, saying how to
/// install it, when there is none.
pub fn etcdctl() -> PathBuf {
    let beside = etcd_binary()
        .map(|etcd| etcd.with_file_name("etcdctl"))
        .filter(|p| p.is_file());
    let found = beside.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("etcdctl"))
                .find(|path| path.is_file())
        })
    });
    require(found, "etcdctl", "apt-get install etcd-client")
}

/// The etcd binary, or a failure saying how to install it: the tests that
/// start etcd are `#[ignore = "needs etcd ..."]`.
fn required_etcd_binary() -> PathBuf {
    require(
        etcd_binary(),
        "etcd",
        "apt-get install etcd-server etcd-client, or set ETCD_BIN",
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `count` distinct free loopback ports below the kernel's ephemeral
/// range, for members that are killed and started again on the same ports:
/// a port of the ephemeral range can be taken meanwhile as the source port
/// of any outgoing connection (the other tests' clients), and the member
/// then cannot listen again. Each port is held while the next is chosen,
/// so none is chosen twice; where the range leaves no room below it, the
/// kernel's free ports.
fn free_ports_to_keep(count: usize) -> Vec<u16> {
    const LOW: u16 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let span = u32::from(ephemeral_low.saturating_sub(LOW));
    // Where to start looking: differs between processes and calls, so
    // that tests running at once rarely try the same ports.
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos());
    let below_the_range = (0..u32::try_from(count * 200).unwrap_or(u32::MAX))
        .filter(|_| span > 1_000)
        .filter_map(|i| {
            let offset = seed.wrapping_mul(2_654_435_761).wrapping_add(i * 7_919) % span;
            TcpListener::bind(("127.0.0.1", LOW + offset as u16)).ok()
        });
    let any_free = (0..count).filter_map(|_| TcpListener::bind("127.0.0.1:0").ok());
    let held: Vec<TcpListener> = below_the_range.chain(any_free).take(count).collect();
    assert_eq!(held.len(), count, "free loopback ports");
    held.iter()
        .map(|l| l.local_addr().expect("a bound port").port())
        .collect()
}

/// The data directory: on /dev/shm when there is one (fast fsync), unless
/// `ETCD_DATA_ON_DISK=1` asks for the system's temporary directory.
fn temp_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let on_disk = std::env::var_os("ETCD_DATA_ON_DISK").is_some_and(|v| v == "1");
    if shm.is_dir() && !on_disk {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("k8s-envelope-etcd-")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::Builder::new()
        .prefix("k8s-envelope-etcd-")
        .tempdir()
        .expect("temp dir")
}

impl EtcdServer {
    /// Starts etcd (fails when there is no etcd binary).
    pub fn start() -> Self {
        Self::start_with(None, &[])
    }

    /// Starts etcd serving TLS and requiring client certificates signed by
    /// `tls.ca`.
    pub fn start_tls(tls: &ServerTls) -> Self {
        Self::start_with(Some(tls), &[])
    }

    /// Starts etcd with more command-line flags (`--quota-backend-bytes=...`).
    pub fn start_with_flags(flags: &[&str]) -> Self {
        Self::start_with(None, flags)
    }

    /// Starts etcd on a data directory that `etcdctl snapshot restore`
    /// made from `snapshot` (panics if the restore fails).
    pub fn start_restored(snapshot: &Path) -> Self {
        Self::start_from(None, &[], Some(snapshot))
    }

    fn start_with(tls: Option<&ServerTls>, flags: &[&str]) -> Self {
        Self::start_from(tls, flags, None)
    }

    fn start_from(tls: Option<&ServerTls>, flags: &[&str], snapshot: Option<&Path>) -> Self {
        let binary = required_etcd_binary();
        for _attempt in 0..3 {
            if let Some(server) = Self::try_start(&binary, tls, flags, snapshot) {
                return server;
            }
        }
        panic!("etcd did not start (three attempts)");
    }

    fn try_start(
        binary: &Path,
        tls: Option<&ServerTls>,
        flags: &[&str],
        snapshot: Option<&Path>,
    ) -> Option<Self> {
        let dir = temp_dir();
        let (client, peer) = (free_port(), free_port());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        if let Some(snapshot) = snapshot {
            let restored = Command::new(etcdctl())
                .env("ETCDCTL_API", "3")
                .arg("snapshot")
                .arg("restore")
                .arg(snapshot)
                .arg("--name=test")
                .arg(format!("--data-dir={}", dir.path().join("data").display()))
                .arg(format!("--initial-cluster=test={peer_url}"))
                .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                .output()
                .expect("run etcdctl snapshot restore");
            assert!(
                restored.status.success(),
                "etcdctl snapshot restore failed: {}",
                String::from_utf8_lossy(&restored.stderr)
            );
        }
        let mut command = Command::new(binary);
        command
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={url}"))
            .arg(format!("--advertise-client-urls={url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .arg("--logger=zap")
            .arg("--log-level=error")
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("etcd.log")).expect("log file"),
            ));
        if let Some(tls) = tls {
            command
                .arg(format!("--cert-file={}", tls.cert.display()))
                .arg(format!("--key-file={}", tls.key.display()))
                .arg(format!("--trusted-ca-file={}", tls.ca.display()))
                .arg("--client-cert-auth");
        }
        let mut child = command.spawn().expect("spawn etcd");
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                // Most likely a port taken between free_port and the bind.
                return None;
            }
            if std::net::TcpStream::connect(("127.0.0.1", client)).is_ok() {
                // Listening; give it a moment to have a leader.
                let server = Self { child, url, dir };
                if server.wait_ready(deadline) {
                    return Some(server);
                }
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Waits until etcd answers a write (it has elected itself leader):
    /// with etcdctl when there is one, else by waiting a little.
    fn wait_ready(&self, deadline: Instant) -> bool {
        // A plain HTTP GET of /health answers {"health":"true"} once etcd
        // serves; over TLS, the listener being up is enough for the tests'
        // first call, which retries while etcd is unavailable.
        if self.url.starts_with("https") {
            std::thread::sleep(Duration::from_millis(500));
            return true;
        }
        let addr = self.url.trim_start_matches("http://").to_owned();
        while Instant::now() < deadline {
            if let Ok(body) = http_get(&addr, "/health") {
                if body.contains("\"health\":\"true\"") {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The data directory's parent (for files the test wants removed with it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cluster of etcd members on loopback ports, each with its own data
/// directory; members can be killed and started again (same data, same
/// ports). Killed and removed on drop.
pub struct EtcdCluster {
    binary: PathBuf,
    dir: tempfile::TempDir,
    members: Vec<Member>,
}

struct Member {
    name: String,
    client_url: String,
    args: Vec<String>,
    child: Option<Child>,
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster has a leader (fails
    /// when there is no etcd binary).
    pub fn start(n: usize) -> Self {
        let binary = required_etcd_binary();
        let dir = temp_dir();
        let ports: Vec<(u16, u16)> = free_ports_to_keep(2 * n)
            .chunks_exact(2)
            .map(|pair| (pair[0], pair[1]))
            .collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let name = format!("m{i}");
                let client_url = format!("http://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let args = vec![
                    format!("--name={name}"),
                    format!("--data-dir={}", dir.path().join(&name).display()),
                    format!("--listen-client-urls={client_url}"),
                    format!("--advertise-client-urls={client_url}"),
                    format!("--listen-peer-urls={peer_url}"),
                    format!("--initial-advertise-peer-urls={peer_url}"),
                    format!("--initial-cluster={}", initial.join(",")),
                    "--initial-cluster-state=new".to_owned(),
                    "--initial-cluster-token=k8s-envelope-test".to_owned(),
                    "--logger=zap".to_owned(),
                    "--log-level=error".to_owned(),
                ];
                Member {
                    name,
                    client_url,
                    args,
                    child: None,
                }
            })
            .collect();
        let mut cluster = Self {
            binary,
            dir,
            members,
        };
        for i in 0..n {
            cluster.start_member(i);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while cluster.leader().is_none() {
            assert!(
                Instant::now() < deadline,
                "the etcd cluster elected no leader"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// The client URLs, in member order.
    pub fn urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Starts member `i` again (after [`kill`](Self::kill)).
    pub fn start_member(&mut self, i: usize) {
        let member = &mut self.members[i];
        assert!(member.child.is_none(), "{} is running", member.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", member.name)))
            .expect("log file");
        let child = Command::new(&self.binary)
            .args(&member.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn etcd");
        member.child = Some(child);
    }

    /// Kills member `i` (SIGKILL: no goodbye to the others).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Why member `i` may not be healthy, for a test's failure message:
    /// whether it runs or how it exited, and the end of its log.
    pub fn member_state(&mut self, i: usize) -> String {
        let member = &mut self.members[i];
        let running = match member.child.as_mut().map(Child::try_wait) {
            None => "killed".to_owned(),
            Some(Ok(None)) => "running".to_owned(),
            Some(Ok(Some(status))) => format!("exited ({status})"),
            Some(Err(e)) => format!("unknown ({e})"),
        };
        let log = std::fs::read_to_string(self.dir.path().join(format!("{}.log", member.name)))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "{} {running}; its log ends:\n{}",
            member.name,
            tail.join("\n")
        )
    }

    /// Whether member `i` answers its health check.
    pub fn healthy(&self, i: usize) -> bool {
        let addr = self.members[i].client_url.trim_start_matches("http://");
        http_get(addr, "/health").is_ok_and(|body| body.contains("\"health\":\"true\""))
    }

    /// The member that leads now, if one does and answers: etcd's
    /// `/v3/maintenance/status` (the gRPC gateway) of each running member
    /// names the leader's member ID and its own.
    pub fn leader(&self) -> Option<usize> {
        for (i, member) in self.members.iter().enumerate() {
            if member.child.is_none() {
                continue;
            }
            let addr = member.client_url.trim_start_matches("http://");
            let Ok(body) = http_post(addr, "/v3/maintenance/status", "{}") else {
                continue;
            };
            let Some(json) = body.split("\r\n\r\n").nth(1) else {
                continue;
            };
            let Ok(status) = serde_json::from_str::<serde_json::Value>(json) else {
                continue;
            };
            let leader = status["leader"].as_str().unwrap_or("0");
            let me = status["header"]["member_id"].as_str().unwrap_or("");
            if leader != "0" && leader == me {
                return Some(i);
            }
        }
        None
    }
}

fn http_post(addr: &str, path: &str, body: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
