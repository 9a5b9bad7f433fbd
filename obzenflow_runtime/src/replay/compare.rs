//! Record-by-record comparison of one journal lane of two runs, over what a record says (event
//! type, schema version, payload, processing status, and the input position it came from),
//! never over where or when it was written (ids, writer, flow context, timestamps, processing
//! times).
//!
//! Both journals are streamed side by side, so memory stays flat whatever their length; only
//! the first divergent pair is kept.

use obzenflow_core::{
    ChainEvent, CorrelationId, EventContent, EventId, Lane, LifecycleEvent, ProcessingStatus,
    SourcePosition,
};
use serde::Serialize;

use super::error::VerifyError;

/// What verification compares of one data record, and where it came from.
///
/// `event_id`, `correlation_id` and `source` locate the record; they are not compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordView {
    /// The record's position among the compared records of its lane, from 0.
    pub index: u64,
    /// The record's id in its run.
    pub event_id: EventId,
    /// The id of the source record it descends from, in its run.
    pub correlation_id: CorrelationId,
    /// The event type.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// The payload.
    pub payload: serde_json::Value,
    /// The processing status; an error's stage id is left out (it differs between runs).
    pub status: ProcessingStatus,
    /// Where in its input the record's source record was, if its source knew. Compared: it
    /// is part of what the record says (a replay re-emits each archived record with its
    /// origin, so a faithful replay has the same), and two runs whose records came from other
    /// lines of their inputs did not do the same thing.
    pub origin: Option<SourcePosition>,
    /// The source record the correlation id leads to, when found in that run's sources.
    pub source: Option<SourceRecord>,
    /// For a record a join made from two inputs, the source record the other input's record
    /// descends from (`Causality::joined_correlation_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined_correlation_id: Option<CorrelationId>,
    /// The source record the joined correlation id leads to, when found in that run's sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined_source: Option<SourceRecord>,
}

/// A record in a source's journal that a compared record descends from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRecord {
    /// The source stage.
    pub stage: String,
    /// Which of its journals holds the record.
    pub lane: Lane,
    /// The record's position among that journal's data records, from 0.
    pub index: u64,
    /// The record's id (the correlation id's origin).
    pub event_id: EventId,
    /// For a replayed source record, the id of the archived record it re-emitted.
    pub replayed_from: Option<EventId>,
}

impl RecordView {
    /// The comparable view of `event`, or `None` if it is not a data record.
    pub(crate) fn of(event: &ChainEvent, index: u64) -> Option<Self> {
        let EventContent::Data {
            event_type,
            schema_version,
            payload,
        } = &event.content
        else {
            return None;
        };
        let mut status = event.processing_info.status.clone();
        if let ProcessingStatus::Error { stage_id, .. } = &mut status {
            *stage_id = None;
        }
        Some(Self {
            index,
            event_id: event.id,
            correlation_id: event.correlation_id(),
            event_type: event_type.as_str().to_owned(),
            schema_version: *schema_version,
            payload: payload
                .to_json()
                .map(|json| json.into_owned())
                .unwrap_or_default(),
            status,
            origin: event.origin().cloned(),
            source: None,
            joined_correlation_id: event.causality.joined_correlation_id,
            joined_source: None,
        })
    }

    /// The names of the compared fields that differ between `self` and `other`.
    pub(crate) fn differing_fields(&self, other: &Self) -> Vec<String> {
        let checks = [
            ("event_type", self.event_type == other.event_type),
            (
                "schema_version",
                self.schema_version == other.schema_version,
            ),
            ("payload", self.payload == other.payload),
            ("status", self.status == other.status),
            ("origin", self.origin == other.origin),
        ];
        checks
            .into_iter()
            .filter(|(_, same)| !same)
            .map(|(name, _)| name.to_owned())
            .collect()
    }
}

/// The first position at which two lanes hold different records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Divergence {
    /// The position, among compared records, from 0.
    pub index: u64,
    /// The compared fields that differ; empty when one side has no record here.
    pub differs_in: Vec<String>,
    /// The baseline's record, or `None` if its lane ended first.
    pub baseline: Option<RecordView>,
    /// The candidate's record, or `None` if its lane ended first.
    pub candidate: Option<RecordView>,
}

/// How one lane of a stage compares between two runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneComparison {
    /// Data records in the baseline's lane.
    pub baseline_records: u64,
    /// Data records in the candidate's lane.
    pub candidate_records: u64,
    /// The first divergent pair, if any.
    pub first_divergence: Option<Divergence>,
}

impl LaneComparison {
    /// Whether the lanes hold the same records in the same order.
    pub fn is_identical(&self) -> bool {
        self.first_divergence.is_none()
    }
}

/// What a lane says besides its data records: the end-of-stream count and the terminal
/// lifecycle fact (both are on data lanes only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LaneTail {
    pub(crate) end_of_stream: Option<u64>,
    pub(crate) outcome: Option<&'static str>,
}

/// One lane being read: its records, and what it said besides them.
struct LaneScan<I> {
    events: I,
    records: u64,
    tail: LaneTail,
}

impl<I: Iterator<Item = Result<ChainEvent, VerifyError>>> LaneScan<I> {
    /// The next data record's view, noting control markers and lifecycle facts on the way.
    fn next_record(&mut self) -> Result<Option<RecordView>, VerifyError> {
        for event in self.events.by_ref() {
            let event = event?;
            if let Some(view) = RecordView::of(&event, self.records) {
                self.records += 1;
                return Ok(Some(view));
            }
            if let Some(records) = event.end_of_stream_count() {
                self.tail.end_of_stream = Some(records);
            }
            if let EventContent::Lifecycle(fact) = &event.content {
                self.tail.outcome = outcome_name(fact).or(self.tail.outcome);
            }
        }
        Ok(None)
    }
}

/// The terminal outcome a lifecycle fact records, if it is terminal.
fn outcome_name(fact: &LifecycleEvent) -> Option<&'static str> {
    match fact {
        LifecycleEvent::Started => None,
        LifecycleEvent::Completed { .. } => Some("completed"),
        LifecycleEvent::Failed { .. } => Some("failed"),
        LifecycleEvent::Cancelled { .. } => Some("cancelled"),
    }
}

/// Compares two lanes record by record; returns the comparison and each lane's tail.
pub(crate) fn compare_lanes<B, C>(
    baseline: B,
    candidate: C,
) -> Result<(LaneComparison, LaneTail, LaneTail), VerifyError>
where
    B: Iterator<Item = Result<ChainEvent, VerifyError>>,
    C: Iterator<Item = Result<ChainEvent, VerifyError>>,
{
    let mut baseline = LaneScan {
        events: baseline,
        records: 0,
        tail: LaneTail::default(),
    };
    let mut candidate = LaneScan {
        events: candidate,
        records: 0,
        tail: LaneTail::default(),
    };
    let mut first_divergence = None;
    let mut index = 0;
    loop {
        let pair = (baseline.next_record()?, candidate.next_record()?);
        if pair.0.is_none() && pair.1.is_none() {
            break;
        }
        if first_divergence.is_none() {
            first_divergence = divergence(index, pair);
        }
        index += 1;
    }
    let comparison = LaneComparison {
        baseline_records: baseline.records,
        candidate_records: candidate.records,
        first_divergence,
    };
    Ok((comparison, baseline.tail, candidate.tail))
}

/// The divergence at `index`, if the two records there differ.
fn divergence(index: u64, pair: (Option<RecordView>, Option<RecordView>)) -> Option<Divergence> {
    let differs_in = match &pair {
        (Some(baseline), Some(candidate)) => {
            let fields = baseline.differing_fields(candidate);
            if fields.is_empty() {
                return None;
            }
            fields
        }
        _ => Vec::new(),
    };
    Some(Divergence {
        index,
        differs_in,
        baseline: pair.0,
        candidate: pair.1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use obzenflow_core::{ErrorKind, StageId};
    use serde_json::json;

    fn lane(events: Vec<ChainEvent>) -> impl Iterator<Item = Result<ChainEvent, VerifyError>> {
        events.into_iter().map(Ok)
    }

    fn numbers(values: &[i64]) -> Vec<ChainEvent> {
        let mut events: Vec<ChainEvent> = values
            .iter()
            .map(|value| ChainEvent::data("n", json!(value)))
            .collect();
        events.push(ChainEvent::end_of_stream(values.len() as u64));
        events
    }

    #[test]
    fn ids_timestamps_and_durations_are_not_compared() {
        let baseline = numbers(&[1, 2, 3]);
        let mut candidate = numbers(&[1, 2, 3]);
        for event in &mut candidate {
            event.processing_info.processing_time_ns = 12_345;
            event.event_time = Some(obzenflow_core::Timestamp::now());
        }
        let (comparison, baseline_tail, candidate_tail) =
            compare_lanes(lane(baseline), lane(candidate)).unwrap();
        assert!(comparison.is_identical(), "{comparison:?}");
        assert_eq!(comparison.baseline_records, 3);
        assert_eq!(baseline_tail, candidate_tail);
        assert_eq!(baseline_tail.end_of_stream, Some(3));
    }

    #[test]
    fn the_first_different_payload_is_reported_with_both_versions() {
        let (comparison, _, _) =
            compare_lanes(lane(numbers(&[1, 2, 3, 4])), lane(numbers(&[1, 2, 9, 8]))).unwrap();
        let divergence = comparison.first_divergence.unwrap();
        assert_eq!(divergence.index, 2);
        assert_eq!(divergence.differs_in, vec!["payload".to_owned()]);
        assert_eq!(divergence.baseline.unwrap().payload, json!(3));
        assert_eq!(divergence.candidate.unwrap().payload, json!(9));
    }

    #[test]
    fn a_shorter_lane_diverges_where_it_ends() {
        let (comparison, baseline_tail, candidate_tail) =
            compare_lanes(lane(numbers(&[1, 2, 3])), lane(numbers(&[1, 2]))).unwrap();
        let divergence = comparison.first_divergence.unwrap();
        assert_eq!(divergence.index, 2);
        assert!(divergence.baseline.is_some() && divergence.candidate.is_none());
        assert_eq!(comparison.candidate_records, 2);
        assert_ne!(baseline_tail.end_of_stream, candidate_tail.end_of_stream);
    }

    #[test]
    fn error_statuses_compare_without_their_stage_id() {
        let status = |stage_id| ProcessingStatus::error(ErrorKind::Validation, "bad", stage_id);
        let baseline =
            vec![ChainEvent::data("n", json!(1)).with_status(status(Some(StageId::new())))];
        let candidate =
            vec![ChainEvent::data("n", json!(1)).with_status(status(Some(StageId::new())))];
        let (comparison, _, _) = compare_lanes(lane(baseline), lane(candidate)).unwrap();
        assert!(comparison.is_identical());

        let other = vec![ChainEvent::data("n", json!(1)).with_status(ProcessingStatus::Success)];
        let again = vec![ChainEvent::data("n", json!(1)).with_status(status(None))];
        let (comparison, _, _) = compare_lanes(lane(other), lane(again)).unwrap();
        assert_eq!(
            comparison.first_divergence.unwrap().differs_in,
            vec!["status".to_owned()]
        );
    }

    #[test]
    fn a_record_from_another_input_line_is_a_difference() {
        let placed = |line| {
            let event = ChainEvent::data("n", json!(1));
            vec![event.with_origin(SourcePosition::new("in.csv", line))]
        };
        let (comparison, _, _) = compare_lanes(lane(placed(2)), lane(placed(2))).unwrap();
        assert!(comparison.is_identical(), "{comparison:?}");
        let (comparison, _, _) = compare_lanes(lane(placed(2)), lane(placed(3))).unwrap();
        let divergence = comparison.first_divergence.unwrap();
        assert_eq!(divergence.differs_in, vec!["origin".to_owned()]);
        let line = |view: Option<RecordView>| view.and_then(|view| view.origin).map(|o| o.line);
        assert_eq!(line(divergence.baseline), Some(2));
        assert_eq!(line(divergence.candidate), Some(3));
        let unplaced = vec![ChainEvent::data("n", json!(1))];
        let (comparison, _, _) = compare_lanes(lane(placed(2)), lane(unplaced)).unwrap();
        assert!(
            !comparison.is_identical(),
            "an origin lost is a difference too"
        );
    }
}
