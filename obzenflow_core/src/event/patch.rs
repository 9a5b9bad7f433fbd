//! `Patched`: a JSON object with a few fields set on top of a shared one, what
//! [`Payload::set_field`](super::Payload::set_field) builds so that changing one field of a
//! record copies neither the object nor its other fields.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// The name of a field set by a patch: free for a string literal.
pub(crate) type FieldName = Cow<'static, str>;

/// A patch holding more fields than this is folded into a plain object, so that a long chain
/// of stages each setting another field never makes lookups slow.
const MAX_PATCHED_FIELDS: usize = 16;

/// A shared JSON object and the fields set on it, which hide the object's fields of the same
/// name. The names of the fields set are distinct. The first field set lives in the patch
/// itself, so the common case (one field changed) costs one allocation, the patch's own.
#[derive(Clone)]
pub(crate) struct Patched {
    base: Arc<Value>,
    first: (FieldName, Value),
    more: Vec<(FieldName, Value)>,
}

impl Patched {
    /// `base` (an object) with `name` set to `value`.
    pub(crate) fn new(base: Arc<Value>, name: FieldName, value: Value) -> Self {
        Self {
            base,
            first: (name, value),
            more: Vec::new(),
        }
    }

    /// Sets `name` to `value`; hands them back when the patch is full and should be folded
    /// into a plain object instead.
    pub(crate) fn set(&mut self, name: FieldName, value: Value) -> Result<(), (FieldName, Value)> {
        let slot = std::iter::once(&mut self.first)
            .chain(self.more.iter_mut())
            .find(|(field, _)| *field == name);
        if let Some(slot) = slot {
            slot.1 = value;
            return Ok(());
        }
        if 1 + self.more.len() == MAX_PATCHED_FIELDS {
            return Err((name, value));
        }
        self.more.push((name, value));
        Ok(())
    }

    /// The fields set, in the order they were first set.
    fn fields(&self) -> impl Iterator<Item = &(FieldName, Value)> {
        std::iter::once(&self.first).chain(&self.more)
    }

    /// The value of field `name` if the patch sets it.
    fn patched(&self, name: &str) -> Option<&Value> {
        self.fields()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value)
    }

    /// The value of field `name`: the patch's, else the base object's.
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.patched(name).or_else(|| self.base_object().get(name))
    }

    /// The object with the patch applied, as `Map::insert` would leave it.
    pub(crate) fn to_value(&self) -> Value {
        let mut object = self.base_object().clone();
        for (name, value) in self.fields() {
            object.insert(name.to_string(), value.clone());
        }
        Value::Object(object)
    }

    fn base_object(&self) -> &Map<String, Value> {
        match self.base.as_ref() {
            Value::Object(object) => object,
            // `Payload::set_field` patches objects only.
            _ => unreachable!("a patch is only ever made on a JSON object"),
        }
    }
}

/// Serializes as the patched object, in the order [`Patched::to_value`] gives: the base's
/// fields (a patched one in its place), then the new ones, without building the object.
impl Serialize for Patched {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let base = self.base_object();
        let added = self
            .fields()
            .filter(|(name, _)| !base.contains_key(name.as_ref()));
        if *SORTED_MAPS {
            // Sorted maps (serde_json's default): merge the two sorted sequences.
            let mut added: Vec<&(FieldName, Value)> = added.collect();
            added.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let mut map = serializer.serialize_map(None)?;
            let mut pending = added.into_iter().peekable();
            for (name, value) in base {
                while let Some((new_name, new_value)) =
                    pending.next_if(|(new_name, _)| new_name.as_ref() < name.as_str())
                {
                    map.serialize_entry(new_name.as_ref(), new_value)?;
                }
                map.serialize_entry(name, self.patched(name).unwrap_or(value))?;
            }
            for (new_name, new_value) in pending {
                map.serialize_entry(new_name.as_ref(), new_value)?;
            }
            return map.end();
        }
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in base {
            map.serialize_entry(name, self.patched(name).unwrap_or(value))?;
        }
        for (name, value) in added {
            map.serialize_entry(name.as_ref(), value)?;
        }
        map.end()
    }
}

/// Whether serde_json keeps object keys sorted (its default) rather than in insertion order
/// (its `preserve_order` feature, which another crate in the build may turn on).
static SORTED_MAPS: LazyLock<bool> = LazyLock::new(|| {
    let mut probe = Map::new();
    probe.insert("b".to_owned(), Value::Null);
    probe.insert("a".to_owned(), Value::Null);
    probe.keys().next().map(String::as_str) == Some("a")
});
