//! Journals on real `nats-server` processes (feature `jetstream`; `cargo xtask nats` installs
//! the server): a single node and a 3-node cluster, started and stopped by each test.
//!
//! Each flow test compares the JetStream run with the same flow on memory or disk journals:
//! the records a sink received, and `verify` between the JetStream run (exported to a run
//! directory, frame for frame) and a disk run. Record counts are small so that the whole file
//! runs in seconds in CI.

use std::path::Path;

use obzenflow_core::{ChainEvent, JournalError, JournalReader, Lane};
use obzenflow_runtime::journal::inspect;
use obzenflow_runtime::pipeline::{FlowBuilder, FlowReport, Journals};
use obzenflow_runtime::replay::verify;
use obzenflow_runtime::stages::{AsyncSourceHandler, HandlerFailure, SourcePoll};
use obzenflow_stages::jetstream::{JetStreamConfig, JetStreamJournals, LocalNats, LocalNatsConfig};
use obzenflow_stages::sinks::CollectSink;
use obzenflow_stages::transforms::map;
use serde_json::json;
use tokio::sync::{oneshot, Semaphore};

/// A source of `records` numbered records in batches of `batch`, which after `pause_after`
/// records tells `paused` and waits for `resume` before it goes on: a test does something to
/// the cluster mid-run, at a point it knows.
struct PausingSource {
    next: u64,
    records: u64,
    batch: u64,
    pause_after: u64,
    paused: Option<oneshot::Sender<()>>,
    resume: std::sync::Arc<Semaphore>,
}

impl PausingSource {
    fn new(records: u64, batch: u64) -> Self {
        Self {
            next: 0,
            records,
            batch,
            pause_after: u64::MAX,
            paused: None,
            resume: std::sync::Arc::new(Semaphore::new(0)),
        }
    }

    /// The same source, pausing after `records` records; returns the pause signal and the
    /// resume gate.
    fn pausing_after(
        mut self,
        records: u64,
    ) -> (Self, oneshot::Receiver<()>, std::sync::Arc<Semaphore>) {
        let (paused, paused_rx) = oneshot::channel();
        self.pause_after = records;
        self.paused = Some(paused);
        let resume = self.resume.clone();
        (self, paused_rx, resume)
    }
}

impl AsyncSourceHandler for PausingSource {
    async fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.next >= self.pause_after {
            if let Some(paused) = self.paused.take() {
                let _ = paused.send(());
                let _ = self.resume.acquire().await.map(|permit| permit.forget());
            }
        }
        if self.next >= self.records {
            return Ok(SourcePoll::Done);
        }
        let end = (self.next + self.batch).min(self.records);
        let events = (self.next..end)
            .map(|n| ChainEvent::data("number", json!({ "n": n, "label": format!("#{n}") })))
            .collect();
        self.next = end;
        Ok(SourcePoll::Records(events))
    }
}

/// Source, three transforms, sink: the depth-3 shape of the benchmark.
fn depth3(source: PausingSource, sink: CollectSink) -> FlowBuilder {
    FlowBuilder::new("depth3")
        .async_source("numbers", source)
        .transform(
            "double",
            map(|mut event: ChainEvent| {
                if let Some(payload) = event.payload_mut() {
                    let n = payload["n"].as_u64().unwrap_or_default();
                    payload["double"] = (n * 2).into();
                }
                event
            }),
        )
        .transform(
            "square",
            map(|mut event: ChainEvent| {
                if let Some(payload) = event.payload_mut() {
                    let n = payload["n"].as_u64().unwrap_or_default();
                    payload["square"] = (n * n).into();
                }
                event
            }),
        )
        .transform(
            "tag",
            map(|mut event: ChainEvent| {
                if let Some(payload) = event.payload_mut() {
                    payload["tag"] = "checked".into();
                }
                event
            }),
        )
        .sink("out", sink)
        .chain(["numbers", "double", "square", "tag", "out"])
}

async fn run(builder: FlowBuilder) -> FlowReport {
    let report = builder.build().unwrap().run().await.unwrap();
    assert!(report.is_success(), "{report}");
    report
}

/// The `n` of every record the sink received, in order.
fn numbers(sink: &CollectSink) -> Vec<u64> {
    sink.payloads()
        .iter()
        .map(|payload| payload["n"].as_u64().unwrap())
        .collect()
}

/// Runs `depth3` on disk journals under `base`; returns the run directory and what the sink
/// received.
async fn disk_run(base: &Path, records: u64) -> (std::path::PathBuf, Vec<serde_json::Value>) {
    let sink = CollectSink::new();
    let report = run(depth3(PausingSource::new(records, 64), sink.clone())
        .journals(Journals::disk(base.join("disk"))))
    .await;
    (report.run_dir.clone().unwrap(), sink.payloads())
}

/// Exports the JetStream run, then checks it as every reader of run directories does: it
/// validates clean, and `verify` finds 0 differences with `baseline`.
async fn assert_same_as_disk(
    journals: &JetStreamJournals,
    report: &FlowReport,
    baseline: &Path,
    base: &Path,
) {
    let exported = journals
        .export_run(report.run_id, base.join("exported"))
        .await
        .unwrap();
    let validation = inspect::validate_run(&exported).unwrap();
    assert!(validation.is_clean(), "{validation:?}");
    let verdict = verify(baseline, &exported).unwrap();
    assert!(verdict.is_identical(), "{verdict}");
    assert_eq!(verdict.differences, 0);
}

/// The index of the node leading the stream of run `run_id`.
async fn stream_leader(cluster: &LocalNats, run_id: obzenflow_core::RunId) -> usize {
    let servers: Vec<async_nats::ServerAddr> = cluster
        .url_list()
        .split(',')
        .map(|url| url.parse().unwrap())
        .collect();
    let client = async_nats::connect(servers).await.unwrap();
    let context = async_nats::jetstream::new(client);
    let mut stream = context
        .get_stream(JetStreamJournals::stream_name(run_id))
        .await
        .unwrap();
    let info = stream.info().await.unwrap();
    let leader = info
        .cluster
        .as_ref()
        .and_then(|cluster| cluster.leader.clone());
    let leader = leader.expect("an R3 stream has a leader");
    // Nodes are named n1, n2, n3.
    leader.trim_start_matches('n').parse::<usize>().unwrap() - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_and_a_three_node_cluster_start_ready_and_stop() {
    let single = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    assert_eq!(single.urls().len(), 1);
    let client = async_nats::connect(single.url_list()).await.unwrap();
    let reply = client.request("$JS.API.INFO", "".into()).await.unwrap();
    let info: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(info["streams"], 0, "JetStream is enabled: {info}");

    let mut cluster = LocalNats::start(LocalNatsConfig::nodes(3)).await.unwrap();
    assert_eq!(cluster.urls().len(), 3);
    let dir = cluster.dir().to_path_buf();
    cluster.kill(0).await;
    assert_eq!(cluster.url_list().split(',').count(), 2);
    drop(cluster);
    assert!(!dir.exists(), "the cluster's directory is removed on drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_depth_3_flow_on_a_single_node_gives_the_records_of_memory_and_disk_journals() {
    const RECORDS: u64 = 3_000;
    let nats = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    let journals = JetStreamJournals::connect(JetStreamConfig::new(nats.url_list()))
        .await
        .unwrap();
    let base = tempfile::tempdir().unwrap();

    let memory_sink = CollectSink::new();
    let _memory = run(depth3(PausingSource::new(RECORDS, 64), memory_sink.clone())
        .journals(Journals::memory_unbounded()))
    .await;
    let (disk_dir, disk_payloads) = disk_run(base.path(), RECORDS).await;

    let sink = CollectSink::new();
    let report =
        run(depth3(PausingSource::new(RECORDS, 64), sink.clone()).journals(journals.journals()))
            .await;
    assert_eq!(numbers(&sink), (0..RECORDS).collect::<Vec<_>>());
    assert_eq!(sink.payloads(), memory_sink.payloads());
    assert_eq!(sink.payloads(), disk_payloads);
    assert!(
        report
            .to_string()
            .contains("JetStream journals (1 replica)"),
        "{report}"
    );

    let manifest = journals.manifest(report.run_id).await.unwrap();
    assert_eq!(
        manifest.status,
        obzenflow_runtime::journal::RunStatus::Completed
    );
    let runs = journals.runs().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_same_as_disk(&journals, &report, &disk_dir, base.path()).await;

    // The command-line tool reads the run from JetStream as `obzenflow` reads a disk run.
    let run_id = report.run_id.to_string();
    let (exit, out) = cli(&nats, &["validate", &run_id]).await;
    assert_eq!(exit.code(), 0, "{out}");
    assert!(
        out.contains("state: completed") && out.contains("tag.data: 3003 records, ok"),
        "{out}"
    );
    let (exit, out) = cli(&nats, &["runs"]).await;
    assert_eq!(exit.code(), 0, "{out}");
    assert!(out.contains(&run_id) && out.contains("completed"), "{out}");
    let (exit, out) = cli(&nats, &["inspect", &run_id, "tag"]).await;
    assert_eq!(exit.code(), 0, "{out}");
    assert_eq!(
        out.lines()
            .filter(|line| line.contains("\"checked\""))
            .count() as u64,
        RECORDS,
        "{out}"
    );
}

/// Runs `obzenflow-jetstream --servers <nats> <arguments>` in process; returns the exit and
/// what it printed (stdout, then stderr).
async fn cli(nats: &LocalNats, arguments: &[&str]) -> (obzenflow_runtime::cli::Exit, String) {
    let mut all = vec![
        "obzenflow-jetstream".to_owned(),
        "--servers".to_owned(),
        nats.url_list(),
    ];
    all.extend(arguments.iter().map(|argument| (*argument).to_owned()));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let exit = obzenflow_stages::jetstream::run_cli(all, &mut stdout, &mut stderr).await;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (exit, printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_node_of_three_mid_run_loses_and_duplicates_no_record() {
    const RECORDS: u64 = 2_000;
    let mut cluster = LocalNats::start(LocalNatsConfig::nodes(3)).await.unwrap();
    let config = JetStreamConfig::new(cluster.url_list()).with_replicas(3);
    let journals = JetStreamJournals::connect(config).await.unwrap();
    let base = tempfile::tempdir().unwrap();
    let (disk_dir, disk_payloads) = disk_run(base.path(), RECORDS).await;

    let sink = CollectSink::new();
    let (source, paused, resume) = PausingSource::new(RECORDS, 64).pausing_after(RECORDS / 2);
    let flow = depth3(source, sink.clone())
        .journals(journals.journals())
        .build()
        .unwrap();
    let handle = flow.start().unwrap();
    paused.await.unwrap();
    // The run's stream exists (its first frames are stored): kill the node leading it, the
    // hardest case, where the stream must elect a new leader before the next store.
    let leader = stream_leader(&cluster, handle.run_id()).await;
    cluster.kill(leader).await;
    resume.add_permits(1);
    let report = handle.wait().await.unwrap();
    assert!(report.is_success(), "{report}");
    assert_ne!(
        stream_leader(&cluster, report.run_id).await,
        leader,
        "the stream elected a new leader after the kill"
    );

    assert_eq!(numbers(&sink), (0..RECORDS).collect::<Vec<_>>());
    assert_eq!(sink.payloads(), disk_payloads);
    assert_same_as_disk(&journals, &report, &disk_dir, base.path()).await;
}

/// Reads `reader` until the journal's seal closes it; returns the records.
async fn read_to_the_seal(reader: &mut impl JournalReader) -> Vec<obzenflow_core::Record> {
    let mut records = Vec::new();
    loop {
        match reader.wait().await {
            Ok(()) => {
                reader.read(256, &mut records).unwrap();
            }
            Err(JournalError::Closed { .. }) => return records,
            Err(error) => panic!("{error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_on_another_connection_follows_a_live_journal_on_its_own_durable_position() {
    const RECORDS: u64 = 1_500;
    let nats = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    let config = JetStreamConfig::new(nats.url_list());
    let journals = JetStreamJournals::connect(config.clone()).await.unwrap();
    // The reader's own connection, as another process would have.
    let elsewhere = JetStreamJournals::connect(config).await.unwrap();

    let sink = CollectSink::new();
    let (source, paused, resume) = PausingSource::new(RECORDS, 64).pausing_after(RECORDS / 3);
    let handle = depth3(source, sink.clone())
        .journals(journals.journals())
        .build()
        .unwrap()
        .start()
        .unwrap();
    paused.await.unwrap();
    let run_id = handle.run_id();
    let mut reader = elsewhere
        .reader(run_id, "square", Lane::Data, "follower")
        .await
        .unwrap();
    resume.add_permits(1);
    let records = read_to_the_seal(&mut reader).await;
    let report = handle.wait().await.unwrap();
    assert!(report.is_success(), "{report}");
    // The consumer delivers a bounded number of frames ahead of what the reader acked.
    let client = async_nats::connect(nats.urls()[0].as_str()).await.unwrap();
    let stream = async_nats::jetstream::new(client)
        .get_stream(JetStreamJournals::stream_name(run_id))
        .await
        .unwrap();
    let info = stream.consumer_info("follower").await.unwrap();
    assert_eq!(
        info.config.max_ack_pending,
        obzenflow_stages::jetstream::JetStreamReader::READ_AHEAD_FRAMES
    );

    let data: Vec<u64> = records
        .iter()
        .filter(|record| record.is_data())
        .map(|record| record.field("n").unwrap().as_u64().unwrap())
        .collect();
    assert_eq!(data, (0..RECORDS).collect::<Vec<_>>());
    let written = report.stage("square").unwrap();
    assert_eq!(reader.position(), records.len() as u64);
    assert_eq!(written.records_out, RECORDS, "{report}");
    // Everything was acked: the same consumer opened again starts after the seal, closed.
    reader.finish().await;
    let mut again = elsewhere
        .reader(run_id, "square", Lane::Data, "follower")
        .await
        .unwrap();
    assert_eq!(again.position(), records.len() as u64);
    assert!(read_to_the_seal(&mut again).await.is_empty());
    // Another consumer name reads the journal from its start.
    let mut fresh = elsewhere
        .reader(run_id, "square", Lane::Data, "second")
        .await
        .unwrap();
    assert_eq!(read_to_the_seal(&mut fresh).await.len(), records.len());
}

/// Set in the child process of the kill test: the servers to run the flow against.
const CHILD_SERVERS: &str = "OBZENFLOW_JETSTREAM_KILLED_CHILD";

/// The child of the kill test: starts the flow, lets half of it through, says `PAUSED <run id>`
/// on stdout and waits to be killed.
async fn run_until_killed(servers: String) {
    let journals = JetStreamJournals::connect(JetStreamConfig::new(servers))
        .await
        .unwrap();
    let (source, paused, _resume) = PausingSource::new(1_000, 50).pausing_after(500);
    let handle = depth3(source, CollectSink::new())
        .journals(journals.journals())
        .build()
        .unwrap()
        .start()
        .unwrap();
    paused.await.unwrap();
    println!("PAUSED {}", handle.run_id());
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_process_killed_mid_run_leaves_a_run_that_reads_incomplete_and_a_rerun_completes() {
    if let Ok(servers) = std::env::var(CHILD_SERVERS) {
        return run_until_killed(servers).await;
    }
    use tokio::io::AsyncBufReadExt;
    let nats = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_flow_process_killed_mid_run_leaves_a_run_that_reads_incomplete_and_a_rerun_completes",
            "--nocapture",
        ])
        .env(CHILD_SERVERS, nats.url_list())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let run_id = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the child says PAUSED");
        if let Some(run_id) = line.strip_prefix("PAUSED ") {
            break run_id.parse::<obzenflow_core::RunId>().unwrap();
        }
    };
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let journals = JetStreamJournals::connect(JetStreamConfig::new(nats.url_list()))
        .await
        .unwrap();
    let manifest = journals.manifest(run_id).await.unwrap();
    assert_eq!(
        manifest.status,
        obzenflow_runtime::journal::RunStatus::Running
    );
    let base = tempfile::tempdir().unwrap();
    let exported = journals.export_run(run_id, base.path()).await.unwrap();
    let validation = inspect::validate_run(&exported).unwrap();
    assert_eq!(
        validation.state,
        Some(obzenflow_runtime::journal::RunState::Incomplete)
    );
    assert!(
        !validation.is_clean(),
        "an incomplete run is not reported clean"
    );
    // No journal is sealed: none claims to be whole, whatever it holds.
    let unsealed = validation
        .journals
        .iter()
        .all(|journal| journal.health == inspect::JournalHealth::Unsealed);
    assert!(unsealed, "{validation:?}");
    let (exit, out) = cli(&nats, &["runs"]).await;
    assert_eq!(exit.code(), 0, "{out}");
    assert!(
        out.contains("incomplete") && !out.contains("completed"),
        "{out}"
    );

    // Running the flow again starts over from its source and completes (at-least-once).
    let sink = CollectSink::new();
    let rerun =
        run(depth3(PausingSource::new(1_000, 50), sink.clone()).journals(journals.journals()))
            .await;
    assert_ne!(rerun.run_id, run_id);
    assert_eq!(numbers(&sink), (0..1_000).collect::<Vec<_>>());
}

/// Set in the worker processes of the worker-kill test: `<role> <servers> <run id>`, the role
/// `upstream`, `downstream` (stops after half the records) or `downstream-again`.
const WORKER_CHILD: &str = "OBZENFLOW_JETSTREAM_WORKER_CHILD";

/// How many records the worker-kill test's source makes.
const WORKER_RECORDS: u64 = 1_000;

/// The worker-kill test's sink: prints `GOT <n>` for each record it delivers; with
/// `stop_after`, prints `HALF` once it delivered that many and then never delivers another.
struct PrintingSink {
    delivered: u64,
    stop_after: Option<u64>,
}

impl obzenflow_runtime::stages::AsyncSinkHandler for PrintingSink {
    async fn consume_batch<'a>(
        &'a mut self,
        events: &'a [obzenflow_core::Record],
    ) -> Vec<Result<(), obzenflow_runtime::stages::RecordError>> {
        use std::io::Write;
        let mut lines = String::new();
        let mut stopped = false;
        for event in events {
            if self.stop_after == Some(self.delivered) {
                lines.push_str("HALF\n");
                stopped = true;
                break;
            }
            let n = event
                .field("n")
                .and_then(|n| n.as_u64())
                .unwrap_or(u64::MAX);
            lines.push_str(&format!("GOT {n}\n"));
            self.delivered += 1;
        }
        {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(lines.as_bytes()).and_then(|()| out.flush());
        }
        if stopped {
            // Stopped mid-run, as a stuck sink is, until the test kills the process.
            std::future::pending::<()>().await;
        }
        events.iter().map(|_| Ok(())).collect()
    }
}

/// The flow the worker-kill test splits over two processes: `numbers` and `double` in the
/// upstream worker, `deliver` in the downstream one, with the default window between them
/// or `window`. Every process builds all of it.
fn split_flow(source: PausingSource, sink: PrintingSink, window: Option<u64>) -> FlowBuilder {
    let flow = FlowBuilder::new("split")
        .async_source("numbers", source)
        .transform(
            "double",
            map(|mut event: ChainEvent| {
                if let Some(payload) = event.payload_mut() {
                    let n = payload["n"].as_u64().unwrap_or_default();
                    payload["double"] = (n * 2).into();
                }
                event
            }),
        )
        .async_sink("deliver", sink);
    match window {
        Some(window) => flow
            .edge("numbers", "double")
            .edge_with_window("double", "deliver", window),
        None => flow.chain(["numbers", "double", "deliver"]),
    }
}

/// The window of the windowed roles (`<role>-windowed`) of the worker-kill test's children.
const SMALL_WINDOW: u64 = 64;

/// A worker process of the worker-kill test: runs its stages of `split_flow` and prints
/// `WAITS <n>` (how often its stages' appends waited for a slow reader) and `DONE <success>`
/// when they ended.
async fn run_worker_child(setting: String) {
    let mut words = setting.split(' ');
    let (role, servers, run_id) = (
        words.next().unwrap().to_owned(),
        words.next().unwrap().to_owned(),
        words.next().unwrap().parse().unwrap(),
    );
    let window = role.ends_with("-windowed").then_some(SMALL_WINDOW);
    let role = role.trim_end_matches("-windowed").to_owned();
    let (stages, stop_after): (&[&str], _) = match role.as_str() {
        "upstream" | "upstream-pausing" => (&["numbers", "double"], None),
        "downstream" => (&["deliver"], Some(WORKER_RECORDS / 2)),
        _ => (&["deliver"], None),
    };
    // The pausing upstream stops after half the records and never resumes: it is killed.
    let source = PausingSource::new(WORKER_RECORDS, 50);
    let source = match role.as_str() {
        "upstream-pausing" => source.pausing_after(WORKER_RECORDS / 2).0,
        _ => source,
    };
    let sink = PrintingSink {
        delivered: 0,
        stop_after,
    };
    let args = obzenflow_stages::jetstream::WorkerArgs::new(
        run_id,
        stages.iter().copied(),
        JetStreamConfig::new(servers),
    );
    let report = args.run(split_flow(source, sink, window)).await.unwrap();
    let waits: u64 = report
        .stages
        .iter()
        .map(|stage| stage.backpressure_waits)
        .sum();
    println!("WAITS {waits}");
    println!("DONE {}", report.is_success());
}

/// A worker process of the worker-kill test, with its stdout read line by line.
struct WorkerChild {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// The `WAITS <n>` the worker printed, once it did.
    waits: Option<u64>,
}

impl WorkerChild {
    fn spawn(role: &str, servers: &str, run_id: obzenflow_core::RunId) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_worker_killed_mid_run_leaves_the_run_incomplete_and_its_restart_completes_it",
                "--nocapture",
            ])
            .env(WORKER_CHILD, format!("{role} {servers} {run_id}"))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            lines,
            waits: None,
        }
    }

    /// Reads lines until `records` lines `GOT <n>` came; returns their `n`.
    async fn read_got(&mut self, records: u64) -> Vec<u64> {
        let mut got = Vec::new();
        while (got.len() as u64) < records {
            let line = self.lines.next_line().await.unwrap();
            let line = line.expect("the worker delivers records before it exits");
            if let Some(n) = line.strip_prefix("GOT ") {
                got.push(n.parse().unwrap());
            }
        }
        got
    }

    /// Reads until the worker delivered the first half of the records and stopped (`HALF`),
    /// then kills it with `SIGKILL` and waits for it to exit; returns what it delivered.
    async fn kill_after_the_first_half(&mut self) -> Vec<u64> {
        let (first, line) = self.read_until_done_or_half().await;
        assert_eq!(line, "HALF");
        assert_eq!(first, (0..WORKER_RECORDS / 2).collect::<Vec<_>>());
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        first
    }

    /// Reads lines until one starts `DONE ` or is `HALF`; returns the `n` of every `GOT <n>`
    /// line before it and that line.
    async fn read_until_done_or_half(&mut self) -> (Vec<u64>, String) {
        let mut got = Vec::new();
        loop {
            let line = self
                .lines
                .next_line()
                .await
                .unwrap()
                .expect("the worker says DONE or HALF before it exits");
            if let Some(n) = line.strip_prefix("GOT ") {
                got.push(n.parse().unwrap());
            } else if let Some(waits) = line.strip_prefix("WAITS ") {
                self.waits = Some(waits.parse().unwrap());
            } else if line == "HALF" || line.starts_with("DONE ") {
                return (got, line);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_leaves_the_run_incomplete_and_its_restart_completes_it() {
    if let Ok(setting) = std::env::var(WORKER_CHILD) {
        return run_worker_child(setting).await;
    }
    use obzenflow_runtime::journal::{RunState, RunStatus};
    let nats = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    let servers = nats.url_list();
    let run_id = obzenflow_core::RunId::new();
    let mut upstream = WorkerChild::spawn("upstream", &servers, run_id);
    let mut downstream = WorkerChild::spawn("downstream", &servers, run_id);

    // The downstream worker delivered half the records, read from the upstream's journal in
    // another process, and is stopped mid-run: it is killed there.
    let first_delivery = downstream.kill_after_the_first_half().await;
    let (_, line) = upstream.read_until_done_or_half().await;
    assert_eq!(
        line, "DONE true",
        "the upstream worker completes its stages"
    );
    upstream.child.wait().await.unwrap();

    // The upstream's stages completed, the sink's did not: the run is not completed.
    let journals = JetStreamJournals::connect(JetStreamConfig::new(servers.clone()))
        .await
        .unwrap();
    let outcomes = journals.stage_outcomes(run_id).await.unwrap();
    let statuses: Vec<(&str, RunStatus)> = outcomes
        .iter()
        .map(|outcome| (outcome.stage.as_str(), outcome.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("numbers", RunStatus::Completed),
            ("double", RunStatus::Completed),
            ("deliver", RunStatus::Running),
        ]
    );
    assert_eq!(
        journals.manifest(run_id).await.unwrap().status,
        RunStatus::Running
    );
    let base = tempfile::tempdir().unwrap();
    let exported = journals.export_run(run_id, base.path()).await.unwrap();
    let validation = inspect::validate_run(&exported).unwrap();
    assert_eq!(validation.state, Some(RunState::Incomplete));
    assert!(!validation.is_clean(), "an incomplete run is not clean");
    let (exit, out) = cli(&nats, &["runs"]).await;
    assert_eq!(exit.code(), 0, "{out}");
    assert!(
        out.contains("incomplete") && !out.contains("completed"),
        "{out}"
    );
    let (exit, out) = cli(&nats, &["stages", &run_id.to_string()]).await;
    assert_eq!(exit.code(), 0, "{out}");
    assert!(
        out.contains("run ") && out.contains(": running\n") && out.contains("deliver: running"),
        "{out}"
    );

    // The restarted worker starts its stage over: it reads the upstream's journal from its
    // start and delivers every record once more, in order; then the run is completed.
    let mut again = WorkerChild::spawn("downstream-again", &servers, run_id);
    let (second_delivery, line) = again.read_until_done_or_half().await;
    assert_eq!(line, "DONE true");
    again.child.wait().await.unwrap();
    assert_eq!(second_delivery, (0..WORKER_RECORDS).collect::<Vec<_>>());
    // At-least-once at the sink's side effects: across both processes every record arrived,
    // and the only duplicates are the records the killed process delivered.
    let mut deliveries: std::collections::BTreeMap<u64, usize> = Default::default();
    for n in first_delivery.iter().chain(&second_delivery) {
        *deliveries.entry(*n).or_default() += 1;
    }
    assert_eq!(
        deliveries.len() as u64,
        WORKER_RECORDS,
        "no record is missing"
    );
    let duplicates = deliveries.values().filter(|count| **count > 1).count();
    assert_eq!(duplicates, first_delivery.len());

    let manifest = journals.manifest(run_id).await.unwrap();
    assert_eq!(manifest.status, RunStatus::Completed, "{manifest:?}");
    let base = tempfile::tempdir().unwrap();
    let exported = journals.export_run(run_id, base.path()).await.unwrap();
    let validation = inspect::validate_run(&exported).unwrap();
    assert!(validation.is_clean(), "{validation:?}");
    // Exactly once in the journals: the export validating clean says the sink's journals
    // hold one incarnation's records (a second would restart the sequence at 0, a frame out
    // of sequence), and the journal both incarnations read is the upstream's, whole, once.
    let mut upstream_journal = journals
        .reader(run_id, "double", Lane::Data, "worker-kill-check")
        .await
        .unwrap();
    let data = read_to_the_seal(&mut upstream_journal)
        .await
        .iter()
        .filter(|record| record.is_data())
        .count();
    assert_eq!(data as u64, WORKER_RECORDS);
    let (exit, out) = cli(&nats, &["runs"]).await;
    assert_eq!(exit.code(), 0, "{out}");
    assert!(out.contains("completed"), "{out}");
    let (exit, out) = cli(&nats, &["stages", &run_id.to_string()]).await;
    assert_eq!(exit.code(), 0, "{out}");
    assert!(
        out.contains(": completed\n") && out.contains("deliver: completed"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_worker_cancels_the_run_and_ends_the_worker_reading_it() {
    use obzenflow_runtime::journal::RunStatus;
    use obzenflow_runtime::pipeline::{FlowState, WorkerSpec};
    let nats = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    let journals = JetStreamJournals::connect(JetStreamConfig::new(nats.url_list()))
        .await
        .unwrap();
    let run_id = obzenflow_core::RunId::new();
    let flow = |source: PausingSource, sink: CollectSink| {
        FlowBuilder::new("cancelled")
            .async_source("numbers", source)
            .sink("out", sink)
            .edge("numbers", "out")
            .journals(journals.journals())
            .build()
            .unwrap()
    };
    let (source, paused, _resume) = PausingSource::new(1_000, 50).pausing_after(200);
    let upstream = flow(source, CollectSink::new())
        .start_worker(WorkerSpec::new(run_id, ["numbers"]))
        .await
        .unwrap();
    let sink = CollectSink::new();
    let downstream = flow(PausingSource::new(1_000, 50), sink.clone())
        .start_worker(WorkerSpec::new(run_id, ["out"]))
        .await
        .unwrap();
    // The source has emitted 200 records and waits: cancel its worker there.
    paused.await.unwrap();
    upstream.cancel().await.unwrap();
    let upstream = upstream.wait().await.unwrap();
    assert!(
        matches!(upstream.state, FlowState::Cancelled { .. }),
        "{upstream}"
    );
    // The cancelled stage's journal ends without an end-of-stream marker: the worker reading
    // it ends too, not a success, rather than waiting for records that never come.
    let downstream = tokio::time::timeout(std::time::Duration::from_secs(30), downstream.wait())
        .await
        .expect("the downstream worker ends")
        .unwrap();
    assert!(!downstream.is_success(), "{downstream}");
    assert!(sink.len() <= 200, "{} records", sink.len());

    let manifest = journals.manifest(run_id).await.unwrap();
    assert_eq!(manifest.status, RunStatus::Cancelled, "{manifest:?}");
    let reason = manifest.reason.unwrap_or_default();
    assert!(reason.contains("`numbers` cancelled"), "{reason}");
    let (exit, out) = cli(&nats, &["runs"]).await;
    assert_eq!(exit.code(), 0, "{out}");
    assert!(
        out.contains("cancelled") && !out.contains("completed"),
        "{out}"
    );
}

/// A transform that fails its stage as it starts.
struct FailsToStart;

impl obzenflow_runtime::stages::TransformHandler for FailsToStart {
    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        Err(HandlerFailure::msg("the reference table is missing"))
    }

    fn process(&mut self, event: &ChainEvent) -> obzenflow_runtime::stages::RecordResult {
        Ok(vec![event.clone()])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_worker_fails_the_run_and_the_worker_reading_its_journal() {
    use obzenflow_runtime::journal::RunStatus;
    use obzenflow_stages::jetstream::WorkerArgs;
    let nats = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    let run_id = obzenflow_core::RunId::new();
    let flow = || {
        FlowBuilder::new("failing")
            .async_source("numbers", PausingSource::new(200, 50))
            .transform("check", FailsToStart)
            .sink("out", CollectSink::new())
            .chain(["numbers", "check", "out"])
    };
    let worker = |stages: &'static [&'static str]| {
        let args = WorkerArgs::new(
            run_id,
            stages.iter().copied(),
            JetStreamConfig::new(nats.url_list()),
        );
        tokio::spawn(args.run(flow()))
    };
    // The downstream worker joins first: joined after the upstream's failure, it would be
    // refused a run that already ended.
    let journals = JetStreamJournals::connect(JetStreamConfig::new(nats.url_list()))
        .await
        .unwrap();
    let downstream = flow()
        .journals(journals.journals())
        .build()
        .unwrap()
        .start_worker(obzenflow_runtime::pipeline::WorkerSpec::new(
            run_id,
            ["out"],
        ))
        .await
        .unwrap();
    let upstream = worker(&["numbers", "check"]);
    let upstream = upstream.await.unwrap().unwrap();
    assert!(!upstream.is_success(), "{upstream}");
    // The failed stage's journal ends without an end-of-stream marker: its reader in the
    // other worker fails rather than waiting for records that never come.
    let downstream = tokio::time::timeout(std::time::Duration::from_secs(30), downstream.wait())
        .await
        .expect("the downstream worker ends")
        .unwrap();
    assert!(!downstream.is_success(), "{downstream}");

    let manifest = journals.manifest(run_id).await.unwrap();
    assert_eq!(manifest.status, RunStatus::Failed, "{manifest:?}");
    let reason = manifest.reason.unwrap_or_default();
    assert!(reason.contains("failed"), "{reason}");
    let (exit, out) = cli(&nats, &["runs"]).await;
    assert_eq!(exit.code(), 0, "{out}");
    assert!(
        out.contains("failed") && !out.contains("completed"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_worker_restarted_under_a_live_reader_fails_the_run_never_completes_it() {
    use obzenflow_runtime::journal::RunStatus;
    let nats = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    let servers = nats.url_list();
    let run_id = obzenflow_core::RunId::new();
    let mut upstream = WorkerChild::spawn("upstream-pausing", &servers, run_id);
    let mut downstream = WorkerChild::spawn("downstream-again", &servers, run_id);
    // The upstream stopped after half the records, which the downstream delivered; it is
    // killed and started again while the downstream still reads its journal.
    let first = downstream.read_got(WORKER_RECORDS / 2).await;
    assert_eq!(first, (0..WORKER_RECORDS / 2).collect::<Vec<_>>());
    upstream.child.start_kill().unwrap();
    upstream.child.wait().await.unwrap();
    let mut again = WorkerChild::spawn("upstream", &servers, run_id);
    let (_, line) = again.read_until_done_or_half().await;
    assert_eq!(
        line, "DONE true",
        "the restarted upstream completes its stages"
    );
    // The journal the downstream was reading started over under it: it fails rather than
    // deliver a second copy or stop short, and the run reads failed, never completed.
    let (_, line) = downstream.read_until_done_or_half().await;
    assert_eq!(line, "DONE false");
    let journals = JetStreamJournals::connect(JetStreamConfig::new(servers))
        .await
        .unwrap();
    let manifest = journals.manifest(run_id).await.unwrap();
    assert_eq!(manifest.status, RunStatus::Failed, "{manifest:?}");
    let reason = manifest.reason.unwrap_or_default();
    assert!(reason.contains("stage `deliver` failed"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_where_no_server_listens_says_so_naming_the_servers() {
    // A port nothing listens on: bound, then freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let servers = format!("nats://127.0.0.1:{port}");
    let mut config = JetStreamConfig::new(servers.clone());
    config.store_deadline = std::time::Duration::from_millis(300);
    let error = JetStreamJournals::connect(config).await.unwrap_err();
    assert!(
        error.to_string().starts_with(&format!(
            "no NATS server answered at {servers} within 300ms"
        )),
        "{error}"
    );
}

/// A source of `records` numbered records in batches of `batch`, counting in `emitted` the
/// records it handed out.
struct CountingSource {
    next: u64,
    records: u64,
    batch: u64,
    emitted: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl AsyncSourceHandler for CountingSource {
    async fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.next >= self.records {
            return Ok(SourcePoll::Done);
        }
        let end = (self.next + self.batch).min(self.records);
        let events = (self.next..end)
            .map(|n| ChainEvent::data("number", json!({ "n": n })))
            .collect();
        self.emitted.store(end, std::sync::atomic::Ordering::SeqCst);
        self.next = end;
        Ok(SourcePoll::Records(events))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_writes_at_most_a_window_ahead_of_its_reader_in_another_worker() {
    use obzenflow_runtime::journal::RunStatus;
    use obzenflow_runtime::pipeline::WorkerSpec;
    use std::sync::atomic::{AtomicU64, Ordering};
    const WINDOW: u64 = 16;
    const BATCH: u64 = 4;
    const RECORDS: u64 = 400;
    let nats = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    let journals = JetStreamJournals::connect(JetStreamConfig::new(nats.url_list()))
        .await
        .unwrap();
    let run_id = obzenflow_core::RunId::new();
    let flow = |records: u64, emitted: std::sync::Arc<AtomicU64>, sink: CollectSink| {
        let source = CountingSource {
            next: 0,
            records,
            batch: BATCH,
            emitted,
        };
        FlowBuilder::new("windowed")
            .async_source("numbers", source)
            .sink("out", sink)
            .edge_with_window("numbers", "out", WINDOW)
            .journals(journals.journals())
            .build()
            .unwrap()
    };
    let emitted = std::sync::Arc::new(AtomicU64::new(0));
    let upstream = flow(RECORDS, emitted.clone(), CollectSink::new())
        .start_worker(WorkerSpec::new(run_id, ["numbers"]))
        .await
        .unwrap();
    // The reader in the other worker has not started: the writer stores one window and
    // waits, its source blocked on the append of the batch after it.
    let mut watcher = journals
        .reader(run_id, "numbers", Lane::Data, "window-check")
        .await
        .unwrap();
    let mut stored = Vec::new();
    while (stored.len() as u64) < WINDOW {
        watcher.wait().await.unwrap();
        watcher.read(256, &mut stored).unwrap();
    }
    assert_eq!(stored.len() as u64, WINDOW);
    assert!(emitted.load(Ordering::SeqCst) <= WINDOW + BATCH);

    let sink = CollectSink::new();
    let downstream = flow(0, std::sync::Arc::default(), sink.clone())
        .start_worker(WorkerSpec::new(run_id, ["out"]))
        .await
        .unwrap();
    let upstream = upstream.wait().await.unwrap();
    let downstream = downstream.wait().await.unwrap();
    assert!(upstream.is_success(), "{upstream}");
    assert!(downstream.is_success(), "{downstream}");
    let numbers: Vec<u64> = sink
        .events()
        .iter()
        .map(|event| event.json().unwrap()["n"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..RECORDS).collect::<Vec<_>>());
    let writer = upstream.stage("numbers").unwrap();
    assert!(writer.backpressure_waits > 0, "{upstream}");
    assert_eq!(
        journals.manifest(run_id).await.unwrap().status,
        RunStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_held_by_a_killed_reader_worker_goes_on_once_the_reader_restarts() {
    let nats = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    let servers = nats.url_list();
    let run_id = obzenflow_core::RunId::new();
    let mut upstream = WorkerChild::spawn("upstream-windowed", &servers, run_id);
    let mut downstream = WorkerChild::spawn("downstream-windowed", &servers, run_id);
    // The downstream delivered half the records and stopped; the upstream's writer, 64
    // records of window ahead of it at most, cannot finish the 1,000 before a reader reads
    // them. The downstream is killed, and its restart reads from the journal's start: the
    // writer, following the highest position reported, does not wait for it to catch up
    // with its killed incarnation, and goes on once it passes it.
    downstream.kill_after_the_first_half().await;
    let mut again = WorkerChild::spawn("downstream-again-windowed", &servers, run_id);
    let (second, line) = again.read_until_done_or_half().await;
    assert_eq!(line, "DONE true");
    assert_eq!(second, (0..WORKER_RECORDS).collect::<Vec<_>>());
    let (_, line) = upstream.read_until_done_or_half().await;
    assert_eq!(line, "DONE true");
    // The writer waited: only the restarted reader could let it past the killed one.
    assert!(upstream.waits.unwrap() > 0, "{:?}", upstream.waits);
    let journals = JetStreamJournals::connect(JetStreamConfig::new(servers))
        .await
        .unwrap();
    let manifest = journals.manifest(run_id).await.unwrap();
    assert_eq!(
        manifest.status,
        obzenflow_runtime::journal::RunStatus::Completed,
        "{manifest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_stage_sealed_its_journal_but_died_before_recording_it_is_not_started_over()
{
    use obzenflow_runtime::pipeline::WorkerSpec;
    let nats = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    let config = JetStreamConfig::new(nats.url_list());
    let bucket = config.bucket.clone();
    let journals = JetStreamJournals::connect(config).await.unwrap();
    let run_id = obzenflow_core::RunId::new();
    let flow = || {
        FlowBuilder::new("sealed")
            .async_source("numbers", PausingSource::new(100, 10))
            .sink("out", CollectSink::new())
            .edge("numbers", "out")
            .journals(journals.journals())
            .build()
            .unwrap()
    };
    let upstream = flow()
        .start_worker(WorkerSpec::new(run_id, ["numbers"]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(upstream.is_success(), "{upstream}");
    // As if the process that sealed `numbers` had died before recording its outcome.
    let client = async_nats::connect(nats.urls()[0].as_str()).await.unwrap();
    let outcomes = async_nats::jetstream::new(client)
        .get_key_value(&bucket)
        .await
        .unwrap();
    let key = format!("{run_id}.stage.0");
    let recorded = outcomes.get(&key).await.unwrap().expect("an outcome");
    let mut outcome: serde_json::Value = serde_json::from_slice(&recorded).unwrap();
    assert_eq!(outcome["stage"], "numbers");
    outcome["status"] = json!("running");
    outcomes
        .put(&key, serde_json::to_vec(&outcome).unwrap().into())
        .await
        .unwrap();

    // Its readers may have read the sealed journal: it is not purged and written again.
    let Err(error) = flow()
        .start_worker(WorkerSpec::new(run_id, ["numbers"]))
        .await
    else {
        panic!("the worker started over a sealed stage");
    };
    let text = obzenflow_core::ErrorChain::new(&error).to_string();
    assert!(
        text.contains(&format!(
            "stage `numbers` of run {run_id} sealed its journals in an earlier process"
        )),
        "{text}"
    );
    let mut reader = journals
        .reader(run_id, "numbers", Lane::Data, "after-refusal")
        .await
        .unwrap();
    let records = read_to_the_seal(&mut reader).await;
    assert_eq!(
        records.iter().filter(|record| record.is_data()).count(),
        100,
        "the sealed journal is as it was"
    );
}
