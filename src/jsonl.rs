//! The JSON Lines protocol of the `k8s-envelope` CLI (`--jsonl`): one request
//! object per input line, exactly one response object per output line, in
//! order, carrying on after a bad line.
//!
//! It lives in the library so that the CLI, the `jsonl` fuzz target and any
//! other tool that wants to speak it run the same code: implement
//! [`Transform`] over your transformers and hand it to [`run`].
//!
//! ```text
//! encrypt: {"resource"?, "storage_key", "plaintext_b64"} -> {"stored_b64"}
//! decrypt: {"resource"?, "storage_key", "stored_b64"}    -> {"plaintext_b64", "stale"}
//! any line that fails                                     -> {"error"}
//! ```

use std::io::{self, BufRead, Read, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::Decrypted;

/// The longest input line accepted: what the largest legal request needs,
/// a stored value of [`MAX_STORED_VALUE_LEN`](crate::MAX_STORED_VALUE_LEN)
/// in base64 (the plaintext of a write is smaller still), plus 64 KiB for
/// the storage key, the resource and the JSON around them. A longer line is
/// answered with an error and skipped without being buffered.
pub const MAX_LINE: usize = crate::MAX_STORED_VALUE_LEN.div_ceil(3) * 4 + 64 * 1024;

/// Which way the values of a run go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "a run goes one of two ways, and only two"
)]
pub enum Direction {
    /// Plaintext in, stored value out.
    Encrypt,
    /// Stored value in, plaintext out.
    Decrypt,
}

/// What a run transforms values with (the CLI's loaded configuration).
pub trait Transform {
    /// Why a value could not be transformed: the crate's [`Error`](crate::Error), or the
    /// implementation's own (the CLI refuses some writes); its message is
    /// the response line's `error`, so it must hold no secret.
    type Error: std::fmt::Display;

    /// Encrypts `plaintext` with the first provider of `resource`.
    ///
    /// # Errors
    ///
    /// The transformer's error, or a refusal of the implementation.
    fn encrypt(
        &self,
        resource: &str,
        storage_key: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Self::Error>;

    /// Decrypts `stored` with whichever provider of `resource` matches.
    ///
    /// # Errors
    ///
    /// The transformer's error.
    fn decrypt(
        &self,
        resource: &str,
        storage_key: &str,
        stored: &[u8],
    ) -> Result<Decrypted, Self::Error>;
}

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(
    clippy::exhaustive_structs,
    reason = "the JSON Lines request, field for field, which callers build"
)]
pub struct Request {
    /// The group-resource (`secrets` when absent).
    #[serde(default = "default_resource")]
    pub resource: String,
    /// The etcd key of the object.
    pub storage_key: String,
    /// The value to encrypt, in base64 (encrypt only).
    pub plaintext_b64: Option<String>,
    /// The value to decrypt, in base64 (decrypt only).
    pub stored_b64: Option<String>,
}

fn default_resource() -> String {
    "secrets".to_owned()
}

impl Request {
    /// Parses one line (without its newline).
    ///
    /// # Errors
    ///
    /// The message of the response line: the JSON is invalid, a field is
    /// unknown, missing or of the wrong type. The message names the
    /// position, never a string or field name from the line.
    pub fn parse(line: &[u8]) -> Result<Self, String> {
        // Redacted as configuration errors are: a line that is a bare JSON
        // string (a plaintext pasted alone) must not come back in the error.
        serde_json::from_slice(line).map_err(|e| {
            format!(
                "invalid request line: {}",
                crate::config::redact_strings(&e.to_string())
            )
        })
    }

    /// The decoded input value for `direction`: `plaintext_b64` to encrypt,
    /// `stored_b64` to decrypt.
    ///
    /// # Errors
    ///
    /// The field is missing or not standard base64.
    pub fn input(&self, direction: Direction) -> Result<Vec<u8>, String> {
        let (value, name) = match direction {
            Direction::Encrypt => (&self.plaintext_b64, "plaintext_b64"),
            Direction::Decrypt => (&self.stored_b64, "stored_b64"),
        };
        let value = value
            .as_deref()
            .ok_or_else(|| format!("missing field `{name}`"))?;
        BASE64
            .decode(value)
            .map_err(|_| format!("`{name}` is not valid base64"))
    }
}

/// One output line.
#[derive(Debug, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Response {
    /// An encrypted value.
    Stored {
        /// The stored value, in base64.
        stored_b64: String,
    },
    /// A decrypted value.
    Plaintext {
        /// The plaintext, in base64.
        plaintext_b64: String,
        /// Whether the value should be re-encrypted.
        stale: bool,
    },
    /// The line could not be transformed.
    Error {
        /// Why; never contains plaintext or key material.
        error: String,
    },
}

impl Response {
    /// The answer to one line.
    pub fn to_line<T: Transform + ?Sized>(
        transform: &T,
        direction: Direction,
        line: &[u8],
    ) -> Self {
        match transform_line(transform, direction, line) {
            Ok(response) => response,
            Err(error) => Response::Error { error },
        }
    }

    /// Whether this is an error line.
    pub fn is_error(&self) -> bool {
        matches!(self, Response::Error { .. })
    }

    /// Writes the response as one line, newline included.
    ///
    /// # Errors
    ///
    /// Writing to `output` failed.
    pub fn write_line(&self, mut output: impl Write) -> io::Result<()> {
        serde_json::to_writer(&mut output, self)?;
        output.write_all(b"\n")
    }
}

fn transform_line<T: Transform + ?Sized>(
    transform: &T,
    direction: Direction,
    line: &[u8],
) -> Result<Response, String> {
    let request = Request::parse(line)?;
    let input = request.input(direction)?;
    match direction {
        Direction::Encrypt => {
            let stored = transform
                .encrypt(&request.resource, &request.storage_key, &input)
                .map_err(|e| e.to_string())?;
            Ok(Response::Stored {
                stored_b64: BASE64.encode(stored),
            })
        }
        Direction::Decrypt => {
            let read = transform
                .decrypt(&request.resource, &request.storage_key, &input)
                .map_err(|e| e.to_string())?;
            Ok(Response::Plaintext {
                plaintext_b64: BASE64.encode(&read.plaintext),
                stale: read.stale,
            })
        }
    }
}

/// Why a run stopped before the end of its input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Reading the input failed.
    #[error("reading stdin: {0}")]
    Read(#[source] io::Error),
    /// Writing the output failed.
    #[error("writing stdout: {0}")]
    Write(#[source] io::Error),
}

/// Answers every line of `input` on `output`; returns how many lines failed.
///
/// Lines of whitespace only are skipped; every other line gets exactly one
/// response line, in order. A line longer than [`MAX_LINE`] is answered with
/// an error and skipped without being buffered.
///
/// # Errors
///
/// Reading `input` or writing `output` failed; the lines answered so far
/// have been written.
pub fn run<T: Transform + ?Sized>(
    transform: &T,
    direction: Direction,
    mut input: impl BufRead,
    mut output: impl Write,
) -> Result<usize, RunError> {
    let mut failed = 0usize;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = Read::take(&mut input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(RunError::Read)?;
        if read == 0 {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let response = if line.len() > MAX_LINE {
            skip_rest_of_line(&mut input)?;
            Response::Error {
                error: format!("line longer than {MAX_LINE} bytes"),
            }
        } else {
            Response::to_line(transform, direction, &line)
        };
        if response.is_error() {
            failed += 1;
        }
        response.write_line(&mut output).map_err(RunError::Write)?;
    }
    output.flush().map_err(RunError::Write)?;
    Ok(failed)
}

fn skip_rest_of_line(input: &mut impl BufRead) -> Result<(), RunError> {
    loop {
        let buf = input.fill_buf().map_err(RunError::Read)?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            input.consume(pos + 1);
            return Ok(());
        }
        let len = buf.len();
        input.consume(len);
    }
}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn request_errors_never_echo_the_line() {
        for line in [
            &br#""my database password""#[..],
            br#"{"storage_key":"/a","plaintext_b64":"aGk=","my database password":1}"#,
            br#"{"storage_key":"my database password","plaintext_b64":7}"#,
            br#"["my database password"]"#,
        ] {
            let e = Request::parse(line).expect_err("invalid");
            assert!(e.starts_with("invalid request line: "), "{e}");
            assert!(!e.contains("password"), "{e}");
        }
    }
}
