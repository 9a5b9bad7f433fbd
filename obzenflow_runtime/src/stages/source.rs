//! Sources: produce records from outside the flow, then end with an end-of-stream marker.

use super::record_type::RecordType;
use std::future::Future;
use std::sync::Arc;

use obzenflow_core::ChainEvent;

use super::error::{HandlerFailure, StageError};
use super::logic::{Progress, StageLogic};
use super::outputs::Outputs;

/// What a source produced when asked for more.
#[derive(Debug)]
pub enum SourcePoll {
    /// Some records (never empty for a finite source; an infinite one awaits instead).
    /// Records already in error status (a malformed row) go to the error lane.
    Records(Vec<ChainEvent>),
    /// The source is exhausted.
    Done,
}

/// A source whose every call returns at once: iterators, files.
///
/// ```
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::stages::{HandlerFailure, SourceHandler, SourcePoll};
///
/// struct Countdown(u64);
///
/// impl SourceHandler for Countdown {
///     fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
///         if self.0 == 0 {
///             return Ok(SourcePoll::Done);
///         }
///         self.0 -= 1;
///         Ok(SourcePoll::Records(vec![ChainEvent::data("tick", serde_json::json!(self.0))]))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a synchronous source",
    note = "a source that awaits its input (the file sources, `AsyncSourceHandler`s) is added with `FlowBuilder::async_source`"
)]
pub trait SourceHandler: Send + 'static {
    /// Opens resources; an error fails the stage (e.g. a missing input file).
    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        Ok(())
    }

    /// Returns up to `max` records, or [`SourcePoll::Done`].
    fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure>;

    /// The type of the records it emits, if it emits one type ([`RecordType::of`]); `None`
    /// (the default) for any. `FlowBuilder::build` checks it against what each downstream
    /// stage decodes.
    fn output_type(&self) -> Option<RecordType> {
        None
    }
}

/// A source that waits for its records: a timer, a socket, a queue.
pub trait AsyncSourceHandler: Send + 'static {
    /// Opens resources; an error fails the stage.
    fn initialize(&mut self) -> impl Future<Output = Result<(), HandlerFailure>> + Send {
        async { Ok(()) }
    }

    /// Waits for and returns up to `max` records, or [`SourcePoll::Done`].
    ///
    /// Cancel safety: must be cancel safe. A graceful stop drops this future while it waits,
    /// so it must not hold records it has taken from elsewhere across an `.await`.
    fn next_batch(
        &mut self,
        max: usize,
    ) -> impl Future<Output = Result<SourcePoll, HandlerFailure>> + Send;

    /// The type of the records it emits, if it emits one type ([`RecordType::of`]); `None`
    /// (the default) for any. `FlowBuilder::build` checks it against what each downstream
    /// stage decodes.
    fn output_type(&self) -> Option<RecordType> {
        None
    }
}

/// Runs a [`SourceHandler`] as an [`AsyncSourceHandler`].
#[derive(Debug)]
pub(crate) struct SyncSource<H>(pub(crate) H);

impl<H: SourceHandler> AsyncSourceHandler for SyncSource<H> {
    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.0.initialize()
    }

    async fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        self.0.next_batch(max)
    }
}

/// The source strategy of the stage supervisor.
pub(crate) struct SourceLogic<H> {
    stage: Arc<str>,
    handler: H,
    batch_limit: usize,
    pending: Option<SourcePoll>,
}

impl<H: AsyncSourceHandler> SourceLogic<H> {
    pub(crate) fn new(stage: Arc<str>, handler: H, batch_limit: usize) -> Self {
        Self {
            stage,
            handler,
            batch_limit,
            pending: None,
        }
    }
}

#[async_trait::async_trait]
impl<H: AsyncSourceHandler> StageLogic for SourceLogic<H> {
    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.handler.initialize().await
    }

    async fn wait_for_input(&mut self) -> Result<(), StageError> {
        if self.pending.is_none() {
            let poll = self
                .handler
                .next_batch(self.batch_limit)
                .await
                .map_err(|failure| failure.into_stage_error(&self.stage))?;
            self.pending = Some(poll);
        }
        Ok(())
    }

    async fn run_batch(&mut self, outputs: &mut Outputs, _: usize) -> Result<Progress, StageError> {
        self.wait_for_input().await?;
        match self.pending.take() {
            Some(SourcePoll::Records(records)) => {
                // A source's processing time is not meaningful per record: producing a batch
                // includes waiting for the outside world.
                for record in records {
                    outputs.count_input();
                    outputs.emit(record, None, 0);
                }
                outputs.flush().await?;
                Ok(Progress::Continue)
            }
            Some(SourcePoll::Done) | None => Ok(Progress::Exhausted),
        }
    }

    async fn drain(&mut self, _outputs: &mut Outputs) -> Result<(), StageError> {
        Ok(())
    }
}
