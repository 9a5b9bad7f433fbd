//! `Payload`: what a data record carries, either a JSON value or a typed value shared as the
//! writing stage produced it.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::patch::{FieldName, Patched};
use crate::value::{self, KeyTable, ValueEncodeError};

/// The payload of a data record.
///
/// A typed stage's output travels to the readers in the same process as the value it returned,
/// behind an `Arc`: a reader of the same type gets it back by reference
/// ([`downcast_ref`](Self::downcast_ref)) without any decoding. Cloning a payload never copies
/// it. The value is serialized only when its batch goes to a disk journal ([`encode`](Self::encode),
/// the compact encoding of [`crate::value`]) or when somebody asks for its JSON form
/// ([`to_json`](Self::to_json)); records read back from disk carry JSON payloads.
///
/// Two payloads are equal when their JSON forms are.
///
/// ```
/// use obzenflow_core::event::Payload;
///
/// #[derive(Clone, serde::Serialize)]
/// struct Order { id: u64 }
///
/// let typed = Payload::typed(Order { id: 7 });
/// assert_eq!(typed.downcast_ref::<Order>().map(|order| order.id), Some(7));
/// assert_eq!(typed, Payload::from(serde_json::json!({"id": 7})));
/// assert_eq!(typed.to_json()?["id"], 7);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct Payload(Repr);

#[derive(Clone)]
enum Repr {
    Json(Arc<Value>),
    Typed(Arc<dyn TypedValue>),
    /// A JSON object shared with another record, with some fields set on top.
    Patched(Arc<Patched>),
}

/// A typed value behind a payload: what the runtime needs of it without knowing its type.
trait TypedValue: Send + Sync + 'static {
    fn as_any(&self) -> &dyn Any;
    fn type_name(&self) -> &'static str;
    fn to_json(&self) -> Result<Value, serde_json::Error>;
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error>;
    fn encode(&self, keys: &mut KeyTable, out: &mut Vec<u8>) -> Result<(), ValueEncodeError>;
}

impl<T: Serialize + Send + Sync + 'static> TypedValue for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn to_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }

    fn encode(&self, keys: &mut KeyTable, out: &mut Vec<u8>) -> Result<(), ValueEncodeError> {
        value::encode_serialize(self, keys, out)
    }
}

impl Payload {
    /// A payload holding a typed value as it is.
    pub fn typed<T: Serialize + Send + Sync + 'static>(value: T) -> Self {
        Self(Repr::Typed(Arc::new(value)))
    }

    /// A payload holding a JSON value.
    pub fn json(value: Value) -> Self {
        Self(Repr::Json(Arc::new(value)))
    }

    /// The typed value, if this payload holds a value of type `T`.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        match &self.0 {
            Repr::Typed(typed) => typed.as_any().downcast_ref(),
            Repr::Json(_) | Repr::Patched(_) => None,
        }
    }

    /// The JSON value, if this payload holds one as it is (rather than a typed value, or an
    /// object with fields [set](Self::set_field) on a shared one).
    pub fn as_json(&self) -> Option<&Value> {
        match &self.0 {
            Repr::Json(json) => Some(json),
            Repr::Typed(_) | Repr::Patched(_) => None,
        }
    }

    /// Whether this payload holds a typed value.
    pub fn is_typed(&self) -> bool {
        matches!(self.0, Repr::Typed(_))
    }

    /// The Rust type name of a typed value, for messages; `None` for JSON payloads.
    pub fn type_name(&self) -> Option<&'static str> {
        match &self.0 {
            Repr::Typed(typed) => Some(typed.type_name()),
            Repr::Json(_) | Repr::Patched(_) => None,
        }
    }

    /// The payload as JSON: borrowed for a JSON payload, serialized for a typed one, built
    /// for a patched object.
    ///
    /// Fails only for a typed value that JSON cannot represent (a map with non-string keys).
    pub fn to_json(&self) -> Result<Cow<'_, Value>, serde_json::Error> {
        match &self.0 {
            Repr::Json(json) => Ok(Cow::Borrowed(json)),
            Repr::Typed(typed) => typed.to_json().map(Cow::Owned),
            Repr::Patched(patched) => Ok(Cow::Owned(patched.to_value())),
        }
    }

    /// The value of one field of an object payload, without building the whole JSON value
    /// for a JSON or patched payload; `None` if the payload is not an object or has no such
    /// field.
    ///
    /// ```
    /// use obzenflow_core::event::Payload;
    /// use serde_json::json;
    ///
    /// let mut payload = Payload::from(json!({"amount": 10.0}));
    /// payload.set_field("with_tax", 12.0)?;
    /// assert_eq!(payload.field("amount").as_deref(), Some(&json!(10.0)));
    /// assert_eq!(payload.field("with_tax").as_deref(), Some(&json!(12.0)));
    /// assert_eq!(payload.field("missing"), None);
    /// # Ok::<(), obzenflow_core::event::FieldError>(())
    /// ```
    pub fn field(&self, name: &str) -> Option<Cow<'_, Value>> {
        match &self.0 {
            Repr::Json(json) => json.get(name).map(Cow::Borrowed),
            Repr::Patched(patched) => patched.get(name).map(Cow::Borrowed),
            Repr::Typed(typed) => match typed.to_json() {
                Ok(Value::Object(mut object)) => object.remove(name).map(Cow::Owned),
                _ => None,
            },
        }
    }

    /// Sets one field of an object payload, copying neither the object nor its other fields
    /// when the object is shared with other records (a clone of a record read from a journal):
    /// the payload then holds the shared object and the fields set on it. A payload no other
    /// record shares is changed in place. A typed payload becomes its JSON object first.
    ///
    /// Fails if the payload is not an object, or is a typed value JSON cannot represent.
    pub fn set_field(
        &mut self,
        name: impl Into<FieldName>,
        value: impl Into<Value>,
    ) -> Result<(), FieldError> {
        let (name, value) = (name.into(), value.into());
        if let Repr::Typed(typed) = &self.0 {
            let json = typed.to_json().map_err(FieldError::Unrepresentable)?;
            if !json.is_object() {
                // Refused with the payload left as it was.
                return Err(FieldError::NotAnObject {
                    found: json_kind(&json),
                });
            }
            self.0 = Repr::Json(Arc::new(json));
        }
        match &mut self.0 {
            Repr::Json(json) => {
                if !json.is_object() {
                    return Err(FieldError::NotAnObject {
                        found: json_kind(json),
                    });
                }
                if let Some(Value::Object(object)) = Arc::get_mut(json).map(|json| &mut *json) {
                    object.insert(name.into_owned(), value);
                } else {
                    let patched = Patched::new(Arc::clone(json), name, value);
                    self.0 = Repr::Patched(Arc::new(patched));
                }
            }
            Repr::Patched(patched) => {
                let patch = Arc::make_mut(patched);
                if let Err((name, value)) = patch.set(name, value) {
                    let mut folded = patch.to_value();
                    if let Value::Object(object) = &mut folded {
                        object.insert(name.into_owned(), value);
                    }
                    self.0 = Repr::Json(Arc::new(folded));
                }
            }
            // Replaced by JSON just above.
            Repr::Typed(_) => unreachable!("a typed payload was turned into JSON above"),
        }
        Ok(())
    }

    /// Appends the payload as JSON text to `out`, without building a JSON value for a typed
    /// payload. Fields come in the struct's order for typed values and in key order for JSON
    /// values.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match &self.0 {
            Repr::Json(json) => serde_json::to_writer(out, json.as_ref()),
            Repr::Typed(typed) => typed.write_json(out),
            Repr::Patched(patched) => serde_json::to_writer(out, patched.as_ref()),
        }
    }

    /// Appends the payload in the compact encoding of [`crate::value`], adding its keys to
    /// `keys`.
    pub fn encode(&self, keys: &mut KeyTable, out: &mut Vec<u8>) -> Result<(), ValueEncodeError> {
        match &self.0 {
            Repr::Json(json) => {
                value::encode_json(json, keys, out);
                Ok(())
            }
            Repr::Typed(typed) => typed.encode(keys, out),
            Repr::Patched(patched) => value::encode_serialize(patched.as_ref(), keys, out),
        }
    }

    /// The JSON value to change in place: a typed payload is first turned into JSON, and a
    /// JSON value shared with other records is copied first.
    pub fn make_json_mut(&mut self) -> Result<&mut Value, serde_json::Error> {
        let typed_json = match &self.0 {
            Repr::Typed(typed) => Some(typed.to_json()?),
            Repr::Patched(patched) => Some(patched.to_value()),
            Repr::Json(_) => None,
        };
        if let Some(json) = typed_json {
            self.0 = Repr::Json(Arc::new(json));
        }
        match &mut self.0 {
            Repr::Json(json) => Ok(Arc::make_mut(json)),
            // Replaced by JSON just above.
            Repr::Typed(_) | Repr::Patched(_) => Err(serde::ser::Error::custom(
                "a payload stayed typed or patched",
            )),
        }
    }

    /// Whether both payloads are the very same shared value (a forwarded record).
    pub fn ptr_eq(&self, other: &Payload) -> bool {
        match (&self.0, &other.0) {
            (Repr::Json(a), Repr::Json(b)) => Arc::ptr_eq(a, b),
            (Repr::Typed(a), Repr::Typed(b)) => std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
            (Repr::Patched(a), Repr::Patched(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Self::json(value)
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        if self.ptr_eq(other) {
            return true;
        }
        match (self.to_json(), other.to_json()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        self.to_json().is_ok_and(|json| *json == *other)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.0, self.to_json()) {
            (Repr::Json(_) | Repr::Patched(_), Ok(json)) => write!(f, "{json}"),
            (Repr::Typed(typed), Ok(json)) => write!(f, "{}{json}", typed.type_name()),
            (_, Err(error)) => write!(f, "<unrepresentable payload: {error}>"),
        }
    }
}

/// The payload as JSON text (for typed values, fields in the struct's order).
impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::new();
        self.write_json(&mut text).map_err(|_| fmt::Error)?;
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::json)
    }
}

/// Why [`Payload::set_field`] could not set a field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// The event is not a data record.
    #[error("cannot set a field of a {found} event: only data records have fields")]
    NotData {
        /// The content kind of the event.
        found: &'static str,
    },
    /// The payload is not a JSON object.
    #[error("cannot set a field of a payload that is {found}, not an object")]
    NotAnObject {
        /// What the payload is instead (`a number`, `an array`, ...).
        found: &'static str,
    },
    /// A typed payload JSON cannot represent.
    #[error("cannot set a field of a typed payload JSON cannot represent")]
    Unrepresentable(#[source] serde_json::Error),
}

/// What a JSON value is, with its article, for messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
