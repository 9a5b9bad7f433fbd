//! `obzenflow`: list, inspect, validate and verify ObzenFlow run directories.
//!
//! A thin shell around [`obzenflow_runtime::cli::run`]; see that module for the usage and the
//! exit codes (0 success, 1 differences or damaged journals, 2 usage or I/O errors).

use std::io::{BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let stdout = std::io::stdout();
    let mut stdout = BufWriter::new(stdout.lock());
    let stderr = std::io::stderr();
    let mut stderr = stderr.lock();
    let exit = obzenflow_runtime::cli::run(std::env::args_os(), &mut stdout, &mut stderr);
    // `run` flushed what it wrote; a failure here is a closed pipe after the last line.
    let _ = stdout.flush();
    ExitCode::from(exit.code())
}
