//! Key rotation and re-encryption: the configuration steps, an inventory of
//! what is stored, and a driver that rewrites stale values without losing a
//! concurrent write.
//!
//! # The procedure
//!
//! With several kube-apiservers sharing one etcd, a new key must be readable
//! by every server before any server writes with it, and an old key must
//! stay readable until nothing uses it. That is the order of Kubernetes'
//! documented procedure, and of the steps here:
//!
//! 1. **Add** ([`add_key`], [`add_provider`]): the new key goes in second
//!    place of the writing provider (or the new provider in second place of
//!    the list). Every server learns to read it; none writes with it.
//!    Roll the configuration out to every server (restart each, or wait for
//!    `--encryption-provider-config-automatic-reload`).
//! 2. **Promote** ([`promote`]): it moves to first place and writes new
//!    values. Roll out again. Until every server has it, some servers write
//!    with the old key, which all of them still read.
//! 3. **Re-encrypt** ([`reencrypt`]): every value still written by the old
//!    key is rewritten. [`scan`] shows what is left.
//! 4. **Retire** ([`retire`]): the old key is removed. Roll out.
//!
//! [`plan`] computes all four configurations at once and says what to do
//! between them. Each step is a pure function from a configuration to a new
//! one, which is validated before it is returned; rendering it
//! ([`EncryptionConfiguration::to_yaml`](crate::EncryptionConfiguration::to_yaml))
//! keeps the order of every list but not comments (see
//! [`config`](crate::config#rendering)). A step out of order is refused:
//! promoting a key that is not there yet as a reader
//! ([`RotationError::NotPresent`]), retiring the key or provider that writes
//! ([`RotationError::WouldRetireWriter`]). Whether a configuration has
//! reached every server is for the operator to check; what a store still
//! holds is for [`scan`] ([`ScanReport::written_by`] before a retirement).
//!
//! A KMS v2 plugin that rotates its own key needs no configuration change:
//! values under the old key ID read as stale, and step 3 is all there is.
//!
//! # Re-encryption
//!
//! [`reencrypt`] walks a key prefix of a [`Store`](crate::store::Store)
//! (etcd, or a dump), reads each value with the current configuration
//! (through the async [`Transformer`](crate::Transformer) API, so KMS
//! providers work), and rewrites only the stale ones, each with a
//! compare-and-swap on the revision it read: a value changed in between (by
//! a kube-apiserver) is read again and decided on again, never overwritten.
//! Values that no provider can read are reported and left untouched; keys
//! outside the prefix are never touched. The run reports the last key below
//! which everything is done, to resume from after an interruption.
//!
//! Writing to etcd directly, as this does, changes each rewritten object's
//! `resourceVersion`, exactly as `kubectl replace` of the same object would:
//! watchers see a modification with the same content.
//!
//! Which resource (and so which rule's providers) a key belongs to is read
//! from the key, see [`KeyLayout`].

mod edit;
mod error;
mod layout;
mod member;
mod origin;
mod plan;
mod reencrypt;
mod scan;
mod steps;
mod walk;

pub use self::edit::{
    generate_key, kms_v2_provider, next_key_name, rule_for_resource, static_provider,
};
pub use self::error::RotationError;
pub use self::layout::{KeyLayout, KeyResource, DEFAULT_ETCD_PREFIX};
pub use self::member::{Member, ProviderId, UnknownProvider};
pub use self::origin::ValueOrigin;
pub use self::plan::{describe_providers, plan, Change, Plan, PlanStep, StepKind};
pub use self::reencrypt::{
    reencrypt, FailedValue, ReencryptError, ReencryptOptions, ReencryptProgress, ReencryptReport,
    ReencryptTotals, MAX_FAILURES_LISTED, SECRETS_PREFIX,
};
pub use self::scan::{scan, ScanOptions, ScanReport, ScanRow, ValueState};
pub use self::steps::{add_key, add_provider, promote, retire, writer};
pub use self::walk::{Outcome, Stop, ValueReport, WalkError};
