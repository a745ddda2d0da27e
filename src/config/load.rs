//! Reading an EncryptionConfiguration from bytes or a file.
//!
//! # How input is decoded
//!
//! - At most [`MAX_CONFIG_BYTES`]; more is [`ConfigError::TooLarge`], before
//!   any parsing. Zero bytes is [`ConfigError::Empty`].
//! - JSON when the input starts with `{"` or `{}` (whitespace aside; decoded
//!   by `serde_json`), YAML otherwise (decoded by `serde-saphyr`, a YAML 1.2
//!   parser), so that a YAML flow mapping `{kind: …}` is read as YAML.
//! - `kind` and `apiVersion` are checked first, as the apiserver's decoder
//!   does, so a file of another type is reported as such rather than as a
//!   list of unknown fields.
//! - Then the whole document is decoded strictly: unknown fields, duplicate
//!   keys (YAML) and duplicate fields (JSON and YAML) are errors, like the
//!   apiserver's strict decoder.
//! - Finally the apiserver's defaults are applied
//!   ([`EncryptionConfiguration::apply_defaults`]). Loading does not validate:
//!   call [`EncryptionConfiguration::validate`], or
//!   [`EncryptionConfiguration::build`], which validates first.
//!
//! # Hostile input
//!
//! The YAML parser runs with a budget sized for this small format: nesting
//! depth at most [`MAX_DEPTH`] (a configuration needs 8), at most
//! [`MAX_ALIASES`] aliases and [`MAX_ALIAS_REPLAY_EVENTS`] events replayed
//! through them (so an alias bomb fails after a bounded amount of work),
//! a single document, and no source snippets in errors. `serde_json` stops at
//! 128 levels of nesting. Neither parser recurses without bound, so deep
//! nesting is an error, not a stack overflow.
//!
//! Parse errors never contain a key's secret: the `secret` field reports only
//! "secret must be a string" for a value of the wrong type, and any string
//! value that a parser echoes in a type error (`invalid type: string "…"`)
//! is replaced by `a string`.

use std::io::Read as _;
use std::path::Path;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::types::{null_as_default, API_VERSION, KIND, LEGACY_API_VERSION, LEGACY_KIND};
use super::{ConfigError, ConfigFormat, EncryptionConfiguration};

/// The largest configuration accepted, in bytes (4 MiB). Real ones are a few
/// KiB.
pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// The deepest YAML nesting accepted (block and flow collections).
pub const MAX_DEPTH: usize = 32;

/// The most YAML aliases (`*name`) accepted in one document.
pub const MAX_ALIASES: usize = 1_000;

/// The most parser events that aliases may replay in one document.
pub const MAX_ALIAS_REPLAY_EVENTS: usize = 10_000;

impl EncryptionConfiguration {
    /// Parses a configuration in either format: JSON when it starts with
    /// `{"` or `{}` (whitespace aside), YAML otherwise (which includes a YAML
    /// flow mapping such as `{kind: …}`). Applies defaults; does not validate.
    ///
    /// ```
    /// use k8s_envelope::config::EncryptionConfiguration;
    ///
    /// let json = br#"{"kind": "EncryptionConfiguration",
    ///   "apiVersion": "apiserver.config.k8s.io/v1",
    ///   "resources": [{"resources": ["secrets"], "providers": [{"identity": {}}]}]}"#;
    /// let config = EncryptionConfiguration::from_slice(json)?;
    /// assert!(config.resources[0].providers[0].identity.is_some());
    /// # Ok::<(), k8s_envelope::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Empty`], [`ConfigError::TooLarge`],
    /// [`ConfigError::Parse`] or [`ConfigError::UnexpectedType`].
    pub fn from_slice(input: &[u8]) -> Result<Self, ConfigError> {
        check_size(input)?;
        if looks_like_json(input) {
            Self::from_json(input)
        } else {
            Self::from_yaml(input)
        }
    }

    /// Parses a YAML configuration (JSON is YAML too). Applies defaults; does
    /// not validate.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Empty`], [`ConfigError::TooLarge`],
    /// [`ConfigError::Parse`] or [`ConfigError::UnexpectedType`].
    pub fn from_yaml(input: &[u8]) -> Result<Self, ConfigError> {
        check_size(input)?;
        let meta: TypeMeta = yaml(input)?;
        meta.check()?;
        let mut config: Self = yaml(input)?;
        config.apply_defaults();
        Ok(config)
    }

    /// Parses a JSON configuration. Applies defaults; does not validate.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Empty`], [`ConfigError::TooLarge`],
    /// [`ConfigError::Parse`] or [`ConfigError::UnexpectedType`].
    pub fn from_json(input: &[u8]) -> Result<Self, ConfigError> {
        check_size(input)?;
        let meta: TypeMeta = json(input)?;
        meta.check()?;
        let mut config: Self = json(input)?;
        config.apply_defaults();
        Ok(config)
    }

    /// Reads and parses a configuration file (either format, see
    /// [`from_slice`](Self::from_slice)). Applies defaults; does not validate.
    ///
    /// ```no_run
    /// use k8s_envelope::config::EncryptionConfiguration;
    ///
    /// let config = EncryptionConfiguration::load("/etc/kubernetes/enc/config.yaml")?;
    /// if let Err(errors) = config.validate() {
    ///     for error in errors.iter() {
    ///         eprintln!("{error}");
    ///     }
    /// }
    /// # Ok::<(), k8s_envelope::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] when the file cannot be read, and the errors of
    /// [`from_slice`](Self::from_slice).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let io = |source| ConfigError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut expected_len = 0;
        if let Ok(meta) = file.metadata() {
            expected_len = meta.len().min(MAX_CONFIG_BYTES as u64) as usize;
            if meta.is_file() && meta.len() > MAX_CONFIG_BYTES as u64 {
                return Err(ConfigError::TooLarge {
                    len: meta.len(),
                    limit: MAX_CONFIG_BYTES as u64,
                });
            }
        }
        // Read one byte past the limit, so that a file that grew (or is not a
        // regular file) is still caught without reading all of it. The buffer
        // is sized up front: growing it would leave copies of the keys behind.
        let mut data = Zeroizing::new(Vec::with_capacity(expected_len + 1));
        file.take(MAX_CONFIG_BYTES as u64 + 1)
            .read_to_end(&mut data)
            .map_err(io)?;
        Self::from_slice(&data)
    }
}

/// A JSON object: `{` then `"` or `}` (after whitespace). A YAML flow mapping
/// with plain keys, `{kind: EncryptionConfiguration, …}`, is not.
fn looks_like_json(input: &[u8]) -> bool {
    let mut significant = input.iter().filter(|b| !b.is_ascii_whitespace());
    significant.next() == Some(&b'{') && matches!(significant.next(), Some(b'"' | b'}'))
}

fn check_size(input: &[u8]) -> Result<(), ConfigError> {
    if input.is_empty() {
        return Err(ConfigError::Empty);
    }
    if input.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            len: input.len() as u64,
            limit: MAX_CONFIG_BYTES as u64,
        });
    }
    Ok(())
}

/// `kind` and `apiVersion`, read leniently (everything else is ignored) to
/// decide whether the document is an EncryptionConfiguration at all.
#[derive(Deserialize)]
#[serde(rename = "EncryptionConfiguration")]
struct TypeMeta {
    #[serde(default, deserialize_with = "null_as_default")]
    kind: String,
    #[serde(default, rename = "apiVersion", deserialize_with = "null_as_default")]
    api_version: String,
}

impl TypeMeta {
    fn check(self) -> Result<(), ConfigError> {
        let known = (self.kind == KIND && self.api_version == API_VERSION)
            || (self.kind == LEGACY_KIND && self.api_version == LEGACY_API_VERSION);
        if known {
            Ok(())
        } else {
            Err(ConfigError::UnexpectedType {
                kind: self.kind,
                api_version: self.api_version,
            })
        }
    }
}

fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_aliases = MAX_ALIASES;
    budget.max_anchors = MAX_ALIASES;
    budget.max_documents = 1;
    budget.max_recorded_anchor_events = MAX_ALIAS_REPLAY_EVENTS;
    budget.max_recorded_anchor_bytes = MAX_CONFIG_BYTES;
    budget.max_total_scalar_bytes = 2 * MAX_CONFIG_BYTES;
    budget.max_reader_input_bytes = Some(MAX_CONFIG_BYTES);

    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_ALIAS_REPLAY_EVENTS;
    options.alias_limits.max_replay_stack_depth = MAX_DEPTH;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    // Snippets would quote the source lines around an error, which may hold
    // a key's secret.
    options.with_snippet = false;
    options.crop_radius = 0;
    options
}

fn yaml<'de, T: Deserialize<'de>>(input: &'de [u8]) -> Result<T, ConfigError> {
    serde_saphyr::from_slice_with_options(input, yaml_options()).map_err(|e| {
        // The hint is for programmers using serde-saphyr, not for users.
        let message = e
            .to_string()
            .replace(", set DuplicateKeyPolicy in Options if acceptable", "");
        ConfigError::Parse {
            format: ConfigFormat::Yaml,
            message: redact_strings(&message),
        }
    })
}

fn json<'de, T: Deserialize<'de>>(input: &'de [u8]) -> Result<T, ConfigError> {
    serde_json::from_slice(input).map_err(|e| ConfigError::Parse {
        format: ConfigFormat::Json,
        message: redact_strings(&e.to_string()),
    })
}

/// The words that replace an unknown field's name in a parse error.
const UNKNOWN_FIELD_NOT_SHOWN: &str =
    "unknown field (its name is not repeated: a secret may have been written where a field name belongs)";

/// Replaces every string value that serde quotes in a type error
/// (`string "…"`, written with Rust's `Debug` escaping) by `a string`, and
/// every character value (``character `…` ``) by `a character`, so a parse
/// error cannot echo a secret that ended up in the wrong place.
pub(crate) fn redact_strings(message: &str) -> String {
    redact_values(&redact_duplicate_key(&redact_unknown_field(message)))
}

/// The words that replace a repeated key's name in a parse error.
const DUPLICATE_KEY_NOT_SHOWN: &str =
    "duplicate mapping key (its name is not repeated: a secret may have been written where a field name belongs)";

/// Replaces the name in `duplicate mapping key: … at line …` (YAML's
/// message; the position after it stays, to point at the key).
fn redact_duplicate_key(message: &str) -> String {
    const MARK: &str = "duplicate mapping key: ";
    let Some(at) = message.find(MARK) else {
        return message.to_owned();
    };
    let body = &message[at + MARK.len()..];
    let end = body.rfind(" at line ");
    let rest = end.map_or("", |end| &body[end..]);
    let name = &body[..end.unwrap_or(body.len())];
    if is_plain_field_name(name) {
        return format!("{}duplicate mapping key \"{name}\"{rest}", &message[..at]);
    }
    format!("{}{DUPLICATE_KEY_NOT_SHOWN}{rest}", &message[..at])
}

/// The longest field name an error repeats.
const MAX_SHOWN_FIELD_NAME: usize = 20;

/// Whether a field name is short and plain enough that it cannot be a key,
/// so an error may name it, as kube-apiserver does (`unknown field
/// "chacha20"`): ASCII letters, digits, `-` and `_`, at most 20 characters,
/// where the base64 of the shortest key any provider takes (16 bytes) has
/// 24. Anything else is withheld: it may be a secret written where a field
/// name belongs.
fn is_plain_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SHOWN_FIELD_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Replaces the name in ``unknown field `…` `` (the field names serde then
/// lists as expected are the schema's own, and stay).
fn redact_unknown_field(message: &str) -> String {
    const MARK: &str = "unknown field `";
    let Some(at) = message.find(MARK) else {
        return message.to_owned();
    };
    let body = &message[at + MARK.len()..];
    // A name may hold a backtick; the list of expected fields follows the
    // name after "`, ", or the message ends with the name.
    // The last of the markers: a name holding one cannot end it early.
    let end = ["`, expected", "`, there are no fields"]
        .iter()
        .filter_map(|marker| body.rfind(marker))
        .max()
        .or_else(|| body.rfind('`'));
    let rest = end.map_or("", |end| &body[end + 1..]);
    let name = &body[..end.unwrap_or(body.len())];
    if is_plain_field_name(name) {
        return format!("{}unknown field \"{name}\"{rest}", &message[..at]);
    }
    format!("{}{UNKNOWN_FIELD_NOT_SHOWN}{rest}", &message[..at])
}

fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let string_at = rest.find("string \"");
        let char_at = rest.find("character `");
        let (at, is_string) = match (string_at, char_at) {
            (None, None) => break,
            (Some(s), Some(c)) if c < s => (c, false),
            (Some(s), _) => (s, true),
            (None, Some(c)) => (c, false),
        };
        out.push_str(&rest[..at]);
        if is_string {
            let body = &rest[at + "string \"".len()..];
            match closing_quote(body) {
                Some(end) => {
                    out.push_str("a string");
                    rest = &body[end + 1..];
                }
                None => {
                    // No closing quote: drop the remainder rather than risk it.
                    out.push_str("a string");
                    rest = "";
                }
            }
        } else {
            let body = &rest[at + "character `".len()..];
            // A character value may itself be a backtick; skip one char first.
            let mut chars = body.char_indices();
            let first = chars.next().map_or(0, |(_, c)| c.len_utf8());
            match body[first..].find('`') {
                Some(end) => {
                    out.push_str("a character");
                    rest = &body[first + end + 1..];
                }
                None => {
                    out.push_str("a character");
                    rest = "";
                }
            }
        }
    }
    out.push_str(rest);
    out
}

/// The index of the first `"` not escaped by a backslash.
fn closing_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{redact_strings, UNKNOWN_FIELD_NOT_SHOWN};

    #[test]
    fn redacts_quoted_strings() {
        assert_eq!(
            redact_strings(r#"invalid type: string "c2Vj\"x", expected a sequence at line 3"#),
            "invalid type: a string, expected a sequence at line 3"
        );
        assert_eq!(
            redact_strings("invalid type: character `x`, expected i32"),
            "invalid type: a character, expected i32"
        );
        assert_eq!(
            redact_strings("invalid type: character ```, expected i32"),
            "invalid type: a character, expected i32"
        );
        assert_eq!(redact_strings(r#"string "unterminated"#), "a string");
        assert_eq!(
            redact_strings(
                "unknown field `c2VjcmV0IGlzIHNlY3VyZQ==`, expected one of `a` at line 3"
            ),
            format!("{UNKNOWN_FIELD_NOT_SHOWN}, expected one of `a` at line 3")
        );
        // A short plain name cannot be a key: repeated, as kube-apiserver does.
        assert_eq!(
            redact_strings("unknown field `chacha20`, expected one of `a` at line 3"),
            "unknown field \"chacha20\", expected one of `a` at line 3"
        );
        assert_eq!(
            redact_strings("unknown field `a`b`, there are no fields"),
            format!("{UNKNOWN_FIELD_NOT_SHOWN}, there are no fields")
        );
    }
}
