//! The fuzz targets' checks, run by `cargo test` without a fuzzer: over the
//! vectors (which also seed the fuzzers), and over every input that ever
//! broke a target, kept in `tests/data/fuzz/<target>/`.
//!
//! Each bug a fuzzer found also has a named test below, with the root cause.
//! To pin a new crash: copy the artifact from `fuzz/artifacts/<target>/` to
//! `tests/data/fuzz/<target>/<short-name>`, add a named test here, then fix
//! it (see `fuzz/README.md`).

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use k8s_envelope::jsonl::Transform;
use k8s_envelope::EncryptionConfiguration;

use k8s_envelope_test_support::checks::{self, Harness};

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    Harness::from_config(include_bytes!("../data/fuzz/every-provider.yaml"))
        .unwrap_or_else(|e| panic!("the fuzz configuration: {e}"))
});

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Every input kept for `target`, with its file name.
fn kept(target: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(dir) = std::fs::read_dir(data_dir().join("fuzz").join(target)) else {
        return Vec::new();
    };
    let mut inputs: Vec<(String, Vec<u8>)> = dir
        .map(|entry| {
            let path = entry.expect("dir entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read"))
        })
        .collect();
    inputs.sort();
    inputs
}

fn replay(target: &str, check: impl Fn(&[u8]) -> Result<(), String>) {
    for (name, input) in kept(target) {
        if let Err(e) = check(&input) {
            panic!("{target}/{name}: {e}");
        }
    }
}

#[test]
fn replay_config() {
    replay("config", checks::check_config);
}

#[test]
fn replay_config_scaled() {
    replay("config_scaled", checks::check_config_scaled);
}

#[test]
fn replay_read() {
    replay("read", |data| HARNESS.check_read(data));
}

#[test]
fn replay_static_round_trip() {
    replay("static_round_trip", checks::check_static_round_trip);
}

#[test]
fn replay_kms_v2_object() {
    replay("kms_v2_object", checks::check_encrypted_object);
}

#[test]
fn replay_kms_v1_envelope() {
    replay("kms_v1_envelope", checks::check_kms_v1);
}

#[test]
fn replay_etcd_dump() {
    replay("etcd_dump", checks::check_etcd_dump);
}

#[test]
fn replay_jsonl() {
    replay("jsonl", |data| HARNESS.check_jsonl(data));
}

// ---------------------------------------------------------------------------
// The vectors through every check

struct Vector {
    name: String,
    storage_key: String,
    plaintext: Vec<u8>,
    stored: Vec<u8>,
    ok: bool,
    line: String,
}

fn vectors(file: &str) -> Vec<Vector> {
    let text = std::fs::read_to_string(data_dir().join("vectors").join(file)).expect("vectors");
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            let field = |name: &str| v[name].as_str().expect(name).to_owned();
            Vector {
                name: field("name"),
                storage_key: field("storage_key"),
                plaintext: BASE64.decode(field("plaintext_b64")).expect("base64"),
                stored: BASE64.decode(field("stored_b64")).expect("base64"),
                ok: v["expect"] == "ok",
                line: line.to_owned(),
            }
        })
        .collect()
}

fn with_storage_key(storage_key: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![storage_key.len() as u8];
    out.extend_from_slice(storage_key.as_bytes());
    out.extend_from_slice(value);
    out
}

/// The fuzz configuration holds the keys of the first vector file and the
/// KMS mocks the Go reference used, so every value the apiserver could read
/// there reads through it: the seeds take the fuzzers past authentication.
#[test]
fn the_fuzz_configuration_reads_the_vectors() {
    let mut read = 0;
    for v in vectors("apiserver-seed1.jsonl") {
        if !v.ok || v.name.starts_with("resources/") {
            continue;
        }
        let result = HARNESS.decrypt("secrets", &v.storage_key, &v.stored);
        match result {
            Ok(d) => assert_eq!(d.plaintext, v.plaintext, "{}", v.name),
            Err(e) => panic!("{}: {e}", v.name),
        }
        read += 1;
    }
    assert!(read > 100, "{read}");
}

#[test]
fn every_check_holds_on_the_vectors() {
    for file in [
        "apiserver-seed1.jsonl",
        "apiserver-seed2.jsonl",
        "apiserver-seed3.jsonl",
    ] {
        for v in vectors(file) {
            let name = &v.name;
            let keyed = |value: &[u8]| with_storage_key(&v.storage_key, value);
            HARNESS
                .check_read(&keyed(&v.stored))
                .unwrap_or_else(|e| panic!("read {name}: {e}"));
            checks::check_static_round_trip(&keyed(&v.plaintext))
                .unwrap_or_else(|e| panic!("static_round_trip {name}: {e}"));
            if let Some(body) = v.stored.strip_prefix(b"k8s:enc:kms:v2:kms-provider:") {
                checks::check_encrypted_object(body)
                    .unwrap_or_else(|e| panic!("kms_v2_object {name}: {e}"));
            }
            if let Some(body) = v.stored.strip_prefix(b"k8s:enc:kms:v1:kms-provider:") {
                checks::check_kms_v1(&keyed(body))
                    .unwrap_or_else(|e| panic!("kms_v1_envelope {name}: {e}"));
            }
            if v.stored.len() < 4096 {
                let mut line = v.line.clone();
                line.push('\n');
                HARNESS
                    .check_jsonl(line.as_bytes())
                    .unwrap_or_else(|e| panic!("jsonl {name}: {e}"));
            }
        }
    }
}

#[test]
fn every_check_holds_on_the_configurations() {
    for dir in ["conformance/valid", "conformance/invalid", "fuzz"] {
        for entry in std::fs::read_dir(data_dir().join(dir)).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                let data = std::fs::read(&path).expect("read");
                checks::check_config(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Bugs the fuzzers found

/// `config_scaled`, `one-resource.json`: validation was quadratic in the
/// length of a rule's resource list.
///
/// `validate_resource_overlap` ran the apiserver's loop over every ordered
/// pair of a rule's resources to find duplicates and overlaps. A
/// configuration may have 4 MiB, enough for half a million names in one
/// list: 2.5 * 10^11 pairs, hours of CPU for `k8s-envelope validate` (2000
/// names already took 1.6 s in a release build, 8000 took 27 s). The small
/// inputs of the `config` target never showed it; `config_scaled`, which
/// blows each input up to thousands of names, timed out on its first seed.
///
/// Fix: the loop's verdicts have a closed form (a duplicate is two equal
/// entries; an overlap is a `*.*` entry in a list of two or more, or a
/// group holding a `*.group` entry and another entry), computed in one pass
/// with a hash set; a property test holds it to the apiserver's loop.
#[test]
fn a_long_resource_list_validates_in_linear_time() {
    let names: Vec<String> = (0..200_000).map(|i| format!("r{i}")).collect();
    let mut wildcard = names.clone();
    wildcard.push("*.".to_owned());
    for (list, overlaps) in [(names, false), (wildcard, true)] {
        let config = serde_json::json!({
            "kind": "EncryptionConfiguration",
            "apiVersion": "apiserver.config.k8s.io/v1",
            "resources": [{"resources": list, "providers": [{"identity": {}}]}],
        });
        let bytes = serde_json::to_vec(&config).expect("json");
        assert!(bytes.len() <= k8s_envelope::config::MAX_CONFIG_BYTES);
        let start = Instant::now();
        let config = EncryptionConfiguration::from_slice(&bytes).expect("parses");
        let result = config.validate();
        let took = start.elapsed();
        assert_eq!(result.is_err(), overlaps, "{result:?}");
        // Linear: well under a second in a release build, a few in a debug
        // build on a loaded machine. Quadratic: hours.
        assert!(took < Duration::from_secs(30), "took {took:?}");
    }
}

#[test]
fn the_dump_check_holds_on_etcdctl_output() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/etcd_dump");
    let mut checked = 0;
    for entry in std::fs::read_dir(seeds).expect("seeds") {
        let data = std::fs::read(entry.expect("entry").path()).expect("read");
        k8s_envelope::store::DumpStore::from_json(&data, "seed").expect("a seed parses");
        checks::check_etcd_dump(&data).unwrap_or_else(|e| panic!("etcd_dump: {e}"));
        checked += 1;
    }
    assert!(checked >= 2, "{checked}");
}

/// `etcd_dump`, `revision-at-i64-max.json` (found while writing the target,
/// before it ran): a dump whose revision was `i64::MAX` parsed, and the next
/// compare-and-swap added one to it, an overflow (a panic with debug
/// assertions, a negative revision without). Revisions and versions over
/// 2^62 are now refused when the dump is parsed.
#[test]
fn a_dump_revision_cannot_overflow() {
    let input = std::fs::read(data_dir().join("fuzz/etcd_dump/revision-at-i64-max.json"))
        .expect("kept input");
    let err = k8s_envelope::store::DumpStore::from_json(&input, "kept")
        .err()
        .expect("refused");
    assert!(err.to_string().contains("out of range"), "{err}");
    checks::check_etcd_dump(&input).expect("holds");
}

/// The snapshot check on the seeds, which are snapshots written by a real
/// etcd 3.4 (`etcdctl snapshot save` after a few puts, overwrites and
/// deletes; see `fuzz/README.md`), and on every input kept for it.
#[cfg(feature = "snapshot")]
#[test]
fn the_snapshot_check_holds_on_real_snapshots() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/snapshot");
    let mut checked = 0;
    for entry in std::fs::read_dir(seeds).expect("seeds") {
        let path = entry.expect("entry").path();
        let snapshot = k8s_envelope::snapshot::Snapshot::open(
            &path,
            k8s_envelope::snapshot::HashCheck::Verify,
        )
        .expect("a seed opens");
        assert!(snapshot.info().keys >= 2);
        let data = std::fs::read(&path).expect("read");
        checks::check_snapshot(&data).unwrap_or_else(|e| panic!("snapshot: {e}"));
        checked += 1;
    }
    assert!(checked >= 2, "{checked}");
    for (name, data) in kept("snapshot") {
        checks::check_snapshot(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// `snapshot`, `mod-revision-not-the-key-revision.db` (found by the fuzzer
/// in its first two minutes): an entry of the `key` bucket whose
/// `KeyValue.mod_revision` was not the revision it is stored under opened;
/// the store listed it at one revision and its compare-and-swap compared
/// another, so a swap at the listed revision was refused as a conflict.
/// Such an entry is now refused when the snapshot is opened.
#[cfg(feature = "snapshot")]
#[test]
fn a_snapshot_entry_must_be_stored_under_its_own_revision() {
    let path = data_dir().join("fuzz/snapshot/mod-revision-not-the-key-revision.db");
    let err =
        k8s_envelope::snapshot::Snapshot::open(&path, k8s_envelope::snapshot::HashCheck::Skip)
            .expect_err("refused");
    assert!(
        err.to_string().contains("mod_revision is not its revision"),
        "{err}"
    );
    checks::check_snapshot(&std::fs::read(&path).expect("read")).expect("holds");
}

/// The object check on Kubernetes' fixtures of every built-in kind (which
/// seed the fuzzer), and on every input kept for it.
#[cfg(feature = "objects")]
#[test]
fn the_object_check_holds_on_every_kind() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/k8s-api-testdata/HEAD");
    // Kubernetes' fixtures beside the repository: without them the test
    // fails, it never passes without asserting.
    let dir = std::fs::read_dir(&fixtures).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: Kubernetes' API fixtures, beside the repository (shared/k8s-api-testdata)",
            fixtures.display()
        )
    });
    let mut checked = 0;
    for entry in dir {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("read");
        checks::check_object(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        checked += 1;
    }
    assert!(checked >= 386, "{checked}");
    for (name, data) in kept("object") {
        checks::check_object(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// `object`, `large-number-reprinted.json` (found by the fuzzer in its
/// first minutes): a JSON object with a number too large for an integer
/// was passed through as `9.9999999999999e51`, which read again printed
/// as `9.9999999999999e+51`: the JSON of an object was not a fixed point.
/// Such numbers are now printed as Rust prints an `f64` (the shortest
/// digits that read back the same, no exponent). And
/// `large-integer-not-correctly-rounded.json` (found by the same target in
/// CI): a 51-digit integer whose shortest digits serde_json's fast float
/// parser read back one unit in the last place off; serde_json now parses
/// floats exactly (its `float_roundtrip` feature).
#[cfg(feature = "objects")]
#[test]
fn a_large_json_number_prints_the_same_when_read_again() {
    for name in [
        "large-number-reprinted.json",
        "large-integer-not-correctly-rounded.json",
    ] {
        let input = std::fs::read(data_dir().join("fuzz/object").join(name)).expect("kept input");
        checks::check_object(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
