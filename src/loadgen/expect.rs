//! Expectations: exactly which escalations the node must send, worked out
//! by running the same engine in virtual time over the events loadgen
//! actually sent, at the instants it sent them.
//!
//! Each event carries an explicit `occurred_at`, and the node decides it at
//! some instant between its send and its acknowledgement; the engine here
//! decides it at the send, after the timers due by then. The order of a
//! timer and an event matters only when the event ends the timer's SLA
//! instance (a stop cancels the pending tier; a tier that fired first is
//! resolved) or pauses it (a pause holds the pending tier; a tier that
//! fired first stands). Such a *crossing* is settled by what was received: if the
//! engine says the tier fired first, its escalation arriving at all proves
//! the node agreed (the stop would have cancelled it); if the engine says
//! the event came first (the tier came due during the round trip), its
//! escalation *not* arriving proves it. Otherwise the order at the node was
//! a matter of timing, not of the model, when the tier came due during the
//! round trip or less than the node's measured timer lateness before the
//! send, and the report sets the customer aside (and says how many).
//! Journeys are planned with gaps far from every tier, so there are none
//! unless the node or loadgen falls far behind.
//!
//! Business calendars and pauses need nothing of their own here: the
//! engine in virtual time keeps each instance's clock (its calendar, the
//! pauses the journey's events made), so its tiers come due where the
//! elapsed SLA time reaches them, exactly as at the node. The planner keeps
//! events far from those instants in elapsed SLA time, which is at least as
//! far on the wall clock. A scaled model (`--sla-scale`) divides SLA
//! durations, not calendars: a scaled 2 h office-hours SLA counts 24 s of
//! office time, so one started after hours comes due the next working
//! morning. The run does not wait for it: as for any SLA, the expectations
//! are every escalation due by the horizon (at most `--max-wait` after the
//! last event), exactly, and those due later are left out on both sides.
//! Deliberate SLA failures are planned only where the breach falls inside
//! the run (see [`super::journeys`]), so at night they land on the SLAs
//! that run around the clock.
//!
//! Customers are independent, so each is replayed on its own as soon as its
//! journey is done, and forgotten, unless an SLA is still running (a
//! deliberate never-stopped failure): those wait in one shared virtual
//! clock that runs to the run's horizon at the end.

use std::sync::{Arc, OnceLock};

use super::compare::{EscalationKey, Kind};
use super::journeys::{FailureKind, Journey};
use crate::engine::model::{Duration, Model, SlaId};
use crate::engine::{Decision, Fact, Input, Limits, Outcome, Timer, Timestamp};
use crate::virtual_time::VirtualTime;

/// What the driver recorded of one event it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// When it was sent (the first attempt, if retried).
    pub sent: Timestamp,
    /// When the node's answer came back.
    pub acked: Timestamp,
    /// The node's outcome; `None` if no attempt got an answer.
    pub outcome: Option<Outcome>,
    /// Whether it took more than one attempt (its fate at the node may be
    /// the first attempt's or a later one's).
    pub retried: bool,
    /// Deadlines of the SLA instances the node said the event started.
    pub started: Vec<Timestamp>,
}

/// A customer whose journey is done: what was planned and what was sent.
#[derive(Debug, Clone)]
pub struct Completed {
    pub journey: Journey,
    /// One per step sent, in order (fewer than the steps if it gave up).
    pub sent: Vec<Sent>,
}

/// One escalation the node must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub key: EscalationKey,
    /// When its tier was due.
    pub due: Timestamp,
}

/// An event whose outcome at the node is not the engine's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeMismatch {
    pub customer: u64,
    pub step: usize,
    pub expected: Outcome,
    pub received: Outcome,
}

/// At most this many outcome mismatches are kept (the count is exact).
const MISMATCH_SAMPLES: usize = 100_000;

/// The engine's account of a run, built customer by customer.
pub struct Expectations<'m> {
    model: &'m Model,
    prefix: String,
    /// Customers whose journey left an SLA running, until the horizon.
    stuck: VirtualTime<'m>,
    expected: Vec<Expected>,
    /// Timers that came due within `CROSSING_US` before one of their
    /// customer's events, or during its round trip.
    crossings: Vec<Crossing>,
    /// Customers with an event whose fate at the node is unknown.
    unknown: Vec<u64>,
    mismatches: Vec<OutcomeMismatch>,
    mismatch_count: u64,
    /// The latest acknowledgement.
    last_ack: Timestamp,
    /// The latest deadline of an SLA left running.
    last_deadline: Timestamp,
    customers: u64,
    events: u64,
    failures: [u64; 4],
    /// Set once the node is seen to run another model (first message wins).
    model_mismatch: Arc<OnceLock<String>>,
}

/// A timer due this long before an event is taken to have fired first
/// whatever happens (10 s: no node that works is that late).
const CROSSING_US: i64 = 10_000_000;

/// A timer of a customer that came due close to one of its events, which
/// ended or paused the timer's SLA instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossing {
    pub customer: u64,
    pub timer: Timer,
    /// When the event was sent.
    pub sent: Timestamp,
    pub order: Order,
}

/// How a timer and an event crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Due before the send: the engine fired it first.
    TimerFirst,
    /// Due during the round trip: the engine had the event first.
    EventFirst,
    /// Armed by the event itself, due during its round trip: whether the
    /// node saw the tier as already past (late attach) depends on timing.
    Attached,
}

impl<'m> Expectations<'m> {
    pub fn new(model: &'m Model, prefix: &str, model_mismatch: Arc<OnceLock<String>>) -> Self {
        Expectations {
            model,
            prefix: prefix.to_owned(),
            stuck: VirtualTime::new(model, Limits::default()),
            expected: Vec::new(),
            crossings: Vec::new(),
            unknown: Vec::new(),
            mismatches: Vec::new(),
            mismatch_count: 0,
            last_ack: Timestamp(0),
            last_deadline: Timestamp(0),
            customers: 0,
            events: 0,
            failures: [0; 4],
            model_mismatch,
        }
    }

    /// Replays one customer's journey as it was sent.
    pub fn add(&mut self, c: &Completed) {
        let index = c.journey.index;
        let id = format!("{}{index}", self.prefix);
        self.customers += 1;
        self.events += c.sent.len() as u64;
        if let Some(kind) = c.journey.failure {
            self.failures[kind as usize] += 1;
        }
        let sent_at: Vec<Timestamp> = c.sent.iter().map(|s| s.sent).collect();
        let occurred = c.journey.occurred_at(&sent_at);
        let mut vt = VirtualTime::new(self.model, Limits::default());
        let mut armed: Vec<Timer> = Vec::new();
        // Per event, the SLA instances it ended or paused.
        let mut ended: Vec<Vec<(SlaId, u32)>> = Vec::with_capacity(c.sent.len());
        let mut unknown = false;
        for (i, s) in c.sent.iter().enumerate() {
            while let Some(fired) = vt.fire_next(s.sent) {
                self.collect(index, &fired.decision, &mut armed);
            }
            let event = c.journey.event(self.model, &id, i, occurred[i]);
            let d = vt.run(&id, &Input::Event(event), s.sent);
            for t in d.timers.armed.iter().filter(|t| t.due <= s.acked) {
                self.crossings.push(Crossing {
                    customer: index,
                    timer: *t,
                    sent: s.sent,
                    order: Order::Attached,
                });
            }
            self.collect(index, &d, &mut armed);
            ended.push(
                d.facts
                    .iter()
                    .filter_map(|f| match f {
                        Fact::SlaEnded { sla, instance, .. }
                        | Fact::SlaPaused { sla, instance, .. } => Some((*sla, *instance)),
                        _ => None,
                    })
                    .collect(),
            );
            unknown |= s.outcome.is_none() || s.retried;
            if let (Some(want), Some(got)) = (d.outcome, s.outcome)
                && want != got
                && !s.retried
            {
                self.mismatch_count += 1;
                if self.mismatches.len() < MISMATCH_SAMPLES {
                    self.mismatches.push(OutcomeMismatch {
                        customer: index,
                        step: i,
                        expected: want,
                        received: got,
                    });
                }
            }
            self.check_deadlines(&id, i, &d, s);
            self.last_ack = self.last_ack.max(s.acked);
        }
        if unknown {
            self.unknown.push(index);
        }
        self.crossings
            .extend(crossings(index, &armed, &c.sent, &ended));
        if vt.pending_timers() > 0
            && let Some((state, timers)) = vt.remove(&id)
        {
            // A paused instance has no deadline to wait for (its field
            // keeps the one known before the pause).
            for sla in self.model.sla_ids() {
                if let Some(inst) = state.core.running(sla).filter(|i| !i.paused()) {
                    self.last_deadline = self.last_deadline.max(inst.deadline);
                }
            }
            self.stuck.insert(&id, state, &timers);
        }
    }

    /// The node's deadlines for SLAs an event started must be the engine's:
    /// if not, the node runs another model (or another scale).
    fn check_deadlines(&self, id: &str, step: usize, d: &Decision, s: &Sent) {
        let mut ours: Vec<Timestamp> = d
            .facts
            .iter()
            .filter_map(|f| match f {
                Fact::SlaStarted { deadline, .. } => Some(*deadline),
                _ => None,
            })
            .collect();
        if s.outcome.is_none() || s.retried {
            return;
        }
        ours.sort();
        let mut theirs = s.started.clone();
        theirs.sort();
        if ours != theirs && self.model_mismatch.get().is_none() {
            let show = |v: &[Timestamp]| {
                v.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = self.model_mismatch.set(format!(
                "the node runs another model than loadgen: event {step} of customer {id} started SLAs \
                 with deadlines [{}] on the node but [{}] in loadgen's model; start the node with the \
                 very file loadgen reads (for --sla-scale F: `handoff model scale FILE --by F > scaled.toml`, \
                 then `handoff serve --model scaled.toml` and `handoff loadgen --model scaled.toml`)",
                show(&theirs),
                show(&ours)
            ));
        }
    }

    fn collect(&mut self, customer: u64, d: &Decision, armed: &mut Vec<Timer>) {
        armed.extend(d.timers.armed.iter().copied());
        for f in &d.facts {
            if let Fact::Escalated(e) = f {
                self.expected.push(Expected {
                    key: EscalationKey {
                        customer,
                        sla: e.sla,
                        instance: e.instance,
                        tier: e.tier,
                        repeat: e.repeat,
                        kind: Kind::from(e.kind),
                    },
                    due: e.due,
                });
            }
        }
    }

    /// The instant the run waits for (plus a settling margin): the last
    /// deadline of an SLA left running, so every never-stopped SLA is seen
    /// to breach, but at most `max_wait` after the last acknowledgement
    /// (an SLA of days is not waited for); at least the last
    /// acknowledgement.
    pub fn horizon(&self, max_wait: Duration) -> Timestamp {
        self.last_deadline
            .min(self.last_ack + max_wait)
            .max(self.last_ack)
    }

    /// Runs the customers left with SLAs to `horizon`; every escalation
    /// due by then, sorted.
    pub fn finish(mut self, horizon: Timestamp) -> Account {
        while let Some(fired) = self.stuck.fire_next(horizon) {
            let Some(index) = fired
                .customer
                .strip_prefix(&self.prefix)
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            let mut armed = Vec::new();
            self.collect(index, &fired.decision, &mut armed);
        }
        let mut expected: Vec<Expected> = self
            .expected
            .into_iter()
            .filter(|e| e.due <= horizon)
            .collect();
        expected.sort_by_key(|e| e.key);
        self.unknown.sort_unstable();
        Account {
            expected,
            crossings: self.crossings,
            unknown: self.unknown,
            mismatches: self.mismatches,
            mismatch_count: self.mismatch_count,
            customers: self.customers,
            events: self.events,
            failures: FailureKind::ALL
                .iter()
                .map(|k| (*k, self.failures[*k as usize]))
                .collect(),
        }
    }
}

/// The timers that came due during the round trip of an event that ended
/// or paused their SLA instance (`ended`, per event), or less than
/// `CROSSING_US` before its send. Silent breach marks are left out: they
/// escalate nothing, in either order.
fn crossings(
    customer: u64,
    armed: &[Timer],
    sent: &[Sent],
    ended: &[Vec<(SlaId, u32)>],
) -> Vec<Crossing> {
    let mut out = Vec::new();
    for t in armed.iter().filter(|t| t.tier != Timer::BREACH_MARK) {
        for (s, ended) in sent.iter().zip(ended) {
            if t.due <= s.acked
                && s.sent.0 - t.due.0 < CROSSING_US
                && ended.contains(&(t.sla, t.instance))
            {
                out.push(Crossing {
                    customer,
                    timer: *t,
                    sent: s.sent,
                    order: if t.due > s.sent {
                        Order::EventFirst
                    } else {
                        Order::TimerFirst
                    },
                });
            }
        }
    }
    out
}

/// What the engine says the run must show.
#[derive(Debug, Clone)]
pub struct Account {
    /// Every escalation due by the horizon, sorted by key.
    pub expected: Vec<Expected>,
    /// Timers that came due close to one of their customer's events.
    pub crossings: Vec<Crossing>,
    /// Customers with an event whose fate is unknown (failed or retried).
    pub unknown: Vec<u64>,
    pub mismatches: Vec<OutcomeMismatch>,
    pub mismatch_count: u64,
    pub customers: u64,
    pub events: u64,
    /// How many journeys carried each failure.
    pub failures: Vec<(FailureKind, u64)>,
}

impl Account {
    /// Customers set aside, sorted: an event's fate is unknown, or a
    /// crossing is not settled by what was received (`received(customer,
    /// timer)`: when the timer's escalation arrived, if it did). A tier
    /// the engine fired first is settled if its escalation arrived, or if
    /// it came due more than `lateness_us` before the send; one the engine
    /// had after the event, if its escalation did not arrive.
    pub fn set_aside(
        &self,
        lateness_us: i64,
        received: impl Fn(u64, &Timer) -> Option<Timestamp>,
    ) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .crossings
            .iter()
            .filter(|c| {
                let arrived = received(c.customer, &c.timer).is_some();
                match c.order {
                    Order::TimerFirst => !arrived && c.sent.0 - c.timer.due.0 <= lateness_us,
                    Order::EventFirst => arrived,
                    Order::Attached => true,
                }
            })
            .map(|c| c.customer)
            .chain(self.unknown.iter().copied())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{MarketId, load};
    use crate::loadgen::journeys::{FailureKind, Generator, JourneyOptions, When};
    use crate::simulate::Simulator;

    const FAST: &str = include_str!("../../tests/models/fast.toml");
    const SAAS: &str = include_str!("../../examples/saas.toml");

    /// Sends a journey "perfectly": each step a gap after the previous
    /// acknowledgement, acknowledged after `rtt`.
    fn send(j: &Journey, gap: Duration, rtt: Duration, start: Timestamp) -> Vec<Sent> {
        let mut sent: Vec<Sent> = Vec::new();
        let mut occurred: Vec<Timestamp> = Vec::new();
        for (i, step) in j.steps.iter().enumerate() {
            let at = match (step.when, sent.last()) {
                (_, None) => start,
                (When::Gap, Some(prev)) => prev.acked + gap,
                (When::AfterOccurred { step, offset }, Some(prev)) => {
                    prev.acked.max(occurred[step as usize] + offset)
                }
            };
            sent.push(Sent {
                sent: at,
                acked: at + rtt,
                outcome: None,
                retried: false,
                started: Vec::new(),
            });
            let times: Vec<Timestamp> = sent.iter().map(|s| s.sent).collect();
            occurred = j.occurred_at(&times);
            let _ = i;
        }
        // Fill in outcomes as "unknown-free": the engine's own.
        for s in &mut sent {
            s.outcome = Some(Outcome::Applied);
        }
        sent
    }

    /// The JSON lines `handoff simulate` reads for the same journeys.
    fn steps_jsonl(model: &Model, prefix: &str, done: &[Completed]) -> String {
        let mut lines: Vec<(Timestamp, String)> = Vec::new();
        for c in done {
            let id = format!("{prefix}{}", c.journey.index);
            let times: Vec<Timestamp> = c.sent.iter().map(|s| s.sent).collect();
            let occurred = c.journey.occurred_at(&times);
            for (i, s) in c.sent.iter().enumerate() {
                let e = c.journey.event(model, &id, i, occurred[i]);
                let line = serde_json::json!({
                    "at": s.sent.to_string(),
                    "ingest": {
                        "id": e.id, "source": e.source, "type": e.event_type,
                        "customer": e.customer, "market": e.market,
                        "occurred_at": e.occurred_at.to_string(),
                    }
                });
                lines.push((s.sent, line.to_string()));
            }
        }
        lines.sort_by_key(|(t, _)| *t);
        lines.into_iter().map(|(_, l)| l + "\n").collect()
    }

    #[test]
    fn expectations_agree_with_simulate() {
        let model = load("fast", FAST).expect("loads");
        let options = JourneyOptions {
            failure_share: 0.6,
            ..JourneyOptions::for_model(&model, 11)
        };
        let (account, _) = agree(&model, options, Timestamp(1_800_000_000_000_000), 60);
        assert!(
            account
                .failures
                .iter()
                .any(|(k, n)| *k == FailureKind::NeverStopped && *n > 0)
        );
        assert!(!account.expected.is_empty());
    }

    /// The reference model scaled by 300 (as `benches/load.sh` runs it) on
    /// a Tuesday morning: US first replies run 24x7, DE ones count Berlin
    /// office time (open), BR ones Sao Paulo's (not open yet), half the
    /// customers wait on themselves a while; the engine in loadgen and
    /// `handoff simulate` still agree escalation by escalation.
    #[test]
    fn expectations_agree_with_simulate_on_calendars_and_pauses() {
        let text = crate::engine::model::scale_model_text(SAAS, 300.0).expect("scales");
        let model = load("saas", &text).expect("loads");
        // 2026-03-10T09:30:00Z: 10:30 in Berlin, 06:30 in Sao Paulo.
        let tuesday = Timestamp(1_773_135_000_000_000);
        let options = JourneyOptions {
            failure_share: 0.6,
            pause_share: 0.5,
            epoch: tuesday,
            ..JourneyOptions::for_model(&model, 5)
        };
        let (account, done) = agree(&model, options, tuesday, 300);
        assert!(!account.expected.is_empty());
        let first_reply = model.sla("first_reply").expect("declared");
        let waits = model
            .event(
                model.source("support").expect("support"),
                "waiting_on_customer",
            )
            .expect("declared");
        let paused = done
            .iter()
            .filter(|c| c.journey.steps.iter().any(|s| s.event == waits))
            .count();
        assert!(paused >= 30, "{paused} of 300 customers waited");
        // Some first replies escalated, in a market on a calendar too.
        let de = |c: u64| done[c as usize].journey.market == MarketId(1);
        assert!(
            account
                .expected
                .iter()
                .any(|e| e.key.sla == first_reply && de(e.key.customer)),
            "no DE first reply escalated"
        );
    }

    /// Plans `n` journeys, sends them "perfectly" from `base` (customers 7
    /// ms apart, a round trip of 2 ms), and checks that loadgen's
    /// expectations are what `handoff simulate` prints for the same
    /// events; the account, and the journeys as sent.
    fn agree(
        model: &Model,
        options: JourneyOptions,
        base: Timestamp,
        n: u64,
    ) -> (Account, Vec<Completed>) {
        let gap = options.gap;
        let generator = Generator::new(model, options);
        let mismatch = Arc::new(OnceLock::new());
        let mut exp = Expectations::new(model, "c", mismatch.clone());
        let mut done = Vec::new();
        for i in 0..n {
            let j = generator.journey(i);
            // Customers start 7 ms apart; the round trip is 2 ms.
            let sent = send(&j, gap, Duration(2_000), base + Duration(i as i64 * 7_000));
            done.push(Completed { journey: j, sent });
        }
        for c in &mut done {
            // Give each event the node's outcome the engine predicts, so
            // only escalations are compared here.
            let mut vt = VirtualTime::new(model, Limits::default());
            let id = format!("c{}", c.journey.index);
            let times: Vec<Timestamp> = c.sent.iter().map(|s| s.sent).collect();
            let occurred = c.journey.occurred_at(&times);
            for (i, s) in c.sent.iter_mut().enumerate() {
                while vt.fire_next(s.sent).is_some() {}
                let e = c.journey.event(model, &id, i, occurred[i]);
                let d = vt.run(&id, &Input::Event(e), s.sent);
                s.outcome = d.outcome;
                s.started = d
                    .facts
                    .iter()
                    .filter_map(|f| match f {
                        Fact::SlaStarted { deadline, .. } => Some(*deadline),
                        _ => None,
                    })
                    .collect();
            }
            exp.add(c);
        }
        assert!(mismatch.get().is_none(), "{mismatch:?}");
        let horizon = exp.horizon(Duration::from_secs(10)) + Duration::from_secs(3);
        let account = exp.finish(horizon);
        assert_eq!(account.mismatch_count, 0, "{:?}", account.mismatches);

        // The same events through `handoff simulate`, to the same horizon.
        let input = steps_jsonl(model, "c", &done);
        let out = Simulator::new(model, Limits::default(), Vec::new())
            .run(input.as_bytes(), Some(horizon))
            .expect("simulate runs");
        let mut from_simulate: Vec<String> = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                let e = v.get("escalation")?;
                Some(format!(
                    "{} {}",
                    e["escalation_id"].as_str()?,
                    e["kind"].as_str()?
                ))
            })
            .collect();
        from_simulate.sort();
        let mut ours: Vec<String> = account
            .expected
            .iter()
            .map(|e| e.key.describe(model, "c"))
            .collect();
        ours.sort();
        assert_eq!(ours, from_simulate);
        (account, done)
    }

    #[test]
    fn timers_close_to_an_event_that_ends_their_sla_are_crossings() {
        let s = |sent: i64, acked: i64| Sent {
            sent: Timestamp(sent),
            acked: Timestamp(acked),
            outcome: Some(Outcome::Applied),
            retried: false,
            started: Vec::new(),
        };
        let sla = crate::engine::model::SlaId(0);
        let t = |due: i64| Timer {
            due: Timestamp(due),
            sla,
            tier: 1,
            repeat: 0,
            instance: 1,
        };
        let sent = [s(100, 110), s(200, 210)];
        // The second event ends the instance.
        let ended = [vec![], vec![(sla, 1)]];
        assert!(crossings(1, &[t(500)], &sent, &ended).is_empty());
        let before = crossings(1, &[t(150)], &sent, &ended);
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].order, Order::TimerFirst);
        assert_eq!(before[0].sent, Timestamp(200));
        let inside = crossings(1, &[t(205)], &sent, &ended);
        assert_eq!(inside[0].order, Order::EventFirst);
        // An event that leaves the SLA alone crosses nothing.
        assert!(crossings(1, &[t(150)], &sent, &[vec![], vec![]]).is_empty());

        let account = |crossings: Vec<Crossing>, unknown: Vec<u64>| Account {
            expected: Vec::new(),
            crossings,
            unknown,
            mismatches: Vec::new(),
            mismatch_count: 0,
            customers: 2,
            events: 4,
            failures: Vec::new(),
        };
        let arrived = |_: u64, _: &Timer| Some(Timestamp(300));
        let lost = |_: u64, _: &Timer| None;
        // The engine fired it first: settled if it arrived, or if the node
        // is never that late.
        let a = account(before, vec![7]);
        assert_eq!(a.set_aside(60, arrived), vec![7]);
        assert_eq!(a.set_aside(60, lost), vec![1, 7]);
        assert_eq!(a.set_aside(40, lost), vec![7]);
        // The engine had the event first: settled if it did not arrive.
        let b = account(inside, Vec::new());
        assert!(b.set_aside(0, lost).is_empty());
        assert_eq!(b.set_aside(0, arrived), vec![1]);
    }

    #[test]
    fn a_node_with_other_deadlines_is_a_model_mismatch() {
        let model = load("fast", FAST).expect("loads");
        let generator = Generator::new(&model, JourneyOptions::for_model(&model, 3));
        let mismatch = Arc::new(OnceLock::new());
        let mut exp = Expectations::new(&model, "c", mismatch.clone());
        // Find a journey whose first events start an SLA; claim the node
        // reported a deadline an hour off.
        for i in 0..50 {
            let j = generator.journey(i);
            let mut sent = send(&j, Duration(10_000), Duration(1_000), Timestamp(1_000_000));
            for s in &mut sent {
                s.started = vec![Timestamp(s.sent.0 + 3_600_000_000)];
            }
            exp.add(&Completed { journey: j, sent });
        }
        let message = mismatch.get().expect("a mismatch is found");
        assert!(message.contains("handoff model scale"), "{message}");
    }
}
