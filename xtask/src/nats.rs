//! `cargo xtask nats`: makes sure a `nats-server` of version 2.9 or later is installed, for
//! the JetStream journal tests, example and benchmark.
//!
//! Where it is missing it is installed from Debian's packages (`apt-get update`, then
//! `apt-get install -y nats-server`; CI runs as root on a fresh Debian machine). Nothing is
//! downloaded any other way. `cargo xtask ci` runs this before the JetStream tests; a plain
//! `cargo test --features jetstream` without a server fails those tests with an error naming
//! this command.

use std::path::PathBuf;
use std::process::Command;

use crate::cmd;
use crate::error::XtaskError;

/// Where Debian installs the server (off a normal user's `PATH`).
const DEBIAN_BINARY: &str = "/usr/sbin/nats-server";

/// The oldest server version the JetStream backend is built and tested against.
const OLDEST: (u32, u32) = (2, 9);

/// The installed `nats-server`, if any: `$OBZENFLOW_NATS_SERVER`, the `PATH`, `/usr/sbin`.
pub(crate) fn find() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("OBZENFLOW_NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let debian = PathBuf::from(DEBIAN_BINARY);
        debian.is_file().then_some(debian)
    })
}

/// `major.minor` from `nats-server --version` output (`nats-server: v2.9.10`).
fn parse_version(output: &str) -> Option<(u32, u32)> {
    let version = output.trim().rsplit(' ').next()?.trim_start_matches('v');
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Installs `nats-server` from Debian's packages where it is missing, then checks its
/// version.
pub(crate) fn run() -> Result<(), XtaskError> {
    let binary = match find() {
        Some(binary) => binary,
        None => {
            println!("    nats-server is missing: installing the Debian package");
            cmd::run(Command::new("apt-get").arg("update"))?;
            cmd::run(
                Command::new("apt-get")
                    .args(["install", "-y", "--no-install-recommends", "nats-server"])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            )?;
            find().ok_or(XtaskError::NatsServer {
                reason:
                    "apt-get installed nats-server, but no binary is on the PATH or in /usr/sbin"
                        .to_owned(),
            })?
        }
    };
    let output = cmd::stdout_of(Command::new(&binary).arg("--version"))?;
    let output = String::from_utf8_lossy(&output);
    match parse_version(&output) {
        Some(version) if version >= OLDEST => {
            println!("    {} ({})", output.trim(), binary.display());
            Ok(())
        }
        _ => Err(XtaskError::NatsServer {
            reason: format!(
                "{} says `{}`; the JetStream backend needs {}.{} or later",
                binary.display(),
                output.trim(),
                OLDEST.0,
                OLDEST.1
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn server_versions_are_read_from_the_version_line() {
        assert_eq!(parse_version("nats-server: v2.9.10\n"), Some((2, 9)));
        assert_eq!(parse_version("nats-server: v2.10.1"), Some((2, 10)));
        assert_eq!(parse_version("garbage"), None);
        assert!(parse_version("nats-server: v2.8.4") < Some((2, 9)));
    }
}
