//! The dump store in memory independent of the dump's size: a scan, an
//! export, a verification and a re-encryption of a 50,000-value dump (39 MB
//! of JSON) stay under 50 MB of peak memory (and half the file), which a reader of the whole file cannot (it holds the file,
//! and every value decoded besides). Nothing is timed. The scan reads with
//! identity and the re-encryption rewrites one namespace (1,000 values) with
//! aesgcm: both go through the whole file, and the crypto of a debug build
//! stays small.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use k8s_envelope_test_support::peak_memory::wait_measuring;

const CLI: &str = env!("CARGO_BIN_EXE_k8s-envelope");
const VALUES: usize = 50_000;
const VALUE_BYTES: usize = 512;
/// The issue's bound for every store, at six times as many values.
const PEAK_LIMIT_KIB: u64 = 50 * 1024;

const IDENTITY: &str = "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
      - identity: {}
";

const CONFIG: &str = k8s_envelope_test_support::fixtures::SECRETS_AESGCM_KEY1;

/// Secret `i` as JSON, `VALUE_BYTES` long: an object `export` writes out.
fn secret_json(i: usize) -> Vec<u8> {
    let head = format!(
        r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"s-{i:06}","namespace":"ns{:02}"}},"data":{{"d":""#,
        i / 1000
    );
    let tail = r#""}}"#;
    let mut value = head.into_bytes();
    let fill = VALUE_BYTES - value.len() - tail.len();
    value.extend((0..fill).map(|j| b'a' + ((i + j) % 26) as u8));
    value.extend_from_slice(tail.as_bytes());
    value
}

/// A dump as `etcdctl get -w json` writes it: `VALUES` values written by
/// identity (stale: aesgcm writes), keys in order.
fn write_dump(path: &Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    write!(
        out,
        r#"{{"header":{{"cluster_id":1,"member_id":2,"revision":{VALUES},"raft_term":3}},"kvs":["#
    )
    .expect("write");
    for i in 0..VALUES {
        let key = format!("/registry/secrets/ns{:02}/s-{i:06}", i / 1000);
        let value = secret_json(i);
        if i > 0 {
            out.write_all(b",").expect("write");
        }
        write!(
            out,
            r#"{{"key":"{}","create_revision":{r},"mod_revision":{r},"version":1,"value":"{}"}}"#,
            BASE64.encode(key),
            BASE64.encode(value),
            r = i + 1
        )
        .expect("write");
    }
    writeln!(out, r#"],"count":{VALUES}}}"#).expect("write");
}

/// Runs the CLI; its stdout and its peak memory in KiB.
fn run(args: &[&str]) -> (String, u64) {
    let stdout = tempfile::tempfile().expect("stdout file");
    let mut child = Command::new(CLI)
        .args(args)
        // Two worker threads, as on CI's machine, whatever this one has:
        // the peak must not depend on the cores.
        .env("TOKIO_WORKER_THREADS", "2")
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("clone"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let (status, peak) = wait_measuring(&mut child).expect("wait");
    assert!(status.success(), "{args:?}: {status}");
    let mut text = String::new();
    let mut stdout = stdout;
    std::io::Seek::rewind(&mut stdout).expect("rewind");
    std::io::Read::read_to_string(&mut stdout, &mut text).expect("read");
    (text, peak.expect("/proc/PID/status has VmHWM"))
}

/// Fails unless `command`'s peak (KiB) on a dump of `size` bytes is
/// below `limit_kib`.
fn below(peak: u64, limit_kib: u64, command: &str, size: u64) {
    assert!(
        peak < limit_kib,
        "{command}: peak {peak} KiB for a {size}-byte dump (limit {limit_kib} KiB)"
    );
}

#[test]
fn a_dump_is_scanned_and_reencrypted_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("dump.json");
    let out = dir.path().join("out.json");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, CONFIG).expect("config");
    let identity = dir.path().join("identity.yaml");
    std::fs::write(&identity, IDENTITY).expect("config");
    write_dump(&dump);
    let size = std::fs::metadata(&dump).expect("meta").len();
    assert!(size > 38_000_000, "{size} bytes");
    let (dump_arg, out_arg, config_arg, identity_arg) = (
        dump.to_str().expect("UTF-8"),
        out.to_str().expect("UTF-8"),
        config.to_str().expect("UTF-8"),
        identity.to_str().expect("UTF-8"),
    );
    const ONE_NAMESPACE: &str = "/registry/secrets/ns00/";

    let (scan, peak) = run(&["scan", "--config", identity_arg, "--dump", dump_arg]);
    eprintln!("scan of {size} bytes: peak {peak} KiB");
    assert!(
        scan.contains(&format!("total: {VALUES} values: {VALUES} current")),
        "{scan}"
    );
    // Less than half the file: no reader of the whole file gets there.
    below(peak, PEAK_LIMIT_KIB.min(size / 2 / 1024), "scan", size);

    // export and verify hold what is in flight, not what they have read.
    let (exported, peak) = run(&[
        "export",
        "--config",
        identity_arg,
        "--dump",
        dump_arg,
        "--output",
        "jsonl",
    ]);
    eprintln!("export of {size} bytes: peak {peak} KiB");
    assert_eq!(exported.lines().count(), VALUES);
    // Less than the file (it held all of it, 63 MB, before it settled
    // what it wrote): its worker threads' memory is on top of a scan's.
    below(peak, size / 1024, "export", size);
    let (verified, peak) = run(&["verify", "--config", identity_arg, "--dump", dump_arg]);
    eprintln!("verify of {size} bytes: peak {peak} KiB");
    assert!(
        verified.contains(&format!("total: {VALUES} values: {VALUES} readable")),
        "{verified}"
    );
    below(peak, size / 1024, "verify", size);

    let (summary, peak) = run(&[
        "reencrypt",
        "--config",
        config_arg,
        "--dump",
        dump_arg,
        "--out",
        out_arg,
        "--prefix",
        ONE_NAMESPACE,
    ]);
    eprintln!("re-encryption of {size} bytes: peak {peak} KiB");
    below(peak, PEAK_LIMIT_KIB.min(size / 2 / 1024), "reencrypt", size);
    assert!(summary.contains("rewritten            1000"), "{summary}");

    // Every value is in the output, the namespace rewritten, the rest as
    // it was; the input is as it was.
    let (rescan, _) = run(&["scan", "--config", config_arg, "--dump", out_arg]);
    assert!(
        rescan.contains(&format!(
            "total: {VALUES} values: 1000 current, {} stale",
            VALUES - 1000
        )),
        "{rescan}"
    );
    assert_eq!(std::fs::metadata(&dump).expect("meta").len(), size);
}
