//! Read-only questions about a customer: may a team act, may a message go
//! out, and the unified view that support reads instead of three systems.
//!
//! Owners, `allow`, `messages` and `suppress` are read only from the
//! customer's current states.

use serde::Serialize;

use super::fact::{Escalation, EscalationKind, Outcome, SlaEnd, escalation_id};
use super::input::Timer;
use super::model::{Duration, Model, RegionId, Severity, TeamId, in_words};
use super::state::{CustomerState, TimelineEntry, tier_threshold};
use super::time::Timestamp;

/// `authorize(customer, team, action)`: allowed when `action` is in
/// `allow[team]` of the current state of any region (docs/model.md, FAQ 33).
pub fn authorize(
    model: &Model,
    s: &CustomerState,
    team: &str,
    action: &str,
) -> (bool, Option<String>) {
    let Some(team_id) = model.team(team) else {
        return (
            false,
            Some(format!(
                "team `{team}` is not declared in the model; declared teams: {}",
                model.spec.teams.join(", ")
            )),
        );
    };
    for r in model.region_ids() {
        let state = model.state(r, s.core.region(r).state);
        if state
            .allow
            .iter()
            .any(|(t, actions)| *t == team_id && actions.iter().any(|a| a == action))
        {
            return (true, None);
        }
    }
    (
        false,
        Some(format!(
            "{team} may not {action} now: {}",
            where_and_who(model, s)
        )),
    )
}

/// `check_message(customer, class)`: allowed when some current state lists
/// the class in `messages` and none in `suppress`; fail closed.
pub fn check_message(model: &Model, s: &CustomerState, class: &str) -> (bool, Option<String>) {
    let Some(c) = model.class(class) else {
        return (
            false,
            Some(format!(
                "message class `{class}` is not declared in the model; declared classes: {}",
                model.spec.message_classes.join(", ")
            )),
        );
    };
    let mut allowed_by = None;
    for r in model.region_ids() {
        let state = model.state(r, s.core.region(r).state);
        if state.suppress.contains(&c) {
            return (
                false,
                Some(format!(
                    "{class} messages are suppressed while {} is {} (owner {})",
                    model.region(r).name,
                    state.name,
                    model.team_name(state.owner)
                )),
            );
        }
        if allowed_by.is_none() && state.messages.contains(&c) {
            allowed_by = Some(r);
        }
    }
    if allowed_by.is_some() {
        return (true, None);
    }
    let lists: Vec<String> = model
        .region_ids()
        .map(|r| {
            let state = model.state(r, s.core.region(r).state);
            let classes: Vec<&str> = state
                .messages
                .iter()
                .map(|m| model.class_name(*m))
                .collect();
            format!(
                "{}.{} allows {}",
                model.region(r).name,
                state.name,
                if classes.is_empty() {
                    "none".to_owned()
                } else {
                    classes.join(", ")
                }
            )
        })
        .collect();
    (
        false,
        Some(format!(
            "no current state allows {class} messages: {}",
            lists.join("; ")
        )),
    )
}

/// "lifecycle is active (owner success), billing is good_standing (owner billing), ..."
fn where_and_who(model: &Model, s: &CustomerState) -> String {
    let parts: Vec<String> = model
        .region_ids()
        .map(|r| {
            let state = model.state(r, s.core.region(r).state);
            format!(
                "{} is {} (owner {})",
                model.region(r).name,
                state.name,
                model.team_name(state.owner)
            )
        })
        .collect();
    parts.join(", ")
}

/// Region name -> current state name, in region order.
pub fn states(model: &Model, s: &CustomerState) -> Vec<(String, String)> {
    model
        .region_ids()
        .map(|r| {
            (
                model.region(r).name.clone(),
                model.state(r, s.core.region(r).state).name.clone(),
            )
        })
        .collect()
}

/// The owner of the lifecycle region's current state, or of the first
/// region's when no region is named `lifecycle`.
pub fn owner(model: &Model, s: &CustomerState) -> Option<TeamId> {
    let r = model
        .region_ids()
        .find(|r| model.region(*r).name == "lifecycle")
        .or_else(|| model.region_ids().next())?;
    Some(model.state(r, s.core.region(r).state).owner)
}

/// The unified view of one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerView {
    pub customer: String,
    pub market: String,
    pub model_version: u32,
    pub owner: Option<String>,
    pub regions: Vec<RegionView>,
    pub proofs: Vec<ProofView>,
    pub slas: Vec<SlaView>,
    pub escalations: Vec<EscalationView>,
    /// Newest first.
    pub timeline: Vec<TimelineView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionView {
    pub region: String,
    pub state: String,
    pub owner: String,
    /// When it entered the state; `None` while it has never moved.
    pub since: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProofView {
    pub proof: String,
    pub holds: bool,
    /// The event that established it, while it holds.
    pub established_by: Option<EventView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventView {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaView {
    pub sla: String,
    pub instance: u32,
    pub owner: String,
    pub handoff: String,
    pub started_at: Timestamp,
    /// Where the elapsed SLA time reaches `within`, assuming no further
    /// pause; `None` while paused, even after a breach (FAQ 43).
    pub deadline: Option<Timestamp>,
    pub breached: bool,
    pub next_tier: Option<NextTierView>,
    /// Whether the clock is stopped (the customer is in a pause state).
    pub paused: bool,
    /// The elapsed SLA time so far, in seconds (to the microsecond).
    pub elapsed: f64,
    /// `within - elapsed`, in seconds of SLA time; negative once breached.
    pub remaining: f64,
    /// The deadline computed at the start, on the calendar alone.
    pub original_deadline: Timestamp,
    /// The calendar the SLA runs on (the market's when it sets one).
    pub calendar: Option<String>,
    /// Since when it is paused, while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_since: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextTierView {
    pub tier: u16,
    /// `None` while the instance is paused before reaching it.
    pub at: Option<Timestamp>,
    pub team: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EscalationView {
    pub escalation_id: String,
    pub kind: EscalationKind,
    pub sla: String,
    pub tier: u16,
    /// Which occurrence of a repeating tier (in the id too; not in the
    /// JSON view, which predates it).
    #[serde(skip)]
    pub repeat: u32,
    pub team: String,
    pub severity: Severity,
    pub deadline: Timestamp,
    pub fired_at: Timestamp,
    pub late_attach: bool,
    pub acknowledged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineView {
    pub at: Timestamp,
    pub kind: TimelineKind,
    /// One line a person reads.
    pub summary: String,
    /// For events: the outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// For an ended SLA instance: `met`, `missed` or `cancelled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_outcome: Option<SlaEnd>,
    /// For an ended SLA instance: its elapsed SLA time, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a timeline entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineKind {
    Event,
    Denied,
    Escalation,
    SlaEnded,
    Acknowledged,
    Migrated,
}

impl TimelineKind {
    /// The lower-case word of every output.
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Event => "event",
            TimelineKind::Denied => "denied",
            TimelineKind::Escalation => "escalation",
            TimelineKind::SlaEnded => "sla_ended",
            TimelineKind::Acknowledged => "acknowledged",
            TimelineKind::Migrated => "migrated",
        }
    }
}

impl Serialize for TimelineKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Seconds, with the microseconds as decimals.
pub fn seconds(d: Duration) -> f64 {
    d.0 as f64 / Duration::MICROS_PER_SEC as f64
}

/// Builds the unified view at `now` (for the SLA clocks); `timeline_limit`
/// 0 means everything retained.
pub fn customer_view(
    model: &Model,
    s: &CustomerState,
    timeline_limit: usize,
    now: Timestamp,
) -> CustomerView {
    let regions = model
        .region_ids()
        .map(|r| region_view(model, s, r))
        .collect();
    let proofs = s
        .core
        .proofs
        .iter()
        .enumerate()
        .take(model.spec.proofs.len())
        .filter(|(_, p)| p.latest.is_some())
        .map(|(i, p)| ProofView {
            proof: model.spec.proofs[i].name.clone(),
            holds: p.holds(),
            established_by: p.by.as_ref().map(|e| EventView {
                id: e.id.to_string(),
                source: model.source_name(e.source).to_owned(),
                event_type: model.event_type(e.event_type).name.clone(),
                occurred_at: e.occurred_at,
            }),
        })
        .collect();
    let mut slas = Vec::new();
    let mut escalations = Vec::new();
    // A record may have more places than this binding of its version
    // (holes another node appended since): those hold nothing.
    for (i, slot) in s.core.slas.iter().enumerate().take(model.spec.slas.len()) {
        let Some(inst) = &slot.running else { continue };
        let id = super::model::SlaId(i as u16);
        let sla = model.sla_spec(id);
        let rules = &model.rules(s.market).slas[i];
        let paused = inst.paused();
        // The next tier: the earliest armed one, else (while paused) the
        // lowest threshold held by the pause, with no time.
        let armed = inst
            .next_timer(id)
            .filter(|t| t.tier != Timer::BREACH_MARK)
            .map(|t| (t.tier, Some(t.due)));
        let held = || {
            inst.tiers
                .iter()
                .enumerate()
                .filter(|(_, t)| t.held)
                .min_by_key(|(k, t)| tier_threshold(rules, *k, t.repeat))
                .map(|(k, _)| (k as u16, None))
        };
        let next_tier = armed.or_else(held).map(|(tier, at)| {
            let t = &sla.tiers[tier as usize];
            NextTierView {
                tier,
                at,
                team: model.team_name(t.notify).to_owned(),
                severity: t.severity,
            }
        });
        let elapsed = inst.elapsed(rules, now);
        slas.push(SlaView {
            sla: sla.name.clone(),
            instance: inst.number,
            owner: model.team_name(sla.owner).to_owned(),
            handoff: sla.handoff.clone(),
            started_at: inst.started_at,
            deadline: (!paused).then_some(inst.deadline),
            breached: inst.breached,
            next_tier,
            paused,
            elapsed: seconds(elapsed),
            remaining: seconds(Duration(rules.within.0.saturating_sub(elapsed.0))),
            original_deadline: inst.original_deadline,
            calendar: rules.calendar.as_ref().map(|c| c.name.clone()),
            paused_since: inst
                .pauses
                .last()
                .filter(|(_, to)| to.is_none())
                .map(|(from, _)| *from),
        });
        for f in &inst.fired {
            escalations.push(escalation_view(model, s, &f.escalation, f.acknowledged));
        }
    }
    let limit = if timeline_limit == 0 {
        usize::MAX
    } else {
        timeline_limit
    };
    let timeline = s
        .timeline
        .iter()
        .rev()
        .take(limit)
        .map(|e| timeline_view(model, s, e))
        .collect();
    CustomerView {
        customer: s.customer.to_string(),
        market: s.market_code.to_string(),
        model_version: s.model_version,
        owner: owner(model, s).map(|t| model.team_name(t).to_owned()),
        regions,
        proofs,
        slas,
        escalations,
        timeline,
    }
}

fn region_view(model: &Model, s: &CustomerState, r: RegionId) -> RegionView {
    let slot = s.core.region(r);
    let state = model.state(r, slot.state);
    RegionView {
        region: model.region(r).name.clone(),
        state: state.name.clone(),
        owner: model.team_name(state.owner).to_owned(),
        since: slot.since,
    }
}

/// An open escalation as the view and the APIs show it.
pub fn escalation_view(
    model: &Model,
    s: &CustomerState,
    e: &Escalation,
    acknowledged: bool,
) -> EscalationView {
    let sla = model.sla_spec(e.sla);
    EscalationView {
        escalation_id: e.id(&s.customer, &sla.name),
        kind: e.kind,
        sla: sla.name.clone(),
        tier: e.tier,
        repeat: e.repeat,
        team: model.team_name(e.team).to_owned(),
        severity: e.severity,
        deadline: e.deadline,
        fired_at: e.at,
        late_attach: e.late_attach,
        acknowledged,
    }
}

fn timeline_view(model: &Model, s: &CustomerState, entry: &TimelineEntry) -> TimelineView {
    let base = |kind, summary| TimelineView {
        at: entry.at(),
        kind,
        summary,
        outcome: None,
        reason: None,
        sla_outcome: None,
        elapsed: None,
    };
    match entry {
        TimelineEntry::Event {
            event,
            outcome,
            reason,
            ..
        } => TimelineView {
            outcome: Some(*outcome),
            reason: reason.as_deref().map(str::to_owned),
            ..base(
                TimelineKind::Event,
                format!(
                    "{} `{}` (occurred {}): {}",
                    model.event_type(event.event_type).qualified,
                    event.id,
                    event.occurred_at,
                    outcome.as_str()
                ),
            )
        },
        TimelineEntry::Denied {
            team,
            action,
            reason,
            ..
        } => TimelineView {
            reason: Some(reason.to_string()),
            ..base(
                TimelineKind::Denied,
                format!("{team} asked to {action}: denied"),
            )
        },
        TimelineEntry::Escalation(e) => {
            let sla = &model.sla_spec(e.sla).name;
            let what = match e.kind {
                EscalationKind::TierReached => "tier reached",
                EscalationKind::Breached => "breached",
                EscalationKind::Resolved => "resolved",
            };
            base(
                TimelineKind::Escalation,
                format!(
                    "{sla} tier {} {what}: {} ({}) [{}]",
                    e.tier,
                    model.team_name(e.team),
                    e.severity.as_str(),
                    e.id(&s.customer, sla)
                ),
            )
        }
        TimelineEntry::SlaEnded {
            sla,
            instance,
            end,
            elapsed,
            ..
        } => TimelineView {
            sla_outcome: Some(*end),
            elapsed: Some(seconds(*elapsed)),
            ..base(
                TimelineKind::SlaEnded,
                format!(
                    "{} instance {instance} ended: {} after {} of SLA time",
                    model.sla_spec(*sla).name,
                    end.as_str(),
                    in_words(*elapsed)
                ),
            )
        },
        TimelineEntry::Acknowledged {
            sla,
            instance,
            tier,
            repeat,
            team,
            ..
        } => base(
            TimelineKind::Acknowledged,
            format!(
                "{} acknowledged {}",
                model.team_name(*team),
                escalation_id(
                    &s.customer,
                    &model.sla_spec(*sla).name,
                    *instance,
                    *tier,
                    *repeat
                )
            ),
        ),
        TimelineEntry::Migrated { from, to, .. } => base(
            TimelineKind::Migrated,
            format!("migrated from model version {from} to version {to}"),
        ),
    }
}
