//! A JSON document as Go's `encoding/json` writes it: members in the order
//! they were added (Go writes struct fields in declaration order), strings
//! escaped as Go escapes them, and the two layouts the apiserver uses
//! (`MarshalIndent` with two spaces, and compact); and the same document as
//! YAML with sorted keys, as `kubectl -o yaml` shows it.

use std::fmt::Write as _;

/// A JSON value whose objects keep their members' order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tree {
    Null,
    Bool(bool),
    /// A number, as its JSON text.
    Number(String),
    String(String),
    Array(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

impl Tree {
    pub(crate) fn int(value: i64) -> Self {
        Self::Number(value.to_string())
    }

    /// Go's JSON of the tree: two-space indentation (`MarshalIndent`) or
    /// compact (`Marshal`), no trailing newline.
    pub(crate) fn to_json(&self, pretty: bool) -> String {
        let mut out = String::new();
        self.write_json(&mut out, pretty, 0);
        out
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

fn quoted(out: &mut String, s: &str, yaml: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 || (yaml && ('\u{7f}'..='\u{9f}').contains(&c)) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn sorted(members: &[(String, Tree)]) -> Vec<&(String, Tree)> {
    let mut sorted: Vec<&(String, Tree)> = members.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
}

fn yaml_members(out: &mut String, members: &[(String, Tree)], depth: usize) {
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
        // A UID (`3c1a77e0-5d1f-…`) is plain; what YAML 1.1 reads as a
        // number (`123`, `1e3`, `0x1f`, `1_000`) or a date is not.
        let date =
            s.len() >= 8 && s.as_bytes()[4] == b'-' && s[..4].bytes().all(|b| b.is_ascii_digit());
        let prefixed = ["0x", "0o", "0b"].iter().any(|p| s.starts_with(p));
        return s.parse::<f64>().is_err() && !date && !prefixed && !s.contains('_');
    }
    if !first.is_ascii_alphabetic() && first != '_' && first != '/' {
        return false;
    }
    !matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
    )
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
            members.push((key, value));
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
            ("123", false),
            ("1e3", false),
            ("0x1f", false),
            ("1_000", false),
            ("2024-01-02", false),
        ] {
            assert_eq!(plain_yaml(text), plain, "{text}");
        }
    }
}
