//! The cluster database's schema: created and migrated by the node itself,
//! versioned, and refused when newer than the binary.
//!
//! Records stay prost bytes (as in the embedded store); columns exist only
//! where a query needs them: the shard (every table's first key column, the
//! column a Citus-style distribution would use), timer deadlines, escalation
//! sequence numbers, teams, facts' decision times (`at_us`, indexed by
//! shard for the fact retention). Customer ids, teams and escalation ids are
//! `bytea`: the database sorts them byte-wise, as the embedded store does,
//! whatever the database's collation, and any id the node accepts fits.
//!
//! Avoided so that Postgres-compatible distributed databases keep working:
//! triggers, stored procedures, advisory locks, LISTEN/NOTIFY, sequences
//! (the node numbers what it writes), and foreign keys across tables.

/// The schema this binary writes.
pub const VERSION: i32 = 5;

/// Migration `n` (1-based) takes the schema from version `n - 1` to `n`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
CREATE TABLE customers (
    shard    int8  NOT NULL,
    customer bytea NOT NULL,
    record   bytea NOT NULL,
    PRIMARY KEY (shard, customer)
);
CREATE TABLE facts (
    shard    int8  NOT NULL,
    customer bytea NOT NULL,
    seq      int8  NOT NULL,
    record   bytea NOT NULL,
    PRIMARY KEY (shard, customer, seq)
);
CREATE TABLE timers (
    shard       int8 NOT NULL,
    deadline_us int8 NOT NULL,
    customer    bytea NOT NULL,
    sla         int4 NOT NULL,
    tier        int4 NOT NULL,
    repeat      int8 NOT NULL,
    instance    int8 NOT NULL,
    PRIMARY KEY (shard, deadline_us, customer, sla, tier, repeat, instance)
);
CREATE TABLE escalations (
    shard  int8  NOT NULL,
    seq    int8  NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (shard, seq)
);
CREATE TABLE open_escalations (
    team          bytea NOT NULL,
    escalation_id bytea NOT NULL,
    record        bytea NOT NULL,
    acknowledged  bool  NOT NULL,
    PRIMARY KEY (team, escalation_id)
);
CREATE TABLE meta (
    key   text  COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE shards (
    shard       int8 PRIMARY KEY,
    owner       text,
    epoch       int8 NOT NULL DEFAULT 0,
    lease_until timestamptz,
    last_seq    int8 NOT NULL DEFAULT 0
);
CREATE TABLE nodes (
    node_id      text PRIMARY KEY,
    instance     text NOT NULL,
    advertise    text NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    started_at   timestamptz NOT NULL
);
"#,
    // 2: each fact's decision time, for the fact retention. Facts written
    // before it (and by nodes of the previous release still running during
    // a rolling upgrade, whose inserts leave it out) are dated when they
    // reach the column, so they age out from the upgrade on, never at once.
    r#"
ALTER TABLE facts ADD COLUMN at_us int8 NOT NULL
    DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::int8;
CREATE INDEX facts_by_age ON facts (shard, at_us);
"#,
    // 3: a journal entry's facts in one row (a run of consecutive seqs of
    // one customer, decided at one instant; `seq` is the run's last, the
    // record each fact's record length-delimited, in seq order): a quarter
    // of the rows and index entries per event. `facts` keeps what was
    // written before, read and pruned as before; nothing writes it now.
    r#"
CREATE TABLE fact_runs (
    shard     int8  NOT NULL,
    customer  bytea NOT NULL,
    seq       int8  NOT NULL,
    first_seq int8  NOT NULL,
    at_us     int8  NOT NULL,
    record    bytea NOT NULL,
    PRIMARY KEY (shard, customer, seq)
);
CREATE INDEX fact_runs_by_age ON fact_runs (shard, at_us);
"#,
    // 4: counters kept with the batches that change them (customers and
    // SLA outcomes by market and version, for `rollout show`). One row
    // per counter and shard, written under the shard's fence, so writers
    // of different shards never wait for each other on a counter's row;
    // a counter is the sum of its rows.
    r#"
CREATE TABLE counters (
    name  text COLLATE "C" NOT NULL,
    shard int8 NOT NULL,
    value int8 NOT NULL,
    PRIMARY KEY (name, shard)
);
"#,
    // 5: the secondary indexes of customer queries: one row per key laid
    // out by `state::index` (opaque, ordered bytes, global across shards),
    // written in the commit that changes them. Customers written before
    // have no rows here: the node backfills them once (`node::queries`).
    r#"
CREATE TABLE customer_index (
    key bytea PRIMARY KEY
);
"#,
];

use deadpool_postgres::Pool;

use super::{Conn, db_error};
use crate::store::{Result, StoreError};

/// Creates or migrates the schema (one node at a time: the version row is
/// locked for the duration), and creates the shard rows the first time.
/// Refuses a schema newer than this binary, and a shard count other than
/// the cluster's.
pub(super) async fn migrate(pool: &Pool, shards: u32, target: &str) -> Result<()> {
    let mut client = Conn::get(pool, "connect").await.map_err(|e| {
        let reason = match e {
            StoreError::Database { reason, .. } => reason,
            other => other.to_string(),
        };
        StoreError::Schema(format!(
            "cannot connect to the database {target}: {reason}; check the --store URL (host, \
             port, database, user and password), that the database is running and that this \
             machine may connect to it"
        ))
    })?;
    // Two nodes starting at once may both try to create the version table;
    // the loser of that race retries once.
    for attempt in 0..2 {
        match client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS handoff_schema (\
                   id int4 PRIMARY KEY CHECK (id = 1), version int4 NOT NULL);\
                 INSERT INTO handoff_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;",
            )
            .await
        {
            Ok(()) => break,
            Err(e) if attempt == 0 && e.as_db_error().is_some() => continue,
            Err(e) => return Err(db_error("create the schema table", e)),
        }
    }
    let tx = client
        .transaction()
        .await
        .map_err(|e| db_error("migrate the schema", e))?;
    let version: i32 = tx
        .query_one(
            "SELECT version FROM handoff_schema WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(|e| db_error("read the schema version", e))?
        .get(0);
    if version > VERSION {
        return Err(StoreError::Schema(format!(
            "the database {target} has schema version {version}, newer than this handoff's \
             ({VERSION}): a newer handoff wrote it; upgrade this node's handoff (never point an \
             older binary at a newer cluster)"
        )));
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(step)
            .await
            .map_err(|e| db_error("migrate the schema", e))?;
        tracing::info!(to = i + 1, "database schema migrated");
    }
    tx.execute(
        "UPDATE handoff_schema SET version = $1 WHERE id = 1",
        &[&VERSION],
    )
    .await
    .map_err(|e| db_error("migrate the schema", e))?;
    let have: i64 = tx
        .query_one("SELECT count(*) FROM shards", &[])
        .await
        .map_err(|e| db_error("read the shards", e))?
        .get(0);
    if have == 0 {
        let all: Vec<i64> = (0..i64::from(shards)).collect();
        tx.execute(
            "INSERT INTO shards (shard) SELECT * FROM unnest($1::int8[])",
            &[&all],
        )
        .await
        .map_err(|e| db_error("create the shards", e))?;
    } else if have != i64::from(shards) {
        return Err(StoreError::Schema(format!(
            "the cluster in {target} was created with {have} shards, this node is configured with \
             {shards}: set shards = {have} in its config (the shard count is fixed for the life of \
             a cluster)"
        )));
    }
    tx.commit()
        .await
        .map_err(|e| db_error("migrate the schema", e))?;
    client.done();
    Ok(())
}
