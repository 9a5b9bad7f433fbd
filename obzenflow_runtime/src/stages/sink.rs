//! Sinks: deliver records out of the flow, flush on drain, and journal delivery receipts.

use super::record_type::RecordType;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use obzenflow_core::{ChainEvent, ContentAt, DeliveryReceipt, Record};

use super::context::StageInfo;
use super::environment::RunEnvironment;
use super::error::{HandlerFailure, RecordError, StageError};
use super::inputs::Inputs;
use super::logic::{elapsed_ns, Progress, StageLogic};
use super::outputs::Outputs;

/// A sink that consumes each record synchronously.
///
/// A record it cannot deliver (`Err`) goes to the error lane; records that arrive in error
/// status never reach the handler and land on the error lane too.
///
/// ```
/// use obzenflow_core::{ChainEvent, DeliveryReceipt};
/// use obzenflow_runtime::stages::{HandlerFailure, RecordError, SinkHandler};
///
/// #[derive(Default)]
/// struct Count(u64);
///
/// impl SinkHandler for Count {
///     fn consume(&mut self, _event: &ChainEvent) -> Result<(), RecordError> {
///         self.0 += 1;
///         Ok(())
///     }
///
///     fn flush(&mut self) -> Result<Option<DeliveryReceipt>, HandlerFailure> {
///         Ok(Some(DeliveryReceipt { destination: "counter".into(), records: self.0, bytes: 0 }))
///     }
/// }
/// ```
pub trait SinkHandler: Send + 'static {
    /// Told once, before [`initialize`](Self::initialize), what run the sink is part of:
    /// its run id and, for a replay, which run it replays. Does nothing by default; a sink
    /// writing files uses it to write a replay's outputs elsewhere
    /// ([`RunEnvironment::replay_output_path`]) rather than over the original run's.
    fn prepare(&mut self, run: &RunEnvironment) {
        let _ = run;
    }

    /// Opens resources; an error fails the stage.
    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        Ok(())
    }

    /// Delivers one record.
    fn consume(&mut self, event: &ChainEvent) -> Result<(), RecordError>;

    /// The type of the records it decodes, if it takes one type ([`RecordType::of`]); `None`
    /// (the default) for any. `FlowBuilder::build` checks it against what each upstream stage
    /// emits.
    fn input_type(&self) -> Option<RecordType> {
        None
    }

    /// Called once when every upstream has ended: flush and report what was delivered.
    fn flush(&mut self) -> Result<Option<DeliveryReceipt>, HandlerFailure> {
        Ok(None)
    }
}

/// A sink that delivers a batch at a time and may await.
pub trait AsyncSinkHandler: Send + 'static {
    /// Told once, before [`initialize`](Self::initialize), what run the sink is part of; see
    /// [`SinkHandler::prepare`]. Does nothing by default.
    fn prepare(&mut self, run: &RunEnvironment) {
        let _ = run;
    }

    /// Opens resources; an error fails the stage.
    fn initialize(&mut self) -> impl Future<Output = Result<(), HandlerFailure>> + Send {
        async { Ok(()) }
    }

    /// Delivers a batch; returns exactly one result per input, in input order.
    ///
    /// Cancel safety: never cancelled by the runtime once started.
    fn consume_batch<'a>(
        &'a mut self,
        events: &'a [Record],
    ) -> impl Future<Output = Vec<Result<(), RecordError>>> + Send + 'a;

    /// The type of the records it decodes, if it takes one type ([`RecordType::of`]); `None`
    /// (the default) for any. `FlowBuilder::build` checks it against what each upstream stage
    /// emits.
    fn input_type(&self) -> Option<RecordType> {
        None
    }

    /// Called once when every upstream has ended.
    fn flush(
        &mut self,
    ) -> impl Future<Output = Result<Option<DeliveryReceipt>, HandlerFailure>> + Send {
        async { Ok(None) }
    }
}

/// Runs a [`SinkHandler`] as an [`AsyncSinkHandler`].
pub(crate) struct SyncSink<H>(pub(crate) H);

impl<H: SinkHandler> AsyncSinkHandler for SyncSink<H> {
    fn prepare(&mut self, run: &RunEnvironment) {
        self.0.prepare(run);
    }

    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.0.initialize()
    }

    async fn consume_batch<'a>(&'a mut self, events: &'a [Record]) -> Vec<Result<(), RecordError>> {
        events.iter().map(|event| self.0.consume(event)).collect()
    }

    async fn flush(&mut self) -> Result<Option<DeliveryReceipt>, HandlerFailure> {
        self.0.flush()
    }
}

/// The sink strategy of the stage supervisor.
pub(crate) struct SinkLogic<H> {
    stage: Arc<str>,
    info: Arc<StageInfo>,
    handler: H,
    inputs: Inputs,
    to_deliver: Vec<Record>,
    /// Where each of `to_deliver` was read.
    to_deliver_at: Vec<ContentAt>,
}

impl<H: AsyncSinkHandler> SinkLogic<H> {
    pub(crate) fn new(info: Arc<StageInfo>, handler: H, inputs: Inputs) -> Self {
        Self {
            stage: info.name.clone(),
            info,
            handler,
            inputs,
            to_deliver: Vec::new(),
            to_deliver_at: Vec::new(),
        }
    }
}

#[async_trait::async_trait]
impl<H: AsyncSinkHandler> StageLogic for SinkLogic<H> {
    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.handler.prepare(&self.info.environment());
        self.handler.initialize().await
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
            Outputs::park_error,
            &mut self.to_deliver,
            &mut self.to_deliver_at,
        )?;
        if !self.to_deliver.is_empty() {
            let start = Instant::now();
            let results = self.handler.consume_batch(&self.to_deliver).await;
            let share = elapsed_ns(start) / self.to_deliver.len() as u64;
            if results.len() != self.to_deliver.len() {
                return Err(StageError::Handler {
                    stage: self.stage.to_string(),
                    message: format!(
                        "sink returned {} results for a batch of {} records",
                        results.len(),
                        self.to_deliver.len()
                    ),
                    source: None,
                });
            }
            let delivered = self.to_deliver.drain(..).zip(self.to_deliver_at.drain(..));
            for ((event, at), result) in delivered.zip(results) {
                outputs.record_processing_time(share);
                match result {
                    Ok(()) => outputs.count_delivered(),
                    Err(error) => outputs.reject(&event, at, error, share),
                }
            }
        }
        outputs.flush().await?;
        Ok(self.inputs.progress())
    }

    async fn drain(&mut self, outputs: &mut Outputs) -> Result<(), StageError> {
        let receipt = self
            .handler
            .flush()
            .await
            .map_err(|failure| failure.into_stage_error(&self.stage))?;
        if let Some(receipt) = receipt {
            outputs.emit_receipt(receipt);
        }
        outputs.flush().await
    }
}
