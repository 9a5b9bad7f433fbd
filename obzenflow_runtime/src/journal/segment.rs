//! Segment files: their names, a sequential frame reader, and the validating scan that open,
//! disk reads and inspection share.
//!
//! A journal directory holds segment files named by the sequence of their first record, padded
//! to 20 digits (`00000000000000000000.seg`), each a run of frames (see [`super::frame`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use obzenflow_core::{ChainEvent, CorruptionKind, JournalError, JournalId};

use super::audit::{FrameAudit, FrameContent, Place, RecordAudit};
use super::codec::{self, BatchHeader, ResolveForward, Seal};
use super::forwarded::{RunForwards, StructureOnly};
use super::frame::{self, FrameHeader, FRAME_HEADER_LEN};

/// Enough of a batch body to read its header: the version byte and two varints.
const BATCH_HEADER_MAX_LEN: usize = 1 + 10 + 10;

/// The extension of segment files.
pub(crate) const SEGMENT_EXTENSION: &str = "seg";

/// A frame holding a sequence that is a multiple of this gets an entry in a journal's
/// in-memory offset index, so a reader can start anywhere after skipping the frames of at
/// most this many records.
pub(crate) const INDEX_STRIDE: u64 = 1024;

/// Whether a frame of `count` records from `first_seq` gets an index mark.
pub(crate) fn range_is_marked(first_seq: u64, count: u64) -> bool {
    let next_mark = first_seq
        .div_ceil(INDEX_STRIDE)
        .saturating_mul(INDEX_STRIDE);
    next_mark < first_seq.saturating_add(count)
}

const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The file name of the segment whose first record has sequence `first_seq`.
///
/// ```
/// use obzenflow_runtime::journal::segment_file_name;
///
/// assert_eq!(segment_file_name(42), "00000000000000000042.seg");
/// ```
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{SEGMENT_EXTENSION}")
}

/// The first sequence of a segment named `name`, or `None` if `name` is not a segment name.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A segment file found in a journal directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    pub(crate) first_seq: u64,
    pub(crate) path: PathBuf,
}

/// The segment files in `dir`, ordered by first sequence. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<SegmentFile>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(first_seq) = name.to_str().and_then(parse_segment_file_name) else {
            continue;
        };
        segments.push(SegmentFile {
            first_seq,
            path: entry.path(),
        });
    }
    segments.sort_by_key(|segment| segment.first_seq);
    Ok(segments)
}

/// A frame could not be read from a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Reading the file failed.
    #[error("cannot read {} at byte offset {offset}", path.display())]
    Io {
        /// The segment file.
        path: PathBuf,
        /// Where the frame being read starts.
        offset: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The frame is damaged.
    #[error("damaged frame in {} at byte offset {offset}: {kind}", path.display())]
    Damaged {
        /// The segment file.
        path: PathBuf,
        /// Where the damaged frame starts.
        offset: u64,
        /// What is wrong with it.
        kind: CorruptionKind,
        /// Whether the frame reaches (or claims to reach past) the end of the file, so that no
        /// frame follows it: in the last segment of a journal such a frame is a torn tail.
        at_tail: bool,
    },
}

impl FrameError {
    /// Converts into the journal error a reader of `journal` reports.
    pub fn into_journal_error(self, journal: &JournalId) -> JournalError {
        match self {
            Self::Io { path, source, .. } => JournalError::Io {
                journal: journal.clone(),
                operation: "read",
                path,
                source,
            },
            Self::Damaged {
                path, offset, kind, ..
            } => JournalError::Corrupt {
                segment: path,
                offset,
                kind,
            },
        }
    }
}

/// Reads the frames of one segment file in order.
///
/// Bodies are checked against their CRC32 before they are returned. The reader never panics
/// on damaged input: damage is a [`FrameError::Damaged`] naming the frame's offset.
///
/// ```no_run
/// use obzenflow_runtime::journal::SegmentReader;
///
/// let mut reader = SegmentReader::open("run/stages/orders/data/00000000000000000000.seg")?;
/// while let Some(event) = reader.next_event()? {
///     println!("{} {}", event.id, event.content_kind());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SegmentReader {
    path: PathBuf,
    reader: BufReader<File>,
    offset: u64,
    file_len: u64,
    body: Vec<u8>,
    /// Records of the last batch read that [`next_event`](Self::next_event) has not returned.
    pending: VecDeque<ChainEvent>,
    /// Finds the content of forwarded records in the segment's run directory.
    forwards: RunForwards,
}

impl std::fmt::Debug for SegmentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentReader")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl SegmentReader {
    /// Opens a segment file for reading from its first frame.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let file = File::open(&path)?;
        let file_len = file.metadata()?.len();
        Ok(Self {
            reader: BufReader::with_capacity(READ_BUFFER_BYTES, file),
            offset: 0,
            file_len,
            body: Vec::new(),
            pending: VecDeque::new(),
            forwards: RunForwards::for_segment(&path),
            path,
        })
    }

    /// Reads the next frame whole, checksum verified, and decodes its records as `depth` says
    /// (a seal is always decoded); `None` at a clean end of the file.
    ///
    /// A [`ScanDepth::Decode`] read resolves forwarded records in the segment's run directory;
    /// a [`ScanDepth::Checksums`] read checks their structure only, and its records are for
    /// counting, not for handing out.
    pub(crate) fn read_frame(&mut self, depth: ScanDepth) -> Result<Option<ReadFrame>, FrameError> {
        let start = self.offset;
        let file_len = self.file_len;
        let Some(header) = self.next_frame_body()? else {
            return Ok(None);
        };
        let body = &self.body;
        let is_final = start + (FRAME_HEADER_LEN + body.len()) as u64 >= file_len;
        let decode = match depth {
            ScanDepth::Frames => false,
            ScanDepth::Checksums => is_final,
            ScanDepth::Decode => true,
        };
        let mut structure_only = StructureOnly;
        let forwards: &mut dyn ResolveForward = match depth {
            ScanDepth::Decode => &mut self.forwards,
            ScanDepth::Frames | ScanDepth::Checksums => &mut structure_only,
        };
        let decoded = codec::decode_header(body).and_then(|batch| {
            let content = if batch.is_seal() {
                FrameBody::Seal(codec::decode_seal(body)?)
            } else if decode {
                FrameBody::Records(codec::decode_batch(body, forwards)?.1)
            } else {
                FrameBody::Skipped
            };
            Ok((batch, content))
        });
        let (batch, body) =
            decoded.map_err(|kind| self.damaged(start, kind, self.offset >= self.file_len))?;
        Ok(Some(ReadFrame {
            offset: start,
            end: self.offset,
            header,
            batch,
            body,
        }))
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The byte offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The file's length as last observed.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Moves to the frame starting at byte `offset`.
    pub fn seek(&mut self, offset: u64) -> io::Result<()> {
        self.reader.seek(SeekFrom::Start(offset))?;
        self.offset = offset;
        self.pending.clear();
        Ok(())
    }

    /// Reads the next frame and returns its checksum-verified body, or `None` at a clean end of
    /// the file.
    pub fn next_body(&mut self) -> Result<Option<&[u8]>, FrameError> {
        Ok(self.next_frame_body()?.map(|_| &self.body[..]))
    }

    /// Reads the next frame; returns its header and checksum-verified body.
    /// Reads the next frame into `self.body`; returns its header.
    fn next_frame_body(&mut self) -> Result<Option<FrameHeader>, FrameError> {
        let start = self.offset;
        let Some(header) = self.read_header()? else {
            return Ok(None);
        };
        let body_len = header.body_len as usize;
        self.body.resize(body_len, 0);
        let read = read_full(&mut self.reader, &mut self.body).map_err(|source| self.io(source))?;
        if read < body_len {
            return Err(self.damaged(
                start,
                CorruptionKind::Truncated {
                    missing: (body_len - read) as u64,
                },
                true,
            ));
        }
        let frame_end = start + header.frame_len();
        if let Err(kind) = header.check_body(&self.body) {
            return Err(self.damaged(start, kind, frame_end >= self.file_len));
        }
        self.offset = frame_end;
        Ok(Some(header))
    }

    /// Reads and decodes the next frame's batch, or returns `None` at a clean end of the file.
    ///
    /// Forwarded records are resolved in the segment's run directory (see
    /// [`codec::ResolveForward`]); one that cannot be is [`FrameError::Damaged`] with
    /// [`CorruptionKind::UnresolvedForward`].
    pub fn next_batch(&mut self) -> Result<Option<(BatchHeader, Vec<ChainEvent>)>, FrameError> {
        self.next_batch_reaching(0)
    }

    /// Reads the next frame's batch, decoding its records only if the frame holds sequence
    /// `seq` or later ones (otherwise they come back empty); `None` at a clean end of the file.
    pub(crate) fn next_batch_reaching(
        &mut self,
        seq: u64,
    ) -> Result<Option<(BatchHeader, Vec<ChainEvent>)>, FrameError> {
        let start = self.offset;
        if self.next_frame_body()?.is_none() {
            return Ok(None);
        }
        let body = &self.body;
        let forwards = &mut self.forwards;
        let decoded = codec::decode_header(body).and_then(|header| {
            if !header.is_seal() && header.end_seq() <= seq {
                return Ok((header, Vec::new()));
            }
            codec::decode_batch(body, forwards)
        });
        decoded
            .map(Some)
            .map_err(|kind| self.damaged(start, kind, self.offset >= self.file_len))
    }

    /// Reads the next record, decoding a frame's batch when the last one is used up, or
    /// returns `None` at a clean end of the file.
    pub fn next_event(&mut self) -> Result<Option<ChainEvent>, FrameError> {
        while self.pending.is_empty() {
            match self.next_batch()? {
                None => return Ok(None),
                Some((_, events)) => self.pending.extend(events),
            }
        }
        Ok(self.pending.pop_front())
    }

    /// Skips the next frame, reading only its batch header (its checksum is not verified);
    /// returns `false` at a clean end of the file.
    pub fn skip_frame(&mut self) -> Result<bool, FrameError> {
        self.skip_batch().map(|header| header.is_some())
    }

    /// Skips the next frame, reading only its batch header (its checksum is not verified);
    /// returns that header, or `None` at a clean end of the file.
    pub fn skip_batch(&mut self) -> Result<Option<BatchHeader>, FrameError> {
        self.pending.clear();
        let start = self.offset;
        let Some(header) = self.read_header()? else {
            return Ok(None);
        };
        let prefix_len = (header.body_len as usize).min(BATCH_HEADER_MAX_LEN);
        let mut prefix = [0; BATCH_HEADER_MAX_LEN];
        let read = read_full(&mut self.reader, &mut prefix[..prefix_len])
            .map_err(|source| self.io(source))?;
        let frame_end = start + header.frame_len();
        let batch = codec::decode_header(&prefix[..read])
            .map_err(|kind| self.damaged(start, kind, frame_end >= self.file_len))?;
        self.reader
            .seek_relative(i64::from(header.body_len) - read as i64)
            .map_err(|source| self.io(source))?;
        self.offset = frame_end;
        Ok(Some(batch))
    }

    /// Reads and checks a frame header; `None` at a clean end of the file.
    fn read_header(&mut self) -> Result<Option<FrameHeader>, FrameError> {
        let start = self.offset;
        let mut bytes = [0; FRAME_HEADER_LEN];
        let read = read_full(&mut self.reader, &mut bytes).map_err(|source| self.io(source))?;
        if read == 0 {
            return Ok(None);
        }
        if read < FRAME_HEADER_LEN {
            let missing = (FRAME_HEADER_LEN - read) as u64;
            return Err(self.damaged(start, CorruptionKind::Truncated { missing }, true));
        }
        let header = FrameHeader::parse(bytes);
        let frame_end = start + header.frame_len();
        if let Err(kind) = header.check_length() {
            return Err(self.damaged(start, kind, frame_end >= self.file_len));
        }
        if frame_end > self.file_len {
            // A live segment grows while it is read: look again before calling it torn.
            self.file_len = self
                .reader
                .get_ref()
                .metadata()
                .map_err(|source| self.io(source))?
                .len();
            if frame_end > self.file_len {
                let missing = frame_end - self.file_len;
                return Err(self.damaged(start, CorruptionKind::Truncated { missing }, true));
            }
        }
        Ok(Some(header))
    }

    fn io(&self, source: io::Error) -> FrameError {
        FrameError::Io {
            path: self.path.clone(),
            offset: self.offset,
            source,
        }
    }

    fn damaged(&self, offset: u64, kind: CorruptionKind, at_tail: bool) -> FrameError {
        FrameError::Damaged {
            path: self.path.clone(),
            offset,
            kind,
            at_tail,
        }
    }
}

/// A damaged frame found by [`decode_segment_bytes`]: the in-memory counterpart of
/// [`FrameError::Damaged`], which also names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("damaged frame at byte offset {offset}: {kind}")]
#[non_exhaustive]
pub struct DamagedFrame {
    /// Where the damaged frame starts.
    pub offset: u64,
    /// What is wrong with it.
    pub kind: CorruptionKind,
    /// Whether the frame reaches (or claims to reach past) the end of the bytes, so that no
    /// frame follows it: at the end of a journal's last segment, a torn tail.
    pub at_tail: bool,
}

/// Decodes the records of the frames of a whole segment held in memory, in order.
///
/// Each frame goes through the checks [`SegmentReader::next_event`] makes, in the same order
/// ([`frame::decode_batch_frame`]: header, length, checksum, then the batch codec). The first damaged
/// frame ends the iteration with a [`DamagedFrame`] carrying the offset, kind and `at_tail`
/// that [`SegmentReader`] reports for the same bytes in a file. Never panics, whatever the
/// bytes.
///
/// ```
/// use obzenflow_core::{ChainEvent, CorruptionKind};
/// use obzenflow_runtime::journal::{decode_segment_bytes, frame};
///
/// let event = ChainEvent::data("order", serde_json::json!({"id": 1}));
/// let mut bytes = Vec::new();
/// frame::encode_frame(&event, &mut bytes)?;
/// let whole_frame = bytes.len() as u64;
/// bytes.extend_from_slice(&[7, 0, 0]);
///
/// let mut frames = decode_segment_bytes(&bytes);
/// assert_eq!(frames.next(), Some(Ok(event)));
/// let damage = frames.next().unwrap().unwrap_err();
/// assert_eq!(damage.offset, whole_frame);
/// assert_eq!(damage.kind, CorruptionKind::Truncated { missing: 5 });
/// assert_eq!(frames.next(), None);
/// # Ok::<(), obzenflow_runtime::journal::frame::FrameEncodeError>(())
/// ```
pub fn decode_segment_bytes(bytes: &[u8]) -> SegmentDecoder<'_> {
    SegmentDecoder {
        bytes,
        offset: 0,
        damaged: false,
        pending: VecDeque::new(),
    }
}

/// The iterator of [`decode_segment_bytes`]: records in order, then at most one
/// [`DamagedFrame`], after which it yields nothing.
#[derive(Debug, Clone)]
pub struct SegmentDecoder<'a> {
    bytes: &'a [u8],
    offset: usize,
    damaged: bool,
    pending: VecDeque<ChainEvent>,
}

impl SegmentDecoder<'_> {
    /// The byte offset of the next frame; after a damaged frame, where that frame starts.
    pub fn offset(&self) -> u64 {
        self.offset as u64
    }
}

impl Iterator for SegmentDecoder<'_> {
    type Item = Result<ChainEvent, DamagedFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(event) = self.pending.pop_front() {
            return Some(Ok(event));
        }
        if self.damaged {
            return None;
        }
        let rest = self
            .bytes
            .get(self.offset..)
            .filter(|rest| !rest.is_empty())?;
        match frame::decode_batch_frame(rest) {
            Ok(((_, events), frame_len)) => {
                self.offset += frame_len;
                self.pending.extend(events);
                self.pending.pop_front().map(Ok)
            }
            Err(kind) => {
                self.damaged = true;
                // As in `SegmentReader`: a frame whose header is cut short, or whose claimed
                // end is at or past the end of the bytes, has nothing after it.
                let at_tail = rest.first_chunk::<FRAME_HEADER_LEN>().is_none_or(|header| {
                    FrameHeader::parse(*header).frame_len() >= rest.len() as u64
                });
                Some(Err(DamagedFrame {
                    offset: self.offset as u64,
                    kind,
                    at_tail,
                }))
            }
        }
    }
}

impl std::iter::FusedIterator for SegmentDecoder<'_> {}

/// Reads until `buffer` is full or the file ends; returns how many bytes were read.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Whether every byte of `path` from `offset` on is zero: the shape of a tail that a file
/// system extended without writing it (a crash between growing a file and filling it).
pub(crate) fn rest_is_zero(path: &Path, offset: u64) -> io::Result<bool> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut chunk = vec![0; READ_BUFFER_BYTES];
    loop {
        let read = read_full(&mut file, &mut chunk)?;
        if chunk[..read].iter().any(|byte| *byte != 0) {
            return Ok(false);
        }
        if read < chunk.len() {
            return Ok(true);
        }
    }
}

/// One frame read by [`SegmentReader::read_frame`].
#[derive(Debug)]
pub(crate) struct ReadFrame {
    /// Where it starts and ends in its segment.
    pub(crate) offset: u64,
    pub(crate) end: u64,
    pub(crate) header: FrameHeader,
    pub(crate) batch: BatchHeader,
    pub(crate) body: FrameBody,
}

impl ReadFrame {
    /// What the frame holds, for the frame audit.
    pub(crate) fn content(&self) -> FrameContent<'_> {
        match &self.body {
            FrameBody::Seal(seal) => FrameContent::Seal(seal),
            FrameBody::Records(events) => {
                FrameContent::Records(Some(events.iter().filter(|e| e.is_data()).count() as u64))
            }
            FrameBody::Skipped => FrameContent::Records(None),
        }
    }
}

/// The body of a [`ReadFrame`].
#[derive(Debug)]
pub(crate) enum FrameBody {
    /// A journal's seal.
    Seal(Seal),
    /// Decoded records.
    Records(Vec<ChainEvent>),
    /// Records not decoded.
    Skipped,
}

/// How thoroughly a scan checks each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanDepth {
    /// Verify every checksum, format version, batch sequence and the seal, decoding no records:
    /// what the run listing does.
    Frames,
    /// As `Frames`, and fully decode the final frame of each segment. What open does: a
    /// checksummed body only fails to decode after an encoder bug.
    Checksums,
    /// Verify every checksum, decode every body and check every record ([`RecordAudit`]).
    /// What validation does.
    Decode,
}

/// One segment as a scan found it.
#[derive(Debug, Clone)]
pub(crate) struct ScannedSegment {
    pub(crate) first_seq: u64,
    pub(crate) path: PathBuf,
    pub(crate) records: u64,
    /// Where the last good frame ends (for the last segment of a sealed journal, where its
    /// seal ends).
    pub(crate) valid_len: u64,
    pub(crate) file_len: u64,
    /// `(first sequence, byte offset)` of every frame that holds a multiple of
    /// [`INDEX_STRIDE`].
    pub(crate) marks: Vec<(u64, u64)>,
}

/// A damaged end of the last segment, which can be cut without losing an earlier record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TornTail {
    pub(crate) segment: PathBuf,
    pub(crate) offset: u64,
    pub(crate) file_len: u64,
    pub(crate) kind: CorruptionKind,
}

/// What a scan of a journal directory found.
#[derive(Debug, Clone)]
pub(crate) struct JournalScan {
    pub(crate) segments: Vec<ScannedSegment>,
    pub(crate) records: u64,
    pub(crate) torn_tail: Option<TornTail>,
    /// The frame checks, with the journal's digest and seal.
    pub(crate) frames: FrameAudit,
    /// The record checks, for a [`ScanDepth::Decode`] scan.
    pub(crate) record_audit: Option<RecordAudit>,
}

impl JournalScan {
    /// The scan of a journal with no segments.
    pub(crate) fn empty() -> Self {
        Self {
            segments: Vec::new(),
            records: 0,
            torn_tail: None,
            frames: FrameAudit::new(),
            record_audit: None,
        }
    }
}

/// Scans every segment in `dir`, read-only, through the frame checks (and, at
/// [`ScanDepth::Decode`], the record checks).
///
/// Damage in the last segment that nothing valid follows is reported as a [`TornTail`]; any
/// other damage, segments whose names break the sequence, frames out of sequence or after the
/// seal, and a seal that disagrees with the frames are [`JournalError::Corrupt`].
pub(crate) fn scan_journal(
    dir: &Path,
    journal: &JournalId,
    depth: ScanDepth,
) -> Result<JournalScan, JournalError> {
    let files = list_segments(dir).map_err(|source| JournalError::Io {
        journal: journal.clone(),
        operation: "list segments in",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut scan = JournalScan {
        segments: Vec::with_capacity(files.len()),
        records: 0,
        torn_tail: None,
        frames: FrameAudit::new(),
        record_audit: (depth == ScanDepth::Decode).then(|| RecordAudit::new(journal.lane)),
    };
    let last = files.len().saturating_sub(1);
    for (index, file) in files.into_iter().enumerate() {
        scan.frames.segment(&file.path, file.first_seq)?;
        let (segment, torn_tail) = scan_segment(file, index == last, depth, &mut scan, journal)?;
        scan.records += segment.records;
        scan.segments.push(segment);
        scan.torn_tail = torn_tail;
    }
    Ok(scan)
}

fn scan_segment(
    file: SegmentFile,
    is_last: bool,
    depth: ScanDepth,
    scan: &mut JournalScan,
    journal: &JournalId,
) -> Result<(ScannedSegment, Option<TornTail>), JournalError> {
    let mut reader = SegmentReader::open(&file.path).map_err(|source| {
        FrameError::Io {
            path: file.path.clone(),
            offset: 0,
            source,
        }
        .into_journal_error(journal)
    })?;
    let mut segment = ScannedSegment {
        first_seq: file.first_seq,
        path: file.path,
        records: 0,
        valid_len: 0,
        file_len: reader.file_len(),
        marks: Vec::new(),
    };
    loop {
        let frame = match reader.read_frame(depth) {
            Ok(None) => return Ok((segment, None)),
            Ok(Some(frame)) => frame,
            Err(FrameError::Damaged {
                path,
                offset,
                kind,
                at_tail,
            }) if is_last && (at_tail || nothing_follows(&path, offset)) => {
                let tail = TornTail {
                    segment: path,
                    offset,
                    file_len: segment.file_len,
                    kind,
                };
                return Ok((segment, Some(tail)));
            }
            Err(error) => return Err(error.into_journal_error(journal)),
        };
        // A frame lost, duplicated or moved is never a torn tail, whatever follows.
        let place = Place::new(&segment.path, frame.offset);
        scan.frames
            .frame(
                place.clone(),
                frame.end,
                frame.header,
                frame.batch,
                frame.content(),
            )
            .map_err(|kind| place.corrupt(kind))?;
        if let (Some(audit), FrameBody::Records(events)) = (&mut scan.record_audit, &frame.body) {
            for event in events {
                audit.record(event, &place)?;
            }
        }
        if range_is_marked(frame.batch.first_seq, frame.batch.count) {
            segment.marks.push((frame.batch.first_seq, frame.offset));
        }
        segment.records += frame.batch.count;
        segment.valid_len = frame.end;
    }
}

/// Whether only zeros follow the damaged frame at `offset`: from the frame's start (a file
/// extended but never written), or from its claimed end (a frame written in part, then the
/// zeros a machine crash leaves where the page cache was never written back).
pub(crate) fn nothing_follows(path: &Path, offset: u64) -> bool {
    if rest_is_zero(path, offset).unwrap_or(false) {
        return true;
    }
    let claimed_end = File::open(path).and_then(|mut file| {
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = [0; FRAME_HEADER_LEN];
        file.read_exact(&mut bytes)?;
        Ok(FrameHeader::parse(bytes))
    });
    match claimed_end {
        Ok(header) if header.check_length().is_ok() => {
            rest_is_zero(path, offset + header.frame_len()).unwrap_or(false)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_file_name(0), "00000000000000000000.seg");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(123_456)),
            Some(123_456)
        );
        assert_eq!(parse_segment_file_name("0001.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000x.seg"), None);
        assert_eq!(parse_segment_file_name("00000000000000000000.tmp"), None);
        assert_eq!(parse_segment_file_name("99999999999999999999.seg"), None);
    }
}
