//! core/v1 Secret and ConfigMap, decoded whole.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::meta::{self, bytes_of_field, fields, map_entry, map_object, text};
use super::tree::Tree;
use super::{DecodeError, DecodeOptions};

/// Secret: metadata 1, data 2 (map of bytes), type 3, stringData 4 (map
/// of strings), immutable 5 (a pointer). JSON order: metadata, immutable,
/// data, stringData, type.
pub(super) fn secret(
    raw: &[u8],
    options: &DecodeOptions,
    out: &mut Vec<(String, Tree)>,
) -> Result<(), DecodeError> {
    let mut metadata = Tree::Object(Vec::new());
    let (mut data, mut string_data) = (Vec::new(), Vec::new());
    let mut kind = String::new();
    let mut immutable = None;
    for (field, value) in fields(raw)? {
        match field {
            1 => metadata = meta::object_meta(bytes_of_field(&value, "metadata")?)?,
            2 => data.push(data_entry(bytes_of_field(&value, "data")?, options)?),
            3 => kind = text(bytes_of_field(&value, "type")?),
            4 => string_data.push(map_entry(bytes_of_field(&value, "stringData")?, false)?),
            5 => immutable = Some(bool_of(&value)?),
            _ => {}
        }
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
pub(super) fn config_map(raw: &[u8], out: &mut Vec<(String, Tree)>) -> Result<(), DecodeError> {
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

/// A Secret's data entry: base64, or text where asked and UTF-8.
fn data_entry(bytes: &[u8], options: &DecodeOptions) -> Result<(String, Tree), DecodeError> {
    let (key, value) = map_entry(bytes, true)?;
    if options.decode_data {
        if let Tree::String(encoded) = &value {
            if let Ok(Ok(text)) = BASE64.decode(encoded).map(String::from_utf8) {
                return Ok((key, Tree::String(text)));
            }
        }
    }
    Ok((key, value))
}

fn bool_of(value: &crate::protowire::Value<'_>) -> Result<bool, DecodeError> {
    match value {
        crate::protowire::Value::Varint(v) => Ok(*v != 0),
        _ => Err(DecodeError("a boolean has the wrong wire type".to_owned())),
    }
}
