//! Why a request is malformed, as a small fixed set of reasons: the
//! `reason` label of `handoff_invalid_requests_total`. The message for the
//! caller travels beside it; caller text never becomes a label.

use crate::engine::MalformedKind;

/// Why a request was refused with INVALID_ARGUMENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// A required message or field is absent (an IngestRequest's event).
    Missing,
    /// An id, source, type, customer id, team or action is empty.
    Empty,
    /// A value is longer than allowed.
    TooLong,
    /// A value contains a control character.
    ControlCharacter,
    /// Too many attributes, or one too long.
    Attributes,
    /// `occurred_at` is not a valid Timestamp (seconds outside
    /// 0001..9999, or nanos outside 0..1e9).
    OccurredAtOutOfRange,
    /// `occurred_at` is more than `max_future` ahead of the node's clock.
    OccurredAtFuture,
    /// `occurred_at` is more than `max_past` behind the node's clock.
    OccurredAtPast,
    /// A team or market the model does not declare.
    Undeclared,
    /// An enum field holds a value that is not one of its variants.
    UnknownEnumValue,
    /// An IngestBatch over the batch limit.
    BatchTooLarge,
    /// A Subscribe cursor that is not one, or is ahead of the log.
    Cursor,
    /// A string that is not an escalation id.
    EscalationId,
    /// A published model's text that does not load.
    ModelText,
    /// A rollout that is not one (a percent outside 0-100, a candidate
    /// without a percent or the other way round).
    Rollout,
    /// A report's window that is not one (too many days, or ending in
    /// the future).
    Window,
}

impl InvalidReason {
    /// Every reason, for turning a label back into one.
    pub const ALL: [InvalidReason; 16] = [
        InvalidReason::Missing,
        InvalidReason::Empty,
        InvalidReason::TooLong,
        InvalidReason::ControlCharacter,
        InvalidReason::Attributes,
        InvalidReason::OccurredAtOutOfRange,
        InvalidReason::OccurredAtFuture,
        InvalidReason::OccurredAtPast,
        InvalidReason::Undeclared,
        InvalidReason::UnknownEnumValue,
        InvalidReason::BatchTooLarge,
        InvalidReason::Cursor,
        InvalidReason::EscalationId,
        InvalidReason::ModelText,
        InvalidReason::Rollout,
        InvalidReason::Window,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::Missing => "missing",
            InvalidReason::Empty => "empty",
            InvalidReason::TooLong => "too_long",
            InvalidReason::ControlCharacter => "control_character",
            InvalidReason::Attributes => "attributes",
            InvalidReason::OccurredAtOutOfRange => "occurred_at_out_of_range",
            InvalidReason::OccurredAtFuture => "occurred_at_future",
            InvalidReason::OccurredAtPast => "occurred_at_past",
            InvalidReason::Undeclared => "undeclared",
            InvalidReason::UnknownEnumValue => "unknown_enum_value",
            InvalidReason::BatchTooLarge => "batch_too_large",
            InvalidReason::Cursor => "cursor",
            InvalidReason::EscalationId => "escalation_id",
            InvalidReason::ModelText => "model_text",
            InvalidReason::Rollout => "rollout",
            InvalidReason::Window => "window",
        }
    }
}

impl From<MalformedKind> for InvalidReason {
    fn from(kind: MalformedKind) -> InvalidReason {
        match kind {
            MalformedKind::Empty => InvalidReason::Empty,
            MalformedKind::TooLong => InvalidReason::TooLong,
            MalformedKind::ControlCharacter => InvalidReason::ControlCharacter,
            MalformedKind::OccurredAtOutOfRange => InvalidReason::OccurredAtOutOfRange,
            MalformedKind::OccurredAtFuture => InvalidReason::OccurredAtFuture,
            MalformedKind::OccurredAtPast => InvalidReason::OccurredAtPast,
        }
    }
}
