//! Whether a store can be read with a configuration: every value read,
//! decrypted and decoded as the apiserver would, what the readable values
//! depend on, and each value that cannot be read with why.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::engine::{walk, Outcome, Progress, ValueReport, WalkConfig, WalkError, WalkSink};
use super::origin::ValueOrigin;
use crate::config::{EncryptionConfiguration, GroupResource, ResourceTransformers};
use crate::kms::{KmsErrorKind, StatusCode};
use crate::rotation::rule_for_resource;
use crate::store::{KeyLayout, ListingReport, ObjectKey, Store, DEFAULT_ETCD_PREFIX};
use crate::Error;

/// How many objects of one resource a LIST through the apiserver reports
/// as unreadable before it stops listing them (kube-apiserver's limit on
/// the corrupt objects one list collects).
pub const LIST_ERROR_LIMIT: u64 = 100;

/// How to verify. [`Default`] reads every key under the apiserver's
/// default prefix (`/registry/`); the `with_*` methods change one option.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Only keys that start with this are read.
    pub prefix: Vec<u8>,
    /// How to tell each key's resource, namespace and name.
    pub layout: KeyLayout,
    /// How many values are decrypted and decoded at once. Default 4.
    pub concurrency: usize,
    /// How many keys one listing call returns. Default 100.
    pub page_size: usize,
    /// Counts the values read as the walk goes, if given.
    pub progress: Option<Progress>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self::new(format!("{DEFAULT_ETCD_PREFIX}/"))
    }
}

impl VerifyOptions {
    /// Options for `prefix` with the defaults.
    pub fn new(prefix: impl Into<Vec<u8>>) -> Self {
        Self {
            prefix: prefix.into(),
            layout: KeyLayout::default(),
            concurrency: 4,
            page_size: 100,
            progress: None,
        }
    }

    /// These options with another `layout`: how to tell each key's
    /// resource, namespace and name.
    pub fn with_layout(mut self, layout: KeyLayout) -> Self {
        self.layout = layout;
        self
    }

    /// These options with another `concurrency`: how many values are
    /// decrypted and decoded at once.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// These options with another `page_size`: how many keys one listing
    /// call returns.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size;
        self
    }

    /// These options with a `progress` count of the values read.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }
}

/// Why a value cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum UnreadableReason {
    /// A `k8s:enc:` value whose prefix no encrypting provider of its rule
    /// claims (identity reads only values without that prefix, as in the
    /// apiserver), or a plaintext value in a rule without identity.
    NoProvider,
    /// Its provider is there, but has no key of the name the value needs.
    UnknownKey,
    /// The key is there and the value does not authenticate (or is cut
    /// short): damaged or tampered with.
    AuthenticationFailed,
    /// The KMS plugin refused to decrypt its DEK or seed as invalid (gRPC
    /// `INVALID_ARGUMENT`, `NOT_FOUND`, `FAILED_PRECONDITION`,
    /// `OUT_OF_RANGE` or `DATA_LOSS`: an unknown key ID, a ciphertext it
    /// does not take).
    KmsRefused,
    /// The KMS plugin did not answer, or failed in a way that says nothing
    /// about the value (unavailable, a timeout, an internal or permission
    /// error, an answer that breaks the protocol): not a verdict on it.
    KmsUnavailable,
    /// It decrypts, but what it holds is not a Kubernetes object.
    NotAnObject,
}

impl UnreadableReason {
    /// `no-provider`, `unknown-key`, `authentication-failed`,
    /// `kms-refused`, `kms-unavailable` or `not-an-object`: the words of the
    /// CLI's reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoProvider => "no-provider",
            Self::UnknownKey => "unknown-key",
            Self::AuthenticationFailed => "authentication-failed",
            Self::KmsRefused => "kms-refused",
            Self::KmsUnavailable => "kms-unavailable",
            Self::NotAnObject => "not-an-object",
        }
    }

    /// Whether the reason is a verdict on the value: every reason but
    /// [`KmsUnavailable`](Self::KmsUnavailable), where the plugin, not the
    /// value, is what failed.
    pub fn is_verdict(self) -> bool {
        self != Self::KmsUnavailable
    }

    /// The reason a read failed with `error`. Of several providers' errors
    /// ([`Error::Aggregate`]) the most telling wins: a plugin that did not
    /// answer (no verdict), then a value that did not authenticate under a
    /// key that is there, then a refusal, then a missing key.
    pub fn of(error: &Error) -> Self {
        match error {
            Error::NoMatchingPrefix | Error::EncryptedData => Self::NoProvider,
            Error::NoMatchingKey { .. } => Self::UnknownKey,
            Error::Kms(e) => match e.kind() {
                KmsErrorKind::Status { code, .. } if refusal(*code) => Self::KmsRefused,
                // Unavailable, a timeout, not ready, unhealthy, another
                // status (Go's gRPC answers UNKNOWN for any plain error), an
                // answer that breaks the protocol: no verdict on the value.
                _ => Self::KmsUnavailable,
            },
            Error::Aggregate(errors) => errors
                .iter()
                .map(Self::of)
                .min_by_key(|reason| match reason {
                    Self::KmsUnavailable => 0,
                    Self::AuthenticationFailed => 1,
                    Self::KmsRefused => 2,
                    Self::UnknownKey => 3,
                    Self::NoProvider | Self::NotAnObject => 4,
                })
                .unwrap_or(Self::NoProvider),
            // Decrypt, Malformed, a value too large: the value is at fault.
            _ => Self::AuthenticationFailed,
        }
    }
}

/// Whether a gRPC status says the plugin refused the request as invalid:
/// a verdict on the value, not a failure of the plugin.
fn refusal(code: StatusCode) -> bool {
    matches!(
        code,
        StatusCode::InvalidArgument
            | StatusCode::NotFound
            | StatusCode::FailedPrecondition
            | StatusCode::OutOfRange
            | StatusCode::DataLoss
    )
}

impl fmt::Display for UnreadableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that cannot be read. It holds no value, key or plaintext: the
/// key is printable (control characters escaped), the error is the
/// providers' (which never holds key material or plaintext).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UnreadableValue {
    /// The etcd key, printable (see [`printable`](crate::store::printable)).
    pub key: String,
    /// The resource, told from the key.
    pub resource: GroupResource,
    /// The namespace and name, told from the key (`None` when the key is
    /// not of the apiserver's shape).
    pub object: Option<ObjectKey>,
    /// Which provider and key wrote it, as its prefix says.
    pub origin: ValueOrigin,
    /// Why it cannot be read.
    pub reason: UnreadableReason,
    /// The providers' error (`None` for
    /// [`NotAnObject`](UnreadableReason::NotAnObject)).
    pub error: Option<Arc<Error>>,
}

impl UnreadableValue {
    /// The kubectl command that deletes exactly this object through the
    /// apiserver although it cannot be read (Kubernetes 1.32 and later,
    /// with `AllowUnsafeMalformedObjectDeletion` on: the default from 1.37).
    /// `None` for [`KmsUnavailable`](UnreadableReason::KmsUnavailable)
    /// (no verdict on the value: never delete for it), when the key does
    /// not name an object, or when a name could be read as something else
    /// than one word naming one object (outside printable ASCII, starting
    /// with `-`, a resource outside `[a-z0-9.-]`).
    ///
    /// It is the last resort, for an object whose key is gone for good:
    /// restoring the key (or starting the KMS plugin) reads it again.
    pub fn delete_command(&self) -> Option<String> {
        if !self.reason.is_verdict() {
            return None;
        }
        let object = self.object.as_ref()?;
        let resource = if self.resource.group.is_empty() {
            self.resource.resource.clone()
        } else {
            format!("{}.{}", self.resource.resource, self.resource.group)
        };
        let resource_chars =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
        if !resource.chars().all(resource_chars) {
            return None;
        }
        let mut command = format!(
            "kubectl delete {} {}",
            shell_word(&resource)?,
            shell_word(&object.name)?
        );
        if let Some(namespace) = &object.namespace {
            command.push_str(" -n ");
            command.push_str(&shell_word(namespace)?);
        }
        command.push_str(" --ignore-store-read-error-with-cluster-breaking-potential=true");
        Some(command)
    }
}

/// `word` as one shell word that kubectl reads as a name: as it is when it
/// holds only characters a Kubernetes name may hold, quoted when it holds
/// other printable ASCII; `None` when it is empty, starts with `-` (kubectl
/// would read a flag) or holds anything but printable ASCII.
fn shell_word(word: &str) -> Option<String> {
    if word.is_empty()
        || word.starts_with('-')
        || !word.chars().all(|c| c.is_ascii_graphic() || c == ' ')
    {
        return None;
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._:@+=,".contains(c);
    if word.chars().all(plain) {
        Some(word.to_owned())
    } else {
        Some(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// What the values of one resource written by one provider and key need.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct Dependency {
    /// The resource.
    pub resource: GroupResource,
    /// The provider and key (or KMS provider and key-ID hash) that wrote
    /// them; [`ValueOrigin::Identity`] for values stored in plaintext.
    pub origin: ValueOrigin,
}

impl Dependency {
    /// The values of `resource` written by `origin`: a key to look up in
    /// [`VerifyReport::dependencies`].
    pub fn new(resource: GroupResource, origin: ValueOrigin) -> Self {
        Self { resource, origin }
    }

    /// The fingerprint of the key these values need, as `fingerprint`
    /// prints it: of the static key of that name in the resource's rule of
    /// `config` (`None` when the rule has no such key), or the KMS v2 key-ID
    /// hash the values hold. `None` for identity and KMS v1.
    pub fn fingerprint(&self, config: &EncryptionConfiguration) -> Option<String> {
        match &self.origin {
            ValueOrigin::Key { name, .. } => {
                let rule = rule_for_resource(config, &self.resource.to_string())?;
                let kind = self.origin.kind()?;
                config.resources[rule]
                    .providers
                    .iter()
                    .filter(|provider| provider.kind() == Some(kind))
                    .flat_map(|provider| provider.keys())
                    .find(|key| &key.name == name)
                    .and_then(|key| key.secret.decode().ok())
                    .map(|secret| crate::fingerprint::key_fingerprint(&secret))
            }
            ValueOrigin::KmsV2 { key_id_hash, .. } => key_id_hash.clone(),
            _ => None,
        }
    }
}

/// How many values a [`Dependency`] has, and how many of them read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DependencyCount {
    /// Values.
    pub values: u64,
    /// Of those, the ones that were read and decoded.
    pub readable: u64,
}

/// What a verification found.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Values read.
    pub total: u64,
    /// Values that read and hold an object.
    pub readable: u64,
    /// Of those, the ones the configuration would write differently.
    pub stale: u64,
    /// Per resource and provider and key, the values and how many read.
    pub dependencies: BTreeMap<Dependency, DependencyCount>,
    /// Per resource and reason, the values that cannot be read.
    pub unreadable: BTreeMap<(GroupResource, UnreadableReason), u64>,
    /// Values under a key of no resource this crate can name (give the
    /// resource explicitly, see [`KeyLayout`]): not verified.
    pub unmapped: u64,
    /// The apiserver's own keys, never encrypted: not verified.
    pub internal: u64,
    /// What listing the prefix cost the store, and which revisions it read.
    pub listing: ListingReport,
}

impl VerifyReport {
    /// Whether every value read: nothing unreadable, nothing unmapped.
    pub fn all_readable(&self) -> bool {
        self.unreadable_count() == 0 && self.unmapped == 0
    }

    /// How many values cannot be read.
    pub fn unreadable_count(&self) -> u64 {
        self.unreadable.values().sum()
    }

    /// The values of `resource` that cannot be read.
    pub fn unreadable_of(&self, resource: &GroupResource) -> u64 {
        self.unreadable
            .iter()
            .filter(|((r, _), _)| r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    /// The resources with more than [`LIST_ERROR_LIMIT`] unreadable values,
    /// with their counts: a LIST through the apiserver names only the first
    /// [`LIST_ERROR_LIMIT`] of them.
    pub fn over_list_limit(&self) -> Vec<(GroupResource, u64)> {
        let mut per_resource: BTreeMap<&GroupResource, u64> = BTreeMap::new();
        for ((resource, _), n) in &self.unreadable {
            *per_resource.entry(resource).or_default() += n;
        }
        per_resource
            .into_iter()
            .filter(|(_, n)| *n > LIST_ERROR_LIMIT)
            .map(|(r, n)| (r.clone(), n))
            .collect()
    }
}

struct Sink<F> {
    report: VerifyReport,
    layout: KeyLayout,
    on_unreadable: F,
}

impl<F: FnMut(&UnreadableValue)> WalkSink for Sink<F> {
    fn value(&mut self, value: ValueReport) {
        self.report.total += 1;
        let resource = match (value.outcome, value.resource) {
            (Outcome::Internal, _) => return self.report.internal += 1,
            (_, None) => return self.report.unmapped += 1,
            (_, Some(resource)) => resource,
        };
        let reason = match value.outcome {
            Outcome::Current | Outcome::Stale => None,
            Outcome::NotAnObject => Some(UnreadableReason::NotAnObject),
            _ => Some(
                value
                    .error
                    .as_deref()
                    .map_or(UnreadableReason::NoProvider, UnreadableReason::of),
            ),
        };
        let count = self
            .report
            .dependencies
            .entry(Dependency::new(resource.clone(), value.origin.clone()))
            .or_default();
        count.values += 1;
        let Some(reason) = reason else {
            count.readable += 1;
            self.report.readable += 1;
            self.report.stale += u64::from(value.outcome == Outcome::Stale);
            return;
        };
        *self
            .report
            .unreadable
            .entry((resource.clone(), reason))
            .or_default() += 1;
        let unreadable = UnreadableValue {
            key: crate::store::printable(&value.key),
            object: self.layout.object_of(&value.key),
            resource,
            origin: value.origin,
            reason,
            error: value.error,
        };
        (self.on_unreadable)(&unreadable);
    }

    fn checkpoint(&mut self, _key: &[u8]) {}

    fn listing(&mut self, report: ListingReport) {
        self.report.listing = report;
    }
}

/// Reads every value under `options.prefix` as the apiserver would read
/// it (decrypted with its resource's rule of `transformers`, then decoded),
/// writing nothing: what the values depend on, and each one that cannot be
/// read, handed to `on_unreadable` in key order as the walk goes (so that
/// memory stays bounded however many there are).
///
/// A KMS v2 provider asks its plugin once for each DEK or seed, however
/// many values share it; the plugins must be reachable (a value whose
/// plugin does not answer is [`UnreadableReason::KmsUnavailable`]).
///
/// ```
/// # async fn check(store: std::sync::Arc<dyn k8s_envelope::store::Store>,
/// #     transformers: std::sync::Arc<k8s_envelope::ResourceTransformers>)
/// #     -> Result<(), Box<dyn std::error::Error>> {
/// use k8s_envelope::walk::{verify, VerifyOptions};
///
/// let mut unreadable = Vec::new();
/// let report = verify(store, transformers, VerifyOptions::default(), |value| {
///     unreadable.push((value.key.clone(), value.reason));
/// })
/// .await?;
/// if !report.all_readable() {
///     return Err(format!("{} value(s) cannot be read: {unreadable:?}", report.unreadable_count()).into());
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`WalkError::Store`] when the store fails.
pub async fn verify(
    store: Arc<dyn Store>,
    transformers: Arc<ResourceTransformers>,
    options: VerifyOptions,
    on_unreadable: impl FnMut(&UnreadableValue),
) -> Result<VerifyReport, WalkError> {
    let mut sink = Sink {
        report: VerifyReport::default(),
        layout: options.layout.clone(),
        on_unreadable,
    };
    let config = WalkConfig {
        prefix: options.prefix,
        layout: options.layout,
        page_size: options.page_size,
        concurrency: options.concurrency,
        start_after: None,
        rate_limit: None,
        write: false,
        max_attempts: 1,
        stop: None,
        plaintext_check: Some(crate::object::holds_object),
        progress: options.progress,
    };
    walk(store, transformers, config, &mut sink).await?;
    Ok(sink.report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms::KmsError;

    fn value(key: &[u8], reason: UnreadableReason) -> UnreadableValue {
        let layout = KeyLayout::default();
        let crate::store::KeyResource::Resource(resource) = layout.resource_of(key) else {
            panic!("a resource key");
        };
        UnreadableValue {
            key: crate::store::printable(key),
            resource,
            object: layout.object_of(key),
            origin: ValueOrigin::Identity,
            reason,
            error: None,
        }
    }

    #[test]
    fn delete_commands_name_one_object_or_none() {
        let v = |key: &[u8]| value(key, UnreadableReason::UnknownKey).delete_command();
        assert_eq!(
            v(b"/registry/secrets/ns/db").as_deref(),
            Some("kubectl delete secrets db -n ns --ignore-store-read-error-with-cluster-breaking-potential=true")
        );
        assert_eq!(
            v(b"/registry/clusterroles/system:admin").as_deref(),
            Some("kubectl delete clusterroles.rbac.authorization.k8s.io system:admin --ignore-store-read-error-with-cluster-breaking-potential=true")
        );
        assert_eq!(
            v(b"/registry/x.io/widgets/ns/a b'c").as_deref(),
            Some(
                r"kubectl delete widgets.x.io 'a b'\''c' -n ns --ignore-store-read-error-with-cluster-breaking-potential=true"
            )
        );
        for bad in [
            &b"/registry/clusterroles/--all"[..],
            b"/registry/x.io/secrets,foo/ns/n",
            b"/registry/x.io/Widgets/ns/n",
            b"/registry/secrets/ns/a\x1bb",
            "/registry/secrets/ns/a\u{61c}b".as_bytes(),
            "/registry/secrets/ns/caf\u{e9}".as_bytes(),
            b"/registry/secrets/ns",
        ] {
            assert_eq!(v(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        // Never for a plugin that did not answer.
        assert_eq!(
            value(b"/registry/secrets/ns/db", UnreadableReason::KmsUnavailable).delete_command(),
            None
        );
    }

    #[test]
    fn only_a_refusal_of_the_value_is_a_kms_verdict() {
        let status = |code| {
            Error::Kms(KmsError::new(KmsErrorKind::Status {
                code,
                message: String::new(),
            }))
        };
        for code in [
            StatusCode::InvalidArgument,
            StatusCode::NotFound,
            StatusCode::FailedPrecondition,
        ] {
            assert_eq!(
                UnreadableReason::of(&status(code)),
                UnreadableReason::KmsRefused
            );
        }
        for code in [
            StatusCode::Unknown,
            StatusCode::Internal,
            StatusCode::PermissionDenied,
            StatusCode::Unauthenticated,
            StatusCode::Unavailable,
            StatusCode::DeadlineExceeded,
        ] {
            assert_eq!(
                UnreadableReason::of(&status(code)),
                UnreadableReason::KmsUnavailable
            );
        }
        let answer = Error::Kms(KmsError::new(KmsErrorKind::InvalidAnswer("short".into())));
        assert_eq!(
            UnreadableReason::of(&answer),
            UnreadableReason::KmsUnavailable
        );
    }
}
