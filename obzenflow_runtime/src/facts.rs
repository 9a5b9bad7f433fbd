//! Lifecycle facts: the one way the runtime writes `started`, `completed`, `failed` and
//! `cancelled` into a journal, for stages and system components alike.

use obzenflow_core::{
    ChainEvent, EventContent, FlowContext, FlowId, Journal, JournalError, LifecycleEvent, RunId,
    StageId, WriterId,
};

/// Appends `fact`, written by `writer` in `flow_context`.
pub(crate) async fn append_fact(
    journal: &dyn Journal,
    writer: WriterId,
    flow_context: FlowContext,
    fact: LifecycleEvent,
) -> Result<(), JournalError> {
    let mut event = ChainEvent::new(EventContent::Lifecycle(fact));
    event.writer_id = writer;
    event.flow_context = flow_context;
    journal.append(vec![event]).await.map(|_| ())
}

/// Appends a terminal `fact` and closes the journal. The journal is closed even when the
/// append fails, so readers waiting on it are woken either way; the first error is returned.
pub(crate) async fn seal(
    journal: &dyn Journal,
    writer: WriterId,
    flow_context: FlowContext,
    fact: LifecycleEvent,
) -> Result<(), JournalError> {
    let appended = append_fact(journal, writer, flow_context, fact).await;
    let closed = journal.close().await;
    appended.and(closed)
}

/// The flow context of a system component, which belongs to no stage.
pub(crate) fn system_context(flow_id: FlowId, run_id: RunId) -> FlowContext {
    FlowContext {
        flow_id,
        run_id,
        stage_id: StageId::from_uuid(uuid::Uuid::nil()),
    }
}
