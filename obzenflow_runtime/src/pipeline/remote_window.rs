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
