//! The journal contract, run unchanged against the memory journal and the disk journal (with
//! a roomy cache, and with a cache so small that readers decode from the segment files).

mod journal_support;

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use journal_support::{chain_event, kinds, order_number, orders, read_available, runtime, Kind};
use obzenflow_core::{ChainEvent, Journal, JournalError, SeqRange};
use obzenflow_runtime::journal::MemoryJournal;
use proptest::prelude::*;

fn window(records: u64) -> Option<NonZeroU64> {
    NonZeroU64::new(records)
}

fn batches() -> impl Strategy<Value = Vec<Vec<ChainEvent>>> {
    prop::collection::vec(prop::collection::vec(chain_event(), 0..12), 0..6)
}

/// Appends `batches`, then checks every reader start position and read size sees them back.
fn check_round_trip(kind: &Kind, batches: Vec<Vec<ChainEvent>>, read_size: usize) {
    let fixture = kind.make();
    let journal = &fixture.journal;
    runtime().block_on(async {
        let mut expected = Vec::new();
        for batch in batches {
            let start = journal.committed();
            let range = journal.append(batch.clone()).await.expect("append");
            let end = start + batch.len() as u64;
            assert_eq!(range, SeqRange { start, end }, "{kind:?}");
            expected.extend(batch);
        }
        assert_eq!(journal.committed(), expected.len() as u64);
        for from in [0, expected.len() / 2, expected.len()] {
            let mut reader = journal.reader(from as u64, None).expect("reader");
            let records = read_available(reader.as_mut(), read_size);
            let records: Vec<ChainEvent> =
                records.iter().map(|record| (**record).clone()).collect();
            assert_eq!(records, expected[from..], "{kind:?} from {from}");
            assert_eq!(reader.position(), expected.len() as u64);
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_batches_read_back_identically(batches in batches(), read_size in 1usize..9) {
        for kind in kinds() {
            check_round_trip(&kind, batches.clone(), read_size);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_see_every_record_once_in_order() {
    const RECORDS: u64 = 5_000;
    for kind in kinds() {
        let fixture = kind.make();
        let journal = Arc::clone(&fixture.journal);
        let mut tasks = Vec::new();
        for reader_index in 0..3_u64 {
            // One reader holds the writer back, the others do not.
            let window = window(if reader_index == 0 { 64 } else { 0 });
            let mut reader = journal.reader(0, window).expect("reader");
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut batch = Vec::new();
                loop {
                    batch.clear();
                    if reader
                        .read(1 + reader_index as usize * 7, &mut batch)
                        .expect("read")
                        == 0
                    {
                        match reader.wait().await {
                            Ok(()) => continue,
                            Err(JournalError::Closed { .. }) => break,
                            Err(error) => panic!("wait failed: {error}"),
                        }
                    }
                    seen.extend(batch.iter().map(|event| order_number(event)));
                }
                seen
            }));
        }
        let writer_journal = Arc::clone(&journal);
        let writer = tokio::spawn(async move {
            let mut next = 0;
            let mut size = 1;
            while next < RECORDS {
                let count = size.min(RECORDS - next);
                writer_journal
                    .append(orders(next, count))
                    .await
                    .expect("append");
                next += count;
                size = size % 97 + 13;
            }
            writer_journal.close().await.expect("close");
        });
        writer.await.expect("writer");
        for task in tasks {
            let seen = task.await.expect("reader task");
            assert_eq!(seen, (0..RECORDS).collect::<Vec<_>>(), "{kind:?}");
        }
    }
}

#[tokio::test]
async fn the_writer_never_runs_more_than_a_window_ahead() {
    const WINDOW: u64 = 8;
    for kind in kinds() {
        let fixture = kind.make();
        let journal = Arc::clone(&fixture.journal);
        let mut reader = journal.reader(0, window(WINDOW)).expect("reader");
        let writer_journal = Arc::clone(&journal);
        let writer = tokio::spawn(async move {
            for batch in 0..10 {
                // Batches larger than the window are committed in chunks.
                writer_journal
                    .append(orders(batch * 20, 20))
                    .await
                    .expect("append");
            }
            writer_journal.close().await.expect("close");
        });
        let mut records = Vec::new();
        let mut widest = 0;
        loop {
            // Check before and after every step of the reader.
            let in_flight = journal.committed() - reader.position();
            assert!(
                in_flight <= WINDOW,
                "{kind:?}: {in_flight} records in flight"
            );
            widest = widest.max(in_flight);
            if reader.read(1, &mut records).expect("read") == 0 {
                match reader.wait().await {
                    Ok(()) => continue,
                    Err(JournalError::Closed { .. }) => break,
                    Err(error) => panic!("wait failed: {error}"),
                }
            }
            let in_flight = journal.committed() - reader.position();
            assert!(
                in_flight <= WINDOW,
                "{kind:?}: {in_flight} records in flight"
            );
            // Let the writer run ahead as far as it can before the next step.
            tokio::task::yield_now().await;
        }
        writer.await.expect("writer");
        assert_eq!(records.len(), 200);
        assert_eq!(
            widest, WINDOW,
            "{kind:?}: the writer should have filled the window"
        );
    }
}

#[tokio::test]
async fn dropping_a_slow_reader_releases_the_writer() {
    for kind in kinds() {
        let fixture = kind.make();
        let journal = Arc::clone(&fixture.journal);
        let slow = journal.reader(0, window(4)).expect("reader");
        let mut observer = journal.reader(0, None).expect("observer");
        let writer_journal = Arc::clone(&journal);
        let writer = tokio::spawn(async move { writer_journal.append(orders(0, 100)).await });
        let mut observed = Vec::new();
        while observer.position() < 4 {
            observer.wait().await.expect("wait");
            observer.read(100, &mut observed).expect("read");
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !writer.is_finished(),
            "{kind:?}: the writer should wait for the slow reader"
        );
        assert_eq!(journal.committed(), 4);
        drop(slow);
        let range = writer.await.expect("writer").expect("append");
        assert_eq!(range, SeqRange { start: 0, end: 100 });
    }
}

#[tokio::test]
async fn close_refuses_appends_and_wakes_readers_and_writers() {
    for kind in kinds() {
        let fixture = kind.make();
        let journal = Arc::clone(&fixture.journal);
        journal.append(orders(0, 3)).await.expect("append");
        let mut behind = journal.reader(0, None).expect("reader");
        let caught_up = journal.reader(3, None).expect("reader");
        let blocking = journal.reader(3, window(2)).expect("reader");
        let waiter = tokio::spawn(async move { caught_up.wait().await });
        let writer_journal = Arc::clone(&journal);
        let writer = tokio::spawn(async move { writer_journal.append(orders(3, 10)).await });
        let mut observer = journal.reader(3, None).expect("observer");
        let mut observed = Vec::new();
        while observer.position() < 5 {
            observer.wait().await.expect("wait");
            observer.read(10, &mut observed).expect("read");
        }

        journal.close().await.expect("close");
        assert!(matches!(
            writer.await.expect("writer"),
            Err(JournalError::Closed { .. })
        ));
        assert_eq!(
            journal.committed(),
            5,
            "{kind:?}: the prefix that fit stays committed"
        );
        assert!(matches!(waiter.await.expect("waiter"), Ok(())));
        let error = journal.append(orders(9, 1)).await.expect_err("closed");
        assert!(error.to_string().ends_with("is closed"), "{error}");
        journal.close().await.expect("closing twice is fine");

        behind.wait().await.expect("unread records remain");
        assert_eq!(read_available(behind.as_mut(), 2).len(), 5);
        assert!(matches!(
            behind.wait().await,
            Err(JournalError::Closed { .. })
        ));
        drop(blocking);
    }
}

#[tokio::test]
async fn readers_cannot_start_past_the_end() {
    for kind in kinds() {
        let fixture = kind.make();
        let journal = &fixture.journal;
        journal.append(orders(0, 2)).await.expect("append");
        assert!(journal.reader(2, None).is_ok());
        let error = journal.reader(3, None).err().expect("out of range");
        assert!(
            matches!(
                error,
                JournalError::OutOfRange {
                    requested: 3,
                    committed: 2,
                    ..
                }
            ),
            "{error}"
        );
        let empty = journal.append(Vec::new()).await.expect("empty append");
        assert_eq!(empty, SeqRange { start: 2, end: 2 });
    }
}

/// A waker that counts its wake-ups.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_waiting_reader_is_woken_by_the_append_and_never_by_a_timer() {
    for kind in kinds() {
        let fixture = kind.make();
        let journal = &fixture.journal;
        let reader = journal.reader(0, None).expect("reader");
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut context = Context::from_waker(&waker);
        let mut wait = reader.wait();
        assert!(wait.as_mut().poll(&mut context).is_pending());

        // An hour of (paused) time passes: nothing polls, nothing wakes the reader.
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        assert_eq!(counter.0.load(Ordering::SeqCst), 0, "{kind:?}");

        journal.append(orders(0, 1)).await.expect("append");
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "{kind:?}: one wake-up per commit"
        );
        assert!(matches!(
            wait.as_mut().poll(&mut context),
            Poll::Ready(Ok(()))
        ));
    }
}

#[tokio::test]
async fn memory_journals_are_durable_as_soon_as_committed() {
    let fixture = Kind::Memory.make();
    fixture.journal.append(orders(0, 5)).await.expect("append");
    assert_eq!(fixture.journal.durable(), 5);
}

#[tokio::test]
async fn a_bounded_memory_journal_keeps_windowed_readers_whole_and_refuses_evicted_reads() {
    const RETAIN: usize = 32;
    let journal = Arc::new(MemoryJournal::bounded(
        journal_support::journal_id("bounded"),
        RETAIN,
    ));
    let mut windowed = journal.reader(0, window(RETAIN as u64)).expect("reader");
    let mut unwindowed = journal.reader(0, None).expect("reader");
    let writer_journal = Arc::clone(&journal);
    let writer = tokio::spawn(async move {
        writer_journal.append(orders(0, 500)).await.expect("append");
        writer_journal.close().await.expect("close");
    });
    let mut seen = Vec::new();
    let mut batch = Vec::new();
    loop {
        batch.clear();
        if windowed.read(5, &mut batch).expect("read") == 0 {
            match windowed.wait().await {
                Ok(()) => continue,
                Err(JournalError::Closed { .. }) => break,
                Err(error) => panic!("wait failed: {error}"),
            }
        }
        seen.extend(batch.iter().map(|event| order_number(event)));
    }
    writer.await.expect("writer");
    assert_eq!(seen, (0..500).collect::<Vec<_>>());
    let error = unwindowed.read(10, &mut batch).expect_err("evicted");
    assert!(
        matches!(
            error,
            JournalError::Evicted {
                requested: 0,
                oldest: 468,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_bounded_memory_journal_drops_what_every_reader_has_read_and_nothing_more() {
    let journal = MemoryJournal::bounded(journal_support::journal_id("consumed"), 1_000);
    let mut ahead = journal.reader(0, window(100)).expect("reader");
    let mut behind = journal.reader(0, window(100)).expect("reader");
    journal.append(orders(0, 10)).await.expect("append");
    let mut batch = Vec::new();
    assert_eq!(ahead.read(10, &mut batch).expect("read"), 10);
    assert_eq!(behind.read(4, &mut batch).expect("read"), 4);
    journal.append(orders(10, 1)).await.expect("append");
    // Records 0..4 were read by both readers; 4.. is still needed by the one behind.
    assert!(matches!(
        journal.reader(3, None),
        Err(JournalError::Evicted { oldest: 4, .. })
    ));
    let mut late = journal
        .reader(4, None)
        .expect("a record a reader still needs is kept");
    batch.clear();
    assert_eq!(late.read(100, &mut batch).expect("read"), 7);
    // While a reader without a window is open, the journal cannot know what it still needs,
    // so it drops nothing it would otherwise retain.
    assert_eq!(behind.read(100, &mut Vec::new()).expect("read"), 7);
    journal.append(orders(11, 1)).await.expect("append");
    assert!(journal.reader(4, None).is_ok());
    drop(late);
}
