//! What the file sinks share: atomic finish (write `<path>.<pid>.<random>.tmp`, rename on
//! drain), byte counting for receipts, and write failures that are recorded rather than lost.
//!
//! During a replay ([`FlowBuilder::replay_from`]) a file sink writes under
//! `<dir>/replays/<replay run id>/<file name>` instead of `<dir>/<file name>`, so the original
//! run's output is left as it was; its delivery receipt, and so the run report, names the new
//! place. [`FileSinkConfig::overwrite_on_replay`](field@FileSinkConfig::overwrite_on_replay) opts out.
//!
//! [`FlowBuilder::replay_from`]: obzenflow_runtime::pipeline::FlowBuilder::replay_from
//!
//! The temporary name is unique to one sink in one process and is created with `create_new`:
//! two runs writing the same output at once never share (or truncate) each other's temporary
//! file; the last to drain wins the rename, and each rename installs a complete file.

use std::ffi::OsString;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use obzenflow_core::{DeliveryReceipt, ErrorKind};
use obzenflow_runtime::stages::{HandlerFailure, RecordError, RunEnvironment};

/// How a file sink writes its file.
///
/// ```
/// use obzenflow_stages::sinks::{FileSinkConfig, JsonLinesSink};
///
/// // Write in place, so the file can be followed while the flow runs.
/// let config = FileSinkConfig { atomic: false, ..FileSinkConfig::default() };
/// let sink = JsonLinesSink::new("live.jsonl").with_config(config);
///
/// // Let a replay overwrite the original run's output instead of writing under `replays/`.
/// let sink = JsonLinesSink::new("out/rows.jsonl")
///     .with_config(FileSinkConfig::default().overwrite_on_replay(true));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSinkConfig {
    /// Write to a temporary file of a unique name (`<path>.<pid>.<random>.tmp`) and rename it to
    /// `<path>` when the flow drains (the default), so `<path>` only ever holds a complete
    /// output. When `false`, write `<path>` directly.
    pub atomic: bool,
    /// Create missing parent directories; `true` by default. (The `replays/<run id>`
    /// directories of a replay's outputs are created either way.)
    pub create_dirs: bool,
    /// During a replay, write `<path>` itself, overwriting the original run's output; `false`
    /// by default, when a replay writes `<dir>/replays/<replay run id>/<file name>` instead
    /// ([`RunEnvironment::replay_output_path`]) and leaves `<path>` as it was.
    pub overwrite_on_replay: bool,
}

impl FileSinkConfig {
    /// The same configuration with [`overwrite_on_replay`](field@Self::overwrite_on_replay) set.
    pub const fn overwrite_on_replay(mut self, overwrite: bool) -> Self {
        self.overwrite_on_replay = overwrite;
        self
    }
}

impl Default for FileSinkConfig {
    fn default() -> Self {
        Self {
            atomic: true,
            create_dirs: true,
            overwrite_on_replay: false,
        }
    }
}

/// A writer that counts the bytes that reach it.
#[derive(Debug)]
pub(crate) struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The output file of a sink: where it is written, whether it was committed, and the first
/// write failure.
#[derive(Debug)]
pub(crate) struct OutputFile {
    /// The path the sink was given.
    requested: PathBuf,
    /// The path written: `requested`, or during a replay its place under `replays/`.
    path: PathBuf,
    /// Whether `path` was moved for a replay.
    redirected: bool,
    write_path: PathBuf,
    config: FileSinkConfig,
    created: bool,
    committed: bool,
    failure: Option<io::Error>,
}

impl OutputFile {
    pub(crate) fn new(path: PathBuf, config: FileSinkConfig) -> Self {
        let write_path = if config.atomic {
            temp_path(&path)
        } else {
            path.clone()
        };
        Self {
            requested: path.clone(),
            path,
            redirected: false,
            write_path,
            config,
            created: false,
            committed: false,
            failure: None,
        }
    }

    pub(crate) fn set_config(&mut self, config: FileSinkConfig) {
        *self = Self::new(std::mem::take(&mut self.requested), config);
    }

    /// Moves the output of a replay to its own place unless configured to overwrite; called
    /// before [`create`](Self::create).
    pub(crate) fn prepare(&mut self, run: &RunEnvironment) {
        let Some(original) = run.replay_of() else {
            return;
        };
        if self.config.overwrite_on_replay {
            tracing::warn!(
                stage = run.stage(),
                path = %self.requested.display(),
                replay_of = %original.run_id,
                "replay overwrites the original run's output (overwrite_on_replay)"
            );
            return;
        }
        let Some(moved) = run.replay_output_path(&self.requested) else {
            return;
        };
        tracing::info!(
            stage = run.stage(),
            original = %self.requested.display(),
            path = %moved.display(),
            replay_of = %original.run_id,
            "replay writes its output to a separate place"
        );
        let requested = std::mem::take(&mut self.requested);
        *self = Self::new(moved, self.config);
        self.requested = requested;
        self.redirected = true;
    }

    /// The final path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the file written to (a new temporary file, or, not atomic, `path` truncated), and its parent directories if configured.
    pub(crate) fn create(&mut self) -> Result<Counting<File>, HandlerFailure> {
        let parent = self
            .write_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty());
        if let (true, Some(parent)) = (self.config.create_dirs || self.redirected, parent) {
            fs::create_dir_all(parent).map_err(|error| {
                let message = format!("cannot create directory `{}`", parent.display());
                HandlerFailure::with_source(message, error)
            })?;
        }
        let mut options = File::options();
        options.write(true);
        if self.config.atomic {
            // Never an existing file: a name another writer holds is theirs.
            options.create_new(true);
        } else {
            options.create(true).truncate(true);
        }
        let file = options.open(&self.write_path).map_err(|error| {
            let message = format!("cannot create output file `{}`", self.write_path.display());
            HandlerFailure::with_source(message, error)
        })?;
        self.created = true;
        Ok(Counting {
            inner: file,
            bytes: 0,
        })
    }

    /// Fails fast once a write has failed: every later record goes to the error lane too.
    pub(crate) fn check(&self) -> Result<(), RecordError> {
        match &self.failure {
            Some(error) => Err(self.record_error(error)),
            None => Ok(()),
        }
    }

    /// Records a write failure; the record being written goes to the error lane.
    pub(crate) fn write_failed(&mut self, error: io::Error) -> RecordError {
        let record_error = self.record_error(&error);
        self.failure.get_or_insert(error);
        record_error
    }

    fn record_error(&self, error: &io::Error) -> RecordError {
        RecordError::new(
            ErrorKind::Other,
            format!("cannot write `{}`: {error}", self.write_path.display()),
        )
    }

    /// The record error for a record consumed before `initialize`.
    pub(crate) fn not_open(&self) -> RecordError {
        RecordError::new(
            ErrorKind::Other,
            format!(
                "output file `{}` is not open: `initialize` must run first",
                self.path.display()
            ),
        )
    }

    /// Fails the stage with the first write failure, if there was one.
    pub(crate) fn fail_if_broken(&mut self) -> Result<(), HandlerFailure> {
        match self.failure.take() {
            Some(error) => Err(self.failure_of(error)),
            None => Ok(()),
        }
    }

    fn failure_of(&self, error: io::Error) -> HandlerFailure {
        let message = format!("cannot write `{}`", self.write_path.display());
        HandlerFailure::with_source(message, error)
    }

    /// Syncs the flushed file and moves it to its final path.
    pub(crate) fn commit(&mut self, file: Counting<File>) -> Result<u64, HandlerFailure> {
        self.fail_if_broken()?;
        file.inner
            .sync_all()
            .map_err(|error| self.failure_of(error))?;
        if self.config.atomic {
            fs::rename(&self.write_path, &self.path).map_err(|error| {
                let message = format!(
                    "cannot rename `{}` to `{}`",
                    self.write_path.display(),
                    self.path.display()
                );
                HandlerFailure::with_source(message, error)
            })?;
        }
        self.committed = true;
        Ok(file.bytes)
    }

    /// The receipt for `records` records and `bytes` bytes delivered to this file.
    pub(crate) fn receipt(&self, records: u64, bytes: u64) -> DeliveryReceipt {
        DeliveryReceipt {
            destination: self.path.display().to_string(),
            records,
            bytes,
        }
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // An atomic sink that never committed (the flow failed or was cancelled) removes its
        // partial file so only complete outputs are ever left behind. Failing to remove it
        // leaves a stray temporary file, which no later run reads or reuses.
        if self.config.atomic && self.created && !self.committed {
            let _ = fs::remove_file(&self.write_path);
        }
    }
}

/// `<path>.<pid>.<random>.tmp`: a name no other sink, run or process picks.
fn temp_path(path: &Path) -> PathBuf {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    hasher.write_u128(nanos);
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(
        ".{}.{:016x}.tmp",
        std::process::id(),
        hasher.finish()
    ));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The temporary files in `dir`.
    fn temp_files(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "tmp"))
            .collect()
    }

    #[test]
    fn two_writers_of_one_path_never_share_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut first = OutputFile::new(path.clone(), FileSinkConfig::default());
        let mut second = OutputFile::new(path.clone(), FileSinkConfig::default());
        assert_ne!(first.write_path, second.write_path);
        let name = first
            .write_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.contains(&std::process::id().to_string()), "{name}");
        let mut first_file = first.create().unwrap();
        let mut second_file = second.create().unwrap();
        first_file.write_all(b"first, longer output\n").unwrap();
        second_file.write_all(b"second\n").unwrap();
        // Each commit installs a whole file: neither truncated nor mixed with the other.
        first.commit(first_file).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "first, longer output\n");
        second.commit(second_file).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second\n");
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn a_replay_moves_the_output_under_replays_even_without_create_dirs() {
        use obzenflow_core::RunId;
        use obzenflow_runtime::stages::ReplayOf;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let config = FileSinkConfig {
            create_dirs: false,
            ..FileSinkConfig::default()
        };
        let original = ReplayOf {
            run_id: RunId::new(),
            run_dir: dir.path().join("runs/original"),
        };
        let live = RunEnvironment::new("out", RunId::new());
        let replay = RunEnvironment::new("out", RunId::new()).replaying(original);

        let mut output = OutputFile::new(path.clone(), config);
        output.prepare(&live);
        assert_eq!(output.path(), path);

        let mut output = OutputFile::new(path.clone(), config);
        output.prepare(&replay);
        let moved = dir
            .path()
            .join("replays")
            .join(replay.run_id().to_string())
            .join("out.txt");
        assert_eq!(output.path(), moved);
        let mut file = output.create().unwrap();
        file.write_all(b"replayed\n").unwrap();
        output.commit(file).unwrap();
        assert_eq!(fs::read_to_string(&moved).unwrap(), "replayed\n");
        assert!(!path.exists());
        assert_eq!(
            output.receipt(1, 9).destination,
            moved.display().to_string()
        );

        let mut output = OutputFile::new(path.clone(), config.overwrite_on_replay(true));
        output.prepare(&replay);
        assert_eq!(output.path(), path);
    }

    #[test]
    fn an_existing_temporary_name_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut output = OutputFile::new(dir.path().join("out.txt"), FileSinkConfig::default());
        fs::write(&output.write_path, "someone else's").unwrap();
        assert!(output.create().is_err());
        assert_eq!(
            fs::read_to_string(&output.write_path).unwrap(),
            "someone else's"
        );
    }

    #[test]
    fn atomic_files_appear_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/out.txt");
        let mut output = OutputFile::new(path.clone(), FileSinkConfig::default());
        let mut file = output.create().unwrap();
        file.write_all(b"hello\n").unwrap();
        assert_eq!(
            temp_files(&dir.path().join("nested")),
            [output.write_path.clone()]
        );
        assert!(!path.exists());
        assert_eq!(output.commit(file).unwrap(), 6);
        assert_eq!(fs::read_to_string(&path).unwrap(), "hello\n");
        assert!(temp_files(&dir.path().join("nested")).is_empty());
    }

    #[test]
    fn an_uncommitted_atomic_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut output = OutputFile::new(path.clone(), FileSinkConfig::default());
        let _file = output.create().unwrap();
        drop(output);
        assert!(temp_files(dir.path()).is_empty());
        assert!(!path.exists());
    }

    #[test]
    fn a_write_failure_fails_later_records_and_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut output = OutputFile::new(dir.path().join("out.txt"), FileSinkConfig::default());
        let file = output.create().unwrap();
        let error = output.write_failed(io::Error::other("disk full"));
        let expected = format!("cannot write `{}`: disk full", output.write_path.display());
        assert_eq!(error.message, expected);
        assert_eq!(output.check().unwrap_err().message, expected);
        let failure = output.commit(file).unwrap_err();
        let expected = format!("cannot write `{}`", output.write_path.display());
        assert_eq!(failure.message, expected);
        assert_eq!(
            failure.source.map(|source| source.to_string()).as_deref(),
            Some("disk full")
        );
    }
}
