//! Field errors as apimachinery prints them (`field.Error`): the path,
//! the kind, the value and the detail, gathered into [`ValidationErrors`].
//! The rules that produce them are in `validate`.

use std::collections::HashSet;
use std::fmt;

/// The kind of a [`FieldError`], as apimachinery names it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    /// A required value is missing (`Required value`).
    Required,
    /// A value is present but wrong (`Invalid value`).
    Invalid,
}

impl FieldErrorKind {
    /// The words apimachinery prints: `Required value` or `Invalid value`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid => "Invalid value",
        }
    }
}

impl fmt::Display for FieldErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validation problem, at a field path.
///
/// `Display` is apimachinery's `field.Error`:
/// `<path>: Required value: <detail>` or
/// `<path>: Invalid value: <value>: <detail>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    path: String,
    kind: FieldErrorKind,
    value: Option<String>,
    detail: String,
}

impl FieldError {
    pub(super) fn required(path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: FieldErrorKind::Required,
            value: None,
            detail: detail.into(),
        }
    }

    pub(super) fn invalid(
        path: impl Into<String>,
        value: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            kind: FieldErrorKind::Invalid,
            value: Some(value.into()),
            detail: detail.into(),
        }
    }

    /// The field path, e.g. `resources[0].providers[1].aesgcm.keys[0].secret`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the value is missing or wrong.
    pub fn kind(&self) -> FieldErrorKind {
        self.kind
    }

    /// The offending value as the apiserver renders it (`"secrets"`, `0`,
    /// `["a","b"]`, `"REDACTED"` for a secret); `None` for a missing value.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// What is wrong, in the apiserver's words.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)?;
        if let Some(value) = &self.value {
            write!(f, ": {value}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldError {}

/// Every problem [`validate`](super::validate()) found (at least one).
///
/// Identical messages are reported once. `Display` is apimachinery's
/// aggregate: one error as itself, several as `[first, second, …]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    pub(super) fn from_list(errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() {
            return Ok(());
        }
        let mut seen = HashSet::new();
        let unique: Vec<FieldError> = errors
            .into_iter()
            .filter(|e| seen.insert(e.to_string()))
            .collect();
        Err(Self(unique))
    }

    /// The errors, in the apiserver's order.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a `ValidationErrors` holds at least one error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors as a slice.
    pub fn as_slice(&self) -> &[FieldError] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for ValidationErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.0.as_slice() {
            return write!(f, "{only}");
        }
        f.write_str("[")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e}")?;
        }
        f.write_str("]")
    }
}

impl std::error::Error for ValidationErrors {}
