//! A node's life in a cluster: membership and shard leases.
//!
//! Several nodes share one PostgreSQL database (the system of record; see
//! `store::postgres`). Each shard is leased to one node at a time; the
//! leaseholder serves the shard's customers and fires its timers. This
//! module is the policy around the database's lease statements:
//!
//! - **Join**: register the node id (refused while another live process
//!   holds it), then take a fair share of the shards.
//! - **Renew** every `lease_renew`: the heartbeat and every lease in one
//!   round trip. A lease the database no longer confirms stops at once.
//!   If renewals fail (database unreachable, this process paused), the
//!   node stops serving *before* its leases can end: `lease_ttl` minus
//!   half a renewal after the last successful renewal was *sent*, by its
//!   own monotonic clock. The database's fencing refuses whatever it still
//!   tries to commit after that.
//! - **Balance**: a fair share is ceil(shards / live nodes). A node below
//!   it takes free or expired shards (a new epoch each); one above it
//!   hands its highest shards back cleanly (drain, then release), so a
//!   joining node gets its share and a dead node's shards move within
//!   `lease_ttl` plus a renewal.
//! - **Leave** (SIGTERM): every shard drained and released at once, the
//!   node's row removed: the others take over without waiting for expiry.
//! - **The shard map**: every 100 ms, who owns which shard (for
//!   forwarding calls to the owner) and each shard's escalation watermark
//!   (so subscribers on this node stream what other nodes commit).
//!
//! Taking a shard starts it in the node: its timer service loads the
//! shard's timer window and fires what is overdue at once (marked late by
//! the engine), and its actors load customers on demand from the database.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::watch;

use crate::node::Node;
use crate::store::PgStore;

/// How often the shard map (owners, watermarks) is refreshed.
const MAP_EVERY: Duration = Duration::from_millis(100);

impl crate::api::Locate for Member {
    fn owner(&self, shard: u32) -> Option<String> {
        Member::owner(self, shard)
    }

    fn node_id(&self) -> &str {
        Member::node_id(self)
    }

    /// Renewed its leases (so: reached the database) within the lease time.
    fn ready(&self) -> bool {
        self.renewed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() < self.ttl)
    }
}

/// This node as a member of the cluster.
pub struct Member {
    store: Arc<PgStore>,
    node: Arc<Node>,
    /// Tells this process from an earlier one with the same node id.
    instance: String,
    advertise: String,
    ttl: Duration,
    renew: Duration,
    /// Per shard, the address of its owner (`None`: free or moving).
    owners: RwLock<Vec<Option<String>>>,
    /// When the last renewal that succeeded was sent.
    renewed: std::sync::Mutex<Option<Instant>>,
}

impl Member {
    /// Registers the node id; waits up to twice the lease time for an
    /// earlier process with the same id to expire (a restart right after a
    /// crash), then refuses with what to do.
    pub async fn join(
        store: Arc<PgStore>,
        node: Arc<Node>,
        advertise: String,
        ttl: Duration,
        renew: Duration,
    ) -> anyhow::Result<Arc<Member>> {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let instance: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let deadline = Instant::now() + ttl * 2 + Duration::from_secs(1);
        loop {
            match store
                .register_node(&instance, &advertise, ttl)
                .await
                .context("joining the cluster")?
            {
                None => break,
                Some((addr, age)) if Instant::now() >= deadline => bail!(
                    "node id `{}` is in use by a running node at {addr} (its last heartbeat was \
                     {age:.1} s ago): give each node its own --node-id",
                    store.node_id()
                ),
                Some(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        let shards = node.config().shards as usize;
        let member = Arc::new(Member {
            store,
            node,
            instance,
            advertise,
            ttl,
            renew,
            owners: RwLock::new(vec![None; shards]),
            renewed: std::sync::Mutex::new(Some(Instant::now())),
        });
        tracing::info!(
            node_id = member.store.node_id(),
            advertise = %member.advertise,
            database = member.store.target(),
            "joined the cluster"
        );
        Ok(member)
    }

    pub fn node_id(&self) -> &str {
        self.store.node_id()
    }

    /// The address of the node that owns `shard` now, if any.
    pub fn owner(&self, shard: u32) -> Option<String> {
        self.owners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(shard as usize)
            .cloned()
            .flatten()
    }

    /// This node's address for peers.
    pub fn advertise(&self) -> &str {
        &self.advertise
    }

    /// Runs the lease loop and the shard-map loop until `stop` is set.
    /// Ends with an error only when this node must not go on (another
    /// process took its node id).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let map = tokio::spawn(self.clone().map_loop(stop.clone()));
        let mut last_ok: Option<Instant> = None;
        let mut tick = tokio::time::interval(self.renew);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break Ok(()),
            }
            if *stop.borrow() {
                break Ok(());
            }
            if let Err(e) = self.lease_round(&mut last_ok).await {
                break Err(e);
            }
        };
        map.abort();
        result
    }

    /// One renewal (and the stop it may force), then one balancing step.
    async fn lease_round(&self, last_ok: &mut Option<Instant>) -> anyhow::Result<()> {
        let held = self.node.served();
        let sent = Instant::now();
        let renewed = tokio::time::timeout(
            self.renew.max(Duration::from_millis(500)),
            self.store.renew(&self.instance, &held, self.ttl),
        )
        .await;
        match renewed {
            Ok(Ok(Some(still))) => {
                *last_ok = Some(sent);
                *self.renewed.lock().unwrap_or_else(|p| p.into_inner()) = Some(sent);
                let still: HashSet<(u32, u64)> = still.into_iter().collect();
                for (shard, epoch) in &held {
                    if !still.contains(&(*shard, *epoch)) {
                        tracing::warn!(shard, epoch, "lease lost: another node took the shard");
                        self.node.stop_shard(*shard, false).await;
                    }
                }
            }
            Ok(Ok(None)) => {
                self.stop_all(false).await;
                bail!(
                    "another process registered as node `{}`: this one stopped serving; give each \
                     node its own --node-id",
                    self.node_id()
                );
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot renew the shard leases"),
            Err(_) => tracing::warn!("renewing the shard leases timed out"),
        }
        // Stop before any lease can end, by this process's own clock.
        let safe = self.ttl.saturating_sub(self.renew / 2);
        let expired = last_ok.is_none_or(|t| t.elapsed() >= safe);
        if expired {
            if !self.node.served().is_empty() {
                tracing::error!(
                    "no lease renewal for {} ms: stopping every shard before the leases end",
                    safe.as_millis()
                );
                self.stop_all(false).await;
            }
            if last_ok.is_none_or(|t| t.elapsed() >= self.ttl) {
                // Only shards acquired after a successful renewal are safe.
                *last_ok = None;
            }
        }
        if last_ok.is_some() {
            self.balance().await;
        }
        Ok(())
    }

    /// Takes shards up to the fair share, or hands the excess back.
    async fn balance(&self) {
        let live = match self.store.live_nodes(self.ttl).await {
            Ok(live) => live.len().max(1),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the cluster's nodes");
                return;
            }
        };
        let shards = self.node.config().shards as usize;
        let share = shards.div_ceil(live);
        let held = self.node.served();
        if held.len() < share {
            match self.store.acquire(share - held.len(), self.ttl).await {
                Ok(got) => {
                    for a in got {
                        if let Err(e) = self
                            .node
                            .start_shard(a.shard, a.epoch, Some(a.last_seq))
                            .await
                        {
                            tracing::error!(shard = a.shard, error = %e, "cannot start a shard");
                            let _ = self.store.release(a.shard, a.epoch).await;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot acquire shards"),
            }
        } else if held.len() > share {
            let mut extra = held;
            extra.sort();
            for (shard, epoch) in extra.split_off(share) {
                self.hand_over(shard, epoch).await;
            }
        }
    }

    async fn hand_over(&self, shard: u32, epoch: u64) {
        self.node.stop_shard(shard, true).await;
        match self.store.release(shard, epoch).await {
            Ok(()) => tracing::info!(shard, epoch, "handed the shard over"),
            Err(e) => tracing::warn!(shard, error = %e, "cannot release a shard; it expires"),
        }
    }

    async fn stop_all(&self, drain: bool) {
        for (shard, _) in self.node.served() {
            self.store.forget(shard);
            self.node.stop_shard(shard, drain).await;
        }
    }

    /// Leaves the cluster cleanly: every shard drained and released, the
    /// node's row removed, so the others take over at once.
    pub async fn leave(&self) {
        for (shard, epoch) in self.node.served() {
            self.hand_over(shard, epoch).await;
        }
        if let Err(e) = self.store.leave(&self.instance).await {
            tracing::warn!(error = %e, "cannot remove this node's row; it expires");
        }
        tracing::info!(node_id = self.node_id(), "left the cluster");
    }

    /// Refreshes the shard map: owners for forwarding, watermarks for
    /// subscribers, and shards another node owns now (stopped at once).
    async fn map_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(MAP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let rows = match self.store.shard_map().await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the shard map");
                    continue;
                }
            };
            let served = self.node.served();
            {
                let mut owners = self.owners.write().unwrap_or_else(|p| p.into_inner());
                for r in &rows {
                    if let Some(slot) = owners.get_mut(r.shard as usize) {
                        slot.clone_from(&r.advertise);
                    }
                }
            }
            for r in rows {
                self.node.journal().observe(r.shard, r.last_seq);
                // Epochs only grow: an older one is a read from before
                // this node took the shard.
                let Some(served_epoch) = served
                    .iter()
                    .find(|(s, e)| *s == r.shard && r.epoch > *e)
                    .map(|(_, e)| *e)
                else {
                    continue;
                };
                if r.owner.as_deref() == Some(self.node_id()) {
                    // This node fenced its own shard (a commit of unknown
                    // outcome): serve it again under the new epoch, with
                    // actors that reload what the database holds.
                    tracing::warn!(
                        shard = r.shard,
                        from = served_epoch,
                        to = r.epoch,
                        "restarting the shard under its new epoch"
                    );
                    if let Err(e) = self
                        .node
                        .start_shard(r.shard, r.epoch, Some(r.last_seq))
                        .await
                    {
                        tracing::error!(shard = r.shard, error = %e, "cannot restart the shard");
                    }
                } else {
                    tracing::warn!(shard = r.shard, "the shard moved to another node");
                    self.store.forget(r.shard);
                    self.node.stop_shard(r.shard, false).await;
                }
            }
        }
    }
}
