//! The scale benchmark: scan and re-encryption of N values in a real etcd
//! on tmpfs, against the floors measured in the same run.
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo run --release -p k8s-envelope-cli --example scale -- [--sizes 10000,100000,300000] [--value-bytes 200] [--rounds 5] [--keep DIR]
//! ```
//!
//! `--keep DIR` copies each size's dump, snapshot and configurations to
//! `DIR/N/` (to profile one phase again with `perf` or `farm-bench`).
//!
//! For each N a fresh etcd (data on /dev/shm, backend quota 8 GiB) is
//! filled with N Secrets (protobuf, as the apiserver stores them) with
//! `--value-bytes` of data, written by identity under
//! `/registry/secrets/`, then, each as its own process of the release
//! binaries (wall time, and peak memory from the kernel's high-water mark
//! of the process, `VmHWM`):
//!
//! - `read floor`: one unpaged `etcdctl get --prefix`;
//! - `scan`: `k8s-envelope scan` with aesgcm writing (every value stale);
//! - `export` and `verify`: `--output jsonl` of the same store at the
//!   default concurrency, against the scan, then `export c=1` and
//!   `verify c=1` at `--concurrency 1` (the output must be the same
//!   bytes); the same beside the dump's and the snapshot's scans. The scan,
//!   export and verify of a store run in `--rounds` rounds side by side,
//!   each phase the median of its rounds;
//! - `reencrypt c=1`: `k8s-envelope reencrypt --concurrency 1` to aesgcm;
//! - `CAS floor c=8`: in this process, the same walk and a compare-and-swap
//!   of every value to itself, 8 at a time: etcd's part of a re-encryption,
//!   without crypto;
//! - `reencrypt c=8`: `--concurrency 8`, to secretbox;
//! - `dump scan` and `dump reencrypt`: `etcdctl get -w json` saved to a
//!   file, scanned and re-encrypted (to aescbc) into a new file;
//! - `snapshot scan` and `snapshot reencrypt`: after a compaction and a
//!   defragmentation (so the snapshot holds what the dump holds),
//!   `etcdctl snapshot save`, scanned and re-keyed (to aescbc) into a new
//!   snapshot file;
//! - `resume`: a re-encryption to aescbc with `--checkpoint`, stopped with
//!   SIGTERM once half the values are done and run again to the end; the
//!   two runs together rewrite every value exactly once (checked), and a
//!   scan then finds every value current.
//!
//! Numbers vary with the machine; compare the ratios of one run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt as _};
use k8s_envelope::store::{EtcdOptions, EtcdStore, Store, Swap};

use k8s_envelope_test_support::{etcd, objects, peak_memory};

const PREFIX: &str = "/registry/secrets/";

const AESGCM: &str = "      - aesgcm:\n          keys:\n            - name: k1\n              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
const SECRETBOX: &str = "      - secretbox:\n          keys:\n            - name: k2\n              secret: ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n";
const AESCBC: &str = "      - aescbc:\n          keys:\n            - name: k3\n              secret: QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=\n";

/// One measured phase.
struct Phase {
    name: String,
    seconds: f64,
    peak_mb: Option<f64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sizes = vec![10_000usize, 100_000, 300_000];
    let mut value_bytes = 200usize;
    let mut keep: Option<PathBuf> = None;
    let mut rounds = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => {
                sizes = args
                    .next()
                    .ok_or("--sizes needs a value")?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--value-bytes" => {
                value_bytes = args.next().ok_or("--value-bytes needs a value")?.parse()?
            }
            "--keep" => keep = Some(args.next().ok_or("--keep needs a directory")?.into()),
            "--rounds" => rounds = args.next().ok_or("--rounds needs a value")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let bin = release_dir()?;
    let cli = bin.join("k8s-envelope");
    if !cli.is_file() {
        return Err(format!(
            "{} is missing: run `cargo build --release --workspace --bins` first",
            cli.display()
        )
        .into());
    }
    println!(
        "| keys | phase | seconds | values/s | µs/key | peak MB | vs floor |\n|---:|---|---:|---:|---:|---:|---:|"
    );
    for n in sizes {
        let keep = keep.as_ref().map(|dir| dir.join(n.to_string()));
        for line in measure(&cli, n, value_bytes, keep.as_deref(), rounds)? {
            println!("{line}");
        }
    }
    Ok(())
}

/// `target/release`, where this example's own binary sits under `examples/`.
fn release_dir() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no target directory")?
        .to_path_buf())
}

fn config(dir: &Path, name: &str, writers: &[&str]) -> std::io::Result<PathBuf> {
    let mut text = String::from(
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n",
    );
    for w in writers {
        text.push_str(w);
    }
    text.push_str("      - identity: {}\n");
    let path = dir.join(name);
    // It holds keys (the benchmark's own, but written as any would be).
    k8s_envelope::private_file::write(&path, text.as_bytes())?;
    Ok(path)
}

fn measure(
    cli: &Path,
    n: usize,
    value_bytes: usize,
    keep: Option<&Path>,
    rounds: usize,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    etcd::etcd_binary().ok_or("no etcd binary (apt-get install etcd-server)")?;
    let etcd = etcd::EtcdServer::start_with_flags(&["--quota-backend-bytes=8589934592"]);
    let dir = etcd.dir().to_path_buf();
    let runtime = tokio::runtime::Runtime::new()?;
    let store =
        Arc::new(runtime.block_on(EtcdStore::connect(EtcdOptions::new([etcd.url.as_str()])))?);
    runtime.block_on(fill(&store, n, value_bytes));

    let gcm = config(&dir, "gcm.yaml", &[AESGCM])?;
    let sbox = config(&dir, "secretbox.yaml", &[SECRETBOX, AESGCM])?;
    let cbc = config(&dir, "aescbc.yaml", &[AESCBC, SECRETBOX, AESGCM])?;
    let url = etcd.url.as_str();
    let etcdctl = |args: &[&str]| {
        let mut c = Command::new("etcdctl");
        c.args(["--endpoints", url]).args(args);
        c
    };
    let tool = |args: &[&str]| {
        let mut c = Command::new(cli);
        c.args(args);
        c
    };
    let dump = dir.join("dump.json");
    let out = dir.join("out.json");
    let s = |p: &Path| p.display().to_string();

    let mut phases = Vec::new();
    phases.push(run(
        "read floor",
        etcdctl(&["get", "--prefix", PREFIX]),
        None,
    )?);
    phases.extend(scan_export_verify(
        "",
        &tool,
        &s(&gcm),
        &["--etcd", url],
        &dir,
        rounds,
    )?);
    phases.push(run(
        "reencrypt c=1",
        tool(&[
            "reencrypt",
            "--config",
            &s(&gcm),
            "--etcd",
            url,
            "--concurrency",
            "1",
        ]),
        None,
    )?);
    let started = Instant::now();
    runtime.block_on(cas_loop(&store, 8))?;
    phases.push(Phase {
        name: "CAS floor c=8".to_owned(),
        seconds: started.elapsed().as_secs_f64(),
        peak_mb: None,
    });
    phases.push(run(
        "reencrypt c=8",
        tool(&[
            "reencrypt",
            "--config",
            &s(&sbox),
            "--etcd",
            url,
            "--concurrency",
            "8",
        ]),
        None,
    )?);
    phases.push(run(
        "dump save",
        etcdctl(&["get", "--prefix", PREFIX, "-w", "json"]),
        Some(&dump),
    )?);
    phases.extend(scan_export_verify(
        "dump ",
        &tool,
        &s(&sbox),
        &["--dump", &s(&dump)],
        &dir,
        rounds,
    )?);
    phases.push(run(
        "dump reencrypt",
        tool(&[
            "reencrypt",
            "--config",
            &s(&cbc),
            "--dump",
            &s(&dump),
            "--out",
            &s(&out),
        ]),
        None,
    )?);
    // The same values as a snapshot, compacted first (as the apiserver
    // compacts every 5 minutes) so that it holds what the dump holds.
    let status: serde_json::Value = serde_json::from_slice(
        &etcdctl(&["endpoint", "status", "-w", "json"])
            .output()?
            .stdout,
    )?;
    let revision = status[0]["Status"]["header"]["revision"]
        .as_i64()
        .ok_or("no revision in etcdctl endpoint status")?;
    let revision_text = revision.to_string();
    // etcdctl's 5 s default is too short for a physical compaction and a
    // defragmentation of a few hundred MB.
    for args in [
        vec![
            "compact",
            "--physical",
            "--command-timeout=600s",
            &revision_text,
        ],
        vec!["defrag", "--command-timeout=600s"],
    ] {
        if !etcdctl(&args).stdout(Stdio::null()).status()?.success() {
            return Err(format!("etcdctl {args:?} failed").into());
        }
    }
    let snapshot = dir.join("backup.db");
    let rekeyed = dir.join("rekeyed.db");
    phases.push(run(
        "snapshot save",
        etcdctl(&["snapshot", "save", &s(&snapshot)]),
        None,
    )?);
    phases.extend(scan_export_verify(
        "snapshot ",
        &tool,
        &s(&sbox),
        &["--snapshot", &s(&snapshot)],
        &dir,
        rounds,
    )?);
    phases.push(run(
        "snapshot reencrypt",
        tool(&[
            "reencrypt",
            "--config",
            &s(&cbc),
            "--snapshot",
            &s(&snapshot),
            "--out",
            &s(&rekeyed),
        ]),
        None,
    )?);
    phases.push(resume(&tool, &s(&cbc), url, &dir, n)?);
    if let Some(keep) = keep {
        fs::create_dir_all(keep)?;
        // Through the crate's private writer (0600, atomic): the
        // configurations hold keys, the dump and snapshot what they encrypt.
        for file in [&dump, &snapshot, &gcm, &sbox, &cbc] {
            let name = file.file_name().ok_or("a file name")?;
            k8s_envelope::private_file::write(keep.join(name), &fs::read(file)?)?;
        }
    }
    drop(etcd);

    let floor = |name: &str| phases.iter().find(|p| p.name == name).map(|p| p.seconds);
    Ok(phases
        .iter()
        .map(|p| {
            // Export and verify at concurrency 1 against the same scan.
            let phase = p
                .name
                .strip_suffix(" c=1")
                .filter(|base| base.ends_with("export") || base.ends_with("verify"))
                .unwrap_or(&p.name);
            let against = match phase {
                "scan" => floor("read floor"),
                "reencrypt c=8" => floor("CAS floor c=8"),
                "snapshot scan" => floor("dump scan"),
                // export and verify against the scan of the same store.
                "export" | "verify" => floor("scan"),
                "dump export" | "dump verify" => floor("dump scan"),
                "snapshot export" | "snapshot verify" => floor("snapshot scan"),
                _ => None,
            };
            format!(
                "| {n} | {} | {:.2} | {:.0} | {:.2} | {} | {} |",
                p.name,
                p.seconds,
                n as f64 / p.seconds,
                p.seconds * 1e6 / n as f64,
                p.peak_mb
                    .map_or_else(|| "-".to_owned(), |m| format!("{m:.0}")),
                against.map_or_else(String::new, |f| format!("{:.2}x", p.seconds / f)),
            )
        })
        .collect())
}

/// `scan`, then `export --output jsonl` and `verify --output jsonl` of one
/// store (the phases `{store}scan`, `{store}export` and `{store}verify`, at
/// the default concurrency), each run again at concurrency 1
/// (`{store}export c=1`, ...), which must print the same bytes. They run
/// in `rounds` rounds, one command after the other in each, and each phase
/// is the median of its rounds (its peak memory the highest): the ratios
/// to the scan are then taken from runs side by side, and one slow run on
/// a shared machine does not move them.
fn scan_export_verify(
    store: &str,
    tool: &dyn Fn(&[&str]) -> Command,
    config: &str,
    store_args: &[&str],
    dir: &Path,
    rounds: usize,
) -> Result<Vec<Phase>, Box<dyn std::error::Error>> {
    // (name, arguments, where its output goes)
    let mut commands: Vec<(String, Vec<&str>, Option<PathBuf>)> = Vec::new();
    let mut scan = vec!["scan", "--config", config];
    scan.extend_from_slice(store_args);
    commands.push((format!("{store}scan"), scan, None));
    for command in ["export", "verify"] {
        for (suffix, extra) in [("", &[][..]), (" c=1", &["--concurrency", "1"][..])] {
            let mut args = vec![command, "--config", config];
            args.extend_from_slice(store_args);
            args.extend(["--output", "jsonl"]);
            args.extend_from_slice(extra);
            let out = output_file(dir, command, !suffix.is_empty());
            commands.push((format!("{store}{command}{suffix}"), args, Some(out)));
        }
    }
    let mut samples: Vec<Vec<Phase>> = commands.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds.max(1) {
        for ((name, args, out), samples) in commands.iter().zip(&mut samples) {
            samples.push(run(name, tool(args), out.as_deref())?);
        }
    }
    for command in ["export", "verify"] {
        let (default_out, serial_out) = (
            output_file(dir, command, false),
            output_file(dir, command, true),
        );
        if fs::read(&default_out)? != fs::read(&serial_out)? {
            return Err(format!("{store}{command}: the output at concurrency 1 differs").into());
        }
    }
    Ok(commands
        .into_iter()
        .zip(samples)
        .map(|((name, _, _), mut samples)| {
            // Every round on stderr: the spread the median hides.
            let seconds: Vec<String> = samples
                .iter()
                .map(|p| format!("{:.2}", p.seconds))
                .collect();
            eprintln!("{name}: {} s", seconds.join(" "));
            samples.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
            Phase {
                name,
                seconds: samples[samples.len() / 2].seconds,
                peak_mb: samples
                    .iter()
                    .filter_map(|p| p.peak_mb)
                    .max_by(f64::total_cmp),
            }
        })
        .collect())
}

/// Where the last round of `command` (at concurrency 1 when `serial`)
/// leaves its output.
fn output_file(dir: &Path, command: &str, serial: bool) -> PathBuf {
    dir.join(format!(
        "{command}{}.jsonl",
        if serial { "-c1" } else { "" }
    ))
}

/// A re-encryption with a checkpoint, stopped by SIGTERM at half way and
/// resumed: both runs' wall time, and checks that every value was
/// rewritten exactly once and reads current at the end.
fn resume(
    tool: &dyn Fn(&[&str]) -> Command,
    config: &str,
    url: &str,
    dir: &Path,
    n: usize,
) -> Result<Phase, Box<dyn std::error::Error>> {
    let checkpoint = dir.join("reencrypt.checkpoint");
    let checkpoint_arg = checkpoint.display().to_string();
    let args = [
        "reencrypt",
        "--config",
        config,
        "--etcd",
        url,
        "--concurrency",
        "8",
        "--checkpoint",
        &checkpoint_arg,
    ];
    let started = Instant::now();
    let mut first = tool(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    loop {
        let read = fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["totals"]["read"].as_u64())
            .unwrap_or(0);
        if read as usize >= n / 2 {
            let pid = first.id().to_string();
            Command::new("kill").args(["-TERM", &pid]).status()?;
            break;
        }
        if first.try_wait()?.is_some() {
            return Err("the first run ended before half way".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stopped = first.wait()?;
    if stopped.code() != Some(130) {
        return Err(format!("the stopped run exited with {stopped}").into());
    }
    let second = tool(&args).output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !second.status.success() {
        return Err(format!(
            "the resumed run: {}",
            String::from_utf8_lossy(&second.stderr)
        )
        .into());
    }
    let saved: serde_json::Value = serde_json::from_slice(&fs::read(&checkpoint)?)?;
    let rewritten = saved["totals"]["rewritten"].as_u64().unwrap_or(0);
    if rewritten as usize != n || saved["finished"] != serde_json::Value::Bool(true) {
        return Err(format!("the two runs rewrote {rewritten} of {n} values: {saved}").into());
    }
    let scan = tool(&["scan", "--config", config, "--etcd", url]).output()?;
    let report = String::from_utf8_lossy(&scan.stdout);
    if !report.contains(&format!("total: {n} values: {n} current")) {
        return Err(format!("after the resumed run: {report}").into());
    }
    Ok(Phase {
        name: "resume (SIGTERM at half, c=8)".to_owned(),
        seconds,
        peak_mb: None,
    })
}

/// Writes `n` Secrets under [`PREFIX`] in plaintext, as the apiserver
/// stores them (protobuf), each with `value_bytes` of data, 64 at a time.
async fn fill(store: &EtcdStore, n: usize, value_bytes: usize) {
    let data = vec![b'x'; value_bytes];
    stream::iter(0..n)
        .for_each_concurrent(64, |i| {
            let data = &data;
            async move {
                let namespace = format!("ns{:03}", i % 500);
                let name = format!("secret-{i:08}");
                let key = format!("{PREFIX}{namespace}/{name}");
                let value = objects::secret_protobuf(&namespace, &name, &[("data", data)]);
                store.put(key.as_bytes(), &value).await.expect("put");
            }
        })
        .await;
}

/// The walk and a compare-and-swap of every value to itself,
/// `concurrency` at a time: what a re-encryption asks of etcd.
async fn cas_loop(store: &EtcdStore, concurrency: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut listing = store.listing(PREFIX.as_bytes(), None, 100);
    while let Some(page) = listing.next_page().await? {
        stream::iter(page.entries)
            .for_each_concurrent(concurrency, |entry| async move {
                match store
                    .compare_and_swap(&entry.key, entry.revision, &entry.value)
                    .await
                {
                    Ok(Swap::Written(_)) => {}
                    other => panic!("compare-and-swap: {other:?}"),
                }
            })
            .await;
    }
    Ok(())
}

/// `path` opened for writing from its start, created with mode 0600.
fn private_output(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Runs `command` to its end, with stdout to `stdout` (or nowhere); its wall
/// time and the kernel's high-water mark of its memory (`VmHWM`), read until
/// it exits.
fn run(
    name: &str,
    mut command: Command,
    stdout: Option<&Path>,
) -> Result<Phase, Box<dyn std::error::Error>> {
    let out = match stdout {
        // Dumps and exports hold plaintext: 0600 (a child writes them, so
        // not through the private writer, and each round writes them anew).
        Some(path) => Stdio::from(private_output(path)?),
        None => Stdio::null(),
    };
    let mut errors = tempfile::tempfile()?;
    let started = Instant::now();
    let mut child = command.stdout(out).stderr(errors.try_clone()?).spawn()?;
    let (status, peak_kb) = peak_memory::wait_measuring(&mut child)?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        let mut err = String::new();
        std::io::Seek::rewind(&mut errors)?;
        std::io::Read::read_to_string(&mut errors, &mut err)?;
        return Err(format!("{name}: {status}: {err}").into());
    }
    Ok(Phase {
        name: name.to_owned(),
        seconds,
        peak_mb: peak_kb.map(|kb| kb as f64 / 1024.0),
    })
}
