//! A stage's inputs: one cursor per upstream journal, end-of-stream tracking and the edge
//! contract.
//!
//! The edge contract: when an upstream's end-of-stream marker says it wrote `n` data records,
//! this stage must have read exactly `n` data records from that upstream. A mismatch means a
//! record was lost or duplicated on the edge, and fails the stage naming the edge.
//!
//! Order: the records of one upstream are read in its journal's order, and its end-of-stream
//! after all of them. Between upstreams nothing is promised beyond that: they are read round
//! robin, a batch at a time, starting from a different one each batch. A stage may name
//! upstreams to read first ([`Inputs::read_first`]): until each of them has ended, the others
//! are neither read nor waited on.

use std::sync::Arc;

use obzenflow_core::{
    ChainEvent, ContentAt, EventContent, JournalError, JournalReader, Lane, Record,
};

use super::error::StageError;
use super::logic::Progress;
use super::outputs::Outputs;
use crate::wait_any::{wait_any, BoxFuture};

/// One upstream journal as seen by this stage.
struct Upstream {
    reader: Box<dyn JournalReader>,
    data_records_read: u64,
    ended: bool,
    /// The upstream is an error lane: its records are in error status, and they are this
    /// stage's work, not records to pass on.
    error_lane: bool,
}

/// The set of upstream cursors of a reading stage.
pub(crate) struct Inputs {
    stage: Arc<str>,
    upstreams: Vec<Upstream>,
    scratch: Vec<Record>,
    batch: Vec<Record>,
    batch_at: Vec<ContentAt>,
    next_upstream: usize,
    /// The upstreams read to their end before any other is read (by index), if any.
    first: Vec<usize>,
    /// Upstreams whose end-of-stream was read since [`Inputs::take_ended`] last ran, in order.
    ended_order: Vec<usize>,
}

impl Inputs {
    pub(crate) fn new(stage: Arc<str>, readers: Vec<Box<dyn JournalReader>>) -> Self {
        let upstreams = readers
            .into_iter()
            .map(|reader| Upstream {
                error_lane: reader.journal_id().lane == Lane::Error,
                reader,
                data_records_read: 0,
                ended: false,
            })
            .collect();
        Self {
            stage,
            upstreams,
            scratch: Vec::new(),
            batch: Vec::new(),
            batch_at: Vec::new(),
            next_upstream: 0,
            first: Vec::new(),
            ended_order: Vec::new(),
        }
    }

    /// Reads only the upstreams in `first` (by index; others are ignored) until each of them
    /// has ended; only then the rest. [`wait`](Self::wait) waits only on the upstreams that
    /// may be read.
    pub(crate) fn read_first(&mut self, first: Vec<usize>) {
        self.first = first
            .into_iter()
            .filter(|index| *index < self.upstreams.len())
            .collect();
    }

    /// Whether the upstream at `index` may be read now.
    fn readable(&self, index: usize) -> bool {
        let gated = self.first.iter().any(|first| !self.upstreams[*first].ended);
        !gated || self.first.contains(&index)
    }

    /// Moves the upstreams whose end-of-stream was read since the last call into `out`, in the
    /// order they ended; each upstream ends once.
    pub(crate) fn take_ended(&mut self, out: &mut Vec<usize>) {
        out.append(&mut self.ended_order);
    }

    /// Whether every upstream has ended.
    pub(crate) fn exhausted(&self) -> bool {
        self.upstreams.iter().all(|upstream| upstream.ended)
    }

    /// Whether the stage is done reading ([`Progress::Exhausted`]) or may get more.
    pub(crate) fn progress(&self) -> Progress {
        if self.exhausted() {
            Progress::Exhausted
        } else {
            Progress::Continue
        }
    }

    /// Reads up to `max` data records and counts them as the stage's input. Records that
    /// arrive already in error status on a data edge never reach the handler: they go to
    /// `on_error` (a transform passes them through, a sink parks them on its error lane).
    /// The rest, and everything read from an upstream's error lane, are collected into
    /// `work`, and where each was read into `work_at`.
    pub(crate) fn read_work(
        &mut self,
        max: usize,
        outputs: &mut Outputs,
        on_error: fn(&mut Outputs, &ChainEvent, ContentAt),
        work: &mut Vec<Record>,
        work_at: &mut Vec<ContentAt>,
    ) -> Result<(), StageError> {
        let mut batch = std::mem::take(&mut self.batch);
        let mut batch_at = std::mem::take(&mut self.batch_at);
        let read = self.read_batch(max, &mut batch, &mut batch_at);
        for (event, at) in batch.drain(..).zip(batch_at.drain(..)) {
            outputs.count_input();
            if event.is_error() && !self.upstreams[at.journal as usize].error_lane {
                on_error(outputs, &event, at);
            } else {
                work.push(event);
                work_at.push(at);
            }
        }
        self.batch = batch;
        self.batch_at = batch_at;
        read.map(|_| ())
    }

    /// Waits until some upstream that has not ended, and may be read now, has a record to
    /// read.
    ///
    /// Cancel safety: cancel safe; nothing is consumed.
    pub(crate) async fn wait(&self) -> Result<(), StageError> {
        let mut waits: Vec<BoxFuture<'_, Result<(), JournalError>>> = self
            .upstreams
            .iter()
            .enumerate()
            .filter(|(index, upstream)| !upstream.ended && self.readable(*index))
            .map(|(_, upstream)| upstream.reader.wait())
            .collect();
        let result = match waits.pop() {
            None => Ok(()),
            Some(only) if waits.is_empty() => only.await,
            Some(last) => {
                waits.push(last);
                wait_any(waits).await.1
            }
        };
        result.map_err(|error| self.upstream_error(error))
    }

    /// Reads up to `max` data records across the upstreams into `out`, and where each was read
    /// into `out_at`, handling end-of-stream markers and the edge contract on the way. Control
    /// and lifecycle records are consumed and not returned.
    pub(crate) fn read_batch(
        &mut self,
        max: usize,
        out: &mut Vec<Record>,
        out_at: &mut Vec<ContentAt>,
    ) -> Result<usize, StageError> {
        let count = self.upstreams.len();
        let mut read = 0;
        // Decided once per batch: an upstream read first that ends in this batch lets the
        // others be read from the next batch on, so its end is handed over before any of
        // their records.
        if self.first.iter().all(|first| self.upstreams[*first].ended) {
            self.first.clear();
        }
        let readable: Vec<bool> = if self.first.is_empty() {
            Vec::new()
        } else {
            (0..count).map(|index| self.readable(index)).collect()
        };
        for step in 0..count {
            if read >= max {
                break;
            }
            // Start from a different upstream each time so no edge can starve another.
            let index = (self.next_upstream + step) % count;
            if !readable.is_empty() && !readable[index] {
                continue;
            }
            read += self.read_upstream(index, max - read, out, out_at)?;
        }
        self.next_upstream = (self.next_upstream + 1) % count.max(1);
        Ok(read)
    }

    fn read_upstream(
        &mut self,
        index: usize,
        max: usize,
        out: &mut Vec<Record>,
        out_at: &mut Vec<ContentAt>,
    ) -> Result<usize, StageError> {
        let upstream = &mut self.upstreams[index];
        if upstream.ended {
            return Ok(0);
        }
        self.scratch.clear();
        let first_seq = upstream.reader.position();
        upstream
            .reader
            .read(max, &mut self.scratch)
            .map_err(|source| StageError::Journal {
                stage: self.stage.to_string(),
                source,
            })?;
        let mut data = 0;
        for (seq, event) in (first_seq..).zip(self.scratch.drain(..)) {
            if upstream.ended {
                continue;
            }
            match &event.content {
                EventContent::Data { .. } => {
                    upstream.data_records_read += 1;
                    data += 1;
                    out.push(event);
                    out_at.push(ContentAt {
                        journal: index as u32,
                        seq,
                    });
                }
                _ => {
                    if let Some(expected) = event.end_of_stream_count() {
                        upstream.ended = true;
                        self.ended_order.push(index);
                        if expected != upstream.data_records_read {
                            return Err(StageError::EdgeContract {
                                stage: self.stage.to_string(),
                                upstream: upstream.reader.journal_id().clone(),
                                expected,
                                actual: upstream.data_records_read,
                            });
                        }
                    }
                }
            }
        }
        Ok(data)
    }

    fn upstream_error(&self, error: JournalError) -> StageError {
        match error {
            JournalError::Closed { journal } => StageError::UpstreamClosed {
                stage: self.stage.to_string(),
                upstream: journal,
            },
            source => StageError::Journal {
                stage: self.stage.to_string(),
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::MemoryJournal;
    use obzenflow_core::{Journal, JournalId, Lane, StageId, WriterId};

    fn upstream(data_records: u64, claimed: u64) -> MemoryJournal {
        let id = JournalId::new(WriterId::Stage(StageId::new()), "orders", Lane::Data);
        let journal = MemoryJournal::new(id);
        let mut events: Vec<ChainEvent> = (0..data_records)
            .map(|n| ChainEvent::data("n", serde_json::json!(n)))
            .collect();
        events.push(ChainEvent::end_of_stream(claimed));
        block_on(journal.append(events)).unwrap();
        journal
    }

    /// Appending to a memory journal with room in every window completes without waiting.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_lost_record_breaks_the_edge_contract_naming_the_edge_and_both_counts() {
        let journal = upstream(4, 5);
        let mut inputs = Inputs::new("enrich".into(), vec![journal.reader(0, None).unwrap()]);
        let mut out = Vec::new();
        let error = inputs
            .read_batch(100, &mut out, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(
            &error,
            StageError::EdgeContract { stage, expected: 5, actual: 4, .. } if stage == "enrich"
        ));
        assert_eq!(
            error.to_string(),
            "edge contract broken on orders.data: upstream wrote 5 records, 4 were read"
        );
    }

    #[test]
    fn a_matching_count_ends_the_upstream() {
        let journal = upstream(3, 3);
        let mut inputs = Inputs::new("enrich".into(), vec![journal.reader(0, None).unwrap()]);
        let mut out = Vec::new();
        assert_eq!(
            inputs.read_batch(100, &mut out, &mut Vec::new()).unwrap(),
            3
        );
        assert!(inputs.exhausted());
    }
}
