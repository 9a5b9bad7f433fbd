//! Honest outcomes: what a finished run amounts to, beyond the machine's terminal state.
//!
//! A flow whose stages all drained is [`FlowState::Drained`](super::FlowState::Drained), but
//! that alone does not make it a success: a stage that put every record it read on its error
//! lane, or a sink that received nothing while its sources produced records, means the run
//! did not do its job. [`FlowReport::outcome`](super::FlowReport::outcome) derives an
//! [`Outcome`] from the state and the stages' counts, naming each such [`Finding`];
//! [`FlowBuilder::accept`](super::FlowBuilder::accept) declares a finding acceptable for one
//! stage.

use std::fmt;

use super::failure::FlowFailure;
use super::report::{grouped, StageReport};
use crate::stages::StageKind;

/// What a finished run amounts to; see [`FlowReport::outcome`](super::FlowReport::outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every stage drained and no record went to an error lane.
    Completed,
    /// Every stage drained; some records went to error lanes (within their stages' error
    /// budgets), but no stage rejected everything and every sink received records. This is a
    /// success: the error lanes hold what was rejected, and an
    /// [`ErrorBudget`](crate::stages::ErrorBudget) is how a flow fails on too many errors.
    CompletedWithErrors {
        /// Records on all error lanes together.
        errored: u64,
    },
    /// Every stage drained, but the run did not do its job: each finding names a stage and
    /// why. Not a success.
    Unsuccessful {
        /// What is wrong, one finding per stage and kind, not counting accepted ones.
        findings: Vec<Finding>,
    },
    /// The flow failed.
    Failed(FlowFailure),
    /// The flow was cancelled.
    Cancelled {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// Whether the run is a success: [`Completed`](Self::Completed) or
    /// [`CompletedWithErrors`](Self::CompletedWithErrors).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Completed | Self::CompletedWithErrors { .. })
    }
}

/// Which kind of [`Finding`]; what [`FlowBuilder::accept`](super::FlowBuilder::accept) takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// [`Finding::RejectedEverything`]: a transform, stateful stage or sink put every record
    /// it read on its error lane.
    RejectedEverything,
    /// [`Finding::SinkReceivedNothing`]: a sink received nothing while its sources produced
    /// records and a stage on the way put records on its error lane.
    SinkReceivedNothing,
}

impl FindingKind {
    /// Whether a stage of `kind` can have this finding.
    pub(crate) fn applies_to(self, kind: StageKind) -> bool {
        match self {
            Self::RejectedEverything => !kind.is_source(),
            Self::SinkReceivedNothing => kind == StageKind::Sink,
        }
    }
}

/// Something in a drained run's counts that means it did not do its job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// A stage that is not a source read at least one record, put every one on its error lane
    /// and wrote nothing downstream (delivered nothing, for a sink). A stage that drops
    /// records without erroring (a filter) is not this.
    RejectedEverything {
        /// The stage.
        stage: String,
        /// Records it read.
        records_in: u64,
        /// Records it put on its error lane.
        records_errored: u64,
    },
    /// A sink read no record while the sources upstream of it produced some, and records
    /// stopped at stages that put at least part of them on their error lanes. A sink whose
    /// sources were empty, or whose records were all filtered out, is not this.
    SinkReceivedNothing {
        /// The sink.
        sink: String,
        /// The sources upstream of the sink that produced records, with how many.
        sources: Vec<(String, u64)>,
        /// The upstream stages where records stopped (they read records, wrote none
        /// downstream and errored some), with how many they put on their error lanes.
        stopped_at: Vec<(String, u64)>,
    },
}

impl Finding {
    /// Which kind of finding this is.
    pub fn kind(&self) -> FindingKind {
        match self {
            Self::RejectedEverything { .. } => FindingKind::RejectedEverything,
            Self::SinkReceivedNothing { .. } => FindingKind::SinkReceivedNothing,
        }
    }

    /// The stage the finding is about.
    pub fn stage(&self) -> &str {
        match self {
            Self::RejectedEverything { stage, .. } => stage,
            Self::SinkReceivedNothing { sink, .. } => sink,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RejectedEverything {
                stage,
                records_in,
                records_errored,
            } => write!(
                f,
                "stage `{stage}` rejected every record it read ({} of {} to its error lane)",
                grouped(*records_errored),
                grouped(*records_in)
            ),
            Self::SinkReceivedNothing {
                sink,
                sources,
                stopped_at,
            } => {
                write!(f, "sink `{sink}` received nothing while ")?;
                write_list(f, sources, "produced")?;
                f.write_str(" records; they stopped at ")?;
                write_list(f, stopped_at, "with")?;
                f.write_str(if stopped_at.len() == 1 {
                    " on its error lane"
                } else {
                    " on their error lanes"
                })
            }
        }
    }
}

/// `` `a` produced 1,000 and `b` produced 20 ``.
fn write_list(f: &mut fmt::Formatter<'_>, items: &[(String, u64)], verb: &str) -> fmt::Result {
    for (position, (name, count)) in items.iter().enumerate() {
        if position > 0 {
            f.write_str(if position + 1 == items.len() {
                " and "
            } else {
                ", "
            })?;
        }
        write!(f, "`{name}` {verb} {}", grouped(*count))?;
    }
    Ok(())
}

/// The findings of a drained run's stages, in stage order. `upstreams[i]` holds the indices
/// of the stages feeding stage `i`.
pub(crate) fn find(stages: &[StageReport], upstreams: &[Vec<usize>]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, stage) in stages.iter().enumerate() {
        if !stage.kind.is_source()
            && stage.records_in > 0
            && stage.records_errored >= stage.records_in
            && stage.records_out == 0
        {
            findings.push(Finding::RejectedEverything {
                stage: stage.name.clone(),
                records_in: stage.records_in,
                records_errored: stage.records_errored,
            });
        }
        if stage.kind == StageKind::Sink && stage.records_in == 0 {
            let ancestors = ancestors(index, upstreams);
            let sources: Vec<(String, u64)> = ancestors
                .iter()
                .map(|&ancestor| &stages[ancestor])
                .filter(|stage| stage.kind.is_source() && stage.records_in > 0)
                .map(|stage| (stage.name.clone(), stage.records_in))
                .collect();
            let stopped_at: Vec<(String, u64)> = ancestors
                .iter()
                .map(|&ancestor| &stages[ancestor])
                .filter(|stage| {
                    stage.records_in > 0 && stage.records_out == 0 && stage.records_errored > 0
                })
                .map(|stage| (stage.name.clone(), stage.records_errored))
                .collect();
            if !sources.is_empty() && !stopped_at.is_empty() {
                findings.push(Finding::SinkReceivedNothing {
                    sink: stage.name.clone(),
                    sources,
                    stopped_at,
                });
            }
        }
    }
    findings
}

/// Every stage upstream of `stage`, directly or not, in stage order.
fn ancestors(stage: usize, upstreams: &[Vec<usize>]) -> Vec<usize> {
    let mut seen = vec![false; upstreams.len()];
    let mut pending = upstreams[stage].clone();
    while let Some(next) = pending.pop() {
        if !std::mem::replace(&mut seen[next], true) {
            pending.extend(&upstreams[next]);
        }
    }
    (0..upstreams.len()).filter(|&index| seen[index]).collect()
}
