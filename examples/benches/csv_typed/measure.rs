//! What the process measures about itself, from Linux's `/proc`: CPU time and peak resident
//! set size, plus the bytes of a run's journal segment files. The flow benchmark of
//! `obzenflow_runtime` measures the same way (its `benches/flow/measure.rs`); a benchmark
//! cannot import another package's benchmark, so the few lines are repeated here.

use std::fs;
use std::path::Path;

use crate::BenchError;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on every Linux target).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;
/// The extension of journal segment files.
const SEGMENT_EXTENSION: &str = "seg";

/// User plus system CPU seconds the whole process (every thread) has used so far, from
/// `/proc/self/stat`, at a resolution of 10 ms.
pub(crate) fn cpu_seconds() -> Result<f64, BenchError> {
    let stat = fs::read_to_string("/proc/self/stat")?;
    // The command name, in parentheses, may hold spaces: count fields after its closing one.
    let (_, fields) = stat
        .rsplit_once(')')
        .ok_or("/proc/self/stat has no command name")?;
    let fields: Vec<&str> = fields.split_whitespace().collect();
    // After the name come state (field 3 of proc(5)), ..., utime (14) and stime (15).
    let ticks = |index: usize| -> Result<f64, BenchError> {
        let field = fields
            .get(index - 3)
            .ok_or("/proc/self/stat is shorter than proc(5) says")?;
        Ok(field.parse::<u64>()? as f64)
    };
    Ok((ticks(14)? + ticks(15)?) / CLOCK_TICKS_PER_SECOND)
}

/// The process's peak resident set size in KiB (`VmHWM` of `/proc/self/status`).
pub(crate) fn peak_rss_kib() -> Result<u64, BenchError> {
    let status = fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .ok_or("/proc/self/status has no VmHWM line")?;
    let kib = line.trim().trim_end_matches("kB").trim();
    Ok(kib.parse()?)
}

/// The total size of the segment files under `dir`, at any depth.
pub(crate) fn segment_bytes(dir: &Path) -> Result<u64, BenchError> {
    let mut bytes = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let metadata = entry.metadata()?;
        if metadata.is_dir() {
            bytes += segment_bytes(&path)?;
        } else if path.extension().is_some_and(|ext| ext == SEGMENT_EXTENSION) {
            bytes += metadata.len();
        }
    }
    Ok(bytes)
}
