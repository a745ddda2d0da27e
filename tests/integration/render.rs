//! Rendering an EncryptionConfiguration back to YAML: render -> parse ->
//! validate round-trips every valid conformance file and equals the parsed
//! configuration; arbitrary strings survive the quoting.

use std::path::PathBuf;

use k8s_envelope::config::{
    AesConfiguration, EncryptionConfiguration, Key, KmsConfiguration, ProviderConfiguration,
    ResourceConfiguration,
};
use proptest::prelude::*;

fn valid_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance/valid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("conformance directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 16, "conformance files present");
    files
}

#[test]
fn every_valid_conformance_file_round_trips() {
    for file in valid_files() {
        let config = EncryptionConfiguration::load(&file).expect("loads");
        let rendered = config.to_yaml();
        let reparsed = EncryptionConfiguration::from_yaml(rendered.as_bytes())
            .unwrap_or_else(|e| panic!("{}: rendered YAML does not parse: {e}", file.display()));
        assert_eq!(reparsed, config, "{}", file.display());
        reparsed
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // Rendering is stable.
        assert_eq!(reparsed.to_yaml().as_str(), rendered.as_str());
        // Serialize (JSON) round-trips too, with Kubernetes' field names.
        let json = serde_json::to_string(&config).expect("serializes");
        assert!(json.contains("\"apiVersion\""));
        let from_json = EncryptionConfiguration::from_json(json.as_bytes()).expect("JSON parses");
        assert_eq!(from_json, config, "{}", file.display());
    }
}

#[test]
fn rendered_kms_fields_in_the_apiservers_order() {
    let config = EncryptionConfiguration::from_yaml(
        br#"
kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: ["*.*"]
    providers:
      - kms: {timeout: 500ms, endpoint: "unix:///@abstract", name: "k:1", cachesize: -1}
"#,
    )
    .expect("parses");
    assert_eq!(
        config.to_yaml().as_str(),
        r#"kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources:
      - "*.*"
    providers:
      - kms:
          apiVersion: v1
          name: k:1
          cachesize: -1
          endpoint: unix:///@abstract
          timeout: 500ms
"#
    );
}

#[test]
fn empty_and_invalid_shapes_render_and_reparse() {
    let mut config = EncryptionConfiguration::default();
    assert_eq!(
        EncryptionConfiguration::from_yaml(config.to_yaml().as_bytes()).expect("parses"),
        config
    );
    config.resources.push(ResourceConfiguration::default());
    config.resources.push(ResourceConfiguration {
        resources: vec!["secrets".into()],
        providers: vec![
            ProviderConfiguration::default(),
            ProviderConfiguration {
                aesgcm: Some(AesConfiguration::default()),
                aescbc: Some(AesConfiguration::default()),
                ..Default::default()
            },
        ],
    });
    assert_eq!(
        EncryptionConfiguration::from_yaml(config.to_yaml().as_bytes()).expect("parses"),
        config
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any names, resources, secrets and endpoints come back as they were.
    #[test]
    fn arbitrary_strings_round_trip(
        resource in any::<String>(),
        name in any::<String>(),
        secret in "[ -~]{0,40}|[A-Za-z0-9+/=]{0,44}|\\PC{0,8}",
        endpoint in any::<String>(),
        kms_name in "[a-zA-Z0-9:@ #*&!-]{0,12}",
    ) {
        let config = EncryptionConfiguration {
            resources: vec![ResourceConfiguration {
                resources: vec![resource],
                providers: vec![
                    ProviderConfiguration {
                        secretbox: Some(k8s_envelope::config::SecretboxConfiguration {
                            keys: vec![Key { name, secret: secret.into() }],
                        }),
                        ..Default::default()
                    },
                    ProviderConfiguration {
                        kms: Some(KmsConfiguration {
                            api_version: "v2".into(),
                            name: kms_name,
                            endpoint,
                            timeout: Some(k8s_envelope::config::GoDuration::from_millis(1500)),
                            cachesize: None,
                        }),
                        ..Default::default()
                    },
                ],
            }],
            ..Default::default()
        };
        let rendered = config.to_yaml();
        let reparsed = EncryptionConfiguration::from_yaml(rendered.as_bytes());
        prop_assert!(reparsed.is_ok(), "{:?}", reparsed.err());
        prop_assert_eq!(reparsed.ok(), Some(config));
    }
}
