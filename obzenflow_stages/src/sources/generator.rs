//! `GeneratorSource`: an infinite (or bounded) stream of generated records at a fixed rate,
//! paced by tokio's clock.

use std::fmt;
use std::time::Duration;

use obzenflow_core::{ChainEvent, TypedPayload};
use obzenflow_runtime::stages::{AsyncSourceHandler, HandlerFailure, SourcePoll};
use tokio::time::Instant;

/// Makes the record with the given sequence number (0, 1, 2, ...).
type Generate = Box<dyn FnMut(u64) -> ChainEvent + Send>;

/// The pace and length of a [`GeneratorSource`].
///
/// ```
/// use std::time::Duration;
/// use obzenflow_stages::sources::GeneratorConfig;
///
/// // 200 records a second, forever.
/// let config = GeneratorConfig::per_second(200);
/// assert_eq!(config.interval, Duration::from_millis(5));
/// // Ten records, one every 100 ms.
/// let config = GeneratorConfig { interval: Duration::from_millis(100), limit: Some(10) };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Time between two records. A zero interval generates as fast as the flow takes them.
    pub interval: Duration,
    /// How many records to generate before ending; `None` for an infinite source that ends only
    /// when the flow is stopped.
    pub limit: Option<u64>,
}

impl GeneratorConfig {
    /// An infinite source generating `rate` records a second (at most one per nanosecond).
    pub fn per_second(rate: u32) -> Self {
        let nanos = 1_000_000_000 / u64::from(rate.max(1));
        Self {
            interval: Duration::from_nanos(nanos.max(1)),
            limit: None,
        }
    }

    /// The same pace, ending after `limit` records.
    pub fn with_limit(self, limit: u64) -> Self {
        Self {
            limit: Some(limit),
            ..self
        }
    }
}

/// Generates records on a schedule: record `n` is due `n * interval` after the first call.
///
/// A slow flow does not lose records: when the source falls behind, each batch carries every
/// record that is due (up to the batch limit), so the long-run rate stays what was configured.
/// Timing uses `tokio::time`, so tests can run it under paused time.
///
/// Stopping: with no `limit` the source never ends on its own. A graceful stop
/// (`FlowHandle::stop_graceful`) drops its pending wait, which is cancel safe, and the flow
/// drains what was already generated.
///
/// ```no_run
/// use std::time::Duration;
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::pipeline::FlowBuilder;
/// use obzenflow_stages::sinks::ConsoleSink;
/// use obzenflow_stages::sources::{GeneratorConfig, GeneratorSource};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ticks = GeneratorSource::new(GeneratorConfig::per_second(10), |n| {
///     ChainEvent::data("tick", serde_json::json!({ "n": n }))
/// });
/// let flow = FlowBuilder::new("ticker")
///     .async_source("ticks", ticks)
///     .sink("print", ConsoleSink::new())
///     .edge("ticks", "print")
///     .build()?
///     .start()?;
/// tokio::time::sleep(Duration::from_secs(1)).await;
/// flow.stop_graceful(Duration::from_secs(5)).await?;
/// println!("{}", flow.wait().await?);
/// # Ok(())
/// # }
/// ```
pub struct GeneratorSource {
    config: GeneratorConfig,
    generate: Generate,
    produced: u64,
    next_due: Option<Instant>,
}

impl fmt::Debug for GeneratorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratorSource")
            .field("config", &self.config)
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

impl GeneratorSource {
    /// A source calling `generate(n)` for the `n`-th record.
    ///
    /// ```
    /// use obzenflow_core::ChainEvent;
    /// use obzenflow_stages::sources::{GeneratorConfig, GeneratorSource};
    ///
    /// let source = GeneratorSource::new(GeneratorConfig::per_second(5).with_limit(20), |n| {
    ///     ChainEvent::data("tick", serde_json::json!(n))
    /// });
    /// ```
    pub fn new(
        config: GeneratorConfig,
        generate: impl FnMut(u64) -> ChainEvent + Send + 'static,
    ) -> Self {
        Self {
            config,
            generate: Box::new(generate),
            produced: 0,
            next_due: None,
        }
    }

    /// A source calling `generate(n)` for the payload of the `n`-th record.
    ///
    /// ```
    /// use obzenflow_core::TypedPayload;
    /// use obzenflow_stages::sources::{GeneratorConfig, GeneratorSource};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, Clone)]
    /// struct Reading { sensor: u64, celsius: f64 }
    /// impl TypedPayload for Reading { const EVENT_TYPE: &'static str = "reading"; }
    ///
    /// let source = GeneratorSource::typed(GeneratorConfig::per_second(50), |n| Reading {
    ///     sensor: n % 4,
    ///     celsius: 20.0 + (n % 10) as f64 / 10.0,
    /// });
    /// ```
    pub fn typed<T: TypedPayload>(
        config: GeneratorConfig,
        mut generate: impl FnMut(u64) -> T + Send + 'static,
    ) -> Self {
        Self::new(config, move |n| generate(n).into_event())
    }

    fn exhausted(&self) -> bool {
        self.config
            .limit
            .is_some_and(|limit| self.produced >= limit)
    }
}

impl AsyncSourceHandler for GeneratorSource {
    /// Waits until the next record is due, then returns every record due by now (at most
    /// `max`).
    ///
    /// Cancel safety: cancel safe. Nothing changes before the wait completes, so a dropped
    /// call loses no record: the next call waits for the same one.
    async fn next_batch(&mut self, max: usize) -> Result<SourcePoll, HandlerFailure> {
        if self.exhausted() {
            return Ok(SourcePoll::Done);
        }
        let first_due = *self.next_due.get_or_insert_with(Instant::now);
        tokio::time::sleep_until(first_due).await;
        let now = Instant::now();
        let mut records = Vec::with_capacity(max.min(super::iter::PREALLOCATE_LIMIT));
        let mut next_due = first_due;
        while records.len() < max.max(1) && next_due <= now && !self.exhausted() {
            records.push((self.generate)(self.produced));
            self.produced += 1;
            next_due += self.config.interval;
        }
        self.next_due = Some(next_due);
        Ok(SourcePoll::Records(records))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn numbers(config: GeneratorConfig) -> GeneratorSource {
        GeneratorSource::new(config, |n| ChainEvent::data("n", json!(n)))
    }

    async fn next(source: &mut GeneratorSource, max: usize) -> Vec<u64> {
        match source.next_batch(max).await.unwrap() {
            SourcePoll::Records(records) => records
                .iter()
                .map(|record| record.json().unwrap().as_u64().unwrap())
                .collect(),
            SourcePoll::Done => Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn records_come_at_the_configured_pace() {
        let interval = Duration::from_millis(100);
        let mut source = numbers(GeneratorConfig {
            interval,
            limit: None,
        });
        let start = Instant::now();
        assert_eq!(next(&mut source, 10).await, [0]);
        assert_eq!(next(&mut source, 10).await, [1]);
        assert_eq!(Instant::now() - start, interval);
        assert_eq!(next(&mut source, 10).await, [2]);
        assert_eq!(Instant::now() - start, interval * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_caller_gets_everything_due_up_to_the_batch_limit() {
        let interval = Duration::from_millis(10);
        let mut source = numbers(GeneratorConfig {
            interval,
            limit: None,
        });
        assert_eq!(next(&mut source, 10).await, [0]);
        tokio::time::advance(interval * 5).await;
        assert_eq!(next(&mut source, 3).await, [1, 2, 3]);
        assert_eq!(next(&mut source, 10).await, [4, 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_limited_generator_ends() {
        let config = GeneratorConfig::per_second(1000).with_limit(3);
        let mut source = numbers(config);
        let mut all = Vec::new();
        loop {
            let batch = next(&mut source, 2).await;
            if batch.is_empty() {
                break;
            }
            all.extend(batch);
        }
        assert_eq!(all, [0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_wait_loses_nothing() {
        let interval = Duration::from_secs(1);
        let mut source = numbers(GeneratorConfig {
            interval,
            limit: None,
        });
        assert_eq!(next(&mut source, 10).await, [0]);
        let timed_out = tokio::time::timeout(interval / 2, source.next_batch(10)).await;
        assert!(timed_out.is_err());
        assert_eq!(next(&mut source, 10).await, [1]);
    }

    #[test]
    fn rates_become_intervals() {
        assert_eq!(
            GeneratorConfig::per_second(4).interval,
            Duration::from_millis(250)
        );
        assert_eq!(
            GeneratorConfig::per_second(0).interval,
            Duration::from_secs(1)
        );
    }
}
