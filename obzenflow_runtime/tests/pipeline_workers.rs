//! Workers (`Flow::start_worker`) through the journal-service port alone: two workers of one
//! run in this process, on a service that keeps frames in memory, and the refusals of a
//! worker that cannot run, and the backpressure window of an edge between two workers (the
//! service tells the writer's worker how far the remote reader has read). The runtime needs
//! no NATS for any of it; JetStream workers in separate processes are tested in
//! `obzenflow_stages/tests/jetstream.rs`.

mod support;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use obzenflow_core::{JournalError, JournalId, JournalReader, Record};
use obzenflow_runtime::journal::frame::decode_batch_frame;
use obzenflow_runtime::journal::{
    BackendError, FrameStore, JoinedRun, JournalBackend, PositionFeed, RunManifest, RunStatus,
    RunStore, StoredFrame,
};
use obzenflow_runtime::pipeline::{FlowBuilder, FlowError, Journals, WorkerSpec};
use support::{doubling_flow, Collect, Double, Numbers};
use tokio::sync::{watch, Notify};

/// What the service holds: the run's manifest, each journal's frames, and what each worker
/// recorded at its end.
#[derive(Default)]
struct Held {
    manifest: Mutex<Option<RunManifest>>,
    frames: Mutex<HashMap<String, Vec<Vec<u8>>>>,
    stored: Notify,
    ends: Mutex<Vec<(Vec<String>, RunStatus)>>,
    /// Per journal: how far its remote reader has read, as the reader reports it.
    positions: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Per journal: the records stored so far, and the most they ever were ahead of what the
    /// remote reader had read when stored.
    stored_records: Mutex<HashMap<String, watch::Sender<u64>>>,
    worst_lead: Mutex<HashMap<String, u64>>,
}

impl Held {
    fn frames_of(&self, key: &str) -> Vec<Vec<u8>> {
        let frames = self.frames.lock().unwrap();
        frames.get(key).cloned().unwrap_or_default()
    }

    fn position(&self, key: &str) -> watch::Sender<u64> {
        let mut positions = self.positions.lock().unwrap();
        positions
            .entry(key.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    fn stored_records(&self, key: &str) -> watch::Receiver<u64> {
        let mut stored = self.stored_records.lock().unwrap();
        stored
            .entry(key.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn worst_lead(&self, key: &str) -> u64 {
        self.worst_lead
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

fn key(journal: &JournalId) -> String {
    format!("{}.{}", journal.name, journal.lane)
}

/// A journal service in this process that runs workers.
#[derive(Debug, Clone)]
struct Service {
    held: Arc<Held>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

#[async_trait::async_trait]
impl JournalBackend for Service {
    fn begin_run(&self, _manifest: &RunManifest) -> Result<Arc<dyn RunStore>, BackendError> {
        Err("this test service only runs workers".into())
    }

    fn describe(&self) -> String {
        "test journals in memory".to_owned()
    }

    async fn join_run(
        &self,
        proposal: &RunManifest,
        stages: &[String],
    ) -> Result<JoinedRun, BackendError> {
        let manifest = self
            .held
            .manifest
            .lock()
            .unwrap()
            .get_or_insert_with(|| proposal.clone())
            .clone();
        let store = Store {
            held: self.held.clone(),
            stages: stages.to_vec(),
        };
        Ok(JoinedRun::new(manifest, Arc::new(store)))
    }
}

struct Store {
    held: Arc<Held>,
    stages: Vec<String>,
}

#[async_trait::async_trait]
impl RunStore for Store {
    fn frame_store(&self, journal: &JournalId) -> Result<Arc<dyn FrameStore>, BackendError> {
        Ok(Arc::new(Frames {
            held: self.held.clone(),
            key: key(journal),
        }))
    }

    async fn write_manifest(&self, manifest: &RunManifest) -> Result<(), BackendError> {
        let end = (self.stages.clone(), manifest.status);
        self.held.ends.lock().unwrap().push(end);
        Ok(())
    }

    async fn remote_reader(
        &self,
        journal: &JournalId,
        _reading_stage: &str,
    ) -> Result<Box<dyn JournalReader>, BackendError> {
        Ok(Box::new(FrameReader {
            journal: journal.clone(),
            key: key(journal),
            held: self.held.clone(),
            next_frame: 0,
            records: VecDeque::new(),
            position: 0,
            sealed: false,
            reported: self.held.position(&key(journal)),
        }))
    }

    async fn remote_position(
        &self,
        journal: &JournalId,
        _reading_stage: &str,
    ) -> Result<Option<Box<dyn PositionFeed>>, BackendError> {
        Ok(Some(Box::new(Positions {
            positions: self.held.position(&key(journal)).subscribe(),
            first: true,
        })))
    }
}

/// The positions a [`FrameReader`] reports, the latest first.
struct Positions {
    positions: watch::Receiver<u64>,
    first: bool,
}

#[async_trait::async_trait]
impl PositionFeed for Positions {
    async fn next_position(&mut self) -> Result<Option<u64>, BackendError> {
        if !std::mem::take(&mut self.first) && self.positions.changed().await.is_err() {
            return Ok(None);
        }
        Ok(Some(*self.positions.borrow_and_update()))
    }
}

struct Frames {
    held: Arc<Held>,
    key: String,
}

#[async_trait::async_trait]
impl FrameStore for Frames {
    async fn store(&self, frame: StoredFrame<'_>) -> Result<(), BackendError> {
        let mut frames = self.held.frames.lock().unwrap();
        frames
            .entry(self.key.clone())
            .or_default()
            .push(frame.bytes.to_vec());
        drop(frames);
        let end = frame.first_seq + frame.records;
        let read = *self.held.position(&self.key).borrow();
        let mut worst = self.held.worst_lead.lock().unwrap();
        let lead = worst.entry(self.key.clone()).or_default();
        *lead = (*lead).max(end.saturating_sub(read));
        drop(worst);
        let stored = self.held.stored_records.lock().unwrap();
        if let Some(records) = stored.get(&self.key) {
            records.send_replace(end);
        }
        drop(stored);
        self.held.stored.notify_waiters();
        Ok(())
    }
}

/// Reads a journal's frames as the service stores them, decoding each.
struct FrameReader {
    journal: JournalId,
    key: String,
    held: Arc<Held>,
    next_frame: usize,
    records: VecDeque<Record>,
    position: u64,
    sealed: bool,
    /// Where the reader reports how far it has read.
    reported: watch::Sender<u64>,
}

#[async_trait::async_trait]
impl JournalReader for FrameReader {
    fn journal_id(&self) -> &JournalId {
        &self.journal
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn read(&mut self, max: usize, out: &mut Vec<Record>) -> Result<usize, JournalError> {
        for frame in self
            .held
            .frames_of(&self.key)
            .into_iter()
            .skip(self.next_frame)
        {
            self.next_frame += 1;
            let ((header, events), _) = decode_batch_frame(&frame).unwrap();
            self.sealed = header.is_seal();
            self.records.extend(Record::batch(events));
        }
        let count = self.records.len().min(max);
        out.extend(self.records.drain(..count));
        self.position += count as u64;
        if count > 0 {
            self.reported.send_replace(self.position);
        }
        Ok(count)
    }

    async fn wait(&self) -> Result<(), JournalError> {
        loop {
            let stored = self.held.stored.notified();
            if !self.records.is_empty() || self.held.frames_of(&self.key).len() > self.next_frame {
                return Ok(());
            }
            if self.sealed {
                return Err(JournalError::Closed {
                    journal: self.journal.clone(),
                });
            }
            stored.await;
        }
    }
}

fn service() -> Service {
    Service {
        held: Arc::new(Held::default()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_of_one_run_give_the_sink_every_record_through_the_service() {
    let service = service();
    let run_id = obzenflow_core::RunId::new();
    let collect = Collect::default();
    let build = |collect: Collect| {
        doubling_flow("workers", 300, None, collect)
            .journals(Journals::backend(Arc::new(service.clone())))
            .build()
            .unwrap()
    };
    // The downstream worker starts first: it reads the upstream's journal as it is written.
    let downstream = build(collect.clone())
        .start_worker(WorkerSpec::new(run_id, ["collect"]))
        .await
        .unwrap();
    let upstream = build(Collect::default())
        .start_worker(WorkerSpec::new(run_id, ["numbers", "double"]))
        .await
        .unwrap();
    let upstream = upstream.wait().await.unwrap();
    let downstream = downstream.wait().await.unwrap();
    assert!(upstream.is_success(), "{upstream}");
    assert!(downstream.is_success(), "{downstream}");
    let names = |report: &obzenflow_runtime::pipeline::FlowReport| -> Vec<String> {
        report
            .stages
            .iter()
            .map(|stage| stage.name.clone())
            .collect()
    };
    assert_eq!(names(&upstream), ["numbers", "double"]);
    assert_eq!(names(&downstream), ["collect"]);
    assert_eq!(upstream.run_id, run_id);
    assert_eq!(downstream.run_id, run_id);

    let received: Vec<u64> = collect
        .records()
        .iter()
        .map(|event| event.json().unwrap()["n"].as_u64().unwrap())
        .collect();
    assert_eq!(received, (0..300).collect::<Vec<_>>());
    // Each worker wrote only its own stages' journals, and recorded its end for them.
    let mut written: Vec<String> = service
        .held
        .frames
        .lock()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    written.sort();
    assert!(
        written.iter().all(|key| !key.starts_with("pipeline")),
        "{written:?}"
    );
    let mut ends = service.held.ends.lock().unwrap().clone();
    ends.sort_by_key(|(stages, _)| stages.len());
    assert_eq!(
        ends,
        [
            (vec!["collect".to_owned()], RunStatus::Completed),
            (
                vec!["numbers".to_owned(), "double".to_owned()],
                RunStatus::Completed
            ),
        ]
    );
}

#[tokio::test]
async fn a_worker_that_cannot_run_is_refused_naming_why() {
    let run_id = obzenflow_core::RunId::new();
    let on_memory = doubling_flow("refusals", 3, None, Collect::default())
        .journals(Journals::memory())
        .build()
        .unwrap()
        .start_worker(WorkerSpec::new(run_id, ["collect"]))
        .await;
    let Err(error @ FlowError::InvalidWorker { .. }) = on_memory else {
        panic!("a worker on memory journals is refused");
    };
    assert!(error.to_string().contains("journal service"), "{error}");

    let unknown = doubling_flow("refusals", 3, None, Collect::default())
        .journals(Journals::backend(Arc::new(service())))
        .build()
        .unwrap()
        .start_worker(WorkerSpec::new(run_id, ["collect", "nowhere"]))
        .await;
    let Err(error @ FlowError::InvalidWorker { .. }) = unknown else {
        panic!("a worker of a stage the flow does not have is refused");
    };
    assert!(error.to_string().contains("`nowhere`"), "{error}");

    // A service that does not run workers refuses to join (the port's default).
    #[derive(Debug)]
    struct OneProcess;
    impl JournalBackend for OneProcess {
        fn begin_run(&self, _manifest: &RunManifest) -> Result<Arc<dyn RunStore>, BackendError> {
            Err("unused".into())
        }
        fn describe(&self) -> String {
            "one-process journals".to_owned()
        }
    }
    let refused = doubling_flow("refusals", 3, None, Collect::default())
        .journals(Journals::backend(Arc::new(OneProcess)))
        .build()
        .unwrap()
        .start_worker(WorkerSpec::new(run_id, ["collect"]))
        .await;
    let Err(FlowError::WorkerJoin { source, .. }) = refused else {
        panic!("a service without workers refuses to join");
    };
    assert!(
        source.to_string().contains("cannot run workers"),
        "{source}"
    );
}

/// Runs `records` records from an upstream worker (`numbers`, `double`) to a downstream one
/// (`collect`) over an edge of window `window`, starting the downstream worker only once
/// the writer stored a window: checks that it stored exactly that, that it never stored more
/// than the window ahead of the remote reader, and that both complete with every record.
async fn a_window_between_workers_holds(window: u64, records: u64) {
    let service = service();
    let run_id = obzenflow_core::RunId::new();
    let collect = Collect::default();
    let build = |collect: Collect| {
        FlowBuilder::new("windowed workers")
            .source("numbers", Numbers::new("numbers", records))
            .transform("double", Double { fail_every: None })
            .sink("collect", collect)
            .edge("numbers", "double")
            .edge_with_window("double", "collect", window)
            .journals(Journals::backend(Arc::new(service.clone())))
            .build()
            .unwrap()
    };
    let mut stored = service.held.stored_records("double.data");
    let upstream = build(Collect::default())
        .start_worker(WorkerSpec::new(run_id, ["numbers", "double"]))
        .await
        .unwrap();
    // With no reader yet, the writer stores one window and waits: any record stored beyond
    // it would be a lead over position 0 larger than the window, which the end checks.
    stored.wait_for(|stored| *stored >= window).await.unwrap();
    assert_eq!(*stored.borrow(), window);
    // A reader that read one record lets exactly one more in.
    service.held.position("double.data").send_replace(1);
    stored.wait_for(|stored| *stored > window).await.unwrap();
    assert_eq!(*stored.borrow(), window + 1);
    let downstream = build(collect.clone())
        .start_worker(WorkerSpec::new(run_id, ["collect"]))
        .await
        .unwrap();
    let upstream = upstream.wait().await.unwrap();
    let downstream = downstream.wait().await.unwrap();
    assert!(upstream.is_success(), "{upstream}");
    assert!(downstream.is_success(), "{downstream}");
    assert_eq!(collect.records().len() as u64, records);
    assert_eq!(service.held.worst_lead("double.data"), window);
    let double = upstream.stage("double").unwrap();
    assert!(double.backpressure_waits > 0, "{upstream}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_waits_within_its_window_for_a_reader_in_another_worker_not_yet_started() {
    a_window_between_workers_holds(16, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_larger_than_the_memory_retention_holds_between_workers() {
    // The writer's journal keeps the window in memory, for the reader that follows the
    // remote one over it.
    let window = Journals::DEFAULT_MEMORY_RETENTION as u64 + 1_000;
    a_window_between_workers_holds(window, window + 2_000).await;
}
