//! The binary encoding of a batch of [`ChainEvent`]s and of a journal's seal: pure functions,
//! format version 6 (versions 4 and 5 are read too).
//!
//! A journal frame's body is one batch: the records of one append that fit the frame, with
//! what they share (the sequence of the first, the writer, the flow context, the names of
//! payload fields and event types) written once ahead of them. Payloads are written in the
//! compact value encoding of [`obzenflow_core::value`], straight from the writer's typed
//! values; they are read back as JSON values, for replay, inspection and verification only.
//!
//! # Layout (format version 6)
//!
//! Integers are LEB128 varints unless a width is given. A `str` is a varint byte length and
//! that many bytes of UTF-8. A `name` is a varint: even `2 * (i + 1)` for entry `i` of the
//! batch's name table, odd `2 * len + 1` for `len` bytes of UTF-8 that follow. An `id` is a
//! varint relative to the previous id of the same field in the batch (nil before the first):
//! even `2 * d` when the id is the previous one plus `d` (as 128-bit integers, `d < 2^62`),
//! `1` followed by the 16 raw bytes otherwise. A `line` is a varint relative to the previous
//! origin line of the batch (0 before the first), zigzag-coded as lines may go backwards:
//! `2 * d` for the previous line plus `d`, `2 * d - 1` for it minus `d` (as 64-bit integers,
//! wrapping).
//!
//! | field | encoding |
//! | --- | --- |
//! | format version | `u8`, `6` (a body of version `5` reads the same, with no joined correlation ids; `4`, with no origins either) |
//! | first sequence | varint: the journal sequence of the batch's first record |
//! | record count | varint, at least 1 (`0` marks a seal, below) |
//! | packing | `u8`: `0` the rest follows as is; `1` a varint unpacked length, then the rest as one LZ4 block of that length |
//! | writer | the writer of the batch (below) |
//! | flow context | 16 bytes flow id, 16 bytes run id, 16 bytes stage id |
//! | name table | varint count, then each name as a `str` |
//! | records | `count` records |
//!
//! The writer packs the rest of a body of at least 128 bytes when LZ4 saves an eighth or more
//! of it. An unpacked length beyond 1 GiB, or beyond 255 times the packed bytes, is refused as
//! corrupt before anything is allocated.
//!
//! A writer is a `u8` tag: `0` unassigned; `1` stage, then 16 bytes; `2` system, then `u8`
//! component (`0` pipeline, `1` metrics aggregator, `2` replay, `255` followed by the
//! component's `str` name).
//!
//! A record:
//!
//! | field | encoding |
//! | --- | --- |
//! | flags | `u8`: bit 0 own writer, bit 1 own flow context, bit 2 parent, bit 3 correlation, bit 4 event time, bit 5 origin (version 5 and on), bit 6 joined correlation (version 6); other bits 0 |
//! | own writer, own flow context | as in the batch header, when their flags are set |
//! | event id | `id` |
//! | content | `u8` tag, then per tag (below) |
//! | parent, correlation, joined correlation | `id` each, when their flags are set; the joined correlation is the source record a join's other input record descends from |
//! | status | `u8` tag: `0` success; `1` filtered, `u8` flag, `str` reason if 1; `2` error, `u8` kind (`0` validation, `1` decode, `2` timeout, `3` remote, `4` permanent, `5` panic, `6` other, `255` followed by the kind's `str` name), `str` message, `u8` flag, 16 bytes stage id if 1; `3` retried, varint attempt |
//! | processing time | varint nanoseconds |
//! | event time | varint microseconds since the Unix epoch, when its flag is set |
//! | origin | `name` file, `line` line, when its flag is set: where in its input the record's source record was ([`ChainEvent::origin()`]) |
//!
//! The origin's file goes through the name table like event types, so the records of one file
//! pay about one byte for it after the first, and consecutive lines one more.
//!
//! Content tags:
//!
//! | tag | content | followed by |
//! | --- | --- | --- |
//! | `0` | data | `name` event type, varint schema version, the payload as a compact value |
//! | `1` | control: end of stream | varint records |
//! | `2` | control: drain | nothing |
//! | `3` | control: watermark | varint event time in microseconds |
//! | `4` | delivery receipt | `str` destination, varint records, varint bytes |
//! | `5` | lifecycle: started | nothing |
//! | `6` | lifecycle: completed | varint records in, out and errored |
//! | `7` | lifecycle: failed | `str` reason |
//! | `8` | lifecycle: cancelled | `str` reason |
//! | `9` | forwarded data: the content (event type, schema version, payload) of record `seq` of the `lane` journal of stage `origin`, which must be the record's parent | `name` origin, `u8` lane (`0` data, `1` error, `2` system), varint seq |
//!
//! A forwarded record is what a stage writes for a record it passes on unchanged (a filter's
//! kept records, records it moves to its error lane): a reference a few bytes long where a
//! copy of the payload would be. Decoding one needs the journal it refers to, found through a
//! [`ResolveForward`]: readers of a run directory resolve it in the sibling journal
//! (`stages/<origin>/<lane>`); [`NoForwards`] refuses it with
//! [`CorruptionKind::UnresolvedForward`].
//!
//! The body ends right after the last record; trailing bytes are an error. Every read is
//! bounds-checked, so [`decode_batch`] returns a [`CorruptionKind`] for any input and never
//! panics.
//!
//! # The seal
//!
//! A journal closed in order ends with one seal frame, whose body is a batch header of no
//! records followed by what a reader needs to know the journal is whole ([`Seal`]):
//!
//! | field | encoding |
//! | --- | --- |
//! | format version | `u8`, `6` (or `5` or `4`, read the same) |
//! | first sequence | varint: the number of records the journal holds |
//! | record count | varint `0` |
//! | lane | `u8`: `0` data, `1` error, `2` system |
//! | digest | the journal's [`JournalDigest`] (below) |
//! | companion | `u8` flag; if `1`, the digest of the other lane of the same stage |
//!
//! A digest is varint records, varint data records, varint frames, then the running hash as a
//! `u64` LE. The hash starts at [`JournalDigest::EMPTY`]'s and folds in every record frame, in
//! order, by its CRC32 and body length ([`JournalDigest::add_frame`]): a writer keeps it as
//! it appends, at the cost of one multiplication per frame. The seal frame itself is not folded
//! in. A data journal's seal carries its error journal's digest as the companion, so a lost,
//! emptied or swapped error journal is found from the data journal alone.
//!
//! Bodies of other versions (2 had no seal, 3 no forwarded records, 7 and on are of a later
//! build) are [`CorruptionKind::UnknownVersion`], naming the version found and those read.
//! Version 5 is version 6 without joined correlation ids, version 4 is version 5 without
//! origins: their bodies decode, and a record flag they did not know (bit 6 in version 5,
//! bits 5 and 6 in version 4) is unknown, as it was to the builds that wrote them.

use std::borrow::Borrow;
use std::sync::Arc;

use lz4_flex::block::{
    compress_into_with_table, decompress_into, get_maximum_output_size, CompressTable,
};
use obzenflow_core::value::{put_varint, KeyTable, ValueEncodeError, ValueReader};
use obzenflow_core::{
    Causality, ChainEvent, ControlEvent, CorrelationId, CorruptionKind, DeliveryReceipt, ErrorKind,
    EventContent, EventId, EventType, FlowContext, FlowId, Lane, LifecycleEvent, Payload,
    ProcessingInfo, ProcessingStatus, RunId, SourcePosition, StageId, SystemComponent, Timestamp,
    UnresolvedForward, WriterId,
};
use uuid::Uuid;

/// The format version written as the first byte of every batch body.
pub const FORMAT_VERSION: u8 = 6;

/// The oldest format version this build reads: version 4, which is version 5 without
/// origins (and version 5 is version 6 without joined correlation ids).
pub const OLDEST_FORMAT_VERSION: u8 = 4;

const TAG_EXTENSION: u8 = 255;
const TAG_FORWARDED: u8 = 9;
const FLAG_WRITER: u8 = 0b0_0001;
const FLAG_CONTEXT: u8 = 0b0_0010;
const FLAG_PARENT: u8 = 0b0_0100;
const FLAG_CORRELATION: u8 = 0b0_1000;
const FLAG_EVENT_TIME: u8 = 0b01_0000;
const FLAG_ORIGIN: u8 = 0b10_0000;
const FLAG_JOINED: u8 = 0b100_0000;

/// The record flags a body of format `version` may set.
const fn known_flags(version: u8) -> u8 {
    match version {
        4 => 0b001_1111,
        5 => 0b011_1111,
        _ => 0b111_1111,
    }
}

/// The first sequence and record count of a batch, read without decoding its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// The journal sequence of the batch's first record.
    pub first_seq: u64,
    /// How many records the batch holds: at least 1, or 0 for a seal.
    pub count: u64,
}

impl BatchHeader {
    /// One past the sequence of the batch's last record.
    pub fn end_seq(&self) -> u64 {
        self.first_seq.saturating_add(self.count)
    }

    /// Whether the frame is a journal's seal rather than a batch of records.
    pub fn is_seal(&self) -> bool {
        self.count == 0
    }
}

/// What a journal holds up to a point, counted and hashed frame by frame as it is appended.
///
/// ```
/// use obzenflow_runtime::journal::codec::JournalDigest;
///
/// let mut digest = JournalDigest::EMPTY;
/// digest.add_frame(0xdead_beef, 120, 3, 2);
/// let mut swapped = JournalDigest::EMPTY;
/// swapped.add_frame(0xdead_beef, 121, 3, 2);
/// assert_eq!((digest.records, digest.data_records, digest.frames), (3, 2, 1));
/// assert_ne!(digest.hash, swapped.hash);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalDigest {
    /// Records held.
    pub records: u64,
    /// Data records among them (what end-of-stream markers and `runs` count).
    pub data_records: u64,
    /// Record frames holding them.
    pub frames: u64,
    /// The running hash over the frames' checksums and lengths, in order.
    pub hash: u64,
}

impl JournalDigest {
    /// The digest of an empty journal.
    pub const EMPTY: Self = Self {
        records: 0,
        data_records: 0,
        frames: 0,
        hash: 0x6f62_7a65_6e66_6c6f,
    };

    /// Folds in one record frame: its body's CRC32 and length, and the records it holds.
    pub fn add_frame(&mut self, crc: u32, body_len: u32, records: u64, data_records: u64) {
        let frame = (u64::from(crc) << 32) | u64::from(body_len);
        self.hash = (self.hash.rotate_left(23) ^ frame).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.records += records;
        self.data_records += data_records;
        self.frames += 1;
    }
}

/// A journal's seal: its last frame, written when it is closed in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    /// The lane of the journal that wrote it.
    pub lane: Lane,
    /// What the journal holds.
    pub digest: JournalDigest,
    /// For a stage's data journal, what its error journal held when the data journal closed.
    pub companion: Option<JournalDigest>,
}

/// Appends the body of `seal` to `out`.
///
/// ```
/// use obzenflow_core::Lane;
/// use obzenflow_runtime::journal::codec::{self, JournalDigest, Seal};
///
/// let mut digest = JournalDigest::EMPTY;
/// digest.add_frame(7, 40, 2, 2);
/// let seal = Seal { lane: Lane::Data, digest, companion: Some(JournalDigest::EMPTY) };
/// let mut body = Vec::new();
/// codec::encode_seal(&seal, &mut body);
/// assert!(codec::decode_header(&body).unwrap().is_seal());
/// assert_eq!(codec::decode_seal(&body), Ok(seal));
/// ```
pub fn encode_seal(seal: &Seal, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    put_varint(out, seal.digest.records);
    put_varint(out, 0);
    out.push(lane_tag(seal.lane));
    put_digest(out, &seal.digest);
    match &seal.companion {
        Some(companion) => {
            out.push(1);
            put_varint(out, companion.records);
            put_digest(out, companion);
        }
        None => out.push(0),
    }
}

fn lane_tag(lane: Lane) -> u8 {
    match lane {
        Lane::Data => 0,
        Lane::Error => 1,
        Lane::System => 2,
    }
}

fn put_digest(out: &mut Vec<u8>, digest: &JournalDigest) {
    put_varint(out, digest.data_records);
    put_varint(out, digest.frames);
    out.extend_from_slice(&digest.hash.to_le_bytes());
}

/// Decodes a seal body written by [`encode_seal`]; a batch of records is
/// [`CorruptionKind::Undecodable`]. Never panics.
pub fn decode_seal(body: &[u8]) -> Result<Seal, CorruptionKind> {
    let mut cursor = Cursor::new(body);
    let header = cursor.header()?;
    if !header.is_seal() {
        return Err(undecodable(
            "a batch of records where a seal was expected".to_owned(),
        ));
    }
    let seal = cursor.seal_fields(header.first_seq)?;
    if cursor.at != body.len() {
        return Err(undecodable(format!(
            "{} trailing bytes after the seal",
            body.len() - cursor.at
        )));
    }
    Ok(seal)
}

/// A batch could not be encoded: a typed payload that the compact encoding cannot hold.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the payload of event {event_id}")]
pub struct BatchEncodeError {
    /// The record whose payload failed.
    pub event_id: EventId,
    /// What the encoder said.
    #[source]
    pub source: ValueEncodeError,
}

/// Encodes batches, keeping its buffers from one batch to the next.
#[derive(Debug, Default)]
pub struct BatchEncoder {
    names: KeyTable,
    records: Vec<u8>,
    /// The batch after its header, before it is packed.
    rest: Vec<u8>,
    packer: Packer,
}

/// What packs a batch's bytes after its header: an LZ4 block, when that saves enough.
#[derive(Default)]
struct Packer {
    table: CompressTable,
    packed: Vec<u8>,
}

impl std::fmt::Debug for Packer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packer")
            .field("packed", &self.packed.len())
            .finish_non_exhaustive()
    }
}

/// Bodies shorter than this are stored as they are: LZ4 saves little on them.
const PACK_FROM_BYTES: usize = 128;

/// The largest expansion an LZ4 block can encode (a run of one byte), bounding what a packed
/// body of a given length may claim to unpack to.
const LZ4_MAX_RATIO: u64 = 255;

impl Packer {
    /// Appends `rest` to `out` after its encoding byte: packed when that saves at least an
    /// eighth of it, as it is otherwise.
    fn pack_into(&mut self, rest: &[u8], out: &mut Vec<u8>) {
        if rest.len() >= PACK_FROM_BYTES {
            self.packed.resize(get_maximum_output_size(rest.len()), 0);
            if let Ok(packed) = compress_into_with_table(rest, &mut self.packed, &mut self.table) {
                if packed + 10 <= rest.len() - rest.len() / 8 {
                    out.push(PACKED_LZ4);
                    put_varint(out, rest.len() as u64);
                    out.extend_from_slice(&self.packed[..packed]);
                    return;
                }
            }
        }
        out.push(PACKED_NONE);
        out.extend_from_slice(rest);
    }
}

/// The most a packed body may unpack to (1 GiB, the largest frame body).
const MAX_UNPACKED_LEN: u64 = 1 << 30;

/// The encoding byte of a body whose rest is stored as it is.
const PACKED_NONE: u8 = 0;
/// The encoding byte of a body whose rest is an LZ4 block, after its unpacked length.
const PACKED_LZ4: u8 = 1;

impl BatchEncoder {
    /// An encoder with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the body of the batch `events`, whose first record gets journal sequence
    /// `first_seq`, to `out`. An empty `events` appends nothing.
    ///
    /// On error `out` is left as it was.
    ///
    /// # Example
    ///
    /// ```
    /// use obzenflow_core::ChainEvent;
    /// use obzenflow_runtime::journal::codec::{self, BatchEncoder, NoForwards};
    ///
    /// let events = vec![
    ///     ChainEvent::data("order", serde_json::json!({"id": 1})),
    ///     ChainEvent::data("order", serde_json::json!({"id": 2})),
    /// ];
    /// let mut body = Vec::new();
    /// BatchEncoder::new().encode(40, &events, &mut body)?;
    /// assert_eq!(body[0], codec::FORMAT_VERSION);
    /// let (header, decoded) = codec::decode_batch(&body, &mut NoForwards).unwrap();
    /// assert_eq!((header.first_seq, header.count), (40, 2));
    /// assert_eq!(decoded, events);
    /// # Ok::<(), codec::BatchEncodeError>(())
    /// ```
    pub fn encode<E: Borrow<ChainEvent>>(
        &mut self,
        first_seq: u64,
        events: &[E],
        out: &mut Vec<u8>,
    ) -> Result<(), BatchEncodeError> {
        self.encode_forwarding(first_seq, events, &[], out)
    }

    /// [`BatchEncoder::encode`], writing the events that `forwards` places (one entry per
    /// event, or none at all) as references to that record's content instead of a copy. A
    /// reference is written only for a data record whose parent is set; the caller promises
    /// that the record referred to is the parent and carries the same content.
    ///
    /// ```
    /// use obzenflow_core::{ChainEvent, Lane};
    /// use obzenflow_runtime::journal::codec::{self, BatchEncoder, ForwardRef, NoForwards};
    ///
    /// // A note that packing cannot shrink much.
    /// let note: String = (1..60u64).map(|i| format!("{:x}", i * 2_654_435_761 % 65_521)).collect();
    /// let parent = ChainEvent::data("order", serde_json::json!({"id": 1, "note": note}));
    /// let mut kept = parent.clone();
    /// kept.causality = parent.child_causality();
    /// let (mut copy, mut reference) = (Vec::new(), Vec::new());
    /// let mut encoder = BatchEncoder::new();
    /// encoder.encode(0, std::slice::from_ref(&kept), &mut copy)?;
    /// let at = ForwardRef { origin: "parse", lane: Lane::Data, seq: 7 };
    /// encoder.encode_forwarding(0, std::slice::from_ref(&kept), &[Some(at)], &mut reference)?;
    /// assert!(reference.len() < copy.len());
    /// // Away from its run, the reference cannot be resolved, and says so.
    /// assert!(codec::decode_batch(&reference, &mut NoForwards).is_err());
    /// # Ok::<(), codec::BatchEncodeError>(())
    /// ```
    pub fn encode_forwarding<E: Borrow<ChainEvent>>(
        &mut self,
        first_seq: u64,
        events: &[E],
        forwards: &[Option<ForwardRef<'_>>],
        out: &mut Vec<u8>,
    ) -> Result<(), BatchEncodeError> {
        let Some(first) = events.first().map(Borrow::borrow) else {
            return Ok(());
        };
        self.names.clear();
        self.records.clear();
        let shared = Shared {
            writer: first.writer_id,
            context: first.flow_context,
        };
        let mut previous = Previous::default();
        let mut previous_file = PreviousFile::default();
        for (index, event) in events.iter().enumerate() {
            let event = event.borrow();
            let forward = forwards.get(index).copied().flatten();
            encode_record(
                event,
                forward,
                &shared,
                (&mut previous, &mut previous_file),
                &mut self.names,
                &mut self.records,
            )
            .map_err(|source| BatchEncodeError {
                event_id: event.id,
                source,
            })?;
        }
        let rest = &mut self.rest;
        rest.clear();
        encode_writer(&shared.writer, rest);
        encode_context(&shared.context, rest);
        put_varint(rest, self.names.keys().len() as u64);
        for name in self.names.keys() {
            put_str(rest, name);
        }
        rest.extend_from_slice(&self.records);
        out.push(FORMAT_VERSION);
        put_varint(out, first_seq);
        put_varint(out, events.len() as u64);
        self.packer.pack_into(rest, out);
        Ok(())
    }
}

/// Where the content of a forwarded record is: record `seq` of the `lane` journal of the stage
/// `origin`, in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardRef<'a> {
    /// The stage whose journal holds the content.
    pub origin: &'a str,
    /// Which of its journals.
    pub lane: Lane,
    /// The record's sequence there.
    pub seq: u64,
}

/// A forwarded record being decoded: what [`ResolveForward`] is asked to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward<'a> {
    /// The forwarded record.
    pub event_id: EventId,
    /// Its parent, which the record referred to must be.
    pub parent_id: EventId,
    /// Where the content is.
    pub at: ForwardRef<'a>,
}

impl Forward<'_> {
    /// The error for this record when its content cannot be found, saying why.
    pub fn unresolved(&self, problem: impl Into<String>) -> CorruptionKind {
        CorruptionKind::UnresolvedForward(Box::new(UnresolvedForward {
            event_id: self.event_id,
            origin: self.at.origin.to_owned(),
            lane: self.at.lane,
            seq: self.at.seq,
            problem: problem.into(),
        }))
    }
}

/// Finds the content of forwarded records while a batch is decoded.
pub trait ResolveForward {
    /// The content (event type, schema version, payload) of the record `forward` refers to,
    /// after checking that it is `forward.parent_id`.
    fn resolve(&mut self, forward: &Forward<'_>) -> Result<EventContent, CorruptionKind>;
}

/// Resolves no forwarded record: each is [`CorruptionKind::UnresolvedForward`]. For bodies
/// decoded away from their run directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoForwards;

impl ResolveForward for NoForwards {
    fn resolve(&mut self, forward: &Forward<'_>) -> Result<EventContent, CorruptionKind> {
        Err(forward.unresolved("cannot be read here: decode the journal from its run directory"))
    }
}

/// Encodes one event as a batch of one at sequence 0 (tests and tools).
pub fn encode_into(event: &ChainEvent, out: &mut Vec<u8>) -> Result<(), BatchEncodeError> {
    BatchEncoder::new().encode(0, std::slice::from_ref(event), out)
}

/// What the records of a batch share unless their flags say otherwise.
struct Shared {
    writer: WriterId,
    context: FlowContext,
}

/// The previous id of each id field, which the next one is written relative to, and the
/// previous origin line.
#[derive(Default)]
struct Previous {
    id: u128,
    parent: u128,
    correlation: u128,
    joined: u128,
    line: u64,
}

/// The origin file of the previous record and its name-table index, so the records of one
/// file look their name up once per batch.
#[derive(Default)]
struct PreviousFile {
    file: Option<(Arc<str>, u32)>,
}

fn encode_record(
    event: &ChainEvent,
    forward: Option<ForwardRef<'_>>,
    shared: &Shared,
    (previous, previous_file): (&mut Previous, &mut PreviousFile),
    names: &mut KeyTable,
    out: &mut Vec<u8>,
) -> Result<(), ValueEncodeError> {
    let Causality {
        parent_id,
        correlation_id,
        joined_correlation_id,
    } = event.causality;
    let mut flags = 0;
    flags |= if event.writer_id != shared.writer {
        FLAG_WRITER
    } else {
        0
    };
    flags |= if event.flow_context != shared.context {
        FLAG_CONTEXT
    } else {
        0
    };
    flags |= if parent_id.is_some() { FLAG_PARENT } else { 0 };
    flags |= if correlation_id.is_some() {
        FLAG_CORRELATION
    } else {
        0
    };
    flags |= if event.event_time.is_some() {
        FLAG_EVENT_TIME
    } else {
        0
    };
    flags |= if event.origin.is_some() {
        FLAG_ORIGIN
    } else {
        0
    };
    flags |= if joined_correlation_id.is_some() {
        FLAG_JOINED
    } else {
        0
    };
    out.push(flags);
    if flags & FLAG_WRITER != 0 {
        encode_writer(&event.writer_id, out);
    }
    if flags & FLAG_CONTEXT != 0 {
        encode_context(&event.flow_context, out);
    }
    put_id(out, &mut previous.id, event.id.as_uuid());
    match forward {
        Some(at) if parent_id.is_some() && event.is_data() => {
            out.push(TAG_FORWARDED);
            put_name(out, names, at.origin);
            out.push(lane_tag(at.lane));
            put_varint(out, at.seq);
        }
        _ => encode_content(&event.content, names, out)?,
    }
    if let Some(parent_id) = parent_id {
        put_id(out, &mut previous.parent, parent_id.as_uuid());
    }
    if let Some(correlation_id) = correlation_id {
        put_id(
            out,
            &mut previous.correlation,
            correlation_id.origin().as_uuid(),
        );
    }
    if let Some(joined) = joined_correlation_id {
        put_id(out, &mut previous.joined, joined.origin().as_uuid());
    }
    encode_status(&event.processing_info.status, out);
    put_varint(out, event.processing_info.processing_time_ns);
    if let Some(time) = event.event_time {
        put_varint(out, time.as_micros());
    }
    if let Some(origin) = &event.origin {
        put_file(out, names, previous_file, &origin.file);
        put_line(out, &mut previous.line, origin.line);
    }
    Ok(())
}

/// Writes an origin's file as a `name`, looking it up in the name table only when it is not
/// the previous record's file.
fn put_file(out: &mut Vec<u8>, names: &mut KeyTable, previous: &mut PreviousFile, file: &Arc<str>) {
    let index = match &previous.file {
        Some((known, index)) if Arc::ptr_eq(known, file) || **known == **file => Some(*index),
        _ => {
            let index = names.intern_name(file);
            previous.file = index.map(|index| (Arc::clone(file), index));
            index
        }
    };
    match index {
        Some(index) => put_varint(out, (u64::from(index) + 1) << 1),
        None => {
            put_varint(out, ((file.len() as u64) << 1) | 1);
            out.extend_from_slice(file.as_bytes());
        }
    }
}

/// Writes `line` relative to `previous`, zigzag-coded, then makes it the previous one.
fn put_line(out: &mut Vec<u8>, previous: &mut u64, line: u64) {
    let delta = line.wrapping_sub(*previous) as i64;
    *previous = line;
    put_varint(out, ((delta << 1) ^ (delta >> 63)) as u64);
}

fn encode_writer(writer: &WriterId, out: &mut Vec<u8>) {
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
                    put_str(out, other.as_str());
                }
            }
        }
    }
}

fn encode_context(context: &FlowContext, out: &mut Vec<u8>) {
    put_uuid(out, context.flow_id.as_uuid());
    put_uuid(out, context.run_id.as_uuid());
    put_uuid(out, context.stage_id.as_uuid());
}

fn encode_content(
    content: &EventContent,
    names: &mut KeyTable,
    out: &mut Vec<u8>,
) -> Result<(), ValueEncodeError> {
    match content {
        EventContent::Data {
            event_type,
            schema_version,
            payload,
        } => {
            out.push(0);
            put_name(out, names, event_type);
            put_varint(out, u64::from(*schema_version));
            payload.encode(names, out)?;
        }
        EventContent::Control(ControlEvent::EndOfStream { records }) => {
            out.push(1);
            put_varint(out, *records);
        }
        EventContent::Control(ControlEvent::Drain) => out.push(2),
        EventContent::Control(ControlEvent::Watermark { event_time }) => {
            out.push(3);
            put_varint(out, event_time.as_micros());
        }
        EventContent::Delivery(receipt) => {
            out.push(4);
            put_str(out, &receipt.destination);
            put_varint(out, receipt.records);
            put_varint(out, receipt.bytes);
        }
        EventContent::Lifecycle(lifecycle) => encode_lifecycle(lifecycle, out),
    }
    Ok(())
}

fn encode_lifecycle(lifecycle: &LifecycleEvent, out: &mut Vec<u8>) {
    match lifecycle {
        LifecycleEvent::Started => out.push(5),
        LifecycleEvent::Completed {
            records_in,
            records_out,
            records_errored,
        } => {
            out.push(6);
            put_varint(out, *records_in);
            put_varint(out, *records_out);
            put_varint(out, *records_errored);
        }
        LifecycleEvent::Failed { reason } => {
            out.push(7);
            put_str(out, reason);
        }
        LifecycleEvent::Cancelled { reason } => {
            out.push(8);
            put_str(out, reason);
        }
    }
}

fn encode_status(status: &ProcessingStatus, out: &mut Vec<u8>) {
    match status {
        ProcessingStatus::Success => out.push(0),
        ProcessingStatus::Filtered { reason } => {
            out.push(1);
            match reason {
                Some(reason) => {
                    out.push(1);
                    put_str(out, reason);
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
            encode_error_kind(*kind, out);
            put_str(out, message);
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
            put_varint(out, u64::from(*attempt));
        }
    }
}

fn encode_error_kind(kind: ErrorKind, out: &mut Vec<u8>) {
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
}

fn put_uuid(out: &mut Vec<u8>, uuid: Uuid) {
    out.extend_from_slice(uuid.as_bytes());
}

/// Writes `uuid` relative to `previous`, then makes it the previous one.
fn put_id(out: &mut Vec<u8>, previous: &mut u128, uuid: Uuid) {
    let value = uuid.as_u128();
    let delta = value.wrapping_sub(*previous);
    *previous = value;
    match u64::try_from(delta) {
        Ok(delta) if delta < 1 << 62 => put_varint(out, delta << 1),
        _ => {
            out.push(1);
            put_uuid(out, uuid);
        }
    }
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

fn put_name(out: &mut Vec<u8>, names: &mut KeyTable, name: &str) {
    match names.intern(name) {
        Some(index) => put_varint(out, (u64::from(index) + 1) << 1),
        None => {
            put_varint(out, ((name.len() as u64) << 1) | 1);
            out.extend_from_slice(name.as_bytes());
        }
    }
}

/// Reads the first sequence and record count of a batch body, checking its version.
pub fn decode_header(body: &[u8]) -> Result<BatchHeader, CorruptionKind> {
    let mut cursor = Cursor::new(body);
    cursor.header()
}

/// Decodes a batch body written by [`BatchEncoder::encode`], finding the content of forwarded
/// records through `forwards`.
///
/// Returns [`CorruptionKind::UnknownVersion`] for a body of another format version,
/// [`CorruptionKind::Undecodable`] for anything malformed and what `forwards` returns for a
/// forwarded record it cannot resolve; never panics.
pub fn decode_batch(
    body: &[u8],
    forwards: &mut dyn ResolveForward,
) -> Result<(BatchHeader, Vec<ChainEvent>), CorruptionKind> {
    let mut cursor = Cursor::new(body);
    let (version, header) = cursor.versioned_header()?;
    if header.is_seal() {
        // A seal holds no records; it decodes (and so is checked) all the same.
        decode_seal(body)?;
        return Ok((header, Vec::new()));
    }
    let rest = unpack(&mut cursor)?;
    let events = decode_records(&rest, version, header, forwards)?;
    Ok((header, events))
}

/// The bytes of a batch after its header and encoding byte, unpacked.
fn unpack<'b>(cursor: &mut Cursor<'b>) -> Result<std::borrow::Cow<'b, [u8]>, CorruptionKind> {
    match cursor.u8("body encoding")? {
        PACKED_NONE => Ok(std::borrow::Cow::Borrowed(&cursor.bytes[cursor.at..])),
        PACKED_LZ4 => {
            let length = cursor.varint("unpacked length")?;
            let packed = &cursor.bytes[cursor.at..];
            if length > MAX_UNPACKED_LEN
                || length > (packed.len() as u64).saturating_mul(LZ4_MAX_RATIO)
            {
                return Err(undecodable(format!(
                    "{} packed bytes claim to unpack to {length}",
                    packed.len()
                )));
            }
            let mut rest = vec![0; length as usize];
            match decompress_into(packed, &mut rest) {
                Ok(unpacked) if unpacked as u64 == length => Ok(std::borrow::Cow::Owned(rest)),
                Ok(unpacked) => Err(undecodable(format!(
                    "the packed body unpacks to {unpacked} bytes, not the {length} it claims"
                ))),
                Err(error) => Err(undecodable(format!(
                    "the packed body does not unpack: {error}"
                ))),
            }
        }
        tag => Err(bad_tag("body encoding", tag)),
    }
}

/// Decodes the records of a batch from `body`, its bytes after the header, unpacked.
fn decode_records(
    body: &[u8],
    version: u8,
    header: BatchHeader,
    forwards: &mut dyn ResolveForward,
) -> Result<Vec<ChainEvent>, CorruptionKind> {
    let mut cursor = Cursor::new(body);
    let shared = Shared {
        writer: decode_writer(&mut cursor)?,
        context: decode_context(&mut cursor)?,
    };
    let name_count = cursor.varint("name count")?;
    // Every name takes at least one byte, so a count past the body's length is damage.
    if name_count > body.len() as u64 {
        return Err(undecodable(format!(
            "{name_count} names in a body of {} bytes",
            body.len()
        )));
    }
    let mut names = Vec::with_capacity(name_count as usize);
    for _ in 0..name_count {
        names.push(Box::<str>::from(cursor.str("name")?));
    }
    // Every record takes at least five bytes.
    if header.count > (body.len() / 5) as u64 {
        return Err(undecodable(format!(
            "{} records in a body of {} bytes",
            header.count,
            body.len()
        )));
    }
    let mut events = Vec::with_capacity(header.count as usize);
    let mut previous = Previous::default();
    let mut origins = Origins {
        known_flags: known_flags(version),
        file: None,
    };
    for _ in 0..header.count {
        events.push(decode_record(
            &mut cursor,
            (&shared, &names),
            (&mut previous, &mut origins),
            forwards,
        )?);
    }
    if cursor.at != body.len() {
        return Err(undecodable(format!(
            "{} trailing bytes after the batch",
            body.len() - cursor.at
        )));
    }
    Ok(events)
}

/// Decodes a body that holds exactly one record (tests and tools).
pub fn decode(body: &[u8]) -> Result<ChainEvent, CorruptionKind> {
    let (header, mut events) = decode_batch(body, &mut NoForwards)?;
    match (header.count, events.pop()) {
        (1, Some(event)) => Ok(event),
        (count, _) => Err(undecodable(format!("expected one record, found {count}"))),
    }
}

/// What decoding origins needs across the records of a batch: which flags its version knows,
/// and the previous origin's file, which the records of one file share.
struct Origins {
    known_flags: u8,
    file: Option<Arc<str>>,
}

impl Origins {
    /// The origin of a record whose file and line were just read.
    fn position(&mut self, file: &str, line: u64) -> Arc<SourcePosition> {
        let file = match &self.file {
            Some(known) if **known == *file => Arc::clone(known),
            _ => {
                let file: Arc<str> = Arc::from(file);
                self.file = Some(Arc::clone(&file));
                file
            }
        };
        Arc::new(SourcePosition { file, line })
    }
}

fn decode_record(
    cursor: &mut Cursor<'_>,
    (shared, names): (&Shared, &[Box<str>]),
    (previous, origins): (&mut Previous, &mut Origins),
    forwards: &mut dyn ResolveForward,
) -> Result<ChainEvent, CorruptionKind> {
    let flags = cursor.u8("record flags")?;
    if flags & !origins.known_flags != 0 {
        return Err(undecodable(format!("unknown record flags {flags:#04x}")));
    }
    let writer_id = match flags & FLAG_WRITER != 0 {
        true => decode_writer(cursor)?,
        false => shared.writer,
    };
    let flow_context = match flags & FLAG_CONTEXT != 0 {
        true => decode_context(cursor)?,
        false => shared.context,
    };
    let id = EventId::from_uuid(cursor.id("event id", &mut previous.id)?);
    let content = decode_content(cursor, names)?;
    let parent_id = match flags & FLAG_PARENT != 0 {
        true => Some(EventId::from_uuid(
            cursor.id("parent id", &mut previous.parent)?,
        )),
        false => None,
    };
    let correlation_id = match flags & FLAG_CORRELATION != 0 {
        true => Some(CorrelationId::from_origin(EventId::from_uuid(
            cursor.id("correlation id", &mut previous.correlation)?,
        ))),
        false => None,
    };
    let joined_correlation_id = match flags & FLAG_JOINED != 0 {
        true => Some(CorrelationId::from_origin(EventId::from_uuid(
            cursor.id("joined correlation id", &mut previous.joined)?,
        ))),
        false => None,
    };
    let status = decode_status(cursor)?;
    let processing_time_ns = cursor.varint("processing time")?;
    let event_time = match flags & FLAG_EVENT_TIME != 0 {
        true => Some(Timestamp::from_micros(cursor.varint("event time")?)),
        false => None,
    };
    let origin = match flags & FLAG_ORIGIN != 0 {
        true => {
            let file = cursor.name("origin file", names)?;
            let line = cursor.line("origin line", &mut previous.line)?;
            Some(origins.position(file, line))
        }
        false => None,
    };
    let content = match content {
        Content::Stored(content) => content,
        Content::Forwarded(at) => {
            let Some(parent_id) = parent_id else {
                return Err(undecodable(format!("forwarded record {id} has no parent")));
            };
            forwards.resolve(&Forward {
                event_id: id,
                parent_id,
                at,
            })?
        }
    };
    Ok(ChainEvent {
        id,
        writer_id,
        content,
        causality: Causality {
            parent_id,
            correlation_id,
            joined_correlation_id,
        },
        processing_info: ProcessingInfo {
            status,
            processing_time_ns,
        },
        event_time,
        flow_context,
        origin,
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

fn decode_context(cursor: &mut Cursor<'_>) -> Result<FlowContext, CorruptionKind> {
    Ok(FlowContext {
        flow_id: FlowId::from_uuid(cursor.uuid("flow id")?),
        run_id: RunId::from_uuid(cursor.uuid("run id")?),
        stage_id: StageId::from_uuid(cursor.uuid("stage id")?),
    })
}

/// A record's content as stored: in place, or a reference to another journal's record.
enum Content<'a> {
    Stored(EventContent),
    Forwarded(ForwardRef<'a>),
}

fn decode_content<'b: 'n, 'n>(
    cursor: &mut Cursor<'b>,
    names: &'n [Box<str>],
) -> Result<Content<'n>, CorruptionKind> {
    let content = match cursor.u8("content tag")? {
        TAG_FORWARDED => {
            let origin = cursor.name("forwarded origin", names)?;
            let lane = cursor.lane("forwarded lane")?;
            let seq = cursor.varint("forwarded sequence")?;
            return Ok(Content::Forwarded(ForwardRef { origin, lane, seq }));
        }
        0 => {
            let event_type = EventType::from(cursor.name("event type", names)?.to_owned());
            let schema_version = u32::try_from(cursor.varint("schema version")?)
                .map_err(|_| undecodable("schema version out of range".to_owned()))?;
            let payload = cursor.payload(names)?;
            EventContent::Data {
                event_type,
                schema_version,
                payload,
            }
        }
        1 => EventContent::Control(ControlEvent::EndOfStream {
            records: cursor.varint("end-of-stream count")?,
        }),
        2 => EventContent::Control(ControlEvent::Drain),
        3 => EventContent::Control(ControlEvent::Watermark {
            event_time: Timestamp::from_micros(cursor.varint("watermark")?),
        }),
        4 => EventContent::Delivery(DeliveryReceipt {
            destination: cursor.str("destination")?.to_owned(),
            records: cursor.varint("delivered records")?,
            bytes: cursor.varint("delivered bytes")?,
        }),
        5 => EventContent::Lifecycle(LifecycleEvent::Started),
        6 => EventContent::Lifecycle(LifecycleEvent::Completed {
            records_in: cursor.varint("records in")?,
            records_out: cursor.varint("records out")?,
            records_errored: cursor.varint("records errored")?,
        }),
        7 => EventContent::Lifecycle(LifecycleEvent::Failed {
            reason: cursor.str("failure reason")?.to_owned(),
        }),
        8 => EventContent::Lifecycle(LifecycleEvent::Cancelled {
            reason: cursor.str("cancellation reason")?.to_owned(),
        }),
        tag => return Err(bad_tag("content", tag)),
    };
    Ok(Content::Stored(content))
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
            attempt: u32::try_from(cursor.varint("retry attempt")?)
                .map_err(|_| undecodable("retry attempt out of range".to_owned()))?,
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

/// A bounds-checked reader over a batch body.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn header(&mut self) -> Result<BatchHeader, CorruptionKind> {
        self.versioned_header().map(|(_, header)| header)
    }

    /// The header, and the format version of the body, one this build reads.
    fn versioned_header(&mut self) -> Result<(u8, BatchHeader), CorruptionKind> {
        let version = self.u8("format version")?;
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(CorruptionKind::UnknownVersion {
                version,
                oldest: OLDEST_FORMAT_VERSION,
                supported: FORMAT_VERSION,
            });
        }
        let first_seq = self.varint("first sequence")?;
        let count = self.varint("record count")?;
        if first_seq.checked_add(count).is_none() {
            return Err(undecodable("the batch's sequences overflow".to_owned()));
        }
        Ok((version, BatchHeader { first_seq, count }))
    }

    /// The fields of a seal after its header, whose first sequence says `records`.
    fn seal_fields(&mut self, records: u64) -> Result<Seal, CorruptionKind> {
        let lane = self.lane("seal lane")?;
        let digest = self.digest(records)?;
        let companion = match self.flag("seal companion")? {
            true => {
                let records = self.varint("companion records")?;
                Some(self.digest(records)?)
            }
            false => None,
        };
        Ok(Seal {
            lane,
            digest,
            companion,
        })
    }

    fn lane(&mut self, what: &str) -> Result<Lane, CorruptionKind> {
        match self.u8(what)? {
            0 => Ok(Lane::Data),
            1 => Ok(Lane::Error),
            2 => Ok(Lane::System),
            tag => Err(bad_tag(what, tag)),
        }
    }

    fn digest(&mut self, records: u64) -> Result<JournalDigest, CorruptionKind> {
        let data_records = self.varint("sealed data records")?;
        let frames = self.varint("sealed frames")?;
        let hash = self.take(8, "sealed hash")?;
        let mut bytes = [0; 8];
        bytes.copy_from_slice(hash);
        Ok(JournalDigest {
            records,
            data_records,
            frames,
            hash: u64::from_le_bytes(bytes),
        })
    }

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

    fn u8(&mut self, field: &str) -> Result<u8, CorruptionKind> {
        Ok(self.take(1, field)?[0])
    }

    fn varint(&mut self, field: &str) -> Result<u64, CorruptionKind> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(field)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(undecodable(format!("{field}: a varint overflows 64 bits")))
    }

    fn uuid(&mut self, field: &str) -> Result<Uuid, CorruptionKind> {
        let slice = self.take(16, field)?;
        let mut bytes = [0; 16];
        bytes.copy_from_slice(slice);
        Ok(Uuid::from_bytes(bytes))
    }

    fn id(&mut self, field: &str, previous: &mut u128) -> Result<Uuid, CorruptionKind> {
        let code = self.varint(field)?;
        let uuid = match code {
            1 => self.uuid(field)?,
            even if even & 1 == 0 => Uuid::from_u128(previous.wrapping_add(u128::from(even >> 1))),
            other => return Err(undecodable(format!("{field}: unknown id code {other}"))),
        };
        *previous = uuid.as_u128();
        Ok(uuid)
    }

    /// A `line`: zigzag-coded relative to `previous`, which it then becomes.
    fn line(&mut self, field: &str, previous: &mut u64) -> Result<u64, CorruptionKind> {
        let code = self.varint(field)?;
        let delta = ((code >> 1) as i64) ^ -((code & 1) as i64);
        let line = previous.wrapping_add(delta as u64);
        *previous = line;
        Ok(line)
    }

    fn flag(&mut self, field: &str) -> Result<bool, CorruptionKind> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(undecodable(format!("{field}: presence flag {other}"))),
        }
    }

    fn text(&mut self, length: u64, field: &str) -> Result<&'a str, CorruptionKind> {
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        let bytes = self.take(length, field)?;
        std::str::from_utf8(bytes)
            .map_err(|error| undecodable(format!("{field} is not UTF-8: {error}")))
    }

    fn str(&mut self, field: &str) -> Result<&'a str, CorruptionKind> {
        let length = self.varint(field)?;
        self.text(length, field)
    }

    fn name<'n>(&mut self, field: &str, names: &'n [Box<str>]) -> Result<&'n str, CorruptionKind>
    where
        'a: 'n,
    {
        let code = self.varint(field)?;
        if code & 1 == 1 {
            return self.text(code >> 1, field);
        }
        let index = usize::try_from((code >> 1).wrapping_sub(1)).unwrap_or(usize::MAX);
        names
            .get(index)
            .map(|name| &**name)
            .ok_or_else(|| undecodable(format!("{field}: name {index} is past the name table")))
    }

    fn payload(&mut self, names: &[Box<str>]) -> Result<Payload, CorruptionKind> {
        let rest = &self.bytes[self.at..];
        let mut reader = ValueReader::new(rest, names);
        let value = reader
            .value()
            .map_err(|error| undecodable(format!("payload: {error}")))?;
        self.at += reader.position();
        Ok(Payload::json(value))
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
    fn seals_round_trip_and_any_cut_or_extra_byte_is_an_error() {
        let mut digest = JournalDigest::EMPTY;
        digest.add_frame(0x1234_5678, 300, 1024, 1000);
        let seal = Seal {
            lane: Lane::Error,
            digest,
            companion: None,
        };
        let mut body = Vec::new();
        encode_seal(&seal, &mut body);
        assert_eq!(decode_seal(&body), Ok(seal));
        let (header, records) = decode_batch(&body, &mut NoForwards).unwrap();
        assert_eq!((header.first_seq, header.count, records), (1024, 0, vec![]));
        for cut in 0..body.len() {
            assert!(decode_seal(&body[..cut]).is_err(), "cut at {cut}");
        }
        body.push(0);
        assert!(decode_batch(&body, &mut NoForwards).is_err());
        let mut batch = Vec::new();
        encode_into(&sample(), &mut batch).unwrap();
        assert!(decode_seal(&batch).is_err());
    }

    #[test]
    fn rejects_other_versions_naming_both_and_trailing_bytes() {
        let mut body = Vec::new();
        encode_into(&sample(), &mut body).unwrap();
        let mut older = body.clone();
        // Version 3, which had no forwarded records, is refused as unknown, never misread;
        // so is a version of a later build.
        older[0] = 3;
        let error = decode(&older).unwrap_err();
        assert_eq!(
            error,
            CorruptionKind::UnknownVersion {
                version: 3,
                oldest: 4,
                supported: 6
            }
        );
        assert_eq!(
            error.to_string(),
            "record format version 3 is not supported (this build reads versions 4 to 6)"
        );
        let mut newer = body.clone();
        newer[0] = 7;
        assert!(matches!(
            decode(&newer),
            Err(CorruptionKind::UnknownVersion { version: 7, .. })
        ));
        body.push(0);
        assert!(
            decode(&body).is_err(),
            "a byte after a packed body is damage"
        );
        let mut small = Vec::new();
        encode_into(&ChainEvent::data("o", json!(1)), &mut small).unwrap();
        assert_eq!(small[3], PACKED_NONE, "a short body is stored as it is");
        small.push(0);
        let error = decode(&small).unwrap_err();
        assert!(error.to_string().contains("1 trailing bytes"), "{error}");
    }

    #[test]
    fn batches_pack_into_lz4_blocks_that_claim_no_more_than_they_hold() {
        let events: Vec<_> = (0..100)
            .map(|i| {
                ChainEvent::data(
                    "flight",
                    json!({"carrier": "AA", "origin": "JFK", "delay": i % 7}),
                )
            })
            .collect();
        let mut body = Vec::new();
        BatchEncoder::new().encode(0, &events, &mut body).unwrap();
        // Version, first sequence 0 and count 100 take a byte each; the encoding byte follows.
        assert_eq!(body[3], PACKED_LZ4);
        let (_, decoded) = decode_batch(&body, &mut NoForwards).unwrap();
        assert_eq!(decoded, events);
        // The unpacked length is a varint after the encoding byte: claiming far more than the
        // packed bytes can hold is refused before anything is allocated.
        let mut lying = body[..4].to_vec();
        put_varint(&mut lying, 1 << 29);
        lying.extend_from_slice(&body[4 + varint_len(&body[4..])..]);
        let error = decode_batch(&lying, &mut NoForwards).unwrap_err();
        assert!(error.to_string().contains("claim to unpack"), "{error}");
        // An honest length over a damaged block is an error, never a panic.
        let mut damaged = body.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 0xff;
        damaged.truncate(damaged.len() - 3);
        assert!(decode_batch(&damaged, &mut NoForwards).is_err());
    }

    /// The length of the varint at the start of `bytes`.
    fn varint_len(bytes: &[u8]) -> usize {
        bytes.iter().position(|byte| byte & 0x80 == 0).unwrap() + 1
    }

    #[test]
    fn sequential_ids_and_shared_context_cost_a_few_bytes_a_record() {
        let origin = ChainEvent::data("order", json!({"id": 0}));
        let base = origin.id.as_uuid().as_u128();
        let events: Vec<ChainEvent> = (0..100u64)
            .map(|index| {
                let mut event = origin.derive_data("order", json!({"id": index}));
                event.id = EventId::from_uuid(Uuid::from_u128(base + 1000 + u128::from(index)));
                event.causality.parent_id = Some(EventId::from_uuid(Uuid::from_u128(
                    base + u128::from(index),
                )));
                event
            })
            .collect();
        let mut body = Vec::new();
        BatchEncoder::new().encode(7, &events, &mut body).unwrap();
        let (header, decoded) = decode_batch(&body, &mut NoForwards).unwrap();
        assert_eq!(
            header,
            BatchHeader {
                first_seq: 7,
                count: 100
            }
        );
        assert_eq!(decoded, events);
        // Flags, id, content tag, name, version, a payload of one small field, parent,
        // correlation, status, time: about a dozen bytes, not the 100-odd of format 1.
        assert!(body.len() < 100 * 16 + 200, "{} bytes", body.len());
    }

    /// `events` from one file, with lines that go forwards and back, and some without one.
    fn from_a_file(file: &str, lines: &[Option<u64>]) -> Vec<ChainEvent> {
        let file: Arc<str> = Arc::from(file);
        lines
            .iter()
            .enumerate()
            .map(|(index, line)| {
                let event = ChainEvent::data("order", json!({"id": index}));
                match line {
                    Some(line) => event.with_origin(SourcePosition::new(file.clone(), *line)),
                    None => event,
                }
            })
            .collect()
    }

    #[test]
    fn origins_round_trip_with_their_file_shared_and_lines_going_back() {
        let lines = [
            Some(2),
            Some(3),
            None,
            Some(9),
            Some(4),
            Some(u64::MAX),
            Some(0),
            Some(1),
        ];
        let mut events = from_a_file("orders.csv", &lines);
        events.push(ChainEvent::data("x", json!(1)).with_origin(SourcePosition::new("b.jsonl", 7)));
        let mut body = Vec::new();
        BatchEncoder::new().encode(0, &events, &mut body).unwrap();
        let (_, decoded) = decode_batch(&body, &mut NoForwards).unwrap();
        assert_eq!(decoded, events);
        let file = |event: &ChainEvent| event.origin.clone().expect("an origin").file.clone();
        assert!(
            Arc::ptr_eq(&file(&decoded[0]), &file(&decoded[1])),
            "the records of one file share its name"
        );
        assert_eq!(&*file(&decoded[8]), "b.jsonl");
    }

    #[test]
    fn an_origin_costs_about_two_bytes_a_record_after_the_first() {
        // A path longer than the longest object key the name table takes: still a reference.
        let path = format!("/data/{}/flights.csv", "nested".repeat(12));
        let plain = from_a_file(&path, &[None; 200]);
        let file: Arc<str> = Arc::from(path.as_str());
        let placed: Vec<ChainEvent> = (2..)
            .zip(&plain)
            .map(|(line, event)| {
                event
                    .clone()
                    .with_origin(SourcePosition::new(file.clone(), line))
            })
            .collect();
        let (mut without, mut with) = (Vec::new(), Vec::new());
        BatchEncoder::new().encode(0, &plain, &mut without).unwrap();
        BatchEncoder::new().encode(0, &placed, &mut with).unwrap();
        let (_, decoded) = decode_batch(&with, &mut NoForwards).unwrap();
        assert_eq!(decoded, placed);
        // Counted unpacked, so the bytes are the encoding's own, not what LZ4 made of them.
        let unpacked = |body: &[u8]| {
            let mut cursor = Cursor::new(body);
            cursor.header().unwrap();
            unpack(&mut cursor).unwrap().len()
        };
        let extra = unpacked(&with) - unpacked(&without);
        assert!(
            extra <= path.len() + 2 + 2 * 200,
            "{extra} bytes for 200 origins"
        );
    }

    #[test]
    fn version_4_bodies_decode_and_know_no_origin_flag() {
        let event = ChainEvent::data("order", json!({"id": 1}));
        let mut body = Vec::new();
        encode_into(&event, &mut body).unwrap();
        body[0] = 4;
        assert_eq!(
            decode(&body).unwrap(),
            event,
            "a version 4 body reads as before"
        );
        let mut placed = Vec::new();
        encode_into(
            &event.with_origin(SourcePosition::new("a.csv", 2)),
            &mut placed,
        )
        .unwrap();
        placed[0] = 4;
        let error = decode(&placed).unwrap_err();
        assert!(
            error.to_string().contains("unknown record flags 0x2"),
            "{error}"
        );
        let seal = Seal {
            lane: Lane::Data,
            digest: JournalDigest::EMPTY,
            companion: None,
        };
        let mut sealed = Vec::new();
        encode_seal(&seal, &mut sealed);
        sealed[0] = 4;
        assert_eq!(decode_seal(&sealed), Ok(seal), "a version 4 seal reads too");
    }

    #[test]
    fn joined_correlations_round_trip_and_version_5_bodies_know_no_joined_flag() {
        // Joined ids delta-coded from the previous record's: some set, some not, some equal.
        let reference = ChainEvent::data("airline", json!({"code": "AA"}));
        let events: Vec<ChainEvent> = (0..6)
            .map(|n| {
                let stream = ChainEvent::data("flight", json!({"n": n}));
                let mut joined = ChainEvent::data("flight.enriched", json!({"n": n}));
                joined.causality = Causality {
                    joined_correlation_id: (n % 3 != 2).then(|| {
                        if n < 3 {
                            reference.correlation_id()
                        } else {
                            stream.correlation_id()
                        }
                    }),
                    ..stream.child_causality()
                };
                joined
            })
            .collect();
        let mut body = Vec::new();
        BatchEncoder::new().encode(0, &events, &mut body).unwrap();
        let (_, decoded) = decode_batch(&body, &mut NoForwards).unwrap();
        assert_eq!(decoded, events);

        let plain = ChainEvent::data("order", json!({"id": 1}));
        let mut body = Vec::new();
        encode_into(&plain, &mut body).unwrap();
        body[0] = 5;
        assert_eq!(
            decode(&body).unwrap(),
            plain,
            "a version 5 body reads as before"
        );
        let mut joined = Vec::new();
        encode_into(&events[0], &mut joined).unwrap();
        joined[0] = 5;
        let error = decode(&joined).unwrap_err();
        assert!(
            error.to_string().contains("unknown record flags 0x4"),
            "{error}"
        );
    }

    #[test]
    fn a_forwarded_record_keeps_its_origin() {
        struct Parent(EventContent, usize);
        impl ResolveForward for Parent {
            fn resolve(&mut self, _: &Forward<'_>) -> Result<EventContent, CorruptionKind> {
                self.1 += 1;
                Ok(self.0.clone())
            }
        }
        let parent = ChainEvent::data("order", json!({"id": 1}))
            .with_origin(SourcePosition::new("orders.csv", 5));
        let mut kept = parent.clone();
        kept.causality = parent.child_causality();
        let at = ForwardRef {
            origin: "parse",
            lane: Lane::Data,
            seq: 0,
        };
        let mut body = Vec::new();
        BatchEncoder::new()
            .encode_forwarding(0, std::slice::from_ref(&kept), &[Some(at)], &mut body)
            .unwrap();
        let mut resolver = Parent(parent.content.clone(), 0);
        let (_, decoded) = decode_batch(&body, &mut resolver).unwrap();
        assert_eq!(resolver.1, 1, "the record was written as a reference");
        assert_eq!(decoded, vec![kept]);
        assert_eq!(decoded[0].origin().unwrap().to_string(), "orders.csv:5");
    }

    #[test]
    fn typed_payloads_decode_to_their_json_form() {
        #[derive(Clone, serde::Serialize)]
        struct Flight {
            carrier: &'static str,
            delay: Option<i32>,
        }
        let event = ChainEvent::data(
            "flight",
            Payload::typed(Flight {
                carrier: "AA",
                delay: None,
            }),
        );
        let mut body = Vec::new();
        encode_into(&event, &mut body).unwrap();
        let decoded = decode(&body).unwrap();
        assert_eq!(
            decoded.payload().unwrap().as_json(),
            Some(&json!({"carrier": "AA", "delay": null}))
        );
        assert_eq!(decoded, event);
    }
}
