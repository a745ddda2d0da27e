//! moto's server with an AWS SDK client to manage its keys, and the plugin
//! started against it.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::config::Credentials;
use aws_sdk_kms::primitives::Blob;
use aws_smithy_http_client::tls;
use k8s_envelope::kms::{GrpcClient, KmsEndpoint};
use k8s_envelope_test_support::moto::{Moto, REGION, SECRET_ACCESS_KEY};
use k8s_envelope_test_support::plugin_process::PluginProcess;

/// The plugin binary cargo built for these tests.
pub const PLUGIN: &str = env!("CARGO_BIN_EXE_kms-plugin-aws");

/// A KMS key in the emulator.
#[derive(Debug, Clone)]
pub struct Key {
    /// The key ID (a UUID).
    pub id: String,
    /// The key ARN.
    pub arn: String,
}

/// moto's server, and an SDK client of it for what an operator does.
pub struct Emulator {
    pub moto: Moto,
    rt: tokio::runtime::Runtime,
    client: aws_sdk_kms::Client,
}

impl Emulator {
    /// A fresh moto server (an empty KMS).
    pub fn start() -> Self {
        let moto = Moto::start();
        let rt = k8s_envelope_test_support::rt();
        let client = rt.block_on(async {
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https();
            let config = aws_config::defaults(BehaviorVersion::latest())
                .http_client(http)
                .endpoint_url(moto.endpoint())
                .region(Region::new(REGION))
                .credentials_provider(Credentials::new(
                    "moto-access-key",
                    SECRET_ACCESS_KEY,
                    None,
                    None,
                    "tests",
                ))
                .retry_config(RetryConfig::disabled())
                .load()
                .await;
            aws_sdk_kms::Client::new(&config)
        });
        Self { moto, rt, client }
    }

    /// CreateKey: a symmetric encryption key.
    pub fn create_key(&self) -> Key {
        self.rt.block_on(async {
            let out = self.client.create_key().send().await.expect("CreateKey");
            let meta = out.key_metadata().expect("metadata");
            Key {
                id: meta.key_id().to_owned(),
                arn: meta.arn().expect("arn").to_owned(),
            }
        })
    }

    /// CreateAlias `alias/NAME` for `key`.
    pub fn create_alias(&self, alias: &str, key: &Key) {
        self.rt.block_on(async {
            self.client
                .create_alias()
                .alias_name(alias)
                .target_key_id(&key.id)
                .send()
                .await
                .expect("CreateAlias");
        });
    }

    /// UpdateAlias: `alias` names `key` from now on.
    pub fn update_alias(&self, alias: &str, key: &Key) {
        self.rt.block_on(async {
            self.client
                .update_alias()
                .alias_name(alias)
                .target_key_id(&key.id)
                .send()
                .await
                .expect("UpdateAlias");
        });
    }

    /// RotateKeyOnDemand.
    pub fn rotate(&self, key: &Key) {
        self.rt.block_on(async {
            self.client
                .rotate_key_on_demand()
                .key_id(&key.id)
                .send()
                .await
                .expect("RotateKeyOnDemand");
        });
    }

    /// DisableKey (by its raw ID: moto answers 500 to an ARN here).
    pub fn disable(&self, key: &Key) {
        self.rt.block_on(async {
            self.client
                .disable_key()
                .key_id(&key.id)
                .send()
                .await
                .expect("DisableKey");
        });
    }

    /// EnableKey.
    pub fn enable(&self, key: &Key) {
        self.rt.block_on(async {
            self.client
                .enable_key()
                .key_id(&key.id)
                .send()
                .await
                .expect("EnableKey");
        });
    }

    /// Encrypt `plaintext` with `key` under `context`, as another client of
    /// the same KMS would.
    pub fn encrypt(&self, key: &Key, plaintext: &[u8], context: &[(&str, &str)]) -> Vec<u8> {
        let context: HashMap<String, String> = context
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.rt.block_on(async {
            self.client
                .encrypt()
                .key_id(&key.arn)
                .plaintext(Blob::new(plaintext))
                .set_encryption_context(Some(context))
                .send()
                .await
                .expect("Encrypt")
                .ciphertext_blob
                .expect("blob")
                .into_inner()
        })
    }

    /// The plugin's command for `key` with `extra` arguments, configured
    /// for this emulator and nothing else.
    pub fn command(&self, key: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(PLUGIN);
        self.moto.configure(&mut command);
        command.args(["--key", key]).args(extra);
        command
    }

    /// The plugin for `key`, serving.
    pub fn plugin(&self, key: &str, extra: &[&str]) -> PluginProcess {
        PluginProcess::spawn(self.command(key, extra))
    }
}

/// The plugin's endpoint as the library's client takes it.
pub fn endpoint(plugin: &PluginProcess) -> KmsEndpoint {
    KmsEndpoint::parse(&plugin.endpoint()).expect("endpoint")
}

/// A gRPC client of `plugin` whose calls wait `timeout` at most.
pub fn client(plugin: &PluginProcess, timeout: Duration) -> GrpcClient {
    GrpcClient::new(endpoint(plugin), timeout)
}

/// An EncryptionConfiguration with one KMS v2 provider, `aws`, at `plugin`.
pub fn config(plugin: &PluginProcess) -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - kms:\n      apiVersion: v2\n      name: aws\n      endpoint: {}\n",
        plugin.endpoint()
    )
}
