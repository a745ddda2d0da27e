//! `k8s_envelope::lint` and `k8s-envelope lint`: one test per warning, a
//! clean config, exit statuses, and no key material in any output.

use std::process::Command;

use k8s_envelope::lint::{lint, LintCode};
use k8s_envelope::EncryptionConfiguration;

/// 32 random-looking bytes, and another 32.
const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "8PHy8/T19vf4+fr7/P3+/wABAgMEBQYHCAkKCwwNDg8=";
/// 16 non-printable bytes.
const KEY_16: &str = "AAECAwQFBgcICQoLDA0ODw==";
/// "secret is secure": a passphrase.
const PASSPHRASE_16: &str = "c2VjcmV0IGlzIHNlY3VyZQ==";

fn config(rules: &str) -> EncryptionConfiguration {
    let yaml = format!(
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n{rules}"
    );
    let config = EncryptionConfiguration::from_yaml(yaml.as_bytes()).expect("parses");
    config.validate().expect("valid");
    config
}

fn codes(config: &EncryptionConfiguration) -> Vec<(LintCode, String)> {
    lint(config).into_iter().map(|w| (w.code, w.path)).collect()
}

const KMS_V2_FIRST: &str = "      - kms:\n          apiVersion: v2\n          name: k\n          endpoint: unix:///tmp/k.sock\n";

#[test]
fn kms_v2_with_a_secretbox_reader_is_clean() {
    let c = config(&format!(
        "  - resources: [secrets]\n    providers:\n{KMS_V2_FIRST}      - secretbox:\n          keys:\n            - name: k1\n              secret: {KEY_A}\n"
    ));
    assert_eq!(codes(&c), vec![]);
}

#[test]
fn identity_first() {
    let c = config(&format!(
        "  - resources: [secrets]\n    providers:\n      - identity: {{}}\n      - secretbox:\n          keys:\n            - name: k1\n              secret: {KEY_A}\n"
    ));
    assert_eq!(
        codes(&c),
        vec![(
            LintCode::IdentityFirst,
            "resources[0].providers[0].identity".into()
        )]
    );
}

#[test]
fn identity_as_a_fallback_reader_is_fine() {
    let c = config(&format!(
        "  - resources: [secrets]\n    providers:\n{KMS_V2_FIRST}      - identity: {{}}\n"
    ));
    assert_eq!(codes(&c), vec![]);
}

#[test]
fn aescbc_anywhere() {
    let c = config(&format!(
        "  - resources: [secrets]\n    providers:\n{KMS_V2_FIRST}      - aescbc:\n          keys:\n            - name: k1\n              secret: {KEY_A}\n"
    ));
    assert_eq!(
        codes(&c),
        vec![(LintCode::AesCbc, "resources[0].providers[1].aescbc".into())]
    );
}

#[test]
fn aesgcm_writing_but_not_reading() {
    let writing = config(&format!(
        "  - resources: [secrets]\n    providers:\n      - aesgcm:\n          keys:\n            - name: k1\n              secret: {KEY_A}\n"
    ));
    assert_eq!(
        codes(&writing),
        vec![(
            LintCode::AesGcmWrites,
            "resources[0].providers[0].aesgcm".into()
        )]
    );
    let reading = config(&format!(
        "  - resources: [secrets]\n    providers:\n{KMS_V2_FIRST}      - aesgcm:\n          keys:\n            - name: k1\n              secret: {KEY_A}\n"
    ));
    assert_eq!(codes(&reading), vec![]);
}

#[test]
fn kms_v1() {
    let c = config(
        "  - resources: [secrets]\n    providers:\n      - kms:\n          name: old\n          endpoint: unix:///tmp/k.sock\n",
    );
    assert_eq!(
        codes(&c),
        vec![(LintCode::KmsV1, "resources[0].providers[0].kms".into())]
    );
}

#[test]
fn the_same_key_material_twice() {
    let c = config(&format!(
        "  - resources: [secrets]\n    providers:\n{KMS_V2_FIRST}      - secretbox:\n          keys:\n            - name: k1\n              secret: {KEY_A}\n            - name: k2\n              secret: {KEY_B}\n  - resources: [configmaps]\n    providers:\n      - secretbox:\n          keys:\n            - name: other\n              secret: {KEY_A}\n"
    ));
    assert_eq!(
        codes(&c),
        vec![(
            LintCode::ReusedKey,
            "resources[1].providers[0].secretbox.keys[0].secret".into()
        )]
    );
    let text = lint(&c)[0].reason.clone();
    assert!(
        text.contains("resources[0].providers[1].secretbox.keys[0].secret"),
        "{text}"
    );
}

#[test]
fn sixteen_byte_keys() {
    let c = config(&format!(
        "  - resources: [secrets]\n    providers:\n{KMS_V2_FIRST}      - aesgcm:\n          keys:\n            - name: k1\n              secret: {KEY_16}\n"
    ));
    assert_eq!(
        codes(&c),
        vec![(
            LintCode::ShortKey,
            "resources[0].providers[1].aesgcm.keys[0].secret".into()
        )]
    );
}

#[test]
fn printable_secrets() {
    let c = config(&format!(
        "  - resources: [secrets]\n    providers:\n{KMS_V2_FIRST}      - aesgcm:\n          keys:\n            - name: k1\n              secret: {PASSPHRASE_16}\n"
    ));
    let found = codes(&c);
    let path = "resources[0].providers[1].aesgcm.keys[0].secret".to_owned();
    assert!(
        found.contains(&(LintCode::PrintableSecret, path.clone())),
        "{found:?}"
    );
    assert!(found.contains(&(LintCode::ShortKey, path)), "{found:?}");
}

#[test]
fn no_rule_for_secrets() {
    let c = config(&format!(
        "  - resources: [configmaps, deployments.apps]\n    providers:\n{KMS_V2_FIRST}"
    ));
    assert_eq!(
        codes(&c),
        vec![(LintCode::SecretsNotCovered, "resources".into())]
    );
    for covering in ["secrets", "\"*.\"", "\"*.*\""] {
        let c = config(&format!(
            "  - resources: [{covering}]\n    providers:\n{KMS_V2_FIRST}"
        ));
        assert_eq!(codes(&c), vec![], "{covering}");
    }
}

fn cli(config_yaml: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("k8s-envelope-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{}.yaml", config_yaml.len()));
    std::fs::write(&path, config_yaml).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_k8s-envelope"))
        .arg("lint")
        .arg(&path)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&path);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().expect("exit code"), text)
}

#[test]
fn cli_exit_statuses_and_no_key_material() {
    let header =
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n";
    let clean = format!("{header}  - resources: [secrets]\n    providers:\n{KMS_V2_FIRST}");
    assert_eq!(cli(&clean).0, 0);

    let weak = format!(
        "{header}  - resources: [secrets]\n    providers:\n      - aescbc:\n          keys:\n            - name: k1\n              secret: {PASSPHRASE_16}\n      - aesgcm:\n          keys:\n            - name: k2\n              secret: {PASSPHRASE_16}\n"
    );
    let (status, text) = cli(&weak);
    assert_eq!(status, 1, "{text}");
    assert!(text.contains("fix:"), "{text}");
    assert!(
        !text.contains(PASSPHRASE_16),
        "a secret was printed: {text}"
    );
    assert!(
        !text.contains("secret is secure"),
        "a secret was printed: {text}"
    );

    let invalid = format!("{header}  - resources: [secrets]\n    providers: []\n");
    assert_eq!(cli(&invalid).0, 2);
}
