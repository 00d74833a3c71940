//! The engine in virtual time: customers in a map and one ordered timer
//! queue, no clock, no disk.
//!
//! Two tools need exactly this and must agree to the microsecond:
//! `handoff simulate` (steps from a file) and `handoff loadgen`, which
//! works out which escalations a node must send by replaying the events it
//! sent through the same engine. Keeping the queue and the commit rule in
//! one place means the two cannot drift apart.
//!
//! The caller decides the order of things: it fires what is due
//! ([`VirtualTime::fire_next`]) before it runs an input at a later instant,
//! as the node's timer service would have.

use std::collections::{BTreeSet, HashMap};

use crate::engine::model::{Model, SlaId};
use crate::engine::{CustomerState, Decision, Input, Limits, Timer, Timestamp, decide};

/// One pending timer, ordered as firing order requires: by due instant,
/// then customer, SLA (file order), tier, repeat.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct QueuedTimer {
    due: Timestamp,
    customer: String,
    sla: u16,
    tier: u16,
    repeat: u32,
    instance: u32,
}

impl QueuedTimer {
    fn new(customer: &str, t: &Timer) -> QueuedTimer {
        QueuedTimer {
            due: t.due,
            customer: customer.to_owned(),
            sla: t.sla.0,
            tier: t.tier,
            repeat: t.repeat,
            instance: t.instance,
        }
    }

    fn timer(&self) -> Timer {
        Timer {
            due: self.due,
            sla: SlaId(self.sla),
            tier: self.tier,
            repeat: self.repeat,
            instance: self.instance,
        }
    }
}

/// A timer that fired: whose, when, and what the engine decided.
#[derive(Debug)]
pub struct Fired {
    pub customer: String,
    pub at: Timestamp,
    pub decision: Decision,
}

/// Every customer and every pending timer, in virtual time.
#[derive(Clone)]
pub struct VirtualTime<'m> {
    model: &'m Model,
    limits: Limits,
    customers: HashMap<String, CustomerState>,
    timers: BTreeSet<QueuedTimer>,
}

impl<'m> VirtualTime<'m> {
    pub fn new(model: &'m Model, limits: Limits) -> Self {
        VirtualTime {
            model,
            limits,
            customers: HashMap::new(),
            timers: BTreeSet::new(),
        }
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// A customer's state (also one not created yet, if an input touched it).
    pub fn customer(&self, customer: &str) -> Option<&CustomerState> {
        self.customers.get(customer)
    }

    /// Whether the customer exists (its first event was accepted).
    pub fn known(&self, customer: &str) -> bool {
        self.customers.get(customer).is_some_and(|s| s.exists)
    }

    /// What the engine decides for `input` at `now`; changes nothing.
    pub fn decide(&self, customer: &str, input: &Input, now: Timestamp) -> Decision {
        decide(
            self.model,
            &self.limits,
            self.customers.get(customer),
            input,
            now,
        )
    }

    /// Applies a decision's facts and its timer changes.
    pub fn commit(&mut self, customer: &str, d: &Decision) {
        if d.facts.is_empty() {
            return;
        }
        let state = self
            .customers
            .entry(customer.to_owned())
            .or_insert_with(|| CustomerState::empty(self.model, customer));
        for f in &d.facts {
            state.apply(self.model, f);
        }
        for t in &d.timers.disarmed {
            self.timers.remove(&QueuedTimer::new(customer, t));
        }
        for t in &d.timers.armed {
            self.timers.insert(QueuedTimer::new(customer, t));
        }
    }

    /// Decides and commits `input`; returns the decision.
    pub fn run(&mut self, customer: &str, input: &Input, now: Timestamp) -> Decision {
        let d = self.decide(customer, input, now);
        self.commit(customer, &d);
        d
    }

    /// The earliest pending timer's due instant.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.timers.first().map(|t| t.due)
    }

    /// Fires the earliest timer due at or before `until`, at its due
    /// instant, and commits what it decided; `None` when nothing is due.
    pub fn fire_next(&mut self, until: Timestamp) -> Option<Fired> {
        loop {
            if self.timers.first()?.due > until {
                return None;
            }
            let q = self.timers.pop_first()?;
            let Some(state) = self.customers.get(&q.customer) else {
                continue;
            };
            let d = decide(
                self.model,
                &self.limits,
                Some(state),
                &Input::Timer(q.timer()),
                q.due,
            );
            self.commit(&q.customer, &d);
            return Some(Fired {
                customer: q.customer,
                at: q.due,
                decision: d,
            });
        }
    }

    /// Removes a customer and its pending timers; returns its state and
    /// those timers (to [`VirtualTime::insert`] them elsewhere).
    pub fn remove(&mut self, customer: &str) -> Option<(CustomerState, Vec<Timer>)> {
        let state = self.customers.remove(customer)?;
        let mine: Vec<QueuedTimer> = self
            .timers
            .iter()
            .filter(|q| q.customer == customer)
            .cloned()
            .collect();
        let timers = mine
            .iter()
            .map(|q| {
                self.timers.remove(q);
                q.timer()
            })
            .collect();
        Some((state, timers))
    }

    /// Adds a customer with its pending timers (from [`VirtualTime::remove`]).
    pub fn insert(&mut self, customer: &str, state: CustomerState, timers: &[Timer]) {
        for t in timers {
            self.timers.insert(QueuedTimer::new(customer, t));
        }
        self.customers.insert(customer.to_owned(), state);
    }

    /// How many timers are pending, all customers.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }
}
