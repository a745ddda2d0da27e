//! One JSON value of a dump file, its bytes read from a buffered reader a
//! buffer at a time, for `serde_json::from_slice` to decode.
//!
//! Why: serde_json reading from an `io::Read` takes the bytes one call at a
//! time; on a large dump that was most of a scan's time. Finding where a
//! value ends needs only its strings and brackets, a loop over each buffer
//! the reader already holds; the decoding, and every check of the JSON,
//! stays serde_json's (on the slice).

use std::io::{self, BufRead};

/// Whether `byte` is JSON whitespace.
pub(super) fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\n' | b'\r' | b'\t')
}

/// Skips JSON whitespace; the next byte, left unread (`None` at the end).
/// Adds what it skipped to `consumed`.
pub(super) fn peek_past_whitespace(
    reader: &mut impl BufRead,
    consumed: &mut u64,
) -> io::Result<Option<u8>> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(None);
        }
        let skip = buffer.iter().take_while(|b| is_whitespace(**b)).count();
        if skip < buffer.len() {
            let next = buffer[skip];
            reader.consume(skip);
            *consumed += skip as u64;
            return Ok(Some(next));
        }
        let all = buffer.len();
        reader.consume(all);
        *consumed += all as u64;
    }
}

/// Where a value is, as [`read_value`] scans it.
#[derive(Default)]
struct Scan {
    /// Objects and arrays open.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// A number, `true`, `false` or `null`: it ends where a delimiter
    /// starts.
    scalar: bool,
}

impl Scan {
    /// The index just after the value's end in `bytes`, if it ends there.
    fn end_in(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, &byte) in bytes.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
            } else if self.scalar {
                if matches!(byte, b',' | b']' | b'}') || is_whitespace(byte) {
                    return Some(i);
                }
            } else {
                match byte {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth = self.depth.saturating_sub(1);
                        if self.depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }
}

/// Reads the next JSON value (after any whitespace) into `out` (cleared
/// first): an object, array, string or scalar, its end found by its
/// brackets and strings (what is inside is left for the decoder to check).
/// Adds the bytes consumed to `consumed`. Fails when the input ends first
/// or the value is longer than `limit` bytes.
pub(super) fn read_value(
    reader: &mut impl BufRead,
    out: &mut Vec<u8>,
    limit: usize,
    consumed: &mut u64,
) -> Result<(), String> {
    out.clear();
    let first = peek_past_whitespace(reader, consumed)
        .map_err(|e| format!("cannot read: {e}"))?
        .ok_or_else(|| "invalid JSON: the file ends where a value should be".to_owned())?;
    // The first byte opens what the scan then tracks: an object or array
    // (depth 1), a string, or a scalar.
    let mut scan = Scan {
        scalar: !matches!(first, b'{' | b'[' | b'"'),
        ..Scan::default()
    };
    loop {
        let buffer = reader.fill_buf().map_err(|e| format!("cannot read: {e}"))?;
        if buffer.is_empty() {
            // A scalar may end the input; anything else is cut short.
            return if scan.scalar && !out.is_empty() {
                Ok(())
            } else {
                Err("invalid JSON: the file ends inside a value".to_owned())
            };
        }
        let end = scan.end_in(buffer);
        let upto = end.unwrap_or(buffer.len());
        if out.len() + upto > limit {
            return Err(format!(
                "a value is larger than {} MiB",
                limit / (1024 * 1024)
            ));
        }
        out.extend_from_slice(&buffer[..upto]);
        reader.consume(upto);
        *consumed += upto as u64;
        if end.is_some() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of `input` as `read_value` splits it, read through a
    /// reader with a buffer of `capacity` bytes (values across buffers).
    fn values(input: &[u8], capacity: usize) -> Vec<String> {
        let mut reader = io::BufReader::with_capacity(capacity, input);
        let mut out = Vec::new();
        let mut consumed = 0;
        let mut values = Vec::new();
        while peek_past_whitespace(&mut reader, &mut consumed)
            .expect("read")
            .is_some()
        {
            read_value(&mut reader, &mut out, 1 << 20, &mut consumed)
                .unwrap_or_else(|e| panic!("after {values:?}, buffer {capacity}: {e}"));
            values.push(String::from_utf8(out.clone()).expect("utf-8"));
            if peek_past_whitespace(&mut reader, &mut consumed).expect("read") == Some(b',') {
                reader.consume(1);
                consumed += 1;
            }
        }
        assert_eq!(consumed, input.len() as u64);
        values
    }

    #[test]
    fn values_end_where_their_brackets_and_strings_say() {
        let input = br#" {"a":"}]\"{","b":[1,{"c":[]}]} , "x\\" ,12.5e3, true,null,[[]] "#;
        let expected = [
            r#"{"a":"}]\"{","b":[1,{"c":[]}]}"#,
            r#""x\\""#,
            "12.5e3",
            "true",
            "null",
            "[[]]",
        ];
        for capacity in [1, 2, 3, 7, 64] {
            assert_eq!(values(input, capacity), expected, "buffer of {capacity}");
        }
    }

    #[test]
    fn cut_short_and_oversized_values_are_refused() {
        let mut out = Vec::new();
        for cut in [&br#"{"a":1"#[..], br#""abc"#, br#"[1,2"#, b"  "] {
            let mut reader = io::BufReader::with_capacity(2, cut);
            let err = read_value(&mut reader, &mut out, 1 << 20, &mut 0).expect_err("cut short");
            assert!(err.contains("the file ends"), "{err}");
        }
        let mut reader = io::BufReader::with_capacity(4, &br#"{"a":"0123456789"}"#[..]);
        let err = read_value(&mut reader, &mut out, 8, &mut 0).expect_err("too large");
        assert!(err.contains("larger than"), "{err}");
        // A scalar at the very end of the input is whole.
        let mut reader = io::BufReader::new(&b"42"[..]);
        read_value(&mut reader, &mut out, 8, &mut 0).expect("a scalar");
        assert_eq!(out, b"42");
    }
}
