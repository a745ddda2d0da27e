//! [`KeyWatch`]: what the plugin knows of its keys, refreshed in the
//! background so that Status answers at once from memory.
//!
//! Every refresh (`--refresh-seconds`, 30 s by default, so a rotation shows
//! in Status within 60 s) asks DescribeKey for `--key`, ListKeyRotations
//! where DescribeKey does not report the current key material, and, unless
//! a wrap succeeded since the last refresh, one small Encrypt under a
//! probe context: the only proof that Encrypt is allowed (a key policy or
//! IAM can deny it while DescribeKey works). What they find goes into the
//! [`Health`].

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use k8s_envelope_kms_plugin::{KekError, KekErrorKind};

use crate::failure::AwsFailure;
use crate::health::Health;
use crate::key_id::{self, key_id, Material};
use crate::service::{KeyFacts, KmsService};

/// How long a start waits for AWS to answer through passing failures
/// (throttling, timeouts) before giving up.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// The key that wraps now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentKey {
    /// Its ARN: what Encrypt is called with (never the alias, so that an
    /// alias moving between a refresh and a wrap cannot mislabel a value).
    pub arn: String,
    /// Which of its key material wraps.
    pub material: Material,
    /// The key ID reported for it ([`crate::key_id`]).
    pub key_id: String,
}

#[derive(Debug)]
struct State {
    current: Option<CurrentKey>,
    health: Health,
    /// A wrap succeeded since the last refresh (no probe needed).
    wrapped_since_refresh: bool,
}

/// The plugin's keys: the current one, refreshed, and every key whose
/// values it may unwrap.
#[derive(Debug)]
pub struct KeyWatch {
    kms: KmsService,
    /// `--key` as given: an ID, ARN or alias, resolved at each refresh.
    key: String,
    state: RwLock<State>,
    /// The ARNs of `--old-key`s and of every key `--key` resolved to while
    /// the plugin ran (an alias moved to a new key still reads the old
    /// key's values).
    readable: RwLock<BTreeSet<String>>,
    /// The last problem logged, so a failing refresh logs once, not every
    /// time.
    last_logged: Mutex<Option<String>>,
}

impl KeyWatch {
    /// Resolves `key` and `old_keys`, then refreshes every `refresh` in the
    /// background while the returned watch lives. A refusal (no such key,
    /// access denied) fails at once: a plugin that cannot name its keys
    /// must not start; passing failures are retried for 30 s.
    pub async fn start(
        kms: KmsService,
        key: &str,
        old_keys: &[String],
        refresh: Duration,
    ) -> Result<Arc<Self>, String> {
        let give_up = Instant::now() + START_PATIENCE;
        let mut readable = BTreeSet::new();
        for old in old_keys {
            let facts = patiently(give_up, || kms.describe(old))
                .await
                .map_err(|e| format!("--old-key {old}: KMS DescribeKey: {e}"))?;
            readable.insert(facts.arn);
        }
        let watch = Arc::new(Self {
            kms,
            key: key.to_owned(),
            state: RwLock::new(State {
                current: None,
                health: Health::new(refresh * 3),
                wrapped_since_refresh: false,
            }),
            readable: RwLock::new(readable),
            last_logged: Mutex::new(None),
        });
        let facts = patiently(give_up, || watch.kms.describe(key))
            .await
            .map_err(|e| format!("--key {key}: KMS DescribeKey: {e}"))?;
        let material = patiently(give_up, || watch.kms.material(&facts))
            .await
            .map_err(|e| format!("--key {key}: KMS ListKeyRotations: {e}"))?;
        watch.record_key(&facts, material);
        watch.probe().await;
        tokio::spawn(refresh_loop(Arc::downgrade(&watch), refresh));
        Ok(watch)
    }

    /// The key that wraps now.
    pub fn current(&self) -> Result<CurrentKey, KekError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .current
            .clone()
            .ok_or_else(|| KekError::unavailable("the key is not resolved yet"))
    }

    /// Ok while the key is usable; the reason otherwise.
    pub fn health(&self) -> Result<(), KekError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .health
            .verdict(Instant::now())
            .map_err(KekError::unavailable)
    }

    /// Whether the plugin may unwrap values of the key `arn`.
    pub fn can_unwrap(&self, arn: &str) -> bool {
        self.readable
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(arn)
    }

    /// A wrap under `arn` succeeded: Encrypt is allowed, no probe needed.
    pub fn wrapped(&self, arn: &str) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.current.as_ref().is_some_and(|c| c.arn == arn) {
            state.wrapped_since_refresh = true;
            state.health.encrypted(Instant::now());
        }
    }

    /// A wrap under `arn` failed with `failure`: a refusal by AWS (access
    /// denied, disabled, pending deletion) makes the plugin unhealthy at
    /// once; a passing failure waits for the refreshes; a failure of the
    /// request itself says nothing of the key.
    pub fn wrap_failed(&self, arn: &str, failure: &AwsFailure) {
        if failure.kind() != KekErrorKind::FailedPrecondition {
            return;
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.current.as_ref().is_some_and(|c| c.arn == arn) {
            state
                .health
                .encrypt_failed(format!("KMS Encrypt: {failure}"), false);
        }
    }

    /// The KMS client, for the wraps and unwraps.
    pub fn kms(&self) -> &KmsService {
        &self.kms
    }

    /// One refresh: DescribeKey, the key material, then the probe.
    async fn refresh_once(&self) {
        let facts = match self.kms.describe(&self.key).await {
            Ok(facts) => facts,
            Err(failure) => return self.key_failed("KMS DescribeKey", &failure),
        };
        let material = match self.stable_material(&facts).await {
            Ok(material) => material,
            Err(failure) => return self.key_failed("KMS ListKeyRotations", &failure),
        };
        if self.record_key(&facts, material) {
            self.probe().await;
        }
    }

    /// The key material of `facts`, and never a change of key ID that is
    /// not a rotation: a key once reported with its current key material
    /// that DescribeKey then reports without it (a proxy, an endpoint of
    /// another version) keeps its key ID, as a passing failure.
    async fn stable_material(&self, facts: &KeyFacts) -> Result<Material, AwsFailure> {
        let had_material_id = {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            state.current.as_ref().is_some_and(|current| {
                current.arn == facts.arn && matches!(current.material, Material::Current(_))
            })
        };
        if had_material_id && facts.current_material.is_none() {
            return Err(AwsFailure::Unreachable(
                "DescribeKey did not report the key's CurrentKeyMaterialId this time; the key ID stays"
                    .to_owned(),
            ));
        }
        self.kms.material(facts).await
    }

    /// Records what DescribeKey said and the key's material; logs a change
    /// of key ID. Whether the key is usable.
    fn record_key(&self, facts: &KeyFacts, material: Material) -> bool {
        let current = CurrentKey {
            key_id: key_id(&facts.arn, &material),
            arn: facts.arn.clone(),
            material,
        };
        self.readable
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(facts.arn.clone());
        let usable = facts.usable();
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.current.as_ref() != Some(&current) {
            match &state.current {
                Some(before) => eprintln!(
                    "kms-plugin-aws: the key ID changed from {} to {} (values wrapped before read as stale until re-encrypted)",
                    before.key_id, current.key_id
                ),
                None => eprintln!("kms-plugin-aws: key ID {}", current.key_id),
            }
            state.current = Some(current);
        }
        state.health.key_described(usable.clone());
        drop(state);
        match usable {
            Ok(()) => true,
            Err(why) => {
                self.log_once(Some(why));
                false
            }
        }
    }

    /// DescribeKey or ListKeyRotations failed.
    fn key_failed(&self, operation: &str, failure: &AwsFailure) {
        let why = format!("{operation}: {failure}");
        self.log_once(Some(why.clone()));
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.health.key_failed(why, failure.is_transient());
    }

    /// An Encrypt of one byte under the probe context, unless a wrap
    /// succeeded since the last refresh.
    async fn probe(&self) {
        let arn = {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            let wrapped = std::mem::take(&mut state.wrapped_since_refresh);
            match &state.current {
                Some(current) if !wrapped => current.arn.clone(),
                _ => {
                    drop(state);
                    return self.log_once(None);
                }
            }
        };
        let outcome = self.kms.encrypt(&arn, &[0], key_id::probe_context()).await;
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.current.as_ref().is_none_or(|c| c.arn != arn) {
            return;
        }
        match outcome {
            Ok(_) => {
                state.health.encrypted(Instant::now());
                drop(state);
                self.log_once(None);
            }
            Err(failure) => {
                let why = format!("KMS Encrypt: {failure}");
                let passing = failure.kind() != KekErrorKind::FailedPrecondition;
                state.health.encrypt_failed(why.clone(), passing);
                drop(state);
                self.log_once(Some(why));
            }
        }
    }

    /// Logs `problem` when it differs from the last one logged, and a
    /// recovery once.
    fn log_once(&self, problem: Option<String>) {
        let mut last = self
            .last_logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *last == problem {
            return;
        }
        match &problem {
            Some(why) => eprintln!("kms-plugin-aws: {why}"),
            None => eprintln!("kms-plugin-aws: AWS KMS answers again and the key is usable"),
        }
        *last = problem;
    }
}

/// `call` until it succeeds, fails with a refusal, or `give_up` passes
/// (backing off from 0.5 s to 4 s between passing failures).
async fn patiently<T, F, Fut>(give_up: Instant, mut call: F) -> Result<T, AwsFailure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsFailure>>,
{
    let mut pause = Duration::from_millis(500);
    loop {
        match call().await {
            Err(failure) if failure.is_transient() && Instant::now() + pause < give_up => {
                eprintln!("kms-plugin-aws: {failure}; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(4));
            }
            outcome => return outcome,
        }
    }
}

/// Refreshes `watch` every `refresh` until it is dropped.
async fn refresh_loop(watch: Weak<KeyWatch>, refresh: Duration) {
    loop {
        tokio::time::sleep(refresh).await;
        let Some(watch) = watch.upgrade() else {
            return;
        };
        watch.refresh_once().await;
    }
}
