//! The tag bytes of the compact value encoding and its varints.

pub(crate) const TAG_NULL: u8 = 0x00;
pub(crate) const TAG_FALSE: u8 = 0x01;
pub(crate) const TAG_TRUE: u8 = 0x02;
pub(crate) const TAG_UINT: u8 = 0x03;
pub(crate) const TAG_NEG_INT: u8 = 0x04;
pub(crate) const TAG_FLOAT: u8 = 0x05;
pub(crate) const TAG_STR: u8 = 0x06;
pub(crate) const TAG_BYTES: u8 = 0x07;
pub(crate) const TAG_ARRAY: u8 = 0x08;
pub(crate) const TAG_OBJECT: u8 = 0x09;
pub(crate) const TAG_END: u8 = 0x0a;
/// Tags from here on are unsigned integers `tag - TAG_SMALL_UINT`.
pub(crate) const TAG_SMALL_UINT: u8 = 0x80;
/// The key varint that ends an object.
pub(crate) const KEY_END: u64 = 0;

/// Appends `value` as a LEB128 varint: seven bits a byte, low bits first.
///
/// ```
/// let mut out = Vec::new();
/// obzenflow_core::value::put_varint(&mut out, 300);
/// assert_eq!(out, [0xac, 0x02]);
/// ```
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends an unsigned integer value.
pub(crate) fn put_uint(out: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        out.push(TAG_SMALL_UINT | value as u8);
    } else {
        out.push(TAG_UINT);
        put_varint(out, value);
    }
}

/// Appends a signed integer value: non-negative ones as unsigned, as JSON numbers do.
pub(crate) fn put_int(out: &mut Vec<u8>, value: i64) {
    match u64::try_from(value) {
        Ok(unsigned) => put_uint(out, unsigned),
        Err(_) => {
            out.push(TAG_NEG_INT);
            // `value` is negative, so `-(value + 1)` is in 0..=i64::MAX.
            put_varint(out, !(value as u64));
        }
    }
}

/// Appends a string value.
pub(crate) fn put_str(out: &mut Vec<u8>, value: &str) {
    out.push(TAG_STR);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}
