//! Key rotation: the configuration steps, pure functions from one
//! `EncryptionConfiguration` to the next. The walks over a store that go
//! with them (an inventory, and re-encryption without losing a concurrent
//! write) are [`crate::walk`].
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
//! 3. **Re-encrypt** ([`walk::reencrypt`](crate::walk::reencrypt)): every
//!    value still written by the old key is rewritten.
//!    [`walk::scan`](crate::walk::scan) shows what is left.
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
//! holds is for [`walk::scan`](crate::walk::scan)
//! ([`ScanReport::written_by`](crate::walk::ScanReport::written_by) before a
//! retirement).
//!
//! A KMS v2 plugin that rotates its own key needs no configuration change:
//! values under the old key ID read as stale, and step 3 is all there is.
//!
//! # Re-encryption and inventory
//!
//! Step 3 and what a store holds are walks over a store: [`crate::walk`]
//! (`reencrypt`, `scan`). Which resource a key belongs to is read from the
//! key, see [`KeyLayout`](crate::store::KeyLayout).

mod edit;
mod error;
mod member;
mod plan;
mod steps;

pub use self::edit::{
    generate_key, kms_v2_provider, next_key_name, rule_for_resource, static_provider,
};
pub use self::error::RotationError;
pub use self::member::{Member, ProviderId, UnknownProvider};
pub use self::plan::{describe_providers, plan, Change, Plan, PlanStep, StepKind};
pub use self::steps::{add_key, add_provider, promote, retire, writer};
