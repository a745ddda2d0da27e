//! An offline store: the JSON that `etcdctl get --prefix -w json` prints.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Entry, Page, Store, StoreError, StoreFuture, Swap};

mod json_value;
mod stream;

pub use self::stream::DumpFile;

/// The output of `etcdctl get --prefix -w json` (etcd v3 API), as a store
/// in memory.
///
/// ```sh
/// ETCDCTL_API=3 etcdctl get --prefix /registry/secrets/ -w json > secrets.json
/// ```
///
/// Keys and values are base64 in the file. Everything else in it (the
/// header, each key's `create_revision`, `version` and `lease`, fields this
/// type does not know) is kept and written back by [`to_json`](Self::to_json).
/// A compare-and-swap bumps the dump's revision the way etcd would: the key
/// gets the next revision as its `mod_revision` and one more `version`, and
/// the header's `revision` follows.
///
/// ```
/// use k8s_envelope::store::{DumpStore, Store};
///
/// let dump = DumpStore::from_json(br#"{"header":{"revision":2},"kvs":[
///   {"key":"L3JlZ2lzdHJ5L3NlY3JldHMvZGVmYXVsdC9h","create_revision":2,"mod_revision":2,"version":1,"value":"aGVsbG8="}
/// ],"count":1}"#, "example")?;
/// let entries = dump.entries();
/// assert_eq!(entries[0].key, b"/registry/secrets/default/a");
/// assert_eq!(entries[0].value, b"hello");
/// assert_eq!(entries[0].revision, 2);
/// # Ok::<(), k8s_envelope::store::StoreError>(())
/// ```
///
/// The whole dump is held in memory; [`DumpFile`] reads and writes a dump
/// file as it goes, in memory independent of its size.
pub struct DumpStore {
    what: String,
    state: Mutex<State>,
}

struct State {
    header: Option<Header>,
    extra: Map<String, Value>,
    revision: i64,
    kvs: BTreeMap<Vec<u8>, Kv>,
}

#[derive(Clone)]
struct Kv {
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    value: Vec<u8>,
    lease: i64,
    extra: Map<String, Value>,
}

/// The file's shape, as etcdctl writes it (Go's `encoding/json` of a
/// `RangeResponse`, with `omitempty` on every field).
#[derive(Deserialize, Serialize)]
struct FileShape {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    header: Option<Header>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    kvs: Vec<DumpKv>,
    #[serde(default, skip_serializing_if = "is_false")]
    more: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    count: i64,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Clone, Default, Deserialize, Serialize)]
struct Header {
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    cluster_id: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    member_id: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    revision: i64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    raft_term: u64,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize, Serialize)]
struct DumpKv {
    key: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    create_revision: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    mod_revision: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    version: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    value: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    lease: i64,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// The largest revision or version a dump may hold. etcd's are positive
/// 64-bit counts far below it; the headroom keeps the increments of
/// [`DumpStore::put`] and [`Store::compare_and_swap`] from overflowing.
const MAX_COUNTER: i64 = 1 << 62;

fn check_counter(field: &str, n: i64) -> Result<(), String> {
    if (0..=MAX_COUNTER).contains(&n) {
        Ok(())
    } else {
        Err(format!("{field} {n} is out of range (0 to 2^62)"))
    }
}

/// Checks and decodes the `i`-th entry of a dump.
fn decode_kv(i: usize, kv: DumpKv) -> Result<(Vec<u8>, Kv), String> {
    for (field, n) in [
        ("create_revision", kv.create_revision),
        ("mod_revision", kv.mod_revision),
        ("version", kv.version),
    ] {
        check_counter(&format!("kvs[{i}].{field}"), n)?;
    }
    let key = BASE64
        .decode(&kv.key)
        .map_err(|_| format!("kvs[{i}].key is not base64"))?;
    let value = BASE64
        .decode(&kv.value)
        .map_err(|_| format!("kvs[{i}].value is not base64"))?;
    let entry = Kv {
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value,
        lease: kv.lease,
        extra: kv.extra,
    };
    Ok((key, entry))
}

/// An entry as the file holds it.
fn encode_kv(key: &[u8], kv: &Kv) -> DumpKv {
    DumpKv {
        key: BASE64.encode(key),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: BASE64.encode(&kv.value),
        lease: kv.lease,
        extra: kv.extra.clone(),
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl DumpStore {
    /// An empty dump (revision 1), to fill with [`put`](Self::put).
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            state: Mutex::new(State {
                header: None,
                extra: Map::new(),
                revision: 1,
                kvs: BTreeMap::new(),
            }),
        }
    }

    /// Parses the JSON of `etcdctl get -w json`; `what` names the input in
    /// errors and [`describe`](Store::describe).
    ///
    /// # Errors
    ///
    /// [`StoreError::Dump`] when it is not such JSON: not JSON at all, a key
    /// or value that is not base64, a key that appears twice, a negative or
    /// implausibly large (over 2^62) revision or version, or a truncated
    /// listing (`"more": true`, from `--limit`).
    pub fn from_json(json: &[u8], what: impl Into<String>) -> Result<Self, StoreError> {
        let what = what.into();
        let bad = |reason: String| StoreError::Dump {
            what: what.clone(),
            reason,
        };
        // A type error may quote a string of the input, which may be a
        // plaintext value: strings are taken out of the message.
        let file: FileShape = serde_json::from_slice(json).map_err(|e| {
            bad(format!(
                "invalid JSON: {}",
                crate::config::redact_strings(&e.to_string())
            ))
        })?;
        if file.more {
            return Err(bad(
                "the listing was cut short (\"more\": true); dump without --limit".to_owned(),
            ));
        }
        let mut revision = file.header.as_ref().map_or(0, |h| h.revision);
        check_counter("header.revision", revision).map_err(&bad)?;
        let mut kvs = BTreeMap::new();
        for (i, kv) in file.kvs.into_iter().enumerate() {
            let (key, entry) = decode_kv(i, kv).map_err(&bad)?;
            revision = revision.max(entry.mod_revision);
            if kvs.insert(key, entry).is_some() {
                return Err(bad(format!("kvs[{i}].key appears twice")));
            }
        }
        Ok(Self {
            what,
            state: Mutex::new(State {
                header: file.header,
                extra: file.extra,
                revision: revision.max(1),
                kvs,
            }),
        })
    }

    /// Reads a dump file (see [`from_json`](Self::from_json)).
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when it cannot be read, [`StoreError::Dump`] when
    /// it is not a dump.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let json = std::fs::read(path).map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&json, path.display().to_string())
    }

    /// The dump as etcdctl would print it now: one line of JSON, keys in
    /// order, with the current revision in the header and the current count.
    pub fn to_json(&self) -> Vec<u8> {
        let state = self.lock();
        let mut header = state.header.clone().unwrap_or_default();
        header.revision = state.revision;
        let kvs: Vec<DumpKv> = state
            .kvs
            .iter()
            .map(|(key, kv)| encode_kv(key, kv))
            .collect();
        let file = FileShape {
            header: Some(header),
            count: kvs.len() as i64,
            kvs,
            more: false,
            extra: state.extra.clone(),
        };
        // Serializing maps with string keys and plain values cannot fail.
        let mut out = serde_json::to_vec(&file).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Writes [`to_json`](Self::to_json) to `path` as a private file
    /// (mode 0600, atomic, fsynced; see [`crate::private_file`]): a dump can
    /// hold plaintext (identity values).
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the file cannot be written.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), StoreError> {
        let path = path.as_ref();
        let io = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        crate::private_file::write(path, &self.to_json()).map_err(io)
    }

    /// Writes a key unconditionally, as a put to etcd would (next revision).
    pub fn put(&self, key: &[u8], value: &[u8]) -> i64 {
        let mut state = self.lock();
        state.revision += 1;
        let revision = state.revision;
        let kv = state.kvs.entry(key.to_vec()).or_insert_with(|| Kv {
            create_revision: revision,
            mod_revision: 0,
            version: 0,
            value: Vec::new(),
            lease: 0,
            extra: Map::new(),
        });
        kv.mod_revision = revision;
        kv.version += 1;
        kv.value = value.to_vec();
        revision
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock()
            .kvs
            .iter()
            .map(|(key, kv)| entry(key, kv))
            .collect()
    }

    /// The dump's revision (the highest `mod_revision`, or the header's).
    pub fn revision(&self) -> i64 {
        self.lock().revision
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn entry(key: &[u8], kv: &Kv) -> Entry {
    Entry {
        key: key.to_vec(),
        value: kv.value.clone(),
        revision: kv.mod_revision,
    }
}

impl Store for DumpStore {
    fn list<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
        limit: usize,
    ) -> StoreFuture<'a, Page> {
        let state = self.lock();
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        let mut entries = Vec::new();
        let mut more = false;
        for (key, kv) in state.kvs.range((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if entries.len() == limit.max(1) {
                more = true;
                break;
            }
            entries.push(entry(key, kv));
        }
        Box::pin(std::future::ready(Ok(Page { entries, more })))
    }

    fn get<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Entry>> {
        let found = self.lock().kvs.get(key).map(|kv| entry(key, kv));
        Box::pin(std::future::ready(Ok(found)))
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a [u8],
        expected: i64,
        value: &'a [u8],
    ) -> StoreFuture<'a, Swap> {
        let mut state = self.lock();
        let next = state.revision + 1;
        let swap = match state.kvs.get_mut(key) {
            None => Swap::Deleted,
            Some(kv) if kv.mod_revision != expected => Swap::Changed(entry(key, kv)),
            Some(kv) => {
                kv.mod_revision = next;
                kv.version += 1;
                kv.value = value.to_vec();
                Swap::Written(next)
            }
        };
        if matches!(swap, Swap::Written(_)) {
            state.revision = next;
        }
        Box::pin(std::future::ready(Ok(swap)))
    }

    fn count<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Option<u64>> {
        let state = self.lock();
        let n = state
            .kvs
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .count();
        Box::pin(std::future::ready(Ok(Some(n as u64))))
    }

    fn describe(&self) -> String {
        format!("dump {}", self.what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETCDCTL: &[u8] = br#"{"header":{"cluster_id":324952591200643719,"member_id":3319814642761637952,"revision":5,"raft_term":2},"kvs":[{"key":"L3JlZ2lzdHJ5L2V2ZW50cy94","create_revision":5,"mod_revision":5,"version":1,"value":"ZXY=","lease":2324035563566598920},{"key":"L3JlZ2lzdHJ5L3NlY3JldHMvYQ==","create_revision":2,"mod_revision":2,"version":1,"value":"aGVsbG8="},{"key":"L3JlZ2lzdHJ5L3NlY3JldHMvYg==","create_revision":3,"mod_revision":3,"version":1,"value":"YmluAP8="},{"key":"L3JlZ2lzdHJ5L3NlY3JldHMvZW1wdHk=","create_revision":4,"mod_revision":4,"version":1}],"count":4}
"#;

    fn block<T>(f: StoreFuture<'_, T>) -> T {
        // Every future of this store is ready at once.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = f;
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => r.expect("dump store never fails"),
            std::task::Poll::Pending => unreachable!("dump futures are ready"),
        }
    }

    #[test]
    fn etcdctl_output_round_trips_byte_for_byte() {
        let dump = DumpStore::from_json(ETCDCTL, "test").expect("parses");
        assert_eq!(dump.to_json(), ETCDCTL);
        assert_eq!(dump.revision(), 5);
    }

    #[test]
    fn revisions_out_of_range_are_refused() {
        for (json, field) in [
            (r#"{"header":{"revision":-1}}"#, "header.revision -1"),
            (
                r#"{"kvs":[{"key":"YQ==","mod_revision":9223372036854775807}]}"#,
                "kvs[0].mod_revision 9223372036854775807",
            ),
            (
                r#"{"kvs":[{"key":"YQ==","version":-3}]}"#,
                "kvs[0].version -3",
            ),
        ] {
            let err = DumpStore::from_json(json.as_bytes(), "t")
                .err()
                .expect(json);
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn list_pages_within_the_prefix() {
        let dump = DumpStore::from_json(ETCDCTL, "test").expect("parses");
        let page = block(dump.list(b"/registry/secrets/", None, 2));
        let keys: Vec<&[u8]> = page.entries.iter().map(|e| e.key.as_slice()).collect();
        assert_eq!(keys, [&b"/registry/secrets/a"[..], b"/registry/secrets/b"]);
        assert!(page.more);
        let page = block(dump.list(b"/registry/secrets/", Some(b"/registry/secrets/b"), 2));
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].value, b"");
        assert!(!page.more);
        assert_eq!(block(dump.count(b"/registry/")), Some(4));
    }

    #[test]
    fn compare_and_swap_like_etcd() {
        let dump = DumpStore::from_json(ETCDCTL, "test").expect("parses");
        let key = b"/registry/events/x";
        assert_eq!(
            block(dump.compare_and_swap(key, 4, b"no")),
            Swap::Changed(Entry {
                key: key.to_vec(),
                value: b"ev".to_vec(),
                revision: 5,
            })
        );
        assert_eq!(
            block(dump.compare_and_swap(key, 5, b"new")),
            Swap::Written(6)
        );
        assert_eq!(
            block(dump.compare_and_swap(b"/missing", 5, b"x")),
            Swap::Deleted
        );
        let json = String::from_utf8(dump.to_json()).expect("utf-8");
        // The lease is kept; version and revisions move on.
        assert!(json.contains(r#""create_revision":5,"mod_revision":6,"version":2,"value":"bmV3","lease":2324035563566598920"#), "{json}");
        assert!(json.contains(r#""revision":6,"#), "{json}");
    }

    #[test]
    fn errors_quote_no_value() {
        let err = DumpStore::from_json(
            br#"{"kvs":[{"key":"YQ==","mod_revision":"c2VjcmV0"}]}"#,
            "x",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("invalid type: a string"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn bad_dumps_are_refused() {
        for bad in [
            &b"not json"[..],
            br#"{"kvs":[{"key":"***"}]}"#,
            br#"{"kvs":[],"more":true}"#,
            br#"{"kvs":[{"key":"YQ=="},{"key":"YQ=="}]}"#,
        ] {
            assert!(DumpStore::from_json(bad, "bad").is_err());
        }
    }
}
