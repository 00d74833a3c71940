//! The escalation log's entries: an escalation as subscribers receive it.
//!
//! Unlike customer records and facts, which hold the model's interned ids,
//! a log entry holds names: subscribers read the log long after the model
//! version that wrote it may have been retired, and a cursor's replay must
//! show what was delivered then.

use crate::engine::model::{Model, Severity};
use crate::engine::view;
use crate::engine::{CustomerState, Escalation, EscalationKind, Timestamp};

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

impl EscalationEntry {
    /// The entry for `e`, an escalation of the customer `s` (after the
    /// escalation's fact was applied, so `states` are the states then).
    pub fn new(model: &Model, s: &CustomerState, e: &Escalation) -> EscalationEntry {
        let sla = model.sla_spec(e.sla);
        EscalationEntry {
            escalation_id: e.id(&s.customer, &sla.name),
            kind: e.kind,
            customer: s.customer.to_string(),
            market: s.market_code.to_string(),
            sla: sla.name.clone(),
            instance: e.instance,
            tier: e.tier,
            repeat: e.repeat,
            team: model.team_name(e.team).to_owned(),
            severity: e.severity,
            deadline: e.deadline,
            due: e.due,
            fired_at: e.at,
            late_attach: e.late_attach,
            handoff: sla.handoff.clone(),
            states: view::states(model, s),
        }
    }
}
