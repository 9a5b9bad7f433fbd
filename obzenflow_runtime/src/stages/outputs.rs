//! A stage's outputs: stamping, routing to the data or error lane, batched appends.
//!
//! Everything a stage emits goes through here, so the bookkeeping fields of every event (id,
//! writer, lineage, flow context) are stamped in one place and the counts that end-of-stream
//! markers and reports rely on cannot drift from what was actually appended.

use std::fmt;
use std::sync::Arc;

use obzenflow_core::{
    ChainEvent, ContentAt, EventContent, FlowContext, Forwards, Journal, JournalError, JournalId,
    LifecycleEvent, ProcessingStatus,
};

use obzenflow_core::id::EventIdMint;

use super::context::StageInfo;
use super::counters::{BatchCounts, StageCounters};
use super::error::{RecordError, StageError};
use super::histogram::LocalHistogram;
use crate::facts::append_fact;

/// The journals a stage appends to, with the batch being assembled.
pub(crate) struct Outputs {
    info: Arc<StageInfo>,
    flow_context: FlowContext,
    data: Arc<dyn Journal>,
    error: Arc<dyn Journal>,
    data_batch: Vec<ChainEvent>,
    error_batch: Vec<ChainEvent>,
    /// For each record of `data_batch` (and `error_batch`), where its content is already
    /// stored, if it is the unchanged content of the input it came from.
    data_at: Vec<Option<ContentAt>>,
    error_at: Vec<Option<ContentAt>>,
    /// The journals the stage reads, which [`ContentAt::journal`] indexes.
    upstreams: Arc<[JournalId]>,
    batch: BatchCounts,
    data_records_written: u64,
    /// Records appended to the error lane, which its end-of-stream marker counts.
    error_records_written: u64,
    /// Ids for everything the stage emits: no clock read or random draw per record.
    ids: EventIdMint,
    counters: Arc<StageCounters>,
    /// Processing times of the batch in progress, merged into the counters on flush.
    timings: LocalHistogram,
}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outputs")
            .field("data", self.data.id())
            .field("error", self.error.id())
            .field("data_records_written", &self.data_records_written)
            .finish_non_exhaustive()
    }
}

impl Outputs {
    pub(crate) fn new(
        info: Arc<StageInfo>,
        data: Arc<dyn Journal>,
        error: Arc<dyn Journal>,
        counters: Arc<StageCounters>,
    ) -> Self {
        let flow_context = info.flow_context();
        Self {
            info,
            flow_context,
            data,
            error,
            data_batch: Vec::new(),
            error_batch: Vec::new(),
            data_at: Vec::new(),
            error_at: Vec::new(),
            upstreams: Arc::from([]),
            batch: BatchCounts::default(),
            data_records_written: 0,
            error_records_written: 0,
            ids: EventIdMint::new(),
            timings: counters.local_histogram(),
            counters,
        }
    }

    /// Names the journals the stage reads, in the order of its inputs.
    pub(crate) fn set_upstreams(&mut self, upstreams: Arc<[JournalId]>) {
        self.upstreams = upstreams;
    }

    /// Records how long the handler took for one input record.
    pub(crate) fn record_processing_time(&mut self, elapsed_ns: u64) {
        self.timings.record(elapsed_ns);
    }

    /// Publishes the size of the state the stage's handler holds.
    pub(crate) fn report_state(&self, size: super::state_size::StateSize) {
        self.counters.set_state(size);
    }

    /// Counts one input record (read from upstream, or produced by a source handler).
    pub(crate) fn count_input(&mut self) {
        self.batch.records_in += 1;
    }

    /// Counts one record a sink delivered out of the flow.
    pub(crate) fn count_delivered(&mut self) {
        self.batch.records_delivered += 1;
    }

    /// Queues a non-data event (a delivery receipt) for the data journal.
    pub(crate) fn emit_receipt(&mut self, receipt: obzenflow_core::DeliveryReceipt) {
        self.counters.note_receipt(&receipt);
        let mut event = ChainEvent::new(EventContent::Delivery(receipt));
        self.stamp(&mut event, None);
        self.data_batch.push(event);
        self.data_at.push(None);
    }

    /// Counts one input record that produced no output.
    pub(crate) fn count_filtered(&mut self) {
        self.batch.records_filtered += 1;
    }

    /// Stamps a handler's output and queues it: error-status records go to the error lane,
    /// everything else to the data lane. `parent` is the input it came from and where that
    /// was read: an output that carries the input's very content (a record passed on
    /// unchanged) is stored as a reference to it where the journal can.
    pub(crate) fn emit(
        &mut self,
        mut event: ChainEvent,
        parent: Option<(&ChainEvent, ContentAt)>,
        elapsed_ns: u64,
    ) {
        let forwarded = parent
            .filter(|(input, _)| same_content(&event, input))
            .map(|(_, at)| at);
        self.stamp(&mut event, parent.map(|(input, _)| input));
        event.processing_info.processing_time_ns = elapsed_ns;
        if event.is_error() {
            if let ProcessingStatus::Error { stage_id, .. } = &mut event.processing_info.status {
                stage_id.get_or_insert(self.info.stage_id);
            }
            self.push_error(event, forwarded);
        } else {
            self.push_data(event, forwarded);
        }
    }

    /// Forwards a record that arrived in error status, untouched but for its bookkeeping.
    pub(crate) fn pass_through(&mut self, input: &ChainEvent, at: ContentAt) {
        let mut event = input.clone();
        self.stamp(&mut event, Some(input));
        self.push_data(event, Some(at));
    }

    /// Puts `input`, read at `at`, on the error lane, marked with `error`.
    pub(crate) fn reject(
        &mut self,
        input: &ChainEvent,
        at: ContentAt,
        error: RecordError,
        elapsed_ns: u64,
    ) {
        let mut event = input.clone();
        self.stamp(&mut event, Some(input));
        event.processing_info.processing_time_ns = elapsed_ns;
        event.processing_info.status =
            ProcessingStatus::error(error.kind, error.message, Some(self.info.stage_id));
        self.push_error(event, Some(at));
    }

    /// Puts `event` on the error lane as it is; for records that end their journey here.
    pub(crate) fn park_error(&mut self, input: &ChainEvent, at: ContentAt) {
        let mut event = input.clone();
        self.stamp(&mut event, Some(input));
        self.push_error(event, Some(at));
    }

    fn push_data(&mut self, event: ChainEvent, at: Option<ContentAt>) {
        if event.is_data() {
            self.batch.records_out += 1;
        }
        self.data_batch.push(event);
        self.data_at.push(at);
    }

    fn push_error(&mut self, event: ChainEvent, at: Option<ContentAt>) {
        self.batch.records_errored += 1;
        if let ProcessingStatus::Error { kind, message, .. } = &event.processing_info.status {
            self.batch.count_error_kind(*kind);
            self.counters
                .note_error(|| error_reason(*kind, message, event.origin()));
        }
        self.error_batch.push(event);
        self.error_at.push(at);
    }

    /// Stamps `event`'s bookkeeping fields: id, writer, flow context and lineage. An event
    /// with a `parent` descends from it: it takes the parent's correlation and, unless its
    /// handler set one of its own, the parent's origin (an `Arc` clone, no allocation).
    fn stamp(&mut self, event: &mut ChainEvent, parent: Option<&ChainEvent>) {
        event.id = self.ids.next_id();
        event.writer_id = self.info.writer_id();
        event.flow_context = self.flow_context;
        if let Some(parent) = parent {
            if event.origin.is_none() {
                event.origin.clone_from(&parent.origin);
            }
        }
        event.causality = match parent {
            // A join's output names the other input's source record itself; any record
            // after it keeps naming it, as it keeps its origin.
            Some(parent) => obzenflow_core::Causality {
                joined_correlation_id: event
                    .causality
                    .joined_correlation_id
                    .or(parent.causality.joined_correlation_id),
                ..parent.child_causality()
            },
            // A source record starts a correlation chain. It keeps the origin its handler
            // recorded, if any: a replayed record's parent is the archived record it re-emits.
            None => obzenflow_core::Causality {
                parent_id: event
                    .causality
                    .parent_id
                    .filter(|_| self.info.kind.is_source()),
                correlation_id: Some(obzenflow_core::CorrelationId::from_origin(event.id)),
                joined_correlation_id: None,
            },
        };
    }

    /// Appends the queued batch (data first, then errors) and publishes its counts.
    pub(crate) async fn flush(&mut self) -> Result<(), StageError> {
        if !self.data_batch.is_empty() {
            let batch = std::mem::take(&mut self.data_batch);
            let forwards = Forwards {
                journals: &self.upstreams,
                records: &self.data_at,
            };
            let appended = self.data.append_forwarding(batch, forwards).await;
            self.data_at.clear();
            appended.map_err(|source| self.journal_error(source))?;
        }
        if !self.error_batch.is_empty() {
            let batch = std::mem::take(&mut self.error_batch);
            self.error_records_written += batch.len() as u64;
            let forwards = Forwards {
                journals: &self.upstreams,
                records: &self.error_at,
            };
            let appended = self.error.append_forwarding(batch, forwards).await;
            self.error_at.clear();
            appended.map_err(|source| self.journal_error(source))?;
        }
        self.data_records_written += self.batch.records_out;
        self.counters.add(std::mem::take(&mut self.batch));
        self.counters.add_timings(&mut self.timings);
        Ok(())
    }

    /// Flushes, then appends an end-of-stream marker to each lane with the count of data
    /// records on it: the error lane's first, so a reader that has seen the data lane end
    /// knows the error lane is whole too.
    pub(crate) async fn end_of_stream(&mut self) -> Result<(), StageError> {
        self.flush().await?;
        let mut errors_end = ChainEvent::end_of_stream(self.error_records_written);
        self.stamp(&mut errors_end, None);
        self.error
            .append(vec![errors_end])
            .await
            .map_err(|source| self.journal_error(source))?;
        let mut marker = ChainEvent::end_of_stream(self.data_records_written);
        self.stamp(&mut marker, None);
        self.data
            .append(vec![marker])
            .await
            .map_err(|source| self.journal_error(source))?;
        Ok(())
    }

    /// Appends the `started` lifecycle fact to the data journal.
    pub(crate) async fn announce_started(&self) -> Result<(), JournalError> {
        let writer = self.info.writer_id();
        let started = LifecycleEvent::Started;
        append_fact(self.data.as_ref(), writer, self.flow_context, started).await
    }

    fn journal_error(&self, source: JournalError) -> StageError {
        StageError::Journal {
            stage: self.info.name.to_string(),
            source,
        }
    }
}

/// The reason a report gives for an error-lane record: kind and message, then the input
/// position it came from (`(from orders.csv:7)`), unless the message already starts with it
/// (as the file sources' own errors do).
fn error_reason(
    kind: obzenflow_core::ErrorKind,
    message: &str,
    origin: Option<&obzenflow_core::SourcePosition>,
) -> String {
    match origin {
        Some(origin) if !message.starts_with(&format!("{origin}:")) => {
            format!("{kind}: {message} (from {origin})")
        }
        _ => format!("{kind}: {message}"),
    }
}

/// Whether `output` carries the very content of `input`: the same event type and schema
/// version, and the same payload value (shared, not merely equal).
fn same_content(output: &ChainEvent, input: &ChainEvent) -> bool {
    match (&output.content, &input.content) {
        (
            EventContent::Data {
                event_type,
                schema_version,
                payload,
            },
            EventContent::Data {
                event_type: input_type,
                schema_version: input_version,
                payload: input_payload,
            },
        ) => {
            payload.ptr_eq(input_payload)
                && schema_version == input_version
                && event_type == input_type
        }
        _ => false,
    }
}
