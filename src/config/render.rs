//! Writing an EncryptionConfiguration back out as YAML.
//!
//! [`EncryptionConfiguration::to_yaml`] renders the configuration in the
//! layout of the Kubernetes documentation: `kind`, `apiVersion`,
//! `resources`; every list in its original order (resource rules,
//! resources, providers, keys); provider fields in the apiserver's order
//! (`aesgcm`, `aescbc`, `secretbox`, `identity`, `kms`; for `kms`:
//! `apiVersion`, `name`, `cachesize`, `endpoint`, `timeout`).
//!
//! What a render does not keep from the file it was loaded from:
//! - comments, blank lines, anchors and aliases (aliases are expanded), and
//!   the order of fields inside a mapping (always the order above);
//! - the form of scalars: a scalar is written plain when it cannot be read as
//!   anything but a string (`secrets`, `key1`, `unix:///tmp/kms.sock`), and
//!   double-quoted otherwise (`"*.apps"`, `"123"`, `"yes"`);
//! - which fields were absent: the KMS defaults that loading filled in
//!   (`apiVersion: v1`, `timeout: 3s`, `cachesize: 1000` for v1) are written
//!   out, which means the same.
//!
//! The output reads back ([`EncryptionConfiguration::from_yaml`]) to a
//! configuration equal to the one rendered, for YAML 1.2 readers (this
//! crate) and YAML 1.1 readers (kube-apiserver) alike.
//!
//! The rendered text holds every key's secret, so it is returned in a
//! [`Zeroizing`] buffer, and the buffer is grown without leaving copies
//! behind (a grown buffer is copied into a larger zeroizing one and the old
//! one wiped).

use std::fmt::{self, Write as _};

use zeroize::Zeroizing;

use super::types::{Key, KmsConfiguration, ProviderConfiguration, ResourceConfiguration};
use super::EncryptionConfiguration;

impl EncryptionConfiguration {
    /// Renders the configuration as YAML (see the [module
    /// docs](crate::config#rendering) for what is and is not kept).
    ///
    /// ```
    /// use k8s_envelope::config::EncryptionConfiguration;
    ///
    /// let yaml = br#"
    /// ## comments are not kept
    /// apiVersion: apiserver.config.k8s.io/v1
    /// kind: EncryptionConfiguration
    /// resources:
    ///   - resources: [secrets, "*.apps"]
    ///     providers:
    ///       - aesgcm: {keys: [{name: key1, secret: c2VjcmV0IGlzIHNlY3VyZQ==}]}
    ///       - identity: {}
    /// "#;
    /// let config = EncryptionConfiguration::from_yaml(yaml)?;
    /// let rendered = config.to_yaml();
    /// assert_eq!(rendered.as_str(), "\
    /// kind: EncryptionConfiguration
    /// apiVersion: apiserver.config.k8s.io/v1
    /// resources:
    ///   - resources:
    ///       - secrets
    ///       - \"*.apps\"
    ///     providers:
    ///       - aesgcm:
    ///           keys:
    ///             - name: key1
    ///               secret: c2VjcmV0IGlzIHNlY3VyZQ==
    ///       - identity: {}
    /// ");
    /// assert_eq!(EncryptionConfiguration::from_yaml(rendered.as_bytes())?, config);
    /// # Ok::<(), k8s_envelope::config::ConfigError>(())
    /// ```
    pub fn to_yaml(&self) -> Zeroizing<String> {
        let mut out = SecretBuf::with_capacity(256 + 160 * self.provider_count());
        // Writing into a `SecretBuf` cannot fail.
        let _ = write_config(&mut out, self);
        out.0
    }

    fn provider_count(&self) -> usize {
        self.resources
            .iter()
            .map(|r| r.resources.len() + r.providers.len() * 2)
            .sum()
    }
}

fn write_config(out: &mut SecretBuf, c: &EncryptionConfiguration) -> fmt::Result {
    out.write_str("kind: ")?;
    scalar(out, &c.kind)?;
    out.write_str("\napiVersion: ")?;
    scalar(out, &c.api_version)?;
    out.write_str("\nresources:")?;
    if c.resources.is_empty() {
        return out.write_str(" []\n");
    }
    out.write_char('\n')?;
    for rule in &c.resources {
        write_rule(out, rule)?;
    }
    Ok(())
}

fn write_rule(out: &mut SecretBuf, rule: &ResourceConfiguration) -> fmt::Result {
    out.write_str("  - resources:")?;
    if rule.resources.is_empty() {
        out.write_str(" []\n")?;
    } else {
        out.write_char('\n')?;
        for resource in &rule.resources {
            out.write_str("      - ")?;
            scalar(out, resource)?;
            out.write_char('\n')?;
        }
    }
    out.write_str("    providers:")?;
    if rule.providers.is_empty() {
        return out.write_str(" []\n");
    }
    out.write_char('\n')?;
    for provider in &rule.providers {
        write_provider(out, provider)?;
    }
    Ok(())
}

/// One element of a `providers` list, at indentation 6 (`      - `); its
/// fields at indentation 8.
fn write_provider(out: &mut SecretBuf, p: &ProviderConfiguration) -> fmt::Result {
    let mut first = true;
    let mut field = |out: &mut SecretBuf, name: &str| -> fmt::Result {
        out.write_str(if first { "      - " } else { "        " })?;
        first = false;
        out.write_str(name)?;
        out.write_char(':')
    };
    if let Some(aes) = &p.aesgcm {
        field(out, "aesgcm")?;
        write_keys(out, &aes.keys)?;
    }
    if let Some(aes) = &p.aescbc {
        field(out, "aescbc")?;
        write_keys(out, &aes.keys)?;
    }
    if let Some(secretbox) = &p.secretbox {
        field(out, "secretbox")?;
        write_keys(out, &secretbox.keys)?;
    }
    if p.identity.is_some() {
        field(out, "identity")?;
        out.write_str(" {}\n")?;
    }
    if let Some(kms) = &p.kms {
        field(out, "kms")?;
        write_kms(out, kms)?;
    }
    if first {
        // No provider set (invalid, but renderable).
        out.write_str("      - {}\n")?;
    }
    Ok(())
}

/// `keys:` of a static-key provider, after its `aesgcm:` (or other) field.
fn write_keys(out: &mut SecretBuf, keys: &[Key]) -> fmt::Result {
    out.write_str("\n          keys:")?;
    if keys.is_empty() {
        return out.write_str(" []\n");
    }
    out.write_char('\n')?;
    for key in keys {
        out.write_str("            - name: ")?;
        scalar(out, &key.name)?;
        out.write_str("\n              secret: ")?;
        scalar(out, key.secret.expose())?;
        out.write_char('\n')?;
    }
    Ok(())
}

fn write_kms(out: &mut SecretBuf, kms: &KmsConfiguration) -> fmt::Result {
    out.write_str("\n          apiVersion: ")?;
    scalar(out, &kms.api_version)?;
    out.write_str("\n          name: ")?;
    scalar(out, &kms.name)?;
    if let Some(size) = kms.cachesize {
        write!(out, "\n          cachesize: {size}")?;
    }
    out.write_str("\n          endpoint: ")?;
    scalar(out, &kms.endpoint)?;
    if let Some(timeout) = kms.timeout {
        out.write_str("\n          timeout: ")?;
        let text = timeout.to_string();
        if is_plain_duration(&text) {
            out.write_str(&text)?;
        } else {
            scalar(out, &text)?;
        }
    }
    out.write_char('\n')
}

/// Writes a string as a plain scalar when no YAML 1.1 or 1.2 reader could
/// take it for anything but that string, and double-quoted otherwise.
fn scalar(out: &mut SecretBuf, s: &str) -> fmt::Result {
    if is_plain_safe(s) {
        return out.write_str(s);
    }
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\t' => out.write_str("\\t")?,
            '\r' => out.write_str("\\r")?,
            c if needs_escape(c) => write!(out, "\\u{:04X}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// Characters outside YAML's printable set, and the ones YAML 1.1 takes for
/// line breaks or byte-order marks.
fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1F}'
            | '\u{7F}'..='\u{9F}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{FEFF}'
            | '\u{FFFE}'
            | '\u{FFFF}'
    )
}

/// A conservative test for plain scalars: starts with a letter or `/`,
/// continues with letters, digits and `._/+=:@-`, does not end with `:`, and
/// is not a word that YAML 1.1 reads as a boolean or null.
fn is_plain_safe(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'/') || bytes.last() == Some(&b':') {
        return false;
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"._/+=:@-".contains(b))
    {
        return false;
    }
    !matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null"
    )
}

/// Go durations such as `3s`, `1m30s` or `1.5ms`: digits, dots and the unit
/// letters, ending with a unit. No YAML reader takes those for a number or a
/// timestamp.
fn is_plain_duration(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_digit)
        && matches!(bytes.last(), Some(b's' | b'm' | b'h'))
        && bytes
            .iter()
            .all(|b| b.is_ascii_digit() || b".nsumh".contains(b))
}

/// A string buffer that never leaves a copy of its contents behind: it grows
/// by copying into a larger zeroizing buffer and wiping the old one.
struct SecretBuf(Zeroizing<String>);

impl SecretBuf {
    fn with_capacity(capacity: usize) -> Self {
        Self(Zeroizing::new(String::with_capacity(capacity)))
    }
}

impl fmt::Write for SecretBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let needed = self.0.len() + s.len();
        if needed > self.0.capacity() {
            let mut grown = String::with_capacity(needed.max(self.0.capacity() * 2));
            grown.push_str(&self.0);
            // The old buffer is zeroized when it is replaced (dropped).
            self.0 = Zeroizing::new(grown);
        }
        self.0.push_str(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{is_plain_safe, scalar, SecretBuf};

    fn render(s: &str) -> String {
        let mut out = SecretBuf::with_capacity(0);
        scalar(&mut out, s).expect("infallible");
        out.0.to_string()
    }

    #[test]
    fn plain_only_when_unambiguous() {
        for s in [
            "secrets",
            "key1",
            "unix:///tmp/kms.sock",
            "apiserver.config.k8s.io/v1",
            "c2VjcmV0IGlzIHNlY3VyZQ==",
            "3s",
        ] {
            assert_eq!(is_plain_safe(s), !s.starts_with('3'), "{s}");
        }
        for s in [
            "", "*.apps", "*.", "123", "yes", "No", "null", "-1s", "a: b", "a:", "#x", "500µs",
            "a b",
        ] {
            assert!(!is_plain_safe(s), "{s}");
        }
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(render("*.*"), "\"*.*\"");
        assert_eq!(render("a\"b\\c\nd\u{7}"), "\"a\\\"b\\\\c\\nd\\u0007\"");
        assert_eq!(render("\u{2028}"), "\"\\u2028\"");
    }

    #[test]
    fn growing_keeps_contents() {
        let mut out = SecretBuf::with_capacity(1);
        for _ in 0..100 {
            std::fmt::Write::write_str(&mut out, "abc").expect("infallible");
        }
        assert_eq!(out.0.len(), 300);
    }
}
