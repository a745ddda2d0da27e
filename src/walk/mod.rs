//! Walks over a [`Store`](crate::store::Store): an inventory of what it
//! holds ([`scan`]) and the re-encryption of what is stale ([`reencrypt`]),
//! on one engine that lists a key prefix in pages, processes values on a
//! bounded set of tasks and reports each value with one [`Outcome`].
//!
//! # Re-encryption
//!
//! [`reencrypt`] walks a key prefix of a store (etcd, a dump, a snapshot),
//! reads each value with the current configuration (through the async
//! [`Transformer`](crate::Transformer) API, so KMS providers work), and
//! rewrites only the stale ones, each with a compare-and-swap on the
//! revision it read: a value changed in between (by a kube-apiserver) is
//! read again and decided on again, never overwritten. Values that no
//! provider can read are reported and left untouched; keys outside the
//! prefix are never touched. The run reports the last key below which
//! everything is done, to resume from after an interruption.
//!
//! Writing to etcd directly, as this does, changes each rewritten object's
//! `resourceVersion`, exactly as `kubectl replace` of the same object would:
//! watchers see a modification with the same content.
//!
//! # Inventory
//!
//! [`scan`] reads every value once and counts them by resource, by the
//! provider and key that wrote them ([`ValueOrigin`], read from the value's
//! prefix) and by [`Outcome`]: what step 3 and step 4 of a rotation
//! ([`crate::rotation`]) need to know.
//!
//! # Verification
//!
//! `verify` (with the `objects` feature) reads every value as the
//! apiserver would, decoding what it decrypts, and says whether a store (a
//! backup, before a restore) can be read with a configuration: what the
//! values depend on (keys by fingerprint, KMS key IDs, plaintext) and each
//! value that cannot be read, with an `UnreadableReason` a script can act
//! on and the kubectl command that deletes it when nothing else can.
//!
//! Which resource (and so which rule's providers) a key belongs to is read
//! from the key, see [`KeyLayout`](crate::store::KeyLayout). Every walk
//! reports its values in key order.

mod engine;
mod origin;
mod reencrypt;
mod scan;
#[cfg(feature = "objects")]
mod verify;

pub use self::engine::{Outcome, Progress, Stop, ValueReport, WalkError};
pub use self::origin::ValueOrigin;
pub use self::reencrypt::{
    reencrypt, FailedValue, ReencryptError, ReencryptOptions, ReencryptProgress, ReencryptReport,
    ReencryptTotals, MAX_FAILURES_LISTED,
};
pub use self::scan::{scan, ScanOptions, ScanReport, ScanRow};
#[cfg(feature = "objects")]
pub use self::verify::{
    verify, Dependency, DependencyCount, UnreadableReason, UnreadableValue, VerifyOptions,
    VerifyReport, LIST_ERROR_LIMIT,
};
