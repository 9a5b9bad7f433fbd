//! Backpressure waits: how long a stage's appends waited for its slowest reader.
//!
//! The wait happens deep in the journal core (`wait_for_space`), behind the [`Journal`] trait,
//! which knows nothing of stages. Rather than widen that port, a stage runs its appends inside
//! [`attributed_to`], which makes its counters the task-local destination of waits; the core
//! starts a [`BackpressureWait`] only when it actually has to wait, and the wait reports itself
//! when it ends. An append that finds room costs nothing but the task-local scope.
//!
//! [`Journal`]: obzenflow_core::Journal

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use crate::stages::StageCounters;

tokio::task_local! {
    /// The counters waits of the current append are charged to.
    static WAITS_CHARGED_TO: Arc<StageCounters>;
}

/// Runs `append` with its backpressure waits charged to `counters`.
///
/// Cancel safety: as cancel safe as `append`; a wait cut short by cancellation is not counted.
pub(crate) async fn attributed_to<F: Future>(
    counters: &Arc<StageCounters>,
    append: F,
) -> F::Output {
    WAITS_CHARGED_TO.scope(Arc::clone(counters), append).await
}

/// One period an append spent blocked by a full window; counted when dropped.
#[derive(Debug, Default)]
pub(crate) struct BackpressureWait {
    started: Option<Instant>,
}

impl BackpressureWait {
    /// Marks the wait as begun, once: an append that is woken and still finds no room keeps
    /// waiting in the same period.
    pub(crate) fn begin(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }
}

impl Drop for BackpressureWait {
    fn drop(&mut self) {
        if let Some(started) = self.started {
            let waited = started.elapsed();
            // Outside `attributed_to` (appends by the pipeline, tests) nobody is charged.
            let _ = WAITS_CHARGED_TO.try_with(|counters| counters.add_backpressure_wait(waited));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_begun_wait_inside_a_scope_is_counted() {
        let counters = Arc::new(StageCounters::default());
        attributed_to(&counters, async {
            let _idle = BackpressureWait::default();
            let mut blocked = BackpressureWait::default();
            blocked.begin();
            blocked.begin();
        })
        .await;
        let mut outside = BackpressureWait::default();
        outside.begin();
        drop(outside);
        assert_eq!(counters.backpressure().0, 1);
    }
}
