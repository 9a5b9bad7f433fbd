//! Reading records back from segment files, for readers that fell behind the record cache.
//!
//! A sparse in-memory index (each segment's first sequence plus the offset of every frame
//! holding a sequence that is a multiple of `INDEX_STRIDE`) lets a reader start anywhere after
//! skipping the frames of fewer than `INDEX_STRIDE` records; after that it reads sequentially.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use obzenflow_core::{CorruptionKind, JournalError, JournalId, Record};

use super::frame::FRAME_HEADER_LEN;
use super::segment::SegmentReader;

/// One segment in the index.
pub(crate) struct IndexedSegment {
    pub(crate) first_seq: u64,
    pub(crate) path: PathBuf,
    /// `(first sequence, byte offset)` of the frames that
    /// [`range_is_marked`](super::segment::range_is_marked).
    pub(crate) marks: Vec<(u64, u64)>,
}

/// The segment files of one disk journal, shared by its writer and its readers.
pub(crate) struct DiskRecords {
    journal: JournalId,
    segments: Mutex<Vec<IndexedSegment>>,
}

/// Where a reader's last read from disk stopped.
pub(crate) struct DiskCursor {
    segment: usize,
    next_seq: u64,
    reader: SegmentReader,
}

impl DiskRecords {
    pub(crate) fn new(journal: JournalId, segments: Vec<IndexedSegment>) -> Self {
        Self {
            journal,
            segments: Mutex::new(segments),
        }
    }

    fn segments(&self) -> std::sync::MutexGuard<'_, Vec<IndexedSegment>> {
        self.segments.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a new segment the writer rolled to.
    pub(crate) fn add_segment(&self, first_seq: u64, path: PathBuf) {
        self.segments().push(IndexedSegment {
            first_seq,
            path,
            marks: Vec::new(),
        });
    }

    /// Records index marks `(segment index, sequence, offset)` of a written batch.
    pub(crate) fn add_marks(&self, marks: &[(usize, u64, u64)]) {
        if marks.is_empty() {
            return;
        }
        let mut segments = self.segments();
        for &(segment, seq, offset) in marks {
            if let Some(segment) = segments.get_mut(segment) {
                segment.marks.push((seq, offset));
            }
        }
    }

    /// Reads up to `max` committed records from `from`, stopping before `limit`.
    ///
    /// Blocking file I/O: this is the slow path of a reader that fell behind the cache.
    pub(crate) fn read(
        &self,
        cursor: &mut Option<DiskCursor>,
        from: u64,
        limit: u64,
        max: usize,
        out: &mut Vec<Record>,
    ) -> Result<usize, JournalError> {
        let reusable = cursor
            .as_ref()
            .is_some_and(|cursor| cursor.next_seq == from);
        let mut current = match cursor.take() {
            Some(current) if reusable => current,
            _ => self.seek(from)?,
        };
        let mut events = Vec::new();
        while events.len() < max && current.next_seq < limit {
            match current.reader.next_event() {
                Ok(Some(event)) => {
                    events.push(event);
                    current.next_seq += 1;
                }
                Ok(None) => current = self.next_segment(current)?,
                Err(error) => return Err(error.into_journal_error(&self.journal)),
            }
        }
        *cursor = Some(current);
        let count = events.len();
        out.extend(Record::batch(events));
        Ok(count)
    }

    /// Opens a cursor at sequence `seq` via the nearest index mark.
    fn seek(&self, seq: u64) -> Result<DiskCursor, JournalError> {
        let (segment, path, offset) = {
            let segments = self.segments();
            let index = segments
                .partition_point(|segment| segment.first_seq <= seq)
                .checked_sub(1);
            let Some(found) = index.and_then(|index| segments.get(index)) else {
                return Err(self.missing(PathBuf::new(), 0));
            };
            let mark = found
                .marks
                .partition_point(|(mark_seq, _)| *mark_seq <= seq);
            let offset = match mark.checked_sub(1) {
                Some(mark) => found.marks[mark].1,
                None => 0,
            };
            (index.unwrap_or(0), found.path.clone(), offset)
        };
        let mut reader = self.open(&path)?;
        reader
            .seek(offset)
            .map_err(|source| self.io_error(&path, source))?;
        // Skip whole frames before the one holding `seq`, then the records before it there.
        let frame_seq = loop {
            let frame_offset = reader.offset();
            let skipped = reader
                .skip_batch()
                .map_err(|error| error.into_journal_error(&self.journal))?;
            let Some(header) = skipped else {
                return Err(self.missing(path, reader.offset()));
            };
            if header.end_seq() > seq {
                reader
                    .seek(frame_offset)
                    .map_err(|source| self.io_error(&path, source))?;
                break header.first_seq;
            }
        };
        for _ in frame_seq..seq {
            let skipped = reader
                .next_event()
                .map_err(|error| error.into_journal_error(&self.journal))?;
            if skipped.is_none() {
                return Err(self.missing(path, reader.offset()));
            }
        }
        Ok(DiskCursor {
            segment,
            next_seq: seq,
            reader,
        })
    }

    /// Moves a cursor that reached the end of its segment to the next one.
    fn next_segment(&self, cursor: DiskCursor) -> Result<DiskCursor, JournalError> {
        let next = {
            let segments = self.segments();
            segments
                .get(cursor.segment + 1)
                .filter(|next| next.first_seq == cursor.next_seq)
                .map(|next| next.path.clone())
        };
        let Some(path) = next else {
            // A committed record should be here: the segment was cut short behind our back.
            let path = cursor.reader.path().to_path_buf();
            return Err(self.missing(path, cursor.reader.offset()));
        };
        Ok(DiskCursor {
            segment: cursor.segment + 1,
            next_seq: cursor.next_seq,
            reader: self.open(&path)?,
        })
    }

    fn open(&self, path: &std::path::Path) -> Result<SegmentReader, JournalError> {
        SegmentReader::open(path).map_err(|source| self.io_error(path, source))
    }

    fn io_error(&self, path: &std::path::Path, source: std::io::Error) -> JournalError {
        JournalError::Io {
            journal: self.journal.clone(),
            operation: "read",
            path: path.to_path_buf(),
            source,
        }
    }

    fn missing(&self, segment: PathBuf, offset: u64) -> JournalError {
        JournalError::Corrupt {
            segment,
            offset,
            kind: CorruptionKind::Truncated {
                missing: FRAME_HEADER_LEN as u64,
            },
        }
    }
}
