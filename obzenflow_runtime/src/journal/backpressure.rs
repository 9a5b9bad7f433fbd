//! Backpressure waits: how long an append waited for the journal's slowest reader, told to
//! whoever the journal was opened for.
//!
//! The wait happens deep in the journal core (`wait_for_space`), behind the
//! [`Journal`](obzenflow_core::Journal) port, which knows nothing of stages. A journal is given
//! its [`BackpressureObserver`] when it is opened (the pipeline opens a stage's two journals
//! with the stage's counters); the core starts a [`BackpressureWait`] only when an append
//! actually has to wait, and the wait reports itself to the observer when it ends. An append
//! that finds room costs nothing, and a journal opened without an observer reports to nobody.

use std::time::{Duration, Instant};

/// Told of every period an append to the journal spent blocked by a full window.
pub(crate) trait BackpressureObserver: Send + Sync {
    /// Counts one append that waited `waited` for a slow reader.
    fn waited(&self, waited: Duration);
}

/// One period an append spent blocked by a full window; reported to the observer, if there
/// is one, when dropped (also when the append is cancelled while it waits).
pub(crate) struct BackpressureWait<'a> {
    observer: Option<&'a dyn BackpressureObserver>,
    started: Option<Instant>,
}

impl<'a> BackpressureWait<'a> {
    /// A wait not yet begun, to be reported to `observer`.
    pub(crate) fn new(observer: Option<&'a dyn BackpressureObserver>) -> Self {
        Self {
            observer,
            started: None,
        }
    }

    /// Marks the wait as begun, once: an append that is woken and still finds no room keeps
    /// waiting in the same period. Without an observer there is nothing to time.
    pub(crate) fn begin(&mut self) {
        if self.observer.is_some() {
            self.started.get_or_insert_with(Instant::now);
        }
    }
}

impl Drop for BackpressureWait<'_> {
    fn drop(&mut self) {
        if let (Some(observer), Some(started)) = (self.observer, self.started) {
            observer.waited(started.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU64;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use obzenflow_core::{ChainEvent, Journal, JournalId, Lane, StageId, WriterId};

    use super::*;
    use crate::journal::MemoryJournal;

    #[derive(Default)]
    struct CountWaits(AtomicU64);

    impl BackpressureObserver for CountWaits {
        fn waited(&self, _waited: Duration) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn only_a_begun_wait_is_reported_once_to_its_observer() {
        let observer = CountWaits::default();
        let idle = BackpressureWait::new(Some(&observer));
        drop(idle);
        let mut blocked = BackpressureWait::new(Some(&observer));
        blocked.begin();
        blocked.begin();
        drop(blocked);
        let mut unobserved = BackpressureWait::new(None);
        unobserved.begin();
        drop(unobserved);
        assert_eq!(observer.0.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn an_append_held_back_by_a_window_is_reported_to_the_journal_s_observer() {
        let observer = Arc::new(CountWaits::default());
        let id = JournalId::new(WriterId::Stage(StageId::new()), "orders", Lane::Data);
        let journal = MemoryJournal::new(id)
            .with_backpressure_observer(Some(observer.clone() as Arc<dyn BackpressureObserver>));
        let journal = Arc::new(journal);
        let mut reader = journal.reader(0, NonZeroU64::new(1)).unwrap();
        let events = (0..2).map(|i| ChainEvent::data("order", serde_json::json!({ "id": i })));
        let writer = Arc::clone(&journal);
        let append = tokio::spawn(async move { writer.append(events.collect()).await });
        let mut records = Vec::new();
        while records.len() < 2 {
            reader.wait().await.unwrap();
            reader.read(1, &mut records).unwrap();
        }
        let range = append.await.unwrap().unwrap();
        assert_eq!((range.start, range.end), (0, 2));
        assert_eq!(observer.0.load(Ordering::Relaxed), 1);
    }
}
