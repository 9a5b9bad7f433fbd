//! `FlowReport`: what a run did, per stage, in numbers a person can check.
//!
//! The numbers come from the metrics aggregator's final snapshot ([`FlowReport::metrics`]); the
//! `Display` form is the run summary printed at the end of a run.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use obzenflow_core::{ErrorChain, RunId};
use obzenflow_fsm::StateVariant;

use super::failure::FlowFailure;
use super::fsm::FlowState;
use super::outcome::{Finding, Outcome};
use crate::metrics::{ErrorCounts, FlowSnapshot, StageSnapshot};
use crate::stages::{StageKind, StageState};

/// The outcome of one run of a flow.
///
/// ```no_run
/// # async fn show(flow: obzenflow_runtime::pipeline::Flow) -> Result<(), obzenflow_runtime::pipeline::FlowError> {
/// let report = flow.run().await?;
/// println!("{report}");
/// for stage in &report.stages {
///     println!("{}: p99 {:?}, errors: {}", stage.name, stage.processing_p99, stage.errors_by_kind);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a report says whether the flow succeeded; check `is_success()`"]
pub struct FlowReport {
    /// The flow's name.
    pub flow_name: String,
    /// The run's id.
    pub run_id: RunId,
    /// How the flow ended.
    pub state: FlowState,
    /// Wall-clock time from start to the last stage finishing.
    pub duration: Duration,
    /// One entry per stage, in declaration order.
    pub stages: Vec<StageReport>,
    /// Where the journals are, for disk journals.
    pub run_dir: Option<PathBuf>,
    /// The durability guarantee of the journals, e.g. "group commit every 50 ms".
    pub durability: String,
    /// What a run promises about delivery when it is interrupted and the flow is run again.
    pub guarantee: DeliveryGuarantee,
    /// Earlier runs of this flow under the same base directory whose process died before they
    /// ended (crashed or killed). This run did not resume them: it started again from the
    /// sources.
    pub earlier_incomplete_runs: Vec<PathBuf>,
    /// The final metrics snapshot the stage numbers are taken from, with the edges' lag and
    /// the full processing-time histograms.
    pub metrics: FlowSnapshot,
    /// What in a drained run's counts means it did not do its job (empty unless the flow
    /// drained), not counting the findings the flow declared acceptable; any makes the run
    /// not a success. See [`FlowReport::outcome`].
    pub findings: Vec<Finding>,
    /// The findings the flow declared acceptable with
    /// [`FlowBuilder::accept`](super::FlowBuilder::accept): reported, not held against it.
    pub accepted_findings: Vec<Finding>,
}

/// What a flow promises about delivery across an interruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryGuarantee {
    /// A run that is killed or crashes is not resumed: its run directory stays as it was
    /// (reported as incomplete) and running the flow again starts a new run that reads its
    /// sources from the beginning. Every source record is processed at least once; records the
    /// interrupted run already processed (and, for sinks with outside effects, delivered) are
    /// processed again. Within one run, no journal holds a record twice.
    AtLeastOnceFromSource,
}

impl fmt::Display for DeliveryGuarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AtLeastOnceFromSource => f.write_str(
                "at-least-once from the source: an interrupted run is not resumed; running the \
                 flow again re-reads its sources from the start",
            ),
        }
    }
}

/// The outcome of one stage.
#[derive(Debug, Clone)]
pub struct StageReport {
    /// The stage's name.
    pub name: String,
    /// The stage's kind.
    pub kind: StageKind,
    /// How the stage ended.
    pub state: StageState,
    /// Data records read (produced, for a source).
    pub records_in: u64,
    /// Data records written downstream (delivered, for a sink).
    pub records_out: u64,
    /// Records put on the error lane.
    pub records_errored: u64,
    /// Errored records per kind; they add up to `records_errored`.
    pub errors_by_kind: ErrorCounts,
    /// Records that produced no output.
    pub records_filtered: u64,
    /// Time from the stage starting to it finishing.
    pub duration: Duration,
    /// Input records per second of the stage's running time.
    pub throughput: f64,
    /// Median handler time per record; zero for sources and when metrics are disabled.
    pub processing_p50: Duration,
    /// 99th percentile of the handler time per record; zero for sources and when metrics are
    /// disabled.
    pub processing_p99: Duration,
    /// How many appends waited for a slow downstream reader.
    pub backpressure_waits: u64,
    /// How long appends waited for slow downstream readers, in total.
    pub backpressure_wait: Duration,
    /// The first few error-lane records' reasons, for the summary: `kind: message`, then
    /// `(from file:line)` for a record whose source knew its input position (see
    /// [`ChainEvent::origin`](obzenflow_core::ChainEvent::origin())) when the message does not
    /// already start with it.
    pub first_errors: Vec<String>,
    /// What a sink said it delivered (destination, records, bytes).
    pub receipts: Vec<obzenflow_core::DeliveryReceipt>,
    /// The state its handler held at the end, and at its peak (keys, records), for a handler
    /// that reports it (joins, for instance); the report prints it under the table.
    pub state_size: Option<crate::stages::StateGauge>,
}

impl StageReport {
    /// The report of a stage from its final snapshot and its first error reasons.
    pub(crate) fn from_snapshot(
        stage: &StageSnapshot,
        first_errors: Vec<String>,
        receipts: Vec<obzenflow_core::DeliveryReceipt>,
    ) -> Self {
        Self {
            name: stage.name.clone(),
            kind: stage.kind,
            state: stage.state.clone(),
            records_in: stage.records_in,
            records_out: stage.records_out,
            records_errored: stage.records_errored,
            errors_by_kind: stage.errors_by_kind,
            records_filtered: stage.records_filtered,
            duration: stage.duration,
            throughput: stage.throughput(),
            processing_p50: stage.processing_time.p50(),
            processing_p99: stage.processing_time.p99(),
            backpressure_waits: stage.backpressure_waits,
            backpressure_wait: stage.backpressure_wait,
            first_errors,
            receipts,
            state_size: stage.state_size,
        }
    }
}

impl FlowReport {
    /// Whether the run is a success: the flow drained and has no [`findings`](Self::findings)
    /// (a stage that rejected every record it read, a sink that received nothing while its
    /// sources produced records), unless it declared them acceptable. Records on error lanes
    /// alone do not make a run unsuccessful; see [`outcome`](Self::outcome).
    pub fn is_success(&self) -> bool {
        matches!(self.state, FlowState::Drained) && self.findings.is_empty()
    }

    /// What the run amounts to: completed, completed with records on error lanes,
    /// unsuccessful (drained, with findings naming the stages and why), failed or cancelled.
    ///
    /// ```no_run
    /// use obzenflow_runtime::pipeline::Outcome;
    ///
    /// # async fn show(flow: obzenflow_runtime::pipeline::Flow) -> Result<(), obzenflow_runtime::pipeline::FlowError> {
    /// let report = flow.run().await?;
    /// match report.outcome() {
    ///     Outcome::Completed => println!("every record went through"),
    ///     Outcome::CompletedWithErrors { errored } => println!("{errored} records on error lanes"),
    ///     Outcome::Unsuccessful { findings } => {
    ///         for finding in findings {
    ///             println!("`{}`: {finding}", finding.stage());
    ///         }
    ///     }
    ///     other => println!("{other:?}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn outcome(&self) -> Outcome {
        match &self.state {
            FlowState::Drained if !self.findings.is_empty() => Outcome::Unsuccessful {
                findings: self.findings.clone(),
            },
            FlowState::Drained => match self.records_errored() {
                0 => Outcome::Completed,
                errored => Outcome::CompletedWithErrors { errored },
            },
            FlowState::Failed { failure } => Outcome::Failed(failure.clone()),
            FlowState::Cancelled { reason } => Outcome::Cancelled {
                reason: reason.clone(),
            },
            other => Outcome::Cancelled {
                reason: format!("the flow ended while {}", other.variant_name()),
            },
        }
    }

    /// Records on all stages' error lanes together.
    pub fn records_errored(&self) -> u64 {
        self.stages.iter().map(|stage| stage.records_errored).sum()
    }

    /// Why the flow failed, if it failed: which stage and its typed cause, down to a handler's
    /// own error.
    ///
    /// ```no_run
    /// use obzenflow_runtime::stages::FailureKind;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("sensor {0} is unplugged")]
    /// struct Unplugged(u32);
    ///
    /// # async fn run(flow: obzenflow_runtime::pipeline::Flow) -> Result<(), obzenflow_runtime::pipeline::FlowError> {
    /// let report = flow.run().await?;
    /// if let Some(failure) = report.failure() {
    ///     let stage = failure.stage_failure().map(|stage| (stage.stage(), stage.kind()));
    ///     if let (Some((name, FailureKind::Handler)), Some(Unplugged(sensor))) =
    ///         (stage, failure.downcast_ref::<Unplugged>())
    ///     {
    ///         println!("`{name}` lost sensor {sensor}");
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn failure(&self) -> Option<&FlowFailure> {
        match &self.state {
            FlowState::Failed { failure } => Some(failure),
            _ => None,
        }
    }

    /// The report of the stage named `name` (a name, or the stage's
    /// [`StageRef`](super::StageRef)).
    pub fn stage(&self, name: impl AsRef<str>) -> Option<&StageReport> {
        let name = name.as_ref();
        self.stages.iter().find(|stage| stage.name == name)
    }

    /// Records produced by all sources.
    pub fn source_records(&self) -> u64 {
        self.stages
            .iter()
            .filter(|stage| stage.kind.is_source())
            .map(|stage| stage.records_in)
            .sum()
    }

    /// Source records per second over the run.
    pub fn throughput(&self) -> f64 {
        let seconds = self.duration.as_secs_f64();
        if seconds > 0.0 {
            self.source_records() as f64 / seconds
        } else {
            0.0
        }
    }

    /// The final snapshot in the Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        self.metrics.to_prometheus()
    }
}

impl fmt::Display for FlowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match self.outcome() {
            Outcome::Completed => "completed".to_owned(),
            Outcome::CompletedWithErrors { errored } => {
                let at: Vec<String> = self
                    .stages
                    .iter()
                    .filter(|stage| stage.records_errored > 0)
                    .map(|stage| format!("{}: {}", stage.name, grouped(stage.records_errored)))
                    .collect();
                format!(
                    "completed with {} {} on error lanes ({})",
                    grouped(errored),
                    if errored == 1 { "record" } else { "records" },
                    at.join(", ")
                )
            }
            Outcome::Unsuccessful { .. } => {
                "NOT A SUCCESS: every stage drained, but the run did not do its job".to_owned()
            }
            Outcome::Failed(failure) => format!("FAILED: {}", ErrorChain::new(&failure)),
            Outcome::Cancelled { reason } => format!("cancelled: {reason}"),
        };
        writeln!(
            f,
            "flow `{}` run {}: {outcome}",
            self.flow_name, self.run_id
        )?;
        for finding in &self.findings {
            writeln!(f, "  NOT A SUCCESS: {finding}")?;
        }
        for finding in &self.accepted_findings {
            writeln!(f, "  accepted (declared by the flow): {finding}")?;
        }
        writeln!(
            f,
            "  {} source records in {:.2?} ({} records/s)",
            grouped(self.source_records()),
            self.duration,
            grouped(self.throughput().round() as u64)
        )?;
        write_table(f, &self.stages)?;
        write_state_sizes(f, &self.stages)?;
        write_errors(f, &self.stages)?;
        write_receipts(f, &self.stages)?;
        let lagging: Vec<String> = self
            .metrics
            .edges
            .iter()
            .filter(|edge| edge.lag > 0)
            .map(|edge| format!("{} -> {}: {}", edge.from, edge.to, grouped(edge.lag)))
            .collect();
        if !lagging.is_empty() {
            writeln!(f, "  unread records left on edges: {}", lagging.join(", "))?;
        }
        writeln!(f, "  durability: {}", self.durability)?;
        writeln!(f, "  guarantee: {}", self.guarantee)?;
        for earlier in &self.earlier_incomplete_runs {
            writeln!(
                f,
                "  earlier run {} of this flow is incomplete (its process died); this run \
                 started again from the sources",
                earlier.display()
            )?;
        }
        match &self.run_dir {
            Some(path) => write!(f, "  journals: {}", path.display()),
            None => write!(f, "  journals: in memory"),
        }
    }
}

/// The per-stage table: the columns people rely on (in, out, errors, filtered, state, time),
/// then throughput, processing-time percentiles and backpressure.
fn write_table(f: &mut fmt::Formatter<'_>, stages: &[StageReport]) -> fmt::Result {
    writeln!(
        f,
        "  {:<20} {:<9} {:>11} {:>11} {:>8} {:>9}  {:<10} {:>9} {:>11} {:>8} {:>8}  backpressure",
        "stage",
        "kind",
        "in",
        "out",
        "errors",
        "filtered",
        "state",
        "time",
        "records/s",
        "p50 µs",
        "p99 µs",
    )?;
    for stage in stages {
        let timed = !stage.processing_p99.is_zero();
        writeln!(
            f,
            "  {:<20} {:<9} {:>11} {:>11} {:>8} {:>9}  {:<10} {:>9} {:>11} {:>8} {:>8}  {}",
            stage.name,
            stage.kind.as_str(),
            grouped(stage.records_in),
            grouped(stage.records_out),
            grouped(stage.records_errored),
            grouped(stage.records_filtered),
            stage.state.variant_name(),
            format!("{:.2?}", stage.duration),
            grouped(stage.throughput.round() as u64),
            if timed {
                micros(stage.processing_p50)
            } else {
                "-".to_owned()
            },
            if timed {
                micros(stage.processing_p99)
            } else {
                "-".to_owned()
            },
            backpressure(stage)
        )?;
    }
    Ok(())
}

/// The state gauge of every stage whose handler reports one.
fn write_state_sizes(f: &mut fmt::Formatter<'_>, stages: &[StageReport]) -> fmt::Result {
    for stage in stages {
        if let Some(gauge) = &stage.state_size {
            writeln!(f, "  state held by `{}`: {gauge}", stage.name)?;
        }
    }
    Ok(())
}

/// Error kinds and first reasons of every stage that errored, then failure reasons.
fn write_errors(f: &mut fmt::Formatter<'_>, stages: &[StageReport]) -> fmt::Result {
    for stage in stages.iter().filter(|stage| stage.records_errored > 0) {
        writeln!(
            f,
            "  errors at `{}`: {} ({})",
            stage.name,
            grouped(stage.records_errored),
            stage.errors_by_kind
        )?;
        for reason in &stage.first_errors {
            writeln!(f, "    - {reason}")?;
        }
    }
    for stage in stages {
        match &stage.state {
            StageState::Failed { failure } => writeln!(f, "  {}", ErrorChain::new(failure))?,
            StageState::Cancelled { reason } => {
                writeln!(f, "  stage `{}`: {reason}", stage.name)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// What each sink said it delivered.
fn write_receipts(f: &mut fmt::Formatter<'_>, stages: &[StageReport]) -> fmt::Result {
    for stage in stages {
        for receipt in &stage.receipts {
            writeln!(
                f,
                "  `{}` delivered {} records ({} bytes) to {}",
                stage.name,
                grouped(receipt.records),
                grouped(receipt.bytes),
                receipt.destination
            )?;
        }
    }
    Ok(())
}

/// `12 waits, 3.40ms`, or `-` when appends never waited.
fn backpressure(stage: &StageReport) -> String {
    match stage.backpressure_waits {
        0 => "-".to_owned(),
        1 => format!("1 wait, {:.2?}", stage.backpressure_wait),
        waits => format!("{} waits, {:.2?}", grouped(waits), stage.backpressure_wait),
    }
}

/// A duration in microseconds: one decimal below a millisecond, whole above.
fn micros(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1_000.0 {
        format!("{micros:.1}")
    } else {
        grouped(micros.round() as u64)
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn micros_keep_one_decimal_below_a_millisecond() {
        assert_eq!(micros(Duration::from_nanos(51_200)), "51.2");
        assert_eq!(micros(Duration::from_micros(12_345)), "12,345");
    }
}
