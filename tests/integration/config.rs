//! The `config` module: loading, validation (one test per apiserver rule, with
//! its exact field path and message), defaults, building and resource lookup,
//! secrets kept out of every error, and hostile input.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_envelope::config::{
    ConfigError, ConfigFormat, EncryptionConfiguration, FieldErrorKind, GoDuration, GroupResource,
    KmsConfiguration, KmsProviderFactory, ResourceTransformers, ValidationErrors, MAX_CONFIG_BYTES,
};
use k8s_envelope::{Error, Identity, Provider, ProviderKind};

// ---------------------------------------------------------------------------
// Helpers

const HEADER: &str = "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\n";

/// 16, 24 and 32 bytes, and 9 bytes (`secret is`).
const KEY16: &str = "c2VjcmV0IGlzIHNlY3VyZQ==";
const KEY24: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0";
const KEY32: &str = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=";
const KEY9: &str = "c2VjcmV0IGlz";

fn conformance_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/conformance")
        .join(kind)
}

fn files(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conformance_dir(kind))
        .expect("conformance directory")
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

/// Parses `HEADER` + `body` as YAML.
fn parse(body: &str) -> EncryptionConfiguration {
    EncryptionConfiguration::from_yaml(format!("{HEADER}{body}").as_bytes())
        .unwrap_or_else(|e| panic!("parse failed: {e}\n{body}"))
}

/// The validation errors of `HEADER` + `body`.
fn errors(body: &str) -> ValidationErrors {
    parse(body)
        .validate()
        .expect_err("configuration should be invalid")
}

/// Asserts that `body` has exactly one validation error, at `path`, reading
/// `message` in full.
fn assert_error(body: &str, path: &str, message: &str) {
    let errors = errors(body);
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(all, [message], "for\n{body}");
    let error = errors.iter().next().expect("one error");
    assert_eq!(error.path(), path);
    assert!(message.starts_with(&format!("{path}: ")));
    assert!(message.ends_with(error.detail()));
}

fn assert_valid(body: &str) {
    if let Err(e) = parse(body).validate() {
        panic!("unexpected errors: {e}\n{body}");
    }
}

/// One rule for `secrets` with the given provider list items (YAML, indented
/// as list items of `providers`).
fn providers(items: &str) -> String {
    format!("resources:\n  - resources: [secrets]\n    providers:\n{items}")
}

fn rule(resources: &str) -> String {
    format!("  - resources: {resources}\n    providers: [{{identity: {{}}}}]\n")
}

fn rules(rules: &[&str]) -> String {
    let mut s = String::from("resources:\n");
    for r in rules {
        s.push_str(&rule(r));
    }
    s
}

fn kms(fields: &str) -> String {
    providers(&format!("      - kms:\n{fields}"))
}

/// A KMS factory that hands out identity providers and records what it was
/// asked for.
#[derive(Default)]
struct RecordingFactory {
    calls: Mutex<Vec<(String, KmsConfiguration)>>,
}

impl KmsProviderFactory for RecordingFactory {
    fn kms_v1(&self, config: &KmsConfiguration) -> Result<Arc<dyn Provider>, Error> {
        self.calls
            .lock()
            .expect("lock")
            .push(("v1".into(), config.clone()));
        Ok(Arc::new(Identity::new()))
    }

    fn kms_v2(&self, config: &KmsConfiguration) -> Result<Arc<dyn Provider>, Error> {
        self.calls
            .lock()
            .expect("lock")
            .push(("v2".into(), config.clone()));
        Ok(Arc::new(Identity::new()))
    }
}

fn first_kind(t: &ResourceTransformers, resource: &str) -> ProviderKind {
    t.for_resource(resource).providers()[0].kind()
}

// ---------------------------------------------------------------------------
// Conformance corpus (Kubernetes' own test data)

#[test]
fn conformance_valid_files_load_validate_and_build() {
    for path in files("valid") {
        let config = EncryptionConfiguration::load(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        config
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let has_kms = config
            .resources
            .iter()
            .flat_map(|r| &r.providers)
            .any(|p| p.kms.is_some());
        if has_kms {
            assert!(
                matches!(config.build(), Err(ConfigError::KmsUnavailable { .. })),
                "{}",
                path.display()
            );
            let factory = RecordingFactory::default();
            let built = config
                .build_with_kms(&factory)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!factory.calls.lock().expect("lock").is_empty());
            assert!(built.covers("secrets"));
        } else {
            let built = config
                .build()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(built.iter().count() >= 1);
        }
    }
}

#[test]
fn conformance_invalid_files_are_rejected() {
    for path in files("invalid") {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let result = EncryptionConfiguration::load(&path);
        match name {
            "invalid-aes-gcm.yaml" => {
                // `keys:` is null: an empty list, which validation rejects.
                let errors = result.expect("parses").validate().expect_err("invalid");
                assert_eq!(
                    errors.to_string(),
                    "resources[0].providers[0].aesgcm.keys: Required value: at least one keys is required"
                );
            }
            "invalid-typo.yaml" => match result {
                Err(ConfigError::Parse { format, message }) => {
                    assert_eq!(format, ConfigFormat::Yaml);
                    // A short plain name is repeated, as kube-apiserver
                    // does; the position is given.
                    assert!(message.contains("unknown field \"pandas\""), "{message}");
                    assert!(message.contains("at line"), "{message}");
                }
                other => panic!("{name}: {other:?}"),
            },
            "kms-invalid-apiversion.yaml" => {
                let errors = result.expect("parses").validate().expect_err("invalid");
                assert_eq!(
                    errors.to_string(),
                    r#"resources[0].providers[0].kms.apiVersion: Invalid value: "v3": unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported"#
                );
            }
            "kms-invalid-config-type.yaml" => match result {
                Err(e @ ConfigError::UnexpectedType { .. }) => assert_eq!(
                    e.to_string(),
                    "got unexpected config type: apiserver.config.k8s.io/v1, Kind=EncryptionConfigurations"
                ),
                other => panic!("{name}: {other:?}"),
            },
            "kms-invalid-content.yaml" => {
                assert!(matches!(result, Err(ConfigError::Empty)), "{result:?}");
            }
            "kms-invalid-gvk.yaml" => match result {
                Err(ConfigError::UnexpectedType { kind, .. }) => assert_eq!(kind, ""),
                other => panic!("{name}: {other:?}"),
            },
            other => panic!("no expectation for invalid file {other}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Validation: one test per rule

#[test]
fn rule_no_resource_rules() {
    assert_error(
        "resources: []\n",
        "resources",
        "resources: Required value: at least one resources is required",
    );
    // Absent is the same as empty.
    assert_error(
        "",
        "resources",
        "resources: Required value: at least one resources is required",
    );
}

#[test]
fn rule_no_resources_in_a_rule() {
    assert_error(
        "resources:\n  - resources: []\n    providers: [{identity: {}}]\n",
        "resources[0].resources",
        "resources[0].resources: Required value: at least one resources[0].resources is required",
    );
}

#[test]
fn rule_no_providers() {
    assert_error(
        "resources:\n  - resources: [secrets]\n    providers: []\n",
        "resources[0].providers",
        "resources[0].providers: Required value: at least one resources[0].providers is required",
    );
    // `providers:` with no value is null, which is an empty list.
    assert_error(
        "resources:\n  - resources: [secrets]\n    providers:\n",
        "resources[0].providers",
        "resources[0].providers: Required value: at least one resources[0].providers is required",
    );
}

#[test]
fn rule_empty_provider_element() {
    assert_error(
        &providers("      - {}\n"),
        "resources[0].providers[0]",
        r#"resources[0].providers[0]: Invalid value: {"AESGCM":null,"AESCBC":null,"Secretbox":null,"Identity":null,"KMS":null}: provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity"#,
    );
    // `identity:` with no value is null, not an identity provider.
    assert_error(
        &providers("      - identity:\n"),
        "resources[0].providers[0]",
        r#"resources[0].providers[0]: Invalid value: {"AESGCM":null,"AESCBC":null,"Secretbox":null,"Identity":null,"KMS":null}: provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity"#,
    );
}

#[test]
fn rule_more_than_one_provider_in_an_element() {
    let body = providers(&format!(
        "      - identity: {{}}\n        aesgcm:\n          keys: [{{name: key1, secret: {KEY16}}}]\n        kms: {{name: k, endpoint: unix:///tmp/k.sock}}\n"
    ));
    assert_error(
        &body,
        "resources[0].providers[0]",
        r#"resources[0].providers[0]: Invalid value: {"AESGCM":{"Keys":[{"Name":"key1","Secret":"REDACTED"}]},"AESCBC":null,"Secretbox":null,"Identity":{},"KMS":{"APIVersion":"v1","Name":"k","CacheSize":1000,"Endpoint":"unix:///tmp/k.sock","Timeout":"3s"}}: more than one provider specified in a single element, should split into different list elements"#,
    );
}

#[test]
fn rule_no_keys() {
    for provider in ["aesgcm", "aescbc", "secretbox"] {
        let message = format!(
            "resources[0].providers[0].{provider}.keys: Required value: at least one keys is required"
        );
        assert_error(
            &providers(&format!("      - {provider}:\n          keys: []\n")),
            &format!("resources[0].providers[0].{provider}.keys"),
            &message,
        );
        assert_error(
            &providers(&format!("      - {provider}: {{}}\n")),
            &format!("resources[0].providers[0].{provider}.keys"),
            &message,
        );
    }
}

#[test]
fn rule_empty_key_name() {
    assert_error(
        &providers(&format!(
            "      - aesgcm:\n          keys:\n            - name: key1\n              secret: {KEY16}\n            - name: \"\"\n              secret: {KEY32}\n"
        )),
        "resources[0].providers[0].aesgcm.keys[1].name",
        "resources[0].providers[0].aesgcm.keys[1].name: Required value: name is a mandatory field for a key",
    );
}

#[test]
fn rule_empty_secret() {
    assert_error(
        &providers("      - aescbc:\n          keys:\n            - name: key1\n              secret: \"\"\n"),
        "resources[0].providers[0].aescbc.keys[0].secret",
        "resources[0].providers[0].aescbc.keys[0].secret: Required value: secret is a mandatory field for a key",
    );
    // Missing is the same as empty.
    assert_error(
        &providers("      - aescbc:\n          keys:\n            - name: key1\n"),
        "resources[0].providers[0].aescbc.keys[0].secret",
        "resources[0].providers[0].aescbc.keys[0].secret: Required value: secret is a mandatory field for a key",
    );
}

#[test]
fn rule_secret_not_base64() {
    for secret in [
        "not base64!",
        "c2VjcmV0IGlzIHNlY3VyZQ",
        "c2VjcmV0IGlzIHNlY3VyZQ=",
        "c2VjcmV0-IGlzIHNlY3VyZQ==",
    ] {
        assert_error(
            &providers(&format!(
                "      - identity: {{}}\n      - aesgcm:\n          keys:\n            - name: key1\n              secret: \"{secret}\"\n"
            )),
            "resources[0].providers[1].aesgcm.keys[0].secret",
            r#"resources[0].providers[1].aesgcm.keys[0].secret: Invalid value: "REDACTED": secrets must be base64 encoded"#,
        );
    }
}

#[test]
fn rule_secret_base64_like_go() {
    // Go's StdEncoding ignores line breaks (a YAML `|` block ends with one).
    assert_valid(&providers(&format!(
        "      - aesgcm:\n          keys:\n            - name: key1\n              secret: |\n                {KEY16}\n"
    )));
}

#[test]
fn rule_wrong_key_length_aes() {
    for provider in ["aesgcm", "aescbc"] {
        assert_error(
            &providers(&format!(
                "      - {provider}:\n          keys:\n            - name: key1\n              secret: {KEY9}\n"
            )),
            &format!("resources[0].providers[0].{provider}.keys[0].secret"),
            &format!(
                r#"resources[0].providers[0].{provider}.keys[0].secret: Invalid value: "REDACTED": secret is not of the expected length, got 9, expected one of [16 24 32]"#
            ),
        );
        for key in [KEY16, KEY24, KEY32] {
            assert_valid(&providers(&format!(
                "      - {provider}:\n          keys:\n            - name: key1\n              secret: {key}\n"
            )));
        }
    }
}

#[test]
fn rule_wrong_key_length_secretbox() {
    for key in [KEY9, KEY16, KEY24] {
        let len = base64::engine::general_purpose::STANDARD
            .decode(key)
            .expect("base64")
            .len();
        assert_error(
            &providers(&format!(
                "      - secretbox:\n          keys:\n            - name: key1\n              secret: {key}\n"
            )),
            "resources[0].providers[0].secretbox.keys[0].secret",
            &format!(
                r#"resources[0].providers[0].secretbox.keys[0].secret: Invalid value: "REDACTED": secret is not of the expected length, got {len}, expected one of [32]"#
            ),
        );
    }
    assert_valid(&providers(&format!(
        "      - secretbox:\n          keys:\n            - name: key1\n              secret: {KEY32}\n"
    )));
}

#[test]
fn rule_star_resource() {
    assert_error(
        &rules(&[r#"["*"]"#]),
        "resources[0].resources[0]",
        r#"resources[0].resources[0]: Invalid value: "*": use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"#,
    );
}

#[test]
fn rule_capital_letters() {
    assert_error(
        &rules(&["[secrets, Deployments.apps]"]),
        "resources[0].resources[1]",
        r#"resources[0].resources[1]: Invalid value: "Deployments.apps": resource name should not contain capital letters"#,
    );
}

#[test]
fn rule_events_group() {
    for resource in ["*.events.k8s.io", "events.events.k8s.io"] {
        assert_error(
            &rules(&[&format!("[\"{resource}\"]")]),
            "resources[0].resources[0]",
            &format!(
                r#"resources[0].resources[0]: Invalid value: "{resource}": '*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file"#
            ),
        );
    }
    assert_valid(&rules(&["[events]"]));
}

#[test]
fn rule_extensions_group() {
    for resource in ["*.extensions", "ingresses.extensions"] {
        assert_error(
            &rules(&[&format!("[\"{resource}\"]")]),
            "resources[0].resources[0]",
            &format!(
                r#"resources[0].resources[0]: Invalid value: "{resource}": 'extensions' group has been removed and cannot be used for encryption"#
            ),
        );
    }
}

#[test]
fn rule_resource_across_groups() {
    assert_error(
        &rules(&[r#"["secrets.*"]"#]),
        "resources[0].resources[0]",
        r#"resources[0].resources[0]: Invalid value: "secrets.*": encrypting the same resource across groups is not supported"#,
    );
}

#[test]
fn rule_resources_without_rest_api() {
    for resource in [
        "apiserveripinfo",
        "serviceipallocations",
        "servicenodeportallocations",
    ] {
        assert_error(
            &rules(&[&format!("[{resource}]")]),
            "resources[0].resources[0]",
            &format!(
                r#"resources[0].resources[0]: Invalid value: "{resource}": resources which do not have REST API/s cannot be encrypted"#
            ),
        );
    }
}

#[test]
fn rule_duplicate_resources() {
    assert_error(
        &rules(&["[secrets, configmaps, secrets]"]),
        "resources[0].resources",
        r#"resources[0].resources: Invalid value: ["secrets","configmaps","secrets"]: the same resource cannot be specified multiple times"#,
    );
}

#[test]
fn rule_overlapping_resources() {
    assert_error(
        &rules(&[r#"[secrets, "*."]"#]),
        "resources[0].resources",
        r#"resources[0].resources: Invalid value: ["secrets","*."]: using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked"#,
    );
    assert_error(
        &rules(&[r#"["deployments.apps", "*.*"]"#]),
        "resources[0].resources",
        r#"resources[0].resources: Invalid value: ["deployments.apps","*.*"]: using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked"#,
    );
    // Different groups do not overlap.
    assert_valid(&rules(&[r#"[secrets, "*.apps"]"#]));
}

#[test]
fn rule_repeated_wildcard_is_duplicate_and_overlap() {
    // The apiserver's loop reports both for a repeated wildcard.
    let all: Vec<String> = errors(&rules(&[r#"["*.apps", "*.apps"]"#]))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        all,
        [
            r#"resources[0].resources: Invalid value: ["*.apps","*.apps"]: the same resource cannot be specified multiple times"#,
            r#"resources[0].resources: Invalid value: ["*.apps","*.apps"]: using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked"#,
        ]
    );
}

#[test]
fn rule_masked_by_earlier_group_wildcard() {
    assert_error(
        &rules(&[r#"["*.apps"]"#, r#"[secrets, "deployments.apps"]"#]),
        "resources[1].resources[1]",
        r#"resources[1].resources[1]: Invalid value: "deployments.apps": resource "deployments.apps" is masked by earlier rule "*.apps""#,
    );
    assert_error(
        &rules(&[r#"["*."]"#, "[configmaps]"]),
        "resources[1].resources[0]",
        r#"resources[1].resources[0]: Invalid value: "configmaps": resource "configmaps" is masked by earlier rule "*.""#,
    );
    // The other way round is fine: the specific rule comes first.
    assert_valid(&rules(&[r#"["deployments.apps"]"#, r#"["*.apps"]"#]));
}

#[test]
fn rule_masked_by_earlier_any() {
    assert_error(
        &rules(&[r#"["*.*"]"#, r#"["widgets.example.com"]"#]),
        "resources[1].resources[0]",
        r#"resources[1].resources[0]: Invalid value: "widgets.example.com": resource "widgets.example.com" is masked by earlier rule "*.*""#,
    );
    assert_error(
        &rules(&[r#"["*.*"]"#, r#"["*.*"]"#]),
        "resources[1].resources[0]",
        r#"resources[1].resources[0]: Invalid value: "*.*": resource "*.*" is masked by earlier rule "*.*""#,
    );
}

#[test]
fn rule_kms_empty_name() {
    assert_error(
        &kms("          endpoint: unix:///tmp/kms.sock\n"),
        "resources[0].providers[0].kms.name",
        "resources[0].providers[0].kms.name: Required value: name is a mandatory field for a provider",
    );
}

#[test]
fn rule_kms_v2_name_with_colon() {
    assert_error(
        &kms("          apiVersion: v2\n          name: \"a:b\"\n          endpoint: unix:///tmp/kms.sock\n"),
        "resources[0].providers[0].kms.name",
        r#"resources[0].providers[0].kms.name: Invalid value: "a:b": invalid KMS provider name a:b, must not contain ':'"#,
    );
    // v1 names may contain ':'.
    assert_valid(&kms(
        "          name: \"a:b\"\n          endpoint: unix:///tmp/kms.sock\n",
    ));
}

#[test]
fn rule_kms_v2_duplicate_name() {
    let body = "resources:\n  - resources: [secrets]\n    providers:\n      - kms: {name: foo, endpoint: \"unix:///tmp/a.sock\"}\n  - resources: [configmaps]\n    providers:\n      - kms: {apiVersion: v2, name: foo, endpoint: \"unix:///tmp/b.sock\"}\n";
    assert_error(
        body,
        "resources[1].providers[0].kms.name",
        r#"resources[1].providers[0].kms.name: Invalid value: "foo": duplicate KMS provider name foo, names must be unique"#,
    );
    // Two v1 providers may share a name (without hot reload).
    assert_valid(&providers(
        "      - kms: {name: foo, endpoint: \"unix:///tmp/a.sock\"}\n      - kms: {name: foo, endpoint: \"unix:///tmp/b.sock\"}\n",
    ));
}

#[test]
fn rule_kms_non_positive_timeout() {
    for timeout in ["0s", "-1s", "0", "-1m30s"] {
        let shown = GoDuration::parse(timeout).expect("duration").to_string();
        assert_error(
            &kms(&format!(
                "          apiVersion: v2\n          name: k\n          endpoint: unix:///tmp/kms.sock\n          timeout: {timeout}\n"
            )),
            "resources[0].providers[0].kms.timeout",
            &format!(
                r#"resources[0].providers[0].kms.timeout: Invalid value: "{shown}": timeout should be a positive value"#
            ),
        );
    }
}

#[test]
fn rule_kms_empty_endpoint() {
    assert_error(
        &kms("          apiVersion: v2\n          name: k\n"),
        "resources[0].providers[0].kms.endpoint",
        r#"resources[0].providers[0].kms.endpoint: Invalid value: "": endpoint is a mandatory field for a kms"#,
    );
}

#[test]
fn rule_kms_endpoint_not_unix() {
    let cases = [
        (
            "tcp://127.0.0.1:8080",
            r#"unsupported scheme "tcp" for KMS provider, only unix is supported"#,
        ),
        (
            "/tmp/kms.sock",
            r#"unsupported scheme "" for KMS provider, only unix is supported"#,
        ),
        (
            "unix:///tmp/%zz",
            r#"invalid endpoint for kms provider, error: parse "unix:///tmp/%zz": invalid URL escape "%zz""#,
        ),
        (
            "://kms",
            r#"invalid endpoint for kms provider, error: parse "://kms": missing protocol scheme"#,
        ),
    ];
    for (endpoint, detail) in cases {
        assert_error(
            &kms(&format!(
                "          apiVersion: v2\n          name: k\n          endpoint: \"{endpoint}\"\n"
            )),
            "resources[0].providers[0].kms.endpoint",
            &format!(
                r#"resources[0].providers[0].kms.endpoint: Invalid value: "{endpoint}": {detail}"#
            ),
        );
    }
    for endpoint in [
        "unix:///tmp/kms.sock",
        "unix:///@abstract",
        "UNIX:///tmp/kms.sock",
    ] {
        assert_valid(&kms(&format!(
            "          apiVersion: v2\n          name: k\n          endpoint: \"{endpoint}\"\n"
        )));
    }
}

#[test]
fn rule_kms_cachesize_on_v2() {
    assert_error(
        &kms("          apiVersion: v2\n          name: k\n          endpoint: unix:///tmp/kms.sock\n          cachesize: 10\n"),
        "resources[0].providers[0].kms.cachesize",
        "resources[0].providers[0].kms.cachesize: Invalid value: 10: cachesize is not supported in v2",
    );
}

#[test]
fn rule_kms_zero_cachesize_on_v1() {
    assert_error(
        &kms("          name: k\n          endpoint: unix:///tmp/kms.sock\n          cachesize: 0\n"),
        "resources[0].providers[0].kms.cachesize",
        "resources[0].providers[0].kms.cachesize: Invalid value: 0: cachesize should be a positive value, or negative to disable",
    );
    // Negative disables the cache.
    assert_valid(&kms(
        "          name: k\n          endpoint: unix:///tmp/kms.sock\n          cachesize: -1\n",
    ));
}

#[test]
fn rule_kms_unknown_api_version() {
    // The apiserver's message names the field where it means the value;
    // kept word for word.
    assert_error(
        &kms("          apiVersion: v3\n          name: k\n          endpoint: unix:///tmp/kms.sock\n"),
        "resources[0].providers[0].kms.apiVersion",
        r#"resources[0].providers[0].kms.apiVersion: Invalid value: "v3": unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported"#,
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let body = format!(
        "resources:\n  - resources: [Secrets, \"*\"]\n    providers:\n      - aesgcm:\n          keys:\n            - name: \"\"\n              secret: {KEY9}\n      - kms:\n          apiVersion: v2\n          name: \"x:y\"\n          endpoint: tcp://kms:1\n          timeout: 0s\n          cachesize: 5\n  - resources: []\n    providers: []\n"
    );
    let errors = errors(&body);
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expected = [
        // `*` parses as `*.`, which overlaps `Secrets` (both core group).
        r#"resources[0].resources: Invalid value: ["Secrets","*"]: using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked"#,
        r#"resources[0].resources[0]: Invalid value: "Secrets": resource name should not contain capital letters"#,
        r#"resources[0].resources[1]: Invalid value: "*": use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"#,
        "resources[0].providers[0].aesgcm.keys[0].name: Required value: name is a mandatory field for a key",
        r#"resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: "REDACTED": secret is not of the expected length, got 9, expected one of [16 24 32]"#,
        r#"resources[0].providers[1].kms.name: Invalid value: "x:y": invalid KMS provider name x:y, must not contain ':'"#,
        r#"resources[0].providers[1].kms.timeout: Invalid value: "0s": timeout should be a positive value"#,
        r#"resources[0].providers[1].kms.endpoint: Invalid value: "tcp://kms:1": unsupported scheme "tcp" for KMS provider, only unix is supported"#,
        "resources[0].providers[1].kms.cachesize: Invalid value: 5: cachesize is not supported in v2",
        "resources[1].resources: Required value: at least one resources[1].resources is required",
        "resources[1].providers: Required value: at least one resources[1].providers is required",
    ];
    assert_eq!(all, expected);
    assert_eq!(errors.len(), expected.len());
    // Display is the apimachinery aggregate.
    assert_eq!(errors.to_string(), format!("[{}]", expected.join(", ")));
    // Kinds and values are available separately.
    let capital = &errors.as_slice()[1];
    assert_eq!(capital.kind(), FieldErrorKind::Invalid);
    assert_eq!(capital.path(), "resources[0].resources[0]");
    assert_eq!(capital.value(), Some("\"Secrets\""));
    assert_eq!(
        capital.detail(),
        "resource name should not contain capital letters"
    );
    let name = &errors.as_slice()[3];
    assert_eq!(name.kind(), FieldErrorKind::Required);
    assert_eq!(name.value(), None);

    // build() reports the same, as ConfigError::Invalid.
    match parse(&body).build() {
        Err(ConfigError::Invalid(e)) => assert_eq!(e, errors),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Decoding

#[test]
fn kms_defaults_are_applied() {
    let config = parse(
        "resources:\n  - resources: [secrets]\n    providers:\n      - kms: {name: a, endpoint: \"unix:///a\"}\n      - kms: {apiVersion: v2, name: b, endpoint: \"unix:///b\"}\n      - kms: {name: c, endpoint: \"unix:///c\", cachesize: 10, timeout: 1m30s}\n",
    );
    let kms: Vec<&KmsConfiguration> = config.resources[0]
        .providers
        .iter()
        .filter_map(|p| p.kms.as_ref())
        .collect();
    assert_eq!(kms[0].api_version, "v1");
    assert_eq!(kms[0].timeout, Some(GoDuration::from_secs(3)));
    assert_eq!(kms[0].cachesize, Some(1000));
    assert_eq!(kms[1].api_version, "v2");
    assert_eq!(kms[1].timeout, Some(GoDuration::from_secs(3)));
    assert_eq!(kms[1].cachesize, None, "no cache size default for v2");
    assert_eq!(kms[2].cachesize, Some(10));
    assert_eq!(kms[2].timeout, Some(GoDuration::from_secs(90)));
    assert_eq!(
        kms[2].timeout.and_then(GoDuration::to_std),
        Some(Duration::from_secs(90))
    );

    // The conformance file without a timeout gets 3s.
    let config =
        EncryptionConfiguration::load(conformance_dir("valid").join("kms-default-timeout.yaml"))
            .expect("loads");
    let kms = config.resources[0].providers[0].kms.as_ref().expect("kms");
    assert_eq!(kms.timeout, Some(GoDuration::from_secs(3)));
    assert_eq!(kms.api_version, "v1");
    assert_eq!(kms.cachesize, Some(1000));
}

#[test]
fn timeout_must_be_a_go_duration() {
    for timeout in ["10", "abc", "1x", "\"\""] {
        let result = EncryptionConfiguration::from_yaml(
            format!(
                "{HEADER}{}",
                kms(&format!("          name: k\n          endpoint: unix:///k\n          timeout: {timeout}\n"))
            )
            .as_bytes(),
        );
        match result {
            Err(ConfigError::Parse { message, .. }) => {
                assert!(message.contains("time: "), "{timeout}: {message}")
            }
            other => panic!("{timeout}: {other:?}"),
        }
    }
    for timeout in ["500ms", "1.5s", "2h45m", "100us", "100µs"] {
        assert_valid(&kms(&format!(
            "          name: k\n          endpoint: unix:///k\n          timeout: {timeout}\n"
        )));
    }
}

#[test]
fn legacy_kind_is_accepted() {
    let config = EncryptionConfiguration::from_yaml(
        format!(
            "kind: EncryptionConfig\napiVersion: v1\n{}",
            rules(&["[secrets]"])
        )
        .as_bytes(),
    )
    .expect("legacy kind");
    config.validate().expect("valid");
    assert_eq!(config.kind, "EncryptionConfig");

    let legacy =
        EncryptionConfiguration::load(conformance_dir("valid").join("legacy.yaml")).expect("loads");
    assert_eq!(legacy.api_version, "v1");
    legacy.validate().expect("valid");
}

#[test]
fn unexpected_kind_or_api_version_is_rejected() {
    let cases = [
        (
            "kind: EncryptionConfig\napiVersion: apiserver.config.k8s.io/v1\n",
            "got unexpected config type: apiserver.config.k8s.io/v1, Kind=EncryptionConfig",
        ),
        (
            "kind: EncryptionConfiguration\napiVersion: v1\n",
            "got unexpected config type: /v1, Kind=EncryptionConfiguration",
        ),
        (
            "kind: AdmissionConfiguration\napiVersion: apiserver.config.k8s.io/v1\n",
            "got unexpected config type: apiserver.config.k8s.io/v1, Kind=AdmissionConfiguration",
        ),
        (
            "apiVersion: apiserver.config.k8s.io/v1\n",
            "Object 'Kind' is missing in encryption provider configuration",
        ),
        (
            "kind: EncryptionConfiguration\n",
            "Object 'apiVersion' is missing in encryption provider configuration",
        ),
        (
            "# only a comment\n",
            "Object 'Kind' is missing in encryption provider configuration",
        ),
    ];
    for (doc, message) in cases {
        // The type is checked before the fields: `bogus` is not reported.
        let input = format!("{doc}bogus: 1\n{}", rules(&["[secrets]"]));
        match EncryptionConfiguration::from_slice(input.as_bytes()) {
            Err(e @ ConfigError::UnexpectedType { .. }) => assert_eq!(e.to_string(), message),
            other => panic!("{doc}: {other:?}"),
        }
    }
}

#[test]
fn unknown_fields_are_rejected() {
    let cases = [
        format!("{HEADER}extra: 1\n"),
        format!("{HEADER}resources:\n  - resources: [secrets]\n    provider: []\n"),
        format!("{HEADER}{}", providers("      - identity: {extra: 1}\n")),
        format!("{HEADER}{}", providers("      - aesgcm:\n          keys: []\n          key: []\n")),
        format!(
            "{HEADER}{}",
            providers(&format!(
                "      - aesgcm:\n          keys:\n            - name: k\n              secret: {KEY16}\n              Secret: {KEY16}\n"
            ))
        ),
        // Field names are case-sensitive.
        format!("{HEADER}{}", kms("          Name: k\n          endpoint: unix:///k\n")),
        format!("{HEADER}{}", kms("          name: k\n          endpoint: unix:///k\n          cacheSize: 1\n")),
    ];
    for input in cases {
        match EncryptionConfiguration::from_yaml(input.as_bytes()) {
            Err(ConfigError::Parse { format, message }) => {
                assert_eq!(format, ConfigFormat::Yaml);
                assert!(message.contains("unknown field"), "{message}");
                assert!(!message.contains(KEY16), "{message}");
            }
            other => panic!("{input}: {other:?}"),
        }
    }
    let json = br#"{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[],"extra":true}"#;
    match EncryptionConfiguration::from_slice(json) {
        Err(ConfigError::Parse { format, message }) => {
            assert_eq!(format, ConfigFormat::Json);
            assert!(message.contains("unknown field \"extra\""), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

/// A typo is named, as kube-apiserver names it (`unknown field
/// "chacha20"`), in YAML and JSON; a name that could be a key (longer than
/// 20 characters, or with other characters than letters, digits, `-` and
/// `_`: a key's base64 has 24 at least) is withheld.
#[test]
fn a_typo_is_named_and_what_could_be_a_key_is_not() {
    for (name, shown) in [
        ("chacha20", true),
        ("algorithm", true),
        ("cache-size_2", true),
        ("abcdefghijklmnopqrst", true),
        ("abcdefghijklmnopqrstu", false),
        (KEY16, false),
        ("c2VjcmV0IGlz+", false),
        ("has space", false),
    ] {
        let yaml = format!(
            "{HEADER}{}",
            providers(&format!(
                "      - aesgcm:\n          keys: []\n          {name:?}: []\n"
            ))
        );
        let json = format!(
            r#"{{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[],{name:?}:1}}"#
        );
        for (format, result) in [
            ("yaml", EncryptionConfiguration::from_yaml(yaml.as_bytes())),
            ("json", EncryptionConfiguration::from_json(json.as_bytes())),
        ] {
            let Err(ConfigError::Parse { message, .. }) = result else {
                panic!("{format} {name}: parsed");
            };
            if shown {
                assert!(
                    message.contains(&format!("unknown field \"{name}\"")),
                    "{format} {name}: {message}"
                );
            } else {
                assert!(
                    message.contains("its name is not repeated"),
                    "{format} {name}: {message}"
                );
                assert!(!message.contains(name), "{format} {name}: {message}");
            }
        }
    }
}

#[test]
fn duplicate_keys_are_rejected() {
    let yaml = format!("{HEADER}resources: []\nresources: []\n");
    match EncryptionConfiguration::from_yaml(yaml.as_bytes()) {
        Err(ConfigError::Parse { message, .. }) => {
            assert!(message.contains("duplicate"), "{message}");
            assert!(!message.contains("DuplicateKeyPolicy"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let json = br#"{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[],"resources":[]}"#;
    match EncryptionConfiguration::from_json(json) {
        Err(ConfigError::Parse { message, .. }) => {
            assert!(message.contains("duplicate field `resources`"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn json_and_yaml_are_equivalent() {
    let pairs = [
        ("aes-aes-cbc-multiple-keys.json", format!(
            "{HEADER}resources:\n  - resources: [ignored]\n    providers:\n      - aescbc:\n          keys:\n            - name: A\n              secret: Owq7A4JrJpSjrvH8kXkvl4JmOLzvZ6j9BcGRkR8OPQ4=\n            - name: B\n              secret: +qcnfOFX3aRXM9PuY7lQXDWYIQ3GWUdBc3nYBo91SCA=\n"
        )),
        ("aes-aes-cbc-multiple-providers.json", format!(
            "{HEADER}resources:\n  - resources: [ignored]\n    providers:\n      - aescbc:\n          keys: [{{name: \"1\", secret: Owq7A4JrJpSjrvH8kXkvl4JmOLzvZ6j9BcGRkR8OPQ4=}}]\n      - aescbc:\n          keys: [{{name: \"2\", secret: +qcnfOFX3aRXM9PuY7lQXDWYIQ3GWUdBc3nYBo91SCA=}}]\n"
        )),
    ];
    for (file, yaml) in pairs {
        let bytes = std::fs::read(conformance_dir("valid").join(file)).expect("read");
        let from_json = EncryptionConfiguration::from_json(&bytes).expect("json");
        // JSON is YAML too.
        let json_as_yaml = EncryptionConfiguration::from_yaml(&bytes).expect("json as yaml");
        let detected = EncryptionConfiguration::from_slice(&bytes).expect("detected");
        let from_yaml = EncryptionConfiguration::from_yaml(yaml.as_bytes()).expect("yaml");
        assert_eq!(from_json, from_yaml, "{file}");
        assert_eq!(json_as_yaml, from_yaml, "{file}");
        assert_eq!(detected, from_yaml, "{file}");
    }

    // KMS fields, defaults included.
    let json = br#"{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"kms":{"name":"a","endpoint":"unix:///a","timeout":"5s","cachesize":7}},{"kms":{"apiVersion":"v2","name":"b","endpoint":"unix:///b"}},{"identity":{}}]}]}"#;
    let yaml = format!(
        "{HEADER}resources:\n- resources: [secrets]\n  providers:\n  - kms: {{name: a, endpoint: \"unix:///a\", timeout: 5s, cachesize: 7}}\n  - kms: {{apiVersion: v2, name: b, endpoint: \"unix:///b\"}}\n  - identity: {{}}\n"
    );
    assert_eq!(
        EncryptionConfiguration::from_slice(json).expect("json"),
        EncryptionConfiguration::from_slice(yaml.as_bytes()).expect("yaml")
    );
}

#[test]
fn yaml_flow_mapping_is_not_mistaken_for_json() {
    let flow = b"{kind: EncryptionConfiguration, apiVersion: apiserver.config.k8s.io/v1, resources: [{resources: [secrets], providers: [{identity: {}}]}]}";
    let config = EncryptionConfiguration::from_slice(flow).expect("flow YAML");
    config.validate().expect("valid");
    // Broken JSON is reported as JSON.
    match EncryptionConfiguration::from_slice(br#"{"kind": "EncryptionConfiguration",}"#) {
        Err(ConfigError::Parse { format, .. }) => assert_eq!(format, ConfigFormat::Json),
        other => panic!("{other:?}"),
    }
}

#[test]
fn null_fields_are_zero_values() {
    // As in Go: `null` leaves a field at its zero value; validation reports it.
    let json = br#"{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":null,"providers":[{"aesgcm":{"keys":[{"name":null,"secret":null}]}}]}]}"#;
    let config = EncryptionConfiguration::from_json(json).expect("parses");
    let all: Vec<String> = config
        .validate()
        .expect_err("invalid")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        all,
        [
            "resources[0].resources: Required value: at least one resources[0].resources is required",
            "resources[0].providers[0].aesgcm.keys[0].name: Required value: name is a mandatory field for a key",
            "resources[0].providers[0].aesgcm.keys[0].secret: Required value: secret is a mandatory field for a key",
        ]
    );
}

#[test]
fn empty_input_is_rejected() {
    assert!(matches!(
        EncryptionConfiguration::from_slice(b""),
        Err(ConfigError::Empty)
    ));
    assert!(matches!(
        EncryptionConfiguration::from_json(b""),
        Err(ConfigError::Empty)
    ));
    assert_eq!(
        ConfigError::Empty.to_string(),
        "encryption provider configuration file is empty"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let path = conformance_dir("valid").join("does-not-exist.yaml");
    match EncryptionConfiguration::load(&path) {
        Err(ConfigError::Io { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Secrets never appear in errors

#[test]
fn no_error_contains_a_secret() {
    // Distinctive secrets: printable when decoded, so a copy of the bytes
    // would show as text too.
    let bad_length = base64::engine::general_purpose::STANDARD.encode(b"CANARY-15-bytes");
    let good = base64::engine::general_purpose::STANDARD.encode(b"CANARY-sixteen-b");
    let not_base64 = "CANARY not base64 at all!";
    let secrets: Vec<String> = vec![
        bad_length.clone(),
        good.clone(),
        not_base64.to_owned(),
        "CANARY-15-bytes".to_owned(),
        "CANARY-sixteen-b".to_owned(),
        "CANARY".to_owned(),
    ];
    let check = |what: &str, text: &str| {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{what} contains {s:?}: {text}");
        }
    };

    let body = format!(
        "resources:\n  - resources: [secrets, Secrets]\n    providers:\n      - aesgcm:\n          keys:\n            - name: k1\n              secret: {bad_length}\n            - name: k2\n              secret: \"{not_base64}\"\n      - identity: {{}}\n        secretbox:\n          keys: [{{name: k3, secret: {good}}}]\n      - aescbc:\n          keys: [{{name: k4, secret: {good}}}]\n"
    );
    let config = parse(&body);
    check("config Debug", &format!("{config:?}"));
    check("config Debug", &format!("{config:#?}"));

    let errors = config.validate().expect_err("invalid");
    // Capital letters, a bad length, not base64, two providers in one
    // element (rendered, with its secret), and that element's secretbox key
    // length.
    assert_eq!(errors.len(), 5, "{errors}");
    assert!(
        errors.to_string().contains(r#""Secret":"REDACTED""#),
        "{errors}"
    );
    check("validation Display", &errors.to_string());
    check("validation Debug", &format!("{errors:?}"));
    for e in &errors {
        check("field error", &format!("{e} {e:?} {:?}", e.value()));
    }
    let built = config.build().expect_err("invalid");
    check("build Display", &built.to_string());
    check("build Debug", &format!("{built:?}"));
    let crate_error = Error::from(built);
    check("crate error", &format!("{crate_error} {crate_error:?}"));

    // Parse errors: a secret of the wrong type, or in the wrong place.
    let parse_cases = [
        format!("{HEADER}{}", providers("      - aesgcm:\n          keys:\n            - name: k\n              secret: 1234567890\n")),
        format!("{HEADER}{}", providers("      - aesgcm:\n          keys:\n            - name: k\n              secret: [CANARY]\n")),
        format!("{HEADER}{}", providers("      - aesgcm:\n          keys:\n            - name: k\n              secret: {CANARY: x}\n")),
        format!("{HEADER}{}", providers(&format!("      - aesgcm:\n          keys: {good}\n"))),
        format!("{HEADER}{}", providers(&format!("      - aesgcm: {good}\n"))),
        format!("{HEADER}{}", providers(&format!("      - {good}\n"))),
        format!("{HEADER}resources: \"{not_base64}\"\n"),
        r#"{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aesgcm":{"keys":[{"name":"k","secret":1234567890}]}}]}]}"#.to_owned(),
        format!(
            r#"{{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{{"resources":["secrets"],"providers":[{{"aesgcm":{{"keys":"{good}"}}}}]}}]}}"#
        ),
        r#"{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aesgcm":{"keys":[{"name":"k","secret":true}]}}]}]}"#.to_owned(),
        format!(
            r#"{{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{{"resources":["secrets"],"providers":[{{"aesgcm":{{"keys":[{{"name":"k","secret":"{good}"}},"{not_base64}"]}}}}]}}]}}"#
        ),
    ];
    for input in &parse_cases {
        let e =
            EncryptionConfiguration::from_slice(input.as_bytes()).expect_err("should not parse");
        let text = format!("{e} {e:?}");
        check("parse error", &text);
        assert!(!text.contains("1234567890"), "{text}");
        assert!(matches!(e, ConfigError::Parse { .. }), "{text}");
    }
    // The secret field's own message.
    let e = EncryptionConfiguration::from_slice(parse_cases[0].as_bytes()).expect_err("invalid");
    assert!(e.to_string().contains("secret must be a string"), "{e}");
    let e = EncryptionConfiguration::from_slice(parse_cases[7].as_bytes()).expect_err("invalid");
    assert!(e.to_string().contains("secret must be a string"), "{e}");
}

// ---------------------------------------------------------------------------
// Building and lookup

fn lookup_config() -> ResourceTransformers {
    let body = format!(
        "resources:\n  - resources: [secrets]\n    providers:\n      - aesgcm:\n          keys: [{{name: k1, secret: {KEY16}}}]\n  - resources: [\"*.apps\"]\n    providers:\n      - aescbc:\n          keys: [{{name: k2, secret: {KEY32}}}]\n  - resources: [\"*.\"]\n    providers:\n      - secretbox:\n          keys: [{{name: k3, secret: {KEY32}}}]\n  - resources: [\"*.*\"]\n    providers:\n      - aescbc:\n          keys: [{{name: k4, secret: {KEY24}}}]\n      - identity: {{}}\n"
    );
    parse(&body).build().expect("builds")
}

#[test]
fn lookup_exact_resource() {
    let t = lookup_config();
    assert_eq!(first_kind(&t, "secrets"), ProviderKind::AesGcm);
    let stored = t
        .for_resource("secrets")
        .encrypt_blocking(b"value", "/registry/secrets/default/a".into())
        .expect("encrypts");
    assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:k1:"));
}

#[test]
fn lookup_group_wildcard() {
    let t = lookup_config();
    assert_eq!(first_kind(&t, "deployments.apps"), ProviderKind::AesCbc);
    assert_eq!(first_kind(&t, "statefulsets.apps"), ProviderKind::AesCbc);
    let stored = t
        .for_resource("deployments.apps")
        .encrypt_blocking(b"value", "/registry/deployments/default/a".into())
        .expect("encrypts");
    assert!(stored.starts_with(b"k8s:enc:aescbc:v1:k2:"));
}

#[test]
fn lookup_core_group_wildcard() {
    let t = lookup_config();
    assert_eq!(first_kind(&t, "configmaps"), ProviderKind::Secretbox);
    assert_eq!(
        t.for_group_resource(&GroupResource::new("", "pods"))
            .providers()[0]
            .kind(),
        ProviderKind::Secretbox
    );
}

#[test]
fn lookup_any_group() {
    let t = lookup_config();
    let custom = t.for_resource("widgets.example.com");
    assert_eq!(custom.providers().len(), 2);
    let stored = custom
        .encrypt_blocking(b"value", "/registry/example.com/widgets/default/a".into())
        .expect("encrypts");
    assert!(stored.starts_with(b"k8s:enc:aescbc:v1:k4:"));
    assert!(t.covers("widgets.example.com"));
}

#[test]
fn lookup_uncovered_resource_is_identity() {
    let body = format!(
        "resources:\n  - resources: [secrets, \"*.apps\"]\n    providers:\n      - aesgcm:\n          keys: [{{name: k1, secret: {KEY16}}}]\n"
    );
    let t = parse(&body).build().expect("builds");
    assert!(!t.covers("configmaps"));
    assert!(!t.covers("widgets.example.com"));
    let identity = t.for_resource("configmaps");
    assert_eq!(identity.providers().len(), 1);
    assert_eq!(identity.providers()[0].kind(), ProviderKind::Identity);
    let sk = "/registry/configmaps/default/a".into();
    assert_eq!(
        identity.encrypt_blocking(b"plain", sk).expect("identity"),
        b"plain"
    );
    // ...which refuses to read encrypted values.
    let encrypted = t
        .for_resource("secrets")
        .encrypt_blocking(b"x", sk)
        .expect("encrypts");
    assert!(identity.decrypt_blocking(&encrypted, sk).is_err());
}

#[test]
fn resource_in_two_rules_gets_both_provider_lists() {
    let body = format!(
        "resources:\n  - resources: [secrets]\n    providers:\n      - aesgcm:\n          keys: [{{name: k1, secret: {KEY16}}}]\n  - resources: [secrets, configmaps]\n    providers:\n      - secretbox:\n          keys: [{{name: k2, secret: {KEY32}}}]\n      - identity: {{}}\n"
    );
    let t = parse(&body).build().expect("builds");
    let kinds: Vec<ProviderKind> = t
        .for_resource("secrets")
        .providers()
        .iter()
        .map(|p| p.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            ProviderKind::AesGcm,
            ProviderKind::Secretbox,
            ProviderKind::Identity
        ]
    );
    assert_eq!(t.for_resource("configmaps").providers().len(), 2);
    let listed: Vec<String> = t.iter().map(|(gr, _)| gr.to_string()).collect();
    assert_eq!(listed, ["configmaps", "secrets"]);
}

#[test]
fn build_with_kms_uses_the_factory_with_defaults() {
    let config = parse(&providers(
        "      - kms: {apiVersion: v2, name: two, endpoint: \"unix:///@kms\"}\n      - kms: {name: one, endpoint: \"unix:///tmp/kms.sock\", timeout: 7s}\n",
    ));
    match config.build() {
        Err(e @ ConfigError::KmsUnavailable { .. }) => {
            assert!(
                e.to_string()
                    .starts_with(r#"kms provider "two" needs a KMS plugin connection"#),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    let factory = RecordingFactory::default();
    let t = config.build_with_kms(&factory).expect("builds");
    assert_eq!(t.for_resource("secrets").providers().len(), 2);
    let calls = factory.calls.lock().expect("lock");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].0, "v2");
    assert_eq!(calls[0].1.name, "two");
    assert_eq!(calls[0].1.timeout, Some(GoDuration::from_secs(3)));
    assert_eq!(calls[0].1.cachesize, None);
    assert_eq!(calls[1].0, "v1");
    assert_eq!(calls[1].1.name, "one");
    assert_eq!(calls[1].1.timeout, Some(GoDuration::from_secs(7)));
    assert_eq!(calls[1].1.cachesize, Some(1000));
}

#[test]
fn factory_errors_name_the_provider() {
    struct Failing;
    impl KmsProviderFactory for Failing {
        fn kms_v1(&self, _: &KmsConfiguration) -> Result<Arc<dyn Provider>, Error> {
            Err(Error::NoMatchingPrefix)
        }
        fn kms_v2(&self, _: &KmsConfiguration) -> Result<Arc<dyn Provider>, Error> {
            Err(Error::NoMatchingPrefix)
        }
    }
    let config = parse(&providers(
        "      - identity: {}\n      - kms: {name: one, endpoint: \"unix:///tmp/kms.sock\"}\n",
    ));
    match config.build_with_kms(&Failing) {
        Err(e @ ConfigError::Provider { .. }) => {
            assert_eq!(
                e.to_string(),
                "resources[0].providers[1]: no matching prefix found"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn configuration_built_in_code() {
    use k8s_envelope::config::{
        AesConfiguration, Key, ProviderConfiguration, ResourceConfiguration,
    };
    let config = EncryptionConfiguration {
        resources: vec![ResourceConfiguration {
            resources: vec!["secrets".into()],
            providers: vec![ProviderConfiguration {
                aesgcm: Some(AesConfiguration {
                    keys: vec![Key {
                        name: "k".into(),
                        secret: KEY32.into(),
                    }],
                }),
                ..Default::default()
            }],
        }],
        ..Default::default()
    };
    let t = config.build().expect("builds");
    assert_eq!(first_kind(&t, "secrets"), ProviderKind::AesGcm);
}

// ---------------------------------------------------------------------------
// Hostile input

#[test]
fn alias_bomb_fails_fast() {
    // Nine levels of nine aliases: 9^9 (387 million) strings once expanded.
    let mut bomb = String::from(HEADER);
    bomb.push_str("resources:\n  - resources: &r0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n    providers: [{identity: {}}]\n");
    for i in 1..10 {
        let refs = vec![format!("*r{}", i - 1); 9].join(", ");
        bomb.push_str(&format!(
            "  - resources: &r{i} [{refs}]\n    providers: [{{identity: {{}}}}]\n"
        ));
    }
    // The same, hidden in an unknown top-level field.
    let mut hidden = String::from(HEADER);
    hidden.push_str("x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*x{}", i - 1); 9].join(", ");
        hidden.push_str(&format!("x{i}: &x{i} [{refs}]\n"));
    }
    for input in [bomb, hidden] {
        let start = Instant::now();
        let result = EncryptionConfiguration::from_slice(input.as_bytes());
        let elapsed = start.elapsed();
        assert!(
            matches!(result, Err(ConfigError::Parse { .. })),
            "{result:?}"
        );
        assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
    }
}

#[test]
fn a_few_aliases_are_fine() {
    let body = format!(
        "resources:\n  - resources: [secrets]\n    providers: &p\n      - aesgcm:\n          keys: [{{name: k1, secret: {KEY16}}}]\n  - resources: [configmaps]\n    providers: *p\n"
    );
    let t = parse(&body).build().expect("builds");
    assert_eq!(first_kind(&t, "configmaps"), ProviderKind::AesGcm);
}

#[test]
fn oversized_input_is_rejected_before_parsing() {
    let mut big = format!("{HEADER}{}#", rules(&["[secrets]"])).into_bytes();
    big.resize(MAX_CONFIG_BYTES + 1, b'x');
    match EncryptionConfiguration::from_slice(&big) {
        Err(ConfigError::TooLarge { len, limit }) => {
            assert_eq!(len, MAX_CONFIG_BYTES as u64 + 1);
            assert_eq!(limit, MAX_CONFIG_BYTES as u64);
        }
        other => panic!("{other:?}"),
    }
    // Exactly at the limit is parsed.
    big.truncate(MAX_CONFIG_BYTES);
    EncryptionConfiguration::from_slice(&big).expect("at the limit");

    // The same through a file.
    let path = std::env::temp_dir().join(format!("k8s-envelope-big-{}.yaml", std::process::id()));
    big.push(b'x');
    std::fs::write(&path, &big).expect("write");
    let result = EncryptionConfiguration::load(&path);
    std::fs::remove_file(&path).expect("remove");
    assert!(
        matches!(result, Err(ConfigError::TooLarge { .. })),
        "{result:?}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000);
    let closed = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let inputs = [
        deep.clone(),
        format!("{HEADER}resources: {deep}"),
        format!("{HEADER}resources: {closed}"),
        format!("{HEADER}unknown: {closed}"),
        "{a: ".repeat(100_000),
        format!("{{\"kind\": {deep}"),
        format!(
            "{{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":{closed}}}"
        ),
        format!(
            "{{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"x\":{closed}}}"
        ),
        // Block nesting.
        (0..2_000).map(|i| format!("{}- \n", " ".repeat(i))).collect(),
        (0..2_000).map(|i| format!("{}a:\n", " ".repeat(i))).collect(),
    ];
    for input in inputs {
        let start = Instant::now();
        let result = EncryptionConfiguration::from_slice(input.as_bytes());
        assert!(
            matches!(result, Err(ConfigError::Parse { .. })),
            "{:?}",
            result.map(|_| ())
        );
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}

#[test]
fn garbage_never_panics() {
    let inputs: Vec<Vec<u8>> = vec![
        b"\xff\xfe\x00".to_vec(),
        b"{".to_vec(),
        b"}".to_vec(),
        b"kind: [".to_vec(),
        b"---\n---\n".to_vec(),
        b"- a\n- b\n".to_vec(),
        b"\"just a string\"".to_vec(),
        b"null".to_vec(),
        b"kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources: 5\n".to_vec(),
        b"kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources: [{resources: [secrets], providers: [{kms: {name: k, endpoint: \"unix:///x\", cachesize: 99999999999}}]}]\n".to_vec(),
        b"kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources: [{resources: [secrets], providers: [{kms: {name: k, endpoint: \"unix:///x\", timeout: 99999999999h}}]}]\n".to_vec(),
        b"kind: !!binary AAAA\n".to_vec(),
        b"&a [*a]".to_vec(),
        b"<<: *x\n".to_vec(),
    ];
    for input in inputs {
        assert!(
            EncryptionConfiguration::from_slice(&input).is_err(),
            "{:?}",
            String::from_utf8_lossy(&input)
        );
    }
}
