//! The [`Store`] contract, as tests: each test is a generic function run
//! against every implementation (`memory::*` and `fjall::*` below), plus
//! the fjall-only ones (reopen, lock).

use std::sync::atomic::{AtomicBool, Ordering};

use super::{
    FjallStore, MemoryStore, OpenRow, PgOptions, PgStore, Store, StoreError, TimerKey, WriteBatch,
};

fn timer(shard: u32, deadline_us: i64, customer: &str, sla: u16, tier: u16) -> TimerKey {
    TimerKey {
        shard,
        deadline_us,
        customer: customer.into(),
        sla,
        tier,
        repeat: 0,
        instance: 1,
    }
}

/// A batch that writes a customer and some of its facts (fact `seq`
/// decided at `seq` microseconds).
fn customer_batch(shard: u32, customer: &str, record: &str, facts: &[u64]) -> WriteBatch {
    let facts: Vec<(u64, i64)> = facts.iter().map(|seq| (*seq, *seq as i64)).collect();
    aged_batch(shard, customer, record, &facts)
}

/// A batch that writes a customer and some of its facts, as
/// `(seq, decided at)`.
fn aged_batch(shard: u32, customer: &str, record: &str, facts: &[(u64, i64)]) -> WriteBatch {
    WriteBatch {
        customers: vec![(shard, customer.into(), record.as_bytes().to_vec())],
        facts: facts
            .iter()
            .map(|(seq, at_us)| {
                (
                    shard,
                    customer.into(),
                    *seq,
                    *at_us,
                    format!("{customer}#{seq}").into_bytes(),
                )
            })
            .collect(),
        ..WriteBatch::default()
    }
}

/// Everything one batch wrote, across every kind of record.
fn full_batch() -> WriteBatch {
    WriteBatch {
        customers: vec![(1, "c1".into(), b"state".to_vec())],
        facts: vec![
            (1, "c1".into(), 1, 100, b"f1".to_vec()),
            (1, "c1".into(), 2, 100, b"f2".to_vec()),
        ],
        timers_set: vec![timer(1, 100, "c1", 0, 0)],
        timers_cleared: vec![],
        escalations: vec![(1, 1, b"esc1".to_vec())],
        open_set: vec![OpenRow {
            team: "billing".into(),
            escalation_id: "c1:s:1:0:0".into(),
            entry: b"esc1".to_vec(),
            acknowledged: false,
        }],
        open_cleared: vec![],
        counters: vec![],
        fences: vec![],
        index_set: vec![b"\x01idx-c1".to_vec()],
        index_cleared: vec![],
    }
}

fn assert_full_batch_visible(s: &dyn Store) {
    assert_eq!(s.customer(1, "c1").expect("read"), Some(b"state".to_vec()));
    assert_eq!(
        s.open_escalations(Some("billing")).expect("read"),
        vec![(b"esc1".to_vec(), false)]
    );
    assert_eq!(s.last_fact_seq(1, "c1").expect("read"), Some(2));
    assert_eq!(
        s.timers(1, None, 10).expect("read"),
        vec![timer(1, 100, "c1", 0, 0)]
    );
    assert_eq!(
        s.escalations(1, None, 10).expect("read"),
        vec![(1, b"esc1".to_vec())]
    );
    assert_eq!(
        s.index_keys(b"\x01", b"\x02", false, 10).expect("read"),
        vec![b"\x01idx-c1".to_vec()]
    );
}

// ------------------------------------------------------------------- tests

fn commit_then_read(s: &dyn Store) {
    assert_eq!(s.customer(1, "c1").expect("read"), None);
    assert_eq!(s.last_fact_seq(1, "c1").expect("read"), None);
    s.commit(WriteBatch::default())
        .expect("an empty batch commits");
    s.commit(full_batch()).expect("commits");
    assert_full_batch_visible(s);
    // Same id, other shard: another customer.
    assert_eq!(s.customer(2, "c1").expect("read"), None);
    assert_eq!(s.last_fact_seq(2, "c1").expect("read"), None);
}

fn many_customers_read_at_once_answer_in_order(s: &dyn Store) {
    assert_eq!(
        s.customers(&[]).expect("reads"),
        Vec::<Option<Vec<u8>>>::new()
    );
    s.commit(customer_batch(1, "a", "ra", &[1]))
        .expect("commits");
    s.commit(customer_batch(2, "b", "rb", &[1]))
        .expect("commits");
    let keys: Vec<(u32, String)> = [(2, "b"), (1, "a"), (1, "b"), (2, "b"), (3, "a\0")]
        .iter()
        .map(|(shard, c)| (*shard, (*c).to_owned()))
        .collect();
    assert_eq!(
        s.customers(&keys).expect("reads"),
        vec![
            Some(b"rb".to_vec()),
            Some(b"ra".to_vec()),
            None,
            Some(b"rb".to_vec()),
            None
        ],
        "in the order asked, a key asked twice answered twice"
    );
}

fn histories_scan_in_order_and_resume_anywhere(s: &dyn Store) {
    // `b` decided three facts at once (one journal entry; one run where a
    // store keeps runs), then one more; `a` on shard 1, `c` on shard 2.
    s.commit(aged_batch(
        1,
        "b",
        "rb",
        &[(1, 10), (2, 10), (3, 10), (4, 20)],
    ))
    .expect("commits");
    s.commit(aged_batch(1, "a", "ra", &[(1, 5)]))
        .expect("commits");
    s.commit(aged_batch(2, "c", "rc", &[(1, 5), (2, 6)]))
        .expect("commits");
    let want: Vec<(u32, String, u64, Vec<u8>)> = [
        (1, "a", 1),
        (1, "b", 1),
        (1, "b", 2),
        (1, "b", 3),
        (1, "b", 4),
        (2, "c", 1),
        (2, "c", 2),
    ]
    .iter()
    .map(|(shard, c, seq)| {
        (
            *shard,
            (*c).to_owned(),
            *seq,
            format!("{c}#{seq}").into_bytes(),
        )
    })
    .collect();
    for page in [1, 2, 3, 100] {
        let mut got = Vec::new();
        loop {
            let after = got
                .last()
                .map(|(shard, c, seq, _): &(u32, String, u64, Vec<u8>)| (*shard, c.as_str(), *seq));
            let rows = s.scan_facts(after, page).expect("scans");
            assert!(rows.len() <= page, "at most the limit");
            if rows.is_empty() {
                break;
            }
            got.extend(rows);
        }
        assert_eq!(got, want, "pages of {page}");
    }
    assert!(s.scan_facts(None, 0).expect("scans").is_empty());
}

fn facts_are_per_customer(s: &dyn Store) {
    // Customers whose ids prefix one another, or hold NUL bytes.
    for c in ["a", "ab", "a\0", "a\0b", ""] {
        s.commit(customer_batch(3, c, c, &[1, 2, 3, 300]))
            .expect("commits");
    }
    for c in ["a", "ab", "a\0", "a\0b", ""] {
        assert_eq!(s.last_fact_seq(3, c).expect("read"), Some(300), "{c:?}");
        assert_eq!(s.customer(3, c).expect("read"), Some(c.as_bytes().to_vec()));
    }
    assert_eq!(s.last_fact_seq(3, "a\0c").expect("read"), None);
}

fn later_writes_win_and_set_beats_clear(s: &dyn Store) {
    let t = timer(1, 5, "c1", 0, 0);
    let mut b = customer_batch(1, "c1", "v1", &[1]);
    b.extend(customer_batch(1, "c1", "v2", &[1]));
    b.timers_set.push(t.clone());
    b.timers_cleared.push(t.clone());
    s.commit(b).expect("commits");
    assert_eq!(s.customer(1, "c1").expect("read"), Some(b"v2".to_vec()));
    assert_eq!(s.timers(1, None, 10).expect("read"), vec![t.clone()]);

    s.commit(WriteBatch {
        timers_cleared: vec![t],
        ..WriteBatch::default()
    })
    .expect("commits");
    assert_eq!(s.timers(1, None, 10).expect("read"), vec![]);
    // Clearing a timer that is not there is fine.
    s.commit(WriteBatch {
        timers_cleared: vec![timer(1, 6, "nobody", 0, 0)],
        ..WriteBatch::default()
    })
    .expect("commits");
}

fn timers_scan_in_firing_order(s: &dyn Store) {
    let customers = ["", "\0", "a", "a\0", "a\0b", "ab", "é", "z:z", "\u{10FFFF}"];
    let deadlines = [i64::MIN, -1_000_000, -1, 0, 1, 1_000_000, i64::MAX];
    let mut all = Vec::new();
    for (i, c) in customers.iter().enumerate() {
        for d in deadlines {
            for (sla, tier) in [(0, 0), (0, 1), (1, 0), (0, u16::MAX)] {
                all.push(timer(7, d, c, sla, tier));
            }
        }
        // Neighbouring shards must never leak in.
        all.push(timer(6, i64::MAX, c, 0, 0));
        all.push(timer(8, i64::MIN + i as i64, c, 0, 0));
    }
    // Written in several batches, in an order unlike the firing order.
    for chunk in all.rchunks(17) {
        s.commit(WriteBatch {
            timers_set: chunk.to_vec(),
            ..WriteBatch::default()
        })
        .expect("commits");
    }
    let mut want: Vec<TimerKey> = all.iter().filter(|t| t.shard == 7).cloned().collect();
    want.sort();
    assert!(want[0].deadline_us == i64::MIN && want[0].customer.is_empty());

    // Paged scan, resuming after the last key seen.
    let mut got = Vec::new();
    let mut from: Option<TimerKey> = None;
    loop {
        let page = s.timers(7, from.as_ref(), 10).expect("scan");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        from = page.last().cloned();
        got.extend(page);
    }
    assert_eq!(got, want);
    assert_eq!(s.timers(7, None, 0).expect("scan"), vec![]);

    // Negative deadlines come before zero and positive ones.
    let first_non_negative = got.iter().position(|t| t.deadline_us >= 0).expect("some");
    assert!(got[..first_non_negative].iter().all(|t| t.deadline_us < 0));

    // A cursor from a lower shard starts at the shard's beginning; from a
    // higher one finds nothing.
    let low = timer(6, i64::MAX, "zzz", 9, 9);
    assert_eq!(
        s.timers(7, Some(&low), 3).expect("scan"),
        want[..3].to_vec()
    );
    let high = timer(8, i64::MIN, "", 0, 0);
    assert_eq!(s.timers(7, Some(&high), 3).expect("scan"), vec![]);
    assert_eq!(
        s.timers(8, None, 1).expect("scan"),
        vec![timer(8, i64::MIN, "", 0, 0)]
    );
}

/// The highest sequence number the contract promises a store keeps (a
/// shard's log never comes near 2^63 entries; PostgreSQL's int8 stops there).
const LAST_SEQ: u64 = i64::MAX as u64;

fn escalations_resume_after_a_cursor(s: &dyn Store) {
    assert_eq!(s.last_escalation_seq(1).expect("read"), None);
    for seq in 1..=10u64 {
        s.commit(WriteBatch {
            escalations: vec![
                (1, seq, format!("s1e{seq}").into_bytes()),
                (0, seq * 100, b"other".to_vec()),
                (2, seq, b"other".to_vec()),
            ],
            ..WriteBatch::default()
        })
        .expect("commits");
    }
    let seqs = |after, limit| -> Vec<u64> {
        s.escalations(1, after, limit)
            .expect("read")
            .into_iter()
            .map(|(seq, _)| seq)
            .collect()
    };
    assert_eq!(seqs(None, 3), vec![1, 2, 3]);
    assert_eq!(seqs(Some(3), 3), vec![4, 5, 6]);
    assert_eq!(seqs(Some(9), 3), vec![10]);
    assert_eq!(seqs(Some(10), 3), Vec::<u64>::new());
    assert_eq!(seqs(Some(u64::MAX), 3), Vec::<u64>::new());
    assert_eq!(seqs(None, 0), Vec::<u64>::new());
    assert_eq!(
        s.escalations(1, Some(4), 1).expect("read"),
        vec![(5, b"s1e5".to_vec())]
    );
    assert_eq!(s.last_escalation_seq(1).expect("read"), Some(10));
    assert_eq!(s.last_escalation_seq(0).expect("read"), Some(1000));
    assert_eq!(s.last_escalation_seq(3).expect("read"), None);
    // The highest shard has no upper neighbour to stop at.
    s.commit(WriteBatch {
        escalations: vec![(u32::MAX, LAST_SEQ, b"last".to_vec())],
        ..WriteBatch::default()
    })
    .expect("commits");
    assert_eq!(
        s.last_escalation_seq(u32::MAX).expect("read"),
        Some(LAST_SEQ)
    );
    assert_eq!(
        s.escalations(u32::MAX, None, 5).expect("read"),
        vec![(LAST_SEQ, b"last".to_vec())]
    );
}

fn pruning_removes_the_oldest_escalations_but_never_the_newest(s: &dyn Store) {
    assert_eq!(s.prune_escalations(1, 100, 10).expect("prunes"), 0, "empty");
    for seq in 1..=10u64 {
        s.commit(WriteBatch {
            escalations: vec![
                (1, seq, format!("s1e{seq}").into_bytes()),
                (0, seq, b"other".to_vec()),
                (2, seq, b"other".to_vec()),
            ],
            ..WriteBatch::default()
        })
        .expect("commits");
    }
    let seqs = |shard| -> Vec<u64> {
        s.escalations(shard, None, 100)
            .expect("read")
            .into_iter()
            .map(|(seq, _)| seq)
            .collect()
    };
    // Bounded: at most `limit` of the oldest below `before_seq`.
    assert_eq!(s.prune_escalations(1, 6, 2).expect("prunes"), 2);
    assert_eq!(seqs(1), (3..=10).collect::<Vec<_>>());
    assert_eq!(s.prune_escalations(1, 6, 100).expect("prunes"), 3);
    assert_eq!(seqs(1), (6..=10).collect::<Vec<_>>());
    assert_eq!(s.prune_escalations(1, 6, 100).expect("prunes"), 0, "done");
    // Other shards are untouched.
    assert_eq!(seqs(0), (1..=10).collect::<Vec<_>>());
    assert_eq!(seqs(2), (1..=10).collect::<Vec<_>>());
    // Everything old: the newest stays, and numbering goes on from it.
    assert_eq!(s.prune_escalations(1, u64::MAX, 100).expect("prunes"), 4);
    assert_eq!(
        s.escalations(1, None, 100).expect("read"),
        vec![(10, b"s1e10".to_vec())]
    );
    assert_eq!(s.last_escalation_seq(1).expect("read"), Some(10));
    assert_eq!(s.prune_escalations(1, u64::MAX, 100).expect("prunes"), 0);
    assert_eq!(s.last_escalation_seq(1).expect("read"), Some(10));
    s.commit(WriteBatch {
        escalations: vec![(1, 11, b"s1e11".to_vec())],
        ..WriteBatch::default()
    })
    .expect("commits");
    assert_eq!(s.prune_escalations(1, u64::MAX, 100).expect("prunes"), 1);
    assert_eq!(seqs(1), vec![11]);
    assert_eq!(s.escalations(1, Some(3), 10).expect("read").len(), 1);
    assert_eq!(s.prune_escalations(7, u64::MAX, 100).expect("prunes"), 0);
}

fn pruning_removes_facts_decided_before_the_horizon(s: &dyn Store) {
    assert_eq!(s.prune_facts(1, i64::MAX, 10).expect("prunes"), 0, "empty");
    // Shard 1, horizon 50: six facts are older (one of them the oldest, at
    // a negative instant), two of `a`'s are not (one at exactly 50).
    // Customers whose ids prefix one another or hold NUL bytes.
    for (customer, facts) in [
        ("old1", &[(1, -1_000)][..]),
        ("old2", &[(1, 10), (2, 20)][..]),
        ("a", &[(1, 10), (2, 30), (3, 50), (4, 60)][..]),
        ("a\0", &[(7, 49)][..]),
    ] {
        s.commit(aged_batch(1, customer, customer, facts))
            .expect("commits");
        // The same customers on the neighbouring shards, all older.
        for shard in [0, 2] {
            s.commit(aged_batch(shard, customer, customer, &[(1, -5_000)]))
                .expect("commits");
        }
    }
    let last = |customer| s.last_fact_seq(1, customer).expect("reads");

    // Bounded, oldest first.
    assert_eq!(s.prune_facts(1, 50, 0).expect("prunes"), 0);
    assert_eq!(s.prune_facts(1, 50, 1).expect("prunes"), 1);
    assert_eq!(last("old1"), None, "the oldest went first");
    assert_eq!(
        (last("old2"), last("a"), last("a\0")),
        (Some(2), Some(4), Some(7))
    );
    assert_eq!(s.prune_facts(1, 50, 3).expect("prunes"), 3);
    assert_eq!(last("old2"), None, "decided at 10 and 20");
    assert_eq!((last("a"), last("a\0")), (Some(4), Some(7)));
    assert_eq!(s.prune_facts(1, 50, 100).expect("prunes"), 2);
    assert_eq!(last("a\0"), None);
    assert_eq!(s.prune_facts(1, 50, 100).expect("prunes"), 0, "done");
    // `a` keeps its newer facts, so its last seq still answers; customer
    // records are not history and stay.
    assert_eq!(last("a"), Some(4));
    assert_eq!(
        s.customer(1, "old1").expect("reads"),
        Some(b"old1".to_vec())
    );
    // Decided at the horizon itself is not before it.
    assert_eq!(s.prune_facts(1, 51, 100).expect("prunes"), 1);
    assert_eq!(last("a"), Some(4));
    assert_eq!(s.prune_facts(1, 61, 100).expect("prunes"), 1);
    assert_eq!(last("a"), None);
    // A pruned customer goes on with its history.
    s.commit(aged_batch(1, "a", "a", &[(5, 200)]))
        .expect("commits");
    assert_eq!(last("a"), Some(5));

    // The neighbouring shards were untouched; their own pruning removes
    // exactly theirs.
    for shard in [0, 2] {
        for c in ["old1", "old2", "a", "a\0"] {
            assert_eq!(s.last_fact_seq(shard, c).expect("reads"), Some(1));
        }
    }
    assert_eq!(s.prune_facts(0, -5_000, 100).expect("prunes"), 0);
    assert_eq!(s.prune_facts(0, -4_999, 100).expect("prunes"), 4);
    assert_eq!(s.last_fact_seq(2, "a").expect("reads"), Some(1));

    // The extremes of time; and a fact written twice in one batch goes by
    // its last decision time.
    s.commit(aged_batch(
        3,
        "edge",
        "edge",
        &[(1, i64::MIN), (2, i64::MAX)],
    ))
    .expect("commits");
    let mut twice = aged_batch(3, "twice", "twice", &[(1, 10)]);
    twice.extend(aged_batch(3, "twice", "twice", &[(1, 100)]));
    s.commit(twice).expect("commits");
    assert_eq!(s.prune_facts(3, i64::MIN, 100).expect("prunes"), 0);
    assert_eq!(s.prune_facts(3, 50, 100).expect("prunes"), 1, "edge#1");
    assert_eq!(s.last_fact_seq(3, "twice").expect("reads"), Some(1));
    assert_eq!(
        s.prune_facts(3, i64::MAX, 100).expect("prunes"),
        1,
        "twice#1"
    );
    assert_eq!(s.last_fact_seq(3, "twice").expect("reads"), None);
    assert_eq!(s.last_fact_seq(3, "edge").expect("reads"), Some(2));
    assert_eq!(s.prune_facts(7, i64::MAX, 100).expect("prunes"), 0);

    // One entry's facts (consecutive seqs, one decision time) are pruned
    // fact by fact as the limit says, even when a call ends inside them.
    s.commit(aged_batch(
        4,
        "run",
        "run",
        &[(1, 10), (2, 10), (3, 10), (4, 10), (5, 20)],
    ))
    .expect("commits");
    assert_eq!(s.prune_facts(4, 15, 2).expect("prunes"), 2);
    assert_eq!(s.last_fact_seq(4, "run").expect("reads"), Some(5));
    assert_eq!(s.prune_facts(4, 15, 1).expect("prunes"), 1);
    assert_eq!(s.prune_facts(4, 15, 100).expect("prunes"), 1, "seq 4");
    assert_eq!(s.prune_facts(4, 15, 100).expect("prunes"), 0);
    assert_eq!(s.last_fact_seq(4, "run").expect("reads"), Some(5));
    assert_eq!(s.prune_facts(4, 21, 100).expect("prunes"), 1);
    assert_eq!(s.last_fact_seq(4, "run").expect("reads"), None);
}

fn concurrent_commits_all_land(s: &dyn Store) {
    const THREADS: usize = 16;
    const EACH: u64 = 25;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                let c = format!("t{t}");
                for seq in 1..=EACH {
                    let mut b = customer_batch(t as u32 % 3, &c, &format!("v{seq}"), &[seq]);
                    b.timers_set.push(timer(t as u32 % 3, seq as i64, &c, 0, 0));
                    if seq > 1 {
                        b.timers_cleared
                            .push(timer(t as u32 % 3, seq as i64 - 1, &c, 0, 0));
                    }
                    s.commit(b).expect("commits");
                }
            });
        }
    });
    for t in 0..THREADS {
        let (shard, c) = (t as u32 % 3, format!("t{t}"));
        assert_eq!(
            s.customer(shard, &c).expect("read"),
            Some(format!("v{EACH}").into_bytes())
        );
        assert_eq!(s.last_fact_seq(shard, &c).expect("read"), Some(EACH));
    }
    let timers: usize = (0..3)
        .map(|shard| s.timers(shard, None, 1000).expect("scan").len())
        .sum();
    assert_eq!(timers, THREADS, "one live timer per customer");
}

/// A reader never sees part of a batch: batch `i` writes the customer
/// record `i`, its fact `i` and escalation `i`; whoever sees record `i`
/// then finds fact `i` and escalation `i`.
fn readers_see_whole_batches(s: &dyn Store) {
    const N: u64 = 150;
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut checks = 0u64;
            while !done.load(Ordering::Acquire) {
                if let Some(record) = s.customer(4, "c").expect("read") {
                    let i: u64 = String::from_utf8(record)
                        .expect("utf8")
                        .parse()
                        .expect("number");
                    let facts = s.last_fact_seq(4, "c").expect("read").expect("facts");
                    let esc = s
                        .last_escalation_seq(4)
                        .expect("read")
                        .expect("escalations");
                    assert!(
                        facts >= i && esc >= i,
                        "saw record {i}, facts {facts}, esc {esc}"
                    );
                    checks += 1;
                }
            }
            checks
        });
        for i in 1..=N {
            let mut b = customer_batch(4, "c", &i.to_string(), &[i]);
            b.escalations.push((4, i, b"e".to_vec()));
            s.commit(b).expect("commits");
        }
        done.store(true, Ordering::Release);
        let checks = reader.join().expect("the reader saw only whole batches");
        eprintln!("readers_see_whole_batches: {checks} consistent reads");
    });
}

fn flush_and_metrics(s: &dyn Store) {
    s.commit(full_batch()).expect("commits");
    s.flush().expect("flushes");
    assert_full_batch_visible(s);
    s.disk_bytes().expect("measures");
}

fn open_escalations_are_indexed_by_team(s: &dyn Store) {
    let row = |team: &str, id: &str, ack: bool| OpenRow {
        team: team.into(),
        escalation_id: id.into(),
        entry: format!("{team}/{id}").into_bytes(),
        acknowledged: ack,
    };
    let batch = WriteBatch {
        open_set: vec![
            row("provisioning", "c1:a:1:0:0", false),
            row("provisioning", "c2:a:1:0:0", false),
            row("cx_director", "c1:a:1:2:0", false),
            // A team whose name is a prefix of another's.
            row("prov", "c9:a:1:0:0", false),
        ],
        ..WriteBatch::default()
    };
    s.commit(batch).expect("commits");
    let prov = s.open_escalations(Some("provisioning")).expect("reads");
    assert_eq!(prov.len(), 2);
    assert_eq!(prov[0], (b"provisioning/c1:a:1:0:0".to_vec(), false));
    assert_eq!(s.open_escalations(None).expect("reads").len(), 4);
    // Acknowledge one, resolve another.
    let batch = WriteBatch {
        open_set: vec![row("provisioning", "c1:a:1:0:0", true)],
        open_cleared: vec![("provisioning".into(), "c2:a:1:0:0".into())],
        ..WriteBatch::default()
    };
    s.commit(batch).expect("commits");
    let prov = s.open_escalations(Some("provisioning")).expect("reads");
    assert_eq!(prov, vec![(b"provisioning/c1:a:1:0:0".to_vec(), true)]);
    assert_eq!(s.open_escalations(Some("nobody")).expect("reads"), vec![]);
}

fn meta_values_are_kept_apart_from_records(s: &dyn Store) {
    assert_eq!(s.meta("catalog").expect("reads"), None);
    s.put_meta("catalog", b"v1".to_vec()).expect("writes");
    s.put_meta("catalog", b"v2".to_vec()).expect("overwrites");
    s.commit(full_batch()).expect("commits");
    assert_eq!(s.meta("catalog").expect("reads"), Some(b"v2".to_vec()));
    // The store's own metadata is not the node's.
    assert_eq!(s.meta("format").expect("reads"), None);
    assert_eq!(s.meta("customer_count").expect("reads"), None);
}

fn counters_add_up_with_their_batches(s: &dyn Store) {
    let counted = |name: &str, delta: i64| WriteBatch {
        counters: vec![(1, name.to_owned(), delta), (2, "b".to_owned(), 1)],
        ..customer_batch(1, "c1", "state", &[1])
    };
    s.commit(counted("a", 2)).expect("commits");
    s.commit(counted("a", 3)).expect("commits");
    let counters = s.counters().expect("reads").expect("kept");
    assert_eq!(counters.get("a"), Some(&5));
    assert_eq!(counters.get("b"), Some(&2));
    // Deltas of one name in one batch add up; a negative delta subtracts.
    s.commit(WriteBatch {
        counters: vec![(1, "a".to_owned(), 1), (3, "a".to_owned(), -4)],
        ..WriteBatch::default()
    })
    .expect("commits");
    assert_eq!(
        s.counters().expect("reads").expect("kept").get("a"),
        Some(&2)
    );
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    super::$name(&MemoryStore::new());
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    let store = super::pg_store(stringify!($name));
                    super::$name(&store);
                }
            )*
        }
        mod fjall {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().expect("a temporary directory");
                    let store = FjallStore::open(dir.path()).expect("opens");
                    super::$name(&store);
                }
            )*
        }
    };
}

contract!(
    commit_then_read,
    many_customers_read_at_once_answer_in_order,
    histories_scan_in_order_and_resume_anywhere,
    facts_are_per_customer,
    later_writes_win_and_set_beats_clear,
    timers_scan_in_firing_order,
    escalations_resume_after_a_cursor,
    pruning_removes_the_oldest_escalations_but_never_the_newest,
    pruning_removes_facts_decided_before_the_horizon,
    concurrent_commits_all_land,
    readers_see_whole_batches,
    flush_and_metrics,
    open_escalations_are_indexed_by_team,
    meta_values_are_kept_apart_from_records,
    counters_add_up_with_their_batches,
    index_keys_scan_in_byte_order_both_ways,
    customers_are_listed_in_order_from_a_resume_point,
);

fn index_keys_scan_in_byte_order_both_ways(s: &dyn Store) {
    // Keys with NUL and 0xFF bytes, prefixes of one another, two families.
    let keys: Vec<Vec<u8>> = vec![
        b"\x04a".to_vec(),
        b"\x04a\x00".to_vec(),
        b"\x04a\x00\xff".to_vec(),
        b"\x04ab".to_vec(),
        b"\x04\xff\xff".to_vec(),
        b"\x05a".to_vec(),
    ];
    let mut b = customer_batch(2, "c", "c", &[1]);
    b.index_set = keys.clone();
    s.commit(b).expect("commits");
    let fam4 = keys[..5].to_vec();
    assert_eq!(
        s.index_keys(b"\x04", b"\x05", false, 100).expect("scan"),
        fam4
    );
    let mut rev = fam4.clone();
    rev.reverse();
    assert_eq!(
        s.index_keys(b"\x04", b"\x05", true, 100).expect("scan"),
        rev
    );
    // A limit, and resuming: forward from just after the last key seen,
    // backward below it.
    let page = s.index_keys(b"\x04", b"\x05", false, 2).expect("scan");
    assert_eq!(page, fam4[..2].to_vec());
    let mut next = page[1].clone();
    next.push(0);
    assert_eq!(
        s.index_keys(&next, b"\x05", false, 2).expect("scan"),
        fam4[2..4].to_vec()
    );
    assert_eq!(
        s.index_keys(b"\x04", &rev[1], true, 2).expect("scan"),
        rev[2..4].to_vec()
    );
    assert!(
        s.index_keys(b"\x05", b"\x04", false, 9)
            .expect("empty")
            .is_empty()
    );
    assert!(
        s.index_keys(b"\x04", b"\x05", false, 0)
            .expect("empty")
            .is_empty()
    );

    // Cleared in a later batch (with a customer's write, as the state
    // layer does), and set again.
    let mut b = customer_batch(2, "c", "c2", &[2]);
    b.index_cleared = vec![keys[1].clone(), keys[5].clone()];
    b.index_set = vec![b"\x04b".to_vec()];
    s.commit(b).expect("commits");
    assert_eq!(
        s.index_keys(b"\x04", b"\x06", false, 100).expect("scan"),
        vec![
            keys[0].clone(),
            keys[2].clone(),
            keys[3].clone(),
            b"\x04b".to_vec(),
            keys[4].clone()
        ]
    );
}

fn customers_are_listed_in_order_from_a_resume_point(s: &dyn Store) {
    for (shard, c) in [(2, "b"), (1, "z"), (2, "a"), (2, "a\0"), (3, "")] {
        s.commit(customer_batch(shard, c, &format!("{shard}{c}"), &[1]))
            .expect("commits");
    }
    let all = s.customers_after(None, 100).expect("reads");
    let ids: Vec<(u32, String)> = all.iter().map(|(s, c, _)| (*s, c.clone())).collect();
    let want: Vec<(u32, String)> = [(1, "z"), (2, "a"), (2, "a\0"), (2, "b"), (3, "")]
        .iter()
        .map(|(s, c)| (*s, c.to_string()))
        .collect();
    assert_eq!(ids, want);
    assert_eq!(all[0].2, b"1z".to_vec());
    let rest = s.customers_after(Some((2, "a")), 2).expect("reads");
    let ids: Vec<(u32, String)> = rest.iter().map(|(s, c, _)| (*s, c.clone())).collect();
    assert_eq!(ids, want[2..4].to_vec());
    assert!(
        s.customers_after(Some((3, "")), 10)
            .expect("reads")
            .is_empty()
    );
}

// ------------------------------------------------------------ postgres only

/// One local server for the whole test binary; a database per test.
fn pg_server() -> &'static crate::testkit::postgres::LocalPostgres {
    static PG: std::sync::OnceLock<crate::testkit::postgres::LocalPostgres> =
        std::sync::OnceLock::new();
    PG.get_or_init(|| crate::testkit::postgres::LocalPostgres::start().expect("starts PostgreSQL"))
}

/// A store on a fresh database that holds every shard the tests write to
/// (the contract's tests commit without fences of their own, so the
/// store's leases fence them).
fn pg_store(test: &str) -> PgStore {
    let db = format!("contract_{test}");
    let url = pg_server()
        .create_database(&db)
        .expect("creates a database");
    let store = PgStore::open(PgOptions {
        url,
        node_id: "contract".to_owned(),
        shards: 16,
        pool_size: 8,
    })
    .expect("opens");
    // The contract also writes to the highest shard number there is.
    pg_server()
        .psql(&db, "INSERT INTO shards (shard) VALUES (4294967295)")
        .expect("adds a shard row");
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        assert_eq!(
            store
                .register_node("i1", "127.0.0.1:1", std::time::Duration::from_secs(60))
                .await
                .expect("registers"),
            None
        );
        let got = store
            .acquire(17, std::time::Duration::from_secs(3600))
            .await
            .expect("acquires");
        assert_eq!(got.len(), 17);
    });
    store
}

// --------------------------------------------------------------- fjall only

#[test]
fn fjall_reopens_with_everything_committed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    {
        let store = FjallStore::open(dir.path()).expect("opens");
        store
            .commit(WriteBatch {
                counters: vec![(1, "customers".into(), 7)],
                ..full_batch()
            })
            .expect("commits");
        store.put_meta("catalog", b"kept".to_vec()).expect("writes");
        store
            .commit(customer_batch(1, "c2", "other", &[1]))
            .expect("commits");
        assert!(store.disk_bytes().expect("measures") > 0);
    }
    let store = FjallStore::open(dir.path()).expect("reopens");
    let s: &dyn Store = &store;
    assert_eq!(s.customer(1, "c2").expect("read"), Some(b"other".to_vec()));
    assert_eq!(s.meta("catalog").expect("read"), Some(b"kept".to_vec()));
    let counters = s.counters().expect("read").expect("fjall keeps counters");
    assert_eq!(counters.get("customers"), Some(&7));
    assert_eq!(s.last_escalation_seq(1).expect("read"), Some(1));
    assert_eq!(s.timers(1, None, 10).expect("read").len(), 1);
    assert_eq!(s.last_fact_seq(1, "c1").expect("read"), Some(2));
    // Still writable.
    s.commit(customer_batch(1, "c3", "third", &[]))
        .expect("commits");
    assert_eq!(s.customer(1, "c3").expect("read"), Some(b"third".to_vec()));
}

#[test]
fn fjall_refuses_a_directory_another_store_has_open() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let _first = FjallStore::open(dir.path()).expect("opens");
    match FjallStore::open(dir.path()) {
        Err(e @ StoreError::Open { .. }) => {
            assert!(e.to_string().contains("another process"), "{e}")
        }
        Err(other) => panic!("expected Open, got {other}"),
        Ok(_) => panic!("a second store opened the same directory"),
    }
}
