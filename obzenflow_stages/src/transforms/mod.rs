//! Transforms: each record in, zero or more records out.
//!
//! Every transform comes in two forms: over raw [`ChainEvent`]s
//! ([`map`], [`filter`], [`flat_map`], [`try_map`], [`async_map`]) and over typed payloads
//! ([`typed::map`] and friends), which decode each record into a Rust type and encode what the
//! function returns. A record that cannot be decoded goes to the error lane with kind `decode`;
//! an `Err` from a fallible function goes there with the error's kind. Outputs inherit the
//! input's event time unless they set their own; the runtime stamps ids and lineage.
//!
//! Both forms are the same stage types, parameterized by how they read and write records
//! ([`Decoder`] and [`Encoder`]: [`Events`] or [`Typed`]), so there is one implementation of
//! each transform.

mod async_map;
mod codec;
mod filter;
mod flat_map;
mod map;
mod try_map;
pub mod typed;

pub use async_map::{async_map, AsyncMap, AsyncMapConfig};
pub use codec::{Decoder, Encoder, Events, Typed};
pub use filter::{filter, Filter};
pub use flat_map::{flat_map, FlatMap};
pub use map::{map, Map};
pub use try_map::{try_map, TryMap};

use obzenflow_core::ChainEvent;
use obzenflow_runtime::stages::{RecordResult, TransformHandler};

/// `process` for a handler whose work is in `process_into` (which the runtime calls).
fn process_by_appending(handler: &mut impl TransformHandler, event: &ChainEvent) -> RecordResult {
    let mut outputs = Vec::with_capacity(1);
    handler.process_into(event, &mut outputs)?;
    Ok(outputs)
}
