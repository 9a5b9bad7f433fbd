//! Typed transforms: functions over [`TypedPayload`] types instead of raw events.
//!
//! Each record is decoded into the function's input type; a record of another event type or
//! whose payload does not fit goes to the error lane with kind `decode`, and the stage goes on.
//! Outputs are encoded as records of the output type's event type and keep the input's event
//! time.
//!
//! ```no_run
//! use obzenflow_core::TypedPayload;
//! use obzenflow_runtime::pipeline::FlowBuilder;
//! use obzenflow_stages::sinks::ConsoleSink;
//! use obzenflow_stages::sources::CsvSource;
//! use obzenflow_stages::transforms::typed;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Clone)]
//! struct Order { id: u64, amount: f64 }
//! impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
//!
//! #[derive(Serialize, Deserialize, Clone)]
//! struct Invoice { order: u64, total: f64 }
//! impl TypedPayload for Invoice { const EVENT_TYPE: &'static str = "invoice"; }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! FlowBuilder::new("invoices")
//!     .async_source("orders", CsvSource::typed::<Order>("orders.csv"))
//!     .transform("positive", typed::filter(|order: &Order| order.amount > 0.0))
//!     .transform("invoice", typed::map(|order: Order| Invoice { order: order.id, total: order.amount * 1.2 }))
//!     .sink("print", ConsoleSink::typed(|invoice: &Invoice| format!("{} {:.2}", invoice.order, invoice.total)))
//!     .chain(["orders", "positive", "invoice", "print"])
//!     .build()?
//!     .run()
//!     .await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;

use obzenflow_core::TypedPayload;
use obzenflow_runtime::stages::RecordError;

use super::async_map::{AsyncMap, AsyncMapConfig};
use super::codec::Typed;
use super::filter::Filter;
use super::flat_map::FlatMap;
use super::map::Map;
use super::try_map::TryMap;

/// A map from one payload type to another.
///
/// ```
/// use obzenflow_core::TypedPayload;
/// use obzenflow_stages::transforms::typed;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Celsius(f64);
/// impl TypedPayload for Celsius { const EVENT_TYPE: &'static str = "celsius"; }
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Fahrenheit(f64);
/// impl TypedPayload for Fahrenheit { const EVENT_TYPE: &'static str = "fahrenheit"; }
///
/// let convert = typed::map(|c: Celsius| Fahrenheit(c.0 * 9.0 / 5.0 + 32.0));
/// ```
pub fn map<T, O, F>(function: F) -> Map<Typed<T>, Typed<O>, F>
where
    T: TypedPayload + 'static,
    O: TypedPayload + 'static,
    F: FnMut(T) -> O + Send + 'static,
{
    Map::new(function)
}

/// A fallible map from one payload type to another; an `Err` puts the record on the error lane.
///
/// ```
/// use obzenflow_core::TypedPayload;
/// use obzenflow_runtime::stages::RecordError;
/// use obzenflow_stages::transforms::typed;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Order { id: u64, amount: f64 }
/// impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Invoice { order: u64, total: f64 }
/// impl TypedPayload for Invoice { const EVENT_TYPE: &'static str = "invoice"; }
///
/// let invoice = typed::try_map(|order: Order| {
///     if order.amount < 0.0 {
///         return Err(RecordError::validation(format!("order {} has a negative amount", order.id)));
///     }
///     Ok(Invoice { order: order.id, total: order.amount })
/// });
/// ```
pub fn try_map<T, O, F, E>(function: F) -> TryMap<Typed<T>, Typed<O>, F>
where
    T: TypedPayload + 'static,
    O: TypedPayload + 'static,
    F: FnMut(T) -> Result<O, E> + Send + 'static,
    E: Into<RecordError>,
{
    TryMap::new(function)
}

/// A filter over a payload type; kept records pass unchanged.
///
/// ```
/// use obzenflow_core::TypedPayload;
/// use obzenflow_stages::transforms::typed;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Order { id: u64, amount: f64 }
/// impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
///
/// let large = typed::filter(|order: &Order| order.amount >= 100.0);
/// ```
pub fn filter<T, F>(predicate: F) -> Filter<Typed<T>, F>
where
    T: TypedPayload + 'static,
    F: FnMut(&T) -> bool + Send + 'static,
{
    Filter::new(predicate)
}

/// A flat map from one payload type to any number of another.
///
/// ```
/// use obzenflow_core::TypedPayload;
/// use obzenflow_stages::transforms::typed;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Basket { items: Vec<String> }
/// impl TypedPayload for Basket { const EVENT_TYPE: &'static str = "basket"; }
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Item { name: String }
/// impl TypedPayload for Item { const EVENT_TYPE: &'static str = "item"; }
///
/// let items = typed::flat_map(|basket: Basket| {
///     basket.items.into_iter().map(|name| Item { name }).collect::<Vec<_>>()
/// });
/// ```
pub fn flat_map<T, O, F, I>(function: F) -> FlatMap<Typed<T>, Typed<O>, F>
where
    T: TypedPayload + 'static,
    O: TypedPayload + 'static,
    F: FnMut(T) -> I + Send + 'static,
    I: IntoIterator<Item = O>,
{
    FlatMap::new(function)
}

/// An async map from one payload type to another, at most `config.concurrency` calls in flight.
///
/// ```
/// use obzenflow_core::TypedPayload;
/// use obzenflow_runtime::stages::RecordError;
/// use obzenflow_stages::transforms::{typed, AsyncMapConfig};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Order { id: u64, customer: String }
/// impl TypedPayload for Order { const EVENT_TYPE: &'static str = "order"; }
/// #[derive(Serialize, Deserialize, Clone)]
/// struct Enriched { id: u64, customer: String, tier: String }
/// impl TypedPayload for Enriched { const EVENT_TYPE: &'static str = "order.enriched"; }
///
/// let enrich = typed::async_map(AsyncMapConfig::with_concurrency(16), |order: Order| async move {
///     // A remote lookup would go here.
///     Ok::<_, RecordError>(Enriched { id: order.id, customer: order.customer, tier: "gold".into() })
/// });
/// ```
pub fn async_map<T, O, F, Fut, E>(
    config: AsyncMapConfig,
    function: F,
) -> AsyncMap<Typed<T>, Typed<O>, F>
where
    T: TypedPayload + 'static,
    O: TypedPayload + Send + 'static,
    F: FnMut(T) -> Fut + Send + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    E: Into<RecordError> + Send + 'static,
{
    AsyncMap::new(config, function)
}

#[cfg(test)]
mod tests {
    use super::*;
    use obzenflow_core::{ChainEvent, ErrorKind};
    use obzenflow_runtime::stages::TransformHandler;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize, Clone)]
    struct Order {
        id: u64,
        amount: f64,
    }

    impl TypedPayload for Order {
        const EVENT_TYPE: &'static str = "order";
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize, Clone)]
    struct Invoice {
        order: u64,
        total: f64,
    }

    impl TypedPayload for Invoice {
        const EVENT_TYPE: &'static str = "invoice";
    }

    fn order(id: u64, amount: f64) -> ChainEvent {
        Order { id, amount }.to_event().unwrap()
    }

    #[test]
    fn map_decodes_and_encodes() {
        let mut stage = map(|o: Order| Invoice {
            order: o.id,
            total: o.amount * 2.0,
        });
        let outputs = stage.process(&order(3, 1.5)).unwrap();
        let invoice = Invoice::from_event(&outputs[0]).unwrap();
        assert_eq!(
            invoice,
            Invoice {
                order: 3,
                total: 3.0
            }
        );
        let wrong = ChainEvent::data("refund", serde_json::json!({}));
        let error = stage.process(&wrong).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Decode);
        assert_eq!(error.message, "expected a `order` record, found `refund`");
    }

    #[test]
    fn try_map_errors_keep_their_kind() {
        let mut stage = try_map(|o: Order| {
            if o.amount < 0.0 {
                Err(RecordError::validation("negative"))
            } else {
                Ok(Invoice {
                    order: o.id,
                    total: o.amount,
                })
            }
        });
        assert_eq!(stage.process(&order(1, 2.0)).unwrap().len(), 1);
        let error = stage.process(&order(2, -1.0)).unwrap_err();
        assert_eq!(error, RecordError::validation("negative"));
    }

    #[test]
    fn filter_passes_the_record_unchanged() {
        let mut stage = filter(|o: &Order| o.amount > 10.0);
        let big = order(1, 20.0);
        assert_eq!(stage.process(&big).unwrap(), vec![big]);
        assert!(stage.process(&order(2, 5.0)).unwrap().is_empty());
    }

    #[test]
    fn flat_map_emits_every_output() {
        let mut stage = flat_map(|o: Order| {
            (0..o.id).map(move |n| Invoice {
                order: n,
                total: o.amount,
            })
        });
        assert_eq!(stage.process(&order(3, 1.0)).unwrap().len(), 3);
        assert!(stage.process(&order(0, 1.0)).unwrap().is_empty());
    }
}
