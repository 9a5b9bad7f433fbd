//! Scenarios: what runs (a hand-written baseline, the single-thread loop or an ObzenFlow flow
//! with some journals), in which shape, and how records arrive. Each has a name of the form
//! `<engine>-<shape>`, such as `disk-depth3`, `baseline-fanout4`, `single-depth10` or
//! `memory-trickle`, plus `idle-memory` and `idle-disk`,
//! and the soak scenarios `soak-memory` and `soak-disk` that `cargo xtask soak` runs.

use std::fmt;
use std::time::Duration;

/// The shape of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `stages` stages in a line, source and sink included: `depth2` is source -> sink,
    /// `depth3` is source -> map -> sink, `depth10` is source -> 8 maps -> sink.
    Chain {
        /// Stages (tasks) on the path, at least 2.
        stages: usize,
    },
    /// Source -> map -> `sinks` sinks, each sink reading every record.
    FanOut {
        /// How many sinks, at least 1.
        sinks: usize,
    },
}

impl Shape {
    /// How many map stages the shape has.
    pub(crate) fn maps(self) -> usize {
        match self {
            Self::Chain { stages } => stages - 2,
            Self::FanOut { .. } => 1,
        }
    }

    /// How many sinks the shape has; each sees every record.
    pub(crate) fn sinks(self) -> usize {
        match self {
            Self::Chain { .. } => 1,
            Self::FanOut { sinks } => sinks,
        }
    }

    /// How many stages (tasks) the shape has.
    pub(crate) fn stages(self) -> usize {
        1 + self.maps() + self.sinks()
    }

    fn parse(text: &str) -> Option<Self> {
        if let Some(stages) = text.strip_prefix("depth") {
            let stages = stages.parse().ok().filter(|stages| *stages >= 2)?;
            return Some(Self::Chain { stages });
        }
        let sinks = text.strip_prefix("fanout")?.parse().ok()?;
        (sinks >= 1).then_some(Self::FanOut { sinks })
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chain { stages } => write!(f, "depth{stages}"),
            Self::FanOut { sinks } => write!(f, "fanout{sinks}"),
        }
    }
}

/// Where an ObzenFlow flow keeps its journals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    /// `Journals::memory()`.
    Memory,
    /// `Journals::disk(dir)`: the default group-commit fsync.
    Disk,
    /// `Journals::disk(dir).with_sync_policy(SyncPolicy::EveryBatch)`.
    DiskEveryBatch,
}

impl Storage {
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Disk => "disk",
            Self::DiskEveryBatch => "disk-every",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Memory, Self::Disk, Self::DiskEveryBatch]
            .into_iter()
            .find(|storage| storage.name() == text)
    }
}

/// What moves the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// Hand-written tokio tasks connected by bounded mpsc channels.
    Baseline,
    /// One loop on one thread doing the baseline's per-record work: no channels, no tasks.
    Single,
    /// The baseline whose source also appends every record to a buffered file: the cost of
    /// raw durability.
    BaselineFile,
    /// An ObzenFlow flow.
    Flow(Storage),
}

impl Engine {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "baseline" => Some(Self::Baseline),
            "single" => Some(Self::Single),
            "baseline-file" => Some(Self::BaselineFile),
            other => Storage::parse(other).map(Self::Flow),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Baseline => f.write_str("baseline"),
            Self::Single => f.write_str("single"),
            Self::BaselineFile => f.write_str("baseline-file"),
            Self::Flow(storage) => f.write_str(storage.name()),
        }
    }
}

/// How records arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    /// As fast as the pipeline takes them: throughput, and latency under saturation.
    Flat,
    /// One record per period: the wake-up latency of an otherwise idle pipeline.
    Every(Duration),
}

/// The period of trickle scenarios: one record per millisecond.
pub(crate) const TRICKLE_PERIOD: Duration = Duration::from_millis(1);

/// One benchmark scenario, run alone in its own process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// Records through a pipeline, timed from the first record generated to the last consumed.
    Run {
        /// What moves the records.
        engine: Engine,
        /// The pipeline's shape.
        shape: Shape,
        /// How records arrive.
        pace: Pace,
    },
    /// A depth-3 flow whose source never emits, left alone for the idle window.
    Idle {
        /// Where its journals live.
        storage: Storage,
    },
    /// A depth-3 flow with an endless source and a paced sink, run for a fixed time under
    /// backpressure while `cargo xtask soak` watches its memory.
    Soak {
        /// Where its journals live.
        storage: Storage,
    },
}

impl Scenario {
    /// Parses a scenario name.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        if let Some(storage) = name.strip_prefix("idle-") {
            return Storage::parse(storage).map(|storage| Self::Idle { storage });
        }
        if let Some(storage) = name.strip_prefix("soak-") {
            return Storage::parse(storage).map(|storage| Self::Soak { storage });
        }
        let (engine, shape) = name.rsplit_once('-')?;
        let engine = Engine::parse(engine)?;
        if shape == "trickle" {
            return Some(Self::Run {
                engine,
                shape: Shape::Chain { stages: 3 },
                pace: Pace::Every(TRICKLE_PERIOD),
            });
        }
        Some(Self::Run {
            engine,
            shape: Shape::parse(shape)?,
            pace: Pace::Flat,
        })
    }

    /// Example names, for the usage message.
    pub(crate) const EXAMPLES: &'static [&'static str] = &[
        "baseline-depth3",
        "single-depth3",
        "baseline-file-depth3",
        "memory-depth3",
        "disk-depth3",
        "disk-every-depth10",
        "memory-fanout4",
        "disk-trickle",
        "idle-memory",
        "idle-disk",
        "soak-memory",
        "soak-disk",
    ];
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Run {
                engine,
                pace: Pace::Every(_),
                ..
            } => write!(f, "{engine}-trickle"),
            Self::Run { engine, shape, .. } => write!(f, "{engine}-{shape}"),
            Self::Idle { storage } => write!(f, "idle-{}", storage.name()),
            Self::Soak { storage } => write!(f, "soak-{}", storage.name()),
        }
    }
}
