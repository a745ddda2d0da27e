//! A dump file read and written as it goes: [`DumpFile`].
//!
//! Opening reads the file once to check it (every entry decoded and
//! dropped; what is kept is the header, the count and where the entries
//! start). A walk then reads the entries from there, a page at a time; the
//! entries listed and not yet done are the only ones held. The output, if
//! there is one, is written in key order as the walk says entries are done
//! ([`Store::settled`]): each entry as it now is, the ones the walk never
//! listed (outside its prefix) copied as they were.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use serde_json::{Map, Value};

use super::{check_counter, decode_kv, encode_kv, entry, json_value, DumpKv, Header, Kv};
use crate::private_file::PrivateFile;
use crate::store::{Entry, Listing, ListingReport, Page, Store, StoreError, StoreFuture, Swap};

/// A dump file (the JSON of `etcdctl get --prefix -w json`) as a store
/// that reads it, and writes the re-encrypted output, as it goes: memory
/// independent of the file's size.
///
/// ```no_run
/// # async fn run() -> Result<(), k8s_envelope::store::StoreError> {
/// use k8s_envelope::store::{DumpFile, Store};
///
/// let dump = DumpFile::open("secrets.json")?.with_output("secrets.new.json")?;
/// // ... a re-encryption over `dump` ...
/// dump.finish()?; // writes the rest and renames the output into place
/// # Ok(()) }
/// ```
///
/// - Entries must be in ascending key order, as etcdctl writes them; a
///   file that is not is refused when opened (sort it, or load it whole
///   with [`DumpStore`](super::DumpStore)).
/// - A compare-and-swap may write only an entry a walk listed and has not
///   yet [settled](Store::settled); revisions move on as in etcd (the next
///   revision becomes the entry's `mod_revision`, its `version` grows by
///   one, and the header's `revision` follows).
/// - The output is a private file ([`crate::private_file`]): nothing is
///   at its path until [`finish`](Self::finish) renames it there; dropped
///   unfinished, nothing is written. It holds the same fields as the input,
///   with the header after the entries (its revision is known only at the
///   end).
/// - [`Store::list`] and [`Store::get`] read the file from the start: for
///   single lookups; a walk goes through [`Store::listing`].
pub struct DumpFile {
    path: PathBuf,
    what: String,
    header: Option<Header>,
    extra: Map<String, Value>,
    /// Entries in the file.
    count: u64,
    /// Where the first entry starts (just after `"kvs":[`), if any.
    entries_at: Option<u64>,
    state: Mutex<State>,
}

struct State {
    revision: i64,
    /// Entries listed by a walk and not yet settled, as they now are.
    walking: BTreeMap<Vec<u8>, Kv>,
    output: Option<Output>,
}

/// The output being written: a cursor over the input, copied up to the
/// last settled key with the walk's changes.
struct Output {
    file: PrivateFile,
    input: Entries,
    /// The next input entry, read and past the last settled key.
    next: Option<(Vec<u8>, Kv)>,
    written: u64,
    /// A write that failed; reported by the next write and by `finish`.
    failed: Option<io::Error>,
}

impl DumpFile {
    /// Opens and checks a dump file.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when it cannot be read; [`StoreError::Dump`] with
    /// the same reasons as [`DumpStore::from_json`](super::DumpStore::from_json),
    /// and when its keys are not in ascending order.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let what = path.display().to_string();
        let file = File::open(&path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        let checked = check(file).map_err(|reason| StoreError::Dump {
            what: what.clone(),
            reason,
        })?;
        Ok(Self {
            path,
            what,
            header: checked.header,
            extra: checked.extra,
            count: checked.count,
            entries_at: checked.entries_at,
            state: Mutex::new(State {
                revision: checked.revision.max(1),
                walking: BTreeMap::new(),
                output: None,
            }),
        })
    }

    /// Writes the dump, as a walk leaves it, to `path` (a private file,
    /// renamed into place by [`finish`](Self::finish)).
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the output or the input cannot be opened.
    pub fn with_output(self, path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let io = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = PrivateFile::create(path).map_err(io)?;
        file.write_all(b"{\"kvs\":[").map_err(io)?;
        let input = self.entries()?;
        self.lock().output = Some(Output {
            file,
            input,
            next: None,
            written: 0,
            failed: None,
        });
        Ok(self)
    }

    /// Writes the rest of the output and renames it into place.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when reading the input or writing the output
    /// failed (now or earlier); the output's path is then left as it was.
    pub fn finish(&self) -> Result<(), StoreError> {
        let mut state = self.lock();
        let revision = state.revision;
        let Some(mut output) = state.output.take() else {
            return Ok(());
        };
        output.copy_through(None, &mut state.walking);
        let target = output.file.target().to_path_buf();
        let io = |source| StoreError::Io {
            path: target.clone(),
            source,
        };
        if let Some(e) = output.failed.take() {
            return Err(io(e));
        }
        let mut header = self.header.clone().unwrap_or_default();
        header.revision = revision;
        let mut end = Vec::new();
        end.extend_from_slice(b"],\"count\":");
        end.extend_from_slice(self.count.to_string().as_bytes());
        end.extend_from_slice(b",\"header\":");
        // Serializing plain values with string keys cannot fail.
        end.extend(serde_json::to_vec(&header).unwrap_or_default());
        for (name, value) in &self.extra {
            end.push(b',');
            end.extend(serde_json::to_vec(name).unwrap_or_default());
            end.push(b':');
            end.extend(serde_json::to_vec(value).unwrap_or_default());
        }
        end.extend_from_slice(b"}\n");
        output.file.write_all(&end).map_err(io)?;
        output.file.commit().map_err(io)
    }

    /// The dump's revision now.
    pub fn revision(&self) -> i64 {
        self.lock().revision
    }

    /// The input's entries from the first.
    fn entries(&self) -> Result<Entries, StoreError> {
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = File::open(&self.path).map_err(io)?;
        if let Some(at) = self.entries_at {
            file.seek(SeekFrom::Start(at)).map_err(io)?;
        }
        Ok(Entries {
            reader: BufReader::new(file),
            index: 0,
            done: self.entries_at.is_none(),
            json: Vec::new(),
        })
    }

    fn read_error(&self, reason: String) -> StoreError {
        StoreError::Dump {
            what: self.what.clone(),
            reason,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entries under `prefix` after `after`, at most `limit` (all when
    /// `None`) from a cursor; the next entry beyond is kept in `peeked`.
    fn read_page(
        &self,
        input: &mut Entries,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        walked: bool,
    ) -> Result<Page, StoreError> {
        let mut entries = Vec::new();
        loop {
            let Some((key, kv)) = input.next().map_err(|e| self.read_error(e))? else {
                return Ok(Page {
                    entries,
                    more: false,
                });
            };
            if key.as_slice() < prefix || after.is_some_and(|a| key.as_slice() <= a) {
                continue;
            }
            if !key.starts_with(prefix) {
                return Ok(Page {
                    entries,
                    more: false,
                });
            }
            entries.push(entry(&key, &kv));
            // Only a walk's entries can be written (and must be kept until
            // settled); a lookup leaves what a walk holds alone.
            if walked {
                self.lock().walking.insert(key, kv);
            }
            if entries.len() >= limit {
                return Ok(Page {
                    entries,
                    more: true,
                });
            }
        }
    }
}

impl Output {
    /// Writes the input's entries up to `through` (all when `None`), each
    /// as the walk left it.
    fn copy_through(&mut self, through: Option<&[u8]>, walking: &mut BTreeMap<Vec<u8>, Kv>) {
        while self.failed.is_none() {
            let next = match self.next.take() {
                Some(next) => Some(next),
                None => match self.input.next() {
                    Ok(next) => next,
                    Err(reason) => {
                        self.failed = Some(io::Error::other(reason));
                        return;
                    }
                },
            };
            let Some((key, kv)) = next else {
                return;
            };
            if through.is_some_and(|t| key.as_slice() > t) {
                self.next = Some((key, kv));
                return;
            }
            let kv = walking.remove(&key).unwrap_or(kv);
            if let Err(e) = self.write_entry(&key, &kv) {
                self.failed = Some(e);
            }
        }
    }

    fn write_entry(&mut self, key: &[u8], kv: &Kv) -> io::Result<()> {
        if self.written > 0 {
            self.file.write_all(b",")?;
        }
        self.written += 1;
        serde_json::to_writer(&mut self.file, &encode_kv(key, kv)).map_err(io::Error::other)
    }
}

impl Store for DumpFile {
    fn list<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
        limit: usize,
    ) -> StoreFuture<'a, Page> {
        Box::pin(async move {
            let mut input = self.entries()?;
            self.read_page(&mut input, prefix, after, limit.max(1), false)
        })
    }

    fn listing<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
        page_size: usize,
    ) -> Box<dyn Listing + 'a> {
        Box::new(FileListing {
            dump: self,
            prefix,
            after: after.map(<[u8]>::to_vec),
            page_size: page_size.max(1),
            input: None,
            done: false,
            pages: 0,
        })
    }

    fn get<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Entry>> {
        Box::pin(async move {
            if let Some(kv) = self.lock().walking.get(key) {
                return Ok(Some(entry(key, kv)));
            }
            let mut input = self.entries()?;
            while let Some((k, kv)) = input.next().map_err(|e| self.read_error(e))? {
                if k.as_slice() == key {
                    return Ok(Some(entry(key, &kv)));
                }
                if k.as_slice() > key {
                    break;
                }
            }
            Ok(None)
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a [u8],
        expected: i64,
        value: &'a [u8],
    ) -> StoreFuture<'a, Swap> {
        Box::pin(async move {
            let mut state = self.lock();
            if let Some(e) = state.output.as_ref().and_then(|o| o.failed.as_ref()) {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    source: io::Error::new(e.kind(), e.to_string()),
                });
            }
            let next = state.revision + 1;
            let Some(kv) = state.walking.get_mut(key) else {
                return Err(self.read_error(
                    "a write to a key the walk is not at (a dump file is written in key order)"
                        .to_owned(),
                ));
            };
            if kv.mod_revision != expected {
                return Ok(Swap::Changed(entry(key, kv)));
            }
            kv.mod_revision = next;
            kv.version += 1;
            kv.value = value.to_vec();
            state.revision = next;
            Ok(Swap::Written(next))
        })
    }

    fn settled(&self, through: &[u8]) {
        let mut state = self.lock();
        let State {
            walking, output, ..
        } = &mut *state;
        match output {
            Some(output) => output.copy_through(Some(through), walking),
            None => {
                // Everything up to `through` goes; the least key after it
                // (`through` and a zero byte) starts what stays.
                let mut after = through.to_vec();
                after.push(0);
                *walking = walking.split_off(&after);
            }
        }
    }

    fn describe(&self) -> String {
        format!("dump {}", self.what)
    }
}

/// A walk of a [`DumpFile`]: one pass over its entries.
struct FileListing<'a> {
    dump: &'a DumpFile,
    prefix: &'a [u8],
    after: Option<Vec<u8>>,
    page_size: usize,
    input: Option<Entries>,
    done: bool,
    pages: u64,
}

impl Listing for FileListing<'_> {
    fn next_page(&mut self) -> StoreFuture<'_, Option<Page>> {
        Box::pin(async move {
            if self.done {
                return Ok(None);
            }
            let input = match &mut self.input {
                Some(input) => input,
                None => self.input.insert(self.dump.entries()?),
            };
            self.pages += 1;
            let page = self.dump.read_page(
                input,
                self.prefix,
                self.after.as_deref(),
                self.page_size,
                true,
            )?;
            // Only the first page skips to `after`; the cursor is past it.
            self.after = None;
            self.done = !page.more;
            Ok(Some(page))
        })
    }

    fn report(&self) -> ListingReport {
        ListingReport {
            requests: self.pages,
            ..ListingReport::default()
        }
    }
}

/// The entries of a dump file, read one at a time from just after
/// `"kvs":[`.
struct Entries {
    reader: BufReader<File>,
    index: usize,
    done: bool,
    /// The bytes of the entry being read (reused).
    json: Vec<u8>,
}

/// The largest entry read from a dump file (its JSON: key and value in
/// base64), far above etcd's largest request (1.5 MiB by default).
const MAX_ENTRY_JSON: usize = 128 * 1024 * 1024;

impl Entries {
    /// The next entry, decoded; `None` after the last.
    fn next(&mut self) -> Result<Option<(Vec<u8>, Kv)>, String> {
        if self.done {
            return Ok(None);
        }
        let invalid = |e: &dyn std::fmt::Display| {
            format!(
                "invalid JSON: {}",
                crate::config::redact_strings(&e.to_string())
            )
        };
        let mut consumed = 0;
        let separator = json_value::peek_past_whitespace(&mut self.reader, &mut consumed)
            .map_err(|e| invalid(&e))?;
        match (separator, self.index) {
            (Some(b']'), _) => {
                self.done = true;
                return Ok(None);
            }
            (Some(b','), i) if i > 0 => self.reader.consume(1),
            (Some(_), 0) => {}
            _ => return Err("invalid JSON: the list of entries is cut short".to_owned()),
        }
        json_value::read_value(
            &mut self.reader,
            &mut self.json,
            MAX_ENTRY_JSON,
            &mut consumed,
        )?;
        let kv: DumpKv = serde_json::from_slice(&self.json).map_err(|e| invalid(&e))?;
        let i = self.index;
        self.index += 1;
        decode_kv(i, kv).map(Some)
    }
}

/// What opening a dump file finds.
struct Checked {
    header: Option<Header>,
    extra: Map<String, Value>,
    revision: i64,
    count: u64,
    entries_at: Option<u64>,
}

/// Reads the whole file once, checking it as [`DumpStore::from_json`]
/// does and that its keys ascend, keeping only what [`Checked`] holds; then
/// where its entries start.
///
/// The reader goes to serde_json by value: a `BufReader` it owns hands it
/// bytes from its buffer directly (a reader wrapped around it would be
/// asked for each byte in a call of its own).
///
/// [`DumpStore::from_json`]: super::DumpStore::from_json
fn check(file: File) -> Result<Checked, String> {
    let mut head = file.try_clone().map_err(|e| format!("cannot read: {e}"))?;
    let mut json = serde_json::Deserializer::from_reader(BufReader::new(file));
    let mut checked = TopLevel
        .deserialize(&mut json)
        .and_then(|checked| json.end().map(|()| checked))
        .map_err(|e| {
            // A type error may quote a string of the input: strings out.
            let message = e.to_string();
            if message.starts_with("dump: ") {
                message.trim_start_matches("dump: ").to_owned()
            } else {
                format!("invalid JSON: {}", crate::config::redact_strings(&message))
            }
        })?;
    head.seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot read: {e}"))?;
    checked.entries_at = entries_offset(&mut BufReader::new(head))?;
    Ok(checked)
}

/// Reads `what`, after any whitespace, from a file that had it when it
/// was checked.
fn expect_byte(reader: &mut impl BufRead, at: &mut u64, what: u8) -> Result<(), String> {
    match json_value::peek_past_whitespace(reader, at) {
        Ok(Some(byte)) if byte == what => {
            reader.consume(1);
            *at += 1;
            Ok(())
        }
        _ => Err(format!(
            "the file changed while it was opened (no '{}' where it was)",
            what as char
        )),
    }
}

/// Where the first entry of a checked dump starts (just after `"kvs":[`),
/// or `None` when it has no `kvs`: the top level's names read, the values
/// before `kvs` (the header) skipped.
fn entries_offset(reader: &mut impl BufRead) -> Result<Option<u64>, String> {
    let mut at = 0u64;
    let mut json = Vec::new();
    expect_byte(reader, &mut at, b'{')?;
    loop {
        match json_value::peek_past_whitespace(reader, &mut at) {
            Ok(Some(b'}')) => return Ok(None),
            Ok(Some(b',')) => {
                reader.consume(1);
                at += 1;
            }
            Ok(Some(_)) => {}
            _ => return Err("the file changed while it was opened".to_owned()),
        }
        json_value::read_value(reader, &mut json, MAX_ENTRY_JSON, &mut at)?;
        let name: String = serde_json::from_slice(&json)
            .map_err(|_| "the file changed while it was opened".to_owned())?;
        expect_byte(reader, &mut at, b':')?;
        if name == "kvs" {
            expect_byte(reader, &mut at, b'[')?;
            return Ok(Some(at));
        }
        json_value::read_value(reader, &mut json, usize::MAX, &mut at)?;
    }
}

/// A reason of ours, told apart from serde's own messages.
fn reason<E: de::Error>(reason: String) -> E {
    E::custom(format!("dump: {reason}"))
}

struct TopLevel;

impl<'de> DeserializeSeed<'de> for TopLevel {
    type Value = Checked;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("struct FileShape")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut checked = Checked {
            header: None,
            extra: Map::new(),
            revision: 0,
            count: 0,
            entries_at: None,
        };
        let mut seen_kvs = false;
        let mut max_revision = 0i64;
        while let Some(name) = map.next_key::<String>()? {
            match name.as_str() {
                "header" => {
                    if checked.header.is_some() {
                        return Err(de::Error::duplicate_field("header"));
                    }
                    checked.header = Some(map.next_value::<Header>()?);
                }
                "kvs" => {
                    if seen_kvs {
                        return Err(de::Error::duplicate_field("kvs"));
                    }
                    seen_kvs = true;
                    let seen = map.next_value_seed(Kvs)?;
                    checked.count = seen.count;
                    max_revision = seen.max_revision;
                }
                "more" => {
                    if map.next_value::<bool>()? {
                        return Err(reason(
                            "the listing was cut short (\"more\": true); dump without --limit"
                                .to_owned(),
                        ));
                    }
                }
                "count" => {
                    let _: i64 = map.next_value()?;
                }
                _ => {
                    let value: Value = map.next_value()?;
                    checked.extra.insert(name, value);
                }
            }
        }
        let revision = checked.header.as_ref().map_or(0, |h| h.revision);
        check_counter("header.revision", revision).map_err(reason)?;
        checked.revision = revision.max(max_revision);
        Ok(checked)
    }
}

/// What the entries hold, checked one by one.
struct KvsSeen {
    count: u64,
    max_revision: i64,
}

struct Kvs;

impl<'de> DeserializeSeed<'de> for Kvs {
    type Value = KvsSeen;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<KvsSeen, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Kvs {
    type Value = KvsSeen;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KvsSeen, A::Error> {
        let mut seen = KvsSeen {
            count: 0,
            max_revision: 0,
        };
        let mut last: Option<Vec<u8>> = None;
        let mut i = 0usize;
        while let Some(kv) = seq.next_element::<DumpKv>()? {
            let (key, kv) = decode_kv(i, kv).map_err(reason)?;
            match &last {
                Some(last) if *last == key => {
                    return Err(reason(format!("kvs[{i}].key appears twice")));
                }
                Some(last) if *last > key => {
                    return Err(reason(format!(
                        "kvs[{i}].key is not in ascending order (etcdctl writes keys sorted)"
                    )));
                }
                _ => {}
            }
            seen.max_revision = seen.max_revision.max(kv.mod_revision);
            last = Some(key);
            i += 1;
        }
        seen.count = i as u64;
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DumpStore;

    /// What `etcdctl get --prefix / -w json` printed (four keys, one with
    /// a lease, one empty value).
    const ETCDCTL: &[u8] = br#"{"header":{"cluster_id":324952591200643719,"member_id":3319814642761637952,"revision":5,"raft_term":2},"kvs":[{"key":"L3JlZ2lzdHJ5L2V2ZW50cy94","create_revision":5,"mod_revision":5,"version":1,"value":"ZXY=","lease":2324035563566598920},{"key":"L3JlZ2lzdHJ5L3NlY3JldHMvYQ==","create_revision":2,"mod_revision":2,"version":1,"value":"aGVsbG8="},{"key":"L3JlZ2lzdHJ5L3NlY3JldHMvYg==","create_revision":3,"mod_revision":3,"version":1,"value":"YmluAP8="},{"key":"L3JlZ2lzdHJ5L3NlY3JldHMvZW1wdHk=","create_revision":4,"mod_revision":4,"version":1}],"count":4}
"#;

    /// The answer of a future of this store (ready at once: it reads a
    /// local file).
    fn answer<T>(mut f: StoreFuture<'_, T>) -> Result<T, StoreError> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => unreachable!("dump file futures are ready"),
        }
    }

    fn block<T>(f: StoreFuture<'_, T>) -> T {
        answer(f).expect("the dump file answers")
    }

    fn file(dir: &tempfile::TempDir, contents: &[u8]) -> PathBuf {
        let path = dir.path().join("in.json");
        std::fs::write(&path, contents).expect("write");
        path
    }

    /// Walks `prefix` of `dump`, rewriting every value with `rewrite`.
    fn walk(dump: &DumpFile, prefix: &[u8], page: usize, rewrite: impl Fn(&[u8]) -> Vec<u8>) {
        let mut listing = dump.listing(prefix, None, page);
        while let Some(page) = block(listing.next_page()) {
            for entry in &page.entries {
                let swap = block(dump.compare_and_swap(
                    &entry.key,
                    entry.revision,
                    &rewrite(&entry.value),
                ));
                assert!(matches!(swap, Swap::Written(_)), "{swap:?}");
                dump.settled(&entry.key);
            }
        }
    }

    #[test]
    fn a_walk_writes_the_same_dump_as_the_in_memory_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = file(&dir, ETCDCTL);
        let out = dir.path().join("out.json");
        let dump = DumpFile::open(&input)
            .expect("open")
            .with_output(&out)
            .expect("output");
        assert!(!out.exists(), "nothing at the output before finish");
        walk(&dump, b"/registry/secrets/", 1, |v| [v, b"!"].concat());
        dump.finish().expect("finish");

        let memory = DumpStore::from_json(ETCDCTL, "memory").expect("parses");
        for entry in memory.entries() {
            if entry.key.starts_with(b"/registry/secrets/") {
                let swap = block(memory.compare_and_swap(
                    &entry.key,
                    entry.revision,
                    &[&entry.value[..], b"!"].concat(),
                ));
                assert!(matches!(swap, Swap::Written(_)));
            }
        }
        let written = DumpStore::load(&out).expect("the output is a dump");
        assert_eq!(written.entries(), memory.entries());
        assert_eq!(written.revision(), memory.revision());
        assert_eq!(written.revision(), 8);
        // The rest of the header and the leases are kept.
        let text = std::fs::read_to_string(&out).expect("read");
        assert!(
            text.contains(r#""cluster_id":324952591200643719"#),
            "{text}"
        );
        assert!(text.contains(r#""lease":2324035563566598920"#), "{text}");
        assert!(text.contains(r#""count":4"#), "{text}");
    }

    /// A lookup in the middle of a walk does not undo what the walk wrote.
    #[test]
    fn a_lookup_during_a_walk_keeps_its_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = file(&dir, ETCDCTL);
        let out = dir.path().join("out.json");
        let dump = DumpFile::open(&input)
            .expect("open")
            .with_output(&out)
            .expect("output");
        let mut listing = dump.listing(b"/registry/secrets/", None, 10);
        let page = block(listing.next_page()).expect("a page");
        let first = &page.entries[0];
        let swap = block(dump.compare_and_swap(&first.key, first.revision, b"new"));
        assert!(matches!(swap, Swap::Written(_)), "{swap:?}");
        let looked_up = block(dump.list(b"/registry/secrets/", None, 10));
        assert_eq!(looked_up.entries.len(), 3);
        dump.settled(b"/registry/secrets/empty");
        dump.finish().expect("finish");
        let written = DumpStore::load(&out).expect("a dump");
        let entry = written
            .entries()
            .into_iter()
            .find(|e| e.key == first.key)
            .expect("the key");
        assert_eq!(entry.value, b"new");
    }

    #[test]
    fn an_unfinished_output_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = file(&dir, ETCDCTL);
        let out = dir.path().join("out.json");
        let dump = DumpFile::open(&input)
            .expect("open")
            .with_output(&out)
            .expect("output");
        walk(&dump, b"/registry/secrets/", 2, |v| v.to_vec());
        drop(dump);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["in.json"]);
    }

    #[test]
    fn listing_get_and_compare_and_swap_behave_like_etcd() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dump = DumpFile::open(file(&dir, ETCDCTL)).expect("open");
        let page = block(dump.list(b"/registry/secrets/", None, 2));
        let keys: Vec<&[u8]> = page.entries.iter().map(|e| e.key.as_slice()).collect();
        assert_eq!(keys, [&b"/registry/secrets/a"[..], b"/registry/secrets/b"]);
        assert!(page.more);
        let page = block(dump.list(b"/registry/secrets/", Some(b"/registry/secrets/b"), 2));
        assert_eq!(page.entries.len(), 1);
        assert!(!page.more);
        let got = block(dump.get(b"/registry/events/x")).expect("found");
        assert_eq!((got.value.as_slice(), got.revision), (&b"ev"[..], 5));
        assert_eq!(block(dump.get(b"/registry/nothing")), None);

        // A write needs the entry listed by a walk, and the revision read.
        let unlisted = answer(dump.compare_and_swap(b"/registry/secrets/a", 2, b"x"));
        assert!(
            matches!(unlisted, Err(StoreError::Dump { .. })),
            "{unlisted:?}"
        );
        let mut listing = dump.listing(b"/registry/secrets/", None, 10);
        let page = block(listing.next_page()).expect("a page");
        assert_eq!(page.entries.len(), 3);
        let changed = block(dump.compare_and_swap(b"/registry/secrets/a", 1, b"x"));
        assert!(
            matches!(changed, Swap::Changed(ref e) if e.revision == 2),
            "{changed:?}"
        );
        assert_eq!(
            block(dump.compare_and_swap(b"/registry/secrets/a", 2, b"x")),
            Swap::Written(6)
        );
        dump.settled(b"/registry/secrets/b");
        let settled = answer(dump.compare_and_swap(b"/registry/secrets/a", 6, b"y"));
        assert!(
            matches!(settled, Err(StoreError::Dump { .. })),
            "{settled:?}"
        );
    }

    /// Where the entries start, found again after the check: just after
    /// `"kvs":[`, past the values before it; a file changed since the check
    /// is refused, never misread.
    #[test]
    fn entries_start_just_after_the_kvs_bracket() {
        let offset = |json: &[u8]| entries_offset(&mut io::BufReader::with_capacity(3, json));
        let json = br#" { "header" : {"a":[1,"]"]} , "kvs" : [ {"key":"YQ=="}]}"#;
        let at = offset(json).expect("checked").expect("kvs");
        assert_eq!(&json[at as usize..], br#" {"key":"YQ=="}]}"#);
        assert_eq!(offset(br#"{"header":{}}"#), Ok(None));
        assert_eq!(offset(br#"{}"#), Ok(None));
        for changed in [
            &b"[]"[..],
            b"",
            br#"{"kvs" 1}"#,
            br#"{"kvs":{}}"#,
            br#"{"header""#,
        ] {
            let err = offset(changed).expect_err("changed");
            assert!(
                err.contains("changed") || err.contains("the file ends"),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_dumps_are_refused_as_the_in_memory_store_refuses_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (bad, says) in [
            (&b"not json"[..], "invalid JSON"),
            (br#"{"kvs":[{"key":"***"}]}"#, "kvs[0].key is not base64"),
            (br#"{"kvs":[],"more":true}"#, "cut short"),
            (
                br#"{"kvs":[{"key":"YQ=="},{"key":"YQ=="}]}"#,
                "kvs[1].key appears twice",
            ),
            (
                br#"{"kvs":[{"key":"Yg=="},{"key":"YQ=="}]}"#,
                "kvs[1].key is not in ascending order",
            ),
            (br#"{"header":{"revision":-1}}"#, "header.revision -1"),
            (
                br#"{"kvs":[{"key":"YQ==","version":-3}]}"#,
                "kvs[0].version -3",
            ),
            (
                br#"{"kvs":[{"key":"YQ==","mod_revision":"c2VjcmV0"}]}"#,
                "invalid type: a string",
            ),
            (br#"{"kvs":[{"key":"YQ=="}]"#, "invalid JSON"),
        ] {
            let err = DumpFile::open(file(&dir, bad))
                .err()
                .expect("refused")
                .to_string();
            assert!(err.contains(says), "{err}");
            assert!(!err.contains("c2VjcmV0"), "{err}");
        }
    }
}
