//! Resolving forwarded records: finding, in a sibling journal of the same run directory, the
//! content a record stored as a reference carries.
//!
//! A stage that passes a record on unchanged writes a reference to the record it read
//! (`stages/<origin>/<lane>`, sequence `seq`; see [`codec`](super::codec)) instead of a copy.
//! Every reader of a segment file resolves such references through [`RunForwards`], which it
//! derives from the segment's own path, so replay, inspection, validation, verification and
//! readers that fell behind a journal's cache all see whole records. A referenced record may
//! itself be a reference (a chain of filters); its reader resolves it in turn.
//!
//! A stage reads each upstream in order, so the references of one journal into another
//! ascend: each origin journal is read forward by one cursor, one frame at a time, and the
//! frame last decoded is kept for the references that follow into it. A reference behind the
//! cursor reopens the origin from the segment that holds it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use obzenflow_core::{
    ChainEvent, CorruptionKind, EventContent, EventType, JournalId, Lane, Payload,
};

use super::codec::{Forward, ResolveForward};
use super::run_dir::{name_problem, relative_journal_dir};
use super::segment::{list_segments, SegmentFile, SegmentReader};
use super::sync::SyncTarget;

/// Resolves the forwarded records of the segments of one journal in a run directory.
#[derive(Debug, Default)]
pub(crate) struct RunForwards {
    /// The run directory, if the segment is in one: `<root>/stages/<stage>/<lane>/<file>`.
    root: Option<PathBuf>,
    origins: Vec<OriginCursor>,
}

impl RunForwards {
    /// The resolver for the segment file at `segment`, whose run directory is three levels up.
    pub(crate) fn for_segment(segment: &Path) -> Self {
        let journal_dir = segment.parent();
        let stages = journal_dir.and_then(Path::parent).and_then(Path::parent);
        let root = stages
            .filter(|stages| stages.file_name().is_some_and(|name| name == "stages"))
            .and_then(Path::parent)
            .map(Path::to_path_buf);
        Self {
            root,
            origins: Vec::new(),
        }
    }
}

impl ResolveForward for RunForwards {
    fn resolve(&mut self, forward: &Forward<'_>) -> Result<EventContent, CorruptionKind> {
        let at = &forward.at;
        let Some(root) = &self.root else {
            return Err(
                forward.unresolved("cannot be read here: the journal is not in a run directory")
            );
        };
        if let Some(problem) = name_problem(at.origin) {
            return Err(forward.unresolved(format!("cannot be named: {problem}")));
        }
        let index = match self
            .origins
            .iter()
            .position(|cursor| &*cursor.origin == at.origin && cursor.lane == at.lane)
        {
            Some(index) => index,
            None => {
                let dir = root.join(relative_journal_dir(at.origin, at.lane));
                self.origins
                    .push(OriginCursor::new(at.origin, at.lane, dir));
                self.origins.len() - 1
            }
        };
        self.origins[index].content_at(forward)
    }
}

/// Resolves every forwarded record to a placeholder data record, for scans that check a
/// frame's structure and count its data records but hand no record out.
#[derive(Debug, Default)]
pub(crate) struct StructureOnly;

impl ResolveForward for StructureOnly {
    fn resolve(&mut self, _forward: &Forward<'_>) -> Result<EventContent, CorruptionKind> {
        Ok(EventContent::Data {
            event_type: EventType::from("obzenflow.forwarded"),
            schema_version: 0,
            payload: Payload::json(serde_json::Value::Null),
        })
    }
}

/// A forward-only cursor over one origin journal, holding the frame it last decoded.
#[derive(Debug)]
struct OriginCursor {
    origin: Box<str>,
    lane: Lane,
    dir: PathBuf,
    /// The segment being read, its first sequence and the reader.
    reader: Option<(u64, SegmentReader)>,
    /// The sequence of `batch[0]`.
    first: u64,
    batch: Vec<ChainEvent>,
}

impl OriginCursor {
    fn new(origin: &str, lane: Lane, dir: PathBuf) -> Self {
        Self {
            origin: origin.into(),
            lane,
            dir,
            reader: None,
            first: 0,
            batch: Vec::new(),
        }
    }

    /// The content of the record `forward` refers to, checked to be its parent.
    fn content_at(&mut self, forward: &Forward<'_>) -> Result<EventContent, CorruptionKind> {
        let seq = forward.at.seq;
        if seq < self.first || self.reader.is_none() {
            self.open_at(forward)?;
        }
        while seq >= self.first + self.batch.len() as u64 {
            self.next_frame(forward)?;
        }
        let found = &self.batch[(seq - self.first) as usize];
        if found.id != forward.parent_id {
            return Err(forward.unresolved(format!(
                "is {}, not its parent {}",
                found.id, forward.parent_id
            )));
        }
        match &found.content {
            content @ EventContent::Data { .. } => Ok(content.clone()),
            _ => Err(forward.unresolved("is not a data record")),
        }
    }

    /// Opens the segment holding `forward`'s sequence, from its start.
    fn open_at(&mut self, forward: &Forward<'_>) -> Result<(), CorruptionKind> {
        let seq = forward.at.seq;
        let segments = self.segments(forward)?;
        let holding = segments
            .iter()
            .rev()
            .find(|segment| segment.first_seq <= seq);
        let Some(segment) = holding else {
            return Err(forward.unresolved("is missing: no segment of that journal holds it"));
        };
        self.open(segment, forward)
    }

    fn open(&mut self, segment: &SegmentFile, forward: &Forward<'_>) -> Result<(), CorruptionKind> {
        let reader = SegmentReader::open(&segment.path).map_err(|error| {
            forward.unresolved(format!(
                "cannot be read: {}: {}",
                segment.path.display(),
                obzenflow_core::ErrorChain::new(&error)
            ))
        })?;
        self.reader = Some((segment.first_seq, reader));
        self.first = segment.first_seq;
        self.batch.clear();
        Ok(())
    }

    fn segments(&self, forward: &Forward<'_>) -> Result<Vec<SegmentFile>, CorruptionKind> {
        list_segments(&self.dir).map_err(|error| {
            forward.unresolved(format!(
                "is missing: {}: {}",
                self.dir.display(),
                obzenflow_core::ErrorChain::new(&error)
            ))
        })
    }

    /// Reads the next frame, decoding it only if it reaches `forward`'s sequence; moves to the
    /// next segment at the end of one.
    fn next_frame(&mut self, forward: &Forward<'_>) -> Result<(), CorruptionKind> {
        let seq = forward.at.seq;
        let Some((segment_first, reader)) = self.reader.as_mut() else {
            return Err(forward.unresolved("is missing"));
        };
        let read = reader.next_batch_reaching(seq).map_err(|error| {
            forward.unresolved(format!(
                "cannot be read: {}",
                obzenflow_core::ErrorChain::new(&error)
            ))
        })?;
        match read {
            Some((header, events)) => {
                if header.is_seal() {
                    return Err(forward.unresolved(format!(
                        "is missing: that journal was sealed after {} records",
                        header.first_seq
                    )));
                }
                self.first = header.first_seq;
                self.batch = events;
                if self.batch.is_empty() {
                    // A frame wholly before `seq`: nothing of it is kept.
                    self.first = header.end_seq();
                }
                Ok(())
            }
            None => {
                let after = *segment_first;
                let segments = self.segments(forward)?;
                let next = segments.iter().find(|segment| segment.first_seq > after);
                match next {
                    Some(next) if next.first_seq <= seq => {
                        let next = next.clone();
                        self.open(&next, forward)
                    }
                    _ => Err(forward.unresolved("is missing: it is past the end of that journal")),
                }
            }
        }
    }
}

/// The disk journals of one run, which the records of its other journals may refer into.
///
/// A journal writes a reference only into a journal registered here: one of the same run
/// directory, whose sync it can wait for.
#[derive(Clone, Default)]
pub(crate) struct SiblingJournals {
    journals: Arc<Mutex<Vec<Sibling>>>,
}

/// A journal of the run and the sync that makes its records durable.
type Sibling = (JournalId, Arc<SyncTarget>);

impl std::fmt::Debug for SiblingJournals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let journals = self.journals.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_list()
            .entries(journals.iter().map(|(id, _)| id.to_string()))
            .finish()
    }
}

impl SiblingJournals {
    /// Registers a journal of the run.
    pub(crate) fn register(&self, journal: JournalId, sync: Arc<SyncTarget>) {
        let mut journals = self.journals.lock().unwrap_or_else(PoisonError::into_inner);
        journals.retain(|(id, _)| *id != journal);
        journals.push((journal, sync));
    }

    /// The sync target of `journal`, if it is a journal of the run.
    pub(crate) fn find(&self, journal: &JournalId) -> Option<Arc<SyncTarget>> {
        let journals = self.journals.lock().unwrap_or_else(PoisonError::into_inner);
        journals
            .iter()
            .find(|(id, _)| id == journal)
            .map(|(_, sync)| Arc::clone(sync))
    }
}
