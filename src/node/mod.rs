//! The node: the engine behind durable customer actors, SLA timers and an
//! escalation log, as one handle the gRPC services (and tests) call.
//!
//! [`Node::open`] opens the store, starts the journal, one router actor and
//! one timer service per shard; every call routes to the customer's shard
//! and actor, and answers once what it changed is durable.

pub mod config;
mod escalations;
pub mod migrate;
pub mod queries;
pub mod reports;
mod retention;
#[cfg(test)]
mod tests;
pub mod version_stats;

use std::sync::Arc;

use ractor::{Actor, ActorRef, RpcReplyPort};
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::engine::model::Model;
use crate::engine::view::CustomerView;
use crate::engine::{Event, Refusal, Timestamp, check_malformed, parse_escalation_id};
use crate::journal::{Journal, LocalJournal};
use crate::shard::context::ShardContext;
use crate::shard::customer::CustomerMsg;
use crate::shard::loader::Loader;
use crate::shard::timers::{TimerLinks, TimerService};
use crate::shard::{ActorLimits, ShardActor, ShardMsg, shard_of};
use crate::store::Store;

pub use crate::reply::{
    DecisionReply, IngestReply, InvalidReason, NodeError, RegionMove, SlaChange, SlaChangeKind,
};
pub use crate::versions::{Published, PublishedVersion, VersionError, Versions};
pub use config::NodeConfig;
pub use escalations::{Cursor, EscalationFilter, OpenEscalation, StreamedEscalation};
pub use retention::PruneReport;

/// A running node.
pub struct Node {
    /// Every published version of the model and the rollout table: which
    /// version serves each customer.
    versions: Arc<Versions>,
    config: NodeConfig,
    store: Arc<dyn Store>,
    journal: Arc<dyn Journal>,
    clock: Arc<dyn Clock>,
    /// Per shard, what serves it here (`None`: another node, or nobody).
    shards: Vec<std::sync::RwLock<Option<Running>>>,
    shutdown: watch::Sender<bool>,
    /// The timer services and the retention pass (escalation log, facts):
    /// they end when `shutdown` is set, and [`Node::shutdown`] awaits them.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    retention: retention::Retention,
    /// Batches the actors' reads of a store whose reads are round trips
    /// (`shard::loader`); `None` for the embedded store.
    loader: Option<Arc<Loader>>,
    /// Calls in flight; beyond `max_in_flight` the node sheds load
    /// (RESOURCE_EXHAUSTED) instead of queueing without bound.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Ingested events accepted and not yet answered; beyond
    /// `max_queued_events` ingest is shed (RESOURCE_EXHAUSTED) before the
    /// queues grow long enough to delay firings.
    queued_events: Arc<tokio::sync::Semaphore>,
    /// At most [`dispatch_window`] admitted events are being routed and
    /// decided at once (an event leaves the window when its actor has
    /// proposed it to the journal); the rest wait here, outside the
    /// runtime's run queue, so that a firing's task is never queued behind
    /// thousands of ready ingest tasks (with the firing lanes of the router
    /// and the journal, this is what keeps escalations on time under full
    /// ingest). Events waiting for their commit are not ready tasks: they
    /// do not hold a place, so the actors decide the next events while the
    /// journal commits (`journal::MAX_GROUP` bounds a commit).
    dispatch: Arc<tokio::sync::Semaphore>,
}

/// A shard this node serves.
struct Running {
    router: ActorRef<ShardMsg>,
    epoch: u64,
    /// Stops the shard's timer service.
    stop: watch::Sender<bool>,
    timers: tokio::task::JoinHandle<()>,
}

/// Ingested events being routed and decided at once (not counting those
/// proposed and waiting for their commit), per worker thread of the
/// node's runtime: [`dispatch_window`]. Enough to keep the actors busy (an
/// event leaves the window once proposed, so the journal's groups are not
/// bounded by it); small enough that a ready firing waits behind few tasks.
/// Each event in the window is a ready task on the runtime's queues, and a
/// firing's router and actor are queued behind them: measured at 1,000,000
/// customers on two cores (README, "eighth round"), a window of 512 put
/// escalation lateness during batch ingest at p99 124-146 ms, 64 at
/// 73-98 ms and 32 at 73-81 ms, with batch ingest within the spread.
pub const DISPATCH_PER_WORKER: usize = 16;

/// The smallest dispatch window, whatever the runtime.
pub const MIN_DISPATCH_WINDOW: usize = 32;

/// The dispatch window against a store whose reads are round trips
/// ([`Store::batches_reads`](crate::store::Store::batches_reads),
/// PostgreSQL): there an event of a customer not yet loaded holds its
/// place while its actor waits for the read, and the node's loader asks
/// for every read waiting at once, so the window bounds the reads per
/// round trip as much as the ready tasks. 512 is what the cluster was
/// measured with.
pub const ROUND_TRIP_DISPATCH_WINDOW: usize = 512;

/// The dispatch window of a node on the current runtime:
/// [`DISPATCH_PER_WORKER`] per worker thread, at least
/// [`MIN_DISPATCH_WINDOW`]; [`ROUND_TRIP_DISPATCH_WINDOW`] when
/// `round_trip_reads`.
pub fn dispatch_window(round_trip_reads: bool) -> usize {
    if round_trip_reads {
        return ROUND_TRIP_DISPATCH_WINDOW;
    }
    let workers = tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_workers())
        .unwrap_or(1);
    (DISPATCH_PER_WORKER * workers).max(MIN_DISPATCH_WINDOW)
}

/// How often a node re-reads the published versions and the rollout
/// table from the store (in a cluster, what other nodes published or set).
pub const VERSIONS_POLL: std::time::Duration = std::time::Duration::from_secs(3);

impl Node {
    /// Opens the node on `store`: binds the model to the store's catalog
    /// (refusing one that cannot serve the stored customers) and publishes
    /// it if its version is new, loads every published version
    /// ([`Versions::open`]), starts the journal, the shards and their timer
    /// services (overdue timers fire at once).
    pub async fn open(
        config: NodeConfig,
        model: Arc<Model>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Node, NodeError> {
        let node = Node::open_unowned(config, model, store, clock).await?;
        for shard in 0..node.config.shards {
            node.start_shard(shard, 0, None).await?;
        }
        Ok(node)
    }

    /// Opens the node serving no shard yet: in a cluster, shards start
    /// ([`start_shard`](Node::start_shard)) as this node acquires their
    /// leases and stop as it loses them.
    pub async fn open_unowned(
        config: NodeConfig,
        model: Arc<Model>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Node, NodeError> {
        let versions = Arc::new(Versions::open(store.clone(), &model).map_err(|e| match e {
            VersionError::Store(e) => NodeError::from(e),
            other => NodeError::ModelMismatch(other.to_string()),
        })?);
        // Customers written before the query indexes get their keys, once.
        let indexed = queries::backfill(&versions, &*store)?;
        if indexed > 0 {
            tracing::info!(customers = indexed, "customer query indexes backfilled");
        }
        // Their gauges (customers per state, open SLAs) are recounted, once.
        let recounted = reports::backfill(&versions, &*store)?;
        if recounted > 0 {
            tracing::info!(customers = recounted, "report counters recounted");
        }
        let shards = config.shards;
        let journal: Arc<dyn Journal> = Arc::new(LocalJournal::start(store.clone(), shards)?);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let retention = retention::Retention::new(
            store.clone(),
            clock.clone(),
            config.escalation_retention,
            config.fact_retention,
            shards,
            shutdown_rx.clone(),
        );
        let tasks = vec![
            tokio::spawn(retention.clone().run()),
            tokio::spawn(versions.clone().poll(VERSIONS_POLL, shutdown_rx.clone())),
        ];
        let round_trip_reads = store.batches_reads();
        let loader = round_trip_reads.then(|| Arc::new(Loader::start(store.clone())));
        Ok(Node {
            versions,
            loader,
            store,
            journal,
            clock,
            shards: (0..shards).map(|_| std::sync::RwLock::new(None)).collect(),
            shutdown,
            tasks: std::sync::Mutex::new(tasks),
            retention,
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight)),
            queued_events: Arc::new(tokio::sync::Semaphore::new(config.max_queued_events)),
            dispatch: Arc::new(tokio::sync::Semaphore::new(dispatch_window(
                round_trip_reads,
            ))),
            config,
        })
    }

    /// Starts serving `shard` under lease `epoch`: its router, and its
    /// timer service, which loads the shard's timer window and fires what
    /// is overdue at once. `resume` is the highest escalation seq of the
    /// shard's log when another node may have written it since this one
    /// last served it (the journal continues after it).
    pub async fn start_shard(
        &self,
        shard: u32,
        epoch: u64,
        resume: Option<u64>,
    ) -> Result<(), NodeError> {
        if shard >= self.config.shards {
            return Err(NodeError::Unavailable(format!(
                "shard {shard} does not exist (this node has {} shards)",
                self.config.shards
            )));
        }
        self.stop_shard(shard, false).await;
        if let Some(last_seq) = resume {
            self.journal.resume_shard(shard, last_seq);
        }
        let (timers_tx, timers_rx) = mpsc::unbounded_channel();
        let ctx = Arc::new(ShardContext {
            shard,
            epoch,
            versions: self.versions.clone(),
            limits: self.config.limits(),
            store: self.store.clone(),
            journal: self.journal.clone(),
            clock: self.clock.clone(),
            timers: timers_tx,
            idempotency_retention: self.config.idempotency_retention,
            loader: self.loader.clone(),
        });
        let limits = ActorLimits {
            max_active: (self.config.max_active_actors / self.config.shards as usize).max(1),
            idle: self.config.idle_timeout(),
        };
        let (firings_tx, firings_rx) = mpsc::unbounded_channel();
        let (router, _) = Actor::spawn(None, ShardActor { ctx, limits }, firings_rx)
            .await
            .map_err(|e| NodeError::Unavailable(format!("cannot start shard {shard}: {e}")))?;
        let (stop, stop_rx) = watch::channel(*self.shutdown.borrow());
        let service = TimerService::new(
            shard,
            self.store.clone(),
            self.clock.clone(),
            TimerLinks {
                router: router.clone(),
                firings: firings_tx,
                updates: timers_rx,
                shutdown: stop_rx,
            },
            self.config.timer_window,
        )
        .reporting_breaches_due(&self.versions.started());
        let timers = tokio::spawn(service.run());
        *self.slot(shard).write().unwrap_or_else(|p| p.into_inner()) = Some(Running {
            router,
            epoch,
            stop,
            timers,
        });
        tracing::info!(shard, epoch, "serving shard");
        Ok(())
    }

    /// Stops serving `shard`: its timer service at once, its router and
    /// customer actors after what they hold (`drain`: the queued calls are
    /// answered first; otherwise they are dropped and their callers told
    /// to retry). Calls for its customers then answer [`NodeError::NotHere`].
    pub async fn stop_shard(&self, shard: u32, drain: bool) {
        let Some(running) = self
            .slot(shard)
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        let _ = running.stop.send(true);
        // A service blocked on a store call that does not answer (the
        // database is gone) is left to end by itself: what it still fires
        // goes nowhere, and the shard's keys stay in the store.
        let mut timers = running.timers;
        if tokio::time::timeout(std::time::Duration::from_secs(1), &mut timers)
            .await
            .is_err()
        {
            timers.abort();
            tracing::warn!(shard, "the shard's timer service did not stop within 1 s");
        }
        if drain {
            let _ = running
                .router
                .drain_and_wait(Some(std::time::Duration::from_secs(5)))
                .await;
        } else {
            running.router.stop(Some("the shard moved".into()));
        }
        tracing::info!(shard, epoch = running.epoch, "stopped serving shard");
    }

    /// The shards this node serves, with their lease epochs.
    pub fn served(&self) -> Vec<(u32, u64)> {
        (0..self.config.shards)
            .filter_map(|s| {
                self.slot(s)
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .map(|r| (s, r.epoch))
            })
            .collect()
    }

    /// Whether this node serves `shard` now.
    pub fn serves(&self, shard: u32) -> bool {
        shard < self.config.shards
            && self
                .slot(shard)
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
    }

    /// The shard of a customer.
    pub fn shard_of(&self, customer: &str) -> u32 {
        shard_of(customer, self.config.shards)
    }

    /// The journal: in a cluster, the lease manager tells it about shards
    /// it resumes and logs other nodes wrote.
    pub fn journal(&self) -> &Arc<dyn Journal> {
        &self.journal
    }

    fn slot(&self, shard: u32) -> &std::sync::RwLock<Option<Running>> {
        &self.shards[shard as usize]
    }

    /// The store (for reading whole histories: `handoff history export`).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The model version whose names are every name the node knows (the
    /// one published last): what requests naming a team or a market are
    /// checked against. Each customer is served by its own version
    /// ([`Node::versions`]).
    pub fn model(&self) -> Arc<Model> {
        self.versions.newest()
    }

    /// Customers, SLA outcomes and open escalations by market code and
    /// model version (see [`version_stats`]); reads the store.
    pub fn version_stats(&self) -> Result<version_stats::Stats, NodeError> {
        Ok(version_stats::read(&*self.store, self.config.shards)?)
    }

    /// The published versions and the rollout table.
    pub fn versions(&self) -> &Arc<Versions> {
        &self.versions
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The router of the customer's shard, if this node serves it.
    fn router(&self, customer: &str) -> Result<ActorRef<ShardMsg>, NodeError> {
        let shard = self.shard_of(customer);
        self.slot(shard)
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|r| r.router.clone())
            .ok_or(NodeError::NotHere(shard))
    }

    /// Sends a message to a customer's actor and awaits its answer.
    async fn ask<T>(
        &self,
        customer: &str,
        make: impl FnOnce(RpcReplyPort<Result<T, NodeError>>) -> CustomerMsg,
    ) -> Result<T, NodeError> {
        let _permit = self.in_flight.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("handoff_shed_total").increment(1);
            NodeError::Exhausted(format!(
                "the node has {} calls in flight, its limit (max_in_flight): retry with backoff",
                self.config.max_in_flight
            ))
        })?;
        let (tx, rx) = oneshot::channel();
        let msg = ShardMsg::Route {
            customer: customer.to_owned(),
            msg: make(RpcReplyPort::from(tx)),
        };
        self.router(customer)?.send_message(msg).map_err(|_| {
            NodeError::Unavailable(
                "the node is shutting down; retry on another node or later".into(),
            )
        })?;
        rx.await.map_err(|_| {
            NodeError::Unavailable(
                "the customer's actor stopped before answering; retry (retries are safe)".into(),
            )
        })?
    }

    /// Admits `n` ingested events, or sheds them all: the permit is held
    /// until they are answered.
    fn admit(&self, n: usize) -> Result<tokio::sync::OwnedSemaphorePermit, NodeError> {
        let limit = self.config.max_queued_events;
        if n > limit {
            return Err(NodeError::Exhausted(format!(
                "a batch of {n} events is more than the node queues at once (max_queued_events = \
                 {limit}): send smaller batches"
            )));
        }
        let n = u32::try_from(n).expect("invariant: n <= max_queued_events, a u32 (config check)");
        self.queued_events
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| {
                metrics::counter!("handoff_shed_total").increment(1);
                NodeError::Exhausted(format!(
                    "the node has {limit} ingested events queued, its limit (max_queued_events): \
                     retry with backoff (ingest is shed so that SLA deadlines keep their time)"
                ))
            })
    }

    /// Ingests one event. Malformed data is `Invalid`; everything the model
    /// refuses is an `Ok` reply with outcome `rejected`.
    pub async fn ingest(
        &self,
        event: Event,
        occurred_at_set: bool,
    ) -> Result<IngestReply, NodeError> {
        let _admitted = self.admit(1)?;
        self.ingest_admitted(event, occurred_at_set).await
    }

    async fn ingest_admitted(
        &self,
        mut event: Event,
        occurred_at_set: bool,
    ) -> Result<IngestReply, NodeError> {
        let now = self.clock.now();
        if !occurred_at_set {
            event.occurred_at = now;
        }
        check_malformed(&self.config.limits(), &event, now)
            .map_err(|m| NodeError::Invalid(m.kind.into(), m.message))?;
        let customer = event.customer.clone();
        let dispatched = self.dispatch.clone().acquire_owned().await.map_err(|_| {
            NodeError::Unavailable(
                "the node is shutting down; retry on another node or later".into(),
            )
        })?;
        self.ask(&customer, |reply| CustomerMsg::Ingest {
            event,
            reply,
            dispatched: Some(dispatched),
        })
        .await
    }

    /// Ingests many events concurrently; one result each, same order. The
    /// batch is admitted whole or shed whole (`Exhausted`). A malformed
    /// event is `Invalid` in its slot (the edge answers it with a
    /// `rejected` result there, and counts it) and the others go on.
    pub async fn ingest_batch(
        &self,
        events: Vec<(Event, bool)>,
    ) -> Result<Vec<Result<IngestReply, NodeError>>, NodeError> {
        let _admitted = self.admit(events.len())?;
        let calls = events
            .into_iter()
            .map(|(e, set)| async move { self.ingest_admitted(e, set).await });
        Ok(futures_util::future::join_all(calls).await)
    }

    pub async fn authorize(
        &self,
        customer: &str,
        team: &str,
        action: &str,
    ) -> Result<DecisionReply, NodeError> {
        let (team, action) = (team.to_owned(), action.to_owned());
        self.ask(customer, |reply| CustomerMsg::Authorize {
            team,
            action,
            reply,
        })
        .await
    }

    pub async fn check_message(
        &self,
        customer: &str,
        class: &str,
    ) -> Result<DecisionReply, NodeError> {
        let class = class.to_owned();
        self.ask(customer, |reply| CustomerMsg::CheckMessage { class, reply })
            .await
    }

    pub async fn customer(
        &self,
        customer: &str,
        timeline_limit: usize,
    ) -> Result<CustomerView, NodeError> {
        self.ask(customer, |reply| CustomerMsg::Get {
            timeline_limit,
            reply,
        })
        .await
    }

    /// Acknowledges an escalation: only its notified team or the SLA's
    /// owner may (else `PermissionDenied` with the rule). An empty `team`
    /// is `Invalid`, with a reason that names the teams that may.
    pub async fn acknowledge(
        &self,
        escalation_id: &str,
        team: &str,
        note: &str,
    ) -> Result<DecisionReply, NodeError> {
        let Some(r) = parse_escalation_id(escalation_id) else {
            return Err(NodeError::Invalid(
                InvalidReason::EscalationId,
                format!(
                    "`{escalation_id}` is not an escalation id: they look like customer:sla:instance:tier:repeat"
                ),
            ));
        };
        let customer = r.customer.to_owned();
        let (escalation_id, team, note) =
            (escalation_id.to_owned(), team.to_owned(), note.to_owned());
        let reply = self
            .ask(&customer, |reply| CustomerMsg::Acknowledge {
                escalation_id,
                team,
                note,
                reply,
            })
            .await?;
        if reply.allowed {
            return Ok(reply);
        }
        let reason = reply.reason.unwrap_or_default();
        match reply.refusal {
            Some(Refusal::NotFound) => Err(NodeError::NotFound(reason)),
            // The escalation exists; the reason names who may acknowledge it.
            Some(Refusal::TeamMissing) => Err(NodeError::Invalid(InvalidReason::Missing, reason)),
            Some(Refusal::NotPermitted) | None => Err(NodeError::PermissionDenied(reason)),
        }
    }

    /// Active and draining customer actors, over every shard.
    pub async fn actor_stats(&self) -> crate::shard::ShardStats {
        let mut total = crate::shard::ShardStats::default();
        let routers: Vec<ActorRef<ShardMsg>> = (0..self.config.shards)
            .filter_map(|s| {
                self.slot(s)
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .map(|r| r.router.clone())
            })
            .collect();
        for r in &routers {
            let (tx, rx) = oneshot::channel();
            if r.send_message(ShardMsg::Stats(RpcReplyPort::from(tx)))
                .is_ok()
                && let Ok(s) = rx.await
            {
                total.active += s.active;
                total.draining += s.draining;
            }
        }
        total
    }

    /// Ends escalation streams (subscribers resume from their cursor) and
    /// stops firing timers; calls in flight still finish.
    pub fn stop_streams(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Stops the node: timer services and the retention pass end, routers
    /// stop after their queues, the store is flushed.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
        for shard in 0..self.config.shards {
            self.stop_shard(shard, true).await;
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "flush at shutdown failed");
        }
    }
}
