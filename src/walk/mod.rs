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
//! Which resource (and so which rule's providers) a key belongs to is read
//! from the key, see [`KeyLayout`](crate::store::KeyLayout).

mod engine;
mod origin;
mod reencrypt;
mod scan;

pub use self::engine::{Outcome, Stop, ValueReport, WalkError};
pub use self::origin::ValueOrigin;
pub use self::reencrypt::{
    reencrypt, FailedValue, ReencryptError, ReencryptOptions, ReencryptProgress, ReencryptReport,
    ReencryptTotals, MAX_FAILURES_LISTED,
};
pub use self::scan::{scan, ScanOptions, ScanReport, ScanRow};
