//! `apply_committed` on entries the engine really decided (the reference
//! model): which rows each kind of entry becomes.

use super::testing::{Customer, MIN, T0, saas};
use super::*;
use crate::engine::Input;
use crate::store::{MemoryStore, Store, codec};

fn apply_one(entry: &Entry, seqs: &[u64]) -> (WriteBatch, TimerUpdate) {
    let (batch, mut updates) = apply_committed(&[Committed {
        entry,
        escalation_seqs: seqs,
    }]);
    assert_eq!(updates.len(), 1);
    (batch, updates.remove(0))
}

/// A group of entries that fire nothing (no sequence numbers to assign).
fn no_escalations(entries: &[Entry]) -> Vec<Committed<'_>> {
    entries
        .iter()
        .map(|entry| Committed {
            entry,
            escalation_seqs: &[],
        })
        .collect()
}

#[test]
fn a_payment_writes_the_record_its_facts_and_arms_the_sla_timer() {
    let model = saas();
    let mut c = Customer::new("acme");
    let won = c.event(&model, "crm", "deal_won", T0);
    let paid = c.event(&model, "billing", "payment_succeeded", T0 + MIN);
    let (batch, timers) = apply_one(&paid, &[]);

    let (shard, customer, record) = &batch.customers[0];
    assert_eq!((*shard, customer.as_str()), (3, "acme"));
    let (stored, last_fact_seq) = codec::decode_customer_at(record).expect("decodes");
    assert_eq!(&stored, c.state.as_ref().expect("exists"));
    assert_eq!(
        last_fact_seq,
        (won.facts.len() + paid.facts.len()) as u64,
        "the record says its history's last key, so a load is one read"
    );
    let seqs: Vec<u64> = batch.facts.iter().map(|f| f.2).collect();
    let first = won.facts.len() as u64 + 1;
    assert_eq!(
        seqs,
        (first..first + paid.facts.len() as u64).collect::<Vec<_>>(),
        "one key per fact, numbered on from the customer's last"
    );
    assert!(
        batch.facts.iter().all(|f| f.3 == T0 + MIN),
        "each fact carries when its entry was decided, for the retention"
    );
    assert_eq!(timers.armed.len(), 1, "access_after_payment's first tier");
    assert_eq!(batch.timers_set, timers.armed);
    assert_eq!(
        timers.armed[0].sla,
        model.sla("access_after_payment").expect("declared").0
    );
    assert!(batch.escalations.is_empty() && batch.open_set.is_empty());
}

#[test]
fn a_firing_writes_the_log_row_with_its_sequence_and_the_open_index() {
    let model = saas();
    let mut c = Customer::new("acme");
    c.event(&model, "crm", "deal_won", T0);
    c.event(&model, "billing", "payment_succeeded", T0 + MIN);
    let firing = c.fire(&model);
    assert_eq!(firing.escalations(), 1);
    let (batch, timers) = apply_one(&firing, &[41]);

    assert_eq!(batch.escalations.len(), 1);
    let (shard, seq, bytes) = &batch.escalations[0];
    assert_eq!((*shard, *seq), (3, 41));
    let logged = codec::decode_escalation(bytes).expect("decodes");
    assert_eq!(logged.customer, "acme");
    assert_eq!(logged.sla, "access_after_payment");
    assert_eq!(logged.team, "provisioning");
    assert_eq!(batch.open_set.len(), 1);
    assert_eq!(batch.open_set[0].escalation_id, logged.escalation_id);
    assert!(!batch.open_set[0].acknowledged);
    // The fired tier's key goes, the next tier's comes.
    assert_eq!(timers.cleared.len(), 1);
    assert_eq!(timers.armed.len(), 1);

    // Access: the SLA stops, the escalation is resolved and leaves the index.
    let access = c.event(&model, "access", "access_granted", T0 + 40 * MIN);
    assert_eq!(access.escalations(), 1, "a resolved event");
    let (batch, timers) = apply_one(&access, &[42]);
    assert_eq!(
        batch.open_cleared,
        vec![("provisioning".to_owned(), logged.escalation_id.clone())]
    );
    assert_eq!(batch.escalations[0].1, 42);
    assert_eq!(timers.cleared.len(), 1, "the pending breach timer");
}

#[test]
fn an_escalation_fired_and_resolved_in_one_batch_is_not_left_open() {
    let model = saas();
    let mut c = Customer::new("acme");
    c.event(&model, "crm", "deal_won", T0);
    c.event(&model, "billing", "payment_succeeded", T0 + MIN);
    let firing = c.fire(&model);
    let access = c.event(&model, "access", "access_granted", T0 + 40 * MIN);
    let (batch, _) = apply_committed(&[
        Committed {
            entry: &firing,
            escalation_seqs: &[1],
        },
        Committed {
            entry: &access,
            escalation_seqs: &[2],
        },
    ]);
    assert!(batch.open_set.is_empty(), "{:?}", batch.open_set);
    assert_eq!(batch.open_cleared.len(), 1);
    let store = MemoryStore::new();
    store.commit(batch).expect("commits");
    assert!(
        store
            .open_escalations(Some("provisioning"))
            .expect("reads")
            .is_empty(),
        "nothing open in the store"
    );
}

#[test]
fn an_acknowledgement_marks_the_open_row() {
    let model = saas();
    let mut c = Customer::new("acme");
    c.event(&model, "crm", "deal_won", T0);
    c.event(&model, "billing", "payment_succeeded", T0 + MIN);
    let firing = c.fire(&model);
    let (batch, _) = apply_one(&firing, &[1]);
    let id = batch.open_set[0].escalation_id.clone();
    let ack = c.decide(
        &model,
        Input::Acknowledge {
            escalation_id: id.clone(),
            team: "provisioning".into(),
            note: "on it".into(),
        },
        None,
        T0 + 35 * MIN,
    );
    let (batch, timers) = apply_one(&ack, &[]);
    assert_eq!(batch.open_set.len(), 1);
    assert_eq!(batch.open_set[0].escalation_id, id);
    assert!(batch.open_set[0].acknowledged);
    assert!(timers.is_empty(), "acknowledging does not stop later tiers");
}

#[test]
fn a_stale_firing_clears_its_key_though_nothing_changed() {
    let model = saas();
    let mut c = Customer::new("acme");
    c.event(&model, "crm", "deal_won", T0);
    c.event(&model, "billing", "payment_succeeded", T0 + MIN);
    let t = c
        .state
        .as_ref()
        .and_then(|s| s.timers().min())
        .expect("pending");
    c.event(&model, "access", "access_granted", T0 + 2 * MIN);
    // The timer service fires the key it still held.
    let stale = c.decide(&model, Input::Timer(t), Some(t), t.due.0);
    assert!(stale.facts.is_empty());
    assert!(!stale.is_empty(), "its key must still leave the index");
    let (batch, timers) = apply_one(&stale, &[]);
    assert!(batch.customers.is_empty() && batch.facts.is_empty());
    assert_eq!(timers.cleared, vec![timer_key(3, "acme", &t)]);
    assert_eq!(batch.timers_cleared, timers.cleared);
}

#[test]
fn a_group_becomes_one_batch_in_commit_order_the_same_on_every_store() {
    let model = saas();
    let mut a = Customer::new("a");
    let mut b = Customer::new("b");
    let entries = [
        a.event(&model, "crm", "deal_won", T0),
        b.event(&model, "crm", "deal_won", T0),
        a.event(&model, "billing", "payment_succeeded", T0 + MIN),
    ];
    let committed = no_escalations(&entries);
    let (batch, updates) = apply_committed(&committed);
    assert_eq!(updates.len(), 3);
    let writers: Vec<&str> = batch.customers.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(writers, ["a", "b", "a"], "a later write of a key wins");
    // The same rows again give the same bytes: deterministic.
    assert_eq!(apply_committed(&committed).0, batch);
    let store = MemoryStore::new();
    store.commit(batch).expect("commits");
    let stored = store.customer(3, "a").expect("reads").expect("written");
    assert_eq!(
        codec::decode_customer(&stored).expect("decodes"),
        a.state.clone().expect("exists"),
        "the last record of `a` is the stored one"
    );
}

#[test]
fn a_group_nets_a_customer_s_index_keys_from_its_first_entry_to_its_last() {
    let model = saas();
    let (mut a, mut b) = (Customer::new("a"), Customer::new("b"));
    let entries = [
        a.event(&model, "crm", "deal_won", T0),
        b.event(&model, "crm", "deal_won", T0),
        a.event(&model, "billing", "payment_succeeded", T0 + MIN),
    ];
    let keys = |c: &Customer| index::keys(&model, 3, c.state.as_ref().expect("exists"));
    let created = index::keys(&model, 3, &entries[0].state);
    let (a_now, b_now) = (keys(&a), keys(&b));
    assert!(
        created.iter().any(|k| !a_now.contains(k)),
        "the payment moved `a`"
    );
    let committed = no_escalations(&entries);
    let (batch, _) = apply_committed(&committed);
    let sorted = |mut v: Vec<Vec<u8>>| {
        v.sort();
        v
    };
    // `a` had no keys before the group: what it has now is set, what its
    // creation set and the payment took away is cleared, never both.
    let set = sorted([a_now.clone(), b_now].concat());

    let gone = sorted(created.into_iter().filter(|k| !a_now.contains(k)).collect());
    assert_eq!(sorted(batch.index_set.clone()), set);
    assert_eq!(sorted(batch.index_cleared.clone()), gone);
    // Without a customer twice, every entry's changes go as they are.
    let once: Vec<Committed<'_>> = committed[1..].to_vec();
    let (batch, _) = apply_committed(&once);
    let (paid, _) = apply_one(&entries[2], &[]);
    assert_eq!(
        sorted(batch.index_set),
        sorted([paid.index_set, keys(&b)].concat())
    );
    assert_eq!(sorted(batch.index_cleared), sorted(paid.index_cleared));
}

#[test]
fn a_creation_and_an_ended_sla_are_counted_by_market_and_version() {
    let model = saas();
    let mut c = Customer::new("acme");
    let won = c.event(&model, "crm", "deal_won", T0);
    let (batch, _) = apply_one(&won, &[]);
    let customers = Counted::<String>::Customers {
        market: "US".into(),
        version: model.spec.version,
    };
    let names = |b: &crate::store::WriteBatch| -> Vec<(String, i64)> {
        b.counters
            .iter()
            .filter(|(_, n, _)| n.starts_with("customers\t") || n.starts_with("sla\t"))
            .map(|(_, n, d)| (n.clone(), *d))
            .collect()
    };
    assert_eq!(names(&batch), [(customers.name(), 1)]);
    assert_eq!(Counted::parse(&customers.name()), Some(customers));
    let paid = c.event(&model, "billing", "payment_succeeded", T0 + MIN);
    let (batch, _) = apply_one(&paid, &[]);
    let met = Counted::<String>::SlaEnded {
        market: "US".into(),
        version: model.spec.version,
        outcome: "met".into(),
    };
    assert!(
        names(&batch).contains(&(met.name(), 1)),
        "{:?}",
        batch.counters
    );
    assert_eq!(Counted::parse("something else"), None);

    // The stores that keep counters add them up with their batches.
    let store = MemoryStore::new();
    store.commit(batch.clone()).expect("commits");
    store.commit(batch).expect("commits");
    let counters = store.counters().expect("reads").expect("kept");
    assert_eq!(counters[&met.name()], 2);
}

#[test]
fn a_migration_moves_the_customer_between_version_counters() {
    let model = saas();
    let mut c = Customer::new("acme");
    let won = c.event(&model, "crm", "deal_won", T0);
    let (created, _) = apply_one(&won, &[]);
    let v = model.spec.version;
    let fact = Fact::Migrated {
        from: v,
        to: v + 1,
        at: Timestamp(T0 + MIN),
    };
    let mut state = c.state.clone().expect("created");
    state.apply(&model, &fact);
    assert_eq!(state.model_version, v + 1);
    let entry = Entry {
        seq: c.seq + 1,
        facts: vec![fact.clone()],
        at: Timestamp(T0 + MIN),
        timers: TimerChanges::default(),
        fired: None,
        state,
        ..won
    };
    let (batch, _) = apply_one(&entry, &[]);
    let on = |version| {
        Counted::<String>::Customers {
            market: "US".into(),
            version,
        }
        .name()
    };
    let counted: Vec<(String, i64)> = batch
        .counters
        .iter()
        .filter(|(_, n, _)| n.starts_with("customers\t"))
        .map(|(_, n, d)| (n.clone(), *d))
        .collect();
    assert_eq!(counted, [(on(v), -1), (on(v + 1), 1)]);
    assert_eq!(batch.facts.len(), 1);
    assert_eq!(
        codec::decode_fact(&batch.facts[0].4).expect("decodes"),
        fact
    );
    let (_, _, record) = &batch.customers[0];
    assert_eq!(
        codec::decode_customer(record)
            .expect("decodes")
            .model_version,
        v + 1
    );

    let store = MemoryStore::new();
    store.commit(created).expect("commits");
    store.commit(batch).expect("commits");
    let counters = store.counters().expect("reads").expect("kept");
    let count = |name: String| counters.get(&name).copied().unwrap_or(0);
    assert_eq!((count(on(v)), count(on(v + 1))), (0, 1));
}

/// Every counter of a store whose name starts with one of `kinds`, but
/// those at zero.
fn kept(store: &MemoryStore, kinds: &[&str]) -> std::collections::BTreeMap<String, i64> {
    store
        .counters()
        .expect("reads")
        .expect("kept")
        .into_iter()
        .filter(|(n, v)| *v != 0 && kinds.iter().any(|k| n.starts_with(&format!("{k}\t"))))
        .collect()
}

fn seqs_of(e: &Entry) -> Vec<u64> {
    (1..=e.escalations() as u64).collect()
}

#[test]
fn gauges_add_up_to_a_recount_of_the_last_state_one_by_one_or_grouped() {
    let model = saas();
    let mut c = Customer::new("acme");
    let mut entries = vec![
        c.event(&model, "crm", "deal_won", T0),
        c.event(&model, "billing", "payment_succeeded", T0 + MIN),
    ];
    // The warning, then the breach of access_after_payment.
    entries.push(c.fire(&model));
    entries.push(c.fire(&model));
    let breached_now = c.state.clone().expect("created");
    let open = |status: &str| Counted::<String>::SlaOpen {
        market: "US".into(),
        version: model.spec.version,
        sla: "access_after_payment".into(),
        status: status.into(),
    };
    let at_breach: std::collections::BTreeMap<String, i64> =
        counters::gauges_now(&model, &breached_now)
            .into_iter()
            .collect();
    assert_eq!(at_breach.get(&open("breached").name()), Some(&1));
    assert_eq!(at_breach.get(&open("running").name()), Some(&1));
    entries.push(c.event(&model, "access", "access_granted", T0 + 600 * MIN));
    let last = c.state.clone().expect("created");
    let want: std::collections::BTreeMap<String, i64> =
        counters::gauges_now(&model, &last).into_iter().collect();
    let active = Counted::<String>::InState {
        market: "US".into(),
        version: model.spec.version,
        region: "lifecycle".into(),
        state: "active".into(),
    };
    assert_eq!(want.get(&active.name()), Some(&1), "{want:?}");
    assert!(!want.contains_key(&open("breached").name()), "ended");
    assert_eq!(
        want.keys().filter(|n| n.starts_with("state\t")).count(),
        model.region_ids().count(),
        "one state in every region"
    );

    let one_by_one = MemoryStore::new();
    for (i, e) in entries.iter().enumerate() {
        let (batch, _) = apply_one(e, &seqs_of(e));
        one_by_one.commit(batch).expect("commits");
        // The open escalations counted are the open-escalation index's rows.
        let rows = one_by_one.open_escalations(None).expect("reads").len() as i64;
        let counted: i64 = kept(&one_by_one, &["~escalations"]).values().sum();
        assert_eq!(counted, rows, "after entry {i}");
        if i == 3 {
            assert_eq!(rows, 2, "the warning and the breach are open");
            let recounted: i64 = counters::gauges_now(&model, &breached_now)
                .into_iter()
                .filter(|(n, _)| n.starts_with("~escalations\t"))
                .map(|(_, d)| d)
                .sum();
            assert_eq!(recounted, 2);
        }
    }
    assert_eq!(kept(&one_by_one, &["state", "open"]), want);
    assert!(kept(&one_by_one, &["~escalations"]).is_empty(), "resolved");

    let grouped = MemoryStore::new();
    let seqs: Vec<Vec<u64>> = entries.iter().map(seqs_of).collect();
    let committed: Vec<Committed<'_>> = entries
        .iter()
        .zip(&seqs)
        .map(|(entry, s)| Committed {
            entry,
            escalation_seqs: s,
        })
        .collect();
    let (batch, _) = apply_committed(&committed);
    grouped.commit(batch).expect("commits");
    assert_eq!(kept(&grouped, &["state", "open"]), want);

    // The events: the transitions the customer took, its SLA's end on
    // the day it ended (missed: granted after the breach), and its
    // elapsed time's bucket.
    let v = model.spec.version;
    let moved = |from: &str, to: &str| {
        Counted::<String>::Moved {
            market: "US".into(),
            version: v,
            region: "lifecycle".into(),
            from: from.into(),
            to: to.into(),
        }
        .name()
    };
    let events = kept(&grouped, &["moved", "ended", "elapsed"]);
    for (from, to) in [
        ("lead", "onboarding"),
        ("onboarding", "paid"),
        ("paid", "active"),
    ] {
        assert_eq!(events.get(&moved(from, to)), Some(&1), "{events:?}");
    }
    let missed = Counted::<String>::SlaEndedOn {
        market: "US".into(),
        version: v,
        sla: "access_after_payment".into(),
        outcome: "missed".into(),
        day: counters::day_of(Timestamp(T0 + 600 * MIN)),
    };
    assert_eq!(events.get(&missed.name()), Some(&1), "{events:?}");
    let elapsed = Counted::<String>::Elapsed {
        market: "US".into(),
        version: v,
        sla: "access_after_payment".into(),
        day: counters::day_of(Timestamp(T0 + 600 * MIN)),
        bucket: counters::elapsed_bucket(599 * MIN),
    };
    assert_eq!(events.get(&elapsed.name()), Some(&1), "{events:?}");
    assert_eq!(events, kept(&one_by_one, &["moved", "ended", "elapsed"]));
}

#[test]
fn a_migration_moves_the_gauges_to_the_target_version() {
    let model = saas();
    let mut c = Customer::new("acme");
    let won = c.event(&model, "crm", "deal_won", T0);
    let (created, _) = apply_one(&won, &[]);
    let v = model.spec.version;
    let before = c.state.clone().expect("created");
    let fact = Fact::Migrated {
        from: v,
        to: v + 1,
        at: Timestamp(T0 + MIN),
    };
    let mut state = before.clone();
    state.apply(&model, &fact);
    let entry = Entry {
        seq: c.seq + 1,
        facts: vec![fact],
        at: Timestamp(T0 + MIN),
        timers: TimerChanges::default(),
        fired: None,
        index_before: index::memberships(&model, &before),
        state: state.clone(),
        ..won
    };
    let (batch, _) = apply_one(&entry, &[]);
    let store = MemoryStore::new();
    store.commit(created).expect("commits");
    store.commit(batch).expect("commits");
    let want: std::collections::BTreeMap<String, i64> =
        counters::gauges_now(&model, &state).into_iter().collect();
    assert!(want.keys().all(|n| n.contains(&format!("\t{}\t", v + 1))));
    assert_eq!(kept(&store, &["state", "open"]), want);
}

#[test]
fn the_gauges_worked_out_from_the_changed_keys_equal_those_from_every_key() {
    let model = saas();
    let mut c = Customer::new("acme");
    let entries = [
        c.event(&model, "crm", "deal_won", T0),
        c.event(&model, "billing", "payment_succeeded", T0 + MIN),
        c.fire(&model),
        c.fire(&model),
        c.event(&model, "access", "access_granted", T0 + 600 * MIN),
    ];
    let mut compared = 0;
    for (i, e) in entries.iter().enumerate() {
        let memberships = index::memberships(&e.model, &e.state);
        let after: Vec<Vec<u8>> = memberships
            .iter()
            .map(|(f, since)| index::key(f, *since, e.shard, &e.state.customer))
            .collect();
        let before: Vec<Vec<u8>> = e
            .index_before
            .iter()
            .map(|(f, since)| index::key(f, *since, e.shard, &e.state.customer))
            .collect();
        let mut changed: Vec<(Vec<u8>, bool)> = Vec::new();
        changed.extend(
            before
                .iter()
                .filter(|k| !after.contains(k))
                .map(|k| (k.clone(), false)),
        );
        changed.extend(
            after
                .iter()
                .filter(|k| !before.contains(k))
                .map(|k| (k.clone(), true)),
        );
        let mut every = counters::gauges(&e.model, &e.state, &e.index_before, &memberships);
        every.sort();
        match counters::gauge_changes(&e.model, &e.state, &changed) {
            // The creation sets the version key: every gauge is new.
            None => assert_eq!(i, 0, "only the creation changes the version key"),
            Some(mut from_changes) => {
                from_changes.sort();
                assert_eq!(from_changes, every, "entry {i}");
                compared += usize::from(!every.is_empty());
            }
        }
    }
    // The payment, the breach and the grant each moved gauges.
    assert!(compared >= 3, "{compared} entries moved gauges");
}
