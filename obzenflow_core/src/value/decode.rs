//! Decoding the compact encoding back into `serde_json::Value`s, bounds-checked everywhere.

use serde_json::{Map, Number, Value};

use super::tags::{
    KEY_END, TAG_ARRAY, TAG_BYTES, TAG_END, TAG_FALSE, TAG_FLOAT, TAG_NEG_INT, TAG_NULL,
    TAG_OBJECT, TAG_SMALL_UINT, TAG_STR, TAG_TRUE, TAG_UINT,
};
use super::MAX_DEPTH;

/// Bytes that are not a valid compact value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at byte {offset} of the value")]
pub struct ValueDecodeError {
    /// What is wrong.
    pub reason: &'static str,
    /// Where, from the start of the bytes being decoded.
    pub offset: usize,
}

/// Decodes one value that fills `bytes` exactly, resolving key references against `keys`.
///
/// ```
/// use obzenflow_core::value::decode_value;
///
/// assert_eq!(decode_value(&[0x85], &[])?, serde_json::json!(5));
/// assert!(decode_value(&[0x06, 0x09], &[]).is_err()); // a string whose bytes are missing
/// # Ok::<(), obzenflow_core::value::ValueDecodeError>(())
/// ```
pub fn decode_value(bytes: &[u8], keys: &[Box<str>]) -> Result<Value, ValueDecodeError> {
    let mut reader = ValueReader::new(bytes, keys);
    let value = reader.value()?;
    if reader.position() != bytes.len() {
        return Err(reader.error("trailing bytes after the value"));
    }
    Ok(value)
}

/// A cursor over compact values, for decoders that embed them in a larger layout.
#[derive(Debug)]
pub struct ValueReader<'a> {
    bytes: &'a [u8],
    position: usize,
    keys: &'a [Box<str>],
}

impl<'a> ValueReader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8], keys: &'a [Box<str>]) -> Self {
        Self {
            bytes,
            position: 0,
            keys,
        }
    }

    /// How many bytes have been read.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Reads the next value.
    pub fn value(&mut self) -> Result<Value, ValueDecodeError> {
        self.value_at_depth(0)
    }

    fn error(&self, reason: &'static str) -> ValueDecodeError {
        ValueDecodeError {
            reason,
            offset: self.position,
        }
    }

    fn byte(&mut self) -> Result<u8, ValueDecodeError> {
        let byte = *self
            .bytes
            .get(self.position)
            .ok_or_else(|| self.error("the value is cut short"))?;
        self.position += 1;
        Ok(byte)
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], ValueDecodeError> {
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.position.checked_add(len))
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.error("a length runs past the end of the value"))?;
        let bytes = &self.bytes[self.position..end];
        self.position = end;
        Ok(bytes)
    }

    fn varint(&mut self) -> Result<u64, ValueDecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.error("a varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("a varint overflows 64 bits"))
    }

    fn text(&mut self, len: u64) -> Result<&'a str, ValueDecodeError> {
        let start = self.position;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| ValueDecodeError {
            reason: "a string is not valid UTF-8",
            offset: start,
        })
    }

    fn value_at_depth(&mut self, depth: usize) -> Result<Value, ValueDecodeError> {
        let tag = self.byte()?;
        Ok(match tag {
            TAG_NULL => Value::Null,
            TAG_FALSE => Value::Bool(false),
            TAG_TRUE => Value::Bool(true),
            TAG_UINT => Value::Number(self.varint()?.into()),
            TAG_NEG_INT => {
                let magnitude = self.varint()?;
                let value = i64::try_from(magnitude)
                    .map(|magnitude| -magnitude - 1)
                    .map_err(|_| self.error("a negative integer overflows 64 bits"))?;
                Value::Number(value.into())
            }
            TAG_FLOAT => {
                let bytes = self.take(8)?;
                let mut raw = [0; 8];
                raw.copy_from_slice(bytes);
                let float = f64::from_le_bytes(raw);
                Number::from_f64(float)
                    .map(Value::Number)
                    .ok_or_else(|| self.error("a float is not finite"))?
            }
            TAG_STR => {
                let len = self.varint()?;
                Value::String(self.text(len)?.to_owned())
            }
            TAG_BYTES => {
                let len = self.varint()?;
                let bytes = self.take(len)?;
                Value::Array(bytes.iter().map(|byte| Value::from(*byte)).collect())
            }
            TAG_ARRAY => self.array(depth + 1)?,
            TAG_OBJECT => self.object(depth + 1)?,
            small if small >= TAG_SMALL_UINT => Value::from(small - TAG_SMALL_UINT),
            _ => {
                self.position -= 1;
                return Err(self.error("unknown value tag"));
            }
        })
    }

    fn check_depth(&self, depth: usize) -> Result<(), ValueDecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.error("values nest too deeply"));
        }
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<Value, ValueDecodeError> {
        self.check_depth(depth)?;
        let mut items = Vec::new();
        loop {
            match self.bytes.get(self.position) {
                Some(&TAG_END) => {
                    self.position += 1;
                    return Ok(Value::Array(items));
                }
                Some(_) => items.push(self.value_at_depth(depth)?),
                None => return Err(self.error("an array is not closed")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, ValueDecodeError> {
        self.check_depth(depth)?;
        let mut entries = Map::new();
        loop {
            let key = self.varint()?;
            if key == KEY_END {
                return Ok(Value::Object(entries));
            }
            let name = if key & 1 == 1 {
                self.text(key >> 1)?.to_owned()
            } else {
                let index = usize::try_from((key >> 1) - 1).unwrap_or(usize::MAX);
                self.keys
                    .get(index)
                    .ok_or_else(|| self.error("a key refers past the key table"))?
                    .to_string()
            };
            let value = self.value_at_depth(depth)?;
            entries.insert(name, value);
        }
    }
}
