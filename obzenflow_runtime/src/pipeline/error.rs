//! `FlowError`: why a flow could not be built, started or waited for.

use super::failure::EndNotRecorded;
use super::graph::GraphError;
use super::report::FlowReport;

/// A flow could not be built, started, or followed to its end.
///
/// A flow that runs and fails is not an error here: it ends with a
/// [`FlowReport`](super::FlowReport) whose state says why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The graph is invalid.
    #[error("invalid flow graph")]
    Graph(#[from] GraphError),
    /// `configure` named a stage that does not exist.
    #[error("configuration given for unknown stage `{name}`")]
    UnknownStageConfig {
        /// The name given.
        name: String,
    },
    /// A stage configuration is invalid.
    #[error("stage `{stage}`: invalid configuration: {reason}")]
    InvalidConfig {
        /// The stage.
        stage: String,
        /// What is wrong.
        reason: String,
    },
    /// A worker cannot run this part of the flow (`Flow::start_worker`): its journals are not
    /// in a journal service, it names a stage the flow does not have, or the run it would join
    /// belongs to another flow.
    #[error("cannot run a worker of flow `{flow}`: {reason}")]
    InvalidWorker {
        /// The flow.
        flow: String,
        /// What is wrong.
        reason: String,
    },
    /// A worker could not join its run in the journal service.
    #[error("the worker cannot join run {run_id}")]
    WorkerJoin {
        /// The run.
        run_id: obzenflow_core::RunId,
        /// What the service said.
        #[source]
        source: crate::journal::BackendError,
    },
    /// A worker could not open a reader of a journal another process writes.
    #[error("the worker cannot read journal {journal} for stage `{stage}`")]
    WorkerInput {
        /// The reading stage.
        stage: String,
        /// The journal.
        journal: obzenflow_core::JournalId,
        /// What the service said.
        #[source]
        source: crate::journal::BackendError,
    },
    /// A worker could not learn the positions of a stage of another process reading a
    /// journal of this worker, which hold the journal's writer within the edge's window.
    #[error("the worker cannot follow how far stage `{stage}` has read journal {journal}")]
    WorkerOutput {
        /// The reading stage, in another process.
        stage: String,
        /// The journal, written by this worker.
        journal: obzenflow_core::JournalId,
        /// What the service said.
        #[source]
        source: crate::journal::BackendError,
    },
    /// The run directory could not be created or written.
    #[error("cannot prepare the run directory")]
    RunDir(#[from] crate::journal::RunDirError),
    /// The run to replay could not be read or is unfit to replay.
    #[error("cannot replay")]
    Replay(#[from] crate::replay::ReplayError),
    /// A journal could not be created.
    #[error("cannot create journal")]
    Journal(#[from] obzenflow_core::JournalError),
    /// The flow ran to an end, but that end could not be recorded: the pipeline's journal or
    /// the run manifest could not be written (a full disk, a failed fsync, the run directory
    /// deleted). `end` names what could not be written and keeps the error (a
    /// [`JournalError`](obzenflow_core::JournalError) or a
    /// [`RunDirError`](crate::journal::RunDirError)) as its source; `report` is the run's
    /// report, its state `Failed` with [`FlowFailure::EndNotRecorded`](super::FlowFailure)
    /// holding the same. Where the manifest could still be written it records the run as
    /// failed with that failure's text, never as crashed.
    #[error("the flow's end could not be recorded")]
    EndNotRecorded {
        /// What could not be written, and why.
        #[source]
        end: EndNotRecorded,
        /// The run's report.
        report: Box<FlowReport>,
    },
    /// The pipeline supervisor ended abnormally.
    #[error("pipeline supervisor failed")]
    Supervision(#[from] crate::supervised_base::SupervisionError),
    /// The pipeline supervisor task panicked or was aborted.
    #[error("pipeline supervisor task ended abnormally")]
    Join(#[from] tokio::task::JoinError),
}
