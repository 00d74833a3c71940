//! The state layer: what was decided and committed, turned into store rows.
//!
//! An actor decides; the journal orders what it decided ([`Entry`]) and
//! gives escalations their sequence numbers; the state layer turns the
//! committed entries into one [`WriteBatch`]: the customer's record, its
//! facts (the customer's history), timer keys set and cleared, escalation
//! log rows, the open-escalation index, the query indexes and the counters
//! (`counters`). Facts carry the entry's decision time ([`Entry::at`]), by
//! which their retention pass finds old history. It is the one place that
//! knows the row layout, and the code every store backend (and, in a
//! cluster, every node that takes over a shard) runs, so the same entries
//! always become the same rows.
//!
//! Two steps, so that the journal's one committer thread does as little
//! as it can: [`prepare`] lays out one entry's rows on the proposer's
//! thread (in parallel with every other actor), and [`apply_prepared`]
//! merges a group's rows once the journal has numbered its escalations
//! (log keys, the open-escalation index in order, index keys netted over
//! the group). [`apply_committed`] is both in one, for callers on one
//! thread.
//!
//! Pure: it reads nothing and writes nothing; the journal hands the batch
//! to the store.

pub mod counters;
pub mod index;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::engine::EscalationEntry;
use crate::engine::model::Model;
use crate::engine::{
    CustomerState, Escalation, EscalationKind, Fact, Timer, TimerChanges, Timestamp, view,
};
use crate::store::{Fence, OpenRow, TimerKey, WriteBatch, codec};

pub use counters::Counted;
pub use index::Memberships;

/// What one command decided for one customer, as the journal carries it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub shard: u32,
    /// The epoch of the shard's lease the actor decided under (0 on a
    /// single node): in a cluster the commit is refused if the shard has
    /// moved on since, even if it came back to this node.
    pub epoch: u64,
    pub customer: String,
    /// The model version the facts were decided with.
    pub model_version: u32,
    /// That version's model: it names the entry's escalations in the log.
    pub model: Arc<Model>,
    /// The customer's history number of the first fact (facts are
    /// numbered 1, 2, ... per customer; the next entry starts after the
    /// last of these).
    pub seq: u64,
    /// What happened, in order; already folded into `state`.
    pub facts: Vec<Fact>,
    /// When the actor decided it (the `now` it decided with): the facts'
    /// decision time, by which the fact retention finds old history.
    pub at: Timestamp,
    /// Timers the decision armed and disarmed.
    pub timers: TimerChanges,
    /// For a firing: the timer that fired. It leaves the timer index even
    /// when the decision changed nothing (the state no longer holds it).
    pub fired: Option<Timer>,
    /// The customer after `facts`: the actor's own copy, lent so that the
    /// record is written without a read, and given back with the answer.
    pub state: CustomerState,
    /// The customer's query index memberships before `facts`
    /// ([`index::memberships`] of the state the actor decided on; empty
    /// for a new customer): the commit clears the keys of those the state
    /// after no longer has.
    pub index_before: Memberships,
    /// The customer's memberships after `facts`, set by [`prepare`]
    /// (`None` before, and for an entry without facts): given back with
    /// the answer, so that the actor's next entry has its `index_before`
    /// without working it out again.
    pub index_after: Option<Memberships>,
}

impl Entry {
    /// How many escalation sequence numbers the entry needs.
    pub fn escalations(&self) -> usize {
        self.facts
            .iter()
            .filter(|f| matches!(f, Fact::Escalated(_)))
            .count()
    }

    /// A firing (it goes in the journal's timer lane).
    pub fn is_firing(&self) -> bool {
        self.fired.is_some()
    }

    /// The fired timer, when the state no longer holds it and the decision
    /// did not disarm it: its key must still leave the index.
    fn stale_timer(&self) -> Option<Timer> {
        self.fired
            .filter(|t| !self.timers.disarmed.contains(t) && !self.state.timers().any(|p| p == *t))
    }

    /// Whether committing it writes anything.
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty() && self.stale_timer().is_none()
    }
}

/// Timer keys a durable commit armed and cleared, for the shard's timer
/// service.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TimerUpdate {
    pub armed: Vec<TimerKey>,
    pub cleared: Vec<TimerKey>,
}

impl TimerUpdate {
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty() && self.cleared.is_empty()
    }
}

/// An entry the journal is committing, with the escalation sequence
/// numbers it assigned (one per `Escalated` fact, in order).
#[derive(Debug, Clone, Copy)]
pub struct Committed<'a> {
    pub entry: &'a Entry,
    pub escalation_seqs: &'a [u64],
}

/// One entry's rows, laid out by [`prepare`] on the proposer's thread
/// (the actor's task, in parallel with every other actor) so that the
/// journal's single committer only merges them ([`apply_prepared`]):
/// everything but what depends on the group, that is the escalations'
/// sequence numbers and the netting of index keys across entries.
#[derive(Debug, Default)]
pub struct Rows {
    shard: u32,
    /// A hash of the customer's id: two entries of one customer in a
    /// group have the same (a collision only costs a netting pass).
    customer_hash: u64,
    /// The customer record, facts, counters, timers and the fence.
    batch: WriteBatch,
    /// The escalation log records, in the entry's order (their sequence
    /// numbers come at commit).
    escalations: Vec<Vec<u8>>,
    /// Changes of the open-escalation index, in the entry's order.
    open: Vec<OpenOp>,
    /// Query index keys set (`true`) and cleared (`false`) by the entry.
    index: Vec<(Vec<u8>, bool)>,
    timers: TimerUpdate,
}

#[derive(Debug)]
enum OpenOp {
    Set(OpenRow),
    Clear(String, String),
}

/// The rows of a group of committed entries, in commit order (a later
/// entry's write of the same key wins), and each entry's timer update.
/// [`prepare`] and [`apply_prepared`] in one, for callers that lay out
/// and commit on the same thread (a backfill, the tests).
pub fn apply_committed(committed: &[Committed<'_>]) -> (WriteBatch, Vec<TimerUpdate>) {
    apply_prepared(
        committed
            .iter()
            .map(|c| (rows_of(c.entry).0, c.escalation_seqs))
            .collect(),
    )
}

/// One batch of the [`prepare`]d rows of a group of entries, in commit
/// order, each with the escalation sequence numbers the journal assigned
/// it (one per `Escalated` fact, in order); and each entry's timer update.
///
/// Merging is all that is left: the log rows get their keys, the open
/// escalations apply in order (one fired and resolved within the group is
/// not left open: the store applies clears before sets), and the index
/// keys are netted over the group (an entry's keys before are its
/// predecessor's keys after), so no key is both cleared and set.
pub fn apply_prepared(prepared: Vec<(Rows, &[u64])>) -> (WriteBatch, Vec<TimerUpdate>) {
    let mut b = WriteBatch::default();
    let mut updates = Vec::with_capacity(prepared.len());
    // Every list sized once (a group is thousands of entries: grown
    // step by step, each would be copied and its pages touched anew).
    let total = |f: fn(&Rows) -> usize| prepared.iter().map(|(r, _)| f(r)).sum::<usize>();
    b.customers.reserve(total(|r| r.batch.customers.len()));
    b.facts.reserve(total(|r| r.batch.facts.len()));
    b.counters.reserve(total(|r| r.batch.counters.len()));
    b.timers_set.reserve(total(|r| r.batch.timers_set.len()));
    b.timers_cleared
        .reserve(total(|r| r.batch.timers_cleared.len()));
    b.escalations.reserve(total(|r| r.escalations.len()));
    // A key can change twice in one group only through two entries of
    // one customer (every key holds its customer, and one entry never
    // both clears and sets a key): without such a pair, nothing to net.
    let mut seen = std::collections::HashSet::with_capacity(prepared.len());
    let net = !prepared
        .iter()
        .filter(|(r, _)| !r.index.is_empty())
        .all(|(r, _)| seen.insert((r.shard, r.customer_hash)));
    // Every index change in commit order, netted below when it must be.
    let mut index_ops: Vec<(Vec<u8>, bool)> = Vec::new();
    for (rows, seqs) in prepared {
        assert_eq!(
            rows.escalations.len(),
            seqs.len(),
            "invariant: the journal assigns one sequence per escalation"
        );
        let Rows {
            shard,
            customer_hash: _,
            batch,
            escalations,
            open,
            index,
            timers,
        } = rows;
        for fence in &batch.fences {
            if !b.fences.contains(fence) {
                b.fences.push(*fence);
            }
        }
        b.customers.extend(batch.customers);
        b.facts.extend(batch.facts);
        b.counters.extend(batch.counters);
        b.timers_set.extend(batch.timers_set);
        b.timers_cleared.extend(batch.timers_cleared);
        b.escalations.extend(
            seqs.iter()
                .zip(escalations)
                .map(|(seq, e)| (shard, *seq, e)),
        );
        for op in open {
            match op {
                OpenOp::Set(row) => b.open_set.push(row),
                OpenOp::Clear(team, id) => {
                    b.open_set
                        .retain(|r| r.team != team || r.escalation_id != id);
                    b.open_cleared.push((team, id));
                }
            }
        }
        if net {
            index_ops.extend(index);
        } else {
            for (k, set) in index {
                match set {
                    true => b.index_set.push(k),
                    false => b.index_cleared.push(k),
                }
            }
        }
        updates.push(timers);
    }
    // The last change of a key wins: a stable sort keeps commit order
    // among equal keys (cheaper than a map: most keys change once).
    index_ops.sort_by(|a, b| a.0.cmp(&b.0));
    let mut ops = index_ops.into_iter().peekable();
    while let Some((k, set)) = ops.next() {
        if ops.peek().is_some_and(|(next, _)| *next == k) {
            continue;
        }
        if set {
            b.index_set.push(k);
        } else {
            b.index_cleared.push(k);
        }
    }
    (b, updates)
}

/// The query index keys an entry changes (cleared where the state after
/// no longer has the membership, set where it newly has it), and the
/// gauges the change of index families moves (`counters::gauges`), into
/// `rows`; returns the customer's memberships after the entry (`None`
/// without facts). Only the changed memberships are laid out as keys.
fn index_rows(e: &Entry, rows: &mut Rows) -> Option<Memberships> {
    if e.facts.is_empty() {
        return None;
    }
    let after = index::memberships(&e.model, &e.state);
    // Both lists come in the order `memberships` gives, so one that
    // stayed is mostly at the same place in both: looked at first.
    let holds = |ms: &[(index::Family, Timestamp)], i: usize, m: &(index::Family, Timestamp)| {
        ms.get(i) == Some(m) || ms.contains(m)
    };
    let key =
        |(f, since): &(index::Family, Timestamp)| index::key(f, *since, e.shard, &e.state.customer);
    for (i, m) in e.index_before.iter().enumerate() {
        if !holds(&after, i, m) {
            rows.index.push((key(m), false));
        }
    }
    for (i, m) in after.iter().enumerate() {
        if !holds(&e.index_before, i, m) {
            rows.index.push((key(m), true));
        }
    }
    // Most events move no gauge: they are worked out (names and all) only
    // when a key they are counted by changed, and from the changed keys
    // alone unless the customer changed versions.
    if rows.index.iter().any(|(k, _)| index::counts(k)) {
        let moved = counters::gauge_changes(&e.model, &e.state, &rows.index)
            .unwrap_or_else(|| counters::gauges(&e.model, &e.state, &e.index_before, &after));
        rows.batch.counters.extend(
            moved
                .into_iter()
                .map(|(name, delta)| (e.shard, name, delta)),
        );
    }
    Some(after)
}

/// The store key of a customer's timer.
pub fn timer_key(shard: u32, customer: &str, t: &Timer) -> TimerKey {
    TimerKey {
        shard,
        deadline_us: t.due.0,
        customer: customer.to_owned(),
        sla: t.sla.0,
        tier: t.tier,
        repeat: t.repeat,
        instance: t.instance,
    }
}

/// An escalation as the log keeps it (with names: the log outlives model
/// versions), for the customer `s` after the escalation's facts.
pub fn escalation_entry(model: &Model, s: &CustomerState, e: &Escalation) -> EscalationEntry {
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

/// One entry's rows: everything [`apply_prepared`] does not need the
/// group for; and the customer's memberships after it, into
/// [`Entry::index_after`]. Pure, and cheap to call on the proposer's
/// thread.
pub fn prepare(e: &mut Entry) -> Rows {
    let (rows, after) = rows_of(e);
    e.index_after = after;
    rows
}

/// [`prepare`], with the memberships after the entry returned.
fn rows_of(e: &Entry) -> (Rows, Option<Memberships>) {
    let mut rows = Rows {
        shard: e.shard,
        // Only compared within one group (a collision costs a netting).
        customer_hash: {
            use std::hash::BuildHasher;
            rustc_hash::FxBuildHasher.hash_one(&e.customer)
        },
        ..Rows::default()
    };
    let b = &mut rows.batch;
    let model = &*e.model;
    let (shard, state) = (e.shard, &e.state);
    b.fences.push(Fence {
        shard,
        epoch: e.epoch,
    });
    if !e.facts.is_empty() && state.exists {
        let last_fact_seq = e.seq + e.facts.len() as u64 - 1;
        b.customers.push((
            shard,
            e.customer.clone(),
            codec::encode_customer_at(state, last_fact_seq),
        ));
    }
    b.counters.extend(
        e.facts
            .iter()
            .flat_map(|f| counters::counted(model, state, f))
            .map(|(name, delta)| (shard, name, delta)),
    );
    for (i, f) in e.facts.iter().enumerate() {
        b.facts.push((
            shard,
            e.customer.clone(),
            e.seq + i as u64,
            e.at.0,
            codec::encode_fact(f),
        ));
    }
    for f in &e.facts {
        match f {
            Fact::Escalated(x) => {
                let esc = escalation_entry(model, state, x);
                let bytes = codec::encode_escalation(&esc);
                match x.kind {
                    EscalationKind::TierReached | EscalationKind::Breached => {
                        rows.open.push(OpenOp::Set(OpenRow {
                            team: esc.team.clone(),
                            escalation_id: esc.escalation_id.clone(),
                            entry: bytes.clone(),
                            acknowledged: false,
                        }));
                    }
                    EscalationKind::Resolved => {
                        rows.open.push(OpenOp::Clear(esc.team, esc.escalation_id));
                    }
                }
                rows.escalations.push(bytes);
            }
            Fact::Acknowledged {
                sla,
                instance,
                tier,
                repeat,
                ..
            } => {
                if let Some(x) = state.core.fired(*sla, *instance, *tier, *repeat) {
                    let esc = escalation_entry(model, state, &x.escalation);
                    rows.open.push(OpenOp::Set(OpenRow {
                        team: esc.team.clone(),
                        escalation_id: esc.escalation_id.clone(),
                        entry: codec::encode_escalation(&esc),
                        acknowledged: true,
                    }));
                }
            }
            _ => {}
        }
    }
    let key = |t: &Timer| timer_key(shard, &e.customer, t);
    rows.timers = TimerUpdate {
        armed: e.timers.armed.iter().map(key).collect(),
        cleared: e
            .timers
            .disarmed
            .iter()
            .chain(e.stale_timer().iter())
            .map(key)
            .collect(),
    };
    let b = &mut rows.batch;
    b.timers_set.extend(rows.timers.armed.iter().cloned());
    b.timers_cleared.extend(rows.timers.cleared.iter().cloned());
    let after = index_rows(e, &mut rows);
    (rows, after)
}
