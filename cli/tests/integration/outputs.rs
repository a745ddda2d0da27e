//! What the CLI writes is safe to write: files private, terminals safe.
//!
//! Files that can hold keys or plaintext (`rotate --out`, `reencrypt
//! --dump … --out`; the `--checkpoint` of an etcd run goes through the same
//! writer, `k8s_envelope::private_file`) are written 0600 from creation,
//! whatever the umask, and leave nothing else behind; `--out` never
//! overwrites the input dump. Keys from a store are printed with control
//! characters escaped.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use k8s_envelope::store::DumpStore;
use k8s_envelope::EncryptionConfiguration;

const CLI: &str = env!("CARGO_BIN_EXE_k8s-envelope");

const CONFIG: &str = k8s_envelope_test_support::fixtures::SECRETS_AESGCM_KEY1;

/// Runs the CLI in `dir` under umask 000, as a careless shell would.
fn cli_with_umask_000(dir: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(CLI)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run the CLI")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A directory with the config and a dump of three plaintext Secrets (so
/// that the re-encrypted dump has work to do).
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("enc.yaml"), CONFIG).expect("config");
    EncryptionConfiguration::from_yaml(CONFIG.as_bytes()).expect("parses");
    let dump = DumpStore::new("test");
    for i in 0..3 {
        dump.put(
            format!("/registry/secrets/default/s{i}").as_bytes(),
            b"plaintext",
        );
    }
    dump.write(dir.path().join("dump.json")).expect("dump");
    dir
}

#[test]
fn outputs_are_private_under_a_permissive_umask() {
    let dir = setup();
    let path = dir.path();
    let out = cli_with_umask_000(
        path,
        &[
            "rotate", "add-key", "--config", "enc.yaml", "--out", "new.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = cli_with_umask_000(
        path,
        &[
            "reencrypt",
            "--config",
            "enc.yaml",
            "--dump",
            "dump.json",
            "--out",
            "new.json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for file in ["new.yaml", "new.json", "dump.json"] {
        assert_eq!(mode(&path.join(file)), 0o600, "{file}");
    }
    // Nothing else: no temporary file left behind.
    assert_eq!(
        names(path),
        ["dump.json", "enc.yaml", "new.json", "new.yaml"]
    );
}

#[test]
fn out_is_never_the_input_dump() {
    let dir = setup();
    let path = dir.path();
    let before = fs::read(path.join("dump.json")).expect("dump");
    for out in ["dump.json", "./dump.json", "../{}/dump.json"] {
        let name = path.file_name().expect("name").to_string_lossy();
        let out = out.replace("{}", &name);
        let run = cli_with_umask_000(
            path,
            &[
                "reencrypt",
                "--config",
                "enc.yaml",
                "--dump",
                "dump.json",
                "--out",
                &out,
            ],
        );
        assert_eq!(run.status.code(), Some(2), "{out}: {run:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("is the input dump"), "{stderr}");
        assert_eq!(
            fs::read(path.join("dump.json")).expect("dump"),
            before,
            "{out}"
        );
    }
}

/// Keys from a store reach the terminal with control characters escaped:
/// an escape sequence in an etcd key cannot drive it.
#[test]
fn keys_from_a_store_are_printed_with_control_characters_escaped() {
    let dir = setup();
    let path = dir.path();
    let dump = DumpStore::load(path.join("dump.json")).expect("dump");
    dump.put(
        b"/registry/secrets/default/\x1b[2J\x07bell",
        b"k8s:enc:aesgcm:v1:gone:x",
    );
    dump.write(path.join("dump.json")).expect("dump");
    for command in ["scan", "reencrypt"] {
        let mut args = vec![command, "--config", "enc.yaml", "--dump", "dump.json"];
        if command == "reencrypt" {
            args.push("--dry-run");
        }
        let out = cli_with_umask_000(path, &args);
        assert_eq!(out.status.code(), Some(1), "{command}: {out:?}");
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !stream.contains(&0x1b) && !stream.contains(&0x07),
                "{command}: raw control"
            );
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(r"/registry/secrets/default/\u{1b}[2J\u{7}bell"),
            "{stderr}"
        );
    }
}

/// `reencrypt` refuses outputs that do not fit the store before it reads
/// anything: a dump or a snapshot needs `--out` (unless `--dry-run`), and
/// etcd is re-encrypted in place, so `--out` is refused with it.
#[test]
fn reencrypt_outputs_must_fit_the_store() {
    let dir = setup();
    let path = dir.path();
    let cases: [(&[&str], &str); 5] = [
        (&["--dump", "dump.json"], "required arguments were not provided:\n  --out <FILE>"),
        (&["--snapshot", "missing.db"], "required arguments were not provided:\n  --out <FILE>"),
        (
            &["--etcd", "http://127.0.0.1:1", "--out", "new.json"],
            "'--etcd <URL>' cannot be used with '--out <FILE>'",
        ),
        (&["--out", "new.json"], "required arguments were not provided:\n  <--etcd <URL>|--dump <FILE>|--snapshot <FILE>>"),
        (
            &["--dump", "dump.json", "--snapshot", "missing.db", "--out", "new.json"],
            "cannot be used with",
        ),
    ];
    for (store, expected) in cases {
        let mut args = vec!["reencrypt", "--config", "enc.yaml"];
        args.extend_from_slice(store);
        let run = cli_with_umask_000(path, &args);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {run:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(!path.join("new.json").exists());
}

/// A JSON dump given as a snapshot says to read it with `--dump`.
#[test]
fn a_dump_given_as_a_snapshot_says_to_use_dump() {
    let dir = setup();
    let out = cli_with_umask_000(
        dir.path(),
        &["scan", "--config", "enc.yaml", "--snapshot", "dump.json"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a bbolt database"), "{stderr}");
    assert!(
        stderr.contains("the file is JSON: read an etcdctl JSON dump (etcdctl get --prefix -w json) with --dump"),
        "{stderr}"
    );
}

/// A snapshot whose appended SHA-256 does not match is refused, saying
/// which flag reads it anyway; with `--skip-hash-check` it reads.
#[test]
fn a_snapshot_with_a_wrong_hash_needs_skip_hash_check() {
    let fixture =
        k8s_envelope_test_support::fixtures::data("doc-examples/recovering-from-a-backup");
    let dir = tempfile::tempdir().expect("tempdir");
    fs::copy(fixture.join("enc.yaml"), dir.path().join("enc.yaml")).expect("copy");
    let mut snapshot = fs::read(fixture.join("backup.db")).expect("read");
    let last = snapshot.len() - 1;
    snapshot[last] ^= 1;
    fs::write(dir.path().join("bad.db"), &snapshot).expect("write");
    let args = ["scan", "--config", "enc.yaml", "--snapshot", "bad.db"];
    let out = cli_with_umask_000(dir.path(), &args);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SHA-256 does not match"), "{stderr}");
    assert!(stderr.contains("--skip-hash-check"), "{stderr}");
    let out = cli_with_umask_000(dir.path(), &[&args[..], &["--skip-hash-check"]].concat());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("total: 3 values: 3 current"),
        "{out:?}"
    );
}

/// `export --dir` into a directory others can write to is refused before
/// anything is written (its directories could be swapped for links).
#[test]
fn export_refuses_a_root_others_can_write_to() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = setup();
    let root = dir.path().join("shared");
    fs::create_dir(&root).expect("mkdir");
    for mode in [0o777, 0o770, 0o1777] {
        fs::set_permissions(&root, fs::Permissions::from_mode(mode)).expect("chmod");
        let out = cli_with_umask_000(
            dir.path(),
            &[
                "export",
                "--config",
                "enc.yaml",
                "--dump",
                "dump.json",
                "--dir",
                "shared",
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{mode:o}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("others can write to it"),
            "{mode:o}: {stderr}"
        );
        assert_eq!(
            fs::read_dir(&root).expect("read").count(),
            0,
            "{mode:o}: written into"
        );
    }
}

/// A snapshot re-keying whose writes fail (a file size limit of 200 bytes:
/// the spill file's writes are buffered, so here the output's fail, at the
/// end): the run stops with an error naming the file, and leaves no
/// output, spill or temporary file.
#[test]
fn a_rekeying_whose_writes_fail_leaves_nothing_behind() {
    let fixture =
        k8s_envelope_test_support::fixtures::data("doc-examples/recovering-from-a-backup");
    let dir = tempfile::tempdir().expect("tempdir");
    for file in ["enc.2-promote.yaml", "backup.db"] {
        fs::copy(fixture.join(file), dir.path().join(file)).expect("copy");
    }
    let before: Vec<_> = fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    let out = Command::new("sh")
        .arg("-c")
        // An ignored SIGXFSZ makes a write past the limit fail with EFBIG
        // instead of killing the process.
        .arg("trap '' XFSZ; exec prlimit --fsize=200 -- \"$0\" \"$@\"")
        .arg(CLI)
        .args([
            "reencrypt",
            "--config",
            "enc.2-promote.yaml",
            "--snapshot",
            "backup.db",
            "--out",
            "new.db",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("new.db: File too large"), "{stderr}");
    let mut after: Vec<_> = fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    after.sort();
    let mut before = before;
    before.sort();
    assert_eq!(after, before, "files left behind");
}
