//! docs/model.md step 1, data half: what is malformed as data, before a
//! customer sees it.

use super::super::input::{Event, Limits, Malformed, MalformedKind};
use super::super::time::Timestamp;

/// docs/model.md step 1, data half: refuse what is malformed as data. The
/// bounds on `occurred_at` are relative to `now` (the node's clock, or a
/// step's `at` in `simulate`).
pub fn check_malformed(limits: &Limits, e: &Event, now: Timestamp) -> Result<(), Malformed> {
    for (what, value) in [
        ("id", &e.id),
        ("source", &e.source),
        ("type", &e.event_type),
        ("customer id", &e.customer),
    ] {
        if value.is_empty() {
            return Err(Malformed::new(
                MalformedKind::Empty,
                format!("the event's {what} is empty: set it"),
            ));
        }
        let chars = value.chars().count();
        if chars > limits.max_len {
            return Err(Malformed::new(
                MalformedKind::TooLong,
                format!(
                    "the event's {what} is {chars} characters long; at most {} are allowed",
                    limits.max_len
                ),
            ));
        }
        if value.chars().any(is_control) {
            return Err(Malformed::new(
                MalformedKind::ControlCharacter,
                format!("the event's {what} contains a control character; remove it"),
            ));
        }
    }
    if e.market.chars().count() > limits.max_len {
        return Err(Malformed::new(
            MalformedKind::TooLong,
            format!(
                "the event's market is longer than {} characters",
                limits.max_len
            ),
        ));
    }
    if e.market.chars().any(is_control) {
        return Err(Malformed::new(
            MalformedKind::ControlCharacter,
            "the event's market contains a control character; remove it",
        ));
    }
    if !e.occurred_at.is_valid() {
        return Err(Malformed::new(
            MalformedKind::OccurredAtOutOfRange,
            format!(
                "occurred_at is outside the valid Timestamp range {}; send the instant the event happened",
                Timestamp::VALID_RANGE
            ),
        ));
    }
    if e.occurred_at > now + limits.max_future {
        return Err(Malformed::new(
            MalformedKind::OccurredAtFuture,
            format!(
                "occurred_at {} is more than {} after the node's clock (max_future); \
                 the node's clock reads {now}: check the sender's clock",
                e.occurred_at, limits.max_future
            ),
        ));
    }
    if e.occurred_at < now - limits.max_past {
        return Err(Malformed::new(
            MalformedKind::OccurredAtPast,
            format!(
                "occurred_at {} is more than {} before the node's clock (max_past); \
                 the node's clock reads {now}: check that the sender sets occurred_at to when \
                 the event happened (not a zero or default value), or raise max_past in the \
                 node's config to accept older events",
                e.occurred_at, limits.max_past
            ),
        ));
    }
    Ok(())
}

/// U+0000–U+001F and U+007F–U+009F (FAQ 17).
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}
