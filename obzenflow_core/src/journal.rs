//! The journal ports: an append-only log of [`ChainEvent`]s with many independent readers.
//!
//! Every stage appends what it emits to its own journal, and each downstream stage reads that
//! journal with its own cursor. The traits here say what any journal must do; the runtime
//! provides in-memory and on-disk implementations with identical semantics.
//!
//! Sequences are 0-based positions: the first record of a journal is at sequence 0, and
//! [`Journal::committed`] is both the number of committed records and the sequence the next
//! append will get.

use std::fmt;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::{ChainEvent, Record};
use crate::id::WriterId;

/// A half-open range of sequences `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SeqRange {
    /// The first sequence in the range.
    pub start: u64,
    /// One past the last sequence in the range.
    pub end: u64,
}

impl SeqRange {
    /// How many sequences the range holds.
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the range is empty.
    pub const fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Which of its owner's journals this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// What the owner emits: data records, control markers, lifecycle facts.
    Data,
    /// Records that failed processing at the owner.
    Error,
    /// Facts written by a system component (pipeline, metrics aggregator).
    System,
}

impl Lane {
    /// The stable lowercase name (`data`, `error`, `system`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Error => "error",
            Self::System => "system",
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names one journal: its owner, the owner's human name, and the lane.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JournalId {
    /// The component that appends to this journal.
    pub owner: WriterId,
    /// The owner's name, e.g. the stage name `parse_orders`.
    pub name: Arc<str>,
    /// Which of the owner's journals.
    pub lane: Lane,
}

impl JournalId {
    /// A journal id.
    pub fn new(owner: WriterId, name: impl Into<Arc<str>>, lane: Lane) -> Self {
        Self {
            owner,
            name: name.into(),
            lane,
        }
    }
}

impl fmt::Display for JournalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.name, self.lane)
    }
}

/// An append-only log of events.
///
/// Appends make records visible to readers atomically per batch and wake readers that are
/// waiting (write, then notify; nobody polls on a timer).
#[async_trait::async_trait]
pub trait Journal: Send + Sync {
    /// Which journal this is.
    fn id(&self) -> &JournalId;

    /// Appends a batch and returns the sequences it was given.
    ///
    /// Waits while a reader opened with a backpressure window would fall more than its window
    /// behind. Returns once the batch is committed (visible to readers); whether it is also
    /// durable depends on the journal's sync policy. Large batches may be committed in several
    /// steps so no window is exceeded.
    ///
    /// Cancel safety: not cancel safe. Cancelling while waiting for readers may leave a prefix
    /// of the batch committed.
    async fn append(&self, events: Vec<ChainEvent>) -> Result<SeqRange, JournalError>;

    /// [`Journal::append`], saying which of `events` carry the very content of a record
    /// already in another journal: a record a stage forwards unchanged. A journal that stores
    /// records may store such a record as a reference to the other one instead of a copy; the
    /// default (and a journal in memory, which copies nothing anyway) appends `events` as
    /// [`Journal::append`] does.
    ///
    /// `forwards.records` is empty or has one entry per event.
    ///
    /// Cancel safety: as [`Journal::append`].
    async fn append_forwarding(
        &self,
        events: Vec<ChainEvent>,
        forwards: Forwards<'_>,
    ) -> Result<SeqRange, JournalError> {
        let _ = forwards;
        self.append(events).await
    }

    /// The number of committed records; also the sequence the next record will get.
    fn committed(&self) -> u64;

    /// The number of records known to be on stable storage (equal to `committed` for a journal
    /// with no storage to sync).
    fn durable(&self) -> u64;

    /// Opens a reader positioned at sequence `from`.
    ///
    /// With a `window`, the writer never runs more than `window` records ahead of this reader.
    /// Dropping the reader releases the writer.
    fn reader(
        &self,
        from: u64,
        window: Option<NonZeroU64>,
    ) -> Result<Box<dyn JournalReader>, JournalError>;

    /// Makes everything appended durable and refuses further appends.
    ///
    /// Readers may still read what was committed; waiting readers are woken.
    async fn close(&self) -> Result<(), JournalError>;
}

/// One reader's cursor over a journal.
#[async_trait::async_trait]
pub trait JournalReader: Send + Sync {
    /// The journal being read.
    fn journal_id(&self) -> &JournalId;

    /// The sequence of the next record this reader will return.
    fn position(&self) -> u64;

    /// Moves up to `max` committed records into `out` and advances the cursor past them;
    /// returns how many. Never waits: zero means nothing is committed beyond the cursor.
    fn read(&mut self, max: usize, out: &mut Vec<Record>) -> Result<usize, JournalError>;

    /// Waits until a record is committed beyond the cursor.
    ///
    /// Returns [`JournalError::Closed`] if the journal was closed and everything in it has been
    /// read.
    ///
    /// Cancel safety: cancel safe; nothing is consumed until [`JournalReader::read`].
    async fn wait(&self) -> Result<(), JournalError>;
}

/// What went wrong in a journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// An I/O operation on a journal file failed.
    #[error("journal {journal}: cannot {operation} {}", path.display())]
    Io {
        /// The journal.
        journal: JournalId,
        /// What was being done, e.g. `append to`.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A record in the middle of a segment is corrupt: not a torn tail that can be cut.
    #[error("corrupt record in {} at byte offset {offset}: {kind}", segment.display())]
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// The byte offset of the bad frame.
        offset: u64,
        /// What is wrong with it.
        kind: CorruptionKind,
    },
    /// An event could not be encoded for storage.
    #[error("journal {journal}: cannot encode event {event_id}")]
    Encode {
        /// The journal.
        journal: JournalId,
        /// The event.
        event_id: crate::id::EventId,
        /// What the encoder said.
        #[source]
        source: crate::value::ValueEncodeError,
    },
    /// The journal was closed.
    #[error("journal {journal} is closed")]
    Closed {
        /// The journal.
        journal: JournalId,
    },
    /// An earlier write or sync failed, so the journal no longer knows what is on disk and
    /// refuses further appends. The original failure was returned by the append (or logged by
    /// the background syncer) that hit it.
    #[error("journal {journal} refuses appends after an earlier I/O failure")]
    Failed {
        /// The journal.
        journal: JournalId,
    },
    /// A read asked for records that a journal with bounded retention no longer holds.
    #[error(
        "journal {journal}: sequence {requested} is no longer retained (oldest retained {oldest})"
    )]
    Evicted {
        /// The journal.
        journal: JournalId,
        /// The sequence asked for.
        requested: u64,
        /// The oldest sequence still held.
        oldest: u64,
    },
    /// The journal service an external journal stores its frames in (NATS JetStream, say)
    /// failed or refused an operation; the journal refuses further appends.
    #[error("journal {journal}: cannot {operation} its journal service")]
    Backend {
        /// The journal.
        journal: JournalId,
        /// What was being done, e.g. `store a frame in`.
        operation: &'static str,
        /// What the service (or its client) said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A read asked for records that are not there.
    #[error("journal {journal}: sequence {requested} is out of range (committed {committed})")]
    OutOfRange {
        /// The journal.
        journal: JournalId,
        /// The sequence asked for.
        requested: u64,
        /// How many records are committed.
        committed: u64,
    },
}

/// Where a record's content already is: record `seq` of journal `journal`, an index into
/// [`Forwards::journals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentAt {
    /// Which of the journals named in [`Forwards::journals`].
    pub journal: u32,
    /// The record's sequence in that journal.
    pub seq: u64,
}

/// Which records of an append carry content already stored in another journal; see
/// [`Journal::append_forwarding`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Forwards<'a> {
    /// The journals the content comes from (a stage's upstream journals).
    pub journals: &'a [JournalId],
    /// For each appended event, where its content already is, if anywhere. Empty means none.
    pub records: &'a [Option<ContentAt>],
}

/// How a stored record is damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The checksum of the frame does not match its body.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    ChecksumMismatch {
        /// The checksum in the frame header.
        stored: u32,
        /// The checksum of the body as read.
        computed: u32,
    },
    /// The frame's length field is impossible.
    #[error("frame length {length} is out of range")]
    LengthOutOfRange {
        /// The stored length.
        length: u64,
    },
    /// The body's format version is not one this build reads.
    #[error(
        "record format version {version} is not supported (this build reads versions {oldest} to {supported})"
    )]
    UnknownVersion {
        /// The stored version byte.
        version: u8,
        /// The oldest version this build reads.
        oldest: u8,
        /// The version this build writes, the newest it reads.
        supported: u8,
    },
    /// A frame's records do not start where the records before them end: a frame was lost,
    /// duplicated or moved.
    #[error("frame starts at sequence {found}, but the records before it end at {expected}")]
    FrameOutOfSequence {
        /// The sequence the frame should start at.
        expected: u64,
        /// The sequence the frame says it starts at.
        found: u64,
    },
    /// The body passed its checksum but does not decode.
    #[error("undecodable body: {reason}")]
    Undecodable {
        /// What the decoder said.
        reason: String,
    },
    /// A segment's name says it starts at a sequence that does not follow the records before
    /// it: a segment is missing or was renamed.
    #[error("segment starts at sequence {found}, but the segments before it end at {expected}")]
    SequenceGap {
        /// The sequence the segment should start at.
        expected: u64,
        /// The sequence its name says it starts at.
        found: u64,
    },
    /// The frame ends past the end of the file.
    #[error("frame truncated: {missing} bytes missing")]
    Truncated {
        /// How many bytes are missing.
        missing: u64,
    },
    /// The journal belongs to a run that ended, but it has no seal: its tail (the seal and
    /// perhaps records before it) was lost, or the journal was never closed.
    #[error("the journal of a finished run has no seal after its {records} records: its tail is missing")]
    Unsealed {
        /// How many records the journal holds.
        records: u64,
    },
    /// A frame follows the journal's seal, which must be its last frame.
    #[error("a frame follows the journal's seal")]
    FrameAfterSeal,
    /// A count recorded in the journal (its seal, an end-of-stream marker, a terminal record,
    /// or the seal of its other lane) disagrees with what the journal holds.
    #[error("{what}: recorded {recorded}, found {found}")]
    CountMismatch {
        /// What was counted, and where it was recorded.
        what: &'static str,
        /// The recorded count.
        recorded: u64,
        /// The count of what is there.
        found: u64,
    },
    /// The running hash over the journal's frames disagrees with the one its seal (or its
    /// other lane's seal) records: a frame was replaced, or the lane was swapped.
    #[error("{what}: sealed hash {sealed:#018x}, computed {computed:#018x}")]
    HashMismatch {
        /// Which seal.
        what: &'static str,
        /// The hash the seal records.
        sealed: u64,
        /// The hash of the frames there.
        computed: u64,
    },
    /// A record stands where the journal's shape forbids it: a second end-of-stream or
    /// terminal record, a record after the terminal one, an event id not after the one before.
    #[error("misplaced record {event_id}: {reason}")]
    MisplacedRecord {
        /// The record.
        event_id: crate::id::EventId,
        /// What is wrong with where it stands.
        reason: &'static str,
    },
    /// A finished journal lacks a record its shape requires (its terminal record, or the
    /// end-of-stream marker before a `completed` one).
    #[error("the journal has no {missing}")]
    MissingRecord {
        /// What is missing.
        missing: &'static str,
    },
    /// A record stored as a reference to the content of a record of another journal (one a
    /// stage forwarded unchanged) cannot be resolved: that journal or record is missing, or
    /// is not the record's parent.
    #[error("{0}")]
    UnresolvedForward(Box<UnresolvedForward>),
}

/// A forwarded record whose content cannot be found: see [`CorruptionKind::UnresolvedForward`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forwarded record {event_id} refers to record {seq} of the {lane} journal of `{origin}`, which {problem}")]
pub struct UnresolvedForward {
    /// The referring record.
    pub event_id: crate::id::EventId,
    /// The stage whose journal holds the content.
    pub origin: String,
    /// Which of its journals.
    pub lane: Lane,
    /// The sequence of the record referred to.
    pub seq: u64,
    /// What is wrong, e.g. "is missing" or "cannot be read here: decode it from its run directory".
    pub problem: String,
}
