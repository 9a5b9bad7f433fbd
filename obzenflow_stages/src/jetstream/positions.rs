//! The positions of a worker's readers of journals other workers write, which hold those
//! writers within their edges' backpressure windows (`RunStore::remote_position`).
//!
//! The reader's side: a task of the reader's puts the records of the frames it acked under
//! `<run id>.position.<consumer>` of the manifest bucket, the latest one (reading does not
//! wait for a put; positions that came while one was put are folded into the next). The
//! writer's side: [`KvPositions`] resets the key to 0 as the writer's worker starts and
//! follows it on a watch of the run's keys, which delivers each key's latest value first.

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use obzenflow_core::{JournalId, RunId};
use obzenflow_runtime::journal::{BackendError, PositionFeed, RunStatus};
use tokio::sync::watch;

use super::journals::retry_until;
use super::workers::StageOutcome;
use super::JetStreamError;

/// Where a worker's reader reports how far it has read: a key of the manifest bucket.
pub(crate) struct PositionReport {
    pub(crate) store: kv::Store,
    pub(crate) key: String,
    /// How long one put may keep retrying.
    pub(crate) deadline: std::time::Duration,
}

/// Puts each position `acked` reports under the report's key until the reader ends (its
/// pull task drops the sender), the last one too; a put that fails until the deadline is
/// logged and the next position tried.
pub(super) async fn report_positions(
    report: PositionReport,
    mut acked: watch::Receiver<u64>,
    journal: JournalId,
) {
    let mut reported = 0;
    loop {
        let ended = acked.changed().await.is_err();
        let position = *acked.borrow_and_update();
        if position > reported {
            let value = Bytes::from(position.to_string());
            let deadline = tokio::time::Instant::now() + report.deadline;
            let put = retry_until(deadline, || async {
                report.store.put(report.key.as_str(), value.clone()).await?;
                Ok(())
            });
            match put.await {
                Ok(()) => reported = position,
                Err(error) => {
                    tracing::warn!(journal = %journal, key = %report.key, error = %obzenflow_core::ErrorChain::new(&*error), "cannot report the reader's position");
                }
            }
        }
        if ended {
            return;
        }
    }
}

/// The key under which the reader on durable consumer `consumer` reports its position.
pub(super) fn position_key(run_id: RunId, consumer: &str) -> String {
    format!("{run_id}.position.{consumer}")
}

/// The positions a worker's reader in another process reports (`<run id>.position.<consumer>`),
/// followed on a watch of the run's keys, which delivers each key's latest value first: a
/// watch that breaks (a lost connection, a server restart) is made again and so learns the
/// latest position again. The feed ends once the reading stage's recorded outcome is an end.
pub(super) struct KvPositions {
    manifests: kv::Store,
    run_id: RunId,
    position_key: String,
    /// The reading stage's outcome key; `None` for a stage the manifest does not name.
    outcome_key: Option<String>,
    /// How long making the watch again may keep retrying.
    deadline: std::time::Duration,
    /// `None` once the watch broke, until it is made again.
    watch: Option<kv::Watch>,
}

impl KvPositions {
    /// Resets the position under `position_key` to 0 (the writer's journal starts over, so
    /// the feed never reports a reader of an earlier run of the writer) and watches it.
    pub(super) async fn follow(
        manifests: kv::Store,
        run_id: RunId,
        position_key: String,
        outcome_key: Option<String>,
        deadline: std::time::Duration,
    ) -> Result<Self, BackendError> {
        let until = tokio::time::Instant::now() + deadline;
        retry_until(until, || async {
            manifests
                .put(position_key.as_str(), Bytes::from_static(b"0"))
                .await?;
            Ok(())
        })
        .await?;
        let mut positions = Self {
            manifests,
            run_id,
            position_key,
            outcome_key,
            deadline,
            watch: None,
        };
        positions.watch().await?;
        Ok(positions)
    }

    /// Makes the watch of the run's keys (again), retrying until the deadline.
    async fn watch(&mut self) -> Result<&mut kv::Watch, BackendError> {
        let watch = match self.watch.take() {
            Some(watch) => watch,
            None => {
                let pattern = format!("{}.>", self.run_id);
                let deadline = tokio::time::Instant::now() + self.deadline;
                let manifests = &self.manifests;
                retry_until(deadline, || async {
                    Ok(manifests.watch_with_history(pattern.as_str()).await?)
                })
                .await?
            }
        };
        Ok(self.watch.insert(watch))
    }

    /// What `entry` says: a position, the reader's end, or nothing about this reader.
    fn entry(&self, entry: &kv::Entry) -> Result<Option<Option<u64>>, BackendError> {
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        if entry.key == self.position_key {
            let text = std::str::from_utf8(&entry.value)?;
            return Ok(Some(Some(text.trim().parse::<u64>()?)));
        }
        if self.outcome_key.as_deref() == Some(entry.key.as_str()) {
            let outcome: StageOutcome = serde_json::from_slice(&entry.value)?;
            if outcome.status != RunStatus::Running {
                return Ok(Some(None));
            }
        }
        Ok(None)
    }
}

#[async_trait::async_trait]
impl PositionFeed for KvPositions {
    /// Cancel safety: cancel safe; a watch being made again when dropped is made by the next
    /// call.
    async fn next_position(&mut self) -> Result<Option<u64>, BackendError> {
        loop {
            let next = self.watch().await?.next().await;
            match next {
                Some(Ok(entry)) => {
                    let said = self.entry(&entry).map_err(|source| -> BackendError {
                        Box::new(JetStreamError::Request {
                            operation: format!("read the position under {}", entry.key),
                            source,
                        })
                    })?;
                    if let Some(said) = said {
                        return Ok(said);
                    }
                }
                Some(Err(error)) => {
                    tracing::debug!(key = %self.position_key, error = %obzenflow_core::ErrorChain::new(&error), "position watch broke; watching again");
                    self.watch = None;
                }
                None => self.watch = None,
            }
        }
    }
}
