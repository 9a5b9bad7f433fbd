//! Encoding: a serde `Serializer` that writes the compact encoding straight from the user's
//! types, the same for `serde_json::Value`s, and the key table a batch shares.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use serde::ser::{self, Serialize};

use super::tags::{
    put_int, put_str, put_uint, put_varint, KEY_END, TAG_ARRAY, TAG_BYTES, TAG_END, TAG_FALSE,
    TAG_FLOAT, TAG_NULL, TAG_OBJECT, TAG_TRUE,
};

/// The most keys one table holds; keys met after that are written inline.
const MAX_KEYS: usize = 4096;
/// Up to this many keys, a key is looked up by comparing it with each (no hashing).
const LINEAR_SEARCH_KEYS: usize = 16;
/// Keys longer than this are always written inline.
const MAX_TABLE_KEY_LEN: usize = 64;

/// The object keys and struct field names of one batch, each stored once.
///
/// An encoder adds keys as it meets them; the batch's frame writes [`keys`](Self::keys) ahead
/// of its records and the decoder resolves references against the same list. Struct field
/// names are looked up by address (serde hands them out as `&'static str`), so naming a field
/// costs no hashing of its text.
#[derive(Default)]
pub struct KeyTable {
    keys: Vec<Box<str>>,
    by_address: HashMap<(usize, usize), u32, BuildHasherDefault<AddressHasher>>,
    by_text: HashMap<Box<str>, u32>,
}

impl fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyTable")
            .field("keys", &self.keys)
            .finish()
    }
}

impl KeyTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The keys in the order their references number them.
    pub fn keys(&self) -> &[Box<str>] {
        &self.keys
    }

    /// Forgets every key, keeping the allocations for the next batch.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.by_address.clear();
        self.by_text.clear();
    }

    /// The index of `key`, adding it if the table has room; `None` when the key must be
    /// written inline (the table is full, or the key is long).
    pub fn intern(&mut self, key: &str) -> Option<u32> {
        self.text_key(key)
    }

    /// The index of `name`, adding it whatever its length if the table has room; `None` when
    /// the table is full. For names that recur through a batch however long they are (the
    /// path of an input file), where [`intern`](Self::intern) writes a long key inline each
    /// time, as a long object key is seldom met twice.
    ///
    /// ```
    /// use obzenflow_core::value::KeyTable;
    ///
    /// let path = "/data/".to_owned() + &"deep/".repeat(20) + "orders.csv";
    /// let mut table = KeyTable::new();
    /// assert_eq!(table.intern(&path), None);
    /// assert_eq!(table.intern_name(&path), Some(0));
    /// assert_eq!(table.intern_name(&path), Some(0));
    /// assert_eq!(table.keys().len(), 1);
    /// ```
    pub fn intern_name(&mut self, name: &str) -> Option<u32> {
        if name.len() <= MAX_TABLE_KEY_LEN {
            return self.text_key(name);
        }
        if let Some(&index) = self.by_text.get(name) {
            return Some(index);
        }
        if self.keys.len() >= MAX_KEYS {
            return None;
        }
        let index = self.keys.len() as u32;
        self.keys.push(name.into());
        self.by_text.insert(name.into(), index);
        Some(index)
    }

    fn static_key(&mut self, key: &'static str) -> Option<u32> {
        let address = (key.as_ptr() as usize, key.len());
        if let Some(&index) = self.by_address.get(&address) {
            return Some(index);
        }
        let index = self.text_key(key)?;
        self.by_address.insert(address, index);
        Some(index)
    }

    fn text_key(&mut self, key: &str) -> Option<u32> {
        // Records of one batch mostly share a handful of keys: comparing a few short strings
        // costs less than hashing one.
        if self.keys.len() <= LINEAR_SEARCH_KEYS {
            if let Some(index) = self.keys.iter().position(|known| **known == *key) {
                return Some(index as u32);
            }
        } else if let Some(&index) = self.by_text.get(key) {
            return Some(index);
        }
        if self.keys.len() >= MAX_KEYS || key.len() > MAX_TABLE_KEY_LEN {
            return None;
        }
        let index = self.keys.len() as u32;
        self.keys.push(key.into());
        self.by_text.insert(key.into(), index);
        Some(index)
    }
}

/// Writes an object key: a table reference where the table has (or takes) it, inline text
/// otherwise.
fn put_key(out: &mut Vec<u8>, index: Option<u32>, key: &str) {
    match index {
        Some(index) => put_varint(out, (u64::from(index) + 1) << 1),
        None => {
            put_varint(out, ((key.len() as u64) << 1) | 1);
            out.extend_from_slice(key.as_bytes());
        }
    }
}

/// A hasher for `(address, length)` pairs: they are already well spread.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(*byte)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_usize(&mut self, value: usize) {
        self.0 = (self.0.rotate_left(5) ^ value as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueEncodeError {
    message: String,
}

impl ser::Error for ValueEncodeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self {
            message: message.to_string(),
        }
    }
}

fn key_must_be_a_string() -> ValueEncodeError {
    ser::Error::custom("key must be a string")
}

/// Appends the compact encoding of a JSON value, adding its keys to `keys`.
///
/// ```
/// use obzenflow_core::value::{decode_value, encode_json, KeyTable};
/// use serde_json::json;
///
/// let value = json!({"id": 7, "tags": ["a", null], "amount": -1.5});
/// let mut keys = KeyTable::new();
/// let mut bytes = Vec::new();
/// encode_json(&value, &mut keys, &mut bytes);
/// assert_eq!(decode_value(&bytes, keys.keys())?, value);
/// # Ok::<(), obzenflow_core::value::ValueDecodeError>(())
/// ```
pub fn encode_json(value: &serde_json::Value, keys: &mut KeyTable, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Null => out.push(TAG_NULL),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Number(number) => {
            if let Some(unsigned) = number.as_u64() {
                put_uint(out, unsigned);
            } else if let Some(signed) = number.as_i64() {
                put_int(out, signed);
            } else {
                put_float(out, number.as_f64().unwrap_or(f64::NAN));
            }
        }
        Value::String(text) => put_str(out, text),
        Value::Array(items) => {
            out.push(TAG_ARRAY);
            for item in items {
                encode_json(item, keys, out);
            }
            out.push(TAG_END);
        }
        Value::Object(entries) => {
            out.push(TAG_OBJECT);
            for (key, item) in entries {
                put_key(out, keys.text_key(key), key);
                encode_json(item, keys, out);
            }
            put_varint(out, KEY_END);
        }
    }
}

/// Appends the compact encoding of any serializable value, adding its field names to `keys`.
///
/// It decodes to what `serde_json::to_value(value)` gives. On error `out` is left as it was
/// (keys met before the error may stay in the table).
///
/// ```
/// use obzenflow_core::value::{encode_serialize, KeyTable, ValueReader};
///
/// #[derive(serde::Serialize)]
/// struct Flight { carrier: &'static str, delay: Option<i32> }
///
/// let mut keys = KeyTable::new();
/// let mut bytes = Vec::new();
/// encode_serialize(&Flight { carrier: "AA", delay: Some(-3) }, &mut keys, &mut bytes)?;
/// encode_serialize(&Flight { carrier: "UA", delay: None }, &mut keys, &mut bytes)?;
/// assert_eq!(keys.keys().len(), 2); // "carrier" and "delay", once for both records
/// let mut reader = ValueReader::new(&bytes, keys.keys());
/// assert_eq!(reader.value()?, serde_json::json!({"carrier": "AA", "delay": -3}));
/// assert_eq!(reader.value()?, serde_json::json!({"carrier": "UA", "delay": null}));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_serialize<T: Serialize + ?Sized>(
    value: &T,
    keys: &mut KeyTable,
    out: &mut Vec<u8>,
) -> Result<(), ValueEncodeError> {
    let start = out.len();
    let result = value.serialize(&mut Encoder { out, keys });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn put_float(out: &mut Vec<u8>, value: f64) {
    // JSON has no NaN or infinities; serde_json turns them into null, and so do we.
    if value.is_finite() {
        out.push(TAG_FLOAT);
        out.extend_from_slice(&value.to_le_bytes());
    } else {
        out.push(TAG_NULL);
    }
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    keys: &'a mut KeyTable,
}

impl Encoder<'_> {
    fn begin_variant(&mut self, variant: &'static str) {
        self.out.push(TAG_OBJECT);
        let index = self.keys.static_key(variant);
        put_key(self.out, index, variant);
    }

    fn end_object(&mut self) {
        put_varint(self.out, KEY_END);
    }
}

impl<'a, 'b> ser::Serializer for &'a mut Encoder<'b> {
    type Ok = ();
    type Error = ValueEncodeError;
    type SerializeSeq = Compound<'a, 'b>;
    type SerializeTuple = Compound<'a, 'b>;
    type SerializeTupleStruct = Compound<'a, 'b>;
    type SerializeTupleVariant = Compound<'a, 'b>;
    type SerializeMap = Compound<'a, 'b>;
    type SerializeStruct = Compound<'a, 'b>;
    type SerializeStructVariant = Compound<'a, 'b>;

    fn serialize_bool(self, value: bool) -> Result<(), ValueEncodeError> {
        self.out.push(if value { TAG_TRUE } else { TAG_FALSE });
        Ok(())
    }

    fn serialize_i8(self, value: i8) -> Result<(), ValueEncodeError> {
        self.serialize_i64(i64::from(value))
    }

    fn serialize_i16(self, value: i16) -> Result<(), ValueEncodeError> {
        self.serialize_i64(i64::from(value))
    }

    fn serialize_i32(self, value: i32) -> Result<(), ValueEncodeError> {
        self.serialize_i64(i64::from(value))
    }

    fn serialize_i64(self, value: i64) -> Result<(), ValueEncodeError> {
        put_int(self.out, value);
        Ok(())
    }

    fn serialize_u8(self, value: u8) -> Result<(), ValueEncodeError> {
        self.serialize_u64(u64::from(value))
    }

    fn serialize_u16(self, value: u16) -> Result<(), ValueEncodeError> {
        self.serialize_u64(u64::from(value))
    }

    fn serialize_u32(self, value: u32) -> Result<(), ValueEncodeError> {
        self.serialize_u64(u64::from(value))
    }

    fn serialize_u64(self, value: u64) -> Result<(), ValueEncodeError> {
        put_uint(self.out, value);
        Ok(())
    }

    fn serialize_i128(self, value: i128) -> Result<(), ValueEncodeError> {
        match i64::try_from(value) {
            Ok(value) => self.serialize_i64(value),
            Err(_) => match u64::try_from(value) {
                Ok(value) => self.serialize_u64(value),
                Err(_) => Err(ser::Error::custom("number out of range")),
            },
        }
    }

    fn serialize_u128(self, value: u128) -> Result<(), ValueEncodeError> {
        match u64::try_from(value) {
            Ok(value) => self.serialize_u64(value),
            Err(_) => Err(ser::Error::custom("number out of range")),
        }
    }

    fn serialize_f32(self, value: f32) -> Result<(), ValueEncodeError> {
        put_float(self.out, f64::from(value));
        Ok(())
    }

    fn serialize_f64(self, value: f64) -> Result<(), ValueEncodeError> {
        put_float(self.out, value);
        Ok(())
    }

    fn serialize_char(self, value: char) -> Result<(), ValueEncodeError> {
        put_str(self.out, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, value: &str) -> Result<(), ValueEncodeError> {
        put_str(self.out, value);
        Ok(())
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<(), ValueEncodeError> {
        self.out.push(TAG_BYTES);
        put_varint(self.out, value.len() as u64);
        self.out.extend_from_slice(value);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), ValueEncodeError> {
        self.out.push(TAG_NULL);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), ValueEncodeError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), ValueEncodeError> {
        self.out.push(TAG_NULL);
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), ValueEncodeError> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), ValueEncodeError> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), ValueEncodeError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), ValueEncodeError> {
        self.begin_variant(variant);
        value.serialize(&mut *self)?;
        self.end_object();
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, 'b>, ValueEncodeError> {
        self.out.push(TAG_ARRAY);
        Ok(Compound::new(self, Close::Array))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'b>, ValueEncodeError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, ValueEncodeError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, ValueEncodeError> {
        self.begin_variant(variant);
        self.out.push(TAG_ARRAY);
        Ok(Compound::new(self, Close::ArrayInVariant))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a, 'b>, ValueEncodeError> {
        self.out.push(TAG_OBJECT);
        Ok(Compound::new(self, Close::Object))
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, ValueEncodeError> {
        self.out.push(TAG_OBJECT);
        Ok(Compound::new(self, Close::Object))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'b>, ValueEncodeError> {
        self.begin_variant(variant);
        self.out.push(TAG_OBJECT);
        Ok(Compound::new(self, Close::ObjectInVariant))
    }
}

/// How a compound value ends.
#[derive(Clone, Copy)]
enum Close {
    Array,
    Object,
    /// An array that is the value of a one-entry `{variant: [...]}` object.
    ArrayInVariant,
    /// An object that is the value of a one-entry `{variant: {...}}` object.
    ObjectInVariant,
}

/// Arrays, maps and structs being written.
struct Compound<'a, 'b> {
    encoder: &'a mut Encoder<'b>,
    close: Close,
}

impl<'a, 'b> Compound<'a, 'b> {
    fn new(encoder: &'a mut Encoder<'b>, close: Close) -> Self {
        Self { encoder, close }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueEncodeError> {
        value.serialize(&mut *self.encoder)
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueEncodeError> {
        let index = self.encoder.keys.static_key(key);
        put_key(self.encoder.out, index, key);
        value.serialize(&mut *self.encoder)
    }

    fn finish(self) -> Result<(), ValueEncodeError> {
        let out = &mut *self.encoder.out;
        match self.close {
            Close::Array => out.push(TAG_END),
            Close::Object => put_varint(out, KEY_END),
            Close::ArrayInVariant => {
                out.push(TAG_END);
                put_varint(out, KEY_END);
            }
            Close::ObjectInVariant => {
                put_varint(out, KEY_END);
                put_varint(out, KEY_END);
            }
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = ValueEncodeError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = ValueEncodeError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = ValueEncodeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = ValueEncodeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = ValueEncodeError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Self::Error> {
        let text = key.serialize(MapKey)?;
        let index = self.encoder.keys.text_key(&text);
        put_key(self.encoder.out, index, &text);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = ValueEncodeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = ValueEncodeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Self::Error> {
        self.finish()
    }
}

/// Turns a map key into the string JSON uses for it, as `serde_json` does: strings as they
/// are, integers, booleans and chars as their text, unit variants as their name.
struct MapKey;

impl ser::Serializer for MapKey {
    type Ok = String;
    type Error = ValueEncodeError;
    type SerializeSeq = ser::Impossible<String, ValueEncodeError>;
    type SerializeTuple = ser::Impossible<String, ValueEncodeError>;
    type SerializeTupleStruct = ser::Impossible<String, ValueEncodeError>;
    type SerializeTupleVariant = ser::Impossible<String, ValueEncodeError>;
    type SerializeMap = ser::Impossible<String, ValueEncodeError>;
    type SerializeStruct = ser::Impossible<String, ValueEncodeError>;
    type SerializeStructVariant = ser::Impossible<String, ValueEncodeError>;

    fn serialize_bool(self, value: bool) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_i8(self, value: i8) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_i16(self, value: i16) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_i32(self, value: i32) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_i64(self, value: i64) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_u8(self, value: u8) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_u16(self, value: u16) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_u32(self, value: u32) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_u64(self, value: u64) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_i128(self, value: i128) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_u128(self, value: u128) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_f32(self, _value: f32) -> Result<String, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_f64(self, _value: f64) -> Result<String, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_char(self, value: char) -> Result<String, ValueEncodeError> {
        Ok(value.to_string())
    }
    fn serialize_str(self, value: &str) -> Result<String, ValueEncodeError> {
        Ok(value.to_owned())
    }
    fn serialize_bytes(self, _value: &[u8]) -> Result<String, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<String, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<String, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, ValueEncodeError> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, ValueEncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, ValueEncodeError> {
        Err(key_must_be_a_string())
    }
}
