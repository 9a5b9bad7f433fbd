//! `cargo xtask crash [--runs N] [--seed S]`: the long version of the runtime's crash test.
//!
//! CI runs `obzenflow_runtime/tests/crash.rs` in debug with its default (fixed) seed: 24 kills
//! across the run and 6 in its first milliseconds. This runs the same test binary in release
//! mode with as many kills across the run as asked (200 by default), a quarter as many again
//! early (at spawn, around run-directory creation, while journals open) and, unless a seed is
//! given, the same fixed seed; the test prints one line per kill and a summary.

use crate::cmd;
use crate::error::XtaskError;

/// Kills in the long run, unless `--runs` says otherwise.
const DEFAULT_RUNS: u64 = 200;

/// What `cargo xtask crash` was asked for.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    runs: u64,
    seed: Option<String>,
}

impl Options {
    fn parse(arguments: &[String]) -> Result<Self, XtaskError> {
        let mut options = Self {
            runs: DEFAULT_RUNS,
            seed: None,
        };
        let mut rest = arguments.iter();
        while let Some(argument) = rest.next() {
            match argument.as_str() {
                "--runs" => {
                    let value = rest
                        .next()
                        .ok_or_else(|| invalid(argument, "needs a number"))?;
                    options.runs = value
                        .parse()
                        .ok()
                        .filter(|runs| *runs >= 1)
                        .ok_or_else(|| invalid(value, "is not a number of kills (1 or more)"))?;
                }
                "--seed" => {
                    let value = rest
                        .next()
                        .ok_or_else(|| invalid(argument, "needs a number"))?;
                    let parsed = match value.strip_prefix("0x") {
                        Some(hex) => u64::from_str_radix(hex, 16).is_ok(),
                        None => value.parse::<u64>().is_ok(),
                    };
                    if !parsed {
                        return Err(invalid(value, "is not a seed (decimal or 0x hex)"));
                    }
                    options.seed = Some(value.clone());
                }
                other => return Err(invalid(other, "is not an option (--runs N, --seed S)")),
            }
        }
        Ok(options)
    }
}

fn invalid(argument: &str, reason: &'static str) -> XtaskError {
    XtaskError::InvalidArgument {
        subcommand: "crash",
        argument: argument.to_owned(),
        reason,
    }
}

/// Runs the crash test binary in release mode with the requested kills.
pub(crate) fn run(arguments: &[String]) -> Result<(), XtaskError> {
    let options = Options::parse(arguments)?;
    let mut command = cmd::cargo([
        "test",
        "--release",
        "--locked",
        "-p",
        "obzenflow_runtime",
        "--features",
        "cli",
        "--test",
        "crash",
    ]);
    command.env("OBZENFLOW_CRASH_RUNS", options.runs.to_string());
    if let Some(seed) = &options.seed {
        command.env("OBZENFLOW_CRASH_SEED", seed);
    }
    cmd::run(&mut command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> Result<Options, XtaskError> {
        let arguments: Vec<String> = arguments.iter().map(|a| (*a).to_owned()).collect();
        Options::parse(&arguments)
    }

    #[test]
    fn options_default_to_200_runs_and_the_fixed_seed() {
        let options = parse(&[]).expect("valid");
        assert_eq!(
            options,
            Options {
                runs: 200,
                seed: None
            }
        );
        let options = parse(&["--runs", "30", "--seed", "0xff"]).expect("valid");
        assert_eq!(options.runs, 30);
        assert_eq!(options.seed.as_deref(), Some("0xff"));
    }

    #[test]
    fn bad_options_are_named() {
        for (arguments, named) in [
            (&["--runs"][..], "--runs"),
            (&["--runs", "0"][..], "0"),
            (&["--seed", "ten"][..], "ten"),
            (&["--fast"][..], "--fast"),
        ] {
            let error = parse(arguments).expect_err("invalid");
            assert!(error.to_string().contains(named), "{error}");
        }
    }
}
