//! core/v1 Secret and ConfigMap, decoded whole.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::meta::{self, bytes_of_field, fields, map_entry, map_object, text};
use super::tree::{Name, Tree};
use super::{DecodeError, DecodeOptions};

/// Secret: metadata 1, data 2 (map of bytes), type 3, stringData 4 (map
/// of strings), immutable 5 (a pointer). JSON order: metadata, immutable,
/// data, stringData, type.
pub(super) fn secret(
    raw: &[u8],
    options: &DecodeOptions,
    out: &mut Vec<(Name, Tree)>,
) -> Result<(), DecodeError> {
    let mut metadata = Tree::Object(Vec::new());
    let (mut data, mut string_data) = (Vec::new(), Vec::new());
    let mut kind = String::new();
    let mut immutable = None;
    for (field, value) in fields(raw)? {
        match field {
            1 => metadata = meta::object_meta(bytes_of_field(&value, "metadata")?)?,
            2 => data.push(map_entry(bytes_of_field(&value, "data")?, true)?),
            3 => kind = text(bytes_of_field(&value, "type")?),
            4 => string_data.push(map_entry(bytes_of_field(&value, "stringData")?, false)?),
            5 => immutable = Some(bool_of(&value)?),
            _ => {}
        }
    }
    if options.decode_data {
        move_text_to_string_data(&mut data, &mut string_data);
    }
    out.push(("metadata".into(), metadata));
    if let Some(immutable) = immutable {
        out.push(("immutable".into(), Tree::Bool(immutable)));
    }
    for (name, entries) in [("data", data), ("stringData", string_data)] {
        if !entries.is_empty() {
            out.push((name.into(), map_object(entries)));
        }
    }
    if !kind.is_empty() {
        out.push(("type".into(), Tree::String(kind)));
    }
    Ok(())
}

/// ConfigMap: metadata 1, data 2 (strings), binaryData 3 (bytes),
/// immutable 4. JSON order: metadata, immutable, data, binaryData.
pub(super) fn config_map(raw: &[u8], out: &mut Vec<(Name, Tree)>) -> Result<(), DecodeError> {
    let mut metadata = Tree::Object(Vec::new());
    let (mut data, mut binary) = (Vec::new(), Vec::new());
    let mut immutable = None;
    for (field, value) in fields(raw)? {
        match field {
            1 => metadata = meta::object_meta(bytes_of_field(&value, "metadata")?)?,
            2 => data.push(map_entry(bytes_of_field(&value, "data")?, false)?),
            3 => binary.push(map_entry(bytes_of_field(&value, "binaryData")?, true)?),
            4 => immutable = Some(bool_of(&value)?),
            _ => {}
        }
    }
    out.push(("metadata".into(), metadata));
    if let Some(immutable) = immutable {
        out.push(("immutable".into(), Tree::Bool(immutable)));
    }
    for (name, entries) in [("data", data), ("binaryData", binary)] {
        if !entries.is_empty() {
            out.push((name.into(), map_object(entries)));
        }
    }
    Ok(())
}

/// Moves each `data` value that is UTF-8 text to `stringData`, as text;
/// binary values stay in `data`, in base64. A file written so reads back
/// as the same bytes: the apiserver (and `kubectl apply`) stores
/// `stringData` values as they are and decodes `data` from base64. A value
/// whose key `stringData` already holds stays in `data` (`stringData`
/// would win on a write).
fn move_text_to_string_data(data: &mut Vec<(Name, Tree)>, string_data: &mut Vec<(Name, Tree)>) {
    let taken: std::collections::BTreeSet<Name> =
        string_data.iter().map(|(key, _)| key.clone()).collect();
    data.retain(|(key, value)| {
        let Tree::String(encoded) = value else {
            return true;
        };
        match BASE64.decode(encoded).map(String::from_utf8) {
            Ok(Ok(text)) if !taken.contains(key) => {
                string_data.push((key.clone(), Tree::String(text)));
                false
            }
            _ => true,
        }
    });
}

fn bool_of(value: &crate::protowire::Value<'_>) -> Result<bool, DecodeError> {
    match value {
        crate::protowire::Value::Varint(v) => Ok(*v != 0),
        _ => Err(DecodeError("a boolean has the wrong wire type".to_owned())),
    }
}
