//! Opening the small metadata files of a run directory (the manifest, the lock) without ever
//! blocking, following a link, or reading without bound, and unique temporary names.
//!
//! A run directory is data anyone may have damaged: a FIFO where the manifest should be would
//! block a plain `open` forever, and a link to `/dev/zero` would be read until memory runs out.
//! Every open here is non-blocking and refuses links, and everything that is not a regular file
//! is refused after the open, by `fstat` on the opened descriptor (so no file can be swapped in
//! between the check and the read).

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::run_dir::RunDirError;

/// The largest manifest read: far above any real one (a few KiB per hundred stages), far
/// below what would hurt to read.
pub(crate) const MANIFEST_LIMIT_BYTES: u64 = 1 << 20;

/// How a file that is not a regular one is described in errors: `a FIFO`, `a directory`, ...
fn describe(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Non-blocking, link-refusing open options: reading (or, with `write`, writing) a FIFO or a
/// device never waits, and a symbolic link fails the open instead of being followed.
fn guarded_options(write: bool) -> OpenOptions {
    let mut options = File::options();
    options.read(!write).write(write);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY);
    }
    options
}

/// Why `path` is not a regular file, if it is not one; `None` if it is one or is missing.
pub(crate) fn irregular(path: &Path) -> Option<&'static str> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    (!metadata.file_type().is_file()).then(|| describe(metadata.file_type()))
}

/// The error for `path`, which is not a regular file.
pub(crate) fn not_regular(path: &Path, found: &'static str) -> RunDirError {
    RunDirError::NotARegularFile {
        path: path.to_path_buf(),
        found,
    }
}

/// Opens `options` on `path` and checks, on the opened file, that it is a regular file; a
/// missing file is `Ok(None)` if `missing_ok`, an error otherwise.
fn open_checked(
    path: &Path,
    options: &OpenOptions,
    operation: &'static str,
    missing_ok: bool,
) -> Result<Option<File>, RunDirError> {
    let file = match options.open(path) {
        Ok(file) => file,
        Err(source) if missing_ok && source.kind() == io::ErrorKind::NotFound => return Ok(None),
        // `O_NOFOLLOW` fails a link with ELOOP (EMLINK on some systems), and a FIFO without a
        // reader opened for writing fails with ENXIO: say what the file is instead.
        Err(source) => {
            return Err(match irregular(path) {
                Some(found) => not_regular(path, found),
                None => io_error(operation, path, source),
            })
        }
    };
    let metadata = file
        .metadata()
        .map_err(|source| io_error("inspect", path, source))?;
    if !metadata.file_type().is_file() {
        return Err(not_regular(path, describe(metadata.file_type())));
    }
    Ok(Some(file))
}

/// Opens the regular file `path` for reading; a missing file is `Ok(None)`.
pub(crate) fn open_regular(path: &Path) -> Result<Option<File>, RunDirError> {
    open_checked(path, &guarded_options(false), "open", true)
}

/// Opens the regular file `path` for writing, never truncating it: with `create_new`, only if
/// it does not exist yet; otherwise creating it if needed.
pub(crate) fn open_regular_for_writing(path: &Path, create_new: bool) -> Result<File, RunDirError> {
    let mut options = guarded_options(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(false);
    }
    let file = open_checked(path, &options, "create", false)?;
    // Not `missing_ok`: a missing directory is an error above, never `None`.
    file.ok_or_else(|| io_error("create", path, io::Error::from(io::ErrorKind::NotFound)))
}

/// Reads `file` (at `path`) to its end, refusing more than `limit` bytes.
pub(crate) fn read_bounded(file: File, path: &Path, limit: u64) -> Result<Vec<u8>, RunDirError> {
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| io_error("read", path, source))?;
    if bytes.len() as u64 > limit {
        return Err(RunDirError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

/// A name no other process or thread picks: `<stem>.<pid>.<random>.tmp`, hidden by a leading
/// dot. Callers still create it with `create_new`, so a collision is an error, never a share.
///
/// ```text
/// .manifest.json.4242.9f3c21d07a6e55b1.tmp
/// ```
pub(crate) fn unique_temp_name(stem: &str) -> String {
    format!(".{stem}.{}.{:016x}.tmp", std::process::id(), random_u64())
}

/// Whether `name` is one [`unique_temp_name`] made: listings skip such entries.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// 64 random bits from the standard library's per-process randomly seeded hasher, mixed with
/// the time so two calls in one process differ too.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
}

/// `dir` joined with a fresh [`unique_temp_name`] of `stem`.
pub(crate) fn temp_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join(unique_temp_name(stem))
}

pub(crate) fn io_error(operation: &'static str, path: &Path, source: io::Error) -> RunDirError {
    RunDirError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_unique_and_recognized() {
        let first = unique_temp_name("manifest.json");
        let second = unique_temp_name("manifest.json");
        assert_ne!(first, second);
        assert!(first.contains(&std::process::id().to_string()), "{first}");
        assert!(is_temp_name(&first));
        assert!(!is_temp_name("manifest.json"));
        assert!(!is_temp_name("run_0190f1c2a3b47c8d9e0f112233445566"));
    }
}
