//! Transforms: each record in, zero or more records out. Also the base of stateful stages,
//! which are transforms that emit what they folded when their input ends.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use obzenflow_core::{ChainEvent, Record};

use super::context::StageKind;
use super::error::{HandlerFailure, RecordError, StageError};
use super::inputs::Inputs;
use super::logic::{elapsed_ns, Progress, StageLogic};
use super::outputs::Outputs;

/// The outcome of processing one record: its outputs, or why it failed.
pub type RecordResult = Result<Vec<ChainEvent>, RecordError>;

/// A transform that handles each record synchronously.
///
/// Returning `Ok(vec![])` filters the record out; returning `Err` puts it on the error lane with
/// the error's kind and message, and the stage goes on. Records that arrive already in error
/// status never reach the handler: they pass through untouched.
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

    /// Called once when every upstream has ended; returns records still held (aggregates).
    fn drain(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        Ok(Vec::new())
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

    /// Called once when every upstream has ended; returns records still held.
    fn drain(&mut self) -> impl Future<Output = Result<Vec<ChainEvent>, HandlerFailure>> + Send {
        async { Ok(Vec::new()) }
    }
}

/// A batch processor with per-record timings, the shape both handler forms reduce to.
pub(crate) trait TimedProcessor: Send + 'static {
    fn initialize(&mut self) -> impl Future<Output = Result<(), HandlerFailure>> + Send;
    fn process_batch<'a>(
        &'a mut self,
        events: &'a [Record],
        results: &'a mut Vec<(RecordResult, u64)>,
    ) -> impl Future<Output = ()> + Send + 'a;
    fn drain(&mut self) -> impl Future<Output = Result<Vec<ChainEvent>, HandlerFailure>> + Send;
}

/// Runs a [`TransformHandler`]; each record is charged an equal share of the batch time.
pub(crate) struct SyncTransform<H>(pub(crate) H);

impl<H: TransformHandler> TimedProcessor for SyncTransform<H> {
    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.0.initialize()
    }

    async fn process_batch<'a>(
        &'a mut self,
        events: &'a [Record],
        results: &'a mut Vec<(RecordResult, u64)>,
    ) {
        // One clock read per batch, not per record: each record is charged an equal share.
        let start = Instant::now();
        let first = results.len();
        results.extend(events.iter().map(|event| (self.0.process(event), 0)));
        let share = elapsed_ns(start) / events.len().max(1) as u64;
        for (_, elapsed) in &mut results[first..] {
            *elapsed = share;
        }
    }

    async fn drain(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        self.0.drain()
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
        results: &'a mut Vec<(RecordResult, u64)>,
    ) {
        let start = Instant::now();
        let outcomes = self.0.process_batch(events).await;
        let share = elapsed_ns(start) / events.len().max(1) as u64;
        results.extend(outcomes.into_iter().map(|outcome| (outcome, share)));
    }

    async fn drain(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        self.0.drain().await
    }
}

/// The transform (and stateful) strategy of the stage supervisor.
pub(crate) struct TransformLogic<P> {
    /// A stateful stage absorbs most records into its state; that is not filtering.
    counts_empty_as_filtered: bool,
    stage: Arc<str>,
    processor: P,
    inputs: Inputs,
    to_process: Vec<Record>,
    results: Vec<(RecordResult, u64)>,
}

impl<P: TimedProcessor> TransformLogic<P> {
    pub(crate) fn new(kind: StageKind, stage: Arc<str>, processor: P, inputs: Inputs) -> Self {
        Self {
            counts_empty_as_filtered: kind == StageKind::Transform,
            stage,
            processor,
            inputs,
            to_process: Vec::new(),
            results: Vec::new(),
        }
    }

    /// Routes a processed batch: outputs to the data lane, failures to the error lane.
    fn route(&mut self, outputs: &mut Outputs) -> Result<(), StageError> {
        if self.results.len() != self.to_process.len() {
            return Err(StageError::Handler {
                stage: self.stage.to_string(),
                message: format!(
                    "handler returned {} results for a batch of {} records",
                    self.results.len(),
                    self.to_process.len()
                ),
                source: None,
            });
        }
        for (input, (result, elapsed)) in self.to_process.drain(..).zip(self.results.drain(..)) {
            outputs.record_processing_time(elapsed);
            match result {
                Ok(records) if records.is_empty() => {
                    if self.counts_empty_as_filtered {
                        outputs.count_filtered();
                    }
                }
                Ok(records) => {
                    let share = elapsed / records.len() as u64;
                    for record in records {
                        outputs.emit(record, Some(&input), share);
                    }
                }
                Err(error) => outputs.reject(&input, error, elapsed),
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
        )?;
        if !self.to_process.is_empty() {
            self.processor
                .process_batch(&self.to_process, &mut self.results)
                .await;
            self.route(outputs)?;
        }
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
