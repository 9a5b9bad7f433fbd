//! Properties of the compact value encoding: typed values decode to what `serde_json` gives,
//! JSON values round-trip, and no bytes make the decoder panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

use super::*;

#[derive(Serialize)]
struct Flight {
    carrier: String,
    number: u32,
    delay: Option<i64>,
    distance: f64,
    cancelled: bool,
    status: Status,
    legs: Vec<(String, u16)>,
    extra: BTreeMap<u32, String>,
}

#[derive(Serialize)]
enum Status {
    OnTime,
    Late(u32),
    Diverted { to: String },
    Pair(u8, i8),
}

fn round_trip<T: Serialize>(value: &T) -> Value {
    let mut keys = KeyTable::new();
    let mut bytes = Vec::new();
    encode_serialize(value, &mut keys, &mut bytes).unwrap();
    decode_value(&bytes, keys.keys()).unwrap()
}

#[test]
fn typed_values_decode_to_what_serde_json_gives() {
    let statuses = [
        Status::OnTime,
        Status::Late(12),
        Status::Diverted { to: "ORD".into() },
        Status::Pair(1, -1),
    ];
    for status in statuses {
        let flight = Flight {
            carrier: "AA".into(),
            number: 1234,
            delay: Some(-7),
            distance: 802.5,
            cancelled: false,
            status,
            legs: vec![("JFK".into(), 3), ("LAX".into(), 400)],
            extra: BTreeMap::from([(1, "one".into())]),
        };
        assert_eq!(round_trip(&flight), serde_json::to_value(&flight).unwrap());
    }
}

#[test]
fn non_finite_floats_become_null_and_bytes_become_arrays() {
    assert_eq!(round_trip(&f64::NAN), Value::Null);
    assert_eq!(round_trip(&serde_bytes_like(&[1, 2])), json!([1, 2]));
    assert_eq!(round_trip(&u64::MAX), json!(u64::MAX));
    assert_eq!(round_trip(&i64::MIN), json!(i64::MIN));
}

fn serde_bytes_like(bytes: &[u8]) -> impl Serialize + '_ {
    struct Bytes<'a>(&'a [u8]);
    impl Serialize for Bytes<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }
    Bytes(bytes)
}

#[test]
fn keys_are_shared_across_values_of_a_batch() {
    let mut keys = KeyTable::new();
    let mut first = Vec::new();
    encode_json(
        &json!({"customer": "c1", "amount": 3}),
        &mut keys,
        &mut first,
    );
    let mut second = Vec::new();
    encode_json(
        &json!({"customer": "c2", "amount": 4}),
        &mut keys,
        &mut second,
    );
    assert_eq!(keys.keys().len(), 2);
    assert!(second.len() < 12, "{second:?}");
    assert_eq!(
        decode_value(&second, keys.keys()).unwrap(),
        json!({"customer": "c2", "amount": 4})
    );
}

#[test]
fn map_keys_that_json_cannot_hold_are_an_error_and_leave_the_output_as_it_was() {
    let mut keys = KeyTable::new();
    let mut bytes = vec![7];
    let map = BTreeMap::from([(vec![1u8], 1u8)]);
    let error = encode_serialize(&map, &mut keys, &mut bytes).unwrap_err();
    assert_eq!(error.to_string(), "key must be a string");
    assert_eq!(bytes, [7]);
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let bytes = vec![TAG_ARRAY_FOR_TESTS; 100_000];
    let error = decode_value(&bytes, &[]).unwrap_err();
    assert_eq!(error.reason, "values nest too deeply");
}

const TAG_ARRAY_FOR_TESTS: u8 = 0x08;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |float| float.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,80}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn json_values_round_trip(value in json_value()) {
        let mut keys = KeyTable::new();
        let mut bytes = Vec::new();
        encode_json(&value, &mut keys, &mut bytes);
        prop_assert_eq!(decode_value(&bytes, keys.keys()).unwrap(), value);
    }

    #[test]
    fn any_bytes_decode_to_a_value_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let keys: Vec<Box<str>> = vec!["a".into()];
        let _ = decode_value(&bytes, &keys);
    }
}
