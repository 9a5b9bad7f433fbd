//! The checks every reader of a journal makes, in one place: opening, validation, inspection,
//! replay, verification and the run listing all feed their frames (and, where they decode
//! them, their records) through [`FrameAudit`] and [`RecordAudit`].
//!
//! Frame checks need only headers and checksums: each segment's name and each frame's first
//! sequence continue the sequence, nothing follows the seal, and the seal's counts and running
//! hash match the frames before it. Record checks need decoded records: event ids after one
//! another, at most one end-of-stream marker counting the data records before it, nothing after
//! the terminal lifecycle record and, once the journal is sealed, that terminal record present
//! with counts that match the journal (and the stage's error journal).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use obzenflow_core::{
    ChainEvent, ControlEvent, CorruptionKind, EventContent, EventId, JournalError, Lane,
    LifecycleEvent,
};

use super::codec::{BatchHeader, JournalDigest, Seal};
use super::frame::FrameHeader;

/// Where a finding is: a segment (or, for a journal without segments, its directory) and the
/// byte offset of the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) segment: PathBuf,
    pub(crate) offset: u64,
}

impl Place {
    pub(crate) fn new(segment: &Path, offset: u64) -> Self {
        Self {
            segment: segment.to_path_buf(),
            offset,
        }
    }

    /// The finding `kind` here, as the journal error every reader reports.
    pub(crate) fn corrupt(&self, kind: CorruptionKind) -> JournalError {
        JournalError::Corrupt {
            segment: self.segment.clone(),
            offset: self.offset,
            kind,
        }
    }
}

/// A seal as found: what it says and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundSeal {
    pub(crate) seal: Seal,
    pub(crate) place: Place,
}

/// The frame checks, fed every segment and frame of one journal in order.
#[derive(Debug, Clone)]
pub(crate) struct FrameAudit {
    digest: JournalDigest,
    /// Whether every frame's data records were counted (its records decoded).
    data_counted: bool,
    seal: Option<FoundSeal>,
    /// Where the last frame ends, for findings about what is missing after it.
    end: Option<Place>,
}

impl FrameAudit {
    pub(crate) fn new() -> Self {
        Self {
            digest: JournalDigest::EMPTY,
            data_counted: true,
            seal: None,
            end: None,
        }
    }

    /// What the frames so far hold.
    pub(crate) fn digest(&self) -> JournalDigest {
        self.digest
    }

    /// The same checks with the seal forgotten: for a journal whose seal was cut to append.
    pub(crate) fn unsealed(&self) -> Self {
        Self {
            seal: None,
            ..self.clone()
        }
    }

    /// The seal, once it was read.
    pub(crate) fn seal(&self) -> Option<&FoundSeal> {
        self.seal.as_ref()
    }

    /// Where the frames read so far end (`None` before the first segment).
    pub(crate) fn end(&self) -> Option<&Place> {
        self.end.as_ref()
    }

    /// A segment named for `first_seq` begins at `path`.
    pub(crate) fn segment(&mut self, path: &Path, first_seq: u64) -> Result<(), JournalError> {
        let place = Place::new(path, 0);
        if self.seal.is_some() {
            return Err(place.corrupt(CorruptionKind::FrameAfterSeal));
        }
        if first_seq != self.digest.records {
            return Err(place.corrupt(CorruptionKind::SequenceGap {
                expected: self.digest.records,
                found: first_seq,
            }));
        }
        self.end = Some(place);
        Ok(())
    }

    /// The frame at `offset` of `path`, ending at `end`, with its header and batch header;
    /// `seal` if it is one, else `data_records` if its records were decoded.
    pub(crate) fn frame(
        &mut self,
        place: Place,
        end: u64,
        header: FrameHeader,
        batch: BatchHeader,
        content: FrameContent<'_>,
    ) -> Result<(), CorruptionKind> {
        if self.seal.is_some() {
            return Err(CorruptionKind::FrameAfterSeal);
        }
        if batch.first_seq != self.digest.records {
            return Err(CorruptionKind::FrameOutOfSequence {
                expected: self.digest.records,
                found: batch.first_seq,
            });
        }
        let segment_end = Place::new(&place.segment, end);
        match content {
            FrameContent::Seal(seal) => {
                self.check_seal(seal)?;
                self.seal = Some(FoundSeal { seal: *seal, place });
            }
            FrameContent::Records(data_records) => {
                self.data_counted &= data_records.is_some();
                let data_records = data_records.unwrap_or(0);
                self.digest
                    .add_frame(header.crc, header.body_len, batch.count, data_records);
            }
        }
        self.end = Some(segment_end);
        Ok(())
    }

    fn check_seal(&self, seal: &Seal) -> Result<(), CorruptionKind> {
        let (sealed, found) = (&seal.digest, &self.digest);
        if sealed.frames != found.frames {
            return Err(CorruptionKind::CountMismatch {
                what: "frames in the seal",
                recorded: sealed.frames,
                found: found.frames,
            });
        }
        if self.data_counted && sealed.data_records != found.data_records {
            return Err(CorruptionKind::CountMismatch {
                what: "data records in the seal",
                recorded: sealed.data_records,
                found: found.data_records,
            });
        }
        if sealed.hash != found.hash {
            return Err(CorruptionKind::HashMismatch {
                what: "the seal's hash of the frames before it",
                sealed: sealed.hash,
                computed: found.hash,
            });
        }
        Ok(())
    }

    /// The end of the journal: a journal of a finished run must be sealed.
    pub(crate) fn finish(&self, dir: &Path, must_be_sealed: bool) -> Result<(), JournalError> {
        if must_be_sealed && self.seal.is_none() {
            let place = self.end.clone().unwrap_or_else(|| Place::new(dir, 0));
            return Err(place.corrupt(CorruptionKind::Unsealed {
                records: self.digest.records,
            }));
        }
        Ok(())
    }
}

/// What a frame holds, as far as the reader decoded it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FrameContent<'a> {
    /// A seal.
    Seal(&'a Seal),
    /// Records: how many of them are data records, if they were decoded.
    Records(Option<u64>),
}

/// The record checks, fed every record of one journal in order.
#[derive(Debug, Clone)]
pub(crate) struct RecordAudit {
    lane: Lane,
    data_records: u64,
    end_of_stream: Option<u64>,
    terminal: Option<(LifecycleEvent, Place)>,
    /// The last id the stage's id mint stamped: every record but lifecycle facts.
    last_stamped: Option<EventId>,
    facts: HashSet<EventId>,
    /// Where the last record read stands.
    last: Option<Place>,
}

impl RecordAudit {
    pub(crate) fn new(lane: Lane) -> Self {
        Self {
            lane,
            data_records: 0,
            end_of_stream: None,
            terminal: None,
            last_stamped: None,
            facts: HashSet::new(),
            last: None,
        }
    }

    /// The next record, found in the frame at `place`.
    pub(crate) fn record(&mut self, event: &ChainEvent, place: &Place) -> Result<(), JournalError> {
        self.last = Some(place.clone());
        self.check(event).map_err(|kind| place.corrupt(kind))?;
        if let EventContent::Lifecycle(fact) = &event.content {
            if !matches!(fact, LifecycleEvent::Started) {
                self.terminal = Some((fact.clone(), place.clone()));
            }
        }
        Ok(())
    }

    fn check(&mut self, event: &ChainEvent) -> Result<(), CorruptionKind> {
        let misplaced = |reason| CorruptionKind::MisplacedRecord {
            event_id: event.id,
            reason,
        };
        if self.terminal.is_some() {
            return Err(misplaced("a record after the terminal lifecycle record"));
        }
        match &event.content {
            EventContent::Lifecycle(_) if self.lane == Lane::Error => {
                return Err(misplaced("a lifecycle record in an error journal"));
            }
            // Lifecycle facts get fresh ids, not the mint's: unique, but in no set order.
            EventContent::Lifecycle(_) => {
                if !self.facts.insert(event.id) {
                    return Err(misplaced("a lifecycle record seen before"));
                }
                return Ok(());
            }
            EventContent::Data { .. } if self.end_of_stream.is_some() => {
                return Err(misplaced("a data record after end-of-stream"));
            }
            EventContent::Data { .. } => self.data_records += 1,
            EventContent::Control(ControlEvent::EndOfStream { records }) => {
                if self.lane == Lane::System {
                    return Err(misplaced("an end-of-stream marker in a system journal"));
                }
                if self.end_of_stream.is_some() {
                    return Err(misplaced("a second end-of-stream marker"));
                }
                if *records != self.data_records {
                    return Err(CorruptionKind::CountMismatch {
                        what: "data records before the end-of-stream marker",
                        recorded: *records,
                        found: self.data_records,
                    });
                }
                self.end_of_stream = Some(*records);
            }
            _ => {}
        }
        if self.last_stamped.is_some_and(|last| event.id <= last) {
            return Err(misplaced("an event id not after the one before it"));
        }
        self.last_stamped = Some(event.id);
        Ok(())
    }

    /// The end of a journal that was sealed: its terminal record must be there and agree with
    /// what the journal holds and, for a data journal, with the records of its error journal
    /// (`error_records`, if known). `end` is where the journal ends.
    pub(crate) fn finish_sealed(
        &self,
        end: &Place,
        error_records: Option<u64>,
    ) -> Result<(), JournalError> {
        if self.lane == Lane::Error {
            return Ok(());
        }
        let Some((terminal, place)) = &self.terminal else {
            return Err(end.corrupt(CorruptionKind::MissingRecord {
                missing: "terminal lifecycle record (completed, failed or cancelled)",
            }));
        };
        // A sink's `records out` counts what it delivered, not what its journal holds, so
        // only the end-of-stream marker and the errored count are held to the journals.
        let LifecycleEvent::Completed {
            records_errored, ..
        } = terminal
        else {
            return Ok(());
        };
        if self.lane != Lane::Data {
            return Ok(());
        }
        if self.end_of_stream.is_none() {
            return Err(place.corrupt(CorruptionKind::MissingRecord {
                missing: "end-of-stream marker before its `completed` record",
            }));
        }
        match error_records {
            Some(found) if found != *records_errored => {
                Err(place.corrupt(CorruptionKind::CountMismatch {
                    what: "errored records in the `completed` record against its error journal",
                    recorded: *records_errored,
                    found,
                }))
            }
            _ => Ok(()),
        }
    }
}

/// Checks a stage's error journal against the companion digest its data journal's seal
/// carries; `error_dir` names the error journal when it has no frames at all.
pub(crate) fn check_companion(
    data_seal: &FoundSeal,
    error: &FrameAudit,
    error_dir: &Path,
) -> Result<(), JournalError> {
    let Some(expected) = data_seal.seal.companion else {
        return Ok(());
    };
    let found = error.digest();
    let place = error
        .end()
        .cloned()
        .unwrap_or_else(|| Place::new(error_dir, 0));
    if expected.records != found.records {
        return Err(place.corrupt(CorruptionKind::CountMismatch {
            what: "records in the error journal against its data journal's seal",
            recorded: expected.records,
            found: found.records,
        }));
    }
    if expected.hash != found.hash {
        return Err(place.corrupt(CorruptionKind::HashMismatch {
            what: "the error journal's frames against its data journal's seal",
            sealed: expected.hash,
            computed: found.hash,
        }));
    }
    Ok(())
}
