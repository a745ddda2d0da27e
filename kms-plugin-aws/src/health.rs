//! [`Health`]: what Status says about the key, from what AWS said last.
//!
//! Three things decide it, kept apart so that one answer never overwrites
//! another's verdict:
//! - the key, as DescribeKey describes it (enabled, for encryption), or a
//!   refusal of DescribeKey or ListKeyRotations (access denied, no such
//!   key);
//! - Encrypt: refused (access denied, disabled, pending deletion) until an
//!   Encrypt under the current key succeeds again, by the probe or by a
//!   wrap;
//! - passing failures (throttling, timeouts, no connection): they make the
//!   plugin unhealthy only once nothing has worked for the grace period
//!   (three refresh intervals), so one slow AWS answer never fails the
//!   apiserver's health probe, and a failure that persists always does.

use std::time::{Duration, Instant};

/// The plugin's health, as its refreshes and wraps find it.
#[derive(Debug, Clone)]
pub struct Health {
    key: Result<(), String>,
    encrypt: Result<(), String>,
    passing: Option<String>,
    last_good: Option<Instant>,
    grace: Duration,
}

impl Health {
    /// Not checked yet (unhealthy); passing failures tolerated for `grace`.
    pub fn new(grace: Duration) -> Self {
        Self {
            key: Err("not checked yet".to_owned()),
            encrypt: Ok(()),
            passing: None,
            last_good: None,
            grace,
        }
    }

    /// DescribeKey answered: whether the key is usable, or why not.
    pub fn key_described(&mut self, usable: Result<(), String>) {
        self.key = usable;
    }

    /// DescribeKey or ListKeyRotations failed: `why`, passing or not.
    pub fn key_failed(&mut self, why: String, passing: bool) {
        if passing {
            self.passing = Some(why);
        } else {
            self.key = Err(why);
        }
    }

    /// An Encrypt under the current key succeeded (the probe or a wrap) at
    /// `now`: Encrypt is allowed, and if the key is usable everything
    /// works.
    pub fn encrypted(&mut self, now: Instant) {
        self.encrypt = Ok(());
        if self.key.is_ok() {
            self.passing = None;
            self.last_good = Some(now);
        }
    }

    /// An Encrypt under the current key failed: `why`, passing or not.
    pub fn encrypt_failed(&mut self, why: String, passing: bool) {
        if passing {
            self.passing = Some(why);
        } else {
            self.encrypt = Err(why);
        }
    }

    /// Healthy at `now`, or why not.
    pub fn verdict(&self, now: Instant) -> Result<(), String> {
        self.key.clone()?;
        self.encrypt.clone()?;
        match &self.passing {
            Some(why)
                if self
                    .last_good
                    .is_none_or(|t| now.duration_since(t) >= self.grace) =>
            {
                Err(why.clone())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(90);

    fn healthy_at(start: Instant) -> Health {
        let mut health = Health::new(GRACE);
        health.key_described(Ok(()));
        health.encrypted(start);
        health
    }

    #[test]
    fn unhealthy_until_checked() {
        let now = Instant::now();
        let mut health = Health::new(GRACE);
        assert!(health.verdict(now).is_err());
        health.key_described(Ok(()));
        health.encrypted(now);
        assert_eq!(health.verdict(now), Ok(()));
    }

    #[test]
    fn a_passing_failure_waits_for_the_grace_period() {
        let start = Instant::now();
        let mut health = healthy_at(start);
        health.key_failed("KMS DescribeKey: no answer in time".into(), true);
        assert_eq!(health.verdict(start + Duration::from_secs(89)), Ok(()));
        assert_eq!(
            health.verdict(start + GRACE),
            Err("KMS DescribeKey: no answer in time".into())
        );
        // AWS answers again.
        health.key_described(Ok(()));
        health.encrypted(start + GRACE);
        assert_eq!(health.verdict(start + GRACE), Ok(()));
    }

    /// DescribeKey answering does not extend the grace of an Encrypt that
    /// keeps failing (a disconnected custom key store, throttling).
    #[test]
    fn describe_answering_does_not_hide_a_failing_encrypt() {
        let start = Instant::now();
        let mut health = healthy_at(start);
        for s in (30..=120).step_by(30) {
            health.key_described(Ok(()));
            health.encrypt_failed("KMS Encrypt: KeyUnavailableException".into(), true);
            let verdict = health.verdict(start + Duration::from_secs(s));
            assert_eq!(verdict.is_ok(), s < 90, "{s}: {verdict:?}");
        }
    }

    /// A refusal of Encrypt stays until an Encrypt succeeds: DescribeKey
    /// saying the key is enabled, or a passing failure, does not clear it.
    #[test]
    fn a_refused_encrypt_stays_until_an_encrypt_succeeds() {
        let start = Instant::now();
        let mut health = healthy_at(start);
        health.encrypt_failed("KMS Encrypt: AccessDeniedException".into(), false);
        health.key_described(Ok(()));
        health.encrypt_failed("KMS Encrypt: ThrottlingException".into(), true);
        let verdict = health.verdict(start + Duration::from_secs(1));
        assert_eq!(verdict, Err("KMS Encrypt: AccessDeniedException".into()));
        health.encrypted(start + Duration::from_secs(2));
        assert_eq!(health.verdict(start + Duration::from_secs(2)), Ok(()));
    }

    #[test]
    fn an_unusable_key_is_unhealthy_at_once_and_a_wrap_does_not_hide_it() {
        let start = Instant::now();
        let mut health = healthy_at(start);
        health.key_described(Err("the key is Disabled".into()));
        health.encrypted(start);
        assert_eq!(health.verdict(start), Err("the key is Disabled".into()));
        health.key_described(Ok(()));
        assert_eq!(health.verdict(start), Ok(()));
    }
}
