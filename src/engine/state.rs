//! A customer's state, and `apply`: the only code that changes it.
//!
//! The state is the fold of the customer's facts. [`Core`] is the part
//! `decide` reasons about (regions, proofs, SLA instances, the latest
//! `occurred_at` per event type); `decide` works on a copy of it and folds
//! its own facts in as it goes, through the same [`Core::apply`], so there
//! is one definition of what each fact does.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::fact::{Escalation, EscalationKind, EventRef, Fact, Outcome, SlaEnd};
use super::input::Timer;
use super::model::{
    EventTypeId, MarketId, Model, ProofId, RegionId, Severity, SlaId, SourceId, StateId, TeamId,
};
use super::time::Timestamp;

/// How many recent entries a customer's timeline keeps. The facts are the
/// full history; the timeline is what support needs at a glance.
pub const TIMELINE_CAP: usize = 64;

/// How many resolved escalations are remembered, so that a late
/// acknowledgement of one is accepted.
pub const RESOLVED_CAP: usize = 32;

/// Where a region stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionSlot {
    pub state: StateId,
    /// When it entered its state; `None` while it has never moved.
    pub since: Option<Timestamp>,
}

/// One proof of one customer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProofSlot {
    /// The event that established it, while it holds.
    pub by: Option<EventRef>,
    /// The latest `occurred_at` that established or revoked it: an older
    /// event arriving later does not override it.
    pub latest: Option<Timestamp>,
}

impl ProofSlot {
    #[inline]
    pub fn holds(&self) -> bool {
        self.by.is_some()
    }
}

/// Progress of one tier of a running SLA instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierSlot {
    /// When it fires next; `None` once fired (or skipped) for good.
    pub next: Option<Timestamp>,
    /// Which occurrence `next` is (repeating tiers count up from 0).
    pub repeat: u32,
}

/// An escalation an instance fired, until the instance ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredEscalation {
    pub escalation: Escalation,
    pub acknowledged: bool,
}

/// A running SLA instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub number: u32,
    pub started_at: Timestamp,
    pub deadline: Timestamp,
    pub breached: bool,
    pub tiers: Vec<TierSlot>,
    /// The silent breach of an SLA with no `100%` tier, while pending.
    pub breach_mark: Option<Timestamp>,
    /// Its escalations, in firing order.
    pub fired: Vec<FiredEscalation>,
}

impl Instance {
    /// The next timer of this instance: the earliest pending tier (ties by
    /// tier number), or the silent breach.
    pub fn next_timer(&self, sla: SlaId) -> Option<Timer> {
        let tiers = self.tiers.iter().enumerate().filter_map(|(i, t)| {
            t.next.map(|due| Timer {
                due,
                sla,
                tier: i as u16,
                repeat: t.repeat,
                instance: self.number,
            })
        });
        let mark = self.breach_mark.map(|due| Timer {
            due,
            sla,
            tier: Timer::BREACH_MARK,
            repeat: 0,
            instance: self.number,
        });
        tiers.chain(mark).min_by_key(|t| (t.due, t.tier))
    }
}

/// One SLA of one customer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlaSlot {
    /// How many instances ever started (the last one's number).
    pub started: u32,
    pub running: Option<Instance>,
    /// How the last instance ended, and when.
    pub last_end: Option<(u32, SlaEnd, Timestamp)>,
}

/// What `decide` reasons about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Core {
    pub regions: Vec<RegionSlot>,
    pub proofs: Vec<ProofSlot>,
    pub slas: Vec<SlaSlot>,
    /// Per event type, the latest `occurred_at` seen.
    pub last_seen: Vec<Option<Timestamp>>,
}

impl Core {
    /// A customer that has not moved yet: every region in its initial state.
    pub fn new(model: &Model) -> Core {
        Core {
            regions: model
                .spec
                .regions
                .iter()
                .map(|r| RegionSlot {
                    state: r.initial,
                    since: None,
                })
                .collect(),
            proofs: vec![ProofSlot::default(); model.spec.proofs.len()],
            slas: vec![SlaSlot::default(); model.spec.slas.len()],
            last_seen: vec![None; model.spec.events.len()],
        }
    }

    #[inline]
    pub fn holds(&self, p: ProofId) -> bool {
        self.proofs[p.idx()].holds()
    }

    #[inline]
    pub fn region(&self, r: RegionId) -> RegionSlot {
        self.regions[r.idx()]
    }

    pub fn running(&self, sla: SlaId) -> Option<&Instance> {
        self.slas[sla.idx()].running.as_ref()
    }

    /// A firing of the running instance `instance` of `sla`, by tier and
    /// repeat; `None` once the instance ended (its escalations resolved).
    pub fn fired(
        &self,
        sla: SlaId,
        instance: u32,
        tier: u16,
        repeat: u32,
    ) -> Option<&FiredEscalation> {
        self.running(sla)
            .filter(|i| i.number == instance)?
            .fired
            .iter()
            .find(|x| x.escalation.tier == tier && x.escalation.repeat == repeat)
    }

    /// Every pending timer, one per running instance, in SLA order.
    pub fn timers(&self) -> impl Iterator<Item = Timer> + '_ {
        self.slas.iter().enumerate().filter_map(|(i, s)| {
            s.running
                .as_ref()
                .and_then(|inst| inst.next_timer(SlaId(i as u16)))
        })
    }

    /// Folds one fact in. `market` selects the SLA rules (tier offsets).
    pub fn apply(&mut self, model: &Model, market: MarketId, fact: &Fact) {
        match fact {
            Fact::Created { .. } => {}
            Fact::EventRecorded { event, .. } => {
                let slot = &mut self.last_seen[event.event_type.idx()];
                *slot = Some(slot.map_or(event.occurred_at, |t| t.max(event.occurred_at)));
            }
            Fact::ProofEstablished { proof, by } => {
                let slot = &mut self.proofs[proof.idx()];
                slot.latest = Some(by.occurred_at);
                slot.by = Some(by.clone());
            }
            Fact::ProofRevoked { proof, at, .. } => {
                let slot = &mut self.proofs[proof.idx()];
                slot.latest = Some(*at);
                slot.by = None;
            }
            Fact::RegionMoved {
                region, to, since, ..
            } => {
                self.regions[region.idx()] = RegionSlot {
                    state: *to,
                    since: Some(*since),
                };
            }
            Fact::RegionRenewed { region, since } => {
                self.regions[region.idx()].since = Some(*since);
            }
            Fact::SlaStarted {
                sla,
                instance,
                started_at,
                deadline,
                attached_at,
            } => {
                let rules = &model.rules(market).slas[sla.idx()];
                let spec = model.sla_spec(*sla);
                let tiers = spec
                    .tiers
                    .iter()
                    .enumerate()
                    .map(|(i, tier)| {
                        let first = *started_at + rules.tier_offsets[i];
                        if first >= *attached_at || tier.is_breach() {
                            return TierSlot {
                                next: Some(first),
                                repeat: 0,
                            };
                        }
                        match rules.tier_every[i] {
                            Some(every) if every.0 > 0 => {
                                // The first occurrence not strictly past.
                                // Saturating: instants near the ends of
                                // the valid range, or a long `every`, must
                                // not overflow.
                                let behind = attached_at.0.saturating_sub(first.0).unsigned_abs();
                                let k = behind.div_ceil(every.0.unsigned_abs());
                                let step =
                                    i64::try_from(k).unwrap_or(i64::MAX).saturating_mul(every.0);
                                TierSlot {
                                    next: Some(Timestamp(first.0.saturating_add(step))),
                                    repeat: u32::try_from(k).unwrap_or(u32::MAX),
                                }
                            }
                            _ => TierSlot {
                                next: None,
                                repeat: 0,
                            },
                        }
                    })
                    .collect();
                let slot = &mut self.slas[sla.idx()];
                slot.started = *instance;
                slot.running = Some(Instance {
                    number: *instance,
                    started_at: *started_at,
                    deadline: *deadline,
                    breached: false,
                    tiers,
                    breach_mark: (!rules.has_breach_tier).then_some(*deadline),
                    fired: Vec::new(),
                });
            }
            Fact::Escalated(esc) => {
                let Some(inst) = self.slas[esc.sla.idx()].running.as_mut() else {
                    return;
                };
                if inst.number != esc.instance {
                    return;
                }
                match esc.kind {
                    EscalationKind::TierReached | EscalationKind::Breached => {
                        let every =
                            model.rules(market).slas[esc.sla.idx()].tier_every[esc.tier as usize];
                        let slot = &mut inst.tiers[esc.tier as usize];
                        *slot = match every {
                            Some(every) if every.0 > 0 => TierSlot {
                                next: Some(esc.due + every),
                                repeat: esc.repeat.saturating_add(1),
                            },
                            _ => TierSlot {
                                next: None,
                                repeat: esc.repeat,
                            },
                        };
                        if esc.kind == EscalationKind::Breached {
                            inst.breached = true;
                        }
                        inst.fired.push(FiredEscalation {
                            escalation: esc.clone(),
                            acknowledged: false,
                        });
                    }
                    EscalationKind::Resolved => {}
                }
            }
            Fact::Breached { sla, instance, .. } => {
                if let Some(inst) = self.slas[sla.idx()].running.as_mut()
                    && inst.number == *instance
                {
                    inst.breached = true;
                    inst.breach_mark = None;
                }
            }
            Fact::SlaEnded {
                sla,
                instance,
                end,
                at,
            } => {
                let slot = &mut self.slas[sla.idx()];
                if slot.running.as_ref().is_some_and(|i| i.number == *instance) {
                    slot.running = None;
                }
                slot.last_end = Some((*instance, *end, *at));
            }
            Fact::AuthorizationDenied { .. } => {}
            Fact::Acknowledged {
                sla,
                instance,
                tier,
                repeat,
                ..
            } => {
                if let Some(inst) = self.slas[sla.idx()].running.as_mut()
                    && inst.number == *instance
                {
                    for f in &mut inst.fired {
                        if f.escalation.tier == *tier && f.escalation.repeat == *repeat {
                            f.acknowledged = true;
                        }
                    }
                }
            }
        }
    }
}

/// `(source, id)` pairs of events this customer has seen, with when each
/// arrived: the idempotency keys. Keyed by id so that a lookup borrows the
/// incoming `&str`; the id is shared with the event's other records. Keys
/// older than the node's retention window are forgotten
/// ([`SeenKeys::forget_before`]), so a customer's record does not grow with
/// its history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeenKeys {
    by_id: FxHashMap<Arc<str>, Sources>,
}

/// The sources that sent one id, with arrival times: almost always one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sources {
    One([(SourceId, Timestamp); 1]),
    Many(Vec<(SourceId, Timestamp)>),
}

impl Sources {
    fn as_slice(&self) -> &[(SourceId, Timestamp)] {
        match self {
            Sources::One(x) => x,
            Sources::Many(v) => v,
        }
    }
}

impl SeenKeys {
    pub fn contains(&self, source: SourceId, id: &str) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|s| s.as_slice().iter().any(|(x, _)| *x == source))
    }

    /// Remembers `(source, id)` as received at `at` (the first arrival
    /// counts; a key already known keeps its time).
    pub fn insert(&mut self, source: SourceId, id: &Arc<str>, at: Timestamp) {
        match self.by_id.get_mut(&**id) {
            Some(s) if s.as_slice().iter().any(|(x, _)| *x == source) => {}
            Some(Sources::One([first])) => {
                let first = *first;
                self.by_id
                    .insert(id.clone(), Sources::Many(vec![first, (source, at)]));
            }
            Some(Sources::Many(v)) => v.push((source, at)),
            None => {
                self.by_id.insert(id.clone(), Sources::One([(source, at)]));
            }
        }
    }

    /// Forgets keys received strictly before `t`; returns how many.
    pub fn forget_before(&mut self, t: Timestamp) -> usize {
        let before = self.len();
        self.by_id.retain(|_, s| {
            match s {
                Sources::One([(_, at)]) => return *at >= t,
                Sources::Many(v) => v.retain(|(_, at)| *at >= t),
            }
            !s.as_slice().is_empty()
        });
        before - self.len()
    }

    pub fn len(&self) -> usize {
        self.by_id.values().map(|s| s.as_slice().len()).sum()
    }

    /// Every event id with the sources that sent it and when (each in the
    /// order first seen), in no particular order of ids. For the codec.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[(SourceId, Timestamp)])> + '_ {
        self.by_id.iter().map(|(id, s)| (&**id, s.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// A line of the customer's recent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineEntry {
    Event {
        received_at: Timestamp,
        event: EventRef,
        outcome: Outcome,
        reason: Option<Box<str>>,
    },
    Denied {
        at: Timestamp,
        team: Box<str>,
        action: Box<str>,
        reason: Box<str>,
    },
    Escalation(Escalation),
    SlaEnded {
        at: Timestamp,
        sla: SlaId,
        instance: u32,
        end: SlaEnd,
    },
    Acknowledged {
        at: Timestamp,
        sla: SlaId,
        instance: u32,
        tier: u16,
        repeat: u32,
        team: TeamId,
    },
}

impl TimelineEntry {
    /// When it happened (arrival, for events).
    pub fn at(&self) -> Timestamp {
        match self {
            TimelineEntry::Event { received_at, .. } => *received_at,
            TimelineEntry::Denied { at, .. } => *at,
            TimelineEntry::Escalation(e) => e.at,
            TimelineEntry::SlaEnded { at, .. } => *at,
            TimelineEntry::Acknowledged { at, .. } => *at,
        }
    }
}

/// A resolved escalation, remembered so that a late acknowledgement of it
/// is still accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEscalation {
    pub sla: SlaId,
    pub instance: u32,
    pub tier: u16,
    pub repeat: u32,
    pub team: TeamId,
    pub severity: Severity,
}

/// Everything known about one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerState {
    pub customer: Box<str>,
    /// Set by the `Created` fact; `false` for a customer not yet created.
    pub exists: bool,
    pub market: MarketId,
    /// The market code as the first event gave it.
    pub market_code: Box<str>,
    /// The model version the customer started on.
    pub model_version: u32,
    pub created_at: Timestamp,
    pub core: Core,
    pub seen: SeenKeys,
    /// Newest last; at most [`TIMELINE_CAP`] entries.
    pub timeline: VecDeque<TimelineEntry>,
    /// Newest last; at most [`RESOLVED_CAP`] entries.
    pub resolved: VecDeque<ResolvedEscalation>,
}

impl CustomerState {
    /// A customer about to be created by its first event's facts.
    pub fn empty(model: &Model, customer: &str) -> CustomerState {
        CustomerState {
            customer: customer.into(),
            exists: false,
            market: MarketId(0),
            market_code: "".into(),
            model_version: model.spec.version,
            created_at: Timestamp(0),
            core: Core::new(model),
            seen: SeenKeys::default(),
            timeline: VecDeque::new(),
            resolved: VecDeque::new(),
        }
    }

    /// Every pending timer of this customer.
    pub fn timers(&self) -> impl Iterator<Item = Timer> + '_ {
        self.core.timers()
    }

    /// Folds one fact into the state: `apply(state, fact)`.
    pub fn apply(&mut self, model: &Model, fact: &Fact) {
        if let Fact::Created {
            market,
            market_code,
            model_version,
            at,
        } = fact
        {
            self.exists = true;
            self.market = *market;
            self.market_code = market_code.clone();
            self.model_version = *model_version;
            self.created_at = *at;
        }
        if let Fact::Escalated(e) = fact
            && e.kind == EscalationKind::Resolved
        {
            self.remember_resolved(e);
        }
        self.core.apply(model, self.market, fact);
        match fact {
            Fact::EventRecorded {
                event,
                received_at,
                outcome,
                reason,
            } => {
                self.seen.insert(event.source, &event.id, *received_at);
                self.push_timeline(TimelineEntry::Event {
                    received_at: *received_at,
                    event: event.clone(),
                    outcome: *outcome,
                    reason: reason.clone(),
                });
            }
            Fact::AuthorizationDenied {
                team,
                action,
                reason,
                at,
            } => self.push_timeline(TimelineEntry::Denied {
                at: *at,
                team: team.clone(),
                action: action.clone(),
                reason: reason.clone(),
            }),
            Fact::Escalated(e) => self.push_timeline(TimelineEntry::Escalation(e.clone())),
            Fact::SlaEnded {
                sla,
                instance,
                end,
                at,
            } => self.push_timeline(TimelineEntry::SlaEnded {
                at: *at,
                sla: *sla,
                instance: *instance,
                end: *end,
            }),
            Fact::Acknowledged {
                sla,
                instance,
                tier,
                repeat,
                team,
                at,
                ..
            } => self.push_timeline(TimelineEntry::Acknowledged {
                at: *at,
                sla: *sla,
                instance: *instance,
                tier: *tier,
                repeat: *repeat,
                team: *team,
            }),
            Fact::Created { .. }
            | Fact::ProofEstablished { .. }
            | Fact::ProofRevoked { .. }
            | Fact::RegionMoved { .. }
            | Fact::RegionRenewed { .. }
            | Fact::SlaStarted { .. }
            | Fact::Breached { .. } => {}
        }
    }

    fn push_timeline(&mut self, entry: TimelineEntry) {
        if self.timeline.len() == TIMELINE_CAP {
            self.timeline.pop_front();
        }
        self.timeline.push_back(entry);
    }

    fn remember_resolved(&mut self, e: &Escalation) {
        if self.resolved.len() == RESOLVED_CAP {
            self.resolved.pop_front();
        }
        self.resolved.push_back(ResolvedEscalation {
            sla: e.sla,
            instance: e.instance,
            tier: e.tier,
            repeat: e.repeat,
            team: e.team,
            severity: e.severity,
        });
    }

    /// The event type whose latest occurrence this customer has seen.
    pub fn last_seen(&self, e: EventTypeId) -> Option<Timestamp> {
        self.core.last_seen[e.idx()]
    }
}
