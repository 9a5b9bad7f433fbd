//! Run directories: the manifest's atomic round trip and typed errors, journals made by the
//! factory, and read-only inspection (list, read, validate) of a run created here.

mod journal_support;

use std::path::{Path, PathBuf};

use journal_support::{append_one_by_one, orders, read_available, stage_end, system_end};
use obzenflow_core::{ChainEvent, CorruptionKind, ErrorChain, FlowId, Lane, RunId, StageId};
use obzenflow_runtime::journal::inspect::{self, JournalHealth};
use obzenflow_runtime::journal::{
    DiskJournalConfig, JournalFactory, JournalStorage, RunDirError, RunDirectory, RunManifest,
    RunState, RunStatus, SegmentReader, SyncPolicy,
};

fn manifest(run_id: RunId) -> RunManifest {
    let mut manifest = RunManifest::new("orders", FlowId::new(), run_id, SyncPolicy::default());
    manifest.add_stage("source", StageId::new(), "source");
    manifest.add_stage("parse", StageId::new(), "transform");
    manifest.add_system_journal("pipeline");
    manifest
}

#[test]
fn the_manifest_round_trips_atomically() {
    let base = tempfile::tempdir().expect("temp dir");
    let run_id = RunId::new();
    let first = manifest(run_id);
    let (run_dir, _lock) = RunDirectory::create(base.path(), &first).expect("create");
    assert_eq!(run_dir.path(), base.path().join(run_id.to_string()));
    assert_eq!(run_dir.read_manifest().expect("read"), first);
    let mut written = manifest(run_id);
    written.replayed_from = Some("runs/run_earlier".into());
    run_dir.write_manifest(&written).expect("write");
    assert_eq!(run_dir.read_manifest().expect("read"), written);

    written.finish(RunStatus::Completed);
    run_dir.write_manifest(&written).expect("rewrite");
    let read = RunDirectory::open(run_dir.path())
        .expect("open")
        .read_manifest()
        .expect("read");
    assert_eq!(read, written);
    let leftovers: Vec<_> = std::fs::read_dir(run_dir.path())
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.manifest_path()).expect("read"))
            .expect("json");
    assert_eq!(json["format_version"], 2);
    assert_eq!(json["status"], "completed");
    assert_eq!(json["sync_policy"], "group commit every 50 ms");
    assert_eq!(json["stages"][1]["data_journal"], "stages/parse/data");
    assert_eq!(json["stages"][1]["error_journal"], "stages/parse/error");
    assert_eq!(json["system_journals"][0]["path"], "system/pipeline");
}

#[test]
fn a_missing_manifest_is_a_typed_error_naming_the_path() {
    let base = tempfile::tempdir().expect("temp dir");
    let run_id = RunId::new();
    let (run_dir, _lock) = RunDirectory::create(base.path(), &manifest(run_id)).expect("create");
    std::fs::remove_file(run_dir.manifest_path()).expect("remove");
    let error = run_dir.read_manifest().expect_err("missing");
    assert!(
        matches!(&error, RunDirError::ManifestMissing { path } if *path == run_dir.manifest_path()),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("no run manifest at {}", run_dir.manifest_path().display())
    );
}

#[test]
fn a_manifest_from_a_newer_format_is_refused_with_both_versions() {
    let base = tempfile::tempdir().expect("temp dir");
    let run_id = RunId::new();
    let (run_dir, _lock) = RunDirectory::create(base.path(), &manifest(run_id)).expect("create");
    let mut future = serde_json::to_value(manifest(run_id)).expect("json");
    let newer = RunManifest::FORMAT_VERSION + 1;
    future["format_version"] = newer.into();
    future["something_new"] = "from the future".into();
    std::fs::write(run_dir.manifest_path(), future.to_string()).expect("write");

    let error = run_dir.read_manifest().expect_err("unsupported");
    assert!(
        matches!(
            error,
            RunDirError::UnsupportedVersion {
                found,
                supported: RunManifest::FORMAT_VERSION,
                ..
            } if found == newer
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "run manifest {} has format version {newer}; this build reads version {}",
            run_dir.manifest_path().display(),
            RunManifest::FORMAT_VERSION,
        )
    );

    std::fs::write(run_dir.manifest_path(), "{\"format_version\": 1").expect("write");
    let error = run_dir.read_manifest().expect_err("invalid");
    assert!(
        matches!(error, RunDirError::ManifestInvalid { .. }),
        "{error:?}"
    );
    assert!(std::error::Error::source(&error).is_some());
}

#[test]
fn run_directories_are_never_reused_and_names_never_escape() {
    let base = tempfile::tempdir().expect("temp dir");
    let run_id = RunId::new();
    let (run_dir, _lock) = RunDirectory::create(base.path(), &manifest(run_id)).expect("create");
    let again = RunDirectory::create(base.path(), &manifest(run_id)).expect_err("exists");
    assert!(
        matches!(
            again,
            RunDirError::Io {
                operation: "create",
                ..
            }
        ),
        "{again:?}"
    );
    for name in ["", "..", "a/b"] {
        let error = run_dir.journal_dir(name, Lane::Data).expect_err("invalid");
        assert!(
            matches!(error, RunDirError::InvalidName { .. }),
            "{error:?}"
        );
    }
    assert_eq!(
        run_dir.journal_dir("parse", Lane::Error).expect("dir"),
        run_dir.path().join("stages/parse/error")
    );
}

/// A run with two stages and a system journal, written through the factory.
struct WrittenRun {
    _base: tempfile::TempDir,
    run_dir: RunDirectory,
    source_records: Vec<ChainEvent>,
    parse_records: Vec<ChainEvent>,
}

async fn write_run() -> WrittenRun {
    let base = tempfile::tempdir().expect("temp dir");
    let run_id = RunId::new();
    let (run_dir, lock) = RunDirectory::create(base.path(), &manifest(run_id)).expect("create");
    drop(lock);
    let config = DiskJournalConfig {
        segment_bytes: 4096,
        ..DiskJournalConfig::default()
    };
    let storage = JournalStorage::Disk {
        run_dir: run_dir.clone(),
        config,
    };
    assert_eq!(
        storage.to_string(),
        "disk journals, group commit every 50 ms"
    );
    let factory = JournalFactory::new(storage).expect("factory");
    let source = factory
        .stage_journals("source", StageId::new())
        .expect("source");
    let parse = factory
        .stage_journals("parse", StageId::new())
        .expect("parse");
    let (pipeline, _) = factory
        .system_journal(obzenflow_core::SystemComponent::Pipeline)
        .expect("pipeline journal");
    let source_records = orders(0, 200);
    let parse_records = orders(1000, 5);
    append_one_by_one(source.data.as_ref(), &source_records).await;
    append_one_by_one(parse.data.as_ref(), &parse_records).await;
    // A finished run's journals end as a stage's do: what `validate` holds them to.
    source.data.append(stage_end(200, 0)).await.expect("end");
    parse.data.append(stage_end(5, 0)).await.expect("end");
    pipeline.append(vec![system_end()]).await.expect("end");
    for journal in [
        &source.data,
        &source.error,
        &parse.data,
        &parse.error,
        &pipeline,
    ] {
        journal.close().await.expect("close");
    }
    let mut finished = manifest(run_id);
    finished.finish(RunStatus::Completed);
    run_dir
        .write_manifest(&finished)
        .expect("finished manifest");
    WrittenRun {
        _base: base,
        run_dir,
        source_records,
        parse_records,
    }
}

#[tokio::test]
async fn inspection_lists_and_reads_the_journals_of_a_run() {
    let run = write_run().await;
    let journals = inspect::list_journals(run.run_dir.path()).expect("list");
    let listed: Vec<(String, Lane, u64)> = journals
        .iter()
        .map(|journal| (journal.name.clone(), journal.lane, journal.records))
        .collect();
    assert_eq!(
        listed,
        [
            ("parse".to_owned(), Lane::Data, 7),
            ("parse".to_owned(), Lane::Error, 0),
            ("source".to_owned(), Lane::Data, 202),
            ("source".to_owned(), Lane::Error, 0),
            ("pipeline".to_owned(), Lane::System, 1),
        ]
    );
    let source = &journals[2];
    assert!(
        source.segments > 1,
        "segments roll at 4096 bytes: {source:?}"
    );
    assert!(source.bytes > 4096);
    assert_eq!(source.path, run.run_dir.path().join("stages/source/data"));

    let read: Vec<ChainEvent> = inspect::read_journal(run.run_dir.path(), "source", Lane::Data)
        .expect("read")
        .collect::<Result<_, _>>()
        .expect("records");
    assert_eq!(read[..200], run.source_records);
    assert_eq!(read.len(), 202);
    let json: Vec<serde_json::Value> =
        inspect::read_journal(run.run_dir.path(), "parse", Lane::Data)
            .expect("read")
            .json()
            .collect::<Result<_, _>>()
            .expect("records");
    assert_eq!(json.len(), 7);
    assert_eq!(json[0]["id"], run.parse_records[0].id.to_string());
    assert_eq!(json[0]["content"]["payload"]["id"], 1000);

    let missing =
        inspect::read_journal(run.run_dir.path(), "nowhere", Lane::Data).expect_err("unknown");
    assert!(
        matches!(missing, RunDirError::UnknownJournal { .. }),
        "{missing:?}"
    );
}

fn frame_offsets(path: &Path) -> Vec<u64> {
    let mut reader = SegmentReader::open(path).expect("open");
    let mut offsets = vec![0];
    while reader.skip_frame().expect("skip") {
        offsets.push(reader.offset());
    }
    offsets.pop();
    offsets
}

/// Where `damage_run` damaged a run.
struct Damage {
    parse_segment: PathBuf,
    /// The length of the parse segment before it was torn (5 bytes shorter now).
    parse_len: u64,
    source_segment: PathBuf,
    /// The offset of the source record with a flipped byte.
    damaged: u64,
}

/// Tears the end of parse.data and flips a byte in the first segment of source.data.
fn damage_run(run: &WrittenRun) -> Damage {
    let parse_segment = run
        .run_dir
        .path()
        .join("stages/parse/data/00000000000000000000.seg");
    let parse_len = std::fs::metadata(&parse_segment).expect("metadata").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&parse_segment)
        .and_then(|file| file.set_len(parse_len - 5))
        .expect("tear");
    let source_segment = run
        .run_dir
        .path()
        .join("stages/source/data/00000000000000000000.seg");
    let damaged = frame_offsets(&source_segment)[3];
    let mut bytes = std::fs::read(&source_segment).expect("read");
    bytes[damaged as usize + 30] ^= 1;
    std::fs::write(&source_segment, &bytes).expect("write");

    Damage {
        parse_segment,
        parse_len,
        source_segment,
        damaged,
    }
}

#[tokio::test]
async fn validation_reports_torn_tails_and_corruption_without_changing_files() {
    let run = write_run().await;
    let clean = inspect::validate_run(run.run_dir.path()).expect("validate");
    assert!(clean.is_clean(), "{clean}");
    assert_eq!(
        clean
            .manifest
            .as_ref()
            .map(|manifest| manifest.flow_name.as_str()),
        Some("orders")
    );

    let damage = damage_run(&run);
    let (parse_segment, parse_len) = (&damage.parse_segment, damage.parse_len);
    let (source_segment, damaged) = (&damage.source_segment, damage.damaged);
    let report = inspect::validate_run(run.run_dir.path()).expect("validate");
    assert!(!report.is_clean());
    let parse = &report.journals[0];
    // The tear took the seal: every record frame is whole.
    assert_eq!(parse.records, 7);
    match &parse.health {
        JournalHealth::TornTail(tail) => {
            assert_eq!(&tail.segment, parse_segment);
            assert_eq!(tail.bytes, parse_len - 5 - tail.offset);
            assert!(matches!(tail.reason, CorruptionKind::Truncated { .. }));
        }
        other => panic!("expected a torn tail: {other:?}"),
    }
    match &report.journals[2].health {
        JournalHealth::Corrupt {
            segment,
            offset,
            kind: CorruptionKind::ChecksumMismatch { .. },
        } => assert_eq!((segment, *offset), (source_segment, damaged)),
        other => panic!("expected corruption: {other:?}"),
    }
    let text = report.to_string();
    assert!(text.contains("parse.data: 7 records, torn tail"), "{text}");
    assert!(
        text.contains(&format!(
            "source.data: corrupt record in {} at byte offset {damaged}",
            source_segment.display()
        )),
        "{text}"
    );
    // Read-only: nothing was cut.
    assert_eq!(
        std::fs::metadata(parse_segment).expect("metadata").len(),
        parse_len - 5
    );

    // The run finished, so a reader refuses the torn journal (its seal is gone) and the corrupt
    // one, naming segment and offset, before reading a record.
    let torn = inspect::read_journal(run.run_dir.path(), "parse", Lane::Data).expect_err("torn");
    assert!(
        ErrorChain::new(&torn)
            .to_string()
            .contains(&format!("{} at byte offset", parse_segment.display())),
        "{torn}"
    );
    let corrupt =
        inspect::read_journal(run.run_dir.path(), "source", Lane::Data).expect_err("corrupt");
    assert!(
        ErrorChain::new(&corrupt).to_string().contains(&format!(
            "{} at byte offset {damaged}",
            source_segment.display()
        )),
        "{corrupt}"
    );
}

#[tokio::test]
async fn the_memory_factory_makes_memory_journals() {
    let factory = JournalFactory::memory();
    assert_eq!(
        factory.storage().to_string(),
        "in-memory journals (not persisted)"
    );
    assert!(factory.run_dir().is_none());
    let journals = factory
        .stage_journals("parse", StageId::new())
        .expect("journals");
    assert_eq!(journals.data.id().lane, Lane::Data);
    assert_eq!(journals.error.id().lane, Lane::Error);
    let appended = orders(0, 3);
    journals
        .data
        .append(appended.clone())
        .await
        .expect("append");
    let mut reader = journals.data.reader(0, None).expect("reader");
    let read = read_available(reader.as_mut(), 10);
    assert_eq!(read.len(), 3);
    assert_eq!(journals.data.durable(), 3);
}

#[test]
fn a_run_reads_running_while_locked_incomplete_once_released_and_as_recorded_once_ended() {
    let base = tempfile::tempdir().expect("temp dir");
    let run_id = RunId::new();
    let (run_dir, lock) = RunDirectory::create(base.path(), &manifest(run_id)).expect("create");
    assert_eq!(run_dir.state().expect("state"), RunState::Running);
    assert!(matches!(
        run_dir.lock(),
        Err(RunDirError::InUse { ref path }) if path == run_dir.path()
    ));

    // The process holding the lock dies: the operating system releases it.
    drop(lock);
    assert_eq!(run_dir.state().expect("state"), RunState::Incomplete);
    let report = inspect::validate_run(run_dir.path()).expect("validate");
    assert_eq!(report.state, Some(RunState::Incomplete));
    assert!(!report.is_clean(), "an incomplete run is a finding");
    assert!(report.to_string().contains("state: incomplete"), "{report}");

    let mut ended = manifest(run_id);
    ended.finish(RunStatus::Failed);
    run_dir.write_manifest(&ended).expect("manifest");
    assert_eq!(run_dir.state().expect("state"), RunState::Failed);
}

#[test]
fn incomplete_runs_are_those_of_the_flow_since_its_last_ended_run() {
    let base = tempfile::tempdir().expect("temp dir");
    let run = |flow: &str, status: RunStatus| {
        let run_id = RunId::new();
        let mut written = RunManifest::new(flow, FlowId::new(), run_id, SyncPolicy::default());
        written.status = status;
        let (run_dir, _lock) = RunDirectory::create(base.path(), &written).expect("create");
        run_dir.path().to_path_buf()
    };
    let _forgotten = run("orders", RunStatus::Running);
    let _completed = run("orders", RunStatus::Completed);
    let first = run("orders", RunStatus::Running);
    let _other_flow = run("refunds", RunStatus::Completed);
    let second = run("orders", RunStatus::Running);
    std::fs::create_dir(base.path().join("not_a_run")).expect("stray directory");

    assert_eq!(
        inspect::incomplete_runs(base.path(), "orders"),
        [first, second]
    );
    assert!(inspect::incomplete_runs(base.path(), "refunds").is_empty());
    assert!(inspect::incomplete_runs(base.path().join("missing"), "orders").is_empty());
}
