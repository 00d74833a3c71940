//! The one place node errors become gRPC statuses (INVALID_ARGUMENT
//! through [`invalid`], so that it is counted).

use tonic::{Code, Status};

use super::invalid::invalid;
use crate::node::{InvalidReason, NodeError};

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        match e {
            NodeError::Invalid(reason, message) => invalid(reason, message),
            NodeError::NotFound(m) => Status::new(Code::NotFound, m),
            NodeError::PermissionDenied(m) => Status::new(Code::PermissionDenied, m),
            NodeError::Exhausted(m) => Status::new(Code::ResourceExhausted, m),
            NodeError::Unavailable(m) => Status::new(Code::Unavailable, m),
            e @ NodeError::NotHere(_) => Status::new(Code::Unavailable, e.to_string()),
            NodeError::ModelMismatch(m) => Status::new(Code::FailedPrecondition, m),
        }
    }
}

/// Checks an id given in a request (customer, team, ...): present, not
/// over-long, no control characters.
pub fn check_id(what: &str, value: &str, max_len: usize) -> Result<(), Status> {
    if value.is_empty() {
        return Err(invalid(
            InvalidReason::Empty,
            format!("{what} is empty: set it"),
        ));
    }
    if value.chars().count() > max_len {
        return Err(invalid(
            InvalidReason::TooLong,
            format!("{what} is longer than {max_len} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'))
    {
        return Err(invalid(
            InvalidReason::ControlCharacter,
            format!("{what} contains a control character; remove it"),
        ));
    }
    Ok(())
}
