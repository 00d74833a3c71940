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

use super::calendar::SlaClock;
use super::fact::{Escalation, EscalationKind, EventRef, Fact, Outcome, SlaEnd};
use super::input::Timer;
use super::model::{
    Duration, EventTypeId, MarketId, Model, ProofId, RegionId, Severity, SlaId, SlaRules, SourceId,
    StateId, TeamId, Tier,
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
    /// When it fires next; `None` once fired (or skipped) for good, or
    /// while `held`.
    pub next: Option<Timestamp>,
    /// Which occurrence `next` is (repeating tiers count up from 0).
    pub repeat: u32,
    /// Pending, but the instance is paused before the elapsed SLA time
    /// reaches it: it gets a time again when the pause ends.
    pub held: bool,
}

impl TierSlot {
    /// Whether the tier may still fire (armed or held by a pause).
    pub fn pending(&self) -> bool {
        self.next.is_some() || self.held
    }
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
    /// Where the elapsed SLA time reaches `within`, with the pauses known
    /// (while paused: as last known before the pause).
    pub deadline: Timestamp,
    /// The same at the start, on the calendar alone (FAQ 43).
    pub original_deadline: Timestamp,
    /// Paused spans `[from, to)`, sorted and disjoint, none before the
    /// start; the last is open (`to` = `None`) while paused.
    pub pauses: Vec<(Timestamp, Option<Timestamp>)>,
    pub breached: bool,
    pub tiers: Vec<TierSlot>,
    /// The silent breach of an SLA with no `100%` tier, while pending.
    pub breach_mark: Option<Timestamp>,
    /// Its escalations, in firing order.
    pub fired: Vec<FiredEscalation>,
}

impl Instance {
    /// Whether the clock is stopped now.
    pub fn paused(&self) -> bool {
        self.pauses.last().is_some_and(|(_, to)| to.is_none())
    }

    /// The instance's clock: `E(t)` and its inverse.
    pub fn clock<'a>(&'a self, rules: &'a SlaRules) -> SlaClock<'a> {
        SlaClock {
            calendar: rules.calendar.as_deref(),
            start: self.started_at,
            pauses: &self.pauses,
        }
    }

    /// The elapsed SLA time at `t`.
    pub fn elapsed(&self, rules: &SlaRules, t: Timestamp) -> Duration {
        if rules.calendar.is_none() && self.pauses.is_empty() {
            return Duration((t.0.saturating_sub(self.started_at.0)).max(0));
        }
        self.clock(rules).elapsed(t)
    }

    /// Where the elapsed SLA time reaches `threshold`, given the pauses
    /// known; `None` while a pause holds it.
    pub fn instant_of(&self, rules: &SlaRules, threshold: Duration) -> Option<Timestamp> {
        if rules.calendar.is_none() && self.pauses.is_empty() {
            return Some(self.started_at + Duration(threshold.0.max(0)));
        }
        self.clock(rules).instant_of(threshold)
    }

    /// How a stop or cancel at `at` ends this instance (FAQ 45): cancelled,
    /// missed once a breach fired, else met iff `E(at) < within`.
    pub fn end_at(&self, rules: &SlaRules, cancel: bool, at: Timestamp) -> (SlaEnd, Duration) {
        let elapsed = self.elapsed(rules, at);
        let end = if cancel {
            SlaEnd::Cancelled
        } else if self.breached || elapsed >= rules.within {
            SlaEnd::Missed
        } else {
            SlaEnd::Met
        };
        (end, elapsed)
    }

    /// Gives every pending tier (and the deadline and the silent breach)
    /// the instant where the elapsed SLA time reaches it, as the pauses
    /// now stand. With `attached_at`, a tier strictly past then is skipped
    /// (a repeating one moves to its first occurrence not strictly past,
    /// keeping its repeat number), except the breach, which keeps its time
    /// so that it fires at once (late attach; FAQ 11, 25, 41).
    ///
    /// `known` is an instant already worked out for a threshold under the
    /// same pauses (the start's deadline): each threshold is worked out
    /// once, as the `100%` tier and the deadline share theirs.
    fn rearm(
        &mut self,
        rules: &SlaRules,
        tiers: &[Tier],
        attached_at: Option<Timestamp>,
        known: Option<(Duration, Timestamp)>,
    ) {
        let mut memo: Vec<(Duration, Option<Timestamp>)> = Vec::with_capacity(4);
        memo.extend(known.map(|(th, t)| (th, Some(t))));
        let mut at = |inst: &Instance, th: Duration| {
            if let Some((_, t)) = memo.iter().find(|(d, _)| *d == th) {
                return *t;
            }
            let t = inst.instant_of(rules, th);
            memo.push((th, t));
            t
        };
        let within = at(self, rules.within);
        if let Some(d) = within {
            self.deadline = d;
        }
        self.breach_mark = if rules.has_breach_tier || self.breached {
            None
        } else {
            within
        };
        // By index: each tier's new time reads the instance (its pauses)
        // while the slot is replaced.
        #[allow(clippy::needless_range_loop)]
        for i in 0..self.tiers.len() {
            if !self.tiers[i].pending() {
                continue;
            }
            let every = rules.tier_every[i].filter(|e| e.0 > 0);
            let mut repeat = self.tiers[i].repeat;
            let threshold = |k: u32| tier_threshold(rules, i, k);
            let mut due = at(self, threshold(repeat));
            if let (Some(att), Some(d)) = (attached_at, due)
                && d < att
                && !tiers[i].is_breach()
            {
                match every {
                    Some(every) => {
                        // The first occurrence not strictly past: from
                        // the elapsed time then, and one more if that
                        // one's instant is still before it.
                        let behind = (self.elapsed(rules, att).0 - threshold(repeat).0).max(0);
                        let k = behind / every.0 + i64::from(behind % every.0 != 0);
                        repeat = repeat.saturating_add(u32::try_from(k).unwrap_or(u32::MAX));
                        due = at(self, threshold(repeat));
                        if due.is_some_and(|d| d < att) {
                            repeat = repeat.saturating_add(1);
                            due = at(self, threshold(repeat));
                        }
                    }
                    None => {
                        self.tiers[i] = TierSlot {
                            next: None,
                            repeat,
                            held: false,
                        };
                        continue;
                    }
                }
            }
            self.tiers[i] = TierSlot {
                next: due,
                repeat,
                held: due.is_none(),
            };
        }
    }

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

/// The elapsed SLA time at which occurrence `repeat` of tier `tier` fires:
/// its offset, plus `repeat` periods for a re-escalation (saturating).
pub fn tier_threshold(rules: &SlaRules, tier: usize, repeat: u32) -> Duration {
    let first = rules.tier_offsets[tier];
    match rules.tier_every[tier] {
        Some(every) if repeat > 0 => Duration(
            first
                .0
                .saturating_add(every.0.saturating_mul(i64::from(repeat))),
        ),
        _ => first,
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
    /// For an SLA with `pause_in`: per region, the spans in which the
    /// customer was in one of its pause states there, `[entered, left)`,
    /// the last of a region open while it is (creation enters the initial
    /// states, FAQ 40). A region's moments only move forward, so its spans
    /// come in order; the SLA's pause is their union (FAQ 39), whatever
    /// order the regions' events arrived in. Kept whether an instance runs
    /// or not, so that a late start takes the pauses since its moment; at
    /// most [`PAUSE_LOG_CAP`] spans, the oldest dropped first.
    pub pause_log: Vec<RegionPause>,
}

/// One region's pause span for an SLA: `(region, from, to)`.
pub type RegionPause = (RegionId, Timestamp, Option<Timestamp>);

/// A paused span `[from, to)`; `to` is `None` while it lasts.
pub type PauseSpan = (Timestamp, Option<Timestamp>);

/// How many pause spans an SLA's log keeps: a start later than the
/// oldest kept span's end by more than this many pauses is rare enough
/// that it may see fewer pauses than happened.
pub const PAUSE_LOG_CAP: usize = 16;

/// The instance's pauses from `start` on: the union of the regions'
/// spans, clipped to the start, sorted and disjoint (touching spans are
/// one).
pub fn pauses_since(log: &[RegionPause], start: Timestamp) -> Vec<PauseSpan> {
    let mut spans: Vec<PauseSpan> = log
        .iter()
        .filter(|(_, _, to)| to.is_none_or(|to| to > start))
        .map(|(_, from, to)| ((*from).max(start), *to))
        .collect();
    spans.sort_by_key(|(from, _)| *from);
    let mut out: Vec<PauseSpan> = Vec::with_capacity(spans.len());
    for (from, to) in spans {
        match out.last_mut() {
            Some((_, last)) if last.is_none_or(|l| l >= from) => {
                *last = match (*last, to) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            _ => out.push((from, to)),
        }
    }
    out
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

    /// Takes the running instance's pauses from its SLA's pause log again
    /// and re-arms its tiers.
    fn repause(
        &mut self,
        model: &Model,
        market: MarketId,
        sla: SlaId,
        instance: u32,
        attached_at: Option<Timestamp>,
    ) {
        let slot = &mut self.slas[sla.idx()];
        let Some(inst) = slot.running.as_mut().filter(|i| i.number == instance) else {
            return;
        };
        inst.pauses = pauses_since(&slot.pause_log, inst.started_at);
        let rules = &model.rules(market).slas[sla.idx()];
        inst.rearm(rules, &model.sla_spec(sla).tiers, attached_at, None);
    }

    /// Sizes every table to `model`'s (a migration's target): names it
    /// adds start as a new customer's would (a new region in its initial
    /// state); names it lacks are dropped, which the migration's
    /// eligibility allows only where nothing is held there (no region
    /// state, held proof or running instance; an ended SLA's count and
    /// last outcome go).
    fn fit(&mut self, model: &Model) {
        let regions = &model.spec.regions;
        self.regions.truncate(regions.len());
        for r in &regions[self.regions.len()..] {
            self.regions.push(RegionSlot {
                state: r.initial,
                since: None,
            });
        }
        self.proofs
            .resize(model.spec.proofs.len(), ProofSlot::default());
        self.slas.resize(model.spec.slas.len(), SlaSlot::default());
        self.last_seen.resize(model.spec.events.len(), None);
    }

    /// Lengthens the per-name tables to `model`'s, never shortening them:
    /// a customer written when its version's tables were shorter (the
    /// holes for names later versions added came after: see
    /// [`crate::engine::model::Retired`]) reads the new places as a new
    /// customer would (nothing held, nothing running).
    #[inline]
    pub fn grow(&mut self, model: &Model) {
        let spec = &model.spec;
        if self.proofs.len() < spec.proofs.len() {
            self.proofs.resize(spec.proofs.len(), ProofSlot::default());
        }
        if self.slas.len() < spec.slas.len() {
            self.slas.resize(spec.slas.len(), SlaSlot::default());
        }
        if self.last_seen.len() < spec.events.len() {
            self.last_seen.resize(spec.events.len(), None);
        }
    }

    #[inline]
    pub fn holds(&self, p: ProofId) -> bool {
        self.proofs.get(p.idx()).is_some_and(ProofSlot::holds)
    }

    #[inline]
    pub fn region(&self, r: RegionId) -> RegionSlot {
        self.regions[r.idx()]
    }

    pub fn running(&self, sla: SlaId) -> Option<&Instance> {
        self.slas.get(sla.idx())?.running.as_ref()
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
        self.grow(model);
        match fact {
            Fact::Created { at, .. } => {
                // FAQ 40: creation enters the initial states.
                for (i, sr) in model.rules(market).slas.iter().enumerate() {
                    for (r, s) in &sr.pause_in {
                        let log = &mut self.slas[i].pause_log;
                        if self.regions[r.idx()].state == *s && !log.iter().any(|p| p.0 == *r) {
                            log.push((*r, *at, None));
                        }
                    }
                }
            }
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
                let from = self.regions[region.idx()].state;
                self.regions[region.idx()] = RegionSlot {
                    state: *to,
                    since: Some(*since),
                };
                for (i, sr) in model.rules(market).slas.iter().enumerate() {
                    let pauses = |s: StateId| sr.pause_in.contains(&(*region, s));
                    let log = &mut self.slas[i].pause_log;
                    match (pauses(from), pauses(*to)) {
                        (false, true) => {
                            log.push((*region, *since, None));
                            if log.len() > PAUSE_LOG_CAP {
                                log.remove(0);
                            }
                        }
                        (true, false) => {
                            if let Some(open) = log
                                .iter_mut()
                                .rev()
                                .find(|(r, _, to)| r == region && to.is_none())
                            {
                                open.2 = Some(*since);
                            }
                        }
                        _ => {}
                    }
                }
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
                let mut inst = Instance {
                    number: *instance,
                    started_at: *started_at,
                    deadline: *deadline,
                    original_deadline: *deadline,
                    pauses: pauses_since(&self.slas[sla.idx()].pause_log, *started_at),
                    breached: false,
                    tiers: vec![
                        TierSlot {
                            next: None,
                            repeat: 0,
                            held: true,
                        };
                        spec.tiers.len()
                    ],
                    breach_mark: None,
                    fired: Vec::new(),
                };
                // Without pauses, the deadline is the original one the
                // fact carries.
                let known = inst.pauses.is_empty().then_some((rules.within, *deadline));
                inst.rearm(rules, &spec.tiers, Some(*attached_at), known);
                let slot = &mut self.slas[sla.idx()];
                slot.started = *instance;
                slot.running = Some(inst);
            }
            // The pause log (kept by `RegionMoved`) has changed the
            // instance's pauses: take them again and re-arm its tiers; a
            // resumption re-arms as of `attached_at` (FAQ 41). The `at` of
            // each is the moment the clock stopped or ran again, for the
            // history.
            Fact::SlaPaused { sla, instance, .. } => {
                self.repause(model, market, *sla, *instance, None);
            }
            Fact::SlaResumed {
                sla,
                instance,
                attached_at,
                ..
            } => {
                self.repause(model, market, *sla, *instance, Some(*attached_at));
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
                        let rules = &model.rules(market).slas[esc.sla.idx()];
                        let tier = esc.tier as usize;
                        let slot = match rules.tier_every[tier] {
                            Some(every) if every.0 > 0 => {
                                let repeat = esc.repeat.saturating_add(1);
                                let next =
                                    inst.instant_of(rules, tier_threshold(rules, tier, repeat));
                                TierSlot {
                                    next,
                                    repeat,
                                    held: next.is_none(),
                                }
                            }
                            _ => TierSlot {
                                next: None,
                                repeat: esc.repeat,
                                held: false,
                            },
                        };
                        inst.tiers[tier] = slot;
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
                ..
            } => {
                let slot = &mut self.slas[sla.idx()];
                if slot.running.as_ref().is_some_and(|i| i.number == *instance) {
                    slot.running = None;
                }
                slot.last_end = Some((*instance, *end, *at));
            }
            Fact::AuthorizationDenied { .. } => {}
            // `model` is the target version's: every running instance is
            // re-armed by its rules as of the migration (fired tiers are
            // not pending, so they stay fired; the start and the pauses
            // are kept).
            Fact::Migrated { at, .. } => {
                self.fit(model);
                for (i, slot) in self.slas.iter_mut().enumerate() {
                    let Some(inst) = slot.running.as_mut() else {
                        continue;
                    };
                    let sla = SlaId(i as u16);
                    let rules = &model.rules(market).slas[i];
                    let mut calendar_only = inst.clone();
                    calendar_only.pauses.clear();
                    if let Some(d) = calendar_only.instant_of(rules, rules.within) {
                        inst.original_deadline = d;
                    }
                    inst.rearm(rules, &model.sla_spec(sla).tiers, Some(*at), None);
                }
            }
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
        /// The elapsed SLA time at `at`.
        elapsed: Duration,
    },
    Acknowledged {
        at: Timestamp,
        sla: SlaId,
        instance: u32,
        tier: u16,
        repeat: u32,
        team: TeamId,
    },
    /// The customer was re-pinned to another model version.
    Migrated {
        at: Timestamp,
        from: u32,
        to: u32,
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
            TimelineEntry::Migrated { at, .. } => *at,
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
        if let Fact::Migrated { to, .. } = fact {
            self.model_version = *to;
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
                elapsed,
            } => self.push_timeline(TimelineEntry::SlaEnded {
                at: *at,
                sla: *sla,
                instance: *instance,
                end: *end,
                elapsed: *elapsed,
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
            Fact::Migrated { from, to, at } => self.push_timeline(TimelineEntry::Migrated {
                at: *at,
                from: *from,
                to: *to,
            }),
            Fact::Created { .. }
            | Fact::ProofEstablished { .. }
            | Fact::ProofRevoked { .. }
            | Fact::RegionMoved { .. }
            | Fact::RegionRenewed { .. }
            | Fact::SlaStarted { .. }
            | Fact::SlaPaused { .. }
            | Fact::SlaResumed { .. }
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
        self.core.last_seen.get(e.idx()).copied().flatten()
    }
}
