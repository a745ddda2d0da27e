//! The AWS KMS calls the plugin makes, through the official SDK, each
//! bounded in time and retried inside that time.
//!
//! Why `aws-sdk-kms` and `aws-config`: they are AWS's own SDK for Rust,
//! maintained with the service models, and `aws-config` resolves region,
//! credentials and endpoint exactly as every other AWS tool does
//! (environment, shared config and credentials files with profiles, web
//! identity for IRSA and EKS Pod Identity, container and instance metadata,
//! `AWS_ENDPOINT_URL_KMS`), refreshing temporary credentials before they
//! expire. Writing SigV4 signing and that chain by hand would be more code
//! to trust, not less. TLS is rustls with ring (ring is already in the
//! workspace for etcd's TLS), not the SDK's default aws-lc, which would add
//! a second C build of a crypto library.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyState, KeyUsageType};
use aws_smithy_http_client::tls;
use zeroize::Zeroizing;

use crate::failure::AwsFailure;
use crate::key_id::Material;

/// How long a call to AWS KMS may take, retries included, and how often
/// it is tried.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Every attempt of one call together: kept under the apiserver's KMS
    /// timeout (3 s by default), so the apiserver gets an answer.
    pub timeout: Duration,
    /// Attempts of one call (throttling, 5xx and timeouts are retried with
    /// jittered backoff while the time lasts).
    pub max_attempts: u32,
}

/// Entries asked for per page of ListKeyRotations (the most it gives).
const ROTATIONS_PER_PAGE: i32 = 1000;

/// The most pages of ListKeyRotations read for one key (AWS keeps one entry
/// per rotation: at most a few hundred in a key's life).
const MAX_ROTATION_PAGES: usize = 20;

/// What DescribeKey says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFacts {
    /// The key's ARN (whatever form of ID resolved to it).
    pub arn: String,
    /// The key state, as AWS names it (`Enabled`, `Disabled`,
    /// `PendingDeletion`, ...).
    pub state: String,
    /// The key wraps and unwraps: `KeyUsage` is `ENCRYPT_DECRYPT`, or not
    /// reported (moto leaves it out).
    pub encrypts: bool,
    /// DescribeKey's `CurrentKeyMaterialId`, where the service reports it.
    pub current_material: Option<String>,
}

impl KeyFacts {
    /// Whether Encrypt can succeed with this key, or why not.
    pub fn usable(&self) -> Result<(), String> {
        if self.state != KeyState::Enabled.as_str() {
            return Err(format!(
                "the key {} is {}, not Enabled",
                self.arn, self.state
            ));
        }
        if !self.encrypts {
            return Err(format!(
                "the key {} is not for ENCRYPT_DECRYPT (KeyUsage)",
                self.arn
            ));
        }
        Ok(())
    }
}

/// The plugin's client of AWS KMS.
#[derive(Debug, Clone)]
pub struct KmsService {
    client: aws_sdk_kms::Client,
}

impl KmsService {
    /// A client configured the standard AWS way (the module's list), with
    /// `limits`. Fails when no region is configured.
    pub async fn connect(limits: CallLimits) -> Result<Self, String> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let attempt = (limits.timeout / 2).max(Duration::from_millis(200));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(attempt.min(Duration::from_secs(1)))
            .operation_attempt_timeout(attempt)
            .operation_timeout(limits.timeout)
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(limits.max_attempts.max(1))
            .with_initial_backoff(Duration::from_millis(50))
            .with_max_backoff(Duration::from_millis(500));
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(timeouts)
            .retry_config(retries)
            .load()
            .await;
        if config.region().is_none() {
            return Err("no AWS region: set AWS_REGION, or a region in the profile".into());
        }
        Ok(Self {
            client: aws_sdk_kms::Client::new(&config),
        })
    }

    /// DescribeKey: `key` (an ID, ARN, alias name or alias ARN) resolved.
    pub async fn describe(&self, key: &str) -> Result<KeyFacts, AwsFailure> {
        let out = self
            .client
            .describe_key()
            .key_id(key)
            .send()
            .await
            .map_err(|e| AwsFailure::of(&e))?;
        let meta = out
            .key_metadata()
            .ok_or_else(|| AwsFailure::Unreachable("DescribeKey answered no KeyMetadata".into()))?;
        let arn = meta
            .arn()
            .ok_or_else(|| AwsFailure::Unreachable("DescribeKey answered no key ARN".into()))?;
        Ok(KeyFacts {
            arn: arn.to_owned(),
            state: meta
                .key_state()
                .map_or_else(|| "in no state".to_owned(), |s| s.as_str().to_owned()),
            encrypts: meta
                .key_usage()
                .is_none_or(|usage| *usage == KeyUsageType::EncryptDecrypt),
            current_material: meta.current_key_material_id().map(str::to_owned),
        })
    }

    /// Which material of the key `facts` describes wraps now: its current
    /// key material where DescribeKey reports it; else the newest rotation
    /// ListKeyRotations lists (its key material ID where the service gives
    /// one, its date otherwise); `Original` for a key never rotated or one
    /// that cannot be (a custom key store's: UnsupportedOperationException).
    pub async fn material(&self, facts: &KeyFacts) -> Result<Material, AwsFailure> {
        if let Some(id) = &facts.current_material {
            return Ok(Material::Current(id.clone()));
        }
        let mut newest: Option<((i64, u32), Option<String>)> = None;
        let mut marker: Option<String> = None;
        for _ in 0..MAX_ROTATION_PAGES {
            let out = match self
                .client
                .list_key_rotations()
                .key_id(&facts.arn)
                .limit(ROTATIONS_PER_PAGE)
                .set_marker(marker.take())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let failure = AwsFailure::of(&e);
                    if failure.code() == Some("UnsupportedOperationException") {
                        return Ok(Material::Original);
                    }
                    return Err(failure);
                }
            };
            for rotation in out.rotations() {
                let Some(date) = rotation.rotation_date() else {
                    continue;
                };
                // To the millisecond: the service keeps floating-point
                // seconds, whose last digits are noise.
                let at = (date.secs(), date.subsec_nanos() / 1_000_000);
                if newest.as_ref().is_none_or(|(seen, _)| at > *seen) {
                    newest = Some((at, rotation.key_material_id().map(str::to_owned)));
                }
            }
            match out.next_marker() {
                Some(next) if out.truncated() => marker = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(match newest {
            Some((_, Some(id))) => Material::Current(id),
            Some(((seconds, millis), None)) => Material::RotatedAt { seconds, millis },
            None => Material::Original,
        })
    }

    /// Encrypt: `plaintext` wrapped by the key `arn` under `context`.
    pub async fn encrypt(
        &self,
        arn: &str,
        plaintext: &[u8],
        context: HashMap<String, String>,
    ) -> Result<Vec<u8>, AwsFailure> {
        let out = self
            .client
            .encrypt()
            .key_id(arn)
            .plaintext(Blob::new(plaintext))
            .set_encryption_context(Some(context))
            .send()
            .await
            .map_err(|e| AwsFailure::of(&e))?;
        out.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| AwsFailure::Unreachable("Encrypt answered no CiphertextBlob".into()))
    }

    /// Decrypt: `ciphertext`, which must have been wrapped by the key `arn`
    /// under `context` (AWS KMS refuses it otherwise).
    pub async fn decrypt(
        &self,
        arn: &str,
        ciphertext: &[u8],
        context: HashMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>, AwsFailure> {
        let out = self
            .client
            .decrypt()
            .key_id(arn)
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(Some(context))
            .send()
            .await
            .map_err(|e| AwsFailure::of(&e))?;
        out.plaintext
            .map(|p| Zeroizing::new(p.into_inner()))
            .ok_or_else(|| AwsFailure::Unreachable("Decrypt answered no Plaintext".into()))
    }
}
