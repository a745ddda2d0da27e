//! The invariants the fuzz targets check, one `check_*` function per target:
//! the fuzz targets call them, and so do the library's regression tests
//! (`tests/integration/fuzz_regressions.rs`), so a crash found by a target
//! is replayed by `cargo test`. Uses only the public API and the
//! few re-exports of `k8s_envelope::internal`.
//!
//! Each `check_*` function runs one fuzz input and returns `Err` with a
//! description when an invariant breaks; the fuzz target panics with it so
//! that libFuzzer keeps the input, and a regression test asserts `Ok`. The
//! functions never panic themselves: a panic inside the library is the bug
//! being hunted, and must not be confused with a broken invariant.
//!
//! KMS providers here talk to the in-process base64 mock ([`Base64Kms`])
//! whose futures are ready at once, so every future is
//! polled a single time with a no-op waker and no runtime is needed. A future
//! that is still pending after that poll is reported as a broken invariant.
//!
//! Inputs that carry a storage key use one layout ([`split_storage_key`]):
//! the first byte is the key's length, the key follows, the rest is the value.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, Waker};

use crate::encrypted_object::EncryptedObject;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use k8s_envelope::config::{GoDuration, KmsConfiguration, KmsProviderFactory, SecretString};
use k8s_envelope::internal::{split_kms_v1_body, EncryptedObjectRef};
use k8s_envelope::jsonl;
use k8s_envelope::kms::mock::Base64Kms;
use k8s_envelope::kms::{
    CacheLimits, KmsEndpoint, KmsV1Options, KmsV1Provider, KmsV2Options, KmsV2Provider, ManualClock,
};
use k8s_envelope::{
    AesCbc, AesGcm, Decrypted, EncryptionConfiguration, Error, Identity, NamedKey, Provider,
    ProviderKind, ResourceTransformers, SecretKey, Secretbox, StorageKey, Transformer,
    ENCRYPTED_PREFIX,
};
use prost::Message as _;

/// Splits a fuzz input into a storage key and a value: the first byte is the
/// storage key's length (cut to what follows), then the key, then the value.
pub fn split_storage_key(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    rest.split_at(usize::from(len).min(rest.len()))
}

/// Polls `future` once with a no-op waker: for futures that complete without
/// waiting (an in-process plugin, warm caches), driven without a runtime.
///
/// # Errors
///
/// When the future did not complete on the first poll.
pub fn poll_once<F: Future>(future: F) -> Result<F::Output, String> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => Ok(value),
        Poll::Pending => Err("a future waited, but nothing here does I/O".to_owned()),
    }
}

// ---------------------------------------------------------------------------
// In-process KMS

/// Makes the KMS providers of a configuration with the base64 mocks.
///
/// Deterministic on purpose: caches are off (so a read never depends on the
/// inputs before it) and KMS v2 providers run on a [`ManualClock`] that never
/// moves (so their write key never expires during a long fuzzing run).
#[derive(Debug, Default)]
pub struct MockKmsFactory {
    v2: Mutex<Vec<KmsV2Provider>>,
}

impl MockKmsFactory {
    /// A factory that has built nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives every KMS v2 provider built so far its write key.
    ///
    /// # Errors
    ///
    /// A refresh failed or waited.
    pub fn refresh_all(&self) -> Result<(), String> {
        let providers = self.v2.lock().map_err(|_| "poisoned".to_owned())?.clone();
        for provider in providers {
            poll_once(provider.refresh())?
                .map_err(|e| format!("refreshing {}: {e}", provider.name()))?;
        }
        Ok(())
    }
}

impl KmsProviderFactory for MockKmsFactory {
    fn kms_v1(&self, config: &KmsConfiguration) -> Result<Arc<dyn Provider>, Error> {
        let options = KmsV1Options::default().with_cache(CacheLimits::disabled());
        Ok(Arc::new(KmsV1Provider::new(
            &config.name,
            Arc::new(Base64Kms),
            options,
        )?))
    }

    fn kms_v2(&self, config: &KmsConfiguration) -> Result<Arc<dyn Provider>, Error> {
        let options = KmsV2Options::default()
            .with_dek_cache(CacheLimits::disabled())
            .with_derived_key_cache(CacheLimits::disabled())
            .with_clock(Arc::new(ManualClock::new()));
        let provider = KmsV2Provider::new(&config.name, Arc::new(Base64Kms), options)?;
        self.v2
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(provider.clone());
        Ok(Arc::new(provider))
    }
}

// ---------------------------------------------------------------------------
// Targets

/// Target `config`: parses `data` as YAML and as JSON; whatever parses is
/// validated and built. Every error is rendered.
///
/// Invariants: a configuration that validates builds (with the mock KMS
/// factory), and one that does not validate does not build; with every
/// key's secret replaced by a canary (valid keys of several lengths, and
/// text that is not base64), no error message nor `Debug` output contains
/// the canary.
///
/// # Errors
///
/// An invariant broke.
pub fn check_config(data: &[u8]) -> Result<(), String> {
    for parsed in [
        EncryptionConfiguration::from_yaml(data),
        EncryptionConfiguration::from_json(data),
    ] {
        let config = match parsed {
            Ok(config) => config,
            Err(e) => {
                let _ = e.to_string();
                continue;
            }
        };
        let _ = format!("{config:?}");
        let validated = config.validate();
        if let Err(errors) = &validated {
            let _ = errors.to_string();
        }
        match (validated, config.build_with_kms(&MockKmsFactory::new())) {
            (Ok(()), Err(e)) => return Err(format!("a valid configuration does not build: {e}")),
            (Err(errors), Ok(_)) => {
                return Err(format!("an invalid configuration builds: {errors}"))
            }
            (Err(_), Err(e)) => {
                let _ = e.to_string();
            }
            (Ok(()), Ok(transformers)) => {
                let _ = format!("{transformers:?}");
            }
        }
        check_secrets_stay_secret(&config)?;
        check_kms_fields_round_trip(&config)?;
        // The real factory refuses some endpoints that validation accepts
        // (a deliberate difference, see `KmsEndpoint`); it only has to
        // survive them.
        #[cfg(unix)]
        if let Err(e) = config.build_with_kms(&k8s_envelope::kms::GrpcKmsFactory::new()) {
            let _ = e.to_string();
        }
    }
    Ok(())
}

/// How many resource names [`check_config_scaled`] blows a configuration up
/// to: enough that work quadratic in them takes minutes (a hang for
/// libFuzzer), few enough that linear work takes milliseconds.
pub const SCALED_RESOURCES: usize = 5_000;

/// Target `config_scaled`: the configuration in `data` (YAML, else JSON),
/// blown up to about [`SCALED_RESOURCES`] resource names twice, once as
/// longer resource lists and once as more rules, each validated and built.
///
/// No invariant to compare: what it catches is work that grows faster than
/// the configuration, which libFuzzer's `-timeout` reports as a hang. Small
/// fuzz inputs cannot show it, and a 4 MiB configuration can name half a
/// million resources.
///
/// # Errors
///
/// Never; the signature matches the other checks.
pub fn check_config_scaled(data: &[u8]) -> Result<(), String> {
    let Ok(config) = EncryptionConfiguration::from_yaml(data)
        .or_else(|_| EncryptionConfiguration::from_json(data))
    else {
        return Ok(());
    };
    let names: usize = config.resources.iter().map(|r| r.resources.len()).sum();
    let factor = SCALED_RESOURCES / names.max(1);
    if names == 0 || factor < 2 {
        return Ok(());
    }
    let mut longer_lists = config.clone();
    for rule in &mut longer_lists.resources {
        rule.resources = (0..factor)
            .flat_map(|copy| rule.resources.iter().map(move |r| suffixed(r, copy)))
            .collect();
    }
    let mut more_rules = config.clone();
    more_rules.resources = (0..factor)
        .flat_map(|copy| {
            config.resources.iter().map(move |rule| {
                let mut rule = rule.clone();
                for r in &mut rule.resources {
                    *r = suffixed(r, copy);
                }
                rule
            })
        })
        .collect();
    for scaled in [longer_lists, more_rules] {
        if let Err(errors) = scaled.validate() {
            let _ = errors.iter().count();
        }
        let _ = scaled.build_with_kms(&MockKmsFactory::new());
    }
    Ok(())
}

/// `resource` with `copy` appended to its resource part (`secrets3`,
/// `deployments3.apps`), so that copies are distinct names; wildcards stay
/// as they are.
fn suffixed(resource: &str, copy: usize) -> String {
    if copy == 0 {
        return resource.to_owned();
    }
    let (name, group) = resource
        .split_once('.')
        .map_or((resource, None), |(n, g)| (n, Some(g)));
    if name == "*" {
        return resource.to_owned();
    }
    match group {
        Some(group) => format!("{name}{copy}.{group}"),
        None => format!("{name}{copy}"),
    }
}

/// Every KMS timeout prints as Go prints it and parses back to itself, and
/// every endpoint that parses prints as a URL that parses back to itself
/// (those whose socket path is UTF-8: others print lossily, as documented).
fn check_kms_fields_round_trip(config: &EncryptionConfiguration) -> Result<(), String> {
    let kms = config
        .resources
        .iter()
        .flat_map(|r| &r.providers)
        .filter_map(|p| p.kms.as_ref());
    for kms in kms {
        if let Some(timeout) = kms.timeout {
            let shown = timeout.to_string();
            match GoDuration::parse(&shown) {
                Ok(again) if again == timeout => {}
                other => {
                    return Err(format!(
                        "timeout {timeout:?} prints as {shown:?}: {other:?}"
                    ))
                }
            }
        }
        if let Ok(endpoint) = KmsEndpoint::parse(&kms.endpoint) {
            if endpoint.socket_path().is_some_and(|p| p.to_str().is_none()) {
                continue;
            }
            let shown = endpoint.to_string();
            match KmsEndpoint::parse(&shown) {
                Ok(again) if again == endpoint => {}
                other => {
                    return Err(format!(
                        "endpoint {:?} prints as {shown:?}: {:?}",
                        kms.endpoint,
                        other.map_err(|e| e.to_string())
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Canaries for key secrets: valid keys of 32, 16 and 20 bytes (the last
/// one no provider accepts), and a string that is not base64. None of them
/// can come from a fuzz input by chance.
static CANARIES: LazyLock<[String; 4]> = LazyLock::new(|| {
    [
        BASE64.encode([0xa5; 32]),
        BASE64.encode([0x5a; 16]),
        BASE64.encode([0x3c; 20]),
        "~canary:not-base64:7f3e9c~".to_owned(),
    ]
});

/// Puts each canary in place of every key's secret, then validates and
/// builds: no message and no `Debug` output may show the canary.
fn check_secrets_stay_secret(config: &EncryptionConfiguration) -> Result<(), String> {
    for canary in CANARIES.iter() {
        let mut config = config.clone();
        let mut keys = 0;
        for provider in config.resources.iter_mut().flat_map(|r| &mut r.providers) {
            let lists = [
                provider.aescbc.as_mut().map(|c| &mut c.keys),
                provider.aesgcm.as_mut().map(|c| &mut c.keys),
                provider.secretbox.as_mut().map(|c| &mut c.keys),
            ];
            for key in lists.into_iter().flatten().flatten() {
                key.secret = SecretString::new(canary.as_str());
                keys += 1;
            }
        }
        if keys == 0 {
            return Ok(());
        }
        let mut shown = vec![format!("{config:?}")];
        if let Err(errors) = config.validate() {
            shown.push(errors.to_string());
            shown.push(format!("{errors:?}"));
        }
        match config.build_with_kms(&MockKmsFactory::new()) {
            Ok(transformers) => shown.push(format!("{transformers:?}")),
            Err(e) => {
                shown.push(e.to_string());
                shown.push(format!("{e:?}"));
            }
        }
        if shown.iter().any(|text| text.contains(canary.as_str())) {
            return Err(format!("a key's secret shows in: {shown:?}"));
        }
    }
    Ok(())
}

/// Target `kms_v2_object`: decodes `data` as a KMS v2 `EncryptedObject` body.
///
/// Invariants, for a body that decodes: its canonical encoding decodes to the
/// same object, prost encodes the same fields to the same bytes, and when
/// prost also decodes `data` it finds the same fields.
///
/// # Errors
///
/// An invariant broke.
pub fn check_encrypted_object(data: &[u8]) -> Result<(), String> {
    let Ok(object) = EncryptedObjectRef::decode(data) else {
        return Ok(());
    };
    let canonical = object.encode();
    match EncryptedObjectRef::decode(&canonical) {
        Ok(again) if again == object => {}
        Ok(again) => return Err(format!("re-encoded {object:?} decodes as {again:?}")),
        Err(e) => return Err(format!("re-encoded {object:?} does not decode: {e}")),
    }
    let ours = to_prost(&object);
    if ours.encode_to_vec() != canonical {
        return Err(format!("prost encodes {object:?} differently"));
    }
    // prost refuses some bodies that Go's runtime (and this decoder) accept,
    // such as a known field with an unexpected wire type; when it accepts
    // one, it must agree.
    if let Ok(theirs) = EncryptedObject::decode(data) {
        if theirs != ours {
            return Err(format!("prost decodes {object:?} differently"));
        }
    }
    Ok(())
}

fn to_prost(object: &EncryptedObjectRef<'_>) -> EncryptedObject {
    EncryptedObject {
        encrypted_data: object.encrypted_data().to_vec(),
        key_id: object.key_id().to_owned(),
        encrypted_dek_source: object.encrypted_dek_source().to_vec(),
        annotations: object
            .annotations()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect(),
        encrypted_dek_source_type: object.source_type().number() as i32,
    }
}

/// The KMS v1 provider of [`check_kms_v1`]: the base64 mock, no cache.
static KMS_V1: LazyLock<Result<KmsV1Provider, String>> = LazyLock::new(|| {
    KmsV1Provider::new(
        "kms-provider",
        Arc::new(Base64Kms),
        KmsV1Options::default().with_cache(CacheLimits::disabled()),
    )
    .map_err(|e| e.to_string())
});

/// Target `kms_v1_envelope`: splits the value of `data` (see
/// [`split_storage_key`]) as a KMS v1 body, then reads it through a KMS v1
/// provider named `kms-provider` with the base64 mock.
///
/// Invariants: a split body is exactly `length || DEK || data` with a
/// non-empty DEK of the stated length; the read gives a value or an error.
///
/// # Errors
///
/// An invariant broke.
pub fn check_kms_v1(data: &[u8]) -> Result<(), String> {
    let (storage_key, body) = split_storage_key(data);
    if let Ok((dek, rest)) = split_kms_v1_body(body) {
        let Some((len, _)) = body.split_first_chunk::<2>() else {
            return Err("split a body shorter than its length".to_owned());
        };
        if dek.is_empty() || Ok(u16::from_be_bytes(*len)) != u16::try_from(dek.len()) {
            return Err(format!("split a DEK of {} bytes", dek.len()));
        }
        if [&len[..], dek, rest].concat() != body {
            return Err("the split parts are not the body".to_owned());
        }
    }
    let provider = KMS_V1.as_ref().map_err(Clone::clone)?;
    let stored = [provider.prefix(), body].concat();
    let _ = poll_once(provider.decrypt(&stored, StorageKey::new(storage_key)))?;
    Ok(())
}

/// One provider of [`check_static_round_trip`].
struct StaticCase {
    name: &'static str,
    provider: Arc<dyn Provider>,
    /// Whether any modified byte must make the read fail.
    authenticated: bool,
    /// Whether the storage key is bound as authenticated data.
    binds_storage_key: bool,
}

fn static_cases() -> Result<Vec<StaticCase>, Error> {
    let key = |len: usize, fill: u8| {
        vec![NamedKey::new(
            "key1",
            SecretKey::new((0..len).map(|i| fill ^ i as u8).collect()),
        )]
    };
    let case = |name, provider: Arc<dyn Provider>, authenticated, binds_storage_key| StaticCase {
        name,
        provider,
        authenticated,
        binds_storage_key,
    };
    Ok(vec![
        case(
            "aescbc-16",
            Arc::new(AesCbc::new(key(16, 1))?),
            false,
            false,
        ),
        case(
            "aescbc-24",
            Arc::new(AesCbc::new(key(24, 2))?),
            false,
            false,
        ),
        case(
            "aescbc-32",
            Arc::new(AesCbc::new(key(32, 3))?),
            false,
            false,
        ),
        case("aesgcm-16", Arc::new(AesGcm::new(key(16, 4))?), true, true),
        case("aesgcm-24", Arc::new(AesGcm::new(key(24, 5))?), true, true),
        case("aesgcm-32", Arc::new(AesGcm::new(key(32, 6))?), true, true),
        case(
            "secretbox",
            Arc::new(Secretbox::new(key(32, 7))?),
            true,
            false,
        ),
        case("identity", Arc::new(Identity::new()), false, false),
    ])
}

static STATIC_CASES: LazyLock<Result<Vec<StaticCase>, String>> =
    LazyLock::new(|| static_cases().map_err(|e| e.to_string()));

/// Target `static_round_trip`: writes the value of `data` (see
/// [`split_storage_key`]) through every static-key provider and reads it
/// back, directly and through transformers.
///
/// Invariants: every write succeeds and reads back unchanged and not stale;
/// identity alone refuses to read back a plaintext starting with `k8s:enc:`,
/// as kube-apiserver's does; one flipped bit makes an authenticated value
/// unreadable, and so does another storage key where it is bound; a value
/// read through a transformer whose writer is another provider is stale.
///
/// # Errors
///
/// An invariant broke.
pub fn check_static_round_trip(data: &[u8]) -> Result<(), String> {
    let cases = STATIC_CASES.as_ref().map_err(Clone::clone)?;
    let (storage_key, plaintext) = split_storage_key(data);
    let key = StorageKey::new(storage_key);
    for case in cases {
        let name = case.name;
        let provider = case
            .provider
            .as_blocking()
            .ok_or_else(|| format!("{name}: not blocking"))?;
        let stored = provider
            .encrypt_blocking(plaintext, key)
            .map_err(|e| format!("{name}: write failed: {e}"))?;
        if !stored.starts_with(case.provider.prefix()) {
            return Err(format!("{name}: the value lacks the provider's prefix"));
        }
        let read = provider.decrypt_blocking(&stored, key);
        if case.provider.kind() == ProviderKind::Identity && plaintext.starts_with(ENCRYPTED_PREFIX)
        {
            if !matches!(read, Err(Error::EncryptedData)) {
                return Err(format!("{name}: read back a k8s:enc: plaintext"));
            }
            continue;
        }
        expect_read(name, read, plaintext, false)?;

        if case.authenticated {
            let mut tampered = stored.clone();
            let at = (plaintext.len() + usize::from(data.first().copied().unwrap_or(0)))
                % tampered.len();
            tampered[at] ^= 1 << (at % 8);
            if provider.decrypt_blocking(&tampered, key).is_ok() {
                return Err(format!("{name}: read a value with byte {at} modified"));
            }
        }
        if case.binds_storage_key {
            let other = [storage_key, b"x"].concat();
            if provider
                .decrypt_blocking(&stored, StorageKey::new(&other))
                .is_ok()
            {
                return Err(format!("{name}: read a value under another storage key"));
            }
        }
    }

    // All of them in one transformer, aesgcm writing; then the same value
    // read by a transformer where aesgcm comes last.
    let providers: Vec<Arc<dyn Provider>> = cases.iter().map(|c| c.provider.clone()).collect();
    let gcm_first = providers
        .iter()
        .position(|p| p.kind() == ProviderKind::AesGcm)
        .ok_or("no aesgcm case")?;
    let mut ordered = providers.clone();
    ordered.swap(0, gcm_first);
    let writer = Transformer::new(ordered).map_err(|e| e.to_string())?;
    let stored = writer
        .encrypt_blocking(plaintext, key)
        .map_err(|e| format!("transformer: write failed: {e}"))?;
    expect_read(
        "transformer",
        writer.decrypt_blocking(&stored, key),
        plaintext,
        false,
    )?;
    let mut reversed = providers;
    reversed.reverse();
    let reader = Transformer::new(reversed).map_err(|e| e.to_string())?;
    expect_read(
        "reversed transformer",
        reader.decrypt_blocking(&stored, key),
        plaintext,
        true,
    )
}

fn expect_read(
    name: &str,
    read: Result<Decrypted, Error>,
    plaintext: &[u8],
    stale: bool,
) -> Result<(), String> {
    match read {
        Ok(read) if read.plaintext == plaintext && read.stale == stale => Ok(()),
        Ok(read) => Err(format!(
            "{name}: read back {} bytes (stale: {}), wrote {} (expected stale: {stale})",
            read.plaintext.len(),
            read.stale,
            plaintext.len()
        )),
        Err(e) => Err(format!("{name}: cannot read back its own value: {e}")),
    }
}

/// The transformers of a configuration with every provider, KMS included
/// (through [`MockKmsFactory`]), for the targets `read` and `jsonl`.
pub struct Harness {
    transformers: ResourceTransformers,
    /// The resources the read target tries: every rule's, and one no rule
    /// covers.
    resources: Vec<String>,
    /// Set when a future was still pending after one poll.
    waited: AtomicBool,
}

impl Harness {
    /// Loads, builds and refreshes `config`.
    ///
    /// # Errors
    ///
    /// The configuration does not load or build, or a KMS v2 refresh failed.
    pub fn from_config(config: &[u8]) -> Result<Self, String> {
        let config = EncryptionConfiguration::from_slice(config).map_err(|e| e.to_string())?;
        let kms = MockKmsFactory::new();
        let transformers = config.build_with_kms(&kms).map_err(|e| e.to_string())?;
        kms.refresh_all()?;
        let mut resources: Vec<String> = transformers
            .iter()
            .map(|(gr, _)| gr.to_string().replace('*', "any"))
            .collect();
        resources.push("uncovered.example.com".to_owned());
        Ok(Self {
            transformers,
            resources,
            waited: AtomicBool::new(false),
        })
    }

    fn ready<T>(&self, future: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        poll_once(future).unwrap_or_else(|_| {
            self.waited.store(true, Ordering::Relaxed);
            // Reported by the check that made the call.
            Err(Error::RequiresAsync {
                provider: ProviderKind::Custom,
            })
        })
    }

    fn check_waited(&self) -> Result<(), String> {
        if self.waited.swap(false, Ordering::Relaxed) {
            return Err("a future waited, but nothing here does I/O".to_owned());
        }
        Ok(())
    }

    /// Target `read`: reads the value of `data` (see [`split_storage_key`])
    /// through the transformer of every resource.
    ///
    /// Invariants: a read gives a value or an error; when the blocking API
    /// reads a value the async API reads the same; a value that reads is
    /// re-encrypted by the resource's writer and reads back unchanged and not
    /// stale (unless identity writes a plaintext starting with `k8s:enc:`,
    /// which it then refuses, as in kube-apiserver).
    ///
    /// # Errors
    ///
    /// An invariant broke.
    pub fn check_read(&self, data: &[u8]) -> Result<(), String> {
        let (storage_key, stored) = split_storage_key(data);
        let key = StorageKey::new(storage_key);
        for resource in &self.resources {
            let transformer = self.transformers.for_resource(resource);
            let read = self.ready(transformer.decrypt(stored, key));
            self.check_waited()?;
            if let Ok(blocking) = transformer.decrypt_blocking(stored, key) {
                match &read {
                    Ok(read) if *read == blocking => {}
                    _ => return Err(format!("{resource}: the async read differs")),
                }
            }
            if let Ok(read) = read {
                self.check_rewrite(resource, transformer, &read.plaintext, key)?;
            }
        }
        Ok(())
    }

    /// Writes `plaintext` with the resource's writer and reads it back.
    fn check_rewrite(
        &self,
        resource: &str,
        transformer: &Transformer,
        plaintext: &[u8],
        key: StorageKey<'_>,
    ) -> Result<(), String> {
        let stored = self
            .ready(transformer.encrypt(plaintext, key))
            .map_err(|e| format!("{resource}: write failed: {e}"));
        self.check_waited()?;
        let stored = stored?;
        let read = self.ready(transformer.decrypt(&stored, key));
        self.check_waited()?;
        if writes_unreadable(transformer, plaintext) {
            return match read {
                Err(_) => Ok(()),
                Ok(_) => Err(format!("{resource}: identity read back a k8s:enc: value")),
            };
        }
        expect_read(resource, read, plaintext, false)
    }

    /// Target `jsonl`: runs `data` through the CLI's JSON Lines protocol in
    /// both directions.
    ///
    /// Invariants: exactly one response line per input line that is not
    /// blank, each a JSON object; as many error lines as the run counted;
    /// every value the encrypt run wrote reads back unchanged.
    ///
    /// # Errors
    ///
    /// An invariant broke.
    pub fn check_jsonl(&self, data: &[u8]) -> Result<(), String> {
        use self::jsonl::{Direction, Request};

        let requests: Vec<&[u8]> = data
            .split(|&b| b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .collect();
        for direction in [Direction::Encrypt, Direction::Decrypt] {
            let mut output = Vec::new();
            let failed = jsonl::run(self, direction, data, &mut output)
                .map_err(|e| format!("{direction:?}: the run stopped: {e}"))?;
            self.check_waited()?;
            let responses: Vec<&[u8]> = output
                .strip_suffix(b"\n")
                .map_or(Vec::new(), |body| body.split(|&b| b == b'\n').collect());
            if responses.len() != requests.len() {
                return Err(format!(
                    "{direction:?}: {} response lines for {} request lines",
                    responses.len(),
                    requests.len()
                ));
            }
            let mut errors = 0;
            for (request, response) in requests.iter().zip(responses) {
                let response: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(response)
                        .map_err(|e| format!("{direction:?}: a response is not an object: {e}"))?;
                if response.contains_key("error") {
                    errors += 1;
                    continue;
                }
                if direction != Direction::Encrypt {
                    continue;
                }
                // The request parsed, or there would be an error line.
                let request = Request::parse(request).map_err(|e| format!("reparse: {e}"))?;
                let plaintext = request.input(direction)?;
                let stored = response
                    .get("stored_b64")
                    .and_then(|v| v.as_str())
                    .and_then(|v| BASE64.decode(v).ok())
                    .ok_or("Encrypt: a response without stored_b64")?;
                let transformer = self.transformers.for_resource(&request.resource);
                let read = self.ready(
                    transformer.decrypt(&stored, StorageKey::from(request.storage_key.as_str())),
                );
                self.check_waited()?;
                if !writes_unreadable(transformer, &plaintext) {
                    expect_read(&request.resource, read, &plaintext, false)?;
                }
            }
            if errors != failed {
                return Err(format!(
                    "{direction:?}: {errors} error lines, but the run counted {failed}"
                ));
            }
        }
        Ok(())
    }
}

/// Whether a value written by `transformer` cannot be read back: identity
/// writes a plaintext starting with `k8s:enc:` as it is, and refuses to read
/// it, exactly as kube-apiserver does.
fn writes_unreadable(transformer: &Transformer, plaintext: &[u8]) -> bool {
    transformer
        .providers()
        .first()
        .is_some_and(|p| p.kind() == ProviderKind::Identity)
        && plaintext.starts_with(ENCRYPTED_PREFIX)
}

impl jsonl::Transform for Harness {
    type Error = Error;

    fn encrypt(
        &self,
        resource: &str,
        storage_key: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let transformer = self.transformers.for_resource(resource);
        self.ready(transformer.encrypt(plaintext, storage_key.into()))
    }

    fn decrypt(
        &self,
        resource: &str,
        storage_key: &str,
        stored: &[u8],
    ) -> Result<Decrypted, Error> {
        let transformer = self.transformers.for_resource(resource);
        self.ready(transformer.decrypt(stored, storage_key.into()))
    }
}

// ---------------------------------------------------------------------------
// The etcdctl dump parser

/// Target `etcd_dump`: parses `data` as the JSON of `etcdctl get -w json`.
///
/// Invariants, when it parses: the dump prints as JSON that parses back to
/// the same entries and revision; listing in pages of two gives every entry
/// once, in order; `count` and `get` agree with the listing; the dump's
/// revision is at least every entry's; a compare-and-swap of the first
/// entry at its revision writes at the next revision, and one at a stale
/// revision writes nothing.
///
/// # Errors
///
/// An invariant broke.
pub fn check_etcd_dump(data: &[u8]) -> Result<(), String> {
    use k8s_envelope::store::{DumpStore, Store, Swap};

    let memory = DumpStore::from_json(data, "fuzz");
    check_dump_file(data, memory.as_ref().ok())?;
    let Ok(dump) = memory else {
        return Ok(());
    };
    let entries = dump.entries();
    let reparsed = DumpStore::from_json(&dump.to_json(), "reprint")
        .map_err(|e| format!("the printed dump does not parse: {e}"))?;
    if reparsed.entries() != entries || reparsed.revision() != dump.revision() {
        return Err("the printed dump parses to other entries or revision".to_owned());
    }
    if let Some(e) = entries.iter().find(|e| e.revision > dump.revision()) {
        return Err(format!(
            "an entry's revision {} is past the dump's",
            e.revision
        ));
    }

    let mut listed = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = poll_once(dump.list(b"", after.as_deref(), 2))?.map_err(|e| e.to_string())?;
        after = page.entries.last().map(|e| e.key.clone());
        listed.extend(page.entries);
        if !page.more {
            break;
        }
        if listed.len() > entries.len() {
            return Err("paging lists more entries than the dump holds".to_owned());
        }
    }
    if listed != entries {
        return Err("paging does not list every entry once, in order".to_owned());
    }
    let count = poll_once(dump.count(b""))?.map_err(|e| e.to_string())?;
    if count != Some(entries.len() as u64) {
        return Err(format!("count {count:?} for {} entries", entries.len()));
    }

    let Some(first) = entries.first() else {
        return Ok(());
    };
    let got = poll_once(dump.get(&first.key))?.map_err(|e| e.to_string())?;
    if got.as_ref() != Some(first) {
        return Err("get disagrees with the listing".to_owned());
    }
    let next = dump.revision() + 1;
    match poll_once(dump.compare_and_swap(&first.key, first.revision, b"new"))? {
        Ok(Swap::Written(revision)) if revision == next => {}
        other => return Err(format!("a swap at the current revision gave {other:?}")),
    }
    match poll_once(dump.compare_and_swap(&first.key, first.revision, b"stale"))? {
        Ok(Swap::Changed(current)) if current.value == b"new" && current.revision == next => {}
        other => return Err(format!("a swap at a stale revision gave {other:?}")),
    }
    Ok(())
}

/// The streaming dump store on the same bytes, written to a file: it
/// refuses what the in-memory store refuses (and, besides, keys out of
/// order), walks the same entries, and writes a copy that reads back the
/// same.
fn check_dump_file(
    data: &[u8],
    memory: Option<&k8s_envelope::store::DumpStore>,
) -> Result<(), String> {
    use k8s_envelope::store::{DumpFile, DumpStore, Store};
    use std::sync::atomic::AtomicU64;

    static FILES: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "k8s-envelope-fuzz-{}-{}",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    );
    let input = std::env::temp_dir().join(format!("{name}.json"));
    let output = std::env::temp_dir().join(format!("{name}.out.json"));
    std::fs::write(&input, data).map_err(|e| format!("temporary file: {e}"))?;
    let result = (|| {
        let file = match (DumpFile::open(&input), memory) {
            (Err(_), None) => return Ok(()),
            (Ok(_), None) => {
                return Err("the dump file store accepts what the in-memory one refuses".to_owned())
            }
            (Err(e), Some(_)) if e.to_string().contains("ascending order") => return Ok(()),
            (Err(e), Some(_)) => return Err(format!("only the dump file store refuses: {e}")),
            (Ok(file), Some(memory)) => (file, memory),
        };
        let (file, memory) = file;
        let file = file
            .with_output(&output)
            .map_err(|e| format!("output: {e}"))?;
        let mut walked = Vec::new();
        {
            let mut listing = file.listing(b"", None, 2);
            while let Some(page) = poll_once(listing.next_page())?.map_err(|e| e.to_string())? {
                if let Some(last) = page.entries.last() {
                    file.settled(&last.key);
                }
                walked.extend(page.entries);
                if walked.len() > memory.entries().len() {
                    return Err(
                        "the dump file walk lists more entries than the dump holds".to_owned()
                    );
                }
            }
        }
        if walked != memory.entries() || file.revision() != memory.revision() {
            return Err("the dump file store walks other entries or revision".to_owned());
        }
        file.finish().map_err(|e| format!("finish: {e}"))?;
        let copy = DumpStore::load(&output).map_err(|e| format!("the copy does not parse: {e}"))?;
        if copy.entries() != memory.entries() || copy.revision() != memory.revision() {
            return Err("the dump file's copy reads back other entries or revision".to_owned());
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    result
}

// ---------------------------------------------------------------------------
// The etcd snapshot reader

/// Target `snapshot`: opens `data` as an etcd snapshot file (bbolt, maybe
/// with the SHA-256 appended).
///
/// Invariants, when it opens: opening with the hash check agrees (the same
/// snapshot, or a hash mismatch); every indexed key reads back, in order,
/// once, as `get` reads it; the count is the number of keys; and a re-keyed
/// copy (the first key rewritten) either is refused with an error or reads
/// back with its hash verified, the same keys, the rewritten value at the
/// next revision and every other value as it was.
///
/// # Errors
///
/// An invariant broke.
#[cfg(feature = "snapshot")]
pub fn check_snapshot(data: &[u8]) -> Result<(), String> {
    use std::sync::atomic::AtomicU64;

    static FILES: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "k8s-envelope-fuzz-{}-{}",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    );
    let input = std::env::temp_dir().join(format!("{name}.db"));
    let output = std::env::temp_dir().join(format!("{name}.out.db"));
    std::fs::write(&input, data).map_err(|e| format!("temporary file: {e}"))?;
    let result = check_snapshot_file(&input, &output);
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    result
}

#[cfg(feature = "snapshot")]
fn check_snapshot_file(input: &std::path::Path, output: &std::path::Path) -> Result<(), String> {
    use k8s_envelope::snapshot::{HashCheck, Snapshot, SnapshotError, SnapshotStore};
    use k8s_envelope::store::{Store, Swap};

    let Ok(snapshot) = Snapshot::open(input, HashCheck::Skip) else {
        return Ok(());
    };
    match Snapshot::open(input, HashCheck::Verify) {
        Ok(verified) if verified.info().keys == snapshot.info().keys => {}
        Err(SnapshotError::HashMismatch { .. }) => {}
        other => return Err(format!("with the hash check: {other:?}")),
    }
    let (entries, more) = snapshot
        .range(b"", None, usize::MAX)
        .map_err(|e| format!("an indexed key does not read back: {e}"))?;
    if more || entries.len() != snapshot.info().keys || snapshot.count(b"") != entries.len() {
        return Err("the listing, the count and the index disagree".to_owned());
    }
    if entries.windows(2).any(|w| w[0].key >= w[1].key) {
        return Err("keys listed out of order or twice".to_owned());
    }
    for entry in &entries {
        let got = snapshot.get(&entry.key).map_err(|e| e.to_string())?;
        if got.as_ref() != Some(entry) {
            return Err("get disagrees with the listing".to_owned());
        }
    }
    let next = snapshot
        .info()
        .revision
        .max(snapshot.info().compacted.unwrap_or(0))
        + 1;
    let store = SnapshotStore::new(snapshot)
        .with_output(output)
        .map_err(|e| format!("output: {e}"))?;
    if let Some(first) = entries.first() {
        match poll_once(store.compare_and_swap(&first.key, first.revision, b"new"))? {
            Ok(Swap::Written(revision)) if revision == next => {}
            other => return Err(format!("a swap at the current revision gave {other:?}")),
        }
    }
    if store.finish().is_err() {
        // A file that reads but cannot be carried over (no `meta` bucket, a
        // bucket in a bucket) is refused with an error.
        return Ok(());
    }
    let copy = Snapshot::open(output, HashCheck::Verify)
        .map_err(|e| format!("the re-keyed copy does not open: {e}"))?;
    let (copied, _) = copy
        .range(b"", None, usize::MAX)
        .map_err(|e| format!("the re-keyed copy does not read: {e}"))?;
    if copied.len() != entries.len() {
        return Err("the re-keyed copy holds other keys".to_owned());
    }
    for (i, (old, new)) in entries.iter().zip(&copied).enumerate() {
        let same = if i == 0 {
            new.key == old.key && new.value == b"new" && new.revision == next
        } else {
            new == old
        };
        if !same {
            return Err(format!("entry {i} of the re-keyed copy differs"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The object decoder

/// Target `object`: decodes `data` as a stored (decrypted) value.
///
/// Invariants: decoding never panics; `holds_object` (the check `verify`
/// makes, without decoding) accepts exactly what decoding accepts; an
/// object's JSON, pretty and
/// compact, parses as JSON and as the same document; its YAML is written;
/// and the compact JSON decoded again is an object of the same kind and
/// apiVersion whose JSON is the same.
///
/// # Errors
///
/// An invariant broke.
#[cfg(feature = "objects")]
pub fn check_object(data: &[u8]) -> Result<(), String> {
    use k8s_envelope::object::{decode, holds_object, DecodeOptions, Decoded};

    let decoded = matches!(
        decode(data, &DecodeOptions::default()),
        Ok(Decoded::Object(_) | Decoded::Cbor)
    );
    if holds_object(data) != decoded {
        return Err(format!(
            "holds_object says {}, decode says {decoded}",
            !decoded
        ));
    }
    for options in [
        DecodeOptions::default(),
        DecodeOptions::default().with_decoded_data(),
    ] {
        let Ok(Decoded::Object(object)) = decode(data, &options) else {
            continue;
        };
        let pretty: serde_json::Value = serde_json::from_str(&object.to_json())
            .map_err(|e| format!("the pretty JSON does not parse: {e}"))?;
        let compact = object.to_json_compact();
        let parsed: serde_json::Value = serde_json::from_str(&compact)
            .map_err(|e| format!("the compact JSON does not parse: {e}"))?;
        if pretty != parsed {
            return Err("the pretty and compact JSON differ".to_owned());
        }
        let _ = object.to_yaml();
        match decode(compact.as_bytes(), &DecodeOptions::default()) {
            Ok(Decoded::Object(again))
                if again.to_json_compact() == compact
                    && (object.kind().is_empty() || again.kind() == object.kind())
                    && (object.api_version().is_empty()
                        || again.api_version() == object.api_version()) => {}
            other => return Err(format!("the JSON decodes again as {other:?}")),
        }
    }
    Ok(())
}
