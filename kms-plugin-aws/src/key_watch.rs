//! [`KeyWatch`]: what the plugin knows of its keys, refreshed in the
//! background so that Status answers at once from memory.
//!
//! Every refresh (`--refresh-seconds`, 30 s by default, so a rotation shows
//! in Status within 60 s even when one refresh fails) asks DescribeKey for
//! `--key`, ListKeyRotations where DescribeKey does not report the current
//! key material, and, unless a wrap succeeded since the last refresh, one
//! small Encrypt under a probe context: the only proof that Encrypt is
//! allowed (a key policy or IAM can deny it while DescribeKey works).
//!
//! Health follows what AWS says, never one slow answer:
//! - a verdict (the key disabled or pending deletion, access denied, no
//!   such key) makes the plugin unhealthy at the next refresh, or at once
//!   when a wrap meets it;
//! - a passing failure (throttling, a timeout, no connection) leaves the
//!   last verdict standing until AWS has not answered for
//!   [`KeyWatch::grace`] (three refresh intervals: 90 s by default), so
//!   one slow AWS answer never fails the apiserver's health probes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use k8s_envelope_kms_plugin::KekError;

use crate::failure::AwsFailure;
use crate::key_id::{self, key_id};
use crate::service::KmsService;

/// The key that wraps now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentKey {
    /// Its ARN: what Encrypt is called with (never the alias, so that an
    /// alias moving between a refresh and a wrap cannot mislabel a value).
    pub arn: String,
    /// The key ID reported for it ([`crate::key_id`]).
    pub key_id: String,
}

#[derive(Debug)]
struct State {
    current: Option<CurrentKey>,
    /// `Ok` or why the plugin is unhealthy.
    health: Result<(), String>,
    /// When AWS last answered a refresh.
    last_answer: Option<Instant>,
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
    refresh: Duration,
    state: RwLock<State>,
    /// The ARNs of `--old-key`s and of every key `--key` resolved to while
    /// the plugin ran (an alias moved to a new key still reads the old
    /// key's values).
    readable: RwLock<BTreeSet<String>>,
    /// The last failure logged, so a failing refresh logs once, not every
    /// time.
    last_logged: Mutex<Option<String>>,
}

impl KeyWatch {
    /// Resolves `key` and `old_keys` (failing on any error: a plugin that
    /// cannot name its key must not start), then refreshes every
    /// `refresh` in the background while the returned watch lives.
    pub async fn start(
        kms: KmsService,
        key: &str,
        old_keys: &[String],
        refresh: Duration,
    ) -> Result<Arc<Self>, String> {
        let mut readable = BTreeSet::new();
        for old in old_keys {
            let facts = kms
                .describe(old)
                .await
                .map_err(|e| format!("--old-key {old}: DescribeKey: {e}"))?;
            readable.insert(facts.arn);
        }
        let watch = Arc::new(Self {
            kms,
            key: key.to_owned(),
            refresh,
            state: RwLock::new(State {
                current: None,
                health: Err("not checked yet".into()),
                last_answer: None,
                wrapped_since_refresh: false,
            }),
            readable: RwLock::new(readable),
            last_logged: Mutex::new(None),
        });
        watch
            .check_key()
            .await
            .map_err(|e| format!("--key {key}: {e}"))?;
        watch.refresh_once().await;
        tokio::spawn(refresh_loop(Arc::downgrade(&watch), refresh));
        Ok(watch)
    }

    /// How long refreshes may fail with passing errors before the plugin
    /// reports itself unhealthy.
    pub fn grace(&self) -> Duration {
        self.refresh * 3
    }

    /// The key that wraps now.
    pub fn current(&self) -> Result<CurrentKey, KekError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state.current.clone().ok_or_else(|| {
            KekError::unavailable(match &state.health {
                Err(why) => format!("the key is not resolved yet: {why}"),
                Ok(()) => "the key is not resolved yet".to_owned(),
            })
        })
    }

    /// Ok while the key is usable; the reason otherwise.
    pub fn health(&self) -> Result<(), KekError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state.health.clone().map_err(KekError::unavailable)
    }

    /// Whether the plugin may unwrap values of the key `arn`.
    pub fn can_unwrap(&self, arn: &str) -> bool {
        self.readable
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(arn)
    }

    /// A wrap succeeded: Encrypt is allowed, no probe needed.
    pub fn wrapped(&self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.wrapped_since_refresh = true;
    }

    /// A wrap failed with `failure`: a verdict makes the plugin unhealthy
    /// at once (a passing failure waits for the refreshes).
    pub fn wrap_failed(&self, failure: &AwsFailure) {
        if !failure.is_transient() {
            self.set_health(Err(format!("KMS Encrypt: {failure}")));
        }
    }

    /// The KMS client, for the wraps and unwraps.
    pub fn kms(&self) -> &KmsService {
        &self.kms
    }

    /// DescribeKey and the key material: the current key, recorded.
    async fn check_key(&self) -> Result<(), AwsFailure> {
        let facts = self.kms.describe(&self.key).await?;
        let material = self.kms.material(&facts).await?;
        let current = CurrentKey {
            key_id: key_id(&facts.arn, &material),
            arn: facts.arn.clone(),
        };
        self.readable
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(facts.arn.clone());
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
        state.last_answer = Some(Instant::now());
        state.health = facts.usable();
        Ok(())
    }

    /// One refresh: the key, then the probe (module docs).
    async fn refresh_once(&self) {
        let outcome = match self.check_key().await {
            Ok(()) => self.probe().await,
            Err(failure) => Err(failure),
        };
        let failure = match outcome {
            Ok(()) => {
                self.log_once(None);
                return;
            }
            Err(failure) => failure,
        };
        self.log_once(Some(failure.to_string()));
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let recent = state
            .last_answer
            .is_some_and(|at| at.elapsed() < self.grace());
        if !(failure.is_transient() && recent) {
            state.health = Err(failure.to_string());
        }
    }

    /// An Encrypt of one byte under the probe context, unless a wrap
    /// succeeded since the last refresh or the key is already unusable.
    async fn probe(&self) -> Result<(), AwsFailure> {
        let arn = {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            let wrapped = std::mem::take(&mut state.wrapped_since_refresh);
            match (&state.current, &state.health) {
                (Some(current), Ok(())) if !wrapped => current.arn.clone(),
                _ => return Ok(()),
            }
        };
        self.kms
            .encrypt(&arn, &[0], key_id::probe_context())
            .await
            .map(drop)
    }

    fn set_health(&self, health: Result<(), String>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.health = health;
    }

    /// Logs `failure` when it differs from the last one logged, and a
    /// recovery once.
    fn log_once(&self, failure: Option<String>) {
        let mut last = self
            .last_logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *last == failure {
            return;
        }
        match &failure {
            Some(why) => eprintln!("kms-plugin-aws: refreshing the key failed: {why}"),
            None => eprintln!("kms-plugin-aws: AWS KMS answers again"),
        }
        *last = failure;
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
