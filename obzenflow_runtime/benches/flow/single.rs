//! The single-thread engine: the COST baseline ("Configuration that Outperforms a Single
//! Thread"). One loop on one thread does exactly the per-record work of the tokio baseline
//! (generate the record, run each map on it in turn, hand it to every sink) with no channels,
//! no tasks and no hand-offs, so a pipeline's ratio to it is what the pipeline's machinery costs
//! over the work itself.

use std::time::Instant;

use crate::scenario::Shape;
use crate::work::{add_tax, order, Tally};
use crate::RunOutcome;

/// Runs `records` records through `shape`'s work in one loop on the calling thread.
pub(crate) fn run(shape: Shape, records: u64) -> RunOutcome {
    let started = Instant::now();
    // One tally per sink, as the baseline has, so the fan-out does four sinks' work.
    let mut sinks: Vec<Tally> = (0..shape.sinks()).map(|_| Tally::new()).collect();
    for index in 0..records {
        let mut record = order(index);
        for _ in 0..shape.maps() {
            add_tax(&mut record);
        }
        for sink in &mut sinks {
            sink.observe(&record);
        }
    }
    let elapsed = started.elapsed();
    let mut tally = Tally::new();
    for sink in &sinks {
        tally.merge(sink);
    }
    RunOutcome {
        records,
        elapsed,
        tally,
        journal_bytes: None,
        durability: "none".to_owned(),
    }
}
