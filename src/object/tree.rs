//! A JSON document as Go's `encoding/json` writes it: members in the order
//! they were added (Go writes struct fields in declaration order), strings
//! escaped as Go escapes them, and the two layouts the apiserver uses
//! (`MarshalIndent` with two spaces, and compact); and the same document as
//! YAML with sorted keys, as `kubectl -o yaml` shows it.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// A member's name: one the decoder writes (static, not copied for each
/// object) or one read from the value.
pub(crate) type Name = Cow<'static, str>;

/// A JSON value whose objects keep their members' order. Its `Debug` is
/// the shape (field names, types, lengths), never a value: a decoded
/// Secret's data is plaintext.
#[derive(Clone, PartialEq)]
pub(crate) enum Tree {
    Null,
    Bool(bool),
    /// A number, as its JSON text.
    Number(String),
    String(String),
    Array(Vec<Tree>),
    Object(Vec<(Name, Tree)>),
}

impl fmt::Debug for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Bool(_) => f.write_str("bool"),
            Self::Number(_) => f.write_str("number"),
            Self::String(s) => write!(f, "string({} bytes)", s.len()),
            Self::Array(items) => f.debug_list().entries(items).finish(),
            Self::Object(members) => f
                .debug_map()
                .entries(members.iter().map(|(name, value)| (name, value)))
                .finish(),
        }
    }
}

impl Tree {
    pub(crate) fn int(value: i64) -> Self {
        Self::Number(value.to_string())
    }

    /// Go's JSON of the tree: two-space indentation (`MarshalIndent`) or
    /// compact (`Marshal`), no trailing newline.
    pub(crate) fn to_json(&self, pretty: bool) -> String {
        // Sized once (a byte to spare for a caller's newline): growing the
        // string as it is written cost a copy at every doubling.
        let hint = self.compact_len_hint();
        let mut out = String::with_capacity(if pretty { hint * 2 } else { hint + 1 });
        self.write_json(&mut out, pretty, 0);
        out
    }

    /// About the length of the compact JSON (escapes not counted).
    fn compact_len_hint(&self) -> usize {
        match self {
            Self::Null | Self::Bool(_) => 5,
            Self::Number(n) => n.len(),
            Self::String(s) => s.len() + 2,
            Self::Array(items) => {
                2 + items
                    .iter()
                    .map(|i| i.compact_len_hint() + 1)
                    .sum::<usize>()
            }
            Self::Object(members) => {
                2 + members
                    .iter()
                    .map(|(name, value)| name.len() + 4 + value.compact_len_hint())
                    .sum::<usize>()
            }
        }
    }

    fn write_json(&self, out: &mut String, pretty: bool, depth: usize) {
        let newline = |out: &mut String, depth: usize| {
            if pretty {
                out.push('\n');
                for _ in 0..depth {
                    out.push_str("  ");
                }
            }
        };
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Number(n) => out.push_str(n),
            Self::String(s) => go_string(out, s),
            Self::Array(items) if items.is_empty() => out.push_str("[]"),
            Self::Object(members) if members.is_empty() => out.push_str("{}"),
            Self::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    item.write_json(out, pretty, depth + 1);
                }
                newline(out, depth);
                out.push(']');
            }
            Self::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    go_string(out, key);
                    out.push(':');
                    if pretty {
                        out.push(' ');
                    }
                    value.write_json(out, pretty, depth + 1);
                }
                newline(out, depth);
                out.push('}');
            }
        }
    }

    /// The tree as YAML the way `kubectl -o yaml` writes it (keys sorted,
    /// list items at their key's indentation, strings quoted only where
    /// YAML would read them as something else); ends with a newline.
    pub(crate) fn to_yaml(&self) -> String {
        let mut out = String::new();
        match self {
            Self::Object(members) if !members.is_empty() => yaml_members(&mut out, members, 0),
            Self::Array(items) if !items.is_empty() => yaml_items(&mut out, items, 0),
            scalar => {
                yaml_scalar(&mut out, scalar);
                out.push('\n');
            }
        }
        out
    }
}

/// Appends `s` as a JSON string the way Go's `encoding/json` escapes it
/// (HTML characters too, as the apiserver leaves that on).
pub(crate) fn go_string(out: &mut String, s: &str) {
    quoted(out, s, false);
}

/// Appends `s` as a YAML double-quoted string: JSON's escapes, and DEL and
/// the C1 controls escaped too (YAML does not allow them raw).
fn yaml_string(out: &mut String, s: &str) {
    quoted(out, s, true);
}

/// The bytes that may start an escape: controls, `"`, `\\`, the HTML
/// characters, and every byte outside ASCII (U+2028, U+2029 and, in YAML,
/// the C1 controls are escaped). A table: the scan for them is the hot loop
/// of rendering.
const MAY_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b >= 0x7f || matches!(b as u8, b'"' | b'\\' | b'<' | b'>' | b'&');
        b += 1;
    }
    table
};

fn quoted(out: &mut String, s: &str, yaml: bool) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Runs of characters that need no escape are copied as slices (most
    // strings, names and base64 data, are one run); only a byte that may
    // start an escape stops the scan.
    let bytes = s.as_bytes();
    let mut plain_from = 0;
    let mut next = 0;
    while let Some(offset) = bytes[next..]
        .iter()
        .position(|&b| MAY_ESCAPE[usize::from(b)])
    {
        let at = next + offset;
        // `next` is always at a character's start, and the bytes before
        // `at` are ASCII: `at` starts a character too.
        let Some(c) = s[at..].chars().next() else {
            break;
        };
        next = at + c.len_utf8();
        let escape: &str = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => "",
            c if (c as u32) < 0x20 || (yaml && ('\u{7f}'..='\u{9f}').contains(&c)) => "",
            _ => continue,
        };
        out.push_str(&s[plain_from..at]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escape);
        }
        plain_from = next;
    }
    out.push_str(&s[plain_from..]);
    out.push('"');
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn sorted(members: &[(Name, Tree)]) -> Vec<&(Name, Tree)> {
    let mut sorted: Vec<&(Name, Tree)> = members.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
}

fn yaml_members(out: &mut String, members: &[(Name, Tree)], depth: usize) {
    for (key, value) in sorted(members) {
        indent(out, depth);
        yaml_key(out, key);
        yaml_value(out, value, depth, true);
    }
}

fn yaml_items(out: &mut String, items: &[Tree], depth: usize) {
    for item in items {
        indent(out, depth);
        out.push('-');
        match item {
            Tree::Object(members) if !members.is_empty() => {
                // The first member on the dash's line, the rest under it.
                let members = sorted(members);
                for (i, (key, value)) in members.iter().enumerate() {
                    if i == 0 {
                        out.push(' ');
                    } else {
                        indent(out, depth + 1);
                    }
                    yaml_key(out, key);
                    yaml_value(out, value, depth + 1, true);
                }
            }
            Tree::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                yaml_items(out, inner, depth + 1);
            }
            scalar => {
                out.push(' ');
                yaml_scalar(out, scalar);
                out.push('\n');
            }
        }
    }
}

/// After `key:`: a scalar on the same line, or a block below.
fn yaml_value(out: &mut String, value: &Tree, depth: usize, _after_key: bool) {
    match value {
        Tree::Object(members) if !members.is_empty() => {
            out.push('\n');
            yaml_members(out, members, depth + 1);
        }
        Tree::Array(items) if !items.is_empty() => {
            out.push('\n');
            // kubectl (go-yaml) writes a list at its key's indentation.
            yaml_items(out, items, depth);
        }
        scalar => {
            out.push(' ');
            yaml_scalar(out, scalar);
            out.push('\n');
        }
    }
}

fn yaml_key(out: &mut String, key: &str) {
    if plain_yaml(key) {
        out.push_str(key);
    } else {
        yaml_string(out, key);
    }
    out.push(':');
}

fn yaml_scalar(out: &mut String, value: &Tree) {
    match value {
        Tree::Null => out.push_str("null"),
        Tree::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Tree::Number(n) => out.push_str(n),
        Tree::String(s) if plain_yaml(s) => out.push_str(s),
        Tree::String(s) => yaml_string(out, s),
        Tree::Array(_) => out.push_str("[]"),
        Tree::Object(_) => out.push_str("{}"),
    }
}

/// Whether a string reads back as the same string when written plain: it
/// starts with a letter, holds only characters with no meaning to YAML,
/// and is no word YAML reads as a boolean or null.
fn plain_yaml(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '=' | '+'))
    {
        return false;
    }
    if first.is_ascii_digit() {
        // A UID (`3c1a77e0-5d1f-…`) is plain; what Go's YAML reader (which
        // kubectl uses) reads as a number or a date is not.
        return !go_yaml_number_or_date(s);
    }
    if !first.is_ascii_alphabetic() && first != '_' && first != '/' {
        return false;
    }
    !matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
    )
}

/// Whether Go's YAML reader (gopkg.in/yaml.v2, under sigs.k8s.io/yaml and
/// so kubectl) reads a plain scalar as a number or a timestamp: with its
/// underscores removed, an integer `strconv.ParseInt(s, 0, 64)` accepts
/// (decimal, `0x`/`0X`, `0o`/`0O`, `0b`/`0B`, a leading `0`), a float of
/// its YAML pattern, or a `YYYY-M-D` date.
fn go_yaml_number_or_date(s: &str) -> bool {
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    go_integer(&plain) || yaml_float(&plain) || yaml_date(s)
}

fn go_integer(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits = |rest: &str, ok: fn(u8) -> bool| !rest.is_empty() && rest.bytes().all(ok);
    let prefixed = |a: &str, b: &str| s.strip_prefix(a).or_else(|| s.strip_prefix(b));
    if let Some(rest) = prefixed("0x", "0X") {
        return digits(rest, |b| b.is_ascii_hexdigit());
    }
    if let Some(rest) = prefixed("0o", "0O") {
        return digits(rest, |b| (b'0'..=b'7').contains(&b));
    }
    if let Some(rest) = prefixed("0b", "0B") {
        return digits(rest, |b| b == b'0' || b == b'1');
    }
    digits(s, |b| b.is_ascii_digit())
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => !fraction.is_empty() && all_digits(fraction),
        Some((whole, fraction)) => all_digits(whole) && all_digits(fraction),
        None => !mantissa.is_empty() && all_digits(mantissa),
    } && !mantissa.is_empty();
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

/// `YYYY-M-D` (one or two digits for month and day), yaml.v2's date form
/// without a time (a time has `:` or a space, which are quoted anyway).
fn yaml_date(s: &str) -> bool {
    let mut parts = s.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let number = |t: &str, lengths: std::ops::RangeInclusive<usize>| {
        lengths.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
    };
    number(year, 4..=4) && number(month, 1..=2) && number(day, 1..=2)
}

/// A JSON document read into a [`Tree`], members in the order they come.
impl<'de> serde::Deserialize<'de> for Tree {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> serde::de::Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Number(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Number(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        // Rust's `Display` of an `f64` is the shortest text that reads back
        // as the same number, with no exponent: read again, it prints the
        // same (JSON has no NaN or infinity).
        Ok(Tree::Number(if v == 0.0 {
            // `-0` would read back as the integer 0.
            "0".to_owned()
        } else if v.is_finite() {
            format!("{v}")
        } else {
            "null".to_owned()
        }))
    }

    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::String(v.to_owned()))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Tree>()? {
            members.push((Cow::Owned(key), value));
        }
        Ok(Tree::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        let mut out = String::new();
        go_string(&mut out, "a\"b\\c\n<&>\u{1}\u{2028}é");
        assert_eq!(out, r#""a\"b\\c\n\u003c\u0026\u003e\u0001\u2028é""#);
        // Runs between escapes, at both ends, and escapes side by side.
        out.clear();
        go_string(&mut out, "\tplain\r\u{8}\u{c}é\u{7f}x\u{85}");
        assert_eq!(out, "\"\\tplain\\r\\b\\fé\u{7f}x\u{85}\"");
        out.clear();
        quoted(&mut out, "\u{7f}y\u{85}\u{a0}", true);
        assert_eq!(out, r#""\u007fy\u0085 ""#.replace(' ', "\u{a0}"));
    }

    #[test]
    fn json_is_indented_as_marshal_indent_does() {
        let tree = Tree::Object(vec![
            ("a".into(), Tree::int(1)),
            ("b".into(), Tree::Object(vec![])),
            ("c".into(), Tree::Array(vec![Tree::String("x".into())])),
        ]);
        assert_eq!(
            tree.to_json(true),
            "{\n  \"a\": 1,\n  \"b\": {},\n  \"c\": [\n    \"x\"\n  ]\n}"
        );
        assert_eq!(tree.to_json(false), r#"{"a":1,"b":{},"c":["x"]}"#);
    }

    #[test]
    fn yaml_quotes_what_would_read_as_something_else() {
        let tree = Tree::Object(vec![
            ("time".into(), Tree::String("2008-01-01T01:01:01Z".into())),
            ("b".into(), Tree::String("true".into())),
            ("a".into(), Tree::String("Ag==".into())),
        ]);
        assert_eq!(
            tree.to_yaml(),
            "a: Ag==\nb: \"true\"\ntime: \"2008-01-01T01:01:01Z\"\n"
        );
        for (text, plain) in [
            ("3c1a77e0-5d1f", true),
            ("3c1a77e0-5d1f-4c33-9d1b-0a5e1f2c8d41", true),
            ("123", false),
            ("1e3", false),
            ("0x1f", false),
            ("0X1F", false),
            ("0XdeadBEEF", false),
            ("0B101", false),
            ("0b101", false),
            ("0O17", false),
            ("0o17", false),
            ("017", false),
            ("019", false),
            ("1_000", false),
            ("0x_1f", false),
            ("1.5", false),
            ("1.", false),
            ("1.5e-3", false),
            ("1E3", false),
            ("2024-01-02", false),
            ("2024-1-2", false),
            ("1e", true),
            ("0x", true),
            ("0xg1", true),
            ("12abc", true),
            ("2024-01-02-x", true),
            ("Y", false),
            ("NULL", false),
            ("Off", false),
        ] {
            assert_eq!(plain_yaml(text), plain, "{text}");
        }
    }
}
