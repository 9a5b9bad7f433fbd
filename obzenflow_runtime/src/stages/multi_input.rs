//! Multi-input handlers: a stage that reads several upstreams and is told which one each record
//! came from, and when each one ended. Joins are built on it.
//!
//! Ordering, the whole of it: a handler sees the records of one input in that input's journal
//! order, and an input's end ([`MultiInputHandler::input_ended`]) after all of that input's
//! records and before any record of a later batch. Between inputs nothing else is promised:
//! they are read round robin a batch at a time, so how records of two inputs interleave depends
//! on timing and can differ from run to run. A handler that needs one input complete before
//! another is read says so with [`ReadPolicy::hydrate_first`]: the runtime then reads (and
//! waits on) only those inputs until each has ended, and hands over their ends before the first
//! record of any other input.

use std::time::Instant;

use obzenflow_core::{ChainEvent, ContentAt, Record};

use super::error::{HandlerFailure, RecordError};
use super::logic::elapsed_ns;
use super::record_type::RecordType;
use super::state_size::StateSize;
use super::transform::{Processed, TimedProcessor};

/// How a record of an input that produced no output counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputRole {
    /// Records flow through the stage: one that produces no output is counted as filtered.
    Stream,
    /// Records build the handler's state (a lookup table, a join buffer): one that produces no
    /// output was kept, not filtered.
    State,
}

/// One input a [`MultiInputHandler`] expects: its name (for errors and docs), its role, and
/// the record type it decodes, if one.
///
/// ```
/// use obzenflow_core::TypedPayload;
/// use obzenflow_runtime::stages::{InputRole, InputSpec};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Airline { code: String, name: String }
/// impl TypedPayload for Airline { const EVENT_TYPE: &'static str = "airline"; }
///
/// let reference = InputSpec::state("reference").typed::<Airline>();
/// assert_eq!(reference.name(), "reference");
/// assert_eq!(reference.role(), InputRole::State);
/// assert_eq!(reference.record_type().unwrap().event_type(), "airline");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    name: String,
    role: InputRole,
    record_type: Option<RecordType>,
}

impl InputSpec {
    /// An input whose records flow through ([`InputRole::Stream`]).
    pub fn stream(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            role: InputRole::Stream,
            record_type: None,
        }
    }

    /// An input whose records build state ([`InputRole::State`]).
    pub fn state(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            role: InputRole::State,
            record_type: None,
        }
    }

    /// Declares the record type the input decodes; `FlowBuilder::build` checks it against
    /// what the upstream wired to this input emits.
    pub fn typed<T: obzenflow_core::TypedPayload>(mut self) -> Self {
        self.record_type = Some(RecordType::of::<T>());
        self
    }

    /// The input's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The input's role.
    pub fn role(&self) -> InputRole {
        self.role
    }

    /// The record type it decodes, if one.
    pub fn record_type(&self) -> Option<RecordType> {
        self.record_type
    }
}

/// Which inputs a [`MultiInputHandler`] stage reads when.
///
/// ```
/// use obzenflow_runtime::stages::ReadPolicy;
///
/// // Read input 0 (a lookup table) to its end before any record of the others.
/// let policy = ReadPolicy::hydrate_first([0]);
/// assert_eq!(policy.first(), &[0]);
/// assert!(ReadPolicy::interleaved().first().is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadPolicy {
    first: Vec<usize>,
}

impl ReadPolicy {
    /// Every input is read as records arrive (round robin, a batch at a time).
    pub fn interleaved() -> Self {
        Self::default()
    }

    /// The inputs at these indices are read, and waited on, alone until each has ended; the
    /// others are read only after that, so the handler has seen every record of the first
    /// ones, and their ends, before the first record of any other. The stage waits without
    /// spinning; an input read first that never ends holds the others back for good.
    /// `FlowBuilder::build` refuses (`GraphError::HydrationDeadlock`) a stage whose input read
    /// first shares an upstream with an input it holds back: the held-back branch would stop
    /// the shared upstream once its backpressure window filled, and the first would never end.
    pub fn hydrate_first(inputs: impl IntoIterator<Item = usize>) -> Self {
        Self {
            first: inputs.into_iter().collect(),
        }
    }

    /// The indices read first.
    pub fn first(&self) -> &[usize] {
        &self.first
    }
}

/// A stage that reads several inputs and is told which input each record came from.
///
/// Inputs are numbered from 0 in the order of [`inputs`](Self::inputs); the flow wires one edge
/// to each (`FlowBuilder::multi_input`: the order edges into the stage are declared;
/// `FlowBuilder::join`: reference then stream). `build()` refuses a stage with an input left
/// unwired or an edge too many, naming the stage and the input, and checks each input's record
/// type against its upstream.
///
/// Ordering, the whole of it: the handler sees the records of one input in that input's
/// journal order, and the input's end ([`input_ended`](Self::input_ended)) after all of that
/// input's records and before any record of a later batch. Between inputs nothing else is
/// promised: they are read round robin a batch at a time, so how two inputs interleave depends
/// on timing and can differ from run to run, unless [`read_policy`](Self::read_policy) asks
/// for some inputs first ([`ReadPolicy::hydrate_first`]), which are then read to their end,
/// and their ends handed over, before the first record of any other input.
///
/// Returning no output for a record of an [`InputRole::Stream`] input counts it as filtered;
/// `Err` puts it on the error lane with the error's kind and message. Records that arrive in
/// error status pass through untouched, as in a transform.
///
/// ```
/// use std::collections::HashMap;
/// use obzenflow_core::ChainEvent;
/// use obzenflow_runtime::stages::{InputSpec, MultiInputHandler, ReadPolicy, RecordError, StateSize};
///
/// /// Tags each order with the region of its customer, read from input 0 first.
/// #[derive(Default)]
/// struct Regions(HashMap<String, String>);
///
/// impl MultiInputHandler for Regions {
///     fn inputs(&self) -> Vec<InputSpec> {
///         vec![InputSpec::state("customers"), InputSpec::stream("orders")]
///     }
///     fn read_policy(&self) -> ReadPolicy {
///         ReadPolicy::hydrate_first([0])
///     }
///     fn process_into(&mut self, input: usize, event: &ChainEvent, out: &mut Vec<ChainEvent>) -> Result<(), RecordError> {
///         let customer = event.field("customer").and_then(|c| c.as_str().map(str::to_owned)).ok_or("no customer")?;
///         if input == 0 {
///             let region = event.field("region").and_then(|r| r.as_str().map(str::to_owned)).ok_or("no region")?;
///             self.0.insert(customer, region);
///         } else if let Some(region) = self.0.get(&customer) {
///             let mut tagged = event.clone();
///             tagged.set_field("region", region.clone()).map_err(|e| RecordError::validation(e.to_string()))?;
///             out.push(tagged);
///         }
///         Ok(())
///     }
///     fn state_size(&self) -> Option<StateSize> {
///         Some(StateSize::new(self.0.len() as u64, self.0.len() as u64))
///     }
/// }
/// ```
pub trait MultiInputHandler: Send + 'static {
    /// The inputs it expects, in index order.
    fn inputs(&self) -> Vec<InputSpec>;

    /// Which inputs are read when; by default all together ([`ReadPolicy::interleaved`]).
    fn read_policy(&self) -> ReadPolicy {
        ReadPolicy::interleaved()
    }

    /// Opens resources; an error fails the stage.
    fn initialize(&mut self) -> Result<(), HandlerFailure> {
        Ok(())
    }

    /// Processes one record of input `input`, pushing its outputs to `out` (empty when called,
    /// reused from record to record). On `Err`, whatever it pushed is discarded.
    fn process_into(
        &mut self,
        input: usize,
        event: &ChainEvent,
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), RecordError>;

    /// Processes `events`, consecutive records of input `input` in journal order, as
    /// [`process_into`](Self::process_into) would one at a time, which is what the default
    /// does. Override it to work a run at a time: a lookup join, say, looks up every key of
    /// the run before it combines any, so the table's cache misses overlap instead of waiting
    /// one after another. For each record, in order, push its outputs with
    /// [`RunOutputs::push`] and end it with [`RunOutputs::finish`] (or do both with
    /// [`RunOutputs::record`]); a record ended with `Err` loses what was pushed for it, and so
    /// does anything pushed after the last record ended. A run whose records are not each
    /// ended once fails the stage, naming the count.
    fn process_run(&mut self, input: usize, events: &[Record], out: &mut RunOutputs<'_>) {
        for event in events {
            out.record(|scratch| self.process_into(input, event, scratch));
        }
    }

    /// Called once per input, after all its records, when its end-of-stream is read; what it
    /// pushes to `out` is emitted without a parent. An error fails the stage.
    fn input_ended(
        &mut self,
        _input: usize,
        _out: &mut Vec<ChainEvent>,
    ) -> Result<(), HandlerFailure> {
        Ok(())
    }

    /// The type of the records it emits, if one; `None` (the default) for any.
    fn output_type(&self) -> Option<RecordType> {
        None
    }

    /// Called once when every input has ended (after their `input_ended`); returns records
    /// still held.
    fn drain(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        Ok(Vec::new())
    }

    /// How much state it holds, asked after each batch and published as the stage's state
    /// gauge; `None` (the default) for none.
    fn state_size(&self) -> Option<StateSize> {
        None
    }
}

/// Where [`MultiInputHandler::process_run`] puts each record's outputs and outcome.
pub struct RunOutputs<'a> {
    processed: &'a mut Processed,
    /// Where the outputs of the record in hand begin in `processed.outputs`.
    record_start: usize,
    /// The outputs of the record in hand under [`record`](Self::record).
    scratch: &'a mut Vec<ChainEvent>,
}

impl RunOutputs<'_> {
    /// Pushes an output of the record in hand.
    pub fn push(&mut self, event: ChainEvent) {
        self.processed.outputs.push(event);
    }

    /// Ends the record in hand: `Ok` emits what was pushed for it (nothing counts it as
    /// filtered, for a stream input), `Err` drops that and puts the record on the error lane.
    pub fn finish(&mut self, result: Result<(), RecordError>) {
        let outputs = &mut self.processed.outputs;
        let outcome = match result {
            Ok(()) => Ok(outputs.len() - self.record_start),
            Err(error) => {
                outputs.truncate(self.record_start);
                Err(error)
            }
        };
        self.processed.outcomes.push((outcome, 0));
        self.record_start = outputs.len();
    }

    /// Processes one record as `process_into` does: `process` pushes its outputs to the
    /// vector it is given (empty when called), then the record is ended with its result.
    pub fn record(
        &mut self,
        process: impl FnOnce(&mut Vec<ChainEvent>) -> Result<(), RecordError>,
    ) {
        self.scratch.clear();
        let result = process(self.scratch);
        if result.is_ok() {
            self.processed.outputs.append(self.scratch);
        }
        self.finish(result);
    }
}

/// Runs a [`MultiInputHandler`]; each record is charged an equal share of the batch time.
pub(crate) struct SyncMultiInput<H> {
    handler: H,
    scratch: Vec<ChainEvent>,
}

impl<H> SyncMultiInput<H> {
    pub(crate) fn new(handler: H) -> Self {
        Self {
            handler,
            scratch: Vec::new(),
        }
    }
}

impl<H: MultiInputHandler> TimedProcessor for SyncMultiInput<H> {
    async fn initialize(&mut self) -> Result<(), HandlerFailure> {
        self.handler.initialize()
    }

    async fn process_batch<'a>(
        &'a mut self,
        events: &'a [Record],
        at: &'a [ContentAt],
        processed: &'a mut Processed,
    ) {
        let start = Instant::now();
        let first = processed.outcomes.len();
        let mut rest = (events, at);
        while let Some(head) = rest.1.first() {
            // A run: the records up to the next one of another input.
            let length = rest
                .1
                .iter()
                .position(|at| at.journal != head.journal)
                .unwrap_or(rest.1.len());
            let (run, later) = rest.0.split_at(length);
            rest = (later, &rest.1[length..]);
            let (record_start, results_before) =
                (processed.outputs.len(), processed.outcomes.len());
            let mut out = RunOutputs {
                processed,
                record_start,
                scratch: &mut self.scratch,
            };
            self.handler
                .process_run(head.journal as usize, run, &mut out);
            // Outputs pushed after the run's last record ended belong to no record.
            let ended_at = out.record_start;
            processed.outputs.truncate(ended_at);
            let results = processed.outcomes.len() - results_before;
            if results != run.len() {
                processed.miscounted = Some(format!(
                    "handler ended {results} records of a run of {} records of input {}",
                    run.len(),
                    head.journal
                ));
                return;
            }
        }
        let share = elapsed_ns(start) / events.len().max(1) as u64;
        for (_, elapsed) in &mut processed.outcomes[first..] {
            *elapsed = share;
        }
    }

    fn inputs_ended(
        &mut self,
        ended: &[usize],
        out: &mut Vec<ChainEvent>,
    ) -> Result<(), HandlerFailure> {
        for input in ended {
            self.handler.input_ended(*input, out)?;
        }
        Ok(())
    }

    fn state_size(&self) -> Option<StateSize> {
        self.handler.state_size()
    }

    async fn drain(&mut self) -> Result<Vec<ChainEvent>, HandlerFailure> {
        self.handler.drain()
    }
}
