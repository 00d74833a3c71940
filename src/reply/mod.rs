//! What a call to a customer answers: the replies, and the errors a call
//! can fail with (each with a kind, never told apart by its wording).
//!
//! The shard's actors produce them, the node passes them on, and `api`
//! maps them to gRPC (`api/convert.rs`, `api/error.rs`): the types live
//! here, below all three, so every layer points one way, down.

mod invalid;

use crate::engine::{Outcome, Refusal, SlaEnd, Timestamp};
use crate::store::StoreError;

pub use invalid::InvalidReason;

/// What a call can fail with; mapped to gRPC status codes in `api`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// Malformed input (INVALID_ARGUMENT): why, for metrics, and the
    /// message for the caller.
    #[error("{1}")]
    Invalid(InvalidReason, String),
    /// An unknown customer or escalation (NOT_FOUND).
    #[error("{0}")]
    NotFound(String),
    /// The model's rules deny it (PERMISSION_DENIED).
    #[error("{0}")]
    PermissionDenied(String),
    /// The node sheds load (RESOURCE_EXHAUSTED).
    #[error("{0}")]
    Exhausted(String),
    /// Not ready, shutting down, or the store failed (UNAVAILABLE).
    #[error("{0}")]
    Unavailable(String),
    /// The model cannot serve the customers stored here (at open;
    /// FAILED_PRECONDITION).
    #[error("{0}")]
    ModelMismatch(String),
    /// The customer's shard is not served by this node (in a cluster: it
    /// is another node's, or moving); the edge forwards the call to the
    /// shard's owner or answers UNAVAILABLE.
    #[error(
        "shard {0} is not served by this node (it is moving between nodes): retry: same event id"
    )]
    NotHere(u32),
}

impl NodeError {
    pub fn unknown_customer(customer: &str) -> NodeError {
        NodeError::NotFound(format!(
            "unknown customer `{customer}`: no event has created it (a customer is created by its first accepted event)"
        ))
    }
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        NodeError::Unavailable(e.to_string())
    }
}

/// A region's move, in an ingest result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionMove {
    pub region: String,
    pub from: String,
    pub to: String,
}

/// What happened to an SLA instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaChangeKind {
    Started,
    /// Ended: stopped before its deadline, or completed late, or cancelled.
    Ended(SlaEnd),
}

/// An SLA instance that started or ended, in an ingest result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaChange {
    pub sla: String,
    pub instance: u32,
    pub change: SlaChangeKind,
    /// For `started`: the instance's deadline.
    pub deadline: Option<Timestamp>,
}

/// What became of an ingested event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestReply {
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// Region -> state after the event, in region order; empty when the
    /// customer does not exist.
    pub states: Vec<(String, String)>,
    pub transitions: Vec<RegionMove>,
    pub sla_changes: Vec<SlaChange>,
}

impl IngestReply {
    /// A refusal before the customer (malformed as data).
    pub fn rejected(reason: String) -> IngestReply {
        IngestReply {
            outcome: Outcome::Rejected,
            reason: Some(reason),
            states: Vec::new(),
            transitions: Vec::new(),
            sla_changes: Vec::new(),
        }
    }
}

/// An answer to authorize, check_message or acknowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionReply {
    pub allowed: bool,
    pub reason: Option<String>,
    pub states: Vec<(String, String)>,
    /// Owner of the lifecycle region's current state (or the first region's).
    pub owner: Option<String>,
    /// Why the answer is no, as a kind (acknowledge: unknown escalation,
    /// missing team, or not permitted); `None` when allowed or when a
    /// denial is simply the answer (authorize, check_message).
    pub refusal: Option<Refusal>,
}
