//! The compact value encoding: how a record's payload is stored in a journal frame.
//!
//! A payload is written once, when its batch goes to a disk journal, straight from the user's
//! typed value (through serde, with no intermediate `serde_json::Value`) or from a JSON value;
//! it is read back only for replay, inspection and verification, as a `serde_json::Value`.
//! The encoding is self-describing, so a journal can be printed as JSON without the Rust types
//! that wrote it, and it decodes to exactly the JSON that `serde_json::to_value` gives for the
//! same value (the same numbers, the same shape for enums and options).
//!
//! Struct field names and object keys are not repeated per record: an encoder shares one
//! [`KeyTable`] across a batch and the table is written once, ahead of the batch's records.
//!
//! # Layout
//!
//! A value starts with a tag byte:
//!
//! | tag | value | followed by |
//! | --- | --- | --- |
//! | `0x00` | null | nothing |
//! | `0x01` | false | nothing |
//! | `0x02` | true | nothing |
//! | `0x03` | unsigned integer | LEB128 varint |
//! | `0x04` | negative integer `n` | LEB128 varint of `-(n + 1)` |
//! | `0x05` | float | 8 bytes, IEEE 754 little-endian |
//! | `0x06` | string | varint byte length, UTF-8 bytes |
//! | `0x07` | bytes | varint length, the bytes (read back as an array of numbers, as JSON has no bytes) |
//! | `0x08` | array | values, then the end tag `0x0a` |
//! | `0x09` | object | entries, then a key varint of `0` |
//! | `0x80..=0xff` | unsigned integer `tag - 0x80` (0 to 127) | nothing |
//!
//! An object entry is a key varint, then a value. A key varint `k` is `0` at the end of the
//! object, even (`2 * (i + 1)`) for entry `i` of the key table, and odd (`2 * len + 1`) for an
//! inline key of `len` bytes of UTF-8 that follow. Every read is bounds-checked and nesting is
//! limited to [`MAX_DEPTH`], so decoding any bytes returns an error, never a panic.

mod decode;
mod encode;
mod tags;

pub use decode::{decode_value, ValueDecodeError, ValueReader};
pub use encode::{encode_json, encode_serialize, KeyTable, ValueEncodeError};
pub use tags::put_varint;

/// The deepest nesting of arrays and objects the decoder accepts.
pub const MAX_DEPTH: usize = 128;

#[cfg(test)]
mod tests;
