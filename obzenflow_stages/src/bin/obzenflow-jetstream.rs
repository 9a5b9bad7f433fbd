//! `obzenflow-jetstream`: `runs`, `inspect`, `validate` and `export` for runs whose journals are
//! on NATS JetStream; a thin shell around `obzenflow_stages::jetstream::run_cli` (feature
//! `jetstream`), which has the usage and the exit codes.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("obzenflow-jetstream: error: cannot start a tokio runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let stderr = std::io::stderr();
    let mut stderr = stderr.lock();
    let arguments = std::env::args();
    let exit = runtime.block_on(obzenflow_stages::jetstream::run_cli(
        arguments,
        &mut stdout,
        &mut stderr,
    ));
    let _ = stdout.flush();
    ExitCode::from(exit.code())
}
