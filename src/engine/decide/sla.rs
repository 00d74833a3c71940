//! The SLA machinery of a decision in progress: reactions to an event
//! (start, stop, cancel, `in_state`), and firing tiers.

use super::super::fact::{Escalation, EscalationKind, EventRef, Fact, SlaEnd};
use super::super::model::{Duration, RegionId, SlaId, StateId};
use super::super::state::{Instance, pauses_since};
use super::super::time::Timestamp;
use super::work::{Move, Work};

impl Work<'_> {
    /// Step 6: SLA reactions, in file order (FAQ 7).
    pub(super) fn slas(&mut self, event: &EventRef, created: bool) {
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
            // Pauses: the running instance's clock stops and runs again
            // as the customer enters and leaves its `pause_in` states.
            let resumed = if sr.pause_in.is_empty() {
                None
            } else {
                self.pauses(sla)
            };
            // (a) stop or cancel a running instance that started by then.
            if sr.ends_on(e)
                && let Some(inst) = self.core.running(sla)
                && inst.started_at <= at
            {
                let (end, elapsed) = inst.end_at(sr, sr.cancel.contains(&e), at);
                self.end(sla, end, at, elapsed);
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
                        let (end, elapsed) = inst.end_at(sr, sr.cancel.contains(&e), m.at);
                        self.end(sla, end, m.at, elapsed);
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
            // A resumption learnt late fires the breach it made past only
            // if this event did not end the instance: a stop that happened
            // while paused is judged at its own moment (FAQ 41, 45).
            if let Some(number) = resumed
                && self.core.running(sla).is_some_and(|i| i.number == number)
            {
                self.fire_overdue(sla);
            }
            // (c) start.
            if sr.start.contains(&e) {
                self.start(sla, at, None);
            }
        }
    }

    /// Starts an instance of `sla` clocked from `at`, unless one runs or an
    /// `unless` proof holds. `left` is when it was already left (FAQ 14).
    pub(super) fn start(&mut self, sla: SlaId, at: Timestamp, left: Option<Timestamp>) {
        if self.core.running(sla).is_some() {
            return;
        }
        let spec = self.model.sla_spec(sla);
        if spec.unless.iter().any(|p| self.core.holds(*p)) {
            return;
        }
        let sr = &self.rules.slas[sla.idx()];
        let instance = self.core.slas[sla.idx()].started + 1;
        self.changed = true;
        let probe = Instance {
            number: instance,
            started_at: at,
            deadline: at,
            original_deadline: at,
            pauses: Vec::new(),
            breached: false,
            tiers: Vec::new(),
            breach_mark: None,
            fired: Vec::new(),
        };
        // The original deadline: the calendar alone, no pause (FAQ 43).
        let deadline = probe
            .instant_of(sr, sr.within)
            .unwrap_or(Timestamp::MAX_VALID);
        // Its pauses: the customer's pause spans from its start on, so a
        // start while in a pause state starts paused, and a late start
        // skips the pauses since its moment (FAQ 39, 40).
        let probe = Instance {
            pauses: pauses_since(&self.core.slas[sla.idx()].pause_log, at),
            ..probe
        };
        // Out of order (FAQ 15): a stop or cancel already seen at or after
        // the start completes the instance at once; the earlier decides,
        // cancel on a tie. Only events seen before this one count.
        let seen = |events: &[super::super::model::EventTypeId]| {
            events
                .iter()
                .filter_map(|t| self.core.last_seen[t.idx()])
                .filter(|t| *t >= at)
                .min()
        };
        let ended = match (left, seen(&sr.stop), seen(&sr.cancel)) {
            // Passed through (FAQ 14, 46): met, with no time elapsed.
            (Some(l), _, _) => Some((SlaEnd::Met, l, Duration(0))),
            (None, Some(s), Some(c)) if c <= s => {
                Some((SlaEnd::Cancelled, c, probe.elapsed(sr, c)))
            }
            (None, None, Some(c)) => Some((SlaEnd::Cancelled, c, probe.elapsed(sr, c))),
            (None, Some(s), _) => {
                let (end, elapsed) = probe.end_at(sr, false, s);
                Some((end, s, elapsed))
            }
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
        if let Some((end, when, elapsed)) = ended {
            self.emit(Fact::SlaEnded {
                sla,
                instance,
                end,
                at: when,
                elapsed,
            });
            return;
        }
        self.fire_overdue(sla);
    }

    /// Late attach: tiers strictly past when an instance attached (at its
    /// start, or when a pause's end was learnt late) were skipped by
    /// `apply`, except the breach, which fires now (FAQ 11, 41); a silent
    /// breach strictly past is recorded now.
    fn fire_overdue(&mut self, sla: SlaId) {
        let now = self.now;
        let Some(inst) = self.core.running(sla) else {
            return;
        };
        let (instance, deadline) = (inst.number, inst.deadline);
        let late: Vec<(u16, u32, Timestamp)> = inst
            .tiers
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                t.next
                    .filter(|due| *due < now)
                    .map(|due| (i as u16, t.repeat, due))
            })
            .collect();
        let mark_late = inst.breach_mark.is_some_and(|d| d < now);
        for (tier, repeat, due) in late {
            self.fire(sla, instance, deadline, tier, repeat, due, true);
        }
        if mark_late {
            self.emit(Fact::Breached {
                sla,
                instance,
                at: now,
            });
        }
    }

    /// Emits the pauses and resumptions of the running instance of `sla`
    /// that this event's region moves cause, each at its move's moment
    /// (FAQ 39, 40: a transition from a pause state to itself changes
    /// nothing). An instance that started with this event took its pause
    /// from the regions as they stand, so only an instance already running
    /// is walked. Returns the instance's number if it resumed: the
    /// caller fires what the resumption made overdue once the event's
    /// stops and exits are done.
    fn pauses(&mut self, sla: SlaId) -> Option<u32> {
        let sr = &self.rules.slas[sla.idx()];
        let inst = self.core.running(sla)?;
        let (instance, mut paused) = (inst.number, inst.paused());
        let (inst_start, inst_pauses) = (inst.started_at, inst.pauses.clone());
        // Each pause region's state before this event's moves.
        let mut current: Vec<(RegionId, StateId)> = Vec::new();
        for (r, _) in &sr.pause_in {
            if current.iter().any(|(c, _)| c == r) {
                continue;
            }
            let before = self
                .moves
                .iter()
                .find(|m| m.region == *r)
                .and_then(|m| m.from)
                .unwrap_or(self.core.region(*r).state);
            current.push((*r, before));
        }
        let mut changes: Vec<(bool, Timestamp)> = Vec::new();
        for m in &self.moves {
            let Some(slot) = current.iter_mut().find(|(r, _)| *r == m.region) else {
                continue;
            };
            slot.1 = m.to;
            let now_paused = current.iter().any(|c| sr.pause_in.contains(c));
            if now_paused != paused {
                changes.push((now_paused, m.at));
                paused = now_paused;
            }
        }
        // A region's late pause that began and ended while another kept
        // the clock stopped changes the spans, not whether it is paused:
        // the instance takes its spans again all the same (FAQ 39).
        let last_move = self
            .moves
            .iter()
            .filter(|m| current.iter().any(|(r, _)| *r == m.region))
            .map(|m| m.at)
            .max();
        if changes.is_empty()
            && let Some(at) = last_move
            && pauses_since(&self.core.slas[sla.idx()].pause_log, inst_start) != inst_pauses
        {
            changes.push((paused, at));
        }
        let attached_at = self.now;
        let mut resumed = None;
        for (pause, at) in changes {
            self.changed = true;
            if pause {
                self.emit(Fact::SlaPaused { sla, instance, at });
            } else {
                self.emit(Fact::SlaResumed {
                    sla,
                    instance,
                    at,
                    attached_at,
                });
                resumed = Some(instance);
            }
        }
        resumed
    }

    /// Ends the running instance of `sla`; resolves what it fired.
    pub(super) fn end(&mut self, sla: SlaId, end: SlaEnd, at: Timestamp, elapsed: Duration) {
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
            elapsed,
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
    pub(super) fn fire(
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
