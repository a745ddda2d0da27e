//! The JSON Lines mode: one request object per input line, exactly one
//! response object per output line, in order, carrying on after a bad line.

use std::io::{BufRead, Read, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::cli::{Direction, Failure};
use crate::session::Session;

/// The longest input line accepted (a 64 MiB value in base64, plus fields).
const MAX_LINE: usize = 90 * 1024 * 1024;

/// One input line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default = "default_resource")]
    resource: String,
    storage_key: String,
    plaintext_b64: Option<String>,
    stored_b64: Option<String>,
}

fn default_resource() -> String {
    "secrets".to_owned()
}

/// One output line.
#[derive(Serialize)]
#[serde(untagged)]
enum Response {
    Stored { stored_b64: String },
    Plaintext { plaintext_b64: String, stale: bool },
    Error { error: String },
}

/// Transforms every line of `input`; fails with status 1 when any line failed.
pub fn run(
    session: &Session,
    direction: Direction,
    mut input: impl BufRead,
    mut output: impl Write,
) -> Result<(), Failure> {
    let mut failed = 0usize;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = Read::take(&mut input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure::usage(format!("reading stdin: {e}")))?;
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
            respond(session, direction, &line)
        };
        if matches!(response, Response::Error { .. }) {
            failed += 1;
        }
        serde_json::to_writer(&mut output, &response)
            .map_err(std::io::Error::from)
            .and_then(|()| output.write_all(b"\n"))
            .map_err(|e| Failure::transform(format!("writing stdout: {e}")))?;
    }
    output
        .flush()
        .map_err(|e| Failure::transform(format!("writing stdout: {e}")))?;
    if failed > 0 {
        return Err(Failure::transform(format!(
            "{failed} line(s) could not be transformed"
        )));
    }
    Ok(())
}

fn respond(session: &Session, direction: Direction, line: &[u8]) -> Response {
    match transform_line(session, direction, line) {
        Ok(response) => response,
        Err(error) => Response::Error { error },
    }
}

fn transform_line(
    session: &Session,
    direction: Direction,
    line: &[u8],
) -> Result<Response, String> {
    // serde_json's messages name the position, never the content of a string.
    let request: Request =
        serde_json::from_slice(line).map_err(|e| format!("invalid request line: {e}"))?;
    match direction {
        Direction::Encrypt => {
            let plaintext = decode_field(request.plaintext_b64, "plaintext_b64")?;
            let stored = session
                .encrypt(&request.resource, &request.storage_key, &plaintext)
                .map_err(|e| e.to_string())?;
            Ok(Response::Stored {
                stored_b64: BASE64.encode(stored),
            })
        }
        Direction::Decrypt => {
            let stored = decode_field(request.stored_b64, "stored_b64")?;
            let read = session
                .decrypt(&request.resource, &request.storage_key, &stored)
                .map_err(|e| e.to_string())?;
            Ok(Response::Plaintext {
                plaintext_b64: BASE64.encode(&read.plaintext),
                stale: read.stale,
            })
        }
    }
}

fn decode_field(value: Option<String>, name: &str) -> Result<Vec<u8>, String> {
    let value = value.ok_or_else(|| format!("missing field `{name}`"))?;
    BASE64
        .decode(value)
        .map_err(|_| format!("`{name}` is not valid base64"))
}

fn skip_rest_of_line(input: &mut impl BufRead) -> Result<(), Failure> {
    loop {
        let buf = input
            .fill_buf()
            .map_err(|e| Failure::usage(format!("reading stdin: {e}")))?;
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
