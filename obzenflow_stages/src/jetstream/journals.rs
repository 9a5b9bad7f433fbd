//! [`JetStreamJournals`]: a [`JournalBackend`] keeping each run's journals in one JetStream
//! stream and its manifest in a key-value bucket.
//!
//! The mapping:
//! - a run is the stream `OBZENFLOW_<run id>` (file storage, [`JetStreamConfig::replicas`]
//!   replicas) over the subjects `<prefix>.<run id>.>`, made at the run's first store;
//! - a journal (a stage's data or error lane, a system component's journal) is the subject
//!   `<prefix>.<run id>.<owner name>.<lane>`;
//! - a frame (a batch of up to 1,024 records, or the seal) is one message, its payload the
//!   frame as a segment file holds it, with the message id `<subject>#<frame index>` and
//!   `Nats-Expected-Last-Subject-Sequence` set to the stream sequence of the journal's
//!   previous frame. The store resolves on the publish acknowledgement, which the server sends
//!   once the frame is stored (on a quorum of the replicas); a publish that timed out or lost
//!   its connection is sent again, the same message id making a copy that did arrive a
//!   duplicate the server drops, and the expected sequence refusing a frame out of place;
//! - the manifest is the value of key `<run id>` in the bucket [`JetStreamConfig::bucket`];
//!   a worker's reader of a journal another worker writes reports how far it has read under
//!   `<run id>.position.<consumer>` there (see `positions.rs`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use obzenflow_core::{JournalId, JournalReader, Lane, RunId};
use obzenflow_runtime::journal::{
    segment_file_name, BackendError, FrameStore, JoinedRun, JournalBackend, PositionFeed,
    RunDirError, RunDirectory, RunManifest, RunStore, StoredFrame,
};
use tokio::sync::OnceCell;

/// How [`JetStreamJournals`] reaches and uses a JetStream server or cluster.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JetStreamConfig {
    /// The servers, comma-separated (`nats://127.0.0.1:4222,nats://127.0.0.1:4223`).
    pub servers: String,
    /// How many replicas each run's stream and the manifest bucket have (1, or 3 on a
    /// 3-node cluster, which then survives the loss of one node).
    pub replicas: usize,
    /// The first token of every subject.
    pub subject_prefix: String,
    /// The key-value bucket holding run manifests.
    pub bucket: String,
    /// How long one store may keep retrying (a lost connection, a leader election) before
    /// the append fails.
    pub store_deadline: Duration,
    /// How long one publish waits for its acknowledgement before it is sent again.
    pub ack_timeout: Duration,
}

impl JetStreamConfig {
    /// `servers`, one replica, subjects under `obzenflow`, manifests in `obzenflow_runs`, 30 s to
    /// store a frame, 2 s per acknowledgement.
    pub fn new(servers: impl Into<String>) -> Self {
        Self {
            servers: servers.into(),
            replicas: 1,
            subject_prefix: "obzenflow".to_owned(),
            bucket: "obzenflow_runs".to_owned(),
            store_deadline: Duration::from_secs(30),
            ack_timeout: Duration::from_secs(2),
        }
    }

    /// The same configuration with `replicas` replicas.
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }
}

/// What went wrong talking to JetStream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JetStreamError {
    /// The servers could not be reached.
    #[error("cannot connect to NATS at {servers}")]
    Connect {
        /// The servers.
        servers: String,
        /// What the client said.
        #[source]
        source: async_nats::ConnectError,
    },
    /// No server of the list answered before the deadline (the client kept trying).
    #[error(
        "no NATS server answered at {servers} within {waited:?}: is nats-server running there?"
    )]
    Unreachable {
        /// The servers.
        servers: String,
        /// How long the client tried.
        waited: Duration,
    },
    /// A JetStream request failed.
    #[error("cannot {operation} in JetStream")]
    Request {
        /// What was being done.
        operation: String,
        /// What the client or server said.
        #[source]
        source: BackendError,
    },
    /// A run has no manifest in the bucket.
    #[error("run {run_id} has no manifest in bucket {bucket}")]
    NoSuchRun {
        /// The run.
        run_id: String,
        /// The bucket.
        bucket: String,
    },
    /// A manifest in the bucket does not parse.
    #[error("the manifest of run {run_id} in bucket {bucket} is invalid")]
    InvalidManifest {
        /// The run.
        run_id: String,
        /// The bucket.
        bucket: String,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A run has no journal of that name and lane.
    #[error("run {run_id} has no journal {journal}")]
    NoSuchJournal {
        /// The run.
        run_id: String,
        /// The journal asked for (`owner.lane`).
        journal: String,
    },
    /// A worker cannot join a run that already ended.
    #[error("run {run_id} already ended ({status}); a worker joins only a running run")]
    RunEnded {
        /// The run.
        run_id: String,
        /// How it ended.
        status: &'static str,
    },
    /// A worker cannot run again a stage that already completed: its journals are whole and
    /// may be read by stages of other processes.
    #[error("stage `{stage}` of run {run_id} already completed")]
    StageEnded {
        /// The run.
        run_id: String,
        /// The stage.
        stage: String,
    },
    /// A worker cannot start over a stage whose data journal an earlier process sealed: that
    /// process died before it recorded the stage's outcome, and stages of other processes may
    /// have read the sealed journal to its end, so purging it would leave them descended from
    /// records the run no longer holds.
    #[error(
        "stage `{stage}` of run {run_id} sealed its journals in an earlier process, which died \
         before recording its outcome; its readers may have read them, so it is not started \
         over: run the flow again as a new run"
    )]
    StageSealed {
        /// The run.
        run_id: String,
        /// The stage.
        stage: String,
    },
    /// A message of a run's stream is not on a subject of one of the run's journals.
    #[error("message {sequence} of stream {stream} is on subject {subject}, which names no journal of the run")]
    StrayMessage {
        /// The stream.
        stream: String,
        /// Its sequence.
        sequence: u64,
        /// Its subject.
        subject: String,
    },
    /// Writing the exported run directory failed.
    #[error("cannot export run {run_id}")]
    Export {
        /// The run.
        run_id: String,
        /// What failed.
        #[source]
        source: RunDirError,
    },
}

fn request_error(operation: impl Into<String>, source: impl Into<BackendError>) -> JetStreamError {
    JetStreamError::Request {
        operation: operation.into(),
        source: source.into(),
    }
}

/// What every run of one [`JetStreamJournals`] shares.
pub(super) struct Shared {
    pub(super) config: JetStreamConfig,
    pub(super) context: jetstream::Context,
    pub(super) manifests: kv::Store,
}

/// Journals on NATS JetStream: give [`JetStreamJournals::journals`] to
/// `FlowBuilder::journals` and every run of the flow keeps its journals in a stream of its own
/// and its manifest in a key-value bucket (see the module docs for the mapping).
///
/// ```no_run
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::jetstream::{JetStreamConfig, JetStreamJournals};
///
/// # async fn example(flow: FlowBuilder) -> Result<(), Box<dyn std::error::Error>> {
/// let config = JetStreamConfig::new("nats://127.0.0.1:4222").with_replicas(1);
/// let journals = JetStreamJournals::connect(config).await?;
/// let report = flow.journals(journals.journals()).build()?.run().await?;
/// // A run directory with the same frames, for `obzenflow validate/inspect/verify`.
/// let run_dir = journals.export_run(report.run_id, "target/obzenflow/exported").await?;
/// # let _ = run_dir; Ok(()) }
/// ```
#[derive(Clone)]
pub struct JetStreamJournals {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for JetStreamJournals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JetStreamJournals")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl JetStreamJournals {
    /// Connects to the servers and opens (or creates) the manifest bucket. A cluster that is
    /// still electing its leaders is retried until [`JetStreamConfig::store_deadline`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: nothing is left half made but a bucket, which the next call opens.
    pub async fn connect(config: JetStreamConfig) -> Result<Self, JetStreamError> {
        let connect_error = |source| JetStreamError::Connect {
            servers: config.servers.clone(),
            source,
        };
        let servers = config
            .servers
            .split(',')
            .map(|server| server.trim().parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| {
                connect_error(async_nats::ConnectError::with_source(
                    async_nats::ConnectErrorKind::ServerParse,
                    source,
                ))
            })?;
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(servers)
            .await
            .map_err(connect_error)?;
        let mut context = jetstream::new(client.clone());
        context.set_timeout(config.ack_timeout);
        let deadline = tokio::time::Instant::now() + config.store_deadline;
        let manifests = retry_until(deadline, || open_bucket(&context, &config))
            .await
            .map_err(|source| {
                // The client connects in the background: a request that timed out while it
                // never reached a server says nothing useful of its own.
                if client.connection_state() != async_nats::connection::State::Connected {
                    JetStreamError::Unreachable {
                        servers: config.servers.clone(),
                        waited: config.store_deadline,
                    }
                } else {
                    request_error(format!("open bucket {}", config.bucket), source)
                }
            })?;
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                context,
                manifests,
            }),
        })
    }

    /// The flow configuration that keeps runs' journals here.
    pub fn journals(&self) -> obzenflow_runtime::pipeline::Journals {
        obzenflow_runtime::pipeline::Journals::backend(Arc::new(self.clone()))
    }

    /// The stream holding run `run_id`'s journals.
    pub fn stream_name(run_id: RunId) -> String {
        format!("OBZENFLOW_{run_id}")
    }

    /// A reader of the `lane` journal of `owner` (a stage or system component) of run
    /// `run_id`, in this process or any other, on the durable consumer `consumer_name`: a
    /// reader opened again under the same name resumes at the first frame it had not read to
    /// the end. See [`JetStreamReader`](super::JetStreamReader).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a consumer made before the drop is resumed by the next call.
    pub async fn reader(
        &self,
        run_id: RunId,
        owner: &str,
        lane: Lane,
        consumer_name: &str,
    ) -> Result<super::JetStreamReader, JetStreamError> {
        let manifest = self.manifest(run_id).await?;
        let journal = manifest_journal_id(&manifest, owner, lane).ok_or_else(|| {
            JetStreamError::NoSuchJournal {
                run_id: run_id.to_string(),
                journal: format!("{owner}.{lane}"),
            }
        })?;
        let subject = subject(&self.shared.config, run_id, owner, lane);
        super::JetStreamReader::open(
            &self.shared.context,
            &Self::stream_name(run_id),
            subject,
            consumer_name,
            journal,
            None,
        )
        .await
    }

    /// The manifest of run `run_id`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn manifest(&self, run_id: RunId) -> Result<RunManifest, JetStreamError> {
        let recorded = self.recorded_manifest(run_id).await?;
        // A run split over workers ends when the last of its stages does: its outcome is the
        // one its stages' outcomes give, whichever worker recorded the manifest last.
        let outcomes = self.stage_outcomes_of(&recorded).await?;
        Ok(super::workers::fold_outcomes(recorded, &outcomes))
    }

    /// The manifest of run `run_id` as the bucket holds it.
    pub(super) async fn recorded_manifest(
        &self,
        run_id: RunId,
    ) -> Result<RunManifest, JetStreamError> {
        let bucket = &self.shared.config.bucket;
        let value = self
            .shared
            .manifests
            .get(run_id.to_string())
            .await
            .map_err(|source| request_error(format!("read the manifest of run {run_id}"), source))?
            .ok_or_else(|| JetStreamError::NoSuchRun {
                run_id: run_id.to_string(),
                bucket: bucket.clone(),
            })?;
        serde_json::from_slice(&value).map_err(|source| JetStreamError::InvalidManifest {
            run_id: run_id.to_string(),
            bucket: bucket.clone(),
            source,
        })
    }

    /// The manifests of every run in the bucket, oldest run first.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn runs(&self) -> Result<Vec<RunManifest>, JetStreamError> {
        let mut keys = self
            .shared
            .manifests
            .keys()
            .await
            .map_err(|source| request_error("list the run manifests", source))?;
        let mut manifests = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|source| request_error("list the run manifests", source))?;
            let Ok(run_id) = key.parse::<RunId>() else {
                continue;
            };
            manifests.push(self.manifest(run_id).await?);
        }
        manifests.sort_by_key(|manifest| manifest.run_id);
        Ok(manifests)
    }

    /// Writes run `run_id` as a run directory under `base_dir`: its manifest, and each
    /// journal's frames, in order, into one segment file. The frames are the very bytes the
    /// run's journals stored, so `validate`, `inspect`, `verify` and replay check and read
    /// the export as they do a run that was on disk; returns the run directory.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped export leaves a partial run directory (which reads as
    /// incomplete, as its lock is released).
    pub async fn export_run(
        &self,
        run_id: RunId,
        base_dir: impl AsRef<Path>,
    ) -> Result<PathBuf, JetStreamError> {
        let manifest = self.manifest(run_id).await?;
        // A cluster that just lost a node may time a read out while it elects leaders: the
        // read starts over from the first message until the deadline.
        let deadline = tokio::time::Instant::now() + self.shared.config.store_deadline;
        let frames = retry_until(deadline, || async {
            self.read_frames(&manifest)
                .await
                .map_err(|error| -> BackendError { Box::new(error) })
        })
        .await
        .map_err(|source| request_error(format!("read the journals of run {run_id}"), source))?;
        let export_error = |source| JetStreamError::Export {
            run_id: run_id.to_string(),
            source,
        };
        let (run_dir, lock) =
            RunDirectory::create(base_dir.as_ref(), &manifest).map_err(export_error)?;
        for ((name, lane), bytes) in frames {
            let dir = run_dir.journal_dir(&name, lane).map_err(export_error)?;
            let path = dir.join(segment_file_name(0));
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&path, bytes))
                .map_err(|source| {
                    export_error(RunDirError::Io {
                        operation: "write",
                        path: path.clone(),
                        source,
                    })
                })?;
        }
        run_dir.write_manifest(&manifest).map_err(export_error)?;
        drop(lock);
        Ok(run_dir.path().to_path_buf())
    }

    /// Every journal's frames in the run's stream, concatenated per journal, read with an
    /// ordered consumer from the first message to the last.
    async fn read_frames(
        &self,
        manifest: &RunManifest,
    ) -> Result<Vec<((String, Lane), Vec<u8>)>, JetStreamError> {
        let journals = journal_subjects(&self.shared.config, manifest);
        let mut frames: Vec<((String, Lane), Vec<u8>)> = journals
            .iter()
            .map(|(key, _)| (key.clone(), Vec::new()))
            .collect();
        let name = Self::stream_name(manifest.run_id);
        let operation = || format!("read stream {name}");
        let mut stream = self
            .shared
            .context
            .get_stream(&name)
            .await
            .map_err(|source| request_error(operation(), source))?;
        let last = stream
            .info()
            .await
            .map_err(|source| request_error(operation(), source))?
            .state
            .last_sequence;
        if last == 0 {
            return Ok(frames);
        }
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
            .await
            .map_err(|source| request_error(operation(), source))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|source| request_error(operation(), source))?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|source| request_error(operation(), source))?;
            let sequence = message
                .info()
                .map_err(|source| request_error(operation(), source))?
                .stream_sequence;
            let subject = message.subject.as_str();
            let index = journals
                .iter()
                .position(|(_, journal_subject)| journal_subject == subject)
                .ok_or_else(|| JetStreamError::StrayMessage {
                    stream: name.clone(),
                    sequence,
                    subject: subject.to_owned(),
                })?;
            frames[index].1.extend_from_slice(&message.payload);
            if sequence >= last {
                break;
            }
        }
        Ok(frames)
    }
}

/// The journals a manifest names, with their subjects.
fn journal_subjects(
    config: &JetStreamConfig,
    manifest: &RunManifest,
) -> Vec<((String, Lane), String)> {
    let stage_journals = manifest
        .stages
        .iter()
        .flat_map(|stage| [Lane::Data, Lane::Error].map(|lane| (stage.name.clone(), lane)));
    let system_journals = manifest
        .system_journals
        .iter()
        .map(|journal| (journal.name.clone(), Lane::System));
    stage_journals
        .chain(system_journals)
        .map(|(name, lane)| {
            let subject = subject(config, manifest.run_id, &name, lane);
            ((name, lane), subject)
        })
        .collect()
}

/// The id of journal `owner.lane` as the manifest names it.
fn manifest_journal_id(manifest: &RunManifest, owner: &str, lane: Lane) -> Option<JournalId> {
    use obzenflow_core::{SystemComponent, WriterId};
    match lane {
        Lane::Data | Lane::Error => manifest
            .stages
            .iter()
            .find(|stage| stage.name == owner)
            .map(|stage| JournalId::new(WriterId::Stage(stage.stage_id), owner, lane)),
        Lane::System => [
            SystemComponent::Pipeline,
            SystemComponent::MetricsAggregator,
        ]
        .into_iter()
        .find(|component| component.as_str() == owner)
        .filter(|_| {
            manifest
                .system_journals
                .iter()
                .any(|journal| journal.name == owner)
        })
        .map(|component| JournalId::new(WriterId::System(component), owner, lane)),
    }
}

pub(super) fn subject(config: &JetStreamConfig, run_id: RunId, name: &str, lane: Lane) -> String {
    format!("{}.{run_id}.{name}.{lane}", config.subject_prefix)
}

async fn open_bucket(
    context: &jetstream::Context,
    config: &JetStreamConfig,
) -> Result<kv::Store, BackendError> {
    if let Ok(store) = context.get_key_value(config.bucket.as_str()).await {
        return Ok(store);
    }
    // The client's `create_key_value` first reads the account's info, whose reply from a
    // 2.9 server lacks fields (`reserved_memory`) the client requires; the bucket's stream is
    // made here instead, laid out as a key-value bucket is (one value per key, rollups, no
    // deletes of messages, direct gets), and then opened as a bucket.
    let stream = stream::Config {
        name: format!("KV_{}", config.bucket),
        description: Some("ObzenFlow run manifests".to_owned()),
        subjects: vec![format!("$KV.{}.>", config.bucket)],
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        num_replicas: config.replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    context.get_or_create_stream(stream).await?;
    Ok(context.get_key_value(config.bucket.as_str()).await?)
}

/// Runs `attempt` until it succeeds or `deadline` passes, waiting a little longer after each
/// failure (from 20 ms to 500 ms); returns the last error at the deadline.
pub(super) async fn retry_until<T, F, Fut>(
    deadline: tokio::time::Instant,
    mut attempt: F,
) -> Result<T, BackendError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BackendError>>,
{
    let mut delay = Duration::from_millis(20);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if tokio::time::Instant::now() + delay >= deadline => return Err(error),
            Err(error) => {
                tracing::debug!(error = %obzenflow_core::ErrorChain::new(&*error), "JetStream request failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
        }
    }
}

#[async_trait::async_trait]
impl JournalBackend for JetStreamJournals {
    fn begin_run(&self, manifest: &RunManifest) -> Result<Arc<dyn RunStore>, BackendError> {
        Ok(Arc::new(JetStreamRun {
            shared: Arc::new(RunShared {
                journals: self.shared.clone(),
                manifest: manifest.clone(),
                stream: Self::stream_name(manifest.run_id),
                ready: OnceCell::new(),
                worker: None,
            }),
        }))
    }

    async fn join_run(
        &self,
        proposal: &RunManifest,
        stages: &[String],
    ) -> Result<JoinedRun, BackendError> {
        let (manifest, worker) = self.join(proposal, stages).await?;
        let shared = RunShared {
            journals: self.shared.clone(),
            stream: Self::stream_name(manifest.run_id),
            manifest: manifest.clone(),
            // `join` made the stream and recorded the manifest.
            ready: OnceCell::new_with(Some(())),
            worker: Some(worker),
        };
        let store = JetStreamRun {
            shared: Arc::new(shared),
        };
        Ok(JoinedRun::new(manifest, Arc::new(store)))
    }

    fn describe(&self) -> String {
        let replicas = self.shared.config.replicas;
        format!(
            "JetStream journals ({replicas} replica{}), each batch acknowledged once stored",
            if replicas == 1 { "" } else { "s" }
        )
    }
}

/// One run in JetStream.
pub(super) struct RunShared {
    pub(super) journals: Arc<Shared>,
    /// The manifest as the run began, recorded with the stream.
    pub(super) manifest: RunManifest,
    pub(super) stream: String,
    /// Set once the stream exists and the first manifest is recorded.
    pub(super) ready: OnceCell<()>,
    /// For a worker, its part of the run: its journals are its stages' only, and its end is
    /// recorded for them.
    pub(super) worker: Option<super::workers::WorkerPart>,
}

impl RunShared {
    pub(super) fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.journals.config.store_deadline
    }

    /// Makes the run's stream and records its first manifest, once.
    async fn ready(&self) -> Result<(), BackendError> {
        self.ready
            .get_or_try_init(|| async {
                let deadline = self.deadline();
                retry_until(deadline, || self.create_stream()).await?;
                retry_until(deadline, || self.put_manifest(&self.manifest)).await
            })
            .await
            .copied()
    }

    pub(super) async fn create_stream(&self) -> Result<(), BackendError> {
        let config = &self.journals.config;
        let stream = stream::Config {
            name: self.stream.clone(),
            description: Some(format!(
                "ObzenFlow run {} of flow {}",
                self.manifest.run_id, self.manifest.flow_name
            )),
            subjects: vec![format!(
                "{}.{}.>",
                config.subject_prefix, self.manifest.run_id
            )],
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        self.journals.context.get_or_create_stream(stream).await?;
        Ok(())
    }

    pub(super) async fn put_manifest(&self, manifest: &RunManifest) -> Result<(), BackendError> {
        let value = serde_json::to_vec(manifest)?;
        self.journals
            .manifests
            .put(manifest.run_id.to_string(), Bytes::from(value))
            .await?;
        Ok(())
    }
}

struct JetStreamRun {
    shared: Arc<RunShared>,
}

#[async_trait::async_trait]
impl RunStore for JetStreamRun {
    fn frame_store(&self, journal: &JournalId) -> Result<Arc<dyn FrameStore>, BackendError> {
        let config = &self.shared.journals.config;
        let subject = subject(
            config,
            self.shared.manifest.run_id,
            &journal.name,
            journal.lane,
        );
        Ok(Arc::new(JetStreamFrames {
            run: self.shared.clone(),
            subject,
            last_sequence: Mutex::new(0),
        }))
    }

    async fn write_manifest(&self, manifest: &RunManifest) -> Result<(), BackendError> {
        self.shared.ready().await?;
        let deadline = self.shared.deadline();
        if let Some(worker) = &self.shared.worker {
            let journals = JetStreamJournals {
                shared: self.shared.journals.clone(),
            };
            return retry_until(deadline, || journals.record_worker_end(worker, manifest)).await;
        }
        retry_until(deadline, || self.shared.put_manifest(manifest)).await
    }

    async fn remote_reader(
        &self,
        journal: &JournalId,
        reading_stage: &str,
    ) -> Result<Box<dyn JournalReader>, BackendError> {
        let journals = JetStreamJournals {
            shared: self.shared.journals.clone(),
        };
        let deadline = self.shared.deadline();
        let reader = retry_until(deadline, || {
            journals.fresh_reader(&self.shared, journal, reading_stage)
        })
        .await?;
        Ok(Box::new(reader))
    }

    async fn remote_position(
        &self,
        journal: &JournalId,
        reading_stage: &str,
    ) -> Result<Option<Box<dyn PositionFeed>>, BackendError> {
        let journals = JetStreamJournals {
            shared: self.shared.journals.clone(),
        };
        let feed = journals
            .follow_positions(&self.shared, journal, reading_stage)
            .await?;
        Ok(Some(Box::new(feed)))
    }
}

/// The frames of one journal: messages on its subject.
struct JetStreamFrames {
    run: Arc<RunShared>,
    subject: String,
    /// The stream sequence of the journal's last stored frame (0 before the first).
    last_sequence: Mutex<u64>,
}

impl JetStreamFrames {
    /// Publishes the frame once and awaits its acknowledgement; returns its stream sequence,
    /// or the error and whether sending the frame again may succeed.
    async fn publish(
        &self,
        frame: &StoredFrame<'_>,
        expected: u64,
    ) -> Result<u64, (BackendError, bool)> {
        // A worker's stages start over each time it starts: its message ids name its
        // incarnation, so the server's duplicate window never takes a frame of this one for
        // the same frame of the one before.
        let message_id = match &self.run.worker {
            Some(worker) => format!("{}#{}.{}", self.subject, worker.incarnation, frame.index),
            None => format!("{}#{}", self.subject, frame.index),
        };
        let publish = jetstream::message::PublishMessage::build()
            .payload(Bytes::copy_from_slice(frame.bytes))
            .message_id(&message_id)
            .expected_last_subject_sequence(expected);
        let context = &self.run.journals.context;
        let result = async {
            context
                .send_publish(self.subject.clone(), publish)
                .await?
                .await
        }
        .await;
        match result {
            Ok(ack) => Ok(ack.sequence),
            // A copy stored by an earlier attempt whose acknowledgement was lost, but no longer
            // in the server's duplicate window: the journal's last message says whether it is
            // this frame. Otherwise another writer appended to the journal: never retried.
            Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                match self.stored_earlier(&message_id).await {
                    Ok(Some(sequence)) => Ok(sequence),
                    Ok(None) => Err((error.into(), false)),
                    Err(lookup) => Err((lookup, true)),
                }
            }
            Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                Err((error.into(), false))
            }
            Err(error) => Err((error.into(), true)),
        }
    }

    /// The stream sequence of the journal's last message, if it is the one with `message_id`.
    async fn stored_earlier(&self, message_id: &str) -> Result<Option<u64>, BackendError> {
        let stream = self
            .run
            .journals
            .context
            .get_stream_no_info(&self.run.stream)
            .await?;
        let last = stream
            .get_last_raw_message_by_subject(&self.subject)
            .await?;
        let id = last
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|value| value.as_str().to_owned());
        Ok((id.as_deref() == Some(message_id)).then_some(last.sequence))
    }
}

#[async_trait::async_trait]
impl FrameStore for JetStreamFrames {
    async fn store(&self, frame: StoredFrame<'_>) -> Result<(), BackendError> {
        self.run.ready().await?;
        let expected = *self
            .last_sequence
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let deadline = self.run.deadline();
        let mut delay = Duration::from_millis(20);
        loop {
            match self.publish(&frame, expected).await {
                Ok(sequence) => {
                    *self
                        .last_sequence
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = sequence;
                    return Ok(());
                }
                Err((error, false)) => return Err(error),
                Err((error, true)) if tokio::time::Instant::now() + delay >= deadline => {
                    return Err(error)
                }
                Err((error, true)) => {
                    tracing::debug!(subject = %self.subject, frame = frame.index, error = %obzenflow_core::ErrorChain::new(&*error), "frame not stored; sending it again");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(500));
                }
            }
        }
    }
}
