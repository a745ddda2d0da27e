//! A conformance check of a running KMS plugin: does it answer the way
//! kube-apiserver requires?
//!
//! An apiserver pointed at a plugin that reports an empty key ID, wraps a
//! DEK into more than 1 KiB or answers after the timeout fails at start-up
//! or on its first write. [`PluginCheck`] finds those before it does: it
//! talks to the plugin exactly as the apiserver's KMS provider would and
//! reports each rule as a [`CheckResult`].
//!
//! ```no_run
//! use k8s_envelope_kms_plugin::check::PluginCheck;
//! use k8s_envelope::kms::KmsEndpoint;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let endpoint = KmsEndpoint::parse("unix:///var/run/kms-plugin.sock")?;
//! let report = PluginCheck::new(endpoint).run().await?;
//! for check in report.checks() {
//!     println!("{:<24} {:<5} {}", check.id, check.outcome, check.detail);
//! }
//! assert!(report.passed(false), "the apiserver would not work with this plugin");
//! # Ok(()) }
//! ```
//!
//! What is checked, KMS v2 ([`CheckedApi::V2`], the default), in order:
//!
//! | id | rule (kube-apiserver's) |
//! |---|---|
//! | `status.answers` | `Status` answers |
//! | `status.version` | version `v2` (or the older `v2beta1`) |
//! | `status.healthz` | healthz `ok` |
//! | `status.key_id` | a key ID, non-empty, at most 1 KiB |
//! | `encrypt.answers` | `Encrypt` of a 32-byte DEK answers |
//! | `encrypt.key_id` | the key ID `Status` reported |
//! | `encrypt.ciphertext` | non-empty, at most 1 KiB |
//! | `encrypt.dek_concealed` | the DEK is not in the ciphertext, as bytes, base64 (either alphabet) or hex (this crate's rule: the apiserver does not check; [`PluginCheck::allow_insecure`] makes it a warning, for a test mock) |
//! | `encrypt.annotations` | keys are fully qualified domain names; keys and values at most 32 KiB |
//! | `decrypt.round_trip` | `Decrypt`, with another request UID than the `Encrypt`, gives the DEK back |
//! | `concurrency` | 16 round trips at once all succeed |
//! | `status.key_id_stable` | a later `Status` reports the same key ID |
//!
//! and then the advisory checks, which warn rather than fail since the
//! apiserver does not need them: a 1 MiB round trip (`large_round_trip`),
//! a corrupted ciphertext refused (`corrupted_ciphertext`), a key ID the
//! plugin never issued refused (`foreign_key_id`) and a socket only its
//! owner can connect to (`socket_permissions`). Last, `latency`: a call
//! that did not answer within the timeout fails it; the slowest call taking
//! half the timeout or more warns.
//!
//! KMS v1 ([`CheckedApi::V1`]): `version.answers`, `version.api`
//! (`v1beta1`), `encrypt.answers`, `encrypt.ciphertext` (non-empty, at most
//! 65535 bytes, the length prefix the apiserver stores),
//! `encrypt.dek_concealed`, `decrypt.round_trip`,
//! `concurrency`, the advisory `large_round_trip`, `corrupted_ciphertext`
//! and `socket_permissions`, and `latency`.
//!
//! A call that times out makes every later call pointless (the plugin is
//! stuck, and each would wait the timeout again): the checks that would need
//! one are [skipped](Outcome::Skip), so a run takes at most about one
//! timeout more than the plugin's own answers.
//!
//! Nothing a plugin returns is echoed: the DEKs are random and never
//! printed, key IDs and messages are cut to 512 bytes with control
//! characters replaced.

mod calls;
mod clear;
mod probe;
mod socket;
mod v1;
mod v2;

use std::fmt;
use std::time::Duration;

use k8s_envelope::kms::{GrpcClient, KmsEndpoint, DEFAULT_TIMEOUT};

pub use self::calls::CONCURRENT_ROUND_TRIPS;

/// Checks a running KMS plugin against kube-apiserver's rules.
#[derive(Debug, Clone)]
pub struct PluginCheck {
    endpoint: KmsEndpoint,
    timeout: Duration,
    api: CheckedApi,
    allow_insecure: bool,
}

/// Which plugin API a [`PluginCheck`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CheckedApi {
    /// KMS v2 (`v2.KeyManagementService`).
    #[default]
    V2,
    /// KMS v1 (`v1beta1.KeyManagementService`, deprecated upstream).
    V1,
}

impl fmt::Display for CheckedApi {
    /// `v2` or `v1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckedApi::V2 => "v2",
            CheckedApi::V1 => "v1",
        })
    }
}

impl PluginCheck {
    /// A check of the plugin at `endpoint`, KMS v2, with the apiserver's
    /// default timeout of 3 s per call.
    pub fn new(endpoint: KmsEndpoint) -> Self {
        Self {
            endpoint,
            timeout: DEFAULT_TIMEOUT,
            api: CheckedApi::V2,
            allow_insecure: false,
        }
    }

    /// The timeout of every call (the provider's `timeout` in the
    /// EncryptionConfiguration).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The API to check.
    #[must_use]
    pub fn api(mut self, api: CheckedApi) -> Self {
        self.api = api;
        self
    }

    /// Lets a plugin that leaves the DEK in clear (a test mock, such as
    /// Kubernetes' base64 one) pass, `encrypt.dek_concealed` warning
    /// instead of failing.
    #[must_use]
    pub fn allow_insecure(mut self, allow: bool) -> Self {
        self.allow_insecure = allow;
        self
    }

    /// Runs every check. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`CheckError::NotListening`] when nothing accepts a connection on
    /// the socket. Everything the plugin answers, or fails to answer in
    /// time, is a result in the report, not an error.
    pub async fn run(&self) -> Result<CheckReport, CheckError> {
        let probe = connect(&self.endpoint).await;
        if let Err(e) = probe {
            return Err(CheckError::NotListening {
                endpoint: self.endpoint.to_string(),
                reason: e.to_string(),
            });
        }
        drop(probe);
        let client = GrpcClient::new(self.endpoint.clone(), self.timeout);
        let checks = match self.api {
            CheckedApi::V2 => v2::run(&client, &self.endpoint, self.allow_insecure).await,
            CheckedApi::V1 => v1::run(&client, &self.endpoint, self.allow_insecure).await,
        };
        Ok(CheckReport {
            endpoint: self.endpoint.to_string(),
            api: self.api,
            timeout: self.timeout,
            checks,
        })
    }
}

/// The plugin could not be checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// Nothing accepts connections at the endpoint (no socket file,
    /// connection refused, no such abstract name).
    #[error("no KMS plugin listens on {endpoint}: {reason}")]
    NotListening {
        /// The endpoint.
        endpoint: String,
        /// Why the connection failed.
        reason: String,
    },
}

/// What a [`PluginCheck`] found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    endpoint: String,
    api: CheckedApi,
    timeout: Duration,
    checks: Vec<CheckResult>,
}

impl CheckReport {
    /// The endpoint checked, as `unix:///...`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The API checked.
    pub fn api(&self) -> CheckedApi {
        self.api
    }

    /// The timeout of every call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Every check, in the order run.
    pub fn checks(&self) -> &[CheckResult] {
        &self.checks
    }

    /// The result of the check `id`, if it was run.
    pub fn check(&self, id: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// How many checks have `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|c| c.outcome == outcome).count()
    }

    /// Whether no check failed; with `strict`, whether none warned either.
    pub fn passed(&self, strict: bool) -> bool {
        self.checks.iter().all(|c| match c.outcome {
            Outcome::Fail => false,
            Outcome::Warn => !strict,
            Outcome::Pass | Outcome::Skip => true,
        })
    }
}

/// One rule and how the plugin met it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a plain record of a check, read field by field"
)]
pub struct CheckResult {
    /// A stable name, like `encrypt.key_id` (see the [module docs](self)).
    pub id: &'static str,
    /// Whether kube-apiserver needs this (a failure) or it is advice (a
    /// warning).
    pub required: bool,
    /// What was found.
    pub outcome: Outcome,
    /// Why, in a sentence: what was expected and what came back.
    pub detail: String,
}

/// How a plugin met one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It did.
    Pass,
    /// It did not, and kube-apiserver does not need it to (or, for
    /// `latency`, only just did).
    Warn,
    /// It did not, and kube-apiserver needs it to.
    Fail,
    /// Not checked: a call it needs could not be made (an earlier call
    /// failed or timed out).
    Skip,
}

impl Outcome {
    /// `pass`, `warn`, `fail` or `skip`: the word the CLI prints and its
    /// JSON carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl CheckResult {
    fn new(id: &'static str, required: bool, outcome: Outcome, detail: impl Into<String>) -> Self {
        Self {
            id,
            required,
            outcome,
            detail: detail.into(),
        }
    }

    /// A rule kube-apiserver requires: pass, or fail with `detail`.
    fn required(id: &'static str, verdict: Result<String, String>) -> Self {
        match verdict {
            Ok(detail) => Self::new(id, true, Outcome::Pass, detail),
            Err(detail) => Self::new(id, true, Outcome::Fail, detail),
        }
    }

    /// Advice: pass, or warn with `detail`.
    fn advisory(id: &'static str, verdict: Result<String, String>) -> Self {
        match verdict {
            Ok(detail) => Self::new(id, false, Outcome::Pass, detail),
            Err(detail) => Self::new(id, false, Outcome::Warn, detail),
        }
    }

    /// Not run, because of `why`.
    fn skipped(id: &'static str, required: bool, why: &str) -> Self {
        Self::new(id, required, Outcome::Skip, format!("not checked: {why}"))
    }
}

#[cfg(test)]
pub(crate) mod tests;

/// A connection to `endpoint`, to tell "nothing listens" apart from what
/// the plugin answers.
async fn connect(endpoint: &KmsEndpoint) -> std::io::Result<tokio::net::UnixStream> {
    tokio::net::UnixStream::connect_addr(&endpoint.socket_addr()?.into()).await
}
