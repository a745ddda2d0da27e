//! The protobuf wire format, as far as the messages read and written here
//! need it: a reader of fields over a borrowed buffer (nothing is copied, and
//! a length is checked against the bytes present before anything is sliced)
//! and the writers of varints and length-delimited fields.

/// What is wrong with the bytes, in words that hold no data from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WireError(pub(crate) &'static str);

/// A field's value, by wire type.
pub(crate) enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire types 1 and 5 (fixed 64 and 32 bits), skipped.
    Fixed,
    /// Wire type 2: length-delimited bytes.
    Bytes(&'a [u8]),
}

/// A protobuf wire-format reader over a borrowed buffer.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// What has not been read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// A reader of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The next field number and value, or `None` at the end.
    pub(crate) fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, WireError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = tag >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(WireError("invalid protobuf field number"));
        }
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len)
                    .map_err(|_| WireError("protobuf length exceeds the input"))?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return Err(WireError("unsupported protobuf wire type")),
        };
        Ok(Some((field, value)))
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, &byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == 9 && byte > 1 {
                    break;
                }
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError("invalid protobuf varint"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], WireError> {
        if len > self.rest.len() {
            return Err(WireError("protobuf length exceeds the input"));
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }
}

/// Appends a protobuf varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Bytes a varint of `value` takes.
pub(crate) const fn varint_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends a length-delimited field.
pub(crate) fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut reader = Reader::new(&out);
            assert_eq!(reader.varint().ok(), Some(v));
        }
    }

    #[test]
    fn lengths_past_the_input_and_bad_wire_types_are_refused() {
        // Field 1, length-delimited, claiming 5 bytes of 1.
        assert_eq!(
            Reader::new(&[0x0A, 5, 0]).field().err(),
            Some(WireError("protobuf length exceeds the input"))
        );
        // Field 1, wire type 3 (a group).
        assert_eq!(
            Reader::new(&[0x0B]).field().err(),
            Some(WireError("unsupported protobuf wire type"))
        );
        // An 11-byte varint.
        assert!(Reader::new(&[0x80; 11]).field().is_err());
        let mut reader = Reader::new(&[0x0A, 1, 7, 0x10, 3]);
        assert!(matches!(reader.field(), Ok(Some((1, Value::Bytes(&[7]))))));
        assert!(matches!(reader.field(), Ok(Some((2, Value::Varint(3))))));
        assert!(matches!(reader.field(), Ok(None)));
    }
}
