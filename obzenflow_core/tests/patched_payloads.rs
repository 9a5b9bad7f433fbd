//! Properties of payloads changed with `set_field`: whatever the object and the fields set,
//! every view of the patched payload (JSON value, one field, JSON text, the compact encoding)
//! is that of the object changed by `Map::insert`, and the record it was cloned from is
//! unchanged.

mod strategies;

use obzenflow_core::event::{FieldError, Payload};
use obzenflow_core::value::{decode_value, KeyTable};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use strategies::json_value;

/// Field names drawn from a small set, so that sets hit the base's fields and each other.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("m".to_owned()),
        Just("z".to_owned()),
        "[a-z]{1,3}"
    ]
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(field_name(), json_value(), 0..8)
        .prop_map(|map| map.into_iter().collect())
}

/// Every view of `payload` agrees with `expected`.
fn assert_views(payload: &Payload, expected: &Value) -> Result<(), TestCaseError> {
    let json = payload.to_json().unwrap();
    prop_assert_eq!(json.as_ref(), expected);
    for (name, value) in expected.as_object().unwrap() {
        let field = payload.field(name);
        prop_assert_eq!(field.as_deref(), Some(value));
    }
    prop_assert_eq!(payload.field("not a field name"), None);
    let mut text = Vec::new();
    payload.write_json(&mut text).unwrap();
    prop_assert_eq!(text, serde_json::to_vec(expected).unwrap());
    let (mut keys, mut bytes) = (KeyTable::new(), Vec::new());
    payload.encode(&mut keys, &mut bytes).unwrap();
    prop_assert_eq!(&decode_value(&bytes, keys.keys()).unwrap(), expected);
    Ok(())
}

proptest! {
    #[test]
    fn a_patched_payload_reads_as_the_changed_object(
        base in object(),
        sets in prop::collection::vec((field_name(), json_value()), 1..40),
    ) {
        let original = Payload::from(Value::Object(base.clone()));
        let mut changed = original.clone();
        let mut expected = base.clone();
        for (name, value) in sets {
            changed.set_field(name.clone(), value.clone()).unwrap();
            expected.insert(name, value);
            assert_views(&changed, &Value::Object(expected.clone()))?;
        }
        assert_views(&original, &Value::Object(base))?;
    }
}

#[test]
fn setting_a_field_of_a_shared_object_copies_nothing_and_an_unshared_one_changes_in_place() {
    let original = Payload::from(json!({"amount": 10.0, "customer": "c1"}));
    let mut changed = original.clone();
    changed.set_field("with_tax", 12.0).unwrap();
    assert!(
        changed.as_json().is_none(),
        "a shared object is patched, not copied"
    );

    let mut alone = Payload::from(json!({"amount": 10.0}));
    alone.set_field("with_tax", 12.0).unwrap();
    assert_eq!(
        alone.as_json(),
        Some(&json!({"amount": 10.0, "with_tax": 12.0}))
    );
}

#[test]
fn a_typed_payload_becomes_its_object_and_a_non_object_is_refused_by_name() {
    #[derive(Clone, serde::Serialize)]
    struct Order {
        id: u64,
    }
    let mut typed = Payload::typed(Order { id: 7 });
    typed.set_field("paid", true).unwrap();
    assert_eq!(typed, Payload::from(json!({"id": 7, "paid": true})));

    let mut typed_number = Payload::typed(5_u64);
    assert!(typed_number.set_field("x", 1).is_err());
    assert_eq!(
        typed_number.downcast_ref::<u64>(),
        Some(&5),
        "a refused set leaves the payload as it was"
    );

    let mut number = Payload::from(json!(5));
    let error = number.set_field("x", 1).unwrap_err();
    assert!(matches!(
        error,
        FieldError::NotAnObject { found: "a number" }
    ));
    assert_eq!(
        error.to_string(),
        "cannot set a field of a payload that is a number, not an object"
    );
}
