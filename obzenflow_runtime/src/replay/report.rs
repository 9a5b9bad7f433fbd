//! [`VerifyReport`]: what [`verify`](super::verify) found, stage by stage, as human text
//! (`Display`) and as JSON ([`VerifyReport::to_json`]).

use std::fmt;
use std::path::PathBuf;

use obzenflow_core::RunId;
use serde::Serialize;

use super::compare::{Divergence, LaneComparison, RecordView, SourceRecord};
use super::error::Side;
use crate::journal::inspect::escape_name;
use crate::journal::RunStatus;

/// The outcome of comparing two runs.
///
/// Its `Display` form is the human report: one line per stage, then for each divergent lane
/// the first divergent record of both runs with its lineage, then `0 differences` or
/// `N differences`. [`VerifyReport::to_json`] is the machine-readable form.
///
/// ```no_run
/// use obzenflow_runtime::replay::verify;
///
/// let report = verify("runs/run_a", "runs/run_b")?;
/// print!("{report}");
/// std::fs::write("verify.json", report.to_json()?)?;
/// std::process::exit(if report.is_identical() { 0 } else { 1 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// The run compared against.
    pub baseline: RunSummary,
    /// The run checked.
    pub candidate: RunSummary,
    /// Every stage of either run: the baseline's in declaration order, then the candidate's
    /// own.
    pub stages: Vec<StageComparison>,
    /// How many differences were found in all.
    pub differences: usize,
}

/// One compared run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// Its directory.
    pub run_dir: PathBuf,
    /// Its id.
    pub run_id: RunId,
    /// Its flow's name.
    pub flow_name: String,
    /// How it ended, per its manifest.
    pub status: RunStatus,
    /// The run it replayed, if it is a replay.
    pub replayed_from: Option<PathBuf>,
}

/// Which runs have a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Both runs.
    Both,
    /// Only the baseline.
    BaselineOnly,
    /// Only the candidate.
    CandidateOnly,
}

/// A value as found in each run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compared<T> {
    /// In the baseline.
    pub baseline: T,
    /// In the candidate.
    pub candidate: T,
}

impl<T: PartialEq> Compared<T> {
    /// Whether both runs agree.
    pub fn is_same(&self) -> bool {
        self.baseline == self.candidate
    }
}

/// How one stage compares between the two runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageComparison {
    /// The stage's name.
    pub stage: String,
    /// Its kind, e.g. `transform`.
    pub kind: String,
    /// Which runs have it; a stage in one run only is one difference and is not compared.
    pub presence: Presence,
    /// Its data lanes, when both runs have it.
    pub data: Option<LaneComparison>,
    /// Its error lanes, when both runs have it.
    pub error: Option<LaneComparison>,
    /// The record counts of its end-of-stream markers (`None`: no marker).
    pub end_of_stream: Compared<Option<u64>>,
    /// Its terminal lifecycle facts (`completed`, `failed`, `cancelled`; `None`: none).
    pub outcome: Compared<Option<String>>,
}

impl StageComparison {
    /// How many differences this stage shows: one for being in one run only, otherwise one
    /// per divergent lane, differing end-of-stream count and differing outcome.
    pub fn differences(&self) -> usize {
        if self.presence != Presence::Both {
            return 1;
        }
        let lanes = [&self.data, &self.error]
            .into_iter()
            .flatten()
            .filter(|lane| !lane.is_identical())
            .count();
        lanes + usize::from(!self.end_of_stream.is_same()) + usize::from(!self.outcome.is_same())
    }
}

impl VerifyReport {
    /// Whether the runs agree on everything compared.
    pub fn is_identical(&self) -> bool {
        self.differences == 0
    }

    /// The comparison of the stage named `name`.
    pub fn stage(&self, name: &str) -> Option<&StageComparison> {
        self.stages.iter().find(|stage| stage.stage == name)
    }

    /// The first stage, in declaration order, that shows a difference.
    pub fn first_difference(&self) -> Option<&StageComparison> {
        self.stages.iter().find(|stage| stage.differences() > 0)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_run(f, Side::Baseline, &self.baseline)?;
        write_run(f, Side::Candidate, &self.candidate)?;
        let width = self.stages.iter().map(|stage| stage.stage.len()).max();
        for stage in &self.stages {
            write_stage(f, stage, width.unwrap_or(0))?;
        }
        match self.differences {
            1 => write!(f, "1 difference"),
            count => write!(f, "{count} differences"),
        }
    }
}

fn write_run(f: &mut fmt::Formatter<'_>, side: Side, run: &RunSummary) -> fmt::Result {
    write!(
        f,
        "{side:<9} {} (flow `{}`, run {}, {}",
        escape_name(&run.run_dir.display().to_string()),
        escape_name(&run.flow_name),
        run.run_id,
        run.status.as_str()
    )?;
    if let Some(original) = &run.replayed_from {
        write!(
            f,
            ", replay of {}",
            escape_name(&original.display().to_string())
        )?;
    }
    writeln!(f, ")")
}

fn write_stage(f: &mut fmt::Formatter<'_>, stage: &StageComparison, width: usize) -> fmt::Result {
    // Names come from the runs' manifests: escaped, they cannot drive the terminal.
    let (name, kind) = (escape_name(&stage.stage), escape_name(&stage.kind));
    write!(f, "  {name:<width$}  {kind:<9}  ")?;
    let (Some(data), Some(error)) = (&stage.data, &stage.error) else {
        let run = match stage.presence {
            Presence::CandidateOnly => Side::Candidate,
            Presence::Both | Presence::BaselineOnly => Side::Baseline,
        };
        return writeln!(f, "only in the {run} run  DIFFERS");
    };
    let verdict = if stage.differences() == 0 {
        "same"
    } else {
        "DIFFERS"
    };
    writeln!(
        f,
        "data {}  error {}  end of stream {}  outcome {}  {verdict}",
        counts(data),
        counts(error),
        compared(&stage.end_of_stream, |count| count.to_string()),
        compared(&stage.outcome, Clone::clone),
    )?;
    for (lane, comparison) in [("data", data), ("error", error)] {
        if let Some(divergence) = &comparison.first_divergence {
            write_divergence(f, lane, divergence)?;
        }
    }
    Ok(())
}

fn counts(lane: &LaneComparison) -> String {
    let relation = if lane.baseline_records == lane.candidate_records {
        "="
    } else {
        "/"
    };
    format!(
        "{} {relation} {}",
        lane.baseline_records, lane.candidate_records
    )
}

fn compared<T: PartialEq>(values: &Compared<Option<T>>, show: impl Fn(&T) -> String) -> String {
    let show = |value: &Option<T>| value.as_ref().map_or_else(|| "none".to_owned(), &show);
    if values.is_same() {
        show(&values.baseline)
    } else {
        format!("{} / {}", show(&values.baseline), show(&values.candidate))
    }
}

fn write_divergence(
    f: &mut fmt::Formatter<'_>,
    lane: &str,
    divergence: &Divergence,
) -> fmt::Result {
    let what = if divergence.differs_in.is_empty() {
        "one run has no record here".to_owned()
    } else {
        format!("differs in {}", divergence.differs_in.join(", "))
    };
    writeln!(
        f,
        "    first divergent {lane} record, index {}: {what}",
        divergence.index
    )?;
    write_record(f, Side::Baseline, divergence.baseline.as_ref())?;
    write_record(f, Side::Candidate, divergence.candidate.as_ref())
}

fn write_record(
    f: &mut fmt::Formatter<'_>,
    side: Side,
    record: Option<&RecordView>,
) -> fmt::Result {
    let Some(record) = record else {
        return writeln!(f, "      {side:<9}  (no record: its lane ended)");
    };
    writeln!(
        f,
        "      {side:<9}  {} v{}  {}  {}",
        escape_name(&record.event_type),
        record.schema_version,
        escape_name(&status_text(record)),
        record.payload
    )?;
    write!(
        f,
        "      {:<9}  event {}  correlation {}",
        "", record.event_id, record.correlation_id
    )?;
    if let Some(origin) = &record.origin {
        write!(f, "  from {}", escape_name(&origin.to_string()))?;
    }
    match &record.source {
        Some(source) => write_source(f, source)?,
        // A record emitted without a parent (a stateful stage's drained total) starts its own
        // correlation chain.
        None if record.correlation_id.origin() == record.event_id => {
            write!(f, " (its own: emitted without a parent)")?;
        }
        None => write!(f, " (no source record found)")?,
    }
    // A joined record descends from the other input's record too.
    if let Some(joined) = record.joined_correlation_id {
        write!(f, "\n      {:<9}  joined with correlation {joined}", "")?;
        match &record.joined_source {
            Some(source) => write_source(f, source)?,
            None => write!(f, " (no source record found)")?,
        }
    }
    writeln!(f)
}

/// ` -> source `stage` lane record n`, and the archived record a replayed one re-emitted.
fn write_source(f: &mut fmt::Formatter<'_>, source: &SourceRecord) -> fmt::Result {
    write!(
        f,
        " -> source `{}` {} record {}",
        escape_name(&source.stage),
        source.lane,
        source.index
    )?;
    if let Some(original) = source.replayed_from {
        write!(f, " (replay of {original})")?;
    }
    Ok(())
}

fn status_text(record: &RecordView) -> String {
    match &record.status {
        obzenflow_core::ProcessingStatus::Error { kind, message, .. } => {
            format!("error ({kind}: {message})")
        }
        status => status.name().to_owned(),
    }
}
