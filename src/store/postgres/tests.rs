//! What the cluster relies on beyond the store contract: leases, fencing,
//! membership, the watermark and the schema's guards, on a real local
//! PostgreSQL (`testkit::postgres`).

use std::sync::OnceLock;
use std::time::Duration;

use super::*;
use crate::testkit::postgres::LocalPostgres;

fn server() -> &'static LocalPostgres {
    static PG: OnceLock<LocalPostgres> = OnceLock::new();
    PG.get_or_init(|| LocalPostgres::start().expect("starts PostgreSQL"))
}

fn db(name: &str) -> String {
    server().create_database(name).expect("creates a database")
}

fn open(url: &str, node: &str) -> PgStore {
    PgStore::open(PgOptions {
        url: url.to_owned(),
        node_id: node.to_owned(),
        shards: 4,
        pool_size: 4,
    })
    .expect("opens")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn escalation(shard: u32, seq: u64) -> WriteBatch {
    WriteBatch {
        escalations: vec![(shard, seq, format!("e{seq}").into_bytes())],
        ..WriteBatch::default()
    }
}

const LONG: Duration = Duration::from_secs(3600);

#[test]
fn a_node_that_lost_its_lease_can_never_write_again() {
    let url = db("fencing");
    let (a, b) = (open(&url, "a"), open(&url, "b"));
    let rt = rt();
    // A lease of 1 s that A does not renew (as if A were paused).
    let got = rt
        .block_on(a.acquire(4, Duration::from_secs(1)))
        .expect("acquires");
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|g| g.epoch == 1 && g.last_seq == 0));
    a.commit(escalation(0, 1)).expect("the owner writes");
    // Nothing is free while A's lease runs.
    assert_eq!(rt.block_on(b.acquire(4, LONG)).expect("asks"), vec![]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let taken = loop {
        let t = rt.block_on(b.acquire(4, LONG)).expect("asks");
        if !t.is_empty() || std::time::Instant::now() > deadline {
            break t;
        }
        std::thread::yield_now();
    };
    assert_eq!(taken.len(), 4, "the expired leases move to B");
    let zero = taken.iter().find(|t| t.shard == 0).expect("shard 0");
    assert_eq!((zero.epoch, zero.last_seq), (2, 1), "B continues A's log");

    // A still believes it holds shard 0 (its own map says so): refused.
    let err = a.commit(escalation(0, 2)).expect_err("fenced");
    assert!(
        matches!(&err, StoreError::Fenced { shards } if shards == &vec![(0, 1)]),
        "{err}"
    );
    assert!(err.to_string().contains("retry: same event id"), "{err}");
    assert_eq!(
        b.last_escalation_seq(0).expect("reads"),
        Some(1),
        "nothing of A's written"
    );
    // A renewal tells A what it lost.
    let still = rt
        .block_on(a.renew("ia", &[(0, 1), (1, 1)], LONG))
        .expect("renews");
    assert_eq!(
        still, None,
        "A never registered: its heartbeat finds no row"
    );
    b.commit(escalation(0, 2)).expect("the new owner writes");
    let map = rt.block_on(b.shard_map()).expect("reads");
    assert_eq!(map[0].last_seq, 2, "the watermark follows the commits");
    assert_eq!(map[0].owner.as_deref(), Some("b"));
}

#[test]
fn a_stale_epoch_is_refused_even_by_the_same_owner() {
    let url = db("stale_epoch");
    let a = open(&url, "a");
    let rt = rt();
    rt.block_on(a.acquire(1, LONG)).expect("acquires");
    let bumped = rt
        .block_on(a.bump_epoch(0, 1))
        .expect("bumps")
        .expect("still held");
    assert_eq!(bumped.epoch, 2);
    let mut batch = escalation(0, 1);
    batch.fences = vec![Fence { shard: 0, epoch: 1 }];
    let err = a.commit(batch).expect_err("decided under epoch 1");
    assert!(
        matches!(&err, StoreError::Fenced { shards } if shards == &vec![(0, 1)]),
        "{err}"
    );
    // A batch that touches a held and an unheld shard writes neither.
    let mut both = escalation(0, 1);
    both.extend(escalation(3, 1));
    let err = a.commit(both).expect_err("shard 3 is not held");
    assert!(
        matches!(&err, StoreError::Fenced { shards } if shards == &vec![(3, 0)]),
        "{err}"
    );
    assert_eq!(a.last_escalation_seq(0).expect("reads"), None);
    let mut ok = escalation(0, 1);
    ok.fences = vec![Fence { shard: 0, epoch: 2 }];
    a.commit(ok).expect("the current epoch writes");
}

#[test]
fn a_released_shard_is_taken_at_once_and_renewal_keeps_leases() {
    let url = db("release");
    let (a, b) = (open(&url, "a"), open(&url, "b"));
    let rt = rt();
    assert_eq!(
        rt.block_on(a.register_node("ia", "127.0.0.1:1", LONG))
            .expect("ok"),
        None
    );
    assert_eq!(
        rt.block_on(b.register_node("ib", "127.0.0.1:2", LONG))
            .expect("ok"),
        None
    );
    rt.block_on(a.acquire(4, LONG)).expect("acquires");
    let held = vec![(0, 1), (1, 1), (2, 1), (3, 1)];
    let still = rt.block_on(a.renew("ia", &held, LONG)).expect("renews");
    assert_eq!(
        still.map(|mut v| {
            v.sort();
            v
        }),
        Some(held)
    );
    rt.block_on(a.release(3, 1)).expect("releases");
    let got = rt.block_on(b.acquire(4, LONG)).expect("acquires");
    assert_eq!(
        got.iter().map(|g| (g.shard, g.epoch)).collect::<Vec<_>>(),
        vec![(3, 2)]
    );
    let map = rt.block_on(a.shard_map()).expect("reads");
    assert_eq!(map[3].advertise.as_deref(), Some("127.0.0.1:2"));
    assert_eq!(map[0].advertise.as_deref(), Some("127.0.0.1:1"));
    let live = rt.block_on(a.live_nodes(LONG)).expect("reads");
    assert_eq!(live.len(), 2);
    rt.block_on(b.leave("ib")).expect("leaves");
    assert_eq!(rt.block_on(a.live_nodes(LONG)).expect("reads").len(), 1);
}

#[test]
fn a_node_id_held_by_a_live_process_is_refused() {
    let url = db("node_ids");
    let (a1, a2) = (open(&url, "a"), open(&url, "a"));
    let rt = rt();
    assert_eq!(
        rt.block_on(a1.register_node("one", "127.0.0.1:1", LONG))
            .expect("ok"),
        None
    );
    let holder = rt
        .block_on(a2.register_node("two", "127.0.0.1:2", LONG))
        .expect("asks")
        .expect("refused: the first process is alive");
    assert_eq!(holder.0, "127.0.0.1:1");
    // Once the first's heartbeat is older than the lease time, the id is free.
    assert_eq!(
        rt.block_on(a2.register_node("two", "127.0.0.1:2", Duration::ZERO))
            .expect("ok"),
        None
    );
    assert_eq!(
        rt.block_on(a1.renew("one", &[], LONG)).expect("asks"),
        None,
        "the first learns it"
    );
}

#[test]
fn schema_newer_than_the_binary_and_another_shard_count_are_refused() {
    let url = db("schema_guard");
    drop(open(&url, "a"));
    drop(open(&url, "a")); // reopening migrates nothing
    let err = PgStore::open(PgOptions {
        url: url.clone(),
        node_id: "a".into(),
        shards: 8,
        pool_size: 2,
    })
    .err()
    .expect("another shard count");
    assert!(err.to_string().contains("set shards = 4"), "{err}");
    server()
        .psql("schema_guard", "UPDATE handoff_schema SET version = 99")
        .expect("runs");
    let err = PgStore::open(PgOptions {
        url,
        node_id: "a".into(),
        shards: 4,
        pool_size: 2,
    })
    .err()
    .expect("a newer schema");
    assert!(err.to_string().contains("schema version 99"), "{err}");
    assert!(err.to_string().contains("upgrade"), "{err}");
}

#[test]
fn a_version_1_database_is_migrated_and_its_facts_age_from_the_upgrade() {
    let url = db("from_v1");
    // The database as the first release left it: migration 1 only, its
    // shard rows, and a fact of a customer.
    let v1 = format!(
        "CREATE TABLE handoff_schema (id int4 PRIMARY KEY CHECK (id = 1), version int4 NOT NULL); \
         INSERT INTO handoff_schema (id, version) VALUES (1, 1); \
         {} \
         INSERT INTO shards (shard) SELECT * FROM generate_series(0, 3); \
         INSERT INTO facts (shard, customer, seq, record) VALUES (0, 'c1'::bytea, 1, 'f1'::bytea);",
        schema::MIGRATIONS[0]
    );
    server()
        .psql("from_v1", &v1)
        .expect("creates a version 1 schema");
    let a = open(&url, "a");
    let sql = |q: &str| server().psql("from_v1", q).expect("runs");
    assert_eq!(
        sql("SELECT version FROM handoff_schema"),
        schema::VERSION.to_string()
    );
    // Dated at the migration: not pruned at once, whatever their age.
    let migrated_at: i64 = sql("SELECT at_us FROM facts").parse().expect("a number");
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as i64;
    assert!(
        (now_us - migrated_at).abs() < 600_000_000,
        "{migrated_at} is the migration's time, near {now_us}"
    );
    assert_eq!(
        sql("SELECT count(*) FROM pg_indexes WHERE indexname = 'facts_by_age'"),
        "1"
    );
    assert_eq!(a.last_fact_seq(0, "c1").expect("reads"), Some(1));
    // New facts carry their decision time; the old one goes first.
    rt().block_on(a.acquire(4, LONG)).expect("acquires");
    a.commit(WriteBatch {
        facts: vec![(0, "c1".into(), 2, migrated_at + 5, b"f2".to_vec())],
        ..WriteBatch::default()
    })
    .expect("commits");
    // New facts go to runs (migration 3); the old table is still read.
    assert_eq!(
        sql("SELECT seq, at_us FROM facts ORDER BY seq"),
        format!("1|{migrated_at}")
    );
    assert_eq!(
        sql("SELECT first_seq, seq, at_us FROM fact_runs"),
        format!("2|2|{}", migrated_at + 5)
    );
    assert_eq!(a.last_fact_seq(0, "c1").expect("reads"), Some(2));
    // Oldest first, across both tables.
    assert_eq!(a.prune_facts(0, migrated_at + 10, 1).expect("prunes"), 1);
    assert_eq!(sql("SELECT count(*) FROM facts"), "0");
    assert_eq!(a.last_fact_seq(0, "c1").expect("reads"), Some(2));
    assert_eq!(a.prune_facts(0, migrated_at + 10, 10).expect("prunes"), 1);
    assert_eq!(a.last_fact_seq(0, "c1").expect("reads"), None);
    drop(a);
    drop(open(&url, "a")); // migrated once
    assert_eq!(
        sql("SELECT version FROM handoff_schema"),
        schema::VERSION.to_string()
    );
}

#[test]
fn a_database_that_does_not_answer_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("addr")
        .port();
    let err = PgStore::open(PgOptions {
        url: format!("postgres://postgres@127.0.0.1:{port}/nothing"),
        node_id: "a".into(),
        shards: 4,
        pool_size: 2,
    })
    .err()
    .expect("nothing listens there");
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}/nothing")), "{msg}");
    assert!(msg.contains("check the --store URL"), "{msg}");
    let err = PgStore::open(PgOptions {
        url: "mysql://x".into(),
        node_id: "a".into(),
        shards: 4,
        pool_size: 2,
    })
    .err()
    .expect("not a postgres URL");
    assert!(err.to_string().contains("postgres://USER"), "{err}");
    // A database that does not exist: the server's own words.
    let err = PgStore::open(PgOptions {
        url: server().url("no_such_db"),
        node_id: "a".into(),
        shards: 4,
        pool_size: 2,
    })
    .err()
    .expect("no such database");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn a_journal_entrys_facts_are_one_row_and_prune_whole() {
    let url = db("fact_runs");
    let a = open(&url, "a");
    rt().block_on(a.acquire(4, LONG)).expect("acquires");
    let fact =
        |c: &str, seq: u64, at: i64| (0, c.to_owned(), seq, at, format!("{c}{seq}").into_bytes());
    // c1: an entry of three facts at 10, one at 20; c2: one at 10. A
    // fact written twice in the batch counts once (the last write wins).
    a.commit(WriteBatch {
        facts: vec![
            fact("c1", 1, 10),
            fact("c1", 2, 10),
            (0, "c1".into(), 3, 10, b"first".to_vec()),
            fact("c1", 3, 10),
            fact("c1", 4, 20),
            fact("c2", 1, 10),
        ],
        ..WriteBatch::default()
    })
    .expect("commits");
    let sql = |q: &str| server().psql("fact_runs", q).expect("runs");
    assert_eq!(
        sql("SELECT customer, first_seq, seq, at_us FROM fact_runs ORDER BY customer, seq"),
        "\\x6331|1|3|10\n\\x6331|4|4|20\n\\x6332|1|1|10"
    );
    let record: Vec<u8> = {
        let hex =
            sql("SELECT encode(record, 'hex') FROM fact_runs WHERE customer = 'c1' AND seq = 3");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    };
    assert_eq!(
        unframe(&record).expect("frames"),
        vec![b"c11".to_vec(), b"c12".to_vec(), b"c13".to_vec()]
    );
    assert!(unframe(&[5, 1]).is_err(), "a length past the end");
    assert_eq!(a.last_fact_seq(0, "c1").expect("reads"), Some(4));
    // Fact by fact, oldest first: a limit that ends inside a run leaves
    // the rest of it, re-framed, under the same key.
    assert_eq!(a.prune_facts(0, 100, 2).expect("prunes"), 2, "c1's 1 and 2");
    assert_eq!(
        sql("SELECT first_seq, seq, at_us FROM fact_runs WHERE customer = 'c1' ORDER BY seq"),
        "3|3|10\n4|4|20"
    );
    assert_eq!(a.prune_facts(0, 15, 1).expect("prunes"), 1, "c1's 3");
    assert_eq!(a.last_fact_seq(0, "c1").expect("reads"), Some(4));
    assert_eq!(a.prune_facts(0, 15, 10).expect("prunes"), 1, "c2's, at 10");
    assert_eq!(
        a.prune_facts(0, 15, 10).expect("prunes"),
        0,
        "c1's at 20 is newer"
    );
    assert_eq!(a.prune_facts(0, 21, 10).expect("prunes"), 1);
    assert_eq!(a.last_fact_seq(0, "c1").expect("reads"), None);
}
