//! The vectors written by the Go reference of kube-apiserver's transformers
//! (tests/data/vectors, copied from the project's shared vectors): every
//! static-key line must read as the vector says, and every plaintext must
//! survive our own encrypt-then-decrypt.
//!
//! Lines whose config has a KMS provider need a KMS plugin and are covered by
//! the KMS tests.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use k8s_envelope::EncryptionConfiguration;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vector {
    name: String,
    config: serde_json::Value,
    resource: String,
    storage_key: String,
    plaintext_b64: String,
    stored_b64: String,
    expect: String,
    #[serde(default)]
    stale: bool,
}

fn uses_kms(config: &serde_json::Value) -> bool {
    config["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["providers"].as_array().into_iter().flatten())
        .any(|provider| provider.get("kms").is_some())
}

fn static_vectors() -> Vec<(String, Vector)> {
    let mut vectors = Vec::new();
    for (at, line) in k8s_envelope_test_support::fixtures::vectors() {
        let vector: Vector = serde_json::from_value(line).expect("well-formed vector line");
        if !uses_kms(&vector.config) {
            vectors.push((format!("{at}: {}", vector.name), vector));
        }
    }
    vectors
}

fn transformers_for(vector: &Vector) -> k8s_envelope::ResourceTransformers {
    let json = serde_json::to_vec(&vector.config).expect("config serializes");
    EncryptionConfiguration::from_json(&json)
        .expect("vector config parses")
        .build()
        .expect("vector config builds")
}

#[test]
fn every_static_vector_reads_as_the_go_reference_says() {
    let vectors = static_vectors();
    // 119 of the 187 lines in each seed file use only static-key providers.
    assert_eq!(
        vectors.len(),
        3 * 119,
        "unexpected number of static-key vectors"
    );
    let mut failures = Vec::new();
    for (label, vector) in &vectors {
        let transformers = transformers_for(vector);
        let transformer = transformers.for_resource(&vector.resource);
        let stored = BASE64
            .decode(&vector.stored_b64)
            .expect("stored_b64 is base64");
        let result = transformer.decrypt_blocking(&stored, vector.storage_key.as_str().into());
        match (vector.expect.as_str(), result) {
            ("ok", Ok(read)) => {
                let expected = BASE64.decode(&vector.plaintext_b64).expect("plaintext_b64");
                if read.plaintext != expected || read.stale != vector.stale {
                    failures.push(format!(
                        "{label}: got {} bytes stale={}, want {} bytes stale={}",
                        read.plaintext.len(),
                        read.stale,
                        expected.len(),
                        vector.stale
                    ));
                }
            }
            ("ok", Err(e)) => failures.push(format!("{label}: unexpected error: {e}")),
            ("error", Ok(read)) => failures.push(format!(
                "{label}: expected an error, read {} bytes",
                read.plaintext.len()
            )),
            ("error", Err(_)) => {}
            (other, _) => failures.push(format!("{label}: unknown expectation {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} vector(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_static_vector_plaintext_round_trips_and_is_current() {
    let mut checked = 0;
    for (label, vector) in static_vectors() {
        let transformers = transformers_for(&vector);
        let transformer = transformers.for_resource(&vector.resource);
        let plaintext = BASE64.decode(&vector.plaintext_b64).expect("plaintext_b64");
        let key = vector.storage_key.as_str().into();
        let stored = transformer
            .encrypt_blocking(&plaintext, key)
            .unwrap_or_else(|e| panic!("{label}: encrypt failed: {e}"));
        if stored.starts_with(k8s_envelope::ENCRYPTED_PREFIX) && stored == plaintext {
            // Identity wrote a plaintext that looks encrypted: the apiserver
            // refuses to read it back, and so must we.
            assert!(
                transformer.decrypt_blocking(&stored, key).is_err(),
                "{label}"
            );
            checked += 1;
            continue;
        }
        let read = transformer
            .decrypt_blocking(&stored, key)
            .unwrap_or_else(|e| panic!("{label}: decrypt of our own value failed: {e}"));
        assert_eq!(read.plaintext, plaintext, "{label}");
        assert!(!read.stale, "{label}: our own write reads as stale");
        checked += 1;
    }
    assert_eq!(checked, 3 * 119);
}
