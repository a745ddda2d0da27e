//! `k8s-envelope bench`: the JSON lines scripts read, and the table.

use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_k8s-envelope"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run k8s-envelope")
}

#[test]
fn json_lines_have_one_object_per_provider_and_size() {
    let out = bench(&[
        "--providers",
        "identity,aesgcm,aescbc,secretbox,kmsv1,kmsv2,kmsv2-key",
        "--sizes",
        "0,1024",
        "--seconds",
        "0.01",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 14);
    let keys = [
        "provider",
        "size",
        "write_ns",
        "read_ns",
        "write_allocs",
        "read_allocs",
    ];
    for line in &lines {
        let object = line.as_object().expect("object");
        assert_eq!(object.len(), keys.len(), "{line}");
        for key in keys {
            assert!(object.contains_key(key), "{key} missing in {line}");
        }
        assert!(line["write_ns"].as_f64().expect("number") > 0.0);
        assert!(line["read_ns"].as_f64().expect("number") > 0.0);
    }
    let aesgcm = lines
        .iter()
        .find(|l| l["provider"] == "aesgcm" && l["size"] == 1024)
        .expect("aesgcm at 1 KiB");
    // The hot paths allocate only their output (tests/allocations.rs).
    assert_eq!(aesgcm["write_allocs"], 1.0);
    assert_eq!(aesgcm["read_allocs"], 1.0);
}

#[test]
fn the_table_names_the_backend_and_every_provider() {
    let out = bench(&[
        "--providers",
        "aesgcm,kmsv2",
        "--sizes",
        "256",
        "--seconds",
        "0.01",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("AES backend: "), "{table}");
    assert!(table.contains("allocs/write"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("aesgcm ")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("kmsv2 ")), "{table}");
}

#[test]
fn bad_options_are_usage_errors() {
    for args in [
        &["--providers", "rot13"][..],
        &["--seconds", "0"],
        &["--sizes", "1073741824"],
    ] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
