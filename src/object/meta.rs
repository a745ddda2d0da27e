//! `metav1.ObjectMeta`, `ListMeta` and `Time` from their protobuf, into
//! the JSON the API serves: fields in Go's order, empty ones left out as
//! `omitempty` leaves them out, pointer fields kept when present.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::tree::{Name, Tree};
use super::DecodeError;
use crate::protowire::{Reader, Value};

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// The fields of a message, in the order they come. The whole message is
/// read once first, so that a malformed one fails here and the loop over
/// its fields (which allocates nothing) cannot.
pub(crate) fn fields(bytes: &[u8]) -> Result<Fields<'_>, DecodeError> {
    let mut reader = Reader::new(bytes);
    while reader
        .field()
        .map_err(|e| DecodeError(e.0.to_owned()))?
        .is_some()
    {}
    Ok(Fields(Reader::new(bytes)))
}

/// The fields of a message whose framing was checked.
pub(crate) struct Fields<'a>(Reader<'a>);

impl<'a> Iterator for Fields<'a> {
    type Item = (u64, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.field().ok().flatten()
    }
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A field, its value, and its bytes on the wire.
pub(crate) type Span<'a> = (u64, Value<'a>, &'a [u8]);

/// Each field with its bytes on the wire (tag included), to keep fields
/// that are not decoded as they were.
pub(crate) fn spans(bytes: &[u8]) -> Result<Vec<Span<'_>>, DecodeError> {
    let mut reader = Reader::new(bytes);
    let mut out = Vec::new();
    loop {
        let before = reader.rest();
        let Some((field, value)) = reader.field().map_err(|e| DecodeError(e.0.to_owned()))? else {
            return Ok(out);
        };
        let used = before.len() - reader.rest().len();
        out.push((field, value, &before[..used]));
    }
}

pub(crate) fn bytes_of_field<'a>(value: &Value<'a>, what: &str) -> Result<&'a [u8], DecodeError> {
    bytes_of(value, what)
}

fn bytes_of<'a>(value: &Value<'a>, what: &str) -> Result<&'a [u8], DecodeError> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(DecodeError(format!("{what} has the wrong wire type"))),
    }
}

fn varint_of(value: &Value<'_>, what: &str) -> Result<u64, DecodeError> {
    match value {
        Value::Varint(v) => Ok(*v),
        _ => Err(DecodeError(format!("{what} has the wrong wire type"))),
    }
}

/// A `map<string, string>` or `map<string, bytes>` entry.
pub(crate) fn map_entry(bytes: &[u8], binary: bool) -> Result<(Name, Tree), DecodeError> {
    let mut key = String::new();
    let mut value: &[u8] = &[];
    for (field, v) in fields(bytes)? {
        match field {
            1 => key = text(bytes_of(&v, "a map key")?),
            2 => value = bytes_of(&v, "a map value")?,
            _ => {}
        }
    }
    let value = if binary {
        Tree::String(BASE64.encode(value))
    } else {
        Tree::String(text(value))
    };
    Ok((key.into(), value))
}

/// Map entries as a JSON object with sorted keys (the last of a repeated
/// key wins, as in Go).
pub(crate) fn map_object(entries: Vec<(Name, Tree)>) -> Tree {
    let mut map = std::collections::BTreeMap::new();
    for (key, value) in entries {
        map.insert(key, value);
    }
    Tree::Object(map.into_iter().collect())
}

/// A `metav1.Time` message as JSON: `null` for Go's zero time, else
/// RFC 3339 in UTC to the second (nanoseconds are not kept, as in Go).
pub(crate) fn time(bytes: &[u8]) -> Result<Tree, DecodeError> {
    match seconds(bytes)? {
        Some(seconds) => Ok(Tree::String(rfc3339(seconds))),
        None => Ok(Tree::Null),
    }
}

/// The seconds of a `Time` message, `None` when it is Go's zero time.
fn seconds(bytes: &[u8]) -> Result<Option<i64>, DecodeError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut seconds = 0i64;
    for (field, v) in fields(bytes)? {
        if field == 1 {
            seconds = varint_of(&v, "a time's seconds")? as i64;
        }
    }
    Ok((seconds != GO_ZERO_TIME).then_some(seconds))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix `seconds` (proleptic Gregorian, UTC).
pub(crate) fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Pushes a string member unless it is empty (`omitempty`).
fn push_string(out: &mut Vec<(Name, Tree)>, name: &'static str, value: Option<String>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        out.push((name.into(), Tree::String(value)));
    }
}

/// `metav1.ObjectMeta`.
pub(crate) fn object_meta(bytes: &[u8]) -> Result<Tree, DecodeError> {
    let mut strings: [Option<String>; 7] = Default::default();
    let mut generation = 0i64;
    let mut created = None;
    let mut deleted = None;
    let mut grace = None;
    let (mut labels, mut annotations) = (Vec::new(), Vec::new());
    let (mut owners, mut finalizers, mut managed) = (Vec::new(), Vec::new(), Vec::new());
    for (field, v) in fields(bytes)? {
        match field {
            1..=6 => strings[field as usize] = Some(text(bytes_of(&v, "a metadata string")?)),
            7 => generation = varint_of(&v, "generation")? as i64,
            8 => created = seconds(bytes_of(&v, "creationTimestamp")?)?,
            9 => deleted = Some(time(bytes_of(&v, "deletionTimestamp")?)?),
            10 => grace = Some(varint_of(&v, "deletionGracePeriodSeconds")? as i64),
            11 => labels.push(map_entry(bytes_of(&v, "a label")?, false)?),
            12 => annotations.push(map_entry(bytes_of(&v, "an annotation")?, false)?),
            13 => owners.push(owner_reference(bytes_of(&v, "an owner reference")?)?),
            14 => finalizers.push(Tree::String(text(bytes_of(&v, "a finalizer")?))),
            17 => managed.push(managed_fields(bytes_of(&v, "a managed fields entry")?)?),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let [_, name, generate, namespace, self_link, uid, version] = strings;
    push_string(&mut out, "name", name);
    push_string(&mut out, "generateName", generate);
    push_string(&mut out, "namespace", namespace);
    push_string(&mut out, "selfLink", self_link);
    push_string(&mut out, "uid", uid);
    push_string(&mut out, "resourceVersion", version);
    if generation != 0 {
        out.push(("generation".into(), Tree::int(generation)));
    }
    // `omitzero` since Kubernetes 1.34: a zero creation time is left out.
    if let Some(created) = created {
        out.push(("creationTimestamp".into(), Tree::String(rfc3339(created))));
    }
    if let Some(deleted) = deleted {
        out.push(("deletionTimestamp".into(), deleted));
    }
    if let Some(grace) = grace {
        out.push(("deletionGracePeriodSeconds".into(), Tree::int(grace)));
    }
    for (name, entries) in [("labels", labels), ("annotations", annotations)] {
        if !entries.is_empty() {
            out.push((name.into(), map_object(entries)));
        }
    }
    for (name, items) in [
        ("ownerReferences", owners),
        ("finalizers", finalizers),
        ("managedFields", managed),
    ] {
        if !items.is_empty() {
            out.push((name.into(), Tree::Array(items)));
        }
    }
    Ok(Tree::Object(out))
}

/// `metav1.OwnerReference`: its four strings are always written.
fn owner_reference(bytes: &[u8]) -> Result<Tree, DecodeError> {
    let mut strings: [String; 6] = Default::default();
    let (mut controller, mut block) = (None, None);
    for (field, v) in fields(bytes)? {
        match field {
            1 | 3..=5 => strings[field as usize] = text(bytes_of(&v, "an owner reference")?),
            6 => controller = Some(varint_of(&v, "controller")? != 0),
            7 => block = Some(varint_of(&v, "blockOwnerDeletion")? != 0),
            _ => {}
        }
    }
    let [_, kind, _, name, uid, api_version] = strings;
    let mut out = vec![
        ("apiVersion".into(), Tree::String(api_version)),
        ("kind".into(), Tree::String(kind)),
        ("name".into(), Tree::String(name)),
        ("uid".into(), Tree::String(uid)),
    ];
    if let Some(c) = controller {
        out.push(("controller".into(), Tree::Bool(c)));
    }
    if let Some(b) = block {
        out.push(("blockOwnerDeletion".into(), Tree::Bool(b)));
    }
    Ok(Tree::Object(out))
}

/// `metav1.ManagedFieldsEntry`; `fieldsV1` is JSON kept as it was written.
fn managed_fields(bytes: &[u8]) -> Result<Tree, DecodeError> {
    let mut strings: [Option<String>; 9] = Default::default();
    let mut at = None;
    let mut fields_v1 = None;
    for (field, v) in fields(bytes)? {
        match field {
            1..=3 | 6 | 8 => {
                strings[field as usize] = Some(text(bytes_of(&v, "a managed fields string")?))
            }
            4 => at = Some(time(bytes_of(&v, "a managed fields time")?)?),
            7 => fields_v1 = Some(raw_fields(bytes_of(&v, "fieldsV1")?)?),
            _ => {}
        }
    }
    let [_, manager, operation, api_version, _, _, fields_type, _, subresource] = strings;
    let mut out = Vec::new();
    push_string(&mut out, "manager", manager);
    push_string(&mut out, "operation", operation);
    push_string(&mut out, "apiVersion", api_version);
    if let Some(at) = at {
        out.push(("time".into(), at));
    }
    push_string(&mut out, "fieldsType", fields_type);
    if let Some(f) = fields_v1 {
        out.push(("fieldsV1".into(), f));
    }
    push_string(&mut out, "subresource", subresource);
    Ok(Tree::Object(out))
}

/// `metav1.FieldsV1 { Raw = 1 }`: its JSON as written, `null` when empty.
fn raw_fields(bytes: &[u8]) -> Result<Tree, DecodeError> {
    let mut raw: &[u8] = &[];
    for (field, v) in fields(bytes)? {
        if field == 1 {
            raw = bytes_of(&v, "fieldsV1")?;
        }
    }
    if raw.is_empty() {
        return Ok(Tree::Null);
    }
    serde_json::from_slice(raw).map_err(|_| DecodeError("fieldsV1 is not JSON".to_owned()))
}

/// `metav1.ListMeta` (Status carries one).
pub(crate) fn list_meta(bytes: &[u8]) -> Result<Tree, DecodeError> {
    let mut strings: [Option<String>; 4] = Default::default();
    let mut remaining = None;
    let mut shard = None;
    for (field, v) in fields(bytes)? {
        match field {
            1..=3 => strings[field as usize] = Some(text(bytes_of(&v, "a list metadata string")?)),
            4 => remaining = Some(varint_of(&v, "remainingItemCount")? as i64),
            5 => {
                let mut selector = String::new();
                for (f, v) in fields(bytes_of(&v, "shardInfo")?)? {
                    if f == 1 {
                        selector = text(bytes_of(&v, "a shard selector")?);
                    }
                }
                shard = Some(Tree::Object(vec![(
                    "selector".into(),
                    Tree::String(selector),
                )]));
            }
            _ => {}
        }
    }
    let [_, self_link, version, cont] = strings;
    let mut out = Vec::new();
    push_string(&mut out, "selfLink", self_link);
    push_string(&mut out, "resourceVersion", version);
    push_string(&mut out, "continue", cont);
    if let Some(r) = remaining {
        out.push(("remainingItemCount".into(), Tree::int(r)));
    }
    if let Some(s) = shard {
        out.push(("shardInfo".into(), s));
    }
    Ok(Tree::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_go_formats_them() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_199_149_261), "2008-01-01T01:01:01Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(GO_ZERO_TIME), "0001-01-01T00:00:00Z");
    }
}
