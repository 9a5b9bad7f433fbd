//! The Prometheus text exposition format (version 0.0.4) of a [`FlowSnapshot`].
//!
//! Hand-written: the format is a few line shapes, and the crates that produce it bring a
//! registry model this runtime does not need. Every family is written with its `HELP` and
//! `TYPE` lines, label values are escaped, and series are stable: every stage gets every
//! error kind and every state, zero or not, so a series never vanishes while the flow runs.

use std::fmt::{self, Write};
use std::time::Duration;

use obzenflow_fsm::StateVariant;

use super::snapshot::{FlowSnapshot, StageSnapshot};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (`le`) of the processing-time histogram buckets, in nanoseconds: from 100 ns
/// (a trivial map) to ten seconds, 1-2.5-5 per decade.
pub(crate) const PROCESSING_TIME_BUCKETS_NS: [u64; 25] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The lifecycle states a stage can be in, as `state` label values. A unit test checks that
/// every [`StageState`](crate::stages::StageState) is here.
pub(crate) const STAGE_STATES: [&str; 8] = [
    "created",
    "initialized",
    "waiting_for_start",
    "running",
    "draining",
    "drained",
    "failed",
    "cancelled",
];

/// A stage counter family: its name, help text and value.
type StageCounter = (&'static str, &'static str, fn(&StageSnapshot) -> u64);

/// A state gauge family: its name, help text and value.
type StateFamily = (
    &'static str,
    &'static str,
    fn(&crate::stages::StateGauge) -> u64,
);

/// The plain per-stage counters, in exposition order.
const STAGE_COUNTERS: [StageCounter; 7] = [
    (
        "obzenflow_stage_records_in_total",
        "Data records read by the stage (produced, for a source).",
        |stage| stage.records_in,
    ),
    (
        "obzenflow_stage_records_out_total",
        "Data records written downstream by the stage (delivered, for a sink).",
        |stage| stage.records_out,
    ),
    (
        "obzenflow_stage_records_filtered_total",
        "Input records that produced no output.",
        |stage| stage.records_filtered,
    ),
    (
        "obzenflow_stage_batches_total",
        "Batches the stage processed.",
        |stage| stage.batches,
    ),
    (
        "obzenflow_stage_backpressure_waits_total",
        "Appends that waited for a slow downstream reader.",
        |stage| stage.backpressure_waits,
    ),
    (
        "obzenflow_stage_journal_committed_records_total",
        "Records committed to the stage's data journal.",
        |stage| stage.journal_committed,
    ),
    (
        "obzenflow_stage_journal_durable_records_total",
        "Records of the stage's data journal known to be on stable storage.",
        |stage| stage.journal_durable,
    ),
];

/// Renders `snapshot`.
pub(crate) fn render(snapshot: &FlowSnapshot) -> String {
    let mut out = Exposition {
        out: String::new(),
        flow: escape_label_value(&snapshot.flow_name),
    };
    // Writing to a `String` cannot fail.
    let _ = out.write_all(snapshot);
    out.out
}

/// The text being written, with the escaped flow label every series carries.
struct Exposition {
    out: String,
    flow: String,
}

impl Exposition {
    fn write_all(&mut self, snapshot: &FlowSnapshot) -> fmt::Result {
        self.write_flow(snapshot)?;
        for (name, help, value) in STAGE_COUNTERS {
            self.family(name, "counter", help)?;
            for stage in &snapshot.stages {
                self.stage_sample(name, stage, &[], value(stage))?;
            }
        }
        self.write_errors(&snapshot.stages)?;
        self.write_backpressure_time(&snapshot.stages)?;
        self.write_processing_time(&snapshot.stages)?;
        self.write_states(&snapshot.stages)?;
        self.write_state_size(&snapshot.stages)?;
        self.write_lag(snapshot)
    }

    /// The state gauges of the stages whose handler reports one (joins, aggregations).
    fn write_state_size(&mut self, stages: &[StageSnapshot]) -> fmt::Result {
        let families: [StateFamily; 2] = [
            (
                "obzenflow_stage_state_keys",
                "Keys the stage's handler holds in its state.",
                |gauge| gauge.current.keys,
            ),
            (
                "obzenflow_stage_state_records",
                "Records the stage's handler holds in its state.",
                |gauge| gauge.current.records,
            ),
        ];
        for (name, help, value) in families {
            if stages.iter().all(|stage| stage.state_size.is_none()) {
                continue;
            }
            self.family(name, "gauge", help)?;
            for stage in stages {
                if let Some(gauge) = &stage.state_size {
                    self.stage_sample(name, stage, &[], value(gauge))?;
                }
            }
        }
        Ok(())
    }

    fn write_flow(&mut self, snapshot: &FlowSnapshot) -> fmt::Result {
        self.family(
            "obzenflow_flow_info",
            "gauge",
            "The run of the flow these metrics describe; always 1.",
        )?;
        let run_id = snapshot.run_id.to_string();
        writeln!(
            self.out,
            "obzenflow_flow_info{{flow=\"{}\",run_id=\"{}\"}} 1",
            self.flow,
            escape_label_value(&run_id)
        )?;
        self.family(
            "obzenflow_flow_elapsed_seconds",
            "gauge",
            "Time since the run started.",
        )?;
        writeln!(
            self.out,
            "obzenflow_flow_elapsed_seconds{{flow=\"{}\"}} {}",
            self.flow,
            seconds(snapshot.elapsed)
        )?;
        self.family(
            "obzenflow_flow_final",
            "gauge",
            "1 once every stage finished and these are the run's final numbers, else 0.",
        )?;
        writeln!(
            self.out,
            "obzenflow_flow_final{{flow=\"{}\"}} {}",
            self.flow,
            u8::from(snapshot.is_final)
        )
    }

    fn write_errors(&mut self, stages: &[StageSnapshot]) -> fmt::Result {
        let name = "obzenflow_stage_records_errored_total";
        self.family(
            name,
            "counter",
            "Records put on the error lane, by error kind.",
        )?;
        for stage in stages {
            for (kind, count) in stage.errors_by_kind.iter() {
                self.stage_sample(name, stage, &[("error_kind", kind.as_str())], count)?;
            }
        }
        Ok(())
    }

    fn write_backpressure_time(&mut self, stages: &[StageSnapshot]) -> fmt::Result {
        let name = "obzenflow_stage_backpressure_wait_seconds_total";
        self.family(
            name,
            "counter",
            "Time appends spent waiting for a slow downstream reader.",
        )?;
        for stage in stages {
            self.stage_sample(name, stage, &[], seconds(stage.backpressure_wait))?;
        }
        Ok(())
    }

    fn write_processing_time(&mut self, stages: &[StageSnapshot]) -> fmt::Result {
        let name = "obzenflow_stage_processing_time_seconds";
        self.family(name, "histogram", "Handler time per input record.")?;
        for stage in stages {
            let histogram = &stage.processing_time;
            let bucket = format!("{name}_bucket");
            for bound_ns in PROCESSING_TIME_BUCKETS_NS {
                let le = seconds(Duration::from_nanos(bound_ns));
                let count = histogram.count_at_most(bound_ns);
                self.stage_sample(&bucket, stage, &[("le", &le)], count)?;
            }
            self.stage_sample(&bucket, stage, &[("le", "+Inf")], histogram.count())?;
            let sum = seconds(histogram.sum());
            self.stage_sample(&format!("{name}_sum"), stage, &[], sum)?;
            self.stage_sample(&format!("{name}_count"), stage, &[], histogram.count())?;
        }
        Ok(())
    }

    fn write_states(&mut self, stages: &[StageSnapshot]) -> fmt::Result {
        let name = "obzenflow_stage_state";
        self.family(
            name,
            "gauge",
            "1 for the lifecycle state the stage is in, 0 for the others.",
        )?;
        for stage in stages {
            let current = stage.state.variant_name();
            for state in STAGE_STATES {
                let value = u8::from(state == current);
                self.stage_sample(name, stage, &[("state", state)], value)?;
            }
        }
        let name = "obzenflow_stage_time_in_state_seconds";
        self.family(
            name,
            "gauge",
            "Time since the stage entered its current state.",
        )?;
        for stage in stages {
            self.stage_sample(name, stage, &[], seconds(stage.time_in_state))?;
        }
        Ok(())
    }

    fn write_lag(&mut self, snapshot: &FlowSnapshot) -> fmt::Result {
        let name = "obzenflow_edge_lag_records";
        self.family(
            name,
            "gauge",
            "Records committed upstream that the reading stage has not read yet.",
        )?;
        for edge in &snapshot.edges {
            let Some(reader) = snapshot.stage(&edge.to) else {
                continue;
            };
            let upstream = escape_label_value(&edge.from);
            let lane = edge.lane.as_str();
            let labels = [("upstream", upstream.as_ref()), ("lane", lane)];
            self.stage_sample(name, reader, &labels, edge.lag)?;
        }
        Ok(())
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) -> fmt::Result {
        writeln!(self.out, "# HELP {name} {help}")?;
        writeln!(self.out, "# TYPE {name} {kind}")
    }

    /// One series of `stage`: the `flow`, `stage` and `stage_kind` labels, then `extra`
    /// (whose values the caller escaped where they are not fixed names).
    fn stage_sample(
        &mut self,
        name: &str,
        stage: &StageSnapshot,
        extra: &[(&str, &str)],
        value: impl fmt::Display,
    ) -> fmt::Result {
        write!(
            self.out,
            "{name}{{flow=\"{}\",stage=\"{}\",stage_kind=\"{}\"",
            self.flow,
            escape_label_value(&stage.name),
            stage.kind.as_str()
        )?;
        for (label, label_value) in extra {
            write!(self.out, ",{label}=\"{label_value}\"")?;
        }
        writeln!(self.out, "}} {value}")
    }
}

/// A duration in seconds, as Prometheus wants time.
fn seconds(duration: Duration) -> String {
    duration.as_secs_f64().to_string()
}

/// Escapes a label value: backslash, double quote and line feed.
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::StageState;

    /// Every state, by an exhaustive match: a new state fails to compile here until it is
    /// listed.
    fn every_state() -> Vec<StageState> {
        let all = vec![
            StageState::Created,
            StageState::Initialized,
            StageState::WaitingForStart,
            StageState::Running,
            StageState::Draining,
            StageState::Drained,
            StageState::Failed {
                failure: crate::stages::StageFailure::for_tests("stage", "why"),
            },
            StageState::Cancelled {
                reason: String::new(),
            },
        ];
        for state in &all {
            match state {
                StageState::Created
                | StageState::Initialized
                | StageState::WaitingForStart
                | StageState::Running
                | StageState::Draining
                | StageState::Drained
                | StageState::Failed { .. }
                | StageState::Cancelled { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_stage_state_has_a_label_value() {
        let names: Vec<&str> = every_state()
            .iter()
            .map(StateVariant::variant_name)
            .collect();
        assert_eq!(names, STAGE_STATES);
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape_label_value("a\\b \"c\"\nd"), "a\\\\b \\\"c\\\"\\nd");
    }

    #[test]
    fn bucket_bounds_print_as_plain_seconds() {
        assert_eq!(seconds(Duration::from_nanos(1_000)), "0.000001");
        assert_eq!(seconds(Duration::from_nanos(2_500)), "0.0000025");
        assert_eq!(seconds(Duration::from_secs(10)), "10");
        assert!(PROCESSING_TIME_BUCKETS_NS
            .windows(2)
            .all(|pair| pair[0] < pair[1]));
    }
}
