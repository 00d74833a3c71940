//! The escalation log's entries: an escalation as subscribers receive it.
//!
//! Unlike customer records and facts, which hold the model's interned ids,
//! a log entry holds names: subscribers read the log long after the model
//! version that wrote it may have been retired, and a cursor's replay must
//! show what was delivered then. The state layer makes them
//! (`state::escalation_entry`), the store keeps them, the node streams
//! them and `api` converts them.

use super::fact::EscalationKind;
use super::model::Severity;
use super::time::Timestamp;

/// One fired (or resolved) escalation, as delivered to subscribers. The
/// cursor is its key in the log, not a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationEntry {
    /// `customer:sla:instance:tier:repeat`.
    pub escalation_id: String,
    pub kind: EscalationKind,
    pub customer: String,
    /// The market code.
    pub market: String,
    pub sla: String,
    pub instance: u32,
    pub tier: u16,
    pub repeat: u32,
    pub team: String,
    pub severity: Severity,
    /// The SLA instance's deadline.
    pub deadline: Timestamp,
    /// When the tier was due.
    pub due: Timestamp,
    pub fired_at: Timestamp,
    pub late_attach: bool,
    /// The SLA's reporting dimension, `""` when the model sets none.
    pub handoff: String,
    /// Region -> state when it fired, in region order.
    pub states: Vec<(String, String)>,
}
