//! Shard leases and node membership, in the cluster database.
//!
//! A `shards` row says who owns a shard (owner, epoch, lease end in
//! *database* time, never a node's clock) and how far its escalation log is
//! committed; a `nodes` row says a node is alive (heartbeat) and where
//! peers reach it. The policy (when to renew, how many shards to hold,
//! when to stop serving) is the cluster layer's; these are its statements.
//! Each runs on the store's runtime and may be awaited from any runtime.

use std::time::Duration;

use tokio_postgres::types::ToSql;

use super::{Conn, PgStore, db_error, sql};
use crate::store::Result;

/// A shard this node just took: the epoch it holds it under and the
/// highest escalation sequence committed so far (the journal continues
/// after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    pub shard: u32,
    pub epoch: u64,
    pub last_seq: u64,
}

/// A shard as the database sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRow {
    pub shard: u32,
    pub epoch: u64,
    /// The escalation watermark: every seq up to it is committed.
    pub last_seq: u64,
    /// The owner while its lease runs (`None`: free or expired).
    pub owner: Option<String>,
    /// Where the owner takes forwarded calls.
    pub advertise: Option<String>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl PgStore {
    /// Registers this process as `node_id` (`instance` tells this process
    /// from an earlier one with the same id). `Ok(Some(holder))` when
    /// another live process holds the id: `(its address, seconds since its
    /// heartbeat)`.
    pub async fn register_node(
        &self,
        instance: &str,
        advertise: &str,
        ttl: Duration,
    ) -> Result<Option<(String, f64)>> {
        let (pool, node, instance, advertise) = (
            self.pool.clone(),
            self.node_id.clone(),
            instance.to_owned(),
            advertise.to_owned(),
        );
        self.run(async move {
            let c = Conn::get(&pool, "register").await?;
            let got = c
                .maybe_row(
                    "register the node",
                    sql::REGISTER_NODE,
                    &[&node, &instance, &advertise, &secs(ttl)],
                )
                .await?;
            if got.is_some() {
                c.done();
                return Ok(None);
            }
            let row = c
                .row("register the node", sql::NODE_HOLDER, &[&node])
                .await?;
            c.done();
            Ok(Some((row.get(0), row.get(1))))
        })
        .await
    }

    /// The heartbeat, then the renewal of every lease in `held` (shard,
    /// epoch) in one statement. Returns the leases still held, or `None`
    /// if another process took this node id.
    pub async fn renew(
        &self,
        instance: &str,
        held: &[(u32, u64)],
        ttl: Duration,
    ) -> Result<Option<Vec<(u32, u64)>>> {
        let (pool, node, instance) = (self.pool.clone(), self.node_id.clone(), instance.to_owned());
        let shards: Vec<i64> = held.iter().map(|h| i64::from(h.0)).collect();
        let epochs: Vec<i64> = held.iter().map(|h| h.1 as i64).collect();
        let renewed = self
            .run(async move {
                let mut c = Conn::get(&pool, "renew").await?;
                let op = "renew the leases";
                let (hb, lock, renew) = tokio::try_join!(
                    c.prepare_cached(sql::HEARTBEAT),
                    c.prepare_cached(sql::LOCK_SHARDS),
                    c.prepare_cached(sql::RENEW)
                )
                .map_err(|e| db_error(op, e))?;
                let ttl = secs(ttl);
                let hb_args: [&(dyn ToSql + Sync); 2] = [&node, &instance];
                let renew_args: [&(dyn ToSql + Sync); 4] = [&node, &shards, &ttl, &epochs];
                let alive = c
                    .query_opt(&hb, &hb_args)
                    .await
                    .map_err(|e| db_error(op, e))?;
                // The leases' rows locked in shard order first, as a
                // commit's fence locks them (see sql::LOCK_SHARDS).
                let tx = c.transaction().await.map_err(|e| db_error(op, e))?;
                let lock_args: [&(dyn ToSql + Sync); 1] = [&shards];
                let (_, rows) =
                    tokio::try_join!(tx.query(&lock, &lock_args), tx.query(&renew, &renew_args))
                        .map_err(|e| db_error(op, e))?;
                tx.commit().await.map_err(|e| db_error(op, e))?;
                c.done();
                if alive.is_none() {
                    return Ok(None);
                }
                Ok(Some(
                    rows.iter()
                        .map(|r| (r.get::<_, i64>(0) as u32, r.get::<_, i64>(1) as u64))
                        .collect::<Vec<_>>(),
                ))
            })
            .await?;
        if let Some(still) = &renewed {
            let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
            h.retain(|s, e| still.contains(&(*s, *e)));
        }
        Ok(renewed)
    }

    /// Takes up to `n` free or expired shards, each under a new epoch.
    pub async fn acquire(&self, n: usize, ttl: Duration) -> Result<Vec<Acquired>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let (pool, node) = (self.pool.clone(), self.node_id.clone());
        let got = self
            .run(async move {
                let c = Conn::get(&pool, "acquire").await?;
                let rows = c
                    .rows(
                        "acquire shards",
                        sql::ACQUIRE,
                        &[&node, &(n as i64), &secs(ttl)],
                    )
                    .await?;
                c.done();
                Ok(rows
                    .iter()
                    .map(|r| Acquired {
                        shard: r.get::<_, i64>(0) as u32,
                        epoch: r.get::<_, i64>(1) as u64,
                        last_seq: r.get::<_, i64>(2) as u64,
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        for a in &got {
            h.insert(a.shard, a.epoch);
        }
        Ok(got)
    }

    /// Gives a shard back at once (a clean hand-over).
    pub async fn release(&self, shard: u32, epoch: u64) -> Result<()> {
        self.forget(shard);
        let (pool, node) = (self.pool.clone(), self.node_id.clone());
        self.run(async move {
            let c = Conn::get(&pool, "release").await?;
            let args: [&(dyn ToSql + Sync); 3] = [&i64::from(shard), &node, &(epoch as i64)];
            c.exec("release a shard", sql::RELEASE, &args).await?;
            c.done();
            Ok(())
        })
        .await
    }

    /// Moves a held shard to a new epoch, fencing out whatever is still in
    /// flight under the old one (after a commit of unknown outcome).
    /// `None` if the shard is no longer held.
    pub async fn bump_epoch(&self, shard: u32, epoch: u64) -> Result<Option<Acquired>> {
        let (pool, node) = (self.pool.clone(), self.node_id.clone());
        let got = self
            .run(async move {
                let c = Conn::get(&pool, "fence").await?;
                let row = c
                    .maybe_row(
                        "fence a shard",
                        sql::BUMP_EPOCH,
                        &[&i64::from(shard), &node, &(epoch as i64)],
                    )
                    .await?;
                c.done();
                Ok(row.map(|r| Acquired {
                    shard,
                    epoch: r.get::<_, i64>(0) as u64,
                    last_seq: r.get::<_, i64>(1) as u64,
                }))
            })
            .await?;
        let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match &got {
            Some(a) => {
                h.insert(shard, a.epoch);
            }
            None => {
                h.remove(&shard);
            }
        }
        Ok(got)
    }

    /// Stops fencing writes with this shard's lease (it is being given up).
    pub fn forget(&self, shard: u32) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&shard);
    }

    /// Nodes with a heartbeat within `ttl`: `(node id, address)`.
    pub async fn live_nodes(&self, ttl: Duration) -> Result<Vec<(String, String)>> {
        let pool = self.pool.clone();
        self.run(async move {
            let c = Conn::get(&pool, "read nodes").await?;
            let rows = c
                .rows("read the nodes", sql::LIVE_NODES, &[&secs(ttl)])
                .await?;
            c.done();
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }

    /// Every shard: owner (while its lease runs), address, watermark.
    pub async fn shard_map(&self) -> Result<Vec<ShardRow>> {
        let pool = self.pool.clone();
        self.run(async move {
            let c = Conn::get(&pool, "read shards").await?;
            let rows = c.rows("read the shards", sql::SHARD_MAP, &[]).await?;
            c.done();
            Ok(rows
                .iter()
                .map(|r| ShardRow {
                    shard: r.get::<_, i64>(0) as u32,
                    epoch: r.get::<_, i64>(1) as u64,
                    last_seq: r.get::<_, i64>(2) as u64,
                    owner: r.get(3),
                    advertise: r.get(4),
                })
                .collect())
        })
        .await
    }

    /// Removes this node's row (a clean leave).
    pub async fn leave(&self, instance: &str) -> Result<()> {
        let (pool, node, instance) = (self.pool.clone(), self.node_id.clone(), instance.to_owned());
        self.run(async move {
            let c = Conn::get(&pool, "leave").await?;
            c.exec("leave the cluster", sql::LEAVE, &[&node, &instance])
                .await?;
            c.done();
            Ok(())
        })
        .await
    }
}
