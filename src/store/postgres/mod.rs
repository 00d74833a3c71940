//! The cluster's store: PostgreSQL (or a database that speaks its
//! protocol), the system of record every node of a cluster shares.
//!
//! Same [`Store`] contract as the embedded store, plus what a cluster needs
//! of its database: shard leases and node membership (`leases`), and
//! **fencing**: every commit is one transaction that first checks and
//! locks the rows of the shards it writes (`owner = this node AND epoch =
//! the epoch the writer decided under`, the way Temporal's history service
//! checks its shard's `range_id`). A row that no longer matches aborts the
//! whole transaction ([`StoreError::Fenced`]): a node that lost a shard can
//! never write to it again, whatever its own clock believes. The same
//! statement advances the shard's escalation watermark, so readers on any
//! node read a shard's log only up to what is committed.
//!
//! Every statement is prepared; a transaction's statements are pipelined
//! and COMMIT is sent only once each of them succeeded. A connection lost
//! during COMMIT leaves the outcome unknown ([`StoreError::Unknown`]); the
//! node then moves the shard to a new epoch and reloads it before it
//! answers for those customers again.
//!
//! The [`Store`] trait is blocking (the embedded store is); this store
//! runs its I/O on a small runtime of its own and the calling thread waits
//! (`block_in_place` when called from the node's runtime).

mod conn;
pub mod leases;
mod schema;
mod sql;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{Fence, Result, Store, StoreError, TimerKey, WriteBatch};
use conn::{Conn, HostByHost};

pub use leases::{Acquired, ShardRow};

/// Longest a read, a lease statement or the schema check waits for the
/// database.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest a commit waits; after it, its outcome is unknown.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Transactions a node keeps in flight (the journal's lanes, by shard):
/// while one waits for its round trips and its WAL flush, the next is
/// sent.
const COMMIT_LANES: usize = 2;

/// How a node reaches the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT][,HOST2...]/DB[?sslmode=...]`
    pub url: String,
    /// The writer's name in the `shards` table (the node id).
    pub node_id: String,
    /// The number of shards; fixed when the cluster's schema is created.
    pub shards: u32,
    /// Connections in the pool.
    pub pool_size: usize,
}

/// The PostgreSQL store. See the module documentation.
pub struct PgStore {
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    node_id: String,
    /// The shards this process holds, with their epochs: a batch's shards
    /// without a [`Fence`] of their own are fenced with these.
    held: Arc<Mutex<HashMap<u32, u64>>>,
    /// Where the URL points (host, port, database), for messages.
    target: String,
}

impl PgStore {
    /// Connects, creates or migrates the schema and the shard rows.
    pub fn open(opts: PgOptions) -> Result<PgStore> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("handoff-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Database {
                op: "start",
                reason: format!("cannot start the database runtime: {e}"),
            })?;
        let mut cfg: tokio_postgres::Config =
            opts.url.parse().map_err(|e| StoreError::Database {
                op: "parse the --store URL",
                reason: format!(
                    "{e}: write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=require]"
                ),
            })?;
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(5));
        }
        cfg.keepalives_idle(Duration::from_secs(10));
        if cfg.get_application_name().is_none() {
            cfg.application_name(format!("handoff {}", opts.node_id));
        }
        let target = describe(&cfg);
        let tls = tls_connector()?;
        let mgr_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        // Several hosts: each within the connect timeout as a whole, so a
        // host that accepts and never answers is passed over (conn.rs).
        let per_host = cfg
            .get_connect_timeout()
            .copied()
            .and_then(|limit| HostByHost::new(&cfg, tls.clone(), limit));
        let mgr = match per_host {
            Some(connect) => Manager::from_connect(cfg, connect, mgr_config),
            None => Manager::from_config(cfg, tls, mgr_config),
        };
        let pool = {
            let _guard = rt.enter();
            Pool::builder(mgr)
                .max_size(opts.pool_size.max(2))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(Duration::from_secs(10)))
                .create_timeout(Some(Duration::from_secs(10)))
                .recycle_timeout(Some(Duration::from_secs(5)))
                .build()
                .map_err(|e| StoreError::Database {
                    op: "build the connection pool",
                    reason: e.to_string(),
                })?
        };
        let store = PgStore {
            rt: Some(rt),
            pool,
            node_id: opts.node_id,
            held: Arc::new(Mutex::new(HashMap::new())),
            target,
        };
        let (pool, shards, target) = (store.pool.clone(), opts.shards, store.target.clone());
        store.block(async move { schema::migrate(&pool, shards, &target).await })?;
        Ok(store)
    }

    /// Host, port and database of the URL (no credentials), for logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.rt
            .as_ref()
            .expect("invariant: the runtime lives until drop")
    }

    /// Runs `f` on the store's runtime and waits for it on this thread
    /// (at most [`CALL_TIMEOUT`]: a database that stopped answering is an
    /// error, not a hang).
    fn block<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime().spawn(async move {
            let got = match tokio::time::timeout(CALL_TIMEOUT, f).await {
                Ok(got) => got,
                Err(_) => Err(StoreError::Database {
                    op: "answer",
                    reason: format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
                }),
            };
            let _ = tx.send(got);
        });
        let wait = move || rx.recv();
        let got = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        };
        got.expect("invariant: the store's runtime runs until the store is dropped")
    }

    /// Runs `f` on the store's runtime, awaited from any runtime (at most
    /// [`CALL_TIMEOUT`]).
    async fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let f = async move {
            match tokio::time::timeout(CALL_TIMEOUT, f).await {
                Ok(got) => got,
                Err(_) => Err(StoreError::Database {
                    op: "answer",
                    reason: format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
                }),
            }
        };
        self.runtime()
            .spawn(f)
            .await
            .map_err(|_| StoreError::Closed)?
    }

    fn fences(&self, batch: &WriteBatch) -> Result<Vec<Fence>> {
        let mut shards: HashSet<u32> = HashSet::new();
        shards.extend(batch.customers.iter().map(|c| c.0));
        shards.extend(batch.facts.iter().map(|f| f.0));
        shards.extend(batch.timers_set.iter().map(|t| t.shard));
        shards.extend(batch.timers_cleared.iter().map(|t| t.shard));
        shards.extend(batch.escalations.iter().map(|e| e.0));
        shards.extend(batch.counters.iter().map(|c| c.0));
        let mut fences = batch.fences.clone();
        let fenced: HashSet<u32> = fences.iter().map(|f| f.shard).collect();
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mut unheld = Vec::new();
        for s in shards {
            if fenced.contains(&s) {
                continue;
            }
            match held.get(&s) {
                Some(epoch) => fences.push(Fence {
                    shard: s,
                    epoch: *epoch,
                }),
                None => unheld.push((s, 0)),
            }
        }
        if !unheld.is_empty() {
            unheld.sort();
            return Err(StoreError::Fenced { shards: unheld });
        }
        Ok(fences)
    }
}

/// After a commit of unknown outcome, moves each of its shards to a new
/// epoch (as Temporal re-acquires its shard): the statement waits for the
/// lost transaction's row locks, so once it returns that transaction has
/// either committed or never will, and nothing decided before it can
/// commit after it. The node then restarts the shard under the new epoch
/// and its actors reload what is really there. If the database cannot be
/// reached, the lease runs out instead, with the same effect.
async fn fence_out(pool: &Pool, node: &str, held: &Mutex<HashMap<u32, u64>>, shards: &[Fence]) {
    let Ok(c) = Conn::get(pool, "fence").await else {
        return;
    };
    let Ok(st) = c.prepare_cached(sql::BUMP_EPOCH).await else {
        return;
    };
    for f in shards {
        let row = c
            .query_opt(&st, &[&i64::from(f.shard), &node, &(f.epoch as i64)])
            .await;
        let mut h = held.lock().unwrap_or_else(|p| p.into_inner());
        match row {
            Ok(Some(r)) => {
                let epoch = r.get::<_, i64>(0) as u64;
                tracing::warn!(
                    shard = f.shard,
                    epoch,
                    "commit outcome unknown: shard fenced under a new epoch"
                );
                h.insert(f.shard, epoch);
            }
            _ => {
                h.remove(&f.shard);
            }
        }
    }
    c.done();
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            // Never blocks (a store may be dropped inside the node's runtime).
            rt.shutdown_background();
        }
    }
}

/// A database error as a [`StoreError`], with what to check.
pub(crate) fn db_error(op: &'static str, e: tokio_postgres::Error) -> StoreError {
    StoreError::Database {
        op,
        reason: error_text(&e),
    }
}

fn pool_error(op: &'static str, e: deadpool_postgres::PoolError) -> StoreError {
    let reason = match e {
        deadpool_postgres::PoolError::Backend(e) => error_text(&e),
        deadpool_postgres::PoolError::Timeout(_) => {
            "no connection to the database within 10 s".to_owned()
        }
        other => other.to_string(),
    };
    StoreError::Database { op, reason }
}

/// The server's message (with its detail and hint) or the client's.
fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        }
    }
}

fn describe(cfg: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .zip(
            cfg.get_ports()
                .iter()
                .copied()
                .chain(std::iter::repeat(5432)),
        )
        .map(|(h, p)| match h {
            tokio_postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    format!(
        "{}/{}",
        hosts.join(","),
        cfg.get_dbname().unwrap_or("(default database)")
    )
}

/// TLS with the system's root certificates; whether it is used is the
/// URL's `sslmode` (`prefer` by default, `require` to insist).
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Database {
            op: "set up TLS",
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Appends one fact's record to a run's: its length (a varint, as
/// protobuf frames a length-delimited field), then its bytes.
fn frame(run: &mut Vec<u8>, record: &[u8]) {
    prost::encoding::encode_varint(record.len() as u64, run);
    run.extend_from_slice(record);
}

/// A run's facts' records, in seq order (see [`frame`]).
fn unframe(mut run: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut records = Vec::new();
    while !run.is_empty() {
        let len = prost::encoding::decode_varint(&mut run)
            .map_err(|e| StoreError::corrupt("fact run", e.to_string()))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= run.len())
            .ok_or_else(|| StoreError::corrupt("fact run", "a length past its end"))?;
        records.push(run[..len].to_vec());
        run = &run[len..];
    }
    Ok(records)
}

fn i64s(v: impl Iterator<Item = u32>) -> Vec<i64> {
    v.map(i64::from).collect()
}

impl Store for PgStore {
    fn commit(&self, batch: WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let fences = self.fences(&batch)?;
        let too_big = |q: u64| q > i64::MAX as u64;
        if batch.escalations.iter().any(|e| too_big(e.1))
            || batch.facts.iter().any(|f| too_big(f.2))
        {
            return Err(StoreError::Database {
                op: "commit",
                reason: "a sequence number beyond 2^63 - 1, the largest the database keeps".into(),
            });
        }
        let rows = CommitRows::net(batch, fences);
        let fenced: Vec<Fence> = rows.fences.clone();
        let (pool, node, held) = (self.pool.clone(), self.node_id.clone(), self.held.clone());
        self.block(async move {
            let done = match tokio::time::timeout(COMMIT_TIMEOUT, rows.write(&pool, &node)).await {
                Ok(done) => done,
                // The transaction is abandoned (its connection rolls it
                // back or dies), but COMMIT may have been sent.
                Err(_) => Err(StoreError::Unknown {
                    reason: format!(
                        "no answer from the database within {} s",
                        COMMIT_TIMEOUT.as_secs()
                    ),
                }),
            };
            if matches!(done, Err(StoreError::Unknown { .. })) {
                fence_out(&pool, &node, &held, &fenced).await;
            }
            done
        })
    }

    fn customer(&self, shard: u32, customer: &str) -> Result<Option<Vec<u8>>> {
        let (pool, customer) = (self.pool.clone(), customer.to_owned());
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let row = c
                .maybe_row(
                    "read a customer",
                    sql::CUSTOMER,
                    &[&i64::from(shard), &customer.as_bytes()],
                )
                .await?;
            c.done();
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    fn customers(&self, keys: &[(u32, String)]) -> Result<Vec<Option<Vec<u8>>>> {
        let pool = self.pool.clone();
        let shards = i64s(keys.iter().map(|k| k.0));
        let ids: Vec<Vec<u8>> = keys.iter().map(|k| k.1.as_bytes().to_vec()).collect();
        let n = keys.len();
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let rows = c
                .rows("read customers", sql::CUSTOMERS, &[&shards, &ids])
                .await?;
            c.done();
            let mut found = vec![None; n];
            for r in rows {
                let i = usize::try_from(r.get::<_, i64>(0) - 1)
                    .ok()
                    .filter(|i| *i < n)
                    .ok_or_else(|| {
                        StoreError::corrupt("customer reads", "an answer for no read")
                    })?;
                found[i] = Some(r.get::<_, Vec<u8>>(1));
            }
            Ok(found)
        })
    }

    fn scan_facts(
        &self,
        after: Option<(u32, &str, u64)>,
        limit: usize,
    ) -> Result<Vec<super::ScannedFact>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let pool = self.pool.clone();
        let after = after.map(|(s, c, q)| (i64::from(s), c.as_bytes().to_vec(), q));
        let rows_wanted = limit.min(1 << 30) as i64;
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let op = "read histories";
            let rows = match &after {
                None => {
                    c.rows(op, sql::SCAN_FACTS_FROM_START, &[&rows_wanted])
                        .await?
                }
                Some((s, id, q)) => {
                    let q = (*q).min(i64::MAX as u64) as i64;
                    c.rows(op, sql::SCAN_FACTS_AFTER, &[s, id, &q, &rows_wanted])
                        .await?
                }
            };
            c.done();
            let mut out = Vec::new();
            'rows: for r in &rows {
                let shard = r.get::<_, i64>(0) as u32;
                let customer = String::from_utf8(r.get::<_, Vec<u8>>(1))
                    .map_err(|e| StoreError::corrupt("customer id", e.to_string()))?;
                let (last, first) = (r.get::<_, i64>(2) as u64, r.get::<_, i64>(3) as u64);
                let record: Vec<u8> = r.get(5);
                let records = if r.get::<_, bool>(4) {
                    unframe(&record)?
                } else {
                    vec![record]
                };
                if records.len() as u64 != last - first + 1 {
                    return Err(StoreError::corrupt(
                        "fact run",
                        format!("{} facts for seqs {first}..={last}", records.len()),
                    ));
                }
                for (seq, record) in (first..=last).zip(records) {
                    let past = after.as_ref().is_some_and(|(s, id, q)| {
                        (i64::from(shard), customer.as_bytes(), seq) <= (*s, id.as_slice(), *q)
                    });
                    if past {
                        continue;
                    }
                    out.push((shard, customer.clone(), seq, record));
                    if out.len() == limit {
                        break 'rows;
                    }
                }
            }
            Ok(out)
        })
    }

    fn batches_reads(&self) -> bool {
        true
    }

    fn commit_lanes(&self) -> usize {
        COMMIT_LANES
    }

    fn last_fact_seq(&self, shard: u32, customer: &str) -> Result<Option<u64>> {
        let (pool, customer) = (self.pool.clone(), customer.to_owned());
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let row = c
                .row(
                    "read a history",
                    sql::LAST_FACT_SEQ,
                    &[&i64::from(shard), &customer.as_bytes()],
                )
                .await?;
            c.done();
            Ok(row.get::<_, Option<i64>>(0).map(|s| s as u64))
        })
    }

    fn timers(&self, shard: u32, from: Option<&TimerKey>, limit: usize) -> Result<Vec<TimerKey>> {
        let from = match from {
            Some(k) if k.shard > shard => return Ok(Vec::new()),
            Some(k) if k.shard == shard => Some(k.clone()),
            _ => None,
        };
        let pool = self.pool.clone();
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let limit = limit.min(i64::MAX as usize) as i64;
            let rows = match &from {
                None => {
                    c.rows(
                        "read timers",
                        sql::TIMERS_FROM_START,
                        &[&i64::from(shard), &limit],
                    )
                    .await?
                }
                Some(k) => {
                    let after: [&(dyn ToSql + Sync); 8] = [
                        &i64::from(shard),
                        &k.deadline_us,
                        &k.customer.as_bytes(),
                        &i32::from(k.sla),
                        &i32::from(k.tier),
                        &i64::from(k.repeat),
                        &i64::from(k.instance),
                        &limit,
                    ];
                    c.rows("read timers", sql::TIMERS_AFTER, &after).await?
                }
            };
            c.done();
            rows.iter()
                .map(|r| {
                    let int = |i: usize, what: &str| -> Result<i64> {
                        let v: i64 = match i {
                            2 | 3 => i64::from(r.get::<_, i32>(i)),
                            _ => r.get::<_, i64>(i),
                        };
                        Ok(v).and_then(|v| {
                            if v < 0 {
                                Err(StoreError::corrupt("timer row", format!("negative {what}")))
                            } else {
                                Ok(v)
                            }
                        })
                    };
                    Ok(TimerKey {
                        shard,
                        deadline_us: r.get(0),
                        customer: String::from_utf8(r.get::<_, Vec<u8>>(1)).map_err(|_| {
                            StoreError::corrupt("timer row", "customer id is not UTF-8")
                        })?,
                        sla: u16::try_from(int(2, "sla")?)
                            .map_err(|_| StoreError::corrupt("timer row", "sla out of range"))?,
                        tier: u16::try_from(int(3, "tier")?)
                            .map_err(|_| StoreError::corrupt("timer row", "tier out of range"))?,
                        repeat: u32::try_from(int(4, "repeat")?)
                            .map_err(|_| StoreError::corrupt("timer row", "repeat out of range"))?,
                        instance: u32::try_from(int(5, "instance")?).map_err(|_| {
                            StoreError::corrupt("timer row", "instance out of range")
                        })?,
                    })
                })
                .collect()
        })
    }

    fn escalations(
        &self,
        shard: u32,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let pool = self.pool.clone();
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let after = after_seq.map_or(-1, |s| s.min(i64::MAX as u64) as i64);
            let args: [&(dyn ToSql + Sync); 3] =
                [&i64::from(shard), &after, &(limit.min(1 << 30) as i64)];
            let rows = c
                .rows("read escalations", sql::ESCALATIONS_AFTER, &args)
                .await?;
            c.done();
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, Vec<u8>>(1)))
                .collect())
        })
    }

    fn last_escalation_seq(&self, shard: u32) -> Result<Option<u64>> {
        let pool = self.pool.clone();
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let row = c
                .row(
                    "read escalations",
                    sql::LAST_ESCALATION_SEQ,
                    &[&i64::from(shard)],
                )
                .await?;
            c.done();
            Ok(row.get::<_, Option<i64>>(0).map(|s| s as u64))
        })
    }

    fn prune_escalations(&self, shard: u32, before_seq: u64, limit: usize) -> Result<u64> {
        let pool = self.pool.clone();
        self.block(async move {
            let c = Conn::get(&pool, "prune").await?;
            let args: [&(dyn ToSql + Sync); 3] = [
                &i64::from(shard),
                &(before_seq.min(i64::MAX as u64) as i64),
                &(limit.min(1 << 30) as i64),
            ];
            let n = c
                .exec("prune escalations", sql::PRUNE_ESCALATIONS, &args)
                .await?;
            c.done();
            Ok(n)
        })
    }

    fn prune_facts(&self, shard: u32, before_us: i64, limit: usize) -> Result<u64> {
        let pool = self.pool.clone();
        self.block(async move {
            let c = Conn::get(&pool, "prune").await?;
            let limit = limit.min(1 << 30) as i64;
            // Facts written before runs (schema 2) are older than any run.
            let args: [&(dyn ToSql + Sync); 3] = [&i64::from(shard), &before_us, &limit];
            let n = c.exec("prune facts", sql::PRUNE_FACTS, &args).await?;
            c.done();
            let left = (limit as u64).saturating_sub(n);
            if left == 0 {
                return Ok(n);
            }
            Ok(n + prune_fact_runs(&pool, shard, before_us, left).await?)
        })
    }

    fn open_escalations(&self, team: Option<&str>) -> Result<Vec<(Vec<u8>, bool)>> {
        let (pool, team) = (self.pool.clone(), team.map(str::to_owned));
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let op = "read open escalations";
            let rows = match &team {
                None => c.rows(op, sql::OPEN_ALL, &[]).await?,
                Some(t) => c.rows(op, sql::OPEN_OF_TEAM, &[&t.as_bytes()]).await?,
            };
            c.done();
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, bool>(1)))
                .collect())
        })
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let (pool, key) = (self.pool.clone(), key.to_owned());
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let row = c.maybe_row("read meta", sql::META, &[&key]).await?;
            c.done();
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<()> {
        let (pool, key) = (self.pool.clone(), key.to_owned());
        self.block(async move {
            let c = Conn::get(&pool, "write").await?;
            c.exec("write meta", sql::PUT_META, &[&key, &value]).await?;
            c.done();
            Ok(())
        })
    }

    /// One statement (atomic), not fenced: a node recounts at start,
    /// before it holds any lease.
    fn add_counters(&self, deltas: Vec<(u32, String, i64)>) -> Result<()> {
        let pool = self.pool.clone();
        let (mut names, mut shards, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for (shard, name, delta) in deltas {
            names.push(name);
            shards.push(i64::from(shard));
            values.push(delta);
        }
        self.block(async move {
            let c = Conn::get(&pool, "write").await?;
            c.exec(
                "add counters",
                sql::ADD_COUNTERS,
                &[&names, &shards, &values],
            )
            .await?;
            c.done();
            Ok(())
        })
    }

    fn counters(&self) -> Result<Option<BTreeMap<String, i64>>> {
        let pool = self.pool.clone();
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let rows = c.rows("read counters", sql::COUNTERS, &[]).await?;
            c.done();
            Ok(Some(
                rows.iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
                    .collect(),
            ))
        })
    }

    fn index_keys(
        &self,
        low: &[u8],
        high: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        if low >= high || limit == 0 {
            return Ok(Vec::new());
        }
        let (pool, low, high) = (self.pool.clone(), low.to_vec(), high.to_vec());
        let limit = limit.min(i64::MAX as usize) as i64;
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let q = if reverse {
                sql::INDEX_DESC
            } else {
                sql::INDEX_ASC
            };
            let rows = c
                .rows("scan a customer index", q, &[&low, &high, &limit])
                .await?;
            c.done();
            Ok(rows.iter().map(|r| r.get::<_, Vec<u8>>(0)).collect())
        })
    }

    fn customers_after(
        &self,
        after: Option<(u32, &str)>,
        limit: usize,
    ) -> Result<Vec<(u32, String, Vec<u8>)>> {
        let (pool, after) = (
            self.pool.clone(),
            after.map(|(s, c)| (i64::from(s), c.as_bytes().to_vec())),
        );
        let limit = limit.min(i64::MAX as usize) as i64;
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let op = "read customers";
            let rows = match &after {
                None => c.rows(op, sql::CUSTOMERS_FROM_START, &[&limit]).await?,
                Some((s, id)) => c.rows(op, sql::CUSTOMERS_AFTER, &[s, id, &limit]).await?,
            };
            c.done();
            rows.iter()
                .map(|r| {
                    let id: Vec<u8> = r.get(1);
                    let id = String::from_utf8(id)
                        .map_err(|e| StoreError::corrupt("customer id", e.to_string()))?;
                    Ok((r.get::<_, i64>(0) as u32, id, r.get::<_, Vec<u8>>(2)))
                })
                .collect()
        })
    }

    fn disk_bytes(&self) -> Result<u64> {
        let pool = self.pool.clone();
        self.block(async move {
            let c = Conn::get(&pool, "read").await?;
            let row = c.row("measure the tables", sql::DISK_BYTES, &[]).await?;
            c.done();
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
    }

    fn flush(&self) -> Result<()> {
        // Every commit is already durable in the database.
        Ok(())
    }
}

/// Removes up to `limit` facts of the shard's oldest runs decided before
/// `before_us`, in one transaction: whole runs while the limit allows,
/// then the head of the next one (its rest stays under its key, with its
/// first seq and its record trimmed).
async fn prune_fact_runs(pool: &Pool, shard: u32, before_us: i64, limit: u64) -> Result<u64> {
    let mut client = Conn::get(pool, "prune").await?;
    let op = "prune facts";
    let prep = |q: &'static str| {
        let c = &client;
        async move { c.prepare_cached(q).await.map_err(|e| db_error(op, e)) }
    };
    let (oldest_st, delete_st, trim_st) = tokio::try_join!(
        prep(sql::OLDEST_FACT_RUNS),
        prep(sql::DELETE_FACT_RUNS),
        prep(sql::TRIM_FACT_RUN),
    )?;
    let tx = client.transaction().await.map_err(|e| db_error(op, e))?;
    let shard_arg = i64::from(shard);
    let take = limit.min(1 << 30) as i64;
    let oldest = tx
        .query(&oldest_st, &[&shard_arg, &before_us, &take])
        .await
        .map_err(|e| db_error(op, e))?;
    let (mut gone, mut customers, mut seqs) = (0u64, Vec::new(), Vec::new());
    let mut trimmed = None;
    for r in &oldest {
        let budget = limit - gone;
        if budget == 0 {
            break;
        }
        let (customer, last, first): (Vec<u8>, i64, i64) = (r.get(0), r.get(1), r.get(2));
        let size = (last - first + 1).max(1) as u64;
        if size <= budget {
            customers.push(customer);
            seqs.push(last);
            gone += size;
        } else {
            let records = unframe(&r.get::<_, Vec<u8>>(3))?;
            let cut = budget as usize;
            let mut rest = Vec::new();
            for record in records.iter().skip(cut) {
                frame(&mut rest, record);
            }
            trimmed = Some((customer, last, first + budget as i64, rest));
            gone += budget;
        }
    }
    if !customers.is_empty() {
        tx.execute(&delete_st, &[&shard_arg, &customers, &seqs])
            .await
            .map_err(|e| db_error(op, e))?;
    }
    if let Some((customer, last, first, rest)) = trimmed {
        tx.execute(&trim_st, &[&shard_arg, &customer, &last, &first, &rest])
            .await
            .map_err(|e| db_error(op, e))?;
    }
    tx.commit().await.map_err(|e| db_error(op, e))?;
    client.done();
    Ok(gone)
}

/// Column arrays: `bytea` values, `int8` numbers.
type Bytes = Vec<Vec<u8>>;

/// A batch netted to one write per key (a statement may not touch a row
/// twice), as column arrays.
struct CommitRows {
    fences: Vec<Fence>,
    /// Per fenced shard, the highest escalation seq written (0: none).
    last_seq: HashMap<u32, u64>,
    customers: (Vec<i64>, Bytes, Bytes),
    /// One row per run of facts: shard, customer, last seq, first seq,
    /// decided at (microseconds), the facts' records framed.
    fact_runs: (Vec<i64>, Bytes, Vec<i64>, Vec<i64>, Vec<i64>, Bytes),
    timers_set: Vec<TimerKey>,
    timers_cleared: Vec<TimerKey>,
    escalations: (Vec<i64>, Vec<i64>, Bytes),
    open_set: (Bytes, Bytes, Bytes, Vec<bool>),
    open_cleared: (Bytes, Bytes),
    /// Counter name, shard and the summed delta.
    counters: (Vec<String>, Vec<i64>, Vec<i64>),
    index_set: Bytes,
    index_cleared: Bytes,
}

impl CommitRows {
    /// Applies the batch's order (a later write of a key wins; a timer or
    /// open row both cleared and set stays set) and keeps one write per key.
    fn net(b: WriteBatch, fences: Vec<Fence>) -> CommitRows {
        let mut last_seq: HashMap<u32, u64> = HashMap::new();
        for (shard, seq, _) in &b.escalations {
            let e = last_seq.entry(*shard).or_default();
            *e = (*e).max(*seq);
        }
        let mut customers: HashMap<(u32, String), Vec<u8>> = HashMap::new();
        for (s, c, v) in b.customers {
            customers.insert((s, c), v);
        }
        // Netted by key (the last write wins), in key order for the runs.
        let mut facts: BTreeMap<(u32, String, u64), (i64, Vec<u8>)> = BTreeMap::new();
        for (s, c, q, at, v) in b.facts {
            facts.insert((s, c, q), (at, v));
        }
        let set: HashSet<TimerKey> = b.timers_set.into_iter().collect();
        let cleared: HashSet<TimerKey> = b
            .timers_cleared
            .into_iter()
            .filter(|k| !set.contains(k))
            .collect();
        let mut escalations: HashMap<(u32, u64), Vec<u8>> = HashMap::new();
        for (s, q, v) in b.escalations {
            escalations.insert((s, q), v);
        }
        let mut open: HashMap<(String, String), (Vec<u8>, bool)> = HashMap::new();
        for r in b.open_set {
            open.insert((r.team, r.escalation_id), (r.entry, r.acknowledged));
        }
        let open_cleared: HashSet<(String, String)> = b
            .open_cleared
            .into_iter()
            .filter(|k| !open.contains_key(k))
            .collect();
        let index_set: HashSet<Vec<u8>> = b.index_set.into_iter().collect();
        let index_cleared: Vec<Vec<u8>> = b
            .index_cleared
            .into_iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|k| !index_set.contains(k))
            .collect();

        let mut counters: BTreeMap<(String, u32), i64> = BTreeMap::new();
        for (shard, name, delta) in b.counters {
            *counters.entry((name, shard)).or_default() += delta;
        }
        let mut rows = CommitRows {
            fences,
            last_seq,
            customers: Default::default(),
            fact_runs: Default::default(),
            timers_set: set.into_iter().collect(),
            timers_cleared: cleared.into_iter().collect(),
            escalations: Default::default(),
            open_set: Default::default(),
            open_cleared: Default::default(),
            counters: Default::default(),
            index_set: index_set.into_iter().collect(),
            index_cleared,
        };
        for ((name, shard), delta) in counters.into_iter().filter(|(_, d)| *d != 0) {
            rows.counters.0.push(name);
            rows.counters.1.push(i64::from(shard));
            rows.counters.2.push(delta);
        }
        for ((s, c), v) in customers {
            rows.customers.0.push(i64::from(s));
            rows.customers.1.push(c.into_bytes());
            rows.customers.2.push(v);
        }
        // Consecutive seqs of one customer decided at one instant (one
        // journal entry's facts) make one row.
        let mut run: Option<(u32, String, u64, u64, i64, Vec<u8>)> = None;
        let push =
            |rows: &mut CommitRows,
             (s, c, first, last, at, framed): (u32, String, u64, u64, i64, Vec<u8>)| {
                rows.fact_runs.0.push(i64::from(s));
                rows.fact_runs.1.push(c.into_bytes());
                rows.fact_runs.2.push(last as i64);
                rows.fact_runs.3.push(first as i64);
                rows.fact_runs.4.push(at);
                rows.fact_runs.5.push(framed);
            };
        for ((s, c, q), (at, v)) in facts {
            match &mut run {
                Some(r) if (r.0, r.1.as_str(), r.4) == (s, c.as_str(), at) && r.3 + 1 == q => {
                    r.3 = q;
                    frame(&mut r.5, &v);
                }
                _ => {
                    if let Some(done) = run.take() {
                        push(&mut rows, done);
                    }
                    let mut framed = Vec::with_capacity(v.len() + 2);
                    frame(&mut framed, &v);
                    run = Some((s, c, q, q, at, framed));
                }
            }
        }
        if let Some(done) = run {
            push(&mut rows, done);
        }
        for ((s, q), v) in escalations {
            rows.escalations.0.push(i64::from(s));
            rows.escalations.1.push(q as i64);
            rows.escalations.2.push(v);
        }
        for ((t, id), (v, ack)) in open {
            rows.open_set.0.push(t.into_bytes());
            rows.open_set.1.push(id.into_bytes());
            rows.open_set.2.push(v);
            rows.open_set.3.push(ack);
        }
        for (t, id) in open_cleared {
            rows.open_cleared.0.push(t.into_bytes());
            rows.open_cleared.1.push(id.into_bytes());
        }
        rows
    }

    /// One transaction: the fence, then every write, pipelined; COMMIT only
    /// once all succeeded and the fence held.
    async fn write(self, pool: &Pool, node: &str) -> Result<()> {
        let mut client = Conn::get(pool, "commit").await?;
        let prep = |q: &'static str| {
            let c = &client;
            async move {
                c.prepare_cached(q)
                    .await
                    .map_err(|e| db_error("prepare a commit", e))
            }
        };
        let (clear_i, set_i) = tokio::try_join!(prep(sql::CLEAR_INDEX), prep(sql::SET_INDEX))?;
        let (lock, fence, customers, facts, clear_t, set_t, escs, clear_o, set_o, count) = tokio::try_join!(
            prep(sql::LOCK_SHARDS),
            prep(sql::FENCE),
            prep(sql::PUT_CUSTOMERS),
            prep(sql::PUT_FACT_RUNS),
            prep(sql::CLEAR_TIMERS),
            prep(sql::SET_TIMERS),
            prep(sql::PUT_ESCALATIONS),
            prep(sql::CLEAR_OPEN),
            prep(sql::SET_OPEN),
            prep(sql::ADD_COUNTERS),
        )?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| db_error("begin a commit", e))?;
        let f_shards = i64s(self.fences.iter().map(|f| f.shard));
        let f_epochs: Vec<i64> = self.fences.iter().map(|f| f.epoch as i64).collect();
        let f_seqs: Vec<i64> = self
            .fences
            .iter()
            .map(|f| self.last_seq.get(&f.shard).copied().unwrap_or(0) as i64)
            .collect();
        let timer_cols = |keys: &[TimerKey]| {
            (
                i64s(keys.iter().map(|k| k.shard)),
                keys.iter().map(|k| k.deadline_us).collect::<Vec<i64>>(),
                keys.iter()
                    .map(|k| k.customer.as_bytes().to_vec())
                    .collect::<Vec<_>>(),
                keys.iter().map(|k| i32::from(k.sla)).collect::<Vec<i32>>(),
                keys.iter().map(|k| i32::from(k.tier)).collect::<Vec<i32>>(),
                keys.iter()
                    .map(|k| i64::from(k.repeat))
                    .collect::<Vec<i64>>(),
                keys.iter()
                    .map(|k| i64::from(k.instance))
                    .collect::<Vec<i64>>(),
            )
        };
        let tc = timer_cols(&self.timers_cleared);
        let ts = timer_cols(&self.timers_set);
        let node = node.to_owned();
        let skip = async { Ok::<u64, tokio_postgres::Error>(0) };
        let fence_args: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&f_shards, &f_epochs, &f_seqs, &node];
        // The shard rows locked in shard order first (see sql::LOCK_SHARDS).
        let lock_args: [&(dyn ToSql + Sync); 1] = [&f_shards];
        let locked = tx.query(&lock, &lock_args);
        let fenced = tx.query(&fence, &fence_args);
        let writes = async {
            tokio::try_join!(
                async {
                    if self.customers.0.is_empty() {
                        return skip.await;
                    }
                    let c = &self.customers;
                    tx.execute(&customers, &[&c.0, &c.1, &c.2]).await
                },
                async {
                    if self.fact_runs.0.is_empty() {
                        return Ok(0);
                    }
                    let f = &self.fact_runs;
                    tx.execute(&facts, &[&f.0, &f.1, &f.2, &f.3, &f.4, &f.5])
                        .await
                },
                async {
                    if tc.0.is_empty() {
                        return Ok(0);
                    }
                    tx.execute(&clear_t, &[&tc.0, &tc.1, &tc.2, &tc.3, &tc.4, &tc.5, &tc.6])
                        .await
                },
                async {
                    if ts.0.is_empty() {
                        return Ok(0);
                    }
                    tx.execute(&set_t, &[&ts.0, &ts.1, &ts.2, &ts.3, &ts.4, &ts.5, &ts.6])
                        .await
                },
                async {
                    if self.escalations.0.is_empty() {
                        return Ok(0);
                    }
                    let e = &self.escalations;
                    tx.execute(&escs, &[&e.0, &e.1, &e.2]).await
                },
                async {
                    if self.open_cleared.0.is_empty() {
                        return Ok(0);
                    }
                    let o = &self.open_cleared;
                    tx.execute(&clear_o, &[&o.0, &o.1]).await
                },
                async {
                    if self.open_set.0.is_empty() {
                        return Ok(0);
                    }
                    let o = &self.open_set;
                    tx.execute(&set_o, &[&o.0, &o.1, &o.2, &o.3]).await
                },
                async {
                    if self.counters.0.is_empty() {
                        return Ok(0);
                    }
                    let c = &self.counters;
                    tx.execute(&count, &[&c.0, &c.1, &c.2]).await
                },
                async {
                    if self.index_cleared.is_empty() {
                        return Ok(0);
                    }
                    tx.execute(&clear_i, &[&self.index_cleared]).await
                },
                async {
                    if self.index_set.is_empty() {
                        return Ok(0);
                    }
                    tx.execute(&set_i, &[&self.index_set]).await
                },
            )
        };
        // The fence is sent first (it locks the shard rows), the writes
        // right behind it on the same connection.
        let (locked, fenced, written) = tokio::join!(locked, fenced, writes);
        locked.map_err(|e| db_error("lock the shard leases", e))?;
        let held: HashSet<(u32, u64)> = fenced
            .map_err(|e| db_error("check the shard leases", e))?
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u32, r.get::<_, i64>(1) as u64))
            .collect();
        written.map_err(|e| db_error("write a commit", e))?;
        let lost: Vec<(u32, u64)> = self
            .fences
            .iter()
            .map(|f| (f.shard, f.epoch))
            .filter(|k| !held.contains(k))
            .collect();
        if !lost.is_empty() {
            if tx.rollback().await.is_ok() {
                client.done();
            }
            return Err(StoreError::Fenced { shards: lost });
        }
        let committed = tx.commit().await.map_err(|e| {
            if e.as_db_error().is_some() || e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) {
                db_error("commit", e)
            } else {
                StoreError::Unknown {
                    reason: error_text(&e),
                }
            }
        });
        if committed.is_ok() {
            client.done();
        }
        committed
    }
}

#[cfg(test)]
mod tests;
