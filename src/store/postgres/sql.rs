//! Every statement the Postgres store sends, in one place. All are sent
//! prepared (cached per connection); bulk writes pass arrays and `unnest`
//! them, so a group commit is a fixed handful of statements whatever its
//! size.

// ---- the commit transaction (fenced) ----

/// Locks shard rows in shard order. Every statement that locks several
/// shard rows of a node's (a commit's fence, the renewal) takes them
/// through this first, in the same order, so two of them never wait for
/// each other in a cycle (the database would abort one as a deadlock).
pub const LOCK_SHARDS: &str =
    "SELECT shard FROM shards WHERE shard = ANY($1::int8[]) ORDER BY shard FOR UPDATE";

/// Checks (and locks) the writer's shard rows and advances each shard's
/// escalation watermark; a row that names another owner or epoch is not
/// returned, and the transaction is rolled back.
pub const FENCE: &str = "UPDATE shards AS s SET last_seq = GREATEST(s.last_seq, v.last_seq) \
     FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS v(shard, epoch, last_seq) \
     WHERE s.shard = v.shard AND s.epoch = v.epoch AND s.owner = $4 \
     RETURNING s.shard, s.epoch";
pub const PUT_CUSTOMERS: &str = "INSERT INTO customers (shard, customer, record) \
     SELECT * FROM unnest($1::int8[], $2::bytea[], $3::bytea[]) \
     ON CONFLICT (shard, customer) DO UPDATE SET record = EXCLUDED.record";
/// One row per run of facts (see the schema's migration 3).
pub const PUT_FACT_RUNS: &str = "INSERT INTO fact_runs (shard, customer, seq, first_seq, at_us, record) \
     SELECT * FROM unnest($1::int8[], $2::bytea[], $3::int8[], $4::int8[], $5::int8[], $6::bytea[]) \
     ON CONFLICT (shard, customer, seq) DO UPDATE \
       SET first_seq = EXCLUDED.first_seq, at_us = EXCLUDED.at_us, record = EXCLUDED.record";
pub const CLEAR_TIMERS: &str = "DELETE FROM timers AS t \
     USING unnest($1::int8[], $2::int8[], $3::bytea[], $4::int4[], $5::int4[], $6::int8[], $7::int8[]) \
       AS v(shard, deadline_us, customer, sla, tier, repeat, instance) \
     WHERE t.shard = v.shard AND t.deadline_us = v.deadline_us AND t.customer = v.customer \
       AND t.sla = v.sla AND t.tier = v.tier AND t.repeat = v.repeat AND t.instance = v.instance";
pub const SET_TIMERS: &str = "INSERT INTO timers (shard, deadline_us, customer, sla, tier, repeat, instance) \
     SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[], $4::int4[], $5::int4[], $6::int8[], $7::int8[]) \
     ON CONFLICT DO NOTHING";
pub const PUT_ESCALATIONS: &str = "INSERT INTO escalations (shard, seq, record) \
     SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[]) \
     ON CONFLICT (shard, seq) DO UPDATE SET record = EXCLUDED.record";
/// Adds each delta to its shard's row of its counter.
pub const ADD_COUNTERS: &str = "INSERT INTO counters (name, shard, value) \
     SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[]) \
     ON CONFLICT (name, shard) DO UPDATE SET value = counters.value + EXCLUDED.value";
pub const CLEAR_OPEN: &str = "DELETE FROM open_escalations AS o \
     USING unnest($1::bytea[], $2::bytea[]) AS v(team, escalation_id) \
     WHERE o.team = v.team AND o.escalation_id = v.escalation_id";
pub const SET_OPEN: &str = "INSERT INTO open_escalations (team, escalation_id, record, acknowledged) \
     SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bool[]) \
     ON CONFLICT (team, escalation_id) DO UPDATE \
       SET record = EXCLUDED.record, acknowledged = EXCLUDED.acknowledged";
pub const CLEAR_INDEX: &str = "DELETE FROM customer_index WHERE key = ANY($1::bytea[])";
pub const SET_INDEX: &str = "INSERT INTO customer_index (key) \
     SELECT * FROM unnest($1::bytea[]) ON CONFLICT DO NOTHING";

// ---- reads ----

pub const CUSTOMER: &str = "SELECT record FROM customers WHERE shard = $1 AND customer = $2";
/// Several customers by `(shard, customer)`, each answer with its position
/// in the arrays (1-based); a customer with no record is not returned.
pub const CUSTOMERS: &str = "SELECT k.i, c.record \
     FROM unnest($1::int8[], $2::bytea[]) WITH ORDINALITY AS k(shard, customer, i) \
     JOIN customers c ON c.shard = k.shard AND c.customer = k.customer";
pub const LAST_FACT_SEQ: &str = "SELECT GREATEST( \
       (SELECT max(seq) FROM fact_runs WHERE shard = $1 AND customer = $2), \
       (SELECT max(seq) FROM facts WHERE shard = $1 AND customer = $2))";
pub const TIMERS_FROM_START: &str = "SELECT deadline_us, customer, sla, tier, repeat, instance FROM timers WHERE shard = $1 \
     ORDER BY deadline_us, customer, sla, tier, repeat, instance LIMIT $2";
pub const TIMERS_AFTER: &str = "SELECT deadline_us, customer, sla, tier, repeat, instance FROM timers WHERE shard = $1 \
     AND (deadline_us, customer, sla, tier, repeat, instance) > ($2, $3, $4, $5, $6, $7) \
     ORDER BY deadline_us, customer, sla, tier, repeat, instance LIMIT $8";
pub const ESCALATIONS_AFTER: &str = "SELECT seq, record FROM escalations \
     WHERE shard = $1 AND seq > $2 ORDER BY seq LIMIT $3";
pub const LAST_ESCALATION_SEQ: &str = "SELECT max(seq) FROM escalations WHERE shard = $1";
pub const PRUNE_ESCALATIONS: &str = "DELETE FROM escalations WHERE shard = $1 AND seq IN ( \
       SELECT seq FROM escalations WHERE shard = $1 \
         AND seq < LEAST($2, (SELECT max(seq) FROM escalations WHERE shard = $1)) \
       ORDER BY seq LIMIT $3)";
/// Up to `$3` of the shard's facts decided before `$2`, oldest first (the
/// `facts_by_age` index), deleted by primary key.
pub const PRUNE_FACTS: &str = "DELETE FROM facts AS f USING ( \
       SELECT shard, customer, seq FROM facts WHERE shard = $1 AND at_us < $2 \
       ORDER BY at_us LIMIT $3) AS old \
     WHERE f.shard = old.shard AND f.customer = old.customer AND f.seq = old.seq";
/// The shard's oldest runs decided before `$2` (at most `$3`), locked
/// for the prune that deletes or trims them.
pub const OLDEST_FACT_RUNS: &str = "SELECT customer, seq, first_seq, record FROM fact_runs \
     WHERE shard = $1 AND at_us < $2 ORDER BY at_us, customer, seq LIMIT $3 FOR UPDATE";
pub const DELETE_FACT_RUNS: &str = "DELETE FROM fact_runs AS f \
     USING unnest($2::bytea[], $3::int8[]) AS v(customer, seq) \
     WHERE f.shard = $1 AND f.customer = v.customer AND f.seq = v.seq";
/// What is left of a run whose head was pruned.
pub const TRIM_FACT_RUN: &str = "UPDATE fact_runs SET first_seq = $4, record = $5 \
     WHERE shard = $1 AND customer = $2 AND seq = $3";
pub const OPEN_ALL: &str =
    "SELECT record, acknowledged FROM open_escalations ORDER BY team, escalation_id";
pub const OPEN_OF_TEAM: &str = "SELECT record, acknowledged FROM open_escalations \
     WHERE team = $1 ORDER BY escalation_id";
/// A page of every history, in `(shard, customer, seq)` order, after a
/// position: the facts of schema 2 (one each, `framed` false) and the runs
/// (framed) together; a run is listed by its last seq, so the one that
/// holds the position comes first and its facts up to it are skipped.
pub const SCAN_FACTS_FROM_START: &str = "SELECT shard, customer, seq, seq, false, record FROM facts \
     UNION ALL SELECT shard, customer, seq, first_seq, true, record FROM fact_runs \
     ORDER BY 1, 2, 3 LIMIT $1";
pub const SCAN_FACTS_AFTER: &str = "SELECT shard, customer, seq, seq, false, record FROM facts \
       WHERE (shard, customer, seq) > ($1, $2, $3) \
     UNION ALL SELECT shard, customer, seq, first_seq, true, record FROM fact_runs \
       WHERE (shard, customer, seq) > ($1, $2, $3) \
     ORDER BY 1, 2, 3 LIMIT $4";
pub const COUNTERS: &str = "SELECT name, sum(value)::int8 FROM counters GROUP BY name";
/// A page of a customer index, by the primary key's order (`bytea`
/// compares byte-wise, as the embedded store does).
pub const INDEX_ASC: &str = "SELECT key FROM customer_index \
     WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3";
pub const INDEX_DESC: &str = "SELECT key FROM customer_index \
     WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT $3";
pub const CUSTOMERS_FROM_START: &str =
    "SELECT shard, customer, record FROM customers ORDER BY shard, customer LIMIT $1";
pub const CUSTOMERS_AFTER: &str = "SELECT shard, customer, record FROM customers \
     WHERE (shard, customer) > ($1, $2) ORDER BY shard, customer LIMIT $3";
pub const META: &str = "SELECT value FROM meta WHERE key = $1";
pub const PUT_META: &str = "INSERT INTO meta (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
pub const DISK_BYTES: &str = "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = current_schema() AND c.relkind = 'r' \
       AND c.relname IN ('customers', 'facts', 'fact_runs', 'timers', 'escalations', 'open_escalations', \
                         'customer_index', 'meta', 'shards', 'nodes', 'counters')";

// ---- leases and membership ----

/// Registers this process under its node id, unless another process with
/// the same id heartbeat within the lease time.
pub const REGISTER_NODE: &str = "INSERT INTO nodes (node_id, instance, advertise, heartbeat_at, started_at) \
     VALUES ($1, $2, $3, now(), now()) \
     ON CONFLICT (node_id) DO UPDATE \
       SET instance = EXCLUDED.instance, advertise = EXCLUDED.advertise, \
           heartbeat_at = now(), started_at = now() \
     WHERE nodes.instance = EXCLUDED.instance \
        OR nodes.heartbeat_at < now() - make_interval(secs => $4::float8) \
     RETURNING node_id";
pub const NODE_HOLDER: &str = "SELECT advertise, \
       extract(epoch FROM now() - heartbeat_at)::float8 FROM nodes WHERE node_id = $1";
/// The heartbeat; returns nothing if another process took the node id.
pub const HEARTBEAT: &str =
    "UPDATE nodes SET heartbeat_at = now() WHERE node_id = $1 AND instance = $2 RETURNING node_id";
/// Renews every lease this node holds under the epochs it believes in;
/// returns the shards still held.
pub const RENEW: &str = "UPDATE shards AS s \
     SET lease_until = now() + make_interval(secs => $3::float8) \
     FROM unnest($2::int8[], $4::int8[]) AS v(shard, epoch) \
     WHERE s.shard = v.shard AND s.epoch = v.epoch AND s.owner = $1 \
     RETURNING s.shard, s.epoch";
/// Takes up to `$2` shards that are free or whose lease ended (database
/// time), each under a new epoch.
pub const ACQUIRE: &str = "UPDATE shards AS s \
     SET owner = $1, epoch = s.epoch + 1, lease_until = now() + make_interval(secs => $3::float8) \
     WHERE s.shard IN ( \
       SELECT shard FROM shards \
       WHERE owner IS NULL OR lease_until IS NULL OR lease_until < now() \
       ORDER BY shard LIMIT $2 FOR UPDATE SKIP LOCKED) \
     AND (s.owner IS NULL OR s.lease_until IS NULL OR s.lease_until < now()) \
     RETURNING s.shard, s.epoch, s.last_seq";
/// Gives a shard back (a clean hand-over: others may take it at once).
pub const RELEASE: &str = "UPDATE shards SET owner = NULL, lease_until = NULL \
     WHERE shard = $1 AND owner = $2 AND epoch = $3";
/// Moves a held shard to a new epoch: anything still in flight under the
/// old one is fenced out.
pub const BUMP_EPOCH: &str = "UPDATE shards SET epoch = epoch + 1 \
     WHERE shard = $1 AND owner = $2 AND epoch = $3 RETURNING epoch, last_seq";
pub const LIVE_NODES: &str = "SELECT node_id, advertise FROM nodes \
     WHERE heartbeat_at >= now() - make_interval(secs => $1::float8) ORDER BY node_id";
pub const LEAVE: &str = "DELETE FROM nodes WHERE node_id = $1 AND instance = $2";
/// Every shard: its owner while the lease runs, the owner's address, and
/// the escalation watermark (the highest committed sequence).
pub const SHARD_MAP: &str = "SELECT s.shard, s.epoch, s.last_seq, \
       CASE WHEN s.lease_until >= now() THEN s.owner END, \
       CASE WHEN s.lease_until >= now() THEN n.advertise END \
     FROM shards s LEFT JOIN nodes n ON n.node_id = s.owner ORDER BY s.shard";
