//! `FlowReport`: what a run did, per stage, in numbers a person can check.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use obzenflow_core::RunId;

use super::fsm::FlowState;
use crate::stages::{StageKind, StageState};

/// The outcome of one run of a flow.
#[derive(Debug, Clone)]
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
    /// Records that produced no output.
    pub records_filtered: u64,
    /// Time from the stage starting to it finishing.
    pub duration: Duration,
    /// The first few error-lane records' reasons, for the summary.
    pub first_errors: Vec<String>,
}

impl FlowReport {
    /// Whether the flow drained.
    pub fn is_success(&self) -> bool {
        matches!(self.state, FlowState::Drained)
    }

    /// The report of the stage named `name`.
    pub fn stage(&self, name: &str) -> Option<&StageReport> {
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
}

impl fmt::Display for FlowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match &self.state {
            FlowState::Drained => "completed".to_owned(),
            FlowState::Failed { reason } => format!("FAILED: {reason}"),
            FlowState::Cancelled { reason } => format!("cancelled: {reason}"),
            other => format!("{other:?}"),
        };
        writeln!(
            f,
            "flow `{}` run {}: {outcome}",
            self.flow_name, self.run_id
        )?;
        writeln!(
            f,
            "  {} source records in {:.2?} ({:.0} records/s)",
            self.source_records(),
            self.duration,
            self.throughput()
        )?;
        writeln!(
            f,
            "  {:<20} {:<9} {:>10} {:>10} {:>8} {:>9}  {:<10} {:>9}",
            "stage", "kind", "in", "out", "errors", "filtered", "state", "time"
        )?;
        for stage in &self.stages {
            writeln!(
                f,
                "  {:<20} {:<9} {:>10} {:>10} {:>8} {:>9}  {:<10} {:>9.2?}",
                stage.name,
                stage.kind.as_str(),
                stage.records_in,
                stage.records_out,
                stage.records_errored,
                stage.records_filtered,
                obzenflow_fsm::StateVariant::variant_name(&stage.state),
                stage.duration
            )?;
        }
        for stage in self
            .stages
            .iter()
            .filter(|stage| !stage.first_errors.is_empty())
        {
            writeln!(
                f,
                "  errors at `{}` (first {}):",
                stage.name,
                stage.first_errors.len()
            )?;
            for reason in &stage.first_errors {
                writeln!(f, "    - {reason}")?;
            }
        }
        for stage in &self.stages {
            if let StageState::Failed { reason } | StageState::Cancelled { reason } = &stage.state {
                writeln!(f, "  stage `{}`: {reason}", stage.name)?;
            }
        }
        writeln!(f, "  durability: {}", self.durability)?;
        match &self.run_dir {
            Some(path) => write!(f, "  journals: {}", path.display()),
            None => write!(f, "  journals: in memory"),
        }
    }
}
