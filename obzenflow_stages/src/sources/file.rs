//! What the file sources share: the input file (opened without blocking, read in bounded
//! steps, awaited on the reactor while a stream has no input, checked for changes at its end), errors that name the file, and bad lines turned into
//! error-lane records that quote a bounded prefix of the raw input.

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use obzenflow_core::{ChainEvent, ErrorKind, ProcessingStatus, SourcePosition, TypedPayload};
use obzenflow_runtime::stages::HandlerFailure;
use serde::{Deserialize, Serialize};

/// The payload of an error-lane record written for an input line that could not be decoded.
///
/// The record's status carries the reason (`ErrorKind::Decode`, message
/// `<file>:<line>: <what was wrong>`); the payload quotes the start of the line, at most
/// [`BadRow::RAW_LIMIT`] bytes of it, so an error record stays small whatever the input (a
/// 60 MiB bad row costs the error lane 1 KiB, not 60 MiB).
///
/// ```
/// use obzenflow_core::{ChainEvent, TypedPayload};
/// use obzenflow_stages::sources::BadRow;
///
/// let row = BadRow { file: "orders.csv".into(), line: 7, raw: "o-7,,oops".into(), truncated: false };
/// let event = row.to_event()?;
/// assert_eq!(BadRow::from_event(&event)?.line, 7);
/// # Ok::<(), obzenflow_core::PayloadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRow {
    /// The file the line came from, as the source was given it.
    pub file: String,
    /// The 1-based line number where the bad record starts.
    pub line: u64,
    /// The raw line without its line terminator, or its first [`BadRow::RAW_LIMIT`] bytes if it
    /// is longer; invalid UTF-8 is replaced by `U+FFFD`.
    pub raw: String,
    /// Whether [`raw`](Self::raw) is only the start of the line.
    #[serde(default)]
    pub truncated: bool,
}

impl TypedPayload for BadRow {
    const EVENT_TYPE: &'static str = "bad_row";
}

impl BadRow {
    /// The most bytes of a bad line an error-lane record quotes: 1 KiB.
    pub const RAW_LIMIT: usize = 1024;

    /// A bad row from the raw bytes of a line (or of the start of a line, if `truncated`).
    pub(crate) fn new(file: &str, line: u64, raw: &[u8], truncated: bool) -> Self {
        let raw = trim_line_terminator(raw);
        let (raw, cut) = quote_prefix(raw);
        Self {
            file: file.to_owned(),
            line,
            raw,
            truncated: truncated || cut,
        }
    }

    /// The error-lane record for this row: decode error `<file>:<line>: <reason>`.
    pub(crate) fn into_event(self, reason: &str) -> ChainEvent {
        let message = format!("{}:{}: {reason}", self.file, self.line);
        let payload = serde_json::json!({
            "file": self.file,
            "line": self.line,
            "raw": self.raw,
            "truncated": self.truncated,
        });
        ChainEvent::data(Self::EVENT_TYPE, payload).with_status(ProcessingStatus::error(
            ErrorKind::Decode,
            message,
            None,
        ))
    }
}

/// `event`, good or bad, marked as coming from `line` of `file` (the path as the source was
/// given it), which every record derived from it carries on.
pub(crate) fn placed(event: ChainEvent, file: &Arc<str>, line: u64) -> ChainEvent {
    event.with_origin(SourcePosition::new(Arc::clone(file), line))
}

/// The first [`BadRow::RAW_LIMIT`] bytes of `raw` as text, and whether that cut anything. A
/// character cut in two at the limit is dropped rather than shown as `U+FFFD`.
fn quote_prefix(raw: &[u8]) -> (String, bool) {
    if raw.len() <= BadRow::RAW_LIMIT {
        return (String::from_utf8_lossy(raw).into_owned(), false);
    }
    let mut prefix = &raw[..BadRow::RAW_LIMIT];
    if let Err(error) = std::str::from_utf8(prefix) {
        if error.error_len().is_none() {
            prefix = &prefix[..error.valid_up_to()];
        }
    }
    (String::from_utf8_lossy(prefix).into_owned(), true)
}

/// An input file of a file source: opened without blocking, read without ever waiting, and
/// checked at its end for having been truncated, replaced or rewritten while it was read.
///
/// A regular file is read with ordinary reads. A FIFO, pipe, socket or character device is a
/// stream: a read first asks the kernel (a `poll` with no timeout) whether input or the end of
/// input is there, and if not fails at once with [`io::ErrorKind::WouldBlock`]. The sources
/// answer that by ending their batch, and their `next_batch` then awaits
/// [`readable`](Self::readable), which registers the descriptor with tokio's reactor: the task
/// sleeps until the writer writes or goes, with no timer, and a cancel reaches it meanwhile
/// because the supervisor drops that wait.
///
/// A read of a stream never tries `read` before `poll` says it may: a FIFO opened before its
/// writer reads as at its end (`read` returns 0) until a writer comes, while `poll` reports
/// nothing until a writer has come and written or gone.
pub(crate) struct InputFile {
    file: File,
    path: PathBuf,
    /// What the file was when it was opened; `None` for a stream, which has no length.
    opened: Option<Snapshot>,
    bytes_read: u64,
    /// Whether the last read of a stream found no input yet.
    would_block: bool,
    /// A duplicate of the stream's descriptor registered with tokio's reactor; made at the first
    /// wait, so opening and reading need no runtime.
    #[cfg(unix)]
    readiness: Option<tokio::io::unix::AsyncFd<File>>,
}

/// The facts about a regular file that tell whether it changed while it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    device: u64,
    inode: u64,
    length: u64,
    modified: Option<SystemTime>,
}

impl Snapshot {
    fn of(metadata: &Metadata) -> Self {
        #[cfg(unix)]
        let (device, inode) = {
            use std::os::unix::fs::MetadataExt;
            (metadata.dev(), metadata.ino())
        };
        #[cfg(not(unix))]
        let (device, inode) = (0, 0);
        Self {
            device,
            inode,
            length: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

/// How an input file changed while a source read it; the stage fails with this error, since
/// what was read is not the file as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum InputChanged {
    /// The file is shorter at the end of input than it was when opened, or than what was read.
    #[error(
        "input file `{}` was truncated while being read: {opened} bytes when opened, {now} bytes \
         at the end of input, after {read} bytes were read",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        opened: u64,
        now: u64,
        read: u64,
    },
    /// The path names another file (or none) at the end of input.
    #[error(
        "input file `{}` was replaced while being read: the path no longer names the file that \
         was opened",
        path.display()
    )]
    Replaced { path: PathBuf },
    /// The file has its length of the start but another modification time: it was rewritten.
    #[error(
        "input file `{}` was modified while being read: same length, new modification time",
        path.display()
    )]
    Modified { path: PathBuf },
}

impl InputFile {
    /// Opens `path` for reading. Opening never waits: a FIFO without a writer opens at once
    /// (its reads then find no input until one comes).
    pub(crate) fn open(path: &Path) -> Result<Self, HandlerFailure> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NONBLOCK);
        }
        let file = options
            .open(path)
            .map_err(|error| open_failure(path, error))?;
        let metadata = file.metadata().map_err(|error| read_failure(path, error))?;
        Ok(Self {
            opened: (!is_stream(&metadata)).then(|| Snapshot::of(&metadata)),
            file,
            path: path.to_owned(),
            bytes_read: 0,
            would_block: false,
            #[cfg(unix)]
            readiness: None,
        })
    }

    /// Whether the last read found a stream without input (it failed with
    /// [`io::ErrorKind::WouldBlock`]): the source should await [`readable`](Self::readable)
    /// before reading again.
    pub(crate) fn would_block(&self) -> bool {
        self.would_block
    }

    /// Waits until the stream has input or its writer is gone, without a timer: the task sleeps
    /// on the reactor until the kernel reports the descriptor readable. Returns at once for a
    /// file that is not waiting.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it reads nothing, so a dropped wait loses no input, and the next call
    /// waits again on the same registration.
    pub(crate) async fn readable(&mut self) -> io::Result<()> {
        #[cfg(unix)]
        if self.would_block {
            let readiness = match &mut self.readiness {
                Some(readiness) => readiness,
                slot @ None => {
                    let duplicate = self.file.try_clone()?;
                    // SAFETY: the `File` owns its descriptor and the `AsyncFd` owns the `File`:
                    // the descriptor stays open, and names the same file description, until the
                    // `AsyncFd` is dropped; nothing takes the `File` out or replaces it.
                    let registered = unsafe {
                        tokio::io::unix::AsyncFd::register_with_interest(
                            duplicate,
                            tokio::io::Interest::READABLE,
                        )
                    };
                    slot.insert(registered?)
                }
            };
            loop {
                let mut guard = readiness.readable().await?;
                // The reactor's readiness is an edge that may predate the last read; the
                // kernel's own answer decides, and a stale edge is cleared to wait for the next.
                if has_input(guard.get_inner())? {
                    guard.retain_ready();
                    break;
                }
                guard.clear_ready();
            }
            self.would_block = false;
        }
        Ok(())
    }

    /// Fails if the file changed since it was opened; called at the end of input.
    fn check_unchanged(&self) -> Result<(), InputChanged> {
        let Some(opened) = &self.opened else {
            return Ok(());
        };
        let path = self.path.clone();
        let now = match self.file.metadata() {
            Ok(metadata) => Snapshot::of(&metadata),
            // The file's own metadata cannot be read: nothing to compare, the read itself
            // reported no error.
            Err(_) => return Ok(()),
        };
        if now.length < opened.length.max(self.bytes_read) {
            return Err(InputChanged::Truncated {
                path,
                opened: opened.length,
                now: now.length,
                read: self.bytes_read,
            });
        }
        match std::fs::metadata(&self.path) {
            Ok(metadata) => {
                let named = Snapshot::of(&metadata);
                if (named.device, named.inode) != (opened.device, opened.inode) {
                    return Err(InputChanged::Replaced { path });
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(InputChanged::Replaced { path });
            }
            Err(_) => {}
        }
        if now.length == opened.length && now.modified != opened.modified {
            return Err(InputChanged::Modified { path });
        }
        Ok(())
    }

    #[cfg(unix)]
    fn read_stream(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.would_block = !has_input(&self.file)?;
        if self.would_block {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.file.read(buf) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                // Another reader of the FIFO took the input `poll` saw.
                self.would_block = true;
                Err(error)
            }
            read => read,
        }
    }
}

impl fmt::Debug for InputFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputFile")
            .field("path", &self.path)
            .field("opened", &self.opened)
            .field("bytes_read", &self.bytes_read)
            .finish_non_exhaustive()
    }
}

impl Read for InputFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let read = if self.opened.is_none() {
            self.read_stream(buf)?
        } else {
            self.file.read(buf)?
        };
        #[cfg(not(unix))]
        let read = self.file.read(buf)?;
        if read == 0 && !buf.is_empty() {
            self.check_unchanged().map_err(io::Error::other)?;
        }
        self.bytes_read += read as u64;
        Ok(read)
    }
}

/// Whether `metadata` is of a stream (FIFO, pipe, socket, character device) rather than a file
/// with a length.
fn is_stream(metadata: &Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = metadata.file_type();
        kind.is_fifo() || kind.is_socket() || kind.is_char_device()
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        false
    }
}

/// Whether `file` has input or is at its end (its writer gone), asked of the kernel without
/// waiting; a signal that interrupts the question counts as no input yet.
#[cfg(unix)]
fn has_input(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut poll_fd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `poll_fd` is one valid, initialised `pollfd` that outlives the call, and its
    // descriptor stays open for the call because `file` is borrowed. A timeout of 0 returns at
    // once.
    let ready = unsafe { libc::poll(&mut poll_fd, 1, 0) };
    match ready {
        0 => Ok(false),
        -1 => {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(error)
            }
        }
        _ => Ok(true),
    }
}

/// Whether `error` says a stream had no input yet.
pub(crate) fn is_would_block(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::WouldBlock
}

/// Strips a trailing `\n` or `\r\n` (and any leading line terminators a CSV record may start
/// with after blank lines).
pub(crate) fn trim_line_terminator(raw: &[u8]) -> &[u8] {
    let is_terminator = |byte: &u8| *byte == b'\n' || *byte == b'\r';
    let start = raw
        .iter()
        .position(|byte| !is_terminator(byte))
        .unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|byte| !is_terminator(byte))
        .map_or(start, |end| end + 1);
    &raw[start..end]
}

/// The stage failure for an input file that cannot be opened.
pub(crate) fn open_failure(path: &Path, error: io::Error) -> HandlerFailure {
    HandlerFailure::with_source(
        format!("cannot open input file `{}`", path.display()),
        error,
    )
}

/// The stage failure for an input file that cannot be read (a directory, an I/O error), or
/// that changed while it was read.
pub(crate) fn read_failure(path: &Path, error: io::Error) -> HandlerFailure {
    // The change names the file and is the whole story: it has no cause of its own, and the
    // `io::Error` carrying it would only print it a second time.
    if let Some(changed) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<InputChanged>())
    {
        return HandlerFailure::msg(changed.to_string());
    }
    HandlerFailure::with_source(
        format!("cannot read input file `{}`", path.display()),
        error,
    )
}

/// The stage failure for `next_batch` called before `initialize`.
pub(crate) fn not_opened(path: &Path) -> HandlerFailure {
    HandlerFailure::msg(format!(
        "input file `{}` is not open: `initialize` must run before `next_batch`",
        path.display()
    ))
}

/// A serde_json error without its `at line 1 column N` suffix, which is meaningless for a
/// single line: the column is kept, the line number is the file's.
pub(crate) fn describe_json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&suffix) {
        Some(message) => format!("{message} at column {}", error.column()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_terminators_are_trimmed() {
        assert_eq!(trim_line_terminator(b"a,b\r\n"), b"a,b");
        assert_eq!(trim_line_terminator(b"\n\na,b\n"), b"a,b");
        assert_eq!(trim_line_terminator(b"\r\n"), b"");
        assert_eq!(trim_line_terminator(b"x"), b"x");
    }

    #[test]
    fn json_errors_keep_the_column_only() {
        let error = serde_json::from_str::<serde_json::Value>("{\"a\": }").unwrap_err();
        assert_eq!(describe_json_error(&error), "expected value at column 7");
        let error = serde_json::from_str::<u64>("").unwrap_err();
        assert_eq!(
            describe_json_error(&error),
            "EOF while parsing a value at column 0"
        );
    }

    #[test]
    fn bad_rows_keep_the_raw_line_and_name_the_place() {
        let event = BadRow::new("in.csv", 4, b"1,\xff,3\n", false).into_event("bad field");
        let ProcessingStatus::Error { kind, message, .. } = &event.processing_info.status else {
            panic!("not an error: {event:?}");
        };
        assert_eq!(*kind, ErrorKind::Decode);
        assert_eq!(message, "in.csv:4: bad field");
        let row = BadRow::from_event(&event).unwrap();
        assert_eq!(row.raw, "1,\u{fffd},3");
        assert_eq!((row.file.as_str(), row.line), ("in.csv", 4));
    }
}
