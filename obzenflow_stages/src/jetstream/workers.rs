//! Workers on JetStream: one flow's stages in several processes, each a worker
//! (`Flow::start_worker`) running some of them on the same run.
//!
//! - **Joining.** The first worker to join records its proposal as the run's manifest (a
//!   key-value `create`, which only one writer wins), so every process uses its stage ids;
//!   the others read it and must be the same flow, with the same stages. A run that already
//!   ended, or a stage that already completed, is refused.
//! - **Starting over.** A worker's stages start over each time it starts: joining purges
//!   their journals' subjects (what a killed process of theirs left), and each edge into them
//!   from another process is read by a fresh durable consumer named after the reading stage
//!   and the journal (`<stage>__<upstream>__<lane>`, names escaped; an old one of that name is deleted), from
//!   the journal's first frame. Frames carry the worker's incarnation in their message ids,
//!   so the server's duplicate window never drops a frame of a restarted worker.
//! - **Backpressure across processes.** A worker's reader of another worker's journal puts
//!   how far it has read (the records of the frames it acked) under
//!   `<run id>.position.<consumer>` of the manifest bucket; the writer's worker resets that
//!   key to 0 as it starts and follows it ([`RunStore::remote_position`]: a watch of the run's
//!   keys, which delivers the latest value first and is made again when it breaks), so its
//!   writer keeps to the edge's window. The feed ends once the reading stage's outcome is an
//!   end, so a reader that failed or completed never holds the writer back.
//!   `positions.rs` holds both sides.
//! - **Outcomes.** A worker's end is recorded for each of its stages under the key
//!   `<run id>.stage.<index>` of the manifest bucket ([`StageOutcome`]). The run's outcome is
//!   folded from them ([`JetStreamJournals::manifest`], and so `obzenflow-jetstream runs`,
//!   `inspect` and exports): `completed` only once every stage of the flow recorded
//!   `completed`, `failed` (or `cancelled`) as soon as one recorded that, `running`
//!   otherwise, which a run whose worker was killed stays until the worker runs again.

use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::CreateErrorKind;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;
use obzenflow_core::{JournalId, Lane, RunId, Timestamp};
use obzenflow_runtime::journal::frame::decode_batch_frame;
#[cfg(doc)]
use obzenflow_runtime::journal::RunStore;
use obzenflow_runtime::journal::{BackendError, RunManifest, RunStatus};
use obzenflow_runtime::pipeline::{FlowBuilder, FlowError, FlowReport, WorkerSpec};
use serde::{Deserialize, Serialize};

use super::journals::{retry_until, subject, RunShared};
use super::positions::{position_key, KvPositions, PositionReport};
use super::{JetStreamConfig, JetStreamError, JetStreamJournals, JetStreamReader};

/// A worker's part of a run: its stages, and the incarnation its message ids name.
#[derive(Debug, Clone)]
pub(super) struct WorkerPart {
    pub(super) stages: Vec<String>,
    pub(super) incarnation: String,
}

/// What the workers of a run recorded for one of its stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StageOutcome {
    /// The stage.
    pub stage: String,
    /// `running` while its worker runs it (or since it died), then how it ended.
    pub status: RunStatus,
    /// Why it failed or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The incarnation of the worker that last ran it; `None` if no worker has joined with it.
    pub worker: Option<String>,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
}

/// The manifest of a run with the outcome its stages' outcomes give, if any stage recorded
/// one: failed or cancelled once one stage did, completed once every stage did.
pub(super) fn fold_outcomes(mut manifest: RunManifest, outcomes: &[StageOutcome]) -> RunManifest {
    if manifest.status != RunStatus::Running || outcomes.iter().all(|o| o.worker.is_none()) {
        return manifest;
    }
    let ended = |outcome: &&StageOutcome| {
        matches!(outcome.status, RunStatus::Failed | RunStatus::Cancelled)
    };
    if let Some(ended) = outcomes.iter().find(ended) {
        manifest.status = ended.status;
        manifest.ended_at = ended.ended_at;
        manifest.reason = Some(format!(
            "stage `{}` {}{}",
            ended.stage,
            ended.status.as_str(),
            ended
                .reason
                .as_deref()
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default()
        ));
    } else if outcomes
        .iter()
        .all(|outcome| outcome.status == RunStatus::Completed)
    {
        manifest.status = RunStatus::Completed;
        manifest.ended_at = outcomes.iter().filter_map(|outcome| outcome.ended_at).max();
    }
    manifest
}

/// A durable consumer name for `reading_stage` reading `journal`:
/// `<reading stage>__<upstream>__<lane>`. NATS names allow no `.`, `*`, `>` or whitespace, so
/// each byte of a name that is not an ASCII letter or digit is written `_` and two hex digits
/// (`_` itself too): the separator `__` cannot occur inside a name, and two edges never share
/// a consumer (nor a reported position).
fn consumer_name(reading_stage: &str, journal: &JournalId) -> String {
    fn escaped(name: &str, out: &mut String) {
        for byte in name.bytes() {
            if byte.is_ascii_alphanumeric() {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("_{byte:02x}"));
            }
        }
    }
    let mut name = String::new();
    escaped(reading_stage, &mut name);
    name.push_str("__");
    escaped(&journal.name, &mut name);
    name.push_str("__");
    escaped(&journal.lane.to_string(), &mut name);
    name
}

fn outcome_key(run_id: RunId, index: usize) -> String {
    format!("{run_id}.stage.{index}")
}

fn boxed(error: JetStreamError) -> BackendError {
    Box::new(error)
}

fn request(operation: String) -> impl FnOnce(BackendError) -> JetStreamError {
    move |source| JetStreamError::Request { operation, source }
}

impl JetStreamJournals {
    /// What the workers of run `run_id` recorded for each of its stages, in the flow's order;
    /// a stage no worker has joined with reads `running` with no worker. A run in one process
    /// has none recorded.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn stage_outcomes(&self, run_id: RunId) -> Result<Vec<StageOutcome>, JetStreamError> {
        let manifest = self.recorded_manifest(run_id).await?;
        self.stage_outcomes_of(&manifest).await
    }

    pub(super) async fn stage_outcomes_of(
        &self,
        manifest: &RunManifest,
    ) -> Result<Vec<StageOutcome>, JetStreamError> {
        let mut outcomes = Vec::with_capacity(manifest.stages.len());
        for (index, stage) in manifest.stages.iter().enumerate() {
            let key = outcome_key(manifest.run_id, index);
            let value = self
                .shared
                .manifests
                .get(key.clone())
                .await
                .map_err(|source| request(format!("read {key}"))(source.into()))?;
            let outcome = match value {
                Some(value) => serde_json::from_slice(&value).map_err(|source| {
                    JetStreamError::InvalidManifest {
                        run_id: manifest.run_id.to_string(),
                        bucket: self.shared.config.bucket.clone(),
                        source,
                    }
                })?,
                None => StageOutcome {
                    stage: stage.name.clone(),
                    status: RunStatus::Running,
                    reason: None,
                    worker: None,
                    ended_at: None,
                },
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn put_outcome(
        &self,
        manifest: &RunManifest,
        outcome: &StageOutcome,
    ) -> Result<(), JetStreamError> {
        let Some(index) = manifest
            .stages
            .iter()
            .position(|stage| stage.name == outcome.stage)
        else {
            return Err(JetStreamError::NoSuchJournal {
                run_id: manifest.run_id.to_string(),
                journal: outcome.stage.clone(),
            });
        };
        let key = outcome_key(manifest.run_id, index);
        let value = serde_json::to_vec(outcome).map_err(|source| JetStreamError::Request {
            operation: format!("encode {key}"),
            source: source.into(),
        })?;
        self.shared
            .manifests
            .put(key.clone(), Bytes::from(value))
            .await
            .map_err(|source| request(format!("record {key}"))(source.into()))?;
        Ok(())
    }

    /// Joins run `proposal.run_id` as a worker of `stages` (the module docs say how); returns
    /// the recorded manifest and the worker's part.
    pub(super) async fn join(
        &self,
        proposal: &RunManifest,
        stages: &[String],
    ) -> Result<(RunManifest, WorkerPart), BackendError> {
        let run_id = proposal.run_id;
        let stream_name = Self::stream_name(run_id);
        let probe = RunShared {
            journals: self.shared.clone(),
            manifest: proposal.clone(),
            stream: stream_name,
            ready: tokio::sync::OnceCell::new(),
            worker: None,
        };
        let deadline = probe.deadline();
        retry_until(deadline, || probe.create_stream()).await?;
        let value = Bytes::from(serde_json::to_vec(proposal)?);
        let created = retry_until(deadline, || async {
            match self
                .shared
                .manifests
                .create(run_id.to_string(), value.clone())
                .await
            {
                Ok(_) => Ok(()),
                Err(error) if error.kind() == CreateErrorKind::AlreadyExists => Ok(()),
                Err(error) => Err(error.into()),
            }
        });
        created.await?;
        // A cluster still electing its leaders times requests out: each step is retried
        // until the deadline (all of them may be done twice), the refusals below are not.
        let (recorded, outcomes) = retry_until(deadline, || async {
            let recorded = self.recorded_manifest(run_id).await.map_err(boxed)?;
            let outcomes = self.stage_outcomes_of(&recorded).await.map_err(boxed)?;
            Ok((recorded, outcomes))
        })
        .await?;
        let folded = fold_outcomes(recorded.clone(), &outcomes);
        if folded.status != RunStatus::Running {
            return Err(boxed(JetStreamError::RunEnded {
                run_id: run_id.to_string(),
                status: folded.status.as_str(),
            }));
        }
        if let Some(done) = outcomes.iter().find(|outcome| {
            outcome.status == RunStatus::Completed && stages.contains(&outcome.stage)
        }) {
            return Err(boxed(JetStreamError::StageEnded {
                run_id: run_id.to_string(),
                stage: done.stage.clone(),
            }));
        }
        if let Some(stage) = retry_until(deadline, || self.first_sealed(run_id, stages)).await? {
            return Err(boxed(JetStreamError::StageSealed {
                run_id: run_id.to_string(),
                stage,
            }));
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let worker = WorkerPart {
            stages: stages.to_vec(),
            incarnation: format!("{}-{nanos}", std::process::id()),
        };
        retry_until(deadline, || self.start_over(&recorded, &worker)).await?;
        Ok((recorded, worker))
    }

    /// The first of `stages` whose data journal in run `run_id` ends with its seal, if any.
    async fn first_sealed(
        &self,
        run_id: RunId,
        stages: &[String],
    ) -> Result<Option<String>, BackendError> {
        let stream = self
            .shared
            .context
            .get_stream_no_info(Self::stream_name(run_id))
            .await?;
        for stage in stages {
            let subject = subject(&self.shared.config, run_id, stage, Lane::Data);
            let sealed = match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(last) => {
                    decode_batch_frame(&last.payload).is_ok_and(|((header, _), _)| header.is_seal())
                }
                Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => false,
                Err(error) => return Err(error.into()),
            };
            if sealed {
                return Ok(Some(stage.clone()));
            }
        }
        Ok(None)
    }

    /// Drops what earlier processes of the worker's stages left in their journals and records
    /// the stages as running in this worker; done again, it does the same.
    async fn start_over(
        &self,
        recorded: &RunManifest,
        worker: &WorkerPart,
    ) -> Result<(), BackendError> {
        let run_id = recorded.run_id;
        let stream = self
            .shared
            .context
            .get_stream_no_info(Self::stream_name(run_id))
            .await?;
        for name in &worker.stages {
            for lane in [Lane::Data, Lane::Error] {
                let subject = subject(&self.shared.config, run_id, name, lane);
                stream.purge().filter(subject).await?;
            }
        }
        for name in &worker.stages {
            let outcome = StageOutcome {
                stage: name.clone(),
                status: RunStatus::Running,
                reason: None,
                worker: Some(worker.incarnation.clone()),
                ended_at: None,
            };
            self.put_outcome(recorded, &outcome).await.map_err(boxed)?;
        }
        Ok(())
    }

    /// Records a worker's end (`ended`: the worker's manifest, its status and reason) for
    /// each of its stages, then the run's manifest if the stages' outcomes now end the run.
    pub(super) async fn record_worker_end(
        &self,
        worker: &WorkerPart,
        ended: &RunManifest,
    ) -> Result<(), BackendError> {
        for name in &worker.stages {
            let outcome = StageOutcome {
                stage: name.clone(),
                status: ended.status,
                reason: ended.reason.clone(),
                worker: Some(worker.incarnation.clone()),
                ended_at: ended.ended_at,
            };
            self.put_outcome(ended, &outcome).await.map_err(boxed)?;
        }
        let recorded = self.recorded_manifest(ended.run_id).await.map_err(boxed)?;
        let outcomes = self.stage_outcomes_of(&recorded).await.map_err(boxed)?;
        let folded = fold_outcomes(recorded.clone(), &outcomes);
        if folded.status != recorded.status {
            let value = serde_json::to_vec(&folded)?;
            self.shared
                .manifests
                .put(ended.run_id.to_string(), Bytes::from(value))
                .await?;
        }
        Ok(())
    }

    /// A reader of `journal` for `reading_stage`, on a durable consumer of its own that
    /// starts at the journal's first frame.
    pub(super) async fn fresh_reader(
        &self,
        run: &RunShared,
        journal: &JournalId,
        reading_stage: &str,
    ) -> Result<JetStreamReader, BackendError> {
        let name = consumer_name(reading_stage, journal);
        let stream = self.shared.context.get_stream_no_info(&run.stream).await?;
        if stream.consumer_info(&name).await.is_ok() {
            stream.delete_consumer(&name).await?;
        }
        let subject = subject(
            &self.shared.config,
            run.manifest.run_id,
            &journal.name,
            journal.lane,
        );
        let report = PositionReport {
            store: self.shared.manifests.clone(),
            key: position_key(run.manifest.run_id, &name),
            deadline: self.shared.config.store_deadline,
        };
        let reader = JetStreamReader::open(
            &self.shared.context,
            &run.stream,
            subject,
            &name,
            journal.clone(),
            Some(report),
        )
        .await?;
        Ok(reader)
    }

    /// The positions `reading_stage` (of another worker) reports reading `journal`, which a
    /// stage of this worker writes from its first record again (see `positions.rs`).
    pub(super) async fn follow_positions(
        &self,
        run: &RunShared,
        journal: &JournalId,
        reading_stage: &str,
    ) -> Result<KvPositions, BackendError> {
        let run_id = run.manifest.run_id;
        let outcome_key = run
            .manifest
            .stages
            .iter()
            .position(|stage| stage.name == reading_stage)
            .map(|index| outcome_key(run_id, index));
        KvPositions::follow(
            self.shared.manifests.clone(),
            run_id,
            position_key(run_id, &consumer_name(reading_stage, journal)),
            outcome_key,
            self.shared.config.store_deadline,
        )
        .await
    }
}

/// Why a worker process could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Its arguments are wrong.
    #[error("invalid worker arguments: {problem}")]
    Arguments {
        /// What is wrong.
        problem: String,
    },
    /// JetStream could not be reached.
    #[error("the worker cannot reach JetStream")]
    JetStream(#[source] Box<JetStreamError>),
    /// The flow could not be built or the worker not started or followed.
    #[error("the worker's flow could not run")]
    Flow(#[source] Box<FlowError>),
}

/// A worker process's command line, for flows split over processes:
/// `--run <RUN ID> --stages <a,b,...> --servers <URLS> [--replicas <N>] [--bucket <NAME>]`.
/// Flows are Rust code, so there is no generic worker binary: a program that defines a flow
/// parses these arguments and calls [`WorkerArgs::run`] with its flow (see
/// `examples/examples/distributed.rs`).
///
/// ```
/// use obzenflow_core::RunId;
/// use obzenflow_stages::jetstream::WorkerArgs;
///
/// let run_id = RunId::new();
/// let line = format!("--run {run_id} --stages parse,sink --servers nats://127.0.0.1:4222");
/// let args = WorkerArgs::parse(line.split(' ').map(str::to_owned)).unwrap();
/// assert_eq!(args.stages, ["parse", "sink"]);
/// assert_eq!(WorkerArgs::parse(args.to_args()).unwrap().run_id, run_id);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use = "worker arguments do nothing until `run`"]
pub struct WorkerArgs {
    /// The run every worker of it joins.
    pub run_id: RunId,
    /// The stages this worker runs.
    pub stages: Vec<String>,
    /// Where the run's journals are.
    pub config: JetStreamConfig,
}

impl WorkerArgs {
    /// The worker of `run_id` running `stages` on the JetStream of `config`.
    pub fn new(
        run_id: RunId,
        stages: impl IntoIterator<Item = impl Into<String>>,
        config: JetStreamConfig,
    ) -> Self {
        Self {
            run_id,
            stages: stages.into_iter().map(Into::into).collect(),
            config,
        }
    }

    /// Parses the worker's arguments (without a program name); every one must be known.
    pub fn parse(arguments: impl IntoIterator<Item = String>) -> Result<Self, WorkerError> {
        let problem = |problem: String| WorkerError::Arguments { problem };
        let (mut run_id, mut stages, mut servers) = (None, None, None);
        let (mut replicas, mut bucket) = (None, None);
        let mut arguments = arguments.into_iter();
        while let Some(flag) = arguments.next() {
            let value = arguments
                .next()
                .ok_or_else(|| problem(format!("{flag} needs a value")))?;
            match flag.as_str() {
                "--run" => {
                    let parsed = value
                        .parse::<RunId>()
                        .map_err(|error| problem(format!("`{value}` is not a run id: {error}")))?;
                    run_id = Some(parsed);
                }
                "--stages" => {
                    stages = Some(value.split(',').map(str::to_owned).collect::<Vec<_>>())
                }
                "--servers" => servers = Some(value),
                "--replicas" => {
                    let parsed = value.parse::<usize>().map_err(|error| {
                        problem(format!("`{value}` is not a replica count: {error}"))
                    })?;
                    replicas = Some(parsed);
                }
                "--bucket" => bucket = Some(value),
                _ => return Err(problem(format!("unknown argument `{flag}`"))),
            }
        }
        let run_id = run_id.ok_or_else(|| problem("--run is required".to_owned()))?;
        let stages = stages.ok_or_else(|| problem("--stages is required".to_owned()))?;
        let servers = servers.ok_or_else(|| problem("--servers is required".to_owned()))?;
        let mut config = JetStreamConfig::new(servers).with_replicas(replicas.unwrap_or(1));
        if let Some(bucket) = bucket {
            config.bucket = bucket;
        }
        Ok(Self::new(run_id, stages, config))
    }

    /// The arguments [`WorkerArgs::parse`] reads back as these, for a program that spawns its
    /// workers.
    pub fn to_args(&self) -> Vec<String> {
        [
            ("--run", self.run_id.to_string()),
            ("--stages", self.stages.join(",")),
            ("--servers", self.config.servers.clone()),
            ("--replicas", self.config.replicas.to_string()),
            ("--bucket", self.config.bucket.clone()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }

    /// Connects to JetStream, builds `flow` on its journals and runs this worker's stages of
    /// it to their end (`Flow::run_worker`); returns the worker's report.
    ///
    /// # Cancel safety
    ///
    /// Dropping this future once the worker started leaves its stages running in the
    /// background, as `Flow::run` does.
    pub async fn run(self, flow: FlowBuilder) -> Result<FlowReport, WorkerError> {
        let journals = JetStreamJournals::connect(self.config)
            .await
            .map_err(|error| WorkerError::JetStream(Box::new(error)))?;
        let flow = flow
            .journals(journals.journals())
            .build()
            .map_err(|error| WorkerError::Flow(Box::new(error)))?;
        flow.run_worker(WorkerSpec::new(self.run_id, self.stages))
            .await
            .map_err(|error| WorkerError::Flow(Box::new(error)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_hold_no_character_nats_refuses_and_never_collide() {
        let journal =
            |name: &str| JournalId::new(obzenflow_core::WriterId::Unassigned, name, Lane::Data);
        assert_eq!(
            consumer_name("sink 1", &journal("my.stage *>")),
            "sink_201__my_2estage_20_2a_3e__data"
        );
        // Names that a plain replacement by `_` would make equal stay apart.
        let pairs = [
            (("out", "my.stage"), ("out", "my_stage")),
            (("a__b", "c"), ("a", "b__c")),
            (("a", "b_5f"), ("a", "b_")),
        ];
        for ((reader, upstream), (other_reader, other_upstream)) in pairs {
            assert_ne!(
                consumer_name(reader, &journal(upstream)),
                consumer_name(other_reader, &journal(other_upstream))
            );
        }
        let error = JournalId::new(obzenflow_core::WriterId::Unassigned, "x", Lane::Error);
        assert_ne!(
            consumer_name("out", &error),
            consumer_name("out", &journal("x"))
        );
    }

    fn outcome(stage: &str, status: RunStatus) -> StageOutcome {
        StageOutcome {
            stage: stage.to_owned(),
            status,
            reason: None,
            worker: Some("w".to_owned()),
            ended_at: None,
        }
    }

    #[test]
    fn a_run_is_completed_only_once_every_stage_is_and_failed_once_one_is() {
        let manifest = RunManifest::new(
            "flow",
            obzenflow_core::FlowId::new(),
            RunId::new(),
            "JetStream",
        );
        let folded = |outcomes: &[StageOutcome]| fold_outcomes(manifest.clone(), outcomes).status;
        let completed = outcome("a", RunStatus::Completed);
        let running = outcome("b", RunStatus::Running);
        let failed = outcome("b", RunStatus::Failed);
        let never_joined = StageOutcome {
            worker: None,
            ..outcome("b", RunStatus::Running)
        };
        assert_eq!(folded(&[completed.clone(), running]), RunStatus::Running);
        assert_eq!(
            folded(&[completed.clone(), never_joined]),
            RunStatus::Running
        );
        assert_eq!(folded(&[completed.clone(), failed]), RunStatus::Failed);
        assert_eq!(
            folded(&[completed.clone(), outcome("b", RunStatus::Completed)]),
            RunStatus::Completed
        );
        // A run in one process records no stage outcomes: its manifest says what it is.
        assert_eq!(folded(&[]), RunStatus::Running);
    }
}
