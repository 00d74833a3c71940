//! The SLA machinery of a decision in progress: reactions to an event
//! (start, stop, cancel, `in_state`), and firing tiers.

use super::super::fact::{Escalation, EscalationKind, EventRef, Fact, SlaEnd};
use super::super::model::SlaId;
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
        let deadline = at + sr.within;
        self.changed = true;
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
    pub(super) fn end(&mut self, sla: SlaId, end: SlaEnd, at: Timestamp) {
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
