//! Transforms: each record in, zero or more records out. Also the base of stateful stages,
//! which are transforms that emit what they folded when their input ends.

use super::record_type::RecordType;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use obzenflow_core::{ChainEvent, ContentAt, Record};

use super::context::StageKind;
use super::error::{HandlerFailure, RecordError, StageError};
use super::inputs::Inputs;
use super::logic::{elapsed_ns, Progress, StageLogic};
use super::outputs::Outputs;
use super::state_size::StateSize;

/// The outcome of processing one record: its outputs, or why it failed.
pub type RecordResult = Result<Vec<ChainEvent>, RecordError>;

/// A transform that handles each record synchronously.
///
/// Returning `Ok(vec![])` filters the record out; returning `Err` puts it on the error lane with
/// the error's kind and message, and the stage goes on. Records that arrive already in error
/// status on a data edge never reach the handler: they pass through untouched. Records read
/// from an upstream's error lane (`StageRef::errors`) do, in error status: a repairing
/// transform returns new records (in success status) to send them on.
///
/// ```
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::stages::{RecordError, TransformHandler};
///
/// struct AddTax;
///
/// impl TransformHandler for AddTax {
///     fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
///         let mut out = event.clone();
///         let payload = out.payload_mut().ok_or("not a data record")?;
///         let amount = payload["amount"].as_f64().ok_or("amount is missing")?;
///         payload["with_tax"] = serde_json::json!(amount * 1.2);
///         Ok(vec![out])
///     }
/// }
/// ```
pub trait TransformHandler: Send + 'static {
    /// Opens resources; an error fails the stage.
    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        Ok(())
    }

    /// Processes one record.
    fn process(&mut self, event: &ChainEvent) -> RecordResult;

    /// The type of the records it decodes, if it takes one type ([`RecordType::of`]); `None`
    /// (the default) for any. `FlowBuilder::build` checks it against what each upstream stage
    /// emits.
    fn input_type(&self) -> Option<RecordType> {
        None
    }

    /// The type of the records it emits, if it emits one type; `None` (the default) for any.
    fn output_type(&self) -> Option<RecordType> {
        None
    }

    /// Processes one record, pushing its outputs to `out` (empty when called, and reused from
    /// record to record); what the runtime calls. The default calls [`process`](Self::process);
    /// a handler on a hot path can override it to emit without a `Vec` per record. On `Err`,
    /// whatever it pushed is discarded.
    fn process_into(
        &mut self,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        out.extend(self.process(event)?);
        Ok(())
    }

    /// Called once when every upstream has ended; returns records still held (aggregates).
    fn drain(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        Ok(Vec::new())
    }

    /// How much state it holds, asked after each batch and published as the stage's state
    /// gauge ([`StateSize`]); `None` (the default) for none.
    fn state_size(&self) -> Option<StateSize> {
        None
    }
}

/// A stateful stage's handler: it folds each record into state it holds and emits from that
/// state, when its input ends ([`finish`](Self::finish)) and, if it chooses, whenever part of
/// the state is complete (a window that closed), such as `obzenflow_stages::stateful::Aggregate`.
///
/// A stage of this kind is added with `FlowBuilder::stateful` or `add_stateful` and reported
/// with the kind `stateful`; a record it absorbs into its state is not counted as filtered.
///
/// ```
/// use std::collections::BTreeMap;
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::stages::{HandlerFailure, RecordError, StatefulHandler};
///
/// /// Counts records per event type, emitted when the input ends.
/// #[derive(Default)]
/// struct CountByType(BTreeMap<String, u64>);
///
/// impl StatefulHandler for CountByType {
///     fn accumulate(&mut self, event: &ChainEvent, _ready: &mut Vec<ChainEvent>) -> Result<(), RecordError> {
///         let kind = event.event_type().ok_or("not a data record")?;
///         *self.0.entry(kind.to_string()).or_default() += 1;
///         Ok(())
///     }
///
///     fn finish(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
///         Ok(std::mem::take(&mut self.0)
///             .into_iter()
///             .map(|(kind, count)| ChainEvent::data("count", serde_json::json!({"type": kind, "count": count})))
///             .collect())
///     }
/// }
/// ```
pub trait StatefulHandler: Send + 'static {
    /// Opens resources; an error fails the stage.
    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        Ok(())
    }

    /// Folds one record into the state, pushing to `ready` (empty when called) any record
    /// that is complete now. `Err` puts the record on the error lane with the error's kind and
    /// message, discards what was pushed, and the stage goes on: leave the state as it was.
    fn accumulate(
        &mut self,
        event: &ChainEvent,
        ready: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError>;

    /// Called once when every upstream has ended: the records the state still holds.
    fn finish(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure>;

    /// The type of the records it decodes, if it takes one type ([`RecordType::of`]); `None`
    /// (the default) for any. `FlowBuilder::build` checks it against what each upstream stage
    /// emits.
    fn input_type(&self) -> Option<RecordType> {
        None
    }

    /// The type of the records it emits, if it emits one type; `None` (the default) for any.
    fn output_type(&self) -> Option<RecordType> {
        None
    }
}

/// A [`StatefulHandler`] run by the transform machinery: `accumulate` per record, `finish`
/// at the end of the input.
pub(crate) struct Stateful<H>(pub(crate) H);

impl<H: StatefulHandler> TransformHandler for Stateful<H> {
    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.0.initialize()
    }

    fn process(&mut self, event: &ChainEvent) -> RecordResult {
        let mut ready = Vec::new();
        self.0.accumulate(event, &mut ready)?;
        Ok(ready)
    }

    fn process_into(
        &mut self,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError> {
        self.0.accumulate(event, out)
    }

    fn input_type(&self) -> Option<RecordType> {
        self.0.input_type()
    }

    fn output_type(&self) -> Option<RecordType> {
        self.0.output_type()
    }

    fn drain(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        self.0.finish()
    }
}

/// A transform that handles a batch at a time and may await (remote calls, bounded
/// concurrency within the batch).
pub trait AsyncTransformHandler: Send + 'static {
    /// Opens resources; an error fails the stage.
    fn initialize(&mut self) -> impl Future<Output = Result<(), HandlerFailure>> + Send {
        async { Ok(()) }
    }

    /// Processes a batch; returns exactly one result per input, in input order.
    ///
    /// Cancel safety: never cancelled by the runtime once started.
    fn process_batch<'a>(
        &'a mut self,
        events: &'a [Record],
    ) -> impl Future<Output = Vec<RecordResult>> + Send + 'a;

    /// The type of the records it decodes, if it takes one type ([`RecordType::of`]); `None`
    /// (the default) for any. `FlowBuilder::build` checks it against what each upstream stage
    /// emits.
    fn input_type(&self) -> Option<RecordType> {
        None
    }

    /// The type of the records it emits, if it emits one type; `None` (the default) for any.
    fn output_type(&self) -> Option<RecordType> {
        None
    }

    /// Called once when every upstream has ended; returns records still held.
    fn drain(&mut self) -> impl Future<Output = Result<Vec<ChainEvent>, HandlerFailure>> + Send {
        async { Ok(Vec::new()) }
    }
}

/// What a batch produced: per input, how many outputs it made (or why it failed) and its share
/// of the batch time; the outputs of every input, in input order, in one vector.
#[derive(Default)]
pub(crate) struct Processed {
    pub(super) outcomes: Vec<(Result<usize, RecordError>, u64)>,
    pub(super) outputs: Vec<ChainEvent>,
    /// Set when a handler ended a run of records with the wrong number of results: what it
    /// did, for the stage's error.
    pub(super) miscounted: Option<String>,
}

impl Processed {
    fn push(&mut self, result: RecordResult, elapsed: u64) {
        let outcome = result.map(|records| {
            let count = records.len();
            self.outputs.extend(records);
            count
        });
        self.outcomes.push((outcome, elapsed));
    }
}

/// A batch processor with per-record timings, the shape both handler forms reduce to.
pub(crate) trait TimedProcessor: Send + 'static {
    fn initialize(&mut self) -> impl Future<Output = Result<(), HandlerFailure>> + Send;
    /// Processes `events`, read at `at` (whose `journal` is the input each came from).
    fn process_batch<'a>(
        &'a mut self,
        events: &'a [Record],
        at: &'a [ContentAt],
        processed: &'a mut Processed,
    ) -> impl Future<Output = ()> + Send + 'a;
    /// Tells the handler the inputs in `ended` ended, in order; it may push records to `out`.
    fn inputs_ended(
        &mut self,
        _ended: &[usize],
        _out: &mut Vec<ChainEvent>,
    ) -> Result<(), HandlerFailure> {
        Ok(())
    }
    /// The size of the state the handler holds, if it reports one.
    fn state_size(&self) -> Option<StateSize> {
        None
    }
    fn drain(&mut self) -> impl Future<Output = Result<Vec<ChainEvent>, HandlerFailure>> + Send;
}

/// Runs a [`TransformHandler`]; each record is charged an equal share of the batch time.
pub(crate) struct SyncTransform<H> {
    handler: H,
    /// The outputs of the record in hand, moved into the batch's outputs after each record.
    scratch: Vec<ChainEvent>,
}

impl<H> SyncTransform<H> {
    pub(crate) fn new(handler: H) -> Self {
        Self {
            handler,
            scratch: Vec::new(),
        }
    }
}

impl<H: TransformHandler> TimedProcessor for SyncTransform<H> {
    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.handler.initialize()
    }

    async fn process_batch<'a>(
        &'a mut self,
        events: &'a [Record],
        _at: &'a [ContentAt],
        processed: &'a mut Processed,
    ) {
        // One clock read per batch, not per record: each record is charged an equal share.
        let start = Instant::now();
        let first = processed.outcomes.len();
        for event in events {
            self.scratch.clear();
            let outcome = self
                .handler
                .process_into(event, &mut self.scratch)
                .map(|()| {
                    let count = self.scratch.len();
                    processed.outputs.append(&mut self.scratch);
                    count
                });
            processed.outcomes.push((outcome, 0));
        }
        let share = elapsed_ns(start) / events.len().max(1) as u64;
        for (_, elapsed) in &mut processed.outcomes[first..] {
            *elapsed = share;
        }
    }

    fn state_size(&self) -> Option<StateSize> {
        self.handler.state_size()
    }

    async fn drain(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        self.handler.drain()
    }
}

/// Runs an [`AsyncTransformHandler`]; each record is charged an equal share of the batch time.
pub(crate) struct AsyncTransform<H>(pub(crate) H);

impl<H: AsyncTransformHandler> TimedProcessor for AsyncTransform<H> {
    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.0.initialize().await
    }

    async fn process_batch<'a>(
        &'a mut self,
        events: &'a [Record],
        _at: &'a [ContentAt],
        processed: &'a mut Processed,
    ) {
        let start = Instant::now();
        let outcomes = self.0.process_batch(events).await;
        let share = elapsed_ns(start) / events.len().max(1) as u64;
        for outcome in outcomes {
            processed.push(outcome, share);
        }
    }

    async fn drain(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        self.0.drain().await
    }
}

/// The transform (and stateful) strategy of the stage supervisor.
pub(crate) struct TransformLogic<P> {
    /// Per input (by index; inputs past the end as the last), whether a record that produced
    /// no output counts as filtered: a stateful stage absorbs most records into its state,
    /// which is not filtering, and so does the state input of a multi-input stage.
    filtered_when_empty: Vec<bool>,
    stage: Arc<str>,
    processor: P,
    inputs: Inputs,
    to_process: Vec<Record>,
    /// Where each of `to_process` was read.
    to_process_at: Vec<ContentAt>,
    processed: Processed,
    /// Inputs whose end was read in the batch in hand.
    ended: Vec<usize>,
}

impl<P: TimedProcessor> TransformLogic<P> {
    pub(crate) fn new(kind: StageKind, stage: Arc<str>, processor: P, inputs: Inputs) -> Self {
        Self::with_filtering(stage, processor, inputs, vec![kind == StageKind::Transform])
    }

    /// A logic whose records of input `i` that produce nothing count as filtered when
    /// `filtered_when_empty[i]` (the last entry stands for the inputs past the end).
    pub(crate) fn with_filtering(
        stage: Arc<str>,
        processor: P,
        inputs: Inputs,
        filtered_when_empty: Vec<bool>,
    ) -> Self {
        Self {
            filtered_when_empty,
            stage,
            processor,
            inputs,
            to_process: Vec::new(),
            to_process_at: Vec::new(),
            processed: Processed::default(),
            ended: Vec::new(),
        }
    }

    /// Hands the ends read in this batch to the handler, then publishes its state size.
    fn after_batch(&mut self, outputs: &mut Outputs) -> Result<(), StageError> {
        self.inputs.take_ended(&mut self.ended);
        if !self.ended.is_empty() {
            let mut held = Vec::new();
            let ended = self.processor.inputs_ended(&self.ended, &mut held);
            self.ended.clear();
            ended.map_err(|failure| failure.into_stage_error(&self.stage))?;
            for record in held {
                outputs.emit(record, None, 0);
            }
        }
        if let Some(size) = self.processor.state_size() {
            outputs.report_state(size);
        }
        Ok(())
    }

    /// Routes a processed batch: outputs to the data lane, failures to the error lane.
    fn route(&mut self, outputs: &mut Outputs) -> Result<(), StageError> {
        let Processed {
            outcomes,
            outputs: produced,
            miscounted,
        } = &mut self.processed;
        let miscounted = miscounted.take().or_else(|| {
            (outcomes.len() != self.to_process.len()).then(|| {
                format!(
                    "handler returned {} results for a batch of {} records",
                    outcomes.len(),
                    self.to_process.len()
                )
            })
        });
        if let Some(message) = miscounted {
            outcomes.clear();
            produced.clear();
            self.to_process.clear();
            self.to_process_at.clear();
            return Err(StageError::Handler {
                stage: self.stage.to_string(),
                message,
                source: None,
            });
        }
        let mut produced = produced.drain(..);
        let inputs = self.to_process.drain(..).zip(self.to_process_at.drain(..));
        let filtered_when_empty = &self.filtered_when_empty;
        let last = filtered_when_empty.len().saturating_sub(1);
        for ((input, at), (outcome, elapsed)) in inputs.zip(outcomes.drain(..)) {
            outputs.record_processing_time(elapsed);
            match outcome {
                Ok(0) => {
                    let index = (at.journal as usize).min(last);
                    if filtered_when_empty.get(index).copied().unwrap_or(false) {
                        outputs.count_filtered();
                    }
                }
                Ok(count) => {
                    let share = elapsed / count as u64;
                    for record in produced.by_ref().take(count) {
                        outputs.emit(record, Some((&input, at)), share);
                    }
                }
                Err(error) => outputs.reject(&input, at, error, elapsed),
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl<P: TimedProcessor> StageLogic for TransformLogic<P> {
    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.processor.initialize().await
    }

    async fn wait_for_input(&mut self) -> Result<(), StageError> {
        self.inputs.wait().await
    }

    async fn run_batch(
        &mut self,
        outputs: &mut Outputs,
        batch_limit: usize,
    ) -> Result<Progress, StageError> {
        self.inputs.read_work(
            batch_limit,
            outputs,
            Outputs::pass_through,
            &mut self.to_process,
            &mut self.to_process_at,
        )?;
        if !self.to_process.is_empty() {
            self.processor
                .process_batch(&self.to_process, &self.to_process_at, &mut self.processed)
                .await;
            self.route(outputs)?;
        }
        self.after_batch(outputs)?;
        outputs.flush().await?;
        Ok(self.inputs.progress())
    }

    async fn drain(&mut self, outputs: &mut Outputs) -> Result<(), StageError> {
        let held = self
            .processor
            .drain()
            .await
            .map_err(|failure| failure.into_stage_error(&self.stage))?;
        for record in held {
            outputs.emit(record, None, 0);
        }
        outputs.flush().await
    }
}
