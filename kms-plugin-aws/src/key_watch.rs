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

impl State {
    fn new(grace: Duration) -> Self {
        Self {
            current: None,
            health: Health::new(grace),
            wrapped_since_refresh: false,
        }
    }

    /// Whether `arn` is the key that wraps now: what a wrap's outcome says
    /// of the health only when it is (a wrap that raced a key change says
    /// nothing of the new key).
    fn is_current(&self, arn: &str) -> bool {
        self.current.as_ref().is_some_and(|c| c.arn == arn)
    }

    /// A wrap under `arn` succeeded at `now`.
    fn wrapped(&mut self, arn: &str, now: Instant) {
        if self.is_current(arn) {
            self.wrapped_since_refresh = true;
            self.health.encrypted(now);
        }
    }

    /// A wrap under `arn` failed with `failure`.
    fn wrap_failed(&mut self, arn: &str, failure: &AwsFailure) {
        if failure.kind() == KekErrorKind::FailedPrecondition && self.is_current(arn) {
            self.health
                .encrypt_failed(format!("KMS Encrypt: {failure}"), false);
        }
    }

    /// Refuses a change of key ID that is not a rotation: a key once
    /// reported with its current key material that DescribeKey (`facts`)
    /// then reports without it (a proxy, an endpoint of another version)
    /// would otherwise fall back to the rotation dates and change its key
    /// ID. That is a passing failure; the key ID stays.
    fn keeps_material_id(&self, facts: &KeyFacts) -> Result<(), AwsFailure> {
        let had_material_id = self.current.as_ref().is_some_and(|current| {
            current.arn == facts.arn && matches!(current.material, Material::Current(_))
        });
        if had_material_id && facts.current_material.is_none() {
            return Err(AwsFailure::Unreachable(
                "DescribeKey did not report the key's CurrentKeyMaterialId this time; the key ID stays"
                    .to_owned(),
            ));
        }
        Ok(())
    }
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
        let give_up = tokio::time::Instant::now() + START_PATIENCE;
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
            state: RwLock::new(State::new(refresh * 3)),
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
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .wrapped(arn, Instant::now());
    }

    /// A wrap under `arn` failed with `failure`: a refusal by AWS (access
    /// denied, disabled, pending deletion) makes the plugin unhealthy at
    /// once; a passing failure waits for the refreshes; a failure of the
    /// request itself says nothing of the key.
    pub fn wrap_failed(&self, arn: &str, failure: &AwsFailure) {
        // Passing failures (throttling above all) change nothing: no lock
        // taken that Status would wait for.
        if failure.kind() != KekErrorKind::FailedPrecondition {
            return;
        }
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .wrap_failed(arn, failure);
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
    /// not a rotation ([`State::keeps_material_id`]).
    async fn stable_material(&self, facts: &KeyFacts) -> Result<Material, AwsFailure> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keeps_material_id(facts)?;
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
        if !state.is_current(&arn) {
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
/// (backing off from 0.5 s to 4 s between passing failures). On Tokio's
/// clock, which the tests pause.
async fn patiently<T, F, Fut>(give_up: tokio::time::Instant, mut call: F) -> Result<T, AwsFailure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsFailure>>,
{
    let mut pause = Duration::from_millis(500);
    loop {
        match call().await {
            Err(failure)
                if failure.is_transient() && tokio::time::Instant::now() + pause < give_up =>
            {
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const OTHER_ARN: &str =
        "arn:aws:kms:eu-west-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321";

    fn refused() -> AwsFailure {
        AwsFailure::Service {
            code: "AccessDeniedException".to_owned(),
            message: None,
            server_error: false,
        }
    }

    fn throttled() -> AwsFailure {
        AwsFailure::Service {
            code: "ThrottlingException".to_owned(),
            message: None,
            server_error: false,
        }
    }

    fn facts(arn: &str, current_material: Option<&str>) -> KeyFacts {
        KeyFacts {
            arn: arn.to_owned(),
            state: "Enabled".to_owned(),
            encrypts: true,
            current_material: current_material.map(str::to_owned),
        }
    }

    /// A healthy state whose current key is `ARN` wrapping with `material`.
    fn healthy(material: Material) -> (State, Instant) {
        let now = Instant::now();
        let mut state = State::new(Duration::from_secs(90));
        state.current = Some(CurrentKey {
            key_id: key_id(ARN, &material),
            arn: ARN.to_owned(),
            material,
        });
        state.health.key_described(Ok(()));
        state.health.encrypted(now);
        assert_eq!(state.health.verdict(now), Ok(()));
        (state, now)
    }

    #[test]
    fn a_refused_wrap_under_the_current_key_is_unhealthy_at_once() {
        let (mut state, now) = healthy(Material::Original);
        state.wrap_failed(ARN, &refused());
        let why = state
            .health
            .verdict(now)
            .expect_err("a refused wrap is unhealthy");
        assert!(
            why.contains("KMS Encrypt") && why.contains("AccessDenied"),
            "{why}"
        );
        // Until an Encrypt under it succeeds again.
        state.wrapped(ARN, now);
        assert_eq!(state.health.verdict(now), Ok(()));
        assert!(state.wrapped_since_refresh);
    }

    #[test]
    fn a_wrap_under_another_key_says_nothing_of_the_current_one() {
        // A wrap that began before the key changed (an alias moved), and
        // ended after: its refusal or success is the old key's.
        let (mut state, now) = healthy(Material::Original);
        state.wrap_failed(OTHER_ARN, &refused());
        assert_eq!(state.health.verdict(now), Ok(()));
        state
            .health
            .encrypt_failed("KMS Encrypt: refused".to_owned(), false);
        state.wrapped(OTHER_ARN, now);
        assert!(state.health.verdict(now).is_err());
        assert!(!state.wrapped_since_refresh);
    }

    #[test]
    fn a_passing_wrap_failure_waits_for_the_refreshes() {
        let (mut state, now) = healthy(Material::Original);
        for failure in [
            throttled(),
            AwsFailure::TimedOut,
            AwsFailure::Unreachable("reset".to_owned()),
        ] {
            state.wrap_failed(ARN, &failure);
            // Not recorded at all, not even as passing: past the grace
            // period a recorded passing failure would turn it unhealthy.
            assert_eq!(
                state.health.verdict(now + Duration::from_secs(90)),
                Ok(()),
                "{failure}"
            );
        }
    }

    #[test]
    fn a_reported_material_id_that_goes_missing_keeps_the_key_id() {
        let (state, _) = healthy(Material::Current("a1".to_owned()));
        let failure = state
            .keeps_material_id(&facts(ARN, None))
            .expect_err("the material ID went missing");
        assert!(failure.is_transient(), "a passing failure: {failure}");
        // Reported again, another material (a rotation), another key, or a
        // key never reported with one: no objection.
        for described in [
            facts(ARN, Some("a1")),
            facts(ARN, Some("b2")),
            facts(OTHER_ARN, None),
        ] {
            assert!(state.keeps_material_id(&described).is_ok(), "{described:?}");
        }
        let (dated, _) = healthy(Material::RotatedAt {
            seconds: 1,
            millis: 2,
        });
        assert!(dated.keeps_material_id(&facts(ARN, None)).is_ok());
        assert!(State::new(Duration::from_secs(1))
            .keeps_material_id(&facts(ARN, None))
            .is_ok());
    }

    /// `patiently` over answers given in turn, the last repeated; the
    /// outcome, and how many calls it took.
    async fn patiently_over(
        answers: &[Result<u8, AwsFailure>],
        patience: Duration,
    ) -> (Result<u8, AwsFailure>, usize) {
        let calls = Cell::new(0);
        let outcome = patiently(tokio::time::Instant::now() + patience, || {
            let answer = answers[calls.get().min(answers.len() - 1)].clone();
            calls.set(calls.get() + 1);
            async move { answer }
        })
        .await;
        (outcome, calls.get())
    }

    #[tokio::test(start_paused = true)]
    async fn patiently_retries_passing_failures_only() {
        let minute = Duration::from_secs(60);
        let (outcome, calls) = patiently_over(
            &[Err(throttled()), Err(AwsFailure::TimedOut), Ok(7)],
            minute,
        )
        .await;
        assert_eq!((outcome.ok(), calls), (Some(7), 3));

        let (outcome, calls) = patiently_over(&[Err(refused()), Ok(7)], minute).await;
        assert!(
            matches!(outcome, Err(AwsFailure::Service { code, .. }) if code == "AccessDeniedException")
        );
        assert_eq!(calls, 1, "a refusal is final");
    }

    #[tokio::test(start_paused = true)]
    async fn patiently_gives_up_when_its_time_is_out() {
        let started = tokio::time::Instant::now();
        let (outcome, calls) = patiently_over(&[Err(throttled())], Duration::from_secs(30)).await;
        assert!(outcome.expect_err("never answered").is_transient());
        // Pauses of 0.5, 1, 2, 4, 4, ... s: the tenth call is at
        // 0.5 + 1 + 2 + 4 * 6 = 27.5 s, and one more pause would pass 30 s.
        assert_eq!(calls, 10);
        assert_eq!(started.elapsed(), Duration::from_millis(27_500));
    }
}
