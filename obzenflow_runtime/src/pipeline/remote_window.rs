//! The backpressure window of an edge from a stage of this worker to a stage of another
//! process: a windowed reader of the writer's journal, registered before any stage runs as
//! an in-process reader is, that follows the remote reader's positions instead of reading.
//!
//! The journal core holds the writer to every windowed reader's position, so the writer of
//! such an edge never runs more than the edge's window ahead of what the remote reader has
//! read through, and waits (on the core's wake-up, not by polling) until the follower moves.
//! The follower starts at 0 (the remote reader starts its worker over from the first record)
//! and moves to the highest position the [`PositionFeed`] reported: a reader that restarted
//! and reads from 0 again is not waited for until it passes where its earlier run was, so it
//! never deadlocks a writer waiting for positions. The follower ends, and its window with it,
//! when the writing stage ends, when the feed says the reader is done, or when the feed fails
//! (logged as an error: the edge then holds the writer back by nothing, as an edge of a
//! service without positions does, rather than leaving the writer waiting forever).

use std::num::NonZeroU64;

use obzenflow_core::{JournalError, JournalReader, Lane, Record};
use tracing::Instrument;

use crate::journal::PositionFeed;
use crate::stages::StageState;

/// How many records the follower moves its reader by at a time.
const FOLLOW_BATCH: usize = 1_024;

/// An edge from a stage of the worker to a stage of another process, with the feed of the
/// remote reader's positions.
pub(crate) struct RemoteOutput {
    /// The writing stage, by its index in the worker's part of the flow.
    pub(crate) writer: usize,
    /// The lane the remote stage reads.
    pub(crate) lane: Lane,
    /// The edge's backpressure window.
    pub(crate) window: NonZeroU64,
    /// The reading stage, for the logs.
    pub(crate) reading_stage: String,
    /// The remote reader's positions.
    pub(crate) feed: Box<dyn PositionFeed>,
}

/// A registered window that follows a remote reader; [`RemoteWindow::spawn`] starts it.
pub(crate) struct RemoteWindow {
    /// The windowed reader of the writer's journal, opened at 0 before any stage runs.
    pub(crate) reader: Box<dyn JournalReader>,
    pub(crate) feed: Box<dyn PositionFeed>,
    pub(crate) reading_stage: String,
}

impl RemoteWindow {
    /// Follows the feed in a task of its own until the writing stage (whose state is
    /// `writer_state`) ends, the reader is done, or the feed fails.
    pub(crate) fn spawn(self, writer_state: tokio::sync::watch::Receiver<StageState>) {
        let span = tracing::debug_span!(
            "remote_window",
            journal = %self.reader.journal_id(),
            reading_stage = %self.reading_stage
        );
        tokio::spawn(self.follow(writer_state).instrument(span));
    }

    async fn follow(mut self, mut writer_state: tokio::sync::watch::Receiver<StageState>) {
        let mut target = 0_u64;
        let mut scratch: Vec<Record> = Vec::new();
        loop {
            if let Err(error) = self.catch_up(target, &mut scratch) {
                return end_on_journal_error(&error);
            }
            let behind = self.reader.position() < target;
            tokio::select! {
                biased;
                _ = writer_state.wait_for(StageState::is_terminal) => {
                    tracing::debug!("writing stage ended; the remote window is released");
                    return;
                }
                next = self.feed.next_position() => match next {
                    Ok(Some(position)) => {
                        tracing::trace!(position, "remote reader moved");
                        target = target.max(position);
                    }
                    Ok(None) => {
                        tracing::debug!("remote reader done; the remote window is released");
                        return;
                    }
                    Err(error) => {
                        tracing::error!(
                            error = %obzenflow_core::ErrorChain::new(&*error),
                            "the remote reader's positions cannot be followed; the edge no longer holds the writer back"
                        );
                        return;
                    }
                },
                waited = self.reader.wait(), if behind => {
                    if let Err(error) = waited {
                        return end_on_journal_error(&error);
                    }
                }
            }
        }
    }

    /// Moves the reader towards `target` over what is committed, dropping what it reads.
    fn catch_up(&mut self, target: u64, scratch: &mut Vec<Record>) -> Result<(), JournalError> {
        while self.reader.position() < target {
            let wanted = usize::try_from(target - self.reader.position())
                .unwrap_or(usize::MAX)
                .min(FOLLOW_BATCH);
            scratch.clear();
            if self.reader.read(wanted, scratch)? == 0 {
                break;
            }
        }
        scratch.clear();
        Ok(())
    }
}

/// A closed journal needs no window; any other error ends the window as a failed feed does.
fn end_on_journal_error(error: &JournalError) {
    match error {
        JournalError::Closed { .. } => {
            tracing::debug!("journal closed; the remote window is released");
        }
        other => tracing::error!(
            error = %obzenflow_core::ErrorChain::new(other),
            "the remote window cannot follow its journal; the edge no longer holds the writer back"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use obzenflow_core::{ChainEvent, Journal, JournalId, StageId, WriterId};
    use tokio::sync::{mpsc, watch};

    use super::*;
    use crate::journal::{BackendError, MemoryJournal};

    /// Positions a test sends (an `Err` fails the feed); the feed ends when the sender drops.
    struct Sent(mpsc::Receiver<Result<u64, String>>);

    #[async_trait::async_trait]
    impl PositionFeed for Sent {
        async fn next_position(&mut self) -> Result<Option<u64>, BackendError> {
            match self.0.recv().await {
                Some(Ok(position)) => Ok(Some(position)),
                Some(Err(problem)) => Err(problem.into()),
                None => Ok(None),
            }
        }
    }

    type Followed = (
        Arc<MemoryJournal>,
        mpsc::Sender<Result<u64, String>>,
        watch::Sender<StageState>,
    );

    /// A journal whose writer a remote window of `window` holds back, with the sender of the
    /// remote reader's positions and of the writing stage's state.
    fn followed(window: u64) -> Followed {
        let id = JournalId::new(WriterId::Stage(StageId::new()), "orders", Lane::Data);
        let journal = Arc::new(MemoryJournal::new(id));
        let reader = journal.reader(0, NonZeroU64::new(window)).unwrap();
        let (positions, received) = mpsc::channel(8);
        let (state, writer_state) = watch::channel(StageState::Running);
        let window = RemoteWindow {
            reader,
            feed: Box::new(Sent(received)),
            reading_stage: "sink".to_owned(),
        };
        window.spawn(writer_state);
        (journal, positions, state)
    }

    fn events(count: u64) -> Vec<ChainEvent> {
        (0..count)
            .map(|n| ChainEvent::data("order", serde_json::json!({ "n": n })))
            .collect()
    }

    /// Appends `count` events in a task of its own.
    fn append(
        journal: &Arc<MemoryJournal>,
        count: u64,
    ) -> tokio::task::JoinHandle<Result<obzenflow_core::SeqRange, obzenflow_core::JournalError>>
    {
        let writer = Arc::clone(journal);
        tokio::spawn(async move { writer.append(events(count)).await })
    }

    /// Waits until `journal` holds `records` records, reading it without a window.
    async fn committed(journal: &MemoryJournal, records: usize) {
        let mut reader = journal.reader(0, None).unwrap();
        let mut read = Vec::new();
        while read.len() < records {
            reader.wait().await.unwrap();
            reader.read(records - read.len(), &mut read).unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_writer_keeps_within_the_window_of_the_highest_position_reported() {
        let (journal, positions, _state) = followed(4);
        let mut append = append(&journal, 10);
        committed(&journal, 4).await;
        positions.send(Ok(3)).await.unwrap();
        // A reader started over reports lower positions: they do not take back the window.
        positions.send(Ok(1)).await.unwrap();
        committed(&journal, 7).await;
        // Paused time runs out the deadline only once every task is idle: the writer has
        // committed all it may and waits. Were the window broken, it would be past 7.
        let held_back = tokio::time::timeout(Duration::from_secs(60), &mut append).await;
        assert!(held_back.is_err(), "the writer was not held back");
        let mut held = Vec::new();
        journal
            .reader(0, None)
            .unwrap()
            .read(16, &mut held)
            .unwrap();
        assert_eq!(held.len(), 7, "the writer passed the window");
        positions.send(Ok(6)).await.unwrap();
        let range = append.await.unwrap().unwrap();
        assert_eq!((range.start, range.end), (0, 10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_feed_a_reader_done_or_an_ended_writer_releases_the_window() {
        // Paused time runs out the deadline at once if the writer stays held back.
        let released = |journal: Arc<MemoryJournal>| async move {
            tokio::time::timeout(Duration::from_secs(60), append(&journal, 10))
                .await
                .expect("the window was released")
                .unwrap()
                .unwrap()
        };
        let (journal, positions, _state) = followed(2);
        positions
            .send(Err("the watch broke".to_owned()))
            .await
            .unwrap();
        assert_eq!(released(journal).await.end, 10);

        let (journal, positions, _state) = followed(2);
        drop(positions);
        assert_eq!(released(journal).await.end, 10);

        let (journal, _positions, state) = followed(2);
        state.send_replace(StageState::Drained);
        assert_eq!(released(journal).await.end, 10);
    }
}
