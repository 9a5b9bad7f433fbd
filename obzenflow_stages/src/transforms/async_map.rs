//! `AsyncMap`: an async function over every record, with a bounded number of calls in flight
//! and results kept in input order.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::time::Duration;

use obzenflow_core::{ChainEvent, ErrorKind, Record};
use obzenflow_runtime::stages::{AsyncTransformHandler, RecordError, RecordResult, RecordType};
use tokio::task::{Id, JoinError, JoinSet};

use super::codec::{Decoder, Encoder, Events};

/// How many calls an [`AsyncMap`] runs at once, and how long one may take.
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
/// use obzenflow_stages::transforms::AsyncMapConfig;
///
/// let config = AsyncMapConfig::with_concurrency(16).timeout(Duration::from_secs(2));
/// assert_eq!(config.concurrency, NonZeroUsize::new(16).unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncMapConfig {
    /// The most calls in flight at once.
    pub concurrency: NonZeroUsize,
    /// How long one call may take before its record goes to the error lane with kind
    /// `timeout`; `None` waits as long as it takes.
    pub timeout: Option<Duration>,
}

impl AsyncMapConfig {
    /// The default number of calls in flight.
    pub const DEFAULT_CONCURRENCY: NonZeroUsize = match NonZeroUsize::new(8) {
        Some(concurrency) => concurrency,
        None => unreachable!(),
    };

    /// At most `concurrency` calls in flight (at least one), no timeout.
    pub fn with_concurrency(concurrency: usize) -> Self {
        Self {
            concurrency: NonZeroUsize::new(concurrency).unwrap_or(NonZeroUsize::MIN),
            timeout: None,
        }
    }

    /// The same limit, with a timeout per call.
    pub fn timeout(self, timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..self
        }
    }
}

impl Default for AsyncMapConfig {
    fn default() -> Self {
        Self {
            concurrency: Self::DEFAULT_CONCURRENCY,
            timeout: None,
        }
    }
}

/// Runs an async function over every record of each batch, at most
/// [`concurrency`](AsyncMapConfig::concurrency) calls at a time, each on its own tokio task.
/// Results are returned in input order whatever order the calls finish in. An `Err`, a timeout
/// or a panicking call puts its record on the error lane (kinds: the error's, `timeout`,
/// `panic`) and the others go on. Added with `FlowBuilder::async_transform`. Built by
/// [`async_map`] or [`typed::async_map`](super::typed::async_map).
///
/// ```no_run
/// use std::time::Duration;
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_runtime::stages::RecordError;
/// use obzenflow_stages::sinks::ConsoleSink;
/// use obzenflow_stages::sources::JsonLinesSource;
/// use obzenflow_stages::transforms::{async_map, AsyncMapConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // Pretend each record needs a 20 ms remote lookup; run 32 of them at once.
/// let enrich = async_map(AsyncMapConfig::with_concurrency(32), |mut event: ChainEvent| async move {
///     tokio::time::sleep(Duration::from_millis(20)).await;
///     if let Some(payload) = event.payload_mut() {
///         payload["enriched"] = true.into();
///     }
///     Ok::<_, RecordError>(event)
/// });
/// FlowBuilder::new("enrich")
///     .async_source("in", JsonLinesSource::new("in.jsonl", "row"))
///     .async_transform("enrich", enrich)
///     .sink("out", ConsoleSink::new())
///     .chain(["in", "enrich", "out"])
///     .build()?
///     .run()
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct AsyncMap<In, Out, F> {
    function: F,
    config: AsyncMapConfig,
    codec: PhantomData<fn() -> (In, Out)>,
}

impl<In, Out, F> fmt::Debug for AsyncMap<In, Out, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMap")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<In, Out, F, Fut, E> AsyncMap<In, Out, F>
where
    In: Decoder,
    Out: Encoder,
    Out::Item: Send + 'static,
    F: FnMut(In::Item) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Out::Item, E>> + Send + 'static,
    E: Into<RecordError> + Send + 'static,
{
    /// An async map reading records with `In` and writing them with `Out`.
    ///
    /// ```
    /// use obzenflow_core::ChainEvent;
    /// use obzenflow_runtime::stages::RecordError;
    /// use obzenflow_stages::transforms::{AsyncMap, AsyncMapConfig, Events};
    ///
    /// let echo = AsyncMap::<Events, Events, _>::new(AsyncMapConfig::default(), |event: ChainEvent| async {
    ///     Ok::<_, RecordError>(event)
    /// });
    /// ```
    pub fn new(config: AsyncMapConfig, function: F) -> Self {
        Self {
            function,
            config,
            codec: PhantomData,
        }
    }

    /// Starts the call for the record at `index` of the batch.
    fn spawn(&mut self, calls: &mut Calls<Out::Item>, index: usize, item: In::Item) {
        let call = (self.function)(item);
        let timeout = self.config.timeout;
        let handle = calls.tasks.spawn(async move {
            match timeout {
                None => call.await.map_err(Into::into),
                Some(limit) => match tokio::time::timeout(limit, call).await {
                    Ok(outcome) => outcome.map_err(Into::into),
                    Err(_) => Err(RecordError::new(
                        ErrorKind::Timeout,
                        format!("call timed out after {limit:?}"),
                    )),
                },
            }
        });
        calls.index_of.insert(handle.id(), index);
    }
}

/// The calls of one batch in flight, and which record each belongs to.
struct Calls<T> {
    tasks: JoinSet<Result<T, RecordError>>,
    index_of: HashMap<Id, usize>,
}

/// An async map over raw events.
///
/// ```
/// use obzenflow_core::ChainEvent;
/// use obzenflow_stages::transforms::{async_map, AsyncMapConfig};
///
/// let checked = async_map(AsyncMapConfig::with_concurrency(4), |event: ChainEvent| async move {
///     if event.payload().is_some() { Ok(event) } else { Err("no payload") }
/// });
/// ```
pub fn async_map<F, Fut, E>(config: AsyncMapConfig, function: F) -> AsyncMap<Events, Events, F>
where
    F: FnMut(ChainEvent) -> Fut + Send + 'static,
    Fut: Future<Output = Result<ChainEvent, E>> + Send + 'static,
    E: Into<RecordError> + Send + 'static,
{
    AsyncMap::new(config, function)
}

impl<In, Out, F, Fut, E> AsyncTransformHandler for AsyncMap<In, Out, F>
where
    In: Decoder,
    Out: Encoder,
    Out::Item: Send + 'static,
    F: FnMut(In::Item) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Out::Item, E>> + Send + 'static,
    E: Into<RecordError> + Send + 'static,
{
    fn input_type(&self) -> Option<RecordType> {
        In::record_type()
    }

    fn output_type(&self) -> Option<RecordType> {
        Out::record_type()
    }

    /// Runs the batch with at most `concurrency` calls in flight.
    ///
    /// Cancel safety: dropping the returned future aborts the calls still in flight.
    async fn process_batch<'a>(&'a mut self, events: &'a [Record]) -> Vec<RecordResult> {
        let mut results: Vec<Option<RecordResult>> = events.iter().map(|_| None).collect();
        let mut calls = Calls {
            tasks: JoinSet::new(),
            index_of: HashMap::new(),
        };
        let mut next = 0;
        loop {
            while calls.tasks.len() < self.config.concurrency.get() && next < events.len() {
                match In::decode(&events[next]) {
                    Ok(item) => self.spawn(&mut calls, next, item),
                    Err(error) => results[next] = Some(Err(error)),
                }
                next += 1;
            }
            let Some(joined) = calls.tasks.join_next_with_id().await else {
                break;
            };
            let (index, outcome) = match joined {
                Ok((id, outcome)) => (calls.index_of.remove(&id), outcome),
                Err(error) => (
                    calls.index_of.remove(&error.id()),
                    Err(join_failure(&error)),
                ),
            };
            if let Some(index) = index {
                let output = outcome.and_then(|item| Out::encode(item, &events[index]));
                results[index] = Some(output.map(|output| vec![output]));
            }
        }
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| Err(RecordError::new(ErrorKind::Other, "call was lost")))
            })
            .collect()
    }
}

/// The record error for a call that panicked or was aborted.
fn join_failure(error: &JoinError) -> RecordError {
    if error.is_panic() {
        RecordError::new(ErrorKind::Panic, "call panicked")
    } else {
        RecordError::new(ErrorKind::Other, "call was cancelled")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn batch(count: u64) -> Vec<Record> {
        Record::batch(
            (0..count)
                .map(|n| ChainEvent::data("n", json!(n)))
                .collect(),
        )
    }

    fn number(result: &RecordResult) -> u64 {
        result.as_ref().unwrap()[0]
            .json()
            .unwrap()
            .as_u64()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn results_keep_input_order_and_concurrency_stays_bounded() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (now, top) = (in_flight.clone(), peak.clone());
        let mut stage = async_map(AsyncMapConfig::with_concurrency(3), move |event| {
            let (now, top) = (now.clone(), top.clone());
            async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                top.fetch_max(running, Ordering::SeqCst);
                // Later records finish first, so completion order is the reverse of input order.
                let n = event.json().unwrap().as_u64().unwrap();
                tokio::time::sleep(Duration::from_millis(100 - n * 10)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, RecordError>(event)
            }
        });
        let results = stage.process_batch(&batch(8)).await;
        let numbers: Vec<u64> = results.iter().map(number).collect();
        assert_eq!(numbers, (0..8).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_timeouts_and_panics_stay_with_their_record() {
        let config = AsyncMapConfig::with_concurrency(4).timeout(Duration::from_secs(1));
        let mut stage = async_map(config, |event: ChainEvent| async move {
            match event.json().unwrap().as_u64().unwrap() {
                1 => Err(RecordError::validation("one is odd")),
                2 => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(event)
                }
                3 => panic!("three"),
                _ => Ok(event),
            }
        });
        let results = stage.process_batch(&batch(5)).await;
        assert_eq!(number(&results[0]), 0);
        assert_eq!(
            results[1].as_ref().unwrap_err(),
            &RecordError::validation("one is odd")
        );
        assert_eq!(
            results[2].as_ref().unwrap_err(),
            &RecordError::new(ErrorKind::Timeout, "call timed out after 1s")
        );
        assert_eq!(
            results[3].as_ref().unwrap_err(),
            &RecordError::new(ErrorKind::Panic, "call panicked")
        );
        assert_eq!(number(&results[4]), 4);
    }
}
