//! [`JetStreamReader`]: a reader of one journal of a run on JetStream, from any process, on a
//! durable pull consumer that keeps the reader's position on the server.
//!
//! A background task pulls the journal's messages (frames), decodes each into its records and
//! hands them to the reader through a buffer, waking a waiting [`JournalReader::wait`]; it acks
//! a frame once [`JournalReader::read`] has handed out all of its records, so the consumer's
//! ack floor is the reader's position: a reader opened again under the same consumer name
//! starts at the first frame it had not finished (at-least-once for a reader that died
//! between reading a frame and the ack). The journal's seal ends it: `wait` then returns
//! [`JournalError::Closed`] once everything before the seal is read.
//!
//! A worker's reader of a journal another worker writes also reports its position (the
//! records of the frames it acked) under a key of the manifest bucket, which the writer's
//! worker follows to keep the edge's backpressure window (`positions.rs`).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use obzenflow_core::{JournalError, JournalId, JournalReader, Record};
use obzenflow_runtime::journal::frame::decode_batch_frame;
use tokio::sync::{watch, Notify};

use super::positions::PositionReport;

/// What the background task and the reader share.
#[derive(Default)]
struct Buffer {
    /// Decoded records not yet read, the first at sequence `next`.
    records: VecDeque<Record>,
    /// The sequence of the first buffered record.
    next: u64,
    /// The seal arrived: nothing follows the buffered records.
    sealed: bool,
    /// The task stopped on an error: the journal cannot be read further.
    failed: Option<String>,
    /// A frame arrived (or the reader started after the seal): `next` is known.
    started: bool,
}

struct Shared {
    buffer: Mutex<Buffer>,
    /// Woken when records arrive, the seal arrives or the task fails.
    arrived: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A reader of a journal on JetStream; see the module docs.
pub struct JetStreamReader {
    journal: JournalId,
    position: u64,
    shared: Arc<Shared>,
    /// Tells the task how far the reader has read, so it acks frames read to the end;
    /// `None` once [`JetStreamReader::finish`] took it.
    read_to: Option<watch::Sender<u64>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for JetStreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JetStreamReader")
            .field("journal", &self.journal)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl Drop for JetStreamReader {
    /// Stops pulling. Frames read through but not yet acked are read again by the next reader
    /// of the same consumer; [`JetStreamReader::finish`] acks them first.
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl JetStreamReader {
    /// How many frames the consumer delivers ahead of the reader, not yet read through and
    /// acked (its `max_ack_pending`): what the reader's process buffers at most, 64 frames
    /// of up to 1,024 records each.
    pub const READ_AHEAD_FRAMES: i64 = 64;

    /// Opens (or resumes) the durable consumer `consumer_name` on `subject` of `stream` and
    /// starts pulling.
    pub(crate) async fn open(
        context: &jetstream::Context,
        stream: &str,
        subject: String,
        consumer_name: &str,
        journal: JournalId,
        report: Option<PositionReport>,
    ) -> Result<Self, crate::jetstream::JetStreamError> {
        let request = |source: Box<dyn std::error::Error + Send + Sync>| {
            crate::jetstream::JetStreamError::Request {
                operation: format!("open consumer {consumer_name} of {subject}"),
                source,
            }
        };
        let stream = context
            .get_stream_no_info(stream)
            .await
            .map_err(|error| request(error.into()))?;
        let config = consumer::pull::Config {
            durable_name: Some(consumer_name.to_owned()),
            filter_subject: subject.clone(),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            max_ack_pending: Self::READ_AHEAD_FRAMES,
            ..Default::default()
        };
        let mut consumer = stream
            .get_or_create_consumer(consumer_name, config)
            .await
            .map_err(|error| request(error.into()))?;
        // A consumer that already acked the journal's seal has nothing more to deliver: the
        // reader starts closed, after the journal's last record.
        let acked = consumer
            .info()
            .await
            .map_err(|error| request(error.into()))?
            .ack_floor
            .stream_sequence;
        let mut buffer = Buffer::default();
        // The ack floor counts stream sequences, which every journal of the run shares (a
        // filtered consumer's floor moves past other journals' messages too): the floor at or
        // past the journal's last message, its seal, means the seal was read.
        if acked > 0 {
            if let Ok(last) = stream.get_last_raw_message_by_subject(&subject).await {
                if let Ok(((header, _), _)) = decode_batch_frame(&last.payload) {
                    if acked >= last.sequence && header.is_seal() {
                        buffer.sealed = true;
                        buffer.next = header.first_seq;
                        buffer.started = true;
                    }
                }
            }
        }
        let shared = Arc::new(Shared {
            buffer: Mutex::new(buffer),
            arrived: Notify::new(),
        });
        let (read_to, read_rx) = watch::channel(0);
        let (acked, acked_rx) = watch::channel(0);
        if let Some(report) = report {
            tokio::spawn(super::positions::report_positions(
                report,
                acked_rx,
                journal.clone(),
            ));
        }
        let pulled = Pulled {
            shared: shared.clone(),
            read_to: read_rx,
            acked,
        };
        let task = tokio::spawn(pull(consumer, pulled, journal.clone()));
        Ok(Self {
            journal,
            position: 0,
            shared,
            read_to: Some(read_to),
            task: Some(task),
        })
    }

    /// Acks every frame read through (the server confirms each ack) and stops pulling: the
    /// next reader of the same consumer starts where this one ended.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped `finish` leaves the reader as a drop does.
    pub async fn finish(mut self) {
        drop(self.read_to.take());
        if let Some(task) = self.task.as_mut() {
            let _ = task.await;
        }
        self.task = None;
    }
}

/// What the pull task shares with the reader: the buffer, how far the reader has read, and
/// where it tells how far the acked frames reach.
struct Pulled {
    shared: Arc<Shared>,
    read_to: watch::Receiver<u64>,
    acked: watch::Sender<u64>,
}

/// Pulls frames into the buffer until the seal, acking each frame once it is read through.
async fn pull(
    consumer: consumer::Consumer<consumer::pull::Config>,
    pulled: Pulled,
    journal: JournalId,
) {
    let Pulled {
        shared,
        mut read_to,
        acked,
    } = pulled;
    let fail = |problem: String| {
        shared.lock().failed = Some(problem);
        shared.arrived.notify_waiters();
    };
    let mut messages = match consumer.messages().await {
        Ok(messages) => messages,
        Err(error) => return fail(obzenflow_core::ErrorChain::new(&error).to_string()),
    };
    // Frames handed to the buffer and not yet acked, with the sequence their records end at.
    let mut unacked: VecDeque<(u64, jetstream::Message)> = VecDeque::new();
    loop {
        // A frame is acked once the reader's position reached its end: frames that end where
        // the reader already is (the seal, a frame of facts read before it arrived) at once.
        let position = *read_to.borrow_and_update();
        while unacked.front().is_some_and(|(end, _)| *end <= position) {
            if let Some((end, message)) = unacked.pop_front() {
                if let Err(error) = message.double_ack().await {
                    tracing::warn!(journal = %journal, error = %obzenflow_core::ErrorChain::new(&*error), "cannot ack a frame; it will be read again by the next reader of this consumer");
                }
                acked.send_if_modified(|acked| {
                    let moved = end > *acked;
                    *acked = (*acked).max(end);
                    moved
                });
            }
        }
        tokio::select! {
            changed = read_to.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            message = messages.next(), if !shared.lock().sealed => {
                let Some(message) = message else { return fail("the consumer's message stream ended".to_owned()) };
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::debug!(journal = %journal, error = %obzenflow_core::ErrorChain::new(&error), "pull interrupted; pulling again");
                        continue;
                    }
                };
                match decode_batch_frame(&message.payload) {
                    Ok(((header, events), _)) => {
                        let end = {
                            let mut buffer = shared.lock();
                            // A resumed consumer starts at the first frame it had not acked.
                            if !buffer.started {
                                buffer.started = true;
                                buffer.next = header.first_seq;
                            }
                            let expected = buffer.next + buffer.records.len() as u64;
                            if header.first_seq != expected {
                                drop(buffer);
                                return fail(format!("frame starts at sequence {}, but the records before it end at {expected}", header.first_seq));
                            }
                            buffer.sealed = header.is_seal();
                            buffer.records.extend(Record::batch(events));
                            buffer.next + buffer.records.len() as u64
                        };
                        unacked.push_back((end, message));
                        shared.arrived.notify_waiters();
                    }
                    Err(kind) => return fail(kind.to_string()),
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl JournalReader for JetStreamReader {
    fn journal_id(&self) -> &JournalId {
        &self.journal
    }

    fn position(&self) -> u64 {
        let buffer = self.shared.lock();
        if buffer.started {
            buffer.next
        } else {
            self.position
        }
    }

    fn read(&mut self, max: usize, out: &mut Vec<Record>) -> Result<usize, JournalError> {
        let mut buffer = self.shared.lock();
        if let Some(problem) = &buffer.failed {
            if buffer.records.is_empty() {
                return Err(JournalError::Backend {
                    journal: self.journal.clone(),
                    operation: "read from",
                    source: problem.clone().into(),
                });
            }
        }
        let count = buffer.records.len().min(max);
        out.extend(buffer.records.drain(..count));
        buffer.next += count as u64;
        self.position = buffer.next;
        drop(buffer);
        if let Some(read_to) = self.read_to.as_ref().filter(|_| count > 0) {
            read_to.send_replace(self.position);
        }
        Ok(count)
    }

    /// Cancel safety: cancel safe; nothing is consumed until `read`.
    async fn wait(&self) -> Result<(), JournalError> {
        loop {
            let arrived = self.shared.arrived.notified();
            {
                let buffer = self.shared.lock();
                if !buffer.records.is_empty() {
                    return Ok(());
                }
                if buffer.sealed {
                    return Err(JournalError::Closed {
                        journal: self.journal.clone(),
                    });
                }
                if let Some(problem) = &buffer.failed {
                    return Err(JournalError::Backend {
                        journal: self.journal.clone(),
                        operation: "read from",
                        source: problem.clone().into(),
                    });
                }
            }
            arrived.await;
        }
    }
}
