//! `decide`: what an input means for a customer, as facts.
//!
//! An event goes through docs/model.md's steps in order (malformed, unknown,
//! duplicate, proofs, `on` transitions, automatic transitions, SLAs) on a
//! copy of the customer's [`Core`]; each fact is folded into that copy as it
//! is found, through the same `apply` the caller will use, so later steps
//! see earlier ones. Settled readings of the fine points are in
//! `docs/model.md` ("Settled readings"); comments cite them as "FAQ n".

use super::fact::{Escalation, EscalationKind, EventRef, Fact, Outcome, SlaEnd};
use super::input::{Event, Input, Limits, Malformed, MalformedKind, Timer};
use super::model::{MarketId, MarketRules, Model, ProofId, RegionId, SlaId, StateId};
use super::state::{Core, CustomerState};
use super::time::Timestamp;
use super::view;

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

/// docs/model.md step 1, data half: refuse what is malformed as data. The
/// bounds on `occurred_at` are relative to `now` (the node's clock, or a
/// step's `at` in `simulate`).
pub fn check_malformed(limits: &Limits, e: &Event, now: Timestamp) -> Result<(), Malformed> {
    for (what, value) in [
        ("id", &e.id),
        ("source", &e.source),
        ("type", &e.event_type),
        ("customer id", &e.customer),
    ] {
        if value.is_empty() {
            return Err(Malformed::new(
                MalformedKind::Empty,
                format!("the event's {what} is empty: set it"),
            ));
        }
        let chars = value.chars().count();
        if chars > limits.max_len {
            return Err(Malformed::new(
                MalformedKind::TooLong,
                format!(
                    "the event's {what} is {chars} characters long; at most {} are allowed",
                    limits.max_len
                ),
            ));
        }
        if value.chars().any(is_control) {
            return Err(Malformed::new(
                MalformedKind::ControlCharacter,
                format!("the event's {what} contains a control character; remove it"),
            ));
        }
    }
    if e.market.chars().count() > limits.max_len {
        return Err(Malformed::new(
            MalformedKind::TooLong,
            format!(
                "the event's market is longer than {} characters",
                limits.max_len
            ),
        ));
    }
    if e.market.chars().any(is_control) {
        return Err(Malformed::new(
            MalformedKind::ControlCharacter,
            "the event's market contains a control character; remove it",
        ));
    }
    if !e.occurred_at.is_valid() {
        return Err(Malformed::new(
            MalformedKind::OccurredAtOutOfRange,
            format!(
                "occurred_at is outside the valid Timestamp range {}; send the instant the event happened",
                Timestamp::VALID_RANGE
            ),
        ));
    }
    if e.occurred_at > now + limits.max_future {
        return Err(Malformed::new(
            MalformedKind::OccurredAtFuture,
            format!(
                "occurred_at {} is more than {} after the node's clock (max_future); \
                 the node's clock reads {now}: check the sender's clock",
                e.occurred_at, limits.max_future
            ),
        ));
    }
    if e.occurred_at < now - limits.max_past {
        return Err(Malformed::new(
            MalformedKind::OccurredAtPast,
            format!(
                "occurred_at {} is more than {} before the node's clock (max_past); \
                 the node's clock reads {now}: check that the sender sets occurred_at to when \
                 the event happened (not a zero or default value), or raise max_past in the \
                 node's config to accept older events",
                e.occurred_at, limits.max_past
            ),
        ));
    }
    Ok(())
}

/// U+0000–U+001F and U+007F–U+009F (FAQ 17).
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

fn decide_event(
    model: &Model,
    limits: &Limits,
    state: Option<&CustomerState>,
    ev: &Event,
    now: Timestamp,
) -> Decision {
    if let Err(malformed) = check_malformed(limits, ev, now) {
        return Decision::refused(Outcome::Rejected, malformed.message);
    }
    let Some(source) = model.source(&ev.source) else {
        return Decision::refused(
            Outcome::Rejected,
            format!(
                "unknown source `{}`: the model's sources are {}",
                ev.source,
                model.spec.sources.join(", ")
            ),
        );
    };
    let Some(event_type) = model.event(source, &ev.event_type) else {
        let known: Vec<&str> = model
            .spec
            .events
            .iter()
            .filter(|e| e.source == source)
            .map(|e| e.name.as_str())
            .collect();
        return Decision::refused(
            Outcome::Rejected,
            format!(
                "source `{}` does not send `{}` in this model; its events are {}",
                ev.source,
                ev.event_type,
                known.join(", ")
            ),
        );
    };
    let market = match state {
        None => {
            if ev.market.is_empty() {
                return Decision::refused(
                    Outcome::Rejected,
                    format!(
                        "the first event of customer `{}` has no market: set `market` on it",
                        ev.customer
                    ),
                );
            }
            match model.market(&ev.market) {
                Some(m) => m,
                None => {
                    let names: Vec<&str> =
                        model.spec.markets.iter().map(|m| m.name.as_str()).collect();
                    return Decision::refused(
                        Outcome::Rejected,
                        format!(
                            "market `{}` is not declared in the model; declared markets: {}",
                            ev.market,
                            names.join(", ")
                        ),
                    );
                }
            }
        }
        Some(s) => {
            if !ev.market.is_empty() && *ev.market != *s.market_code {
                return Decision::refused(
                    Outcome::Rejected,
                    format!(
                        "customer `{}` is in market {}, not {}: a customer's market does not change",
                        ev.customer, s.market_code, ev.market
                    ),
                );
            }
            s.market
        }
    };
    if let Some(s) = state
        && s.seen.contains(source, &ev.id)
    {
        return Decision::refused(
            Outcome::Duplicate,
            format!(
                "event `{}` from {} was already received for this customer",
                ev.id, ev.source
            ),
        );
    }

    let event = EventRef {
        source,
        event_type,
        id: ev.id.as_str().into(),
        occurred_at: ev.occurred_at,
    };
    let mut w = Work::new(model, market, state, now);
    if state.is_none() {
        w.emit(Fact::Created {
            market,
            market_code: ev.market.as_str().into(),
            model_version: model.spec.version,
            at: ev.occurred_at,
        });
        w.changed = true;
    }
    w.proofs(&event);
    let report = w.on_transitions(&event);
    w.automatic(event.occurred_at);
    w.slas(&event, state.is_none());

    let outcome = if w.changed {
        Outcome::Applied
    } else if !report.blocked.is_empty() {
        Outcome::Rejected
    } else if !report.stale.is_empty() {
        Outcome::Stale
    } else {
        Outcome::Ignored
    };
    let reason = report.reason(model, &w.core, outcome, &event);
    w.emit(Fact::EventRecorded {
        event,
        received_at: now,
        outcome,
        reason: reason.as_deref().map(Into::into),
    });
    let mut d = w.finish(state);
    d.outcome = Some(outcome);
    d.reason = reason;
    d
}

fn decide_timer(model: &Model, s: &CustomerState, timer: &Timer, now: Timestamp) -> Decision {
    let Some(inst) = s.core.running(timer.sla) else {
        return Decision::default();
    };
    if inst.number != timer.instance {
        return Decision::default();
    }
    let mut w = Work::new(model, s.market, Some(s), now);
    if timer.tier == Timer::BREACH_MARK {
        if inst.breach_mark == Some(timer.due) {
            w.emit(Fact::Breached {
                sla: timer.sla,
                instance: timer.instance,
                at: now,
            });
        }
    } else {
        let Some(slot) = inst.tiers.get(timer.tier as usize) else {
            return Decision::default();
        };
        if slot.next == Some(timer.due) && slot.repeat == timer.repeat {
            w.fire(
                timer.sla,
                inst.number,
                inst.deadline,
                timer.tier,
                timer.repeat,
                timer.due,
                false,
            );
        }
    }
    w.finish(Some(s))
}

fn decide_ack(
    model: &Model,
    s: &CustomerState,
    escalation_id: &str,
    team: &str,
    note: &str,
    now: Timestamp,
) -> Decision {
    let not_found = || {
        Decision::refuse(
            Refusal::NotFound,
            format!(
                "no escalation `{escalation_id}` for customer `{}`",
                s.customer
            ),
        )
    };
    let Some(r) = super::fact::parse_escalation_id(escalation_id) else {
        return not_found();
    };
    if r.customer != &*s.customer {
        return not_found();
    }
    let Some(sla) = model.sla(r.sla) else {
        return not_found();
    };
    let owner = model.sla_spec(sla).owner;
    let open = s
        .core
        .running(sla)
        .filter(|i| i.number == r.instance)
        .and_then(|i| {
            i.fired
                .iter()
                .find(|f| f.escalation.tier == r.tier && f.escalation.repeat == r.repeat)
        });
    let (notified, already) = match open {
        Some(f) => (f.escalation.team, f.acknowledged),
        None => match s.resolved.iter().find(|x| {
            x.sla == sla && x.instance == r.instance && x.tier == r.tier && x.repeat == r.repeat
        }) {
            Some(x) => (x.team, true),
            None => return not_found(),
        },
    };
    if team.is_empty() {
        // Only here are the teams that may acknowledge known: name them.
        let teams = if notified == owner {
            format!(
                "--team {} (the notified team and the SLA's owner)",
                model.team_name(owner)
            )
        } else {
            format!(
                "--team {} (the notified team) or --team {} (the SLA's owner)",
                model.team_name(notified),
                model.team_name(owner)
            )
        };
        return Decision::refuse(
            Refusal::TeamMissing,
            format!(
                "--team is required (`team` in the request; only a team's own token implies it): \
                 to acknowledge `{escalation_id}` pass {teams}"
            ),
        );
    }
    let Some(team_id) = model.team(team) else {
        return Decision::refuse(
            Refusal::NotPermitted,
            format!("team `{team}` is not declared in the model"),
        );
    };
    if team_id != notified && team_id != owner {
        let who = if notified == owner {
            model.team_name(owner).to_owned()
        } else {
            format!(
                "{} (notified) or {} (the SLA's owner)",
                model.team_name(notified),
                model.team_name(owner)
            )
        };
        return Decision::refuse(
            Refusal::NotPermitted,
            format!("{team} may not acknowledge `{escalation_id}`: only {who} may"),
        );
    }
    let mut d = Decision::answer(true, None);
    if !already {
        d.facts.push(Fact::Acknowledged {
            sla,
            instance: r.instance,
            tier: r.tier,
            repeat: r.repeat,
            team: team_id,
            note: note.into(),
            at: now,
        });
    }
    d
}

/// A region's move while one event is processed, for `in_state` SLAs.
#[derive(Debug, Clone, Copy)]
struct Move {
    region: RegionId,
    /// `None` for the creation of the customer (entering the initial state).
    from: Option<StateId>,
    to: StateId,
    at: Timestamp,
}

/// Regions that did not move, for the outcome and its reason.
#[derive(Debug, Default)]
struct Report {
    /// (region, from, to, missing proofs).
    blocked: Vec<(RegionId, StateId, StateId, Vec<ProofId>)>,
    /// (region, its moment).
    stale: Vec<(RegionId, Timestamp)>,
}

impl Report {
    fn reason(
        &self,
        model: &Model,
        core: &Core,
        outcome: Outcome,
        event: &EventRef,
    ) -> Option<String> {
        let mut parts: Vec<String> = self
            .blocked
            .iter()
            .map(|(r, from, to, missing)| {
                let region = model.region(*r);
                let names: Vec<&str> = missing.iter().map(|p| model.proof_name(*p)).collect();
                format!(
                    "{}: blocked from {} to {}: missing proof {}",
                    region.name,
                    region.states[from.idx()].name,
                    region.states[to.idx()].name,
                    names.join(", ")
                )
            })
            .collect();
        match outcome {
            Outcome::Stale => {
                for (r, since) in &self.stale {
                    let region = model.region(*r);
                    parts.push(format!(
                        "{}: stale: the event occurred at {}, before the region entered {} at {since}",
                        region.name,
                        event.occurred_at,
                        region.states[core.region(*r).state.idx()].name
                    ));
                }
            }
            Outcome::Ignored => {
                let states: Vec<String> = model
                    .region_ids()
                    .map(|r| {
                        let region = model.region(r);
                        format!(
                            "{}.{}",
                            region.name,
                            region.states[core.region(r).state.idx()].name
                        )
                    })
                    .collect();
                parts.push(format!(
                    "no transition, proof or SLA reacts to {} in {}",
                    model.event_type(event.event_type).qualified,
                    states.join(", ")
                ));
            }
            Outcome::Applied | Outcome::Rejected | Outcome::Duplicate => {}
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// One decision in progress: a working copy of the core and the facts so far.
struct Work<'a> {
    model: &'a Model,
    rules: &'a MarketRules,
    market: MarketId,
    core: Core,
    facts: Vec<Fact>,
    moves: Vec<Move>,
    now: Timestamp,
    /// Whether a state, proof or SLA changed (the `applied` test).
    changed: bool,
    /// Whether a fact touched an SLA instance (else timers are unchanged).
    timers_touched: bool,
}

impl<'a> Work<'a> {
    fn new(
        model: &'a Model,
        market: MarketId,
        state: Option<&CustomerState>,
        now: Timestamp,
    ) -> Self {
        Work {
            model,
            rules: model.rules(market),
            market,
            core: state.map_or_else(|| Core::new(model), |s| s.core.clone()),
            facts: Vec::new(),
            moves: Vec::new(),
            now,
            changed: false,
            timers_touched: false,
        }
    }

    fn emit(&mut self, fact: Fact) {
        self.timers_touched |= matches!(
            fact,
            Fact::SlaStarted { .. }
                | Fact::SlaEnded { .. }
                | Fact::Escalated(_)
                | Fact::Breached { .. }
        );
        self.core.apply(self.model, self.market, &fact);
        self.facts.push(fact);
    }

    fn finish(self, before: Option<&CustomerState>) -> Decision {
        if !self.timers_touched {
            return Decision {
                facts: self.facts,
                ..Decision::default()
            };
        }
        let old: Vec<Timer> = before.map(|s| s.timers().collect()).unwrap_or_default();
        let new: Vec<Timer> = self.core.timers().collect();
        let timers = TimerChanges {
            armed: new.iter().filter(|t| !old.contains(t)).copied().collect(),
            disarmed: old.iter().filter(|t| !new.contains(t)).copied().collect(),
        };
        Decision {
            facts: self.facts,
            timers,
            ..Decision::default()
        }
    }

    fn all_hold(&self, proofs: &[ProofId]) -> bool {
        proofs.iter().all(|p| self.core.holds(*p))
    }

    /// Step 3: establish and revoke, the latest `occurred_at` winning.
    fn proofs(&mut self, event: &EventRef) {
        let at = event.occurred_at;
        let rules = self.rules;
        for &p in &rules.establishes[event.event_type.idx()] {
            if self.core.proofs[p.idx()].latest.is_none_or(|l| at >= l) {
                self.emit(Fact::ProofEstablished {
                    proof: p,
                    by: event.clone(),
                });
                self.changed = true;
            }
        }
        for &p in &rules.revokes[event.event_type.idx()] {
            let slot = &self.core.proofs[p.idx()];
            if slot.latest.is_none_or(|l| at >= l) {
                let held = slot.holds();
                self.emit(Fact::ProofRevoked { proof: p, at, held });
                self.changed |= held;
            }
        }
    }

    /// Step 4: in each region, the first `on` transition from its state.
    fn on_transitions(&mut self, event: &EventRef) -> Report {
        let mut report = Report::default();
        let at = event.occurred_at;
        for r in self.model.region_ids() {
            let slot = self.core.region(r);
            let Some(to) = self.rules.on_target(r, slot.state, event.event_type) else {
                continue;
            };
            if let Some(since) = slot.since
                && at < since
            {
                // FAQ 3: staleness is checked after the matching transition
                // is found, so a stale region is never reported as blocked.
                report.stale.push((r, since));
                continue;
            }
            let requires = &self.model.state(r, to).requires;
            let missing: Vec<ProofId> = requires
                .iter()
                .filter(|p| !self.core.holds(**p))
                .copied()
                .collect();
            if !missing.is_empty() {
                report.blocked.push((r, slot.state, to, missing));
            } else if to == slot.state {
                // FAQ 2: renews the moment; not a change, no SLA effect.
                self.emit(Fact::RegionRenewed {
                    region: r,
                    since: at,
                });
            } else {
                self.move_region(r, slot.state, to, at, false);
            }
        }
        report
    }

    fn move_region(
        &mut self,
        region: RegionId,
        from: StateId,
        to: StateId,
        at: Timestamp,
        automatic: bool,
    ) {
        self.emit(Fact::RegionMoved {
            region,
            from,
            to,
            since: at,
            automatic,
        });
        self.moves.push(Move {
            region,
            from: Some(from),
            to,
            at,
        });
        self.changed = true;
    }

    /// Step 5: automatic transitions until none applies (FAQ 5, 6).
    fn automatic(&mut self, at: Timestamp) {
        let rules = self.rules;
        for r in self.model.region_ids() {
            let autos = &rules.automatic[r.idx()];
            if autos.is_empty() {
                continue;
            }
            // Acyclic by the load-time check; the bound only guards it.
            for _ in 0..=self.model.region(r).states.len() {
                let slot = self.core.region(r);
                let next = autos.iter().find(|t| {
                    t.from.matches(slot.state, t.to)
                        && self.all_hold(&t.when)
                        && self.all_hold(&self.model.state(r, t.to).requires)
                });
                let Some(t) = next else { break };
                let moment = slot.since.map_or(at, |m| m.max(at));
                self.move_region(r, slot.state, t.to, moment, true);
            }
        }
    }

    /// Step 6: SLA reactions, in file order (FAQ 7).
    fn slas(&mut self, event: &EventRef, created: bool) {
        let rules = self.rules;
        let e = event.event_type;
        let at = event.occurred_at;
        if created && rules.has_in_state {
            // FAQ 9: creation enters every initial state.
            let entries: Vec<Move> = self
                .model
                .region_ids()
                .map(|r| Move {
                    region: r,
                    from: None,
                    to: self.model.region(r).initial,
                    at,
                })
                .collect();
            self.moves.splice(0..0, entries);
        }
        for sr in &rules.slas {
            let sla = sr.id;
            // (a) stop or cancel a running instance that started by then.
            if sr.ends_on(e)
                && let Some(inst) = self.core.running(sla)
                && inst.started_at <= at
            {
                let end = if sr.cancel.contains(&e) {
                    SlaEnd::Cancelled
                } else if at < inst.deadline {
                    SlaEnd::Met
                } else {
                    SlaEnd::Late
                };
                self.end(sla, end, at);
            }
            // (b) walk the region's entries and exits.
            if let Some((region, state)) = sr.in_state {
                let moves: Vec<Move> = self
                    .moves
                    .iter()
                    .filter(|m| m.region == region)
                    .copied()
                    .collect();
                for (i, m) in moves.iter().enumerate() {
                    if m.from == Some(state)
                        && let Some(inst) = self.core.running(sla)
                    {
                        let end = if sr.cancel.contains(&e) {
                            SlaEnd::Cancelled
                        } else if m.at < inst.deadline {
                            SlaEnd::Met
                        } else {
                            SlaEnd::Late
                        };
                        self.end(sla, end, m.at);
                    }
                    if m.to == state {
                        // FAQ 14: entered and left while this event is
                        // processed: start and stop at once.
                        let left = moves[i + 1..]
                            .iter()
                            .find(|n| n.from == Some(state))
                            .map(|n| n.at);
                        self.start(sla, m.at, left);
                    }
                }
            }
            // (c) start.
            if sr.start.contains(&e) {
                self.start(sla, at, None);
            }
        }
    }

    /// Starts an instance of `sla` clocked from `at`, unless one runs or an
    /// `unless` proof holds. `left` is when it was already left (FAQ 14).
    fn start(&mut self, sla: SlaId, at: Timestamp, left: Option<Timestamp>) {
        if self.core.running(sla).is_some() {
            return;
        }
        let spec = self.model.sla_spec(sla);
        if spec.unless.iter().any(|p| self.core.holds(*p)) {
            return;
        }
        let sr = &self.rules.slas[sla.idx()];
        let instance = self.core.slas[sla.idx()].started + 1;
        let deadline = at + sr.within;
        self.changed = true;
        // Out of order (FAQ 15): a stop or cancel already seen at or after
        // the start completes the instance at once; the earlier decides,
        // cancel on a tie. Only events seen before this one count.
        let seen = |events: &[super::model::EventTypeId]| {
            events
                .iter()
                .filter_map(|t| self.core.last_seen[t.idx()])
                .filter(|t| *t >= at)
                .min()
        };
        let ended = match (left, seen(&sr.stop), seen(&sr.cancel)) {
            (Some(l), _, _) => Some((
                if l < deadline {
                    SlaEnd::Met
                } else {
                    SlaEnd::Late
                },
                l,
            )),
            (None, Some(s), Some(c)) if c <= s => Some((SlaEnd::Cancelled, c)),
            (None, None, Some(c)) => Some((SlaEnd::Cancelled, c)),
            (None, Some(s), _) => Some((
                if s < deadline {
                    SlaEnd::Met
                } else {
                    SlaEnd::Late
                },
                s,
            )),
            (None, None, None) => None,
        };
        // An instance that ends at once attaches at its own start, so that
        // nothing counts as past and nothing escalates.
        let attached_at = if ended.is_some() { at } else { self.now };
        self.emit(Fact::SlaStarted {
            sla,
            instance,
            started_at: at,
            deadline,
            attached_at,
        });
        if let Some((end, when)) = ended {
            self.emit(Fact::SlaEnded {
                sla,
                instance,
                end,
                at: when,
            });
            return;
        }
        // Late attach: the breach fires at once; earlier tiers were skipped
        // by `apply` (SlaStarted), later ones keep their times.
        let now = self.now;
        let Some(inst) = self.core.running(sla) else {
            return;
        };
        let late: Vec<(u16, Timestamp)> = inst
            .tiers
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.next.filter(|due| *due < now).map(|due| (i as u16, due)))
            .collect();
        let mark_late = inst.breach_mark.is_some_and(|d| d < now);
        for (tier, due) in late {
            self.fire(sla, instance, deadline, tier, 0, due, true);
        }
        if mark_late {
            self.emit(Fact::Breached {
                sla,
                instance,
                at: now,
            });
        }
    }

    /// Ends the running instance of `sla`; resolves what it fired.
    fn end(&mut self, sla: SlaId, end: SlaEnd, at: Timestamp) {
        let Some(inst) = self.core.running(sla) else {
            return;
        };
        let instance = inst.number;
        let fired: Vec<Escalation> = inst.fired.iter().map(|f| f.escalation.clone()).collect();
        self.emit(Fact::SlaEnded {
            sla,
            instance,
            end,
            at,
        });
        for esc in fired {
            self.emit(Fact::Escalated(Escalation {
                kind: EscalationKind::Resolved,
                at: self.now,
                late_attach: false,
                ..esc
            }));
        }
        self.changed = true;
    }

    #[allow(clippy::too_many_arguments)]
    fn fire(
        &mut self,
        sla: SlaId,
        instance: u32,
        deadline: Timestamp,
        tier: u16,
        repeat: u32,
        due: Timestamp,
        late_attach: bool,
    ) {
        let t = &self.model.sla_spec(sla).tiers[tier as usize];
        let kind = if t.is_breach() {
            EscalationKind::Breached
        } else {
            EscalationKind::TierReached
        };
        self.emit(Fact::Escalated(Escalation {
            kind,
            sla,
            instance,
            tier,
            repeat,
            team: t.notify,
            severity: t.severity,
            deadline,
            due,
            at: self.now,
            late_attach,
        }));
    }
}
