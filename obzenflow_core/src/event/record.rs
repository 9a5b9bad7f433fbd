//! `Record`: a [`ChainEvent`] as journals hand it out, shared with the journal's cache and
//! every reader, and stored with the other records of its batch in one allocation.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::ChainEvent;

/// A record read from a journal. It dereferences to its [`ChainEvent`].
///
/// Cloning a record never copies the event: the records appended together share one
/// allocation, so a journal's cache and its readers hold a batch of records for the price of
/// one allocation, and a record costs no allocation of its own to store or to read. The
/// allocation is freed when the last record of its batch is dropped, so a handler that keeps
/// one record keeps its whole batch in memory: keep the event (`Record::event().clone()`) or
/// the values you need instead.
///
/// ```
/// use obzenflow_core::{ChainEvent, Record};
/// use serde_json::json;
///
/// let records = Record::batch(vec![
///     ChainEvent::data("n", json!(1)),
///     ChainEvent::data("n", json!(2)),
/// ]);
/// let copy = records[1].clone();
/// assert_eq!(copy.json().as_deref(), Some(&json!(2)));
/// assert!(Record::ptr_eq(&copy, &records[1]));
/// ```
#[derive(Clone)]
pub struct Record {
    batch: Arc<[ChainEvent]>,
    index: usize,
}

impl Record {
    /// A record in a batch of its own.
    pub fn new(event: ChainEvent) -> Self {
        Self {
            batch: Arc::from([event]),
            index: 0,
        }
    }

    /// The records of one batch, in order, sharing one allocation.
    pub fn batch(events: Vec<ChainEvent>) -> Vec<Self> {
        let batch: Arc<[ChainEvent]> = Arc::from(events);
        (0..batch.len())
            .map(|index| Self {
                batch: Arc::clone(&batch),
                index,
            })
            .collect()
    }

    /// Whether both are the very same stored record.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.batch, &b.batch) && a.index == b.index
    }

    /// The event, for calls that want a `&ChainEvent` (a record dereferences to it too).
    pub fn event(&self) -> &ChainEvent {
        &self.batch[self.index]
    }
}

impl Deref for Record {
    type Target = ChainEvent;

    fn deref(&self) -> &ChainEvent {
        self.event()
    }
}

impl Borrow<ChainEvent> for Record {
    fn borrow(&self) -> &ChainEvent {
        self.event()
    }
}

impl AsRef<ChainEvent> for Record {
    fn as_ref(&self) -> &ChainEvent {
        self.event()
    }
}

impl From<ChainEvent> for Record {
    fn from(event: ChainEvent) -> Self {
        Self::new(event)
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.event() == other.event()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.event().fmt(f)
    }
}
