//! The one place node errors become gRPC statuses.

use tonic::{Code, Status};

use crate::node::NodeError;

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        let code = match &e {
            NodeError::Invalid(_) => Code::InvalidArgument,
            NodeError::NotFound(_) => Code::NotFound,
            NodeError::PermissionDenied(_) => Code::PermissionDenied,
            NodeError::Exhausted(_) => Code::ResourceExhausted,
            NodeError::Unavailable(_) => Code::Unavailable,
            NodeError::ModelMismatch(_) => Code::FailedPrecondition,
        };
        Status::new(code, e.to_string())
    }
}

/// Checks an id given in a request (customer, team, ...): present, not
/// over-long, no control characters.
pub fn check_id(what: &str, value: &str, max_len: usize) -> Result<(), Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("{what} is empty: set it")));
    }
    if value.chars().count() > max_len {
        return Err(Status::invalid_argument(format!(
            "{what} is longer than {max_len} characters"
        )));
    }
    if value
        .chars()
        .any(|c| matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'))
    {
        return Err(Status::invalid_argument(format!(
            "{what} contains a control character; remove it"
        )));
    }
    Ok(())
}
