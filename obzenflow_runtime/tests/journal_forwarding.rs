//! Records a stage passes on unchanged: stored as a few-byte reference to the record it read,
//! read back whole by every reader (inspection, validation, readers that fell behind the
//! cache), made durable only with what they refer to, and named when what they refer to is
//! gone.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use obzenflow_core::{ChainEvent, ContentAt, EventId, Forwards, Lane, Record, StageId};
use obzenflow_core::{FlowId, RunId};
use obzenflow_runtime::journal::{
    inspect, DiskJournalConfig, JournalFactory, JournalStorage, RunDirectory, RunManifest,
    SyncPolicy,
};
use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
use obzenflow_runtime::stages::TransformHandler;
use obzenflow_runtime::stages::{HandlerFailure, RecordError, SourceHandler, SourcePoll};
use serde_json::json;
use support::{journal_records, Collect};

/// A payload long enough that a copy of it is easy to tell from a reference to it, and
/// different for every record, so that packing a frame cannot shrink copies of it away.
fn text(n: u64) -> String {
    let mut state = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..8)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            format!("{state:016x}")
        })
        .collect()
}

/// Emits `count` records `{"n": i, "text": text(i)}`.
struct Padded {
    next: u64,
    count: u64,
}

impl SourceHandler for Padded {
    fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.next == self.count {
            return Ok(SourcePoll::Done);
        }
        let end = (self.next + max as u64).min(self.count);
        let records = (self.next..end)
            .map(|n| ChainEvent::data("padded", json!({"n": n, "text": text(n)})))
            .collect();
        self.next = end;
        Ok(SourcePoll::Records(records))
    }
}

/// Passes on, unchanged, every record whose `n` is not a multiple of `drop_every`; rejects
/// those whose `n % reject_every == 1` (also unchanged, to the error lane).
struct Keep {
    drop_every: u64,
    reject_every: u64,
}

impl TransformHandler for Keep {
    fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
        let n = event.json().and_then(|p| p["n"].as_u64()).ok_or("no n")?;
        if n % self.reject_every == 1 {
            return Err(RecordError::validation(format!("record {n} is rejected")));
        }
        match n % self.drop_every {
            0 => Ok(Vec::new()),
            _ => Ok(vec![event.clone()]),
        }
    }
}

fn journal_bytes(run: &Path, name: &str, lane: &str) -> u64 {
    std::fs::read_dir(run.join("stages").join(name).join(lane))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_passed_on_unchanged_cost_a_reference_and_read_back_whole() {
    let base = tempfile::tempdir().unwrap();
    let collect = Collect::default();
    let report = FlowBuilder::new("forwarding")
        .source(
            "padded",
            Padded {
                next: 0,
                count: 3_000,
            },
        )
        .transform(
            "keep",
            Keep {
                drop_every: 10,
                reject_every: 50,
            },
        )
        .transform(
            "again",
            Keep {
                drop_every: 7_000,
                reject_every: 7_000,
            },
        )
        .sink("collect", collect.clone())
        .chain(["padded", "keep", "again", "collect"])
        .journals(Journals::disk(base.path()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    let run = report.run_dir.clone().unwrap();

    // 2,700 kept, of which 60 (n % 50 == 1) rejected: all carry the whole payload.
    let delivered = collect.records();
    assert_eq!(delivered.len(), 2_640);
    assert!(delivered.iter().all(|event| {
        let payload = event.json().unwrap();
        payload["text"] == text(payload["n"].as_u64().unwrap())
    }));

    // The forwarding stages' journals hold references, not copies.
    let source_bytes = journal_bytes(&run, "padded", "data");
    let keep_bytes = journal_bytes(&run, "keep", "data");
    let again_bytes = journal_bytes(&run, "again", "data");
    assert!(
        keep_bytes * 4 < source_bytes && again_bytes * 4 < source_bytes,
        "source {source_bytes} B, keep {keep_bytes} B, again {again_bytes} B"
    );

    // Read back, every forwarded record is its parent's content, through a chain of two.
    let sources: HashMap<EventId, ChainEvent> = journal_records(&report, "padded", Lane::Data)
        .into_iter()
        .filter(ChainEvent::is_data)
        .map(|event| (event.id, event))
        .collect();
    let kept: HashMap<EventId, ChainEvent> = journal_records(&report, "keep", Lane::Data)
        .into_iter()
        .filter(ChainEvent::is_data)
        .map(|event| (event.id, event))
        .collect();
    assert_eq!(kept.len(), 2_640);
    for event in kept.values() {
        let parent = &sources[&event.causality.parent_id.unwrap()];
        assert_eq!(event.content, parent.content);
    }
    let again = journal_records(&report, "again", Lane::Data);
    let again: Vec<&ChainEvent> = again.iter().filter(|event| event.is_data()).collect();
    assert_eq!(again.len(), 2_640);
    for event in again {
        let parent = &kept[&event.causality.parent_id.unwrap()];
        assert_eq!(event.content, parent.content);
    }
    let mut rejected = journal_records(&report, "keep", Lane::Error);
    let end = rejected.pop().unwrap();
    assert_eq!(end.end_of_stream_count(), Some(60));
    assert_eq!(rejected.len(), 60);
    for event in &rejected {
        assert!(event.is_error());
        let parent = &sources[&event.causality.parent_id.unwrap()];
        assert_eq!(event.content, parent.content);
    }
    assert!(inspect::validate_run(&run).unwrap().is_clean());

    // Without the journal they refer to, the references cannot be read, and say so.
    std::fs::rename(run.join("stages/padded"), run.join("stages/padded.moved")).unwrap();
    let error = inspect::read_journal(&run, "again", Lane::Data)
        .unwrap()
        .find_map(Result::err)
        .expect("an unresolvable reference is an error");
    let message = obzenflow_core::ErrorChain::new(&error).to_string();
    assert!(
        message.contains("refers to record") && message.contains("`padded`"),
        "{message}"
    );
    let validation = inspect::validate_run(&run).unwrap();
    assert!(!validation.is_clean(), "{validation:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_behind_the_cache_resolves_references_and_a_sync_covers_what_they_refer_to() {
    let base = tempfile::tempdir().unwrap();
    let manifest = RunManifest::new(
        "forwarding",
        FlowId::new(),
        RunId::new(),
        SyncPolicy::default(),
    );
    let (run_dir, _lock) = RunDirectory::create(base.path(), &manifest).unwrap();
    let config = DiskJournalConfig {
        cache_records: 4,
        // Nothing syncs on its own during the test.
        sync: SyncPolicy::Interval(Duration::from_secs(3_600)),
        ..DiskJournalConfig::default()
    };
    let storage = JournalStorage::Disk { run_dir, config };
    let factory = JournalFactory::new(storage).unwrap();
    let up = factory.stage_journals("up", StageId::new()).unwrap().data;
    let down = factory.stage_journals("down", StageId::new()).unwrap().data;

    let events = (0..100)
        .map(|n| ChainEvent::data("padded", json!({"n": n, "text": text(n)})))
        .collect();
    up.append(events).await.unwrap();
    let mut read = Vec::new();
    let mut up_reader = up.reader(0, None).unwrap();
    while read.len() < 100 {
        assert!(up_reader.read(1_000, &mut read).unwrap() > 0);
    }
    let forwarded: Vec<ChainEvent> = read
        .iter()
        .map(|record| {
            let mut event = record.event().clone();
            event.id = EventId::new();
            event.causality = record.child_causality();
            event
        })
        .collect();
    let at: Vec<Option<ContentAt>> = (0..100)
        .map(|seq| Some(ContentAt { journal: 0, seq }))
        .collect();
    let journals = [up.id().clone()];
    let forwards = Forwards {
        journals: &journals,
        records: &at,
    };
    down.append_forwarding(forwarded.clone(), forwards)
        .await
        .unwrap();
    assert_eq!(up.durable(), 0, "nothing has synced the upstream yet");

    // All but the last 4 left the cache: this reader decodes, and resolves, from the files.
    let mut back: Vec<Record> = Vec::new();
    let mut reader = down.reader(0, None).unwrap();
    while back.len() < 100 {
        assert!(reader.read(1_000, &mut back).unwrap() > 0);
    }
    for (record, sent) in back.iter().zip(&forwarded) {
        assert_eq!(record.event(), sent);
    }

    // Making the references durable makes what they refer to durable first.
    down.close().await.unwrap();
    assert_eq!(down.durable(), 100);
    assert_eq!(up.durable(), 100);
    up.close().await.unwrap();
}
