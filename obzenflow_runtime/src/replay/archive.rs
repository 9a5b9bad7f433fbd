//! [`ArchiveSource`]: a source that re-emits, in order, what a source of an earlier run
//! archived in its journals.
//!
//! Replayed records keep the archived content, processing status and event time. They get a
//! fresh id like every record a source emits; the archived record's id becomes their parent
//! (`causality.parent_id`), which is how a replayed record leads back to its original.
//! Archived error-lane records are replayed too: their status is an error, so the runtime routes
//! them to the replaying source's error lane again.

use std::path::{Path, PathBuf};

use obzenflow_core::{Causality, ChainEvent, EventId, Lane, ProcessingStatus};

use super::error::ReplayError;
use crate::journal::inspect::{self, JournalRecords};
use crate::journal::RunDirError;
use crate::stages::{HandlerFailure, SourceHandler, SourcePoll};

/// Replays the archived journals of the source `stage` of the run in `run_dir`.
///
/// [`FlowBuilder::replay_from`](crate::pipeline::FlowBuilder::replay_from) puts one in place of
/// every source of a replayed flow; it can also be used on its own as a [`SourceHandler`].
///
/// It reads the data and error journals with [`inspect::read_journal`], a batch at a time,
/// and merges them by original event id (ids are time-ordered), so the two lanes interleave
/// roughly as they were produced; the order within each lane is exact. When the data journal
/// ends, its end-of-stream marker must match the number of records replayed, unless
/// [`ArchiveSource::allow_incomplete`] was called. Every failure is a [`HandlerFailure`] whose
/// source is a [`ReplayError`]; a corrupt record names its segment file and byte offset.
///
/// ```no_run
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_runtime::replay::ArchiveSource;
/// # use obzenflow_core::ChainEvent;
/// # use obzenflow_runtime::stages::{RecordError, SinkHandler};
/// # struct Print;
/// # impl SinkHandler for Print {
/// #     fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError> { Ok(()) }
/// # }
///
/// let archived = ArchiveSource::new("runs/run_0190f1c2a3b47c8d9e0f112233445566", "orders");
/// let flow = FlowBuilder::new("reprint")
///     .source("orders", archived)
///     .sink("print", Print)
///     .edge("orders", "print")
///     .build()?;
/// # Ok::<(), obzenflow_runtime::pipeline::FlowError>(())
/// ```
#[derive(Debug)]
pub struct ArchiveSource {
    run_dir: PathBuf,
    stage: String,
    allow_incomplete: bool,
    lanes: Option<ArchivedLanes>,
    /// A read failure met after some records of a batch: those are emitted first.
    failed: Option<ReplayError>,
}

/// The two archived journals being replayed.
#[derive(Debug)]
struct ArchivedLanes {
    data: LaneCursor,
    error: LaneCursor,
}

impl ArchiveSource {
    /// Replays the source `stage` of the run in `run_dir`.
    pub fn new(run_dir: impl Into<PathBuf>, stage: impl Into<String>) -> Self {
        Self {
            run_dir: run_dir.into(),
            stage: stage.into(),
            allow_incomplete: false,
            lanes: None,
            failed: None,
        }
    }

    /// Accepts a data journal that ends without its end-of-stream marker (or with one that
    /// disagrees with the records found), as the journal of a run that did not complete may.
    pub fn allow_incomplete(mut self) -> Self {
        self.allow_incomplete = true;
        self
    }

    /// The archived run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The archived source's name.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    fn lanes(&mut self) -> Result<&mut ArchivedLanes, ReplayError> {
        let lanes = match self.lanes.take() {
            Some(lanes) => lanes,
            None => ArchivedLanes {
                data: self.open_lane(Lane::Data)?,
                error: self.open_lane(Lane::Error)?,
            },
        };
        Ok(self.lanes.insert(lanes))
    }

    fn open_lane(&self, lane: Lane) -> Result<LaneCursor, ReplayError> {
        let records = inspect::read_journal(&self.run_dir, &self.stage, lane)
            .map_err(|source| self.read_error(lane, source))?;
        Ok(LaneCursor::new(lane, records))
    }

    fn read_error(&self, lane: Lane, source: RunDirError) -> ReplayError {
        ReplayError::ArchiveRead {
            stage: self.stage.clone(),
            lane,
            run_dir: self.run_dir.clone(),
            source: Box::new(source),
        }
    }

    /// Up to `max` replayed records, or `Done` once both archived journals are exhausted.
    ///
    /// Records read before a damaged one are replayed; the failure comes with the next call.
    fn next_records(&mut self, max: usize) -> Result<SourcePoll, ReplayError> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        let mut records = Vec::with_capacity(max.min(1024));
        while records.len() < max.max(1) {
            let lanes = self.lanes()?;
            let next = match lanes.next_lane() {
                Ok(next) => next,
                Err((lane, source)) if records.is_empty() => {
                    return Err(self.read_error(lane, source));
                }
                Err((lane, source)) => {
                    self.failed = Some(self.read_error(lane, source));
                    break;
                }
            };
            match next {
                Some(cursor) => records.extend(cursor.take().map(replayed)),
                None => break,
            }
        }
        if !records.is_empty() {
            return Ok(SourcePoll::Records(records));
        }
        self.check_end_of_stream()?;
        Ok(SourcePoll::Done)
    }

    /// Checks the data journal's end-of-stream marker against the records replayed.
    fn check_end_of_stream(&mut self) -> Result<(), ReplayError> {
        let allow_incomplete = self.allow_incomplete;
        let (stage, run_dir) = (self.stage.clone(), self.run_dir.clone());
        let data = &self.lanes()?.data;
        let records = data.taken;
        match data.end_of_stream {
            Some(end_of_stream) if end_of_stream == records => Ok(()),
            end_of_stream if allow_incomplete => {
                tracing::warn!(
                    stage = %stage,
                    records,
                    end_of_stream,
                    "archived journal is incomplete; replayed what it holds"
                );
                Ok(())
            }
            Some(end_of_stream) => Err(ReplayError::EndOfStreamMismatch {
                stage,
                run_dir,
                records,
                end_of_stream,
            }),
            None => Err(ReplayError::MissingEndOfStream {
                stage,
                run_dir,
                records,
            }),
        }
    }
}

impl ArchivedLanes {
    /// The lane whose next record is the older one, or `None` when both are exhausted.
    fn next_lane(&mut self) -> Result<Option<&mut LaneCursor>, (Lane, RunDirError)> {
        let data = self.data.peek_id().map_err(|source| (Lane::Data, source))?;
        let error = self
            .error
            .peek_id()
            .map_err(|source| (Lane::Error, source))?;
        Ok(match (data, error) {
            (None, None) => None,
            (Some(data), Some(error)) if error < data => Some(&mut self.error),
            (Some(_), _) => Some(&mut self.data),
            (None, Some(_)) => Some(&mut self.error),
        })
    }
}

impl SourceHandler for ArchiveSource {
    /// Opens both archived journals; a missing journal fails the stage.
    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.lanes().map(|_| ()).map_err(failure)
    }

    fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        self.next_records(max).map_err(failure)
    }
}

fn failure(error: ReplayError) -> HandlerFailure {
    HandlerFailure::with_source("cannot replay the archive", error)
}

/// The archived record re-emitted: same content, status, event time and origin; the original
/// id becomes the parent. The error's stage id is cleared so the replaying stage stamps its own.
fn replayed(mut archived: ChainEvent) -> ChainEvent {
    archived.causality = Causality {
        parent_id: Some(archived.id),
        correlation_id: None,
        joined_correlation_id: None,
    };
    if let ProcessingStatus::Error { stage_id, .. } = &mut archived.processing_info.status {
        *stage_id = None;
    }
    archived.processing_info.processing_time_ns = 0;
    archived
}

/// One archived journal, read ahead by one data record.
struct LaneCursor {
    lane: Lane,
    records: JournalRecords,
    next: Option<ChainEvent>,
    exhausted: bool,
    /// Data records handed out so far.
    taken: u64,
    /// The end-of-stream marker's count, once read.
    end_of_stream: Option<u64>,
}

impl std::fmt::Debug for LaneCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneCursor")
            .field("lane", &self.lane)
            .field("taken", &self.taken)
            .field("end_of_stream", &self.end_of_stream)
            .finish_non_exhaustive()
    }
}

impl LaneCursor {
    fn new(lane: Lane, records: JournalRecords) -> Self {
        Self {
            lane,
            records,
            next: None,
            exhausted: false,
            taken: 0,
            end_of_stream: None,
        }
    }

    /// The id of the next data record, reading past lifecycle facts and control markers.
    fn peek_id(&mut self) -> Result<Option<EventId>, RunDirError> {
        while self.next.is_none() && !self.exhausted {
            match self.records.next() {
                None => self.exhausted = true,
                Some(Err(error)) => {
                    self.exhausted = true;
                    return Err(error);
                }
                Some(Ok(event)) if event.is_data() => self.next = Some(event),
                Some(Ok(event)) => {
                    if let Some(records) = event.end_of_stream_count() {
                        self.end_of_stream = Some(records);
                    }
                }
            }
        }
        Ok(self.next.as_ref().map(|event| event.id))
    }

    fn take(&mut self) -> Option<ChainEvent> {
        let event = self.next.take();
        self.taken += u64::from(event.is_some());
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obzenflow_core::ErrorKind;
    use serde_json::json;

    #[test]
    fn a_replayed_record_keeps_what_it_says_and_points_at_its_original() {
        let mut archived = ChainEvent::data("order", json!({"amount": 5}))
            .with_status(ProcessingStatus::error(
                ErrorKind::Decode,
                "bad row",
                Some(Default::default()),
            ))
            .with_origin(obzenflow_core::SourcePosition::new("orders.csv", 4));
        archived.processing_info.processing_time_ns = 99;
        let original_id = archived.id;
        let record = replayed(archived.clone());
        assert_eq!(record.content, archived.content);
        assert_eq!(record.event_time, archived.event_time);
        assert_eq!(
            record.origin(),
            archived.origin(),
            "the input line it came from"
        );
        assert_eq!(record.causality.parent_id, Some(original_id));
        assert_eq!(record.processing_info.processing_time_ns, 0);
        assert_eq!(
            record.processing_info.status,
            ProcessingStatus::error(ErrorKind::Decode, "bad row", None)
        );
    }
}
