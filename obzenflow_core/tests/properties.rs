//! Property tests: serde round-trips of events and ids, and parsers that never panic.

mod strategies;

use obzenflow_core::{ChainEvent, CorrelationId, EventId, FlowId, RunId, StageId, WriterId};
use proptest::prelude::*;
use strategies::{chain_event, uuid};

proptest! {
    #[test]
    fn chain_events_round_trip_through_json(event in chain_event()) {
        let text = serde_json::to_string(&event).unwrap();
        let back: ChainEvent = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, event);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_event_decoder(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<ChainEvent>(&bytes);
    }

    #[test]
    fn mutated_event_json_gives_an_error_or_an_event(event in chain_event(), cut in any::<prop::sample::Index>()) {
        let text = serde_json::to_string(&event).unwrap();
        let cut = cut.index(text.len());
        let _ = serde_json::from_str::<ChainEvent>(&text[..text.floor_char_boundary(cut)]);
    }

    #[test]
    fn arbitrary_strings_never_panic_id_parsers(input in ".*") {
        let _ = input.parse::<EventId>();
        let _ = input.parse::<StageId>();
        let _ = input.parse::<RunId>();
        let _ = input.parse::<FlowId>();
        let _ = input.parse::<WriterId>();
        let _ = input.parse::<CorrelationId>();
    }

    #[test]
    fn prefixed_garbage_is_rejected_with_the_kind(body in "[^0-9a-fA-F-]{1,40}") {
        let error = format!("evt_{body}").parse::<EventId>().unwrap_err();
        prop_assert_eq!(error.kind, "event id");
    }

    #[test]
    fn ids_round_trip(id in uuid()) {
        let event_id = EventId::from_uuid(id);
        prop_assert_eq!(event_id.to_string().parse::<EventId>().unwrap(), event_id);
        let writer = WriterId::Stage(StageId::from_uuid(id));
        prop_assert_eq!(writer.to_string().parse::<WriterId>().unwrap(), writer);
    }
}
