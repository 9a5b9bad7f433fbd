//! The binary record encoding of a [`ChainEvent`]: pure functions, format version 1.
//!
//! A journal frame's body is one event in this encoding. It is hand-written rather than
//! derived: serde's JSON form costs several microseconds per event, and compact serde formats
//! cannot represent the internally tagged enums of `obzenflow_core`. Only the data payload,
//! which is arbitrary JSON, is stored as JSON text.
//!
//! # Layout (format version 1)
//!
//! Integers are little-endian and fixed width. Ids are their 16 raw UUID bytes. A `str` is a
//! `u32` byte length followed by that many bytes of UTF-8. An `opt<T>` is a `u8` flag (0 absent,
//! 1 present) followed by `T` when present.
//!
//! | field | encoding |
//! | --- | --- |
//! | format version | `u8`, always `1` |
//! | event id | 16 bytes |
//! | writer id | `u8` tag: `0` unassigned; `1` stage, then 16 bytes; `2` system, then `u8` component (`0` pipeline, `1` metrics aggregator, `2` replay, `255` followed by the component's `str` name) |
//! | content | `u8` tag, then per tag (below) |
//! | causality | `u8` flags (bit 0 parent, bit 1 correlation; other bits must be 0), then 16 bytes for each flag set, parent first |
//! | status | `u8` tag: `0` success; `1` filtered, `opt<str>` reason; `2` error, `u8` kind (`0` validation, `1` decode, `2` timeout, `3` remote, `4` permanent, `5` panic, `6` other, `255` followed by the kind's `str` name), `str` message, `opt<16 bytes>` stage id; `3` retried, `u32` attempt |
//! | processing time | `u64` nanoseconds |
//! | event time | `opt<u64>` microseconds since the Unix epoch |
//! | flow context | 16 bytes flow id, 16 bytes run id, 16 bytes stage id |
//!
//! Content tags:
//!
//! | tag | content | followed by |
//! | --- | --- | --- |
//! | `0` | data | `str` event type, `u32` schema version, `u32` length + JSON text of the payload |
//! | `1` | control: end of stream | `u64` records |
//! | `2` | control: drain | nothing |
//! | `3` | control: watermark | `u64` event time in microseconds |
//! | `4` | delivery receipt | `str` destination, `u64` records, `u64` bytes |
//! | `5` | lifecycle: started | nothing |
//! | `6` | lifecycle: completed | `u64` records in, `u64` records out, `u64` records errored |
//! | `7` | lifecycle: failed | `str` reason |
//! | `8` | lifecycle: cancelled | `str` reason |
//!
//! The body ends right after the flow context; trailing bytes are an error. Every read is
//! bounds-checked, so [`decode`] returns a [`CorruptionKind`] for any input and never panics.

use obzenflow_core::{
    Causality, ChainEvent, ControlEvent, CorrelationId, CorruptionKind, DeliveryReceipt, ErrorKind,
    EventContent, EventId, EventType, FlowContext, FlowId, LifecycleEvent, ProcessingInfo,
    ProcessingStatus, RunId, StageId, SystemComponent, Timestamp, WriterId,
};
use uuid::Uuid;

/// The format version written as the first byte of every record body.
pub const FORMAT_VERSION: u8 = 1;

const TAG_EXTENSION: u8 = 255;
const CAUSALITY_PARENT: u8 = 0b01;
const CAUSALITY_CORRELATION: u8 = 0b10;

/// Appends the format-1 encoding of `event` to `out`.
///
/// Fails only if a string or the payload is longer than 4 GiB, or the payload cannot be
/// serialized; `out` is then left as it was.
///
/// # Example
///
/// ```
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::journal::codec;
///
/// let event = ChainEvent::data("order", serde_json::json!({"id": 1}));
/// let mut body = Vec::new();
/// codec::encode_into(&event, &mut body)?;
/// assert_eq!(body[0], codec::FORMAT_VERSION);
/// assert_eq!(codec::decode(&body).unwrap(), event);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn encode_into(event: &ChainEvent, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let start = out.len();
    let result = encode_fields(event, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_fields(event: &ChainEvent, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    out.push(FORMAT_VERSION);
    put_uuid(out, event.id.as_uuid());
    encode_writer(&event.writer_id, out)?;
    encode_content(&event.content, out)?;
    encode_causality(&event.causality, out);
    encode_status(&event.processing_info.status, out)?;
    put_u64(out, event.processing_info.processing_time_ns);
    match event.event_time {
        Some(time) => {
            out.push(1);
            put_u64(out, time.as_micros());
        }
        None => out.push(0),
    }
    put_uuid(out, event.flow_context.flow_id.as_uuid());
    put_uuid(out, event.flow_context.run_id.as_uuid());
    put_uuid(out, event.flow_context.stage_id.as_uuid());
    Ok(())
}

fn encode_writer(writer: &WriterId, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match writer {
        WriterId::Unassigned => out.push(0),
        WriterId::Stage(stage_id) => {
            out.push(1);
            put_uuid(out, stage_id.as_uuid());
        }
        WriterId::System(component) => {
            out.push(2);
            match component {
                SystemComponent::Pipeline => out.push(0),
                SystemComponent::MetricsAggregator => out.push(1),
                SystemComponent::Replay => out.push(2),
                other => {
                    out.push(TAG_EXTENSION);
                    put_str(out, other.as_str())?;
                }
            }
        }
    }
    Ok(())
}

fn encode_content(content: &EventContent, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match content {
        EventContent::Data {
            event_type,
            schema_version,
            payload,
        } => {
            out.push(0);
            put_str(out, event_type)?;
            put_u32(out, *schema_version);
            let length_at = out.len();
            put_u32(out, 0);
            serde_json::to_writer(&mut *out, payload)?;
            let length = checked_len(out.len() - length_at - 4)?;
            out[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
        }
        EventContent::Control(ControlEvent::EndOfStream { records }) => {
            out.push(1);
            put_u64(out, *records);
        }
        EventContent::Control(ControlEvent::Drain) => out.push(2),
        EventContent::Control(ControlEvent::Watermark { event_time }) => {
            out.push(3);
            put_u64(out, event_time.as_micros());
        }
        EventContent::Delivery(receipt) => {
            out.push(4);
            put_str(out, &receipt.destination)?;
            put_u64(out, receipt.records);
            put_u64(out, receipt.bytes);
        }
        EventContent::Lifecycle(lifecycle) => encode_lifecycle(lifecycle, out)?,
    }
    Ok(())
}

fn encode_lifecycle(
    lifecycle: &LifecycleEvent,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    match lifecycle {
        LifecycleEvent::Started => out.push(5),
        LifecycleEvent::Completed {
            records_in,
            records_out,
            records_errored,
        } => {
            out.push(6);
            put_u64(out, *records_in);
            put_u64(out, *records_out);
            put_u64(out, *records_errored);
        }
        LifecycleEvent::Failed { reason } => {
            out.push(7);
            put_str(out, reason)?;
        }
        LifecycleEvent::Cancelled { reason } => {
            out.push(8);
            put_str(out, reason)?;
        }
    }
    Ok(())
}

fn encode_causality(causality: &Causality, out: &mut Vec<u8>) {
    let mut flags = 0;
    if causality.parent_id.is_some() {
        flags |= CAUSALITY_PARENT;
    }
    if causality.correlation_id.is_some() {
        flags |= CAUSALITY_CORRELATION;
    }
    out.push(flags);
    if let Some(parent_id) = causality.parent_id {
        put_uuid(out, parent_id.as_uuid());
    }
    if let Some(correlation_id) = causality.correlation_id {
        put_uuid(out, correlation_id.origin().as_uuid());
    }
}

fn encode_status(status: &ProcessingStatus, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match status {
        ProcessingStatus::Success => out.push(0),
        ProcessingStatus::Filtered { reason } => {
            out.push(1);
            match reason {
                Some(reason) => {
                    out.push(1);
                    put_str(out, reason)?;
                }
                None => out.push(0),
            }
        }
        ProcessingStatus::Error {
            kind,
            message,
            stage_id,
        } => {
            out.push(2);
            encode_error_kind(*kind, out)?;
            put_str(out, message)?;
            match stage_id {
                Some(stage_id) => {
                    out.push(1);
                    put_uuid(out, stage_id.as_uuid());
                }
                None => out.push(0),
            }
        }
        ProcessingStatus::Retried { attempt } => {
            out.push(3);
            put_u32(out, *attempt);
        }
    }
    Ok(())
}

fn encode_error_kind(kind: ErrorKind, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let tag = match kind {
        ErrorKind::Validation => 0,
        ErrorKind::Decode => 1,
        ErrorKind::Timeout => 2,
        ErrorKind::Remote => 3,
        ErrorKind::Permanent => 4,
        ErrorKind::Panic => 5,
        ErrorKind::Other => 6,
        other => {
            out.push(TAG_EXTENSION);
            return put_str(out, other.as_str());
        }
    };
    out.push(tag);
    Ok(())
}

fn put_uuid(out: &mut Vec<u8>, uuid: Uuid) {
    out.extend_from_slice(uuid.as_bytes());
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) -> Result<(), serde_json::Error> {
    put_u32(out, checked_len(text.len())?);
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn checked_len(length: usize) -> Result<u32, serde_json::Error> {
    u32::try_from(length).map_err(|_| {
        <serde_json::Error as serde::ser::Error>::custom("a string or payload is longer than 4 GiB")
    })
}

/// Decodes one record body written by [`encode_into`].
///
/// Returns [`CorruptionKind::UnknownVersion`] for a body of another format version and
/// [`CorruptionKind::Undecodable`] for anything malformed; never panics.
pub fn decode(body: &[u8]) -> Result<ChainEvent, CorruptionKind> {
    let mut cursor = Cursor { bytes: body, at: 0 };
    let version = cursor.u8("format version")?;
    if version != FORMAT_VERSION {
        return Err(CorruptionKind::UnknownVersion { version });
    }
    let id = EventId::from_uuid(cursor.uuid("event id")?);
    let writer_id = decode_writer(&mut cursor)?;
    let content = decode_content(&mut cursor)?;
    let causality = decode_causality(&mut cursor)?;
    let status = decode_status(&mut cursor)?;
    let processing_time_ns = cursor.u64("processing time")?;
    let event_time = match cursor.flag("event time")? {
        true => Some(Timestamp::from_micros(cursor.u64("event time")?)),
        false => None,
    };
    let flow_context = FlowContext {
        flow_id: FlowId::from_uuid(cursor.uuid("flow id")?),
        run_id: RunId::from_uuid(cursor.uuid("run id")?),
        stage_id: StageId::from_uuid(cursor.uuid("stage id")?),
    };
    if cursor.at != body.len() {
        return Err(undecodable(format!(
            "{} trailing bytes after the event",
            body.len() - cursor.at
        )));
    }
    Ok(ChainEvent {
        id,
        writer_id,
        content,
        causality,
        processing_info: ProcessingInfo {
            status,
            processing_time_ns,
        },
        event_time,
        flow_context,
    })
}

fn decode_writer(cursor: &mut Cursor<'_>) -> Result<WriterId, CorruptionKind> {
    match cursor.u8("writer tag")? {
        0 => Ok(WriterId::Unassigned),
        1 => Ok(WriterId::Stage(StageId::from_uuid(
            cursor.uuid("writer stage id")?,
        ))),
        2 => {
            let component = match cursor.u8("system component")? {
                0 => SystemComponent::Pipeline,
                1 => SystemComponent::MetricsAggregator,
                2 => SystemComponent::Replay,
                TAG_EXTENSION => {
                    let name = cursor.str("system component name")?;
                    SystemComponent::ALL
                        .into_iter()
                        .find(|component| component.as_str() == name)
                        .ok_or_else(|| undecodable(format!("unknown system component `{name}`")))?
                }
                tag => return Err(bad_tag("system component", tag)),
            };
            Ok(WriterId::System(component))
        }
        tag => Err(bad_tag("writer", tag)),
    }
}

fn decode_content(cursor: &mut Cursor<'_>) -> Result<EventContent, CorruptionKind> {
    let content = match cursor.u8("content tag")? {
        0 => {
            let event_type = EventType::from(cursor.str("event type")?.to_owned());
            let schema_version = cursor.u32("schema version")?;
            let length = cursor.u32("payload length")?;
            let json = cursor.take(length as usize, "payload")?;
            let payload = serde_json::from_slice(json)
                .map_err(|error| undecodable(format!("payload is not valid JSON: {error}")))?;
            EventContent::Data {
                event_type,
                schema_version,
                payload,
            }
        }
        1 => EventContent::Control(ControlEvent::EndOfStream {
            records: cursor.u64("end-of-stream count")?,
        }),
        2 => EventContent::Control(ControlEvent::Drain),
        3 => EventContent::Control(ControlEvent::Watermark {
            event_time: Timestamp::from_micros(cursor.u64("watermark")?),
        }),
        4 => EventContent::Delivery(DeliveryReceipt {
            destination: cursor.str("destination")?.to_owned(),
            records: cursor.u64("delivered records")?,
            bytes: cursor.u64("delivered bytes")?,
        }),
        5 => EventContent::Lifecycle(LifecycleEvent::Started),
        6 => EventContent::Lifecycle(LifecycleEvent::Completed {
            records_in: cursor.u64("records in")?,
            records_out: cursor.u64("records out")?,
            records_errored: cursor.u64("records errored")?,
        }),
        7 => EventContent::Lifecycle(LifecycleEvent::Failed {
            reason: cursor.str("failure reason")?.to_owned(),
        }),
        8 => EventContent::Lifecycle(LifecycleEvent::Cancelled {
            reason: cursor.str("cancellation reason")?.to_owned(),
        }),
        tag => return Err(bad_tag("content", tag)),
    };
    Ok(content)
}

fn decode_causality(cursor: &mut Cursor<'_>) -> Result<Causality, CorruptionKind> {
    let flags = cursor.u8("causality flags")?;
    if flags & !(CAUSALITY_PARENT | CAUSALITY_CORRELATION) != 0 {
        return Err(undecodable(format!("unknown causality flags {flags:#04x}")));
    }
    let parent_id = match flags & CAUSALITY_PARENT != 0 {
        true => Some(EventId::from_uuid(cursor.uuid("parent id")?)),
        false => None,
    };
    let correlation_id = match flags & CAUSALITY_CORRELATION != 0 {
        true => Some(CorrelationId::from_origin(EventId::from_uuid(
            cursor.uuid("correlation id")?,
        ))),
        false => None,
    };
    Ok(Causality {
        parent_id,
        correlation_id,
    })
}

fn decode_status(cursor: &mut Cursor<'_>) -> Result<ProcessingStatus, CorruptionKind> {
    let status = match cursor.u8("status tag")? {
        0 => ProcessingStatus::Success,
        1 => ProcessingStatus::Filtered {
            reason: match cursor.flag("filter reason")? {
                true => Some(cursor.str("filter reason")?.to_owned()),
                false => None,
            },
        },
        2 => ProcessingStatus::Error {
            kind: decode_error_kind(cursor)?,
            message: cursor.str("error message")?.to_owned(),
            stage_id: match cursor.flag("error stage id")? {
                true => Some(StageId::from_uuid(cursor.uuid("error stage id")?)),
                false => None,
            },
        },
        3 => ProcessingStatus::Retried {
            attempt: cursor.u32("retry attempt")?,
        },
        tag => return Err(bad_tag("status", tag)),
    };
    Ok(status)
}

fn decode_error_kind(cursor: &mut Cursor<'_>) -> Result<ErrorKind, CorruptionKind> {
    let kind = match cursor.u8("error kind")? {
        0 => ErrorKind::Validation,
        1 => ErrorKind::Decode,
        2 => ErrorKind::Timeout,
        3 => ErrorKind::Remote,
        4 => ErrorKind::Permanent,
        5 => ErrorKind::Panic,
        6 => ErrorKind::Other,
        TAG_EXTENSION => {
            let name = cursor.str("error kind name")?;
            ErrorKind::ALL
                .into_iter()
                .find(|kind| kind.as_str() == name)
                .ok_or_else(|| undecodable(format!("unknown error kind `{name}`")))?
        }
        tag => return Err(bad_tag("error kind", tag)),
    };
    Ok(kind)
}

fn undecodable(reason: String) -> CorruptionKind {
    CorruptionKind::Undecodable { reason }
}

fn bad_tag(field: &str, tag: u8) -> CorruptionKind {
    undecodable(format!("unknown {field} tag {tag}"))
}

/// A bounds-checked reader over a record body.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, length: usize, field: &str) -> Result<&'a [u8], CorruptionKind> {
        let end = self
            .at
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len());
        match end.and_then(|end| self.bytes.get(self.at..end)) {
            Some(slice) => {
                self.at += length;
                Ok(slice)
            }
            None => Err(undecodable(format!(
                "{field} needs {length} bytes at byte {}, but the body has {}",
                self.at,
                self.bytes.len()
            ))),
        }
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], CorruptionKind> {
        let slice = self.take(N, field)?;
        let mut array = [0; N];
        array.copy_from_slice(slice);
        Ok(array)
    }

    fn u8(&mut self, field: &str) -> Result<u8, CorruptionKind> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u32(&mut self, field: &str) -> Result<u32, CorruptionKind> {
        self.array(field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, field: &str) -> Result<u64, CorruptionKind> {
        self.array(field).map(u64::from_le_bytes)
    }

    fn uuid(&mut self, field: &str) -> Result<Uuid, CorruptionKind> {
        self.array(field).map(Uuid::from_bytes)
    }

    fn flag(&mut self, field: &str) -> Result<bool, CorruptionKind> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(undecodable(format!("{field}: presence flag {other}"))),
        }
    }

    fn str(&mut self, field: &str) -> Result<&'a str, CorruptionKind> {
        let length = self.u32(field)? as usize;
        let bytes = self.take(length, field)?;
        std::str::from_utf8(bytes)
            .map_err(|error| undecodable(format!("{field} is not UTF-8: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> ChainEvent {
        let origin = ChainEvent::data("order", json!({"id": 1}));
        origin
            .derive_data(
                "invoice",
                json!({"id": 1, "amount": 12.5, "tags": ["a", "b"]}),
            )
            .with_status(ProcessingStatus::error(
                ErrorKind::Validation,
                "negative amount",
                Some(StageId::new()),
            ))
            .with_event_time(Timestamp::from_micros(1_700_000_000_000_000))
    }

    #[test]
    fn round_trips_a_data_event() {
        let event = sample();
        let mut body = Vec::new();
        encode_into(&event, &mut body).unwrap();
        assert_eq!(decode(&body).unwrap(), event);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut body = Vec::new();
        encode_into(&sample(), &mut body).unwrap();
        for cut in 0..body.len() {
            assert!(decode(&body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_other_versions_and_trailing_bytes() {
        let mut body = Vec::new();
        encode_into(&sample(), &mut body).unwrap();
        let mut future = body.clone();
        future[0] = 2;
        assert_eq!(
            decode(&future),
            Err(CorruptionKind::UnknownVersion { version: 2 })
        );
        body.push(0);
        let error = decode(&body).unwrap_err();
        assert!(error.to_string().contains("1 trailing bytes"), "{error}");
    }
}
