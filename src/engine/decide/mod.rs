//! `decide`: what an input means for a customer, as facts.
//!
//! The dispatcher and the decision's shape live here; each kind of input
//! has its file (`event`, `timer`, `ack`), `malformed` is step 1's data
//! check, and the work in progress (`work`: proofs, regions, transitions)
//! and its SLA machinery (`sla`: start, stop, cancel, tiers) are shared by
//! events and timers.
//!
//! An event goes through docs/model.md's steps in order (malformed, unknown,
//! duplicate, proofs, `on` transitions, automatic transitions, SLAs) on a
//! copy of the customer's [`Core`]; each fact is folded into that copy as it
//! is found, through the same `apply` the caller will use, so later steps
//! see earlier ones. Settled readings of the fine points are in
//! `docs/model.md` ("Settled readings"); comments cite them as "FAQ n".

use super::fact::{Fact, Outcome};
use super::input::{Input, Limits, Timer};
use super::model::Model;
use super::state::CustomerState;
use super::time::Timestamp;
use super::view;

mod ack;
mod event;
mod malformed;
mod sla;
mod timer;
mod work;

use ack::decide_ack;
use event::decide_event;
use timer::decide_timer;

pub use malformed::check_malformed;

/// What `decide` found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// For events: what became of it. `None` for other inputs.
    pub outcome: Option<Outcome>,
    /// For authorize and acknowledge: the answer.
    pub allowed: Option<bool>,
    /// Why: blocked regions, staleness, the rule that denied.
    pub reason: Option<String>,
    /// For acknowledge: why the answer is no, as a kind.
    pub refusal: Option<Refusal>,
    /// To apply, in order, and to make durable.
    pub facts: Vec<Fact>,
    /// Timers to add to and remove from the durable index.
    pub timers: TimerChanges,
}

impl Decision {
    fn refused(outcome: Outcome, reason: String) -> Decision {
        Decision {
            outcome: Some(outcome),
            reason: Some(reason),
            ..Decision::default()
        }
    }

    fn answer(allowed: bool, reason: Option<String>) -> Decision {
        Decision {
            allowed: Some(allowed),
            reason,
            ..Decision::default()
        }
    }

    fn refuse(refusal: Refusal, reason: String) -> Decision {
        Decision {
            refusal: Some(refusal),
            ..Decision::answer(false, Some(reason))
        }
    }
}

/// Why an acknowledgement is refused (the reason says it in words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such escalation of this customer.
    NotFound,
    /// No team given, and none implied by the caller: the reason names the
    /// teams that may acknowledge.
    TeamMissing,
    /// The team may not: it is undeclared, or neither the notified team
    /// nor the SLA's owner.
    NotPermitted,
}

/// The change to a customer's pending timers that a decision makes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimerChanges {
    pub armed: Vec<Timer>,
    pub disarmed: Vec<Timer>,
}

/// Decides one input for one customer (`None`: not created yet) at `now`.
pub fn decide(
    model: &Model,
    limits: &Limits,
    state: Option<&CustomerState>,
    input: &Input,
    now: Timestamp,
) -> Decision {
    let state = state.filter(|s| s.exists);
    match input {
        Input::Event(event) => decide_event(model, limits, state, event, now),
        Input::Timer(timer) => match state {
            Some(s) => decide_timer(model, s, timer, now),
            None => Decision::default(),
        },
        Input::Authorize { team, action } => match state {
            Some(s) => {
                let (allowed, reason) = view::authorize(model, s, team, action);
                let mut d = Decision::answer(allowed, reason.clone());
                if !allowed {
                    d.facts.push(Fact::AuthorizationDenied {
                        team: team.as_str().into(),
                        action: action.as_str().into(),
                        reason: reason.unwrap_or_default().into(),
                        at: now,
                    });
                }
                d
            }
            None => Decision::answer(false, Some("unknown customer".to_owned())),
        },
        Input::Acknowledge {
            escalation_id,
            team,
            note,
        } => match state {
            Some(s) => decide_ack(model, s, escalation_id, team, note, now),
            None => Decision::refuse(
                Refusal::NotFound,
                format!("no escalation `{escalation_id}`: unknown customer"),
            ),
        },
    }
}
