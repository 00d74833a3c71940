//! Shards: customers hash to a fixed number of shards; each shard hosts the
//! actors of its *active* customers and a timer service.
//!
//! The shard's router actor ([`ShardActor`]) owns the registry of active
//! customer actors: it starts an actor on a customer's first message (the
//! actor loads its state from the store as it handles that message, so the
//! router never waits for a read), forwards later messages to it, and
//! passivates actors that are idle or beyond the cap on active actors, so
//! memory does not grow with the number of customers. While a passivated
//! actor finishes its queue, new messages for that customer wait in the
//! router and go to a fresh actor once the old one has stopped, so two
//! actors never hold the same customer.
//!
//! **Firings first.** Timer firings do not queue in the router's mailbox
//! behind ingest: the timer service puts them on the shard's firing lane
//! (a channel the router owns) and wakes the router, which routes every
//! waiting firing before it handles its next message, whatever that is.

pub mod context;
pub mod customer;
pub mod loader;
mod meters;
pub mod timers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use tokio::sync::mpsc;

use crate::engine::Timer;
use crate::reply::NodeError;
use context::ShardContext;
use customer::{CustomerActor, CustomerMsg};

/// The shard a customer belongs to: FNV-1a of its id, modulo the shard
/// count. Fixed forever for a data directory (it is in every key).
pub fn shard_of(customer: &str, shards: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in customer.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(shards.max(1))) as u32
}

/// What a shard's router is asked.
pub enum ShardMsg {
    /// Deliver `msg` to the customer's actor, starting it if needed.
    Route { customer: String, msg: CustomerMsg },
    /// A customer actor stopped (sent from its `post_stop`).
    Stopped { customer: String, actor: ActorId },
    /// Passivate actors idle for longer than the idle timeout.
    Sweep,
    /// Firings wait on the firing lane (they are routed before any message).
    FiringsWaiting,
    /// How many customer actors are active and draining.
    Stats(RpcReplyPort<ShardStats>),
}

/// A shard's actor counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    pub active: usize,
    pub draining: usize,
}

/// Passivation settings of a shard.
#[derive(Debug, Clone, Copy)]
pub struct ActorLimits {
    /// Most active customer actors in this shard.
    pub max_active: usize,
    /// An actor idle this long is passivated.
    pub idle: StdDuration,
}

pub struct ShardActor {
    pub ctx: Arc<ShardContext>,
    pub limits: ActorLimits,
}

struct Active {
    actor: ActorRef<CustomerMsg>,
    last_used: Instant,
}

/// A timer of a customer that came due, on its way to the customer's actor.
pub type Firing = (String, Timer);

pub struct ShardState {
    /// The firing lane: filled by the shard's timer service.
    firings: mpsc::UnboundedReceiver<Firing>,
    active: HashMap<String, Active>,
    /// Customers whose passivated actor has not stopped yet, with the
    /// messages that arrived meanwhile.
    draining: HashMap<String, (ActorId, Vec<CustomerMsg>)>,
}

impl Actor for ShardActor {
    type Msg = ShardMsg;
    type State = ShardState;
    type Arguments = mpsc::UnboundedReceiver<Firing>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        firings: mpsc::UnboundedReceiver<Firing>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let period = (self.limits.idle / 2).max(StdDuration::from_millis(100));
        myself.send_interval(period, || ShardMsg::Sweep);
        Ok(ShardState {
            firings,
            active: HashMap::new(),
            draining: HashMap::new(),
        })
    }

    /// The shard stops (it moved to another node, or the node stops): its
    /// customer actors finish what they hold and stop with it (the router
    /// stops once they have). (What they
    /// commit after the shard's lease moved is refused by the store.)
    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Waited for, so that a clean hand-over releases the lease only
        // once what they decided is committed under it.
        let actors: Vec<ActorRef<CustomerMsg>> = st.active.drain().map(|(_, a)| a.actor).collect();
        futures_util::future::join_all(
            actors
                .iter()
                .map(|a| a.drain_and_wait(Some(StdDuration::from_secs(5)))),
        )
        .await;
        for (_, (_, queued)) in st.draining.drain() {
            for m in queued {
                fail(Some(m), "the customer's shard moved to another node");
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        while let Ok((customer, timer)) = st.firings.try_recv() {
            self.route(&myself, st, customer, CustomerMsg::Timer(timer))
                .await;
        }
        match msg {
            ShardMsg::FiringsWaiting => {}
            ShardMsg::Route { customer, msg } => self.route(&myself, st, customer, msg).await,
            ShardMsg::Stopped { customer, actor } => {
                if st
                    .draining
                    .get(&customer)
                    .is_some_and(|(id, _)| *id == actor)
                {
                    let (_, queued) = st.draining.remove(&customer).expect("checked above");
                    if !queued.is_empty() {
                        self.start(&myself, st, customer, queued).await;
                    }
                } else if st
                    .active
                    .get(&customer)
                    .is_some_and(|a| a.actor.get_id() == actor)
                {
                    // Stopped on its own (a journal failure): forget it; the
                    // next message starts a fresh actor from the store.
                    st.active.remove(&customer);
                }
            }
            ShardMsg::Sweep => {
                let idle = self.limits.idle;
                let now = Instant::now();
                let stale: Vec<String> = st
                    .active
                    .iter()
                    .filter(|(_, a)| now.duration_since(a.last_used) >= idle)
                    .map(|(c, _)| c.clone())
                    .collect();
                for c in stale {
                    passivate(st, c);
                }
            }
            ShardMsg::Stats(reply) => {
                let _ = reply.send(ShardStats {
                    active: st.active.len(),
                    draining: st.draining.len(),
                });
            }
        }
        Ok(())
    }
}

impl ShardActor {
    async fn route(
        &self,
        myself: &ActorRef<ShardMsg>,
        st: &mut ShardState,
        customer: String,
        msg: CustomerMsg,
    ) {
        if let Some((_, queued)) = st.draining.get_mut(&customer) {
            queued.push(msg);
            return;
        }
        let msg = match st.active.get_mut(&customer) {
            Some(a) => {
                a.last_used = Instant::now();
                match a.actor.send_message(msg) {
                    Ok(()) => return,
                    Err(MessagingErr::SendErr(msg)) => {
                        st.active.remove(&customer);
                        msg
                    }
                    Err(_) => {
                        st.active.remove(&customer);
                        return;
                    }
                }
            }
            None => msg,
        };
        self.start(myself, st, customer, vec![msg]).await;
    }

    /// Starts the customer's actor and hands it `msgs`, in order.
    async fn start(
        &self,
        myself: &ActorRef<ShardMsg>,
        st: &mut ShardState,
        customer: String,
        msgs: Vec<CustomerMsg>,
    ) {
        let actor = CustomerActor {
            ctx: self.ctx.clone(),
            shard: myself.clone(),
        };
        match Actor::spawn(None, actor, customer.clone()).await {
            Ok((actor, _)) => {
                for m in msgs {
                    if let Err(e) = actor.send_message(m) {
                        fail(unsent(e), "the customer's actor stopped unexpectedly");
                    }
                }
                st.active.insert(
                    customer,
                    Active {
                        actor,
                        last_used: Instant::now(),
                    },
                );
                if st.active.len() > self.limits.max_active {
                    shed(st, self.limits.max_active);
                }
            }
            Err(e) => {
                tracing::error!(%customer, error = %e, "cannot start a customer actor");
                for m in msgs {
                    fail(Some(m), "the customer's actor could not be started");
                }
            }
        }
    }
}

/// Passivates the least recently used actors until a tenth under the cap.
fn shed(st: &mut ShardState, cap: usize) {
    let target = cap - cap / 10;
    let excess = st.active.len().saturating_sub(target);
    if excess == 0 {
        return;
    }
    let mut by_age: Vec<(Instant, String)> = st
        .active
        .iter()
        .map(|(c, a)| (a.last_used, c.clone()))
        .collect();
    by_age.select_nth_unstable_by_key(excess - 1, |(t, _)| *t);
    by_age.truncate(excess);
    for (_, c) in by_age {
        passivate(st, c);
    }
}

fn passivate(st: &mut ShardState, customer: String) {
    if let Some(a) = st.active.remove(&customer) {
        match a.actor.send_message(CustomerMsg::Passivate) {
            Ok(()) => {
                st.draining.insert(customer, (a.actor.get_id(), Vec::new()));
            }
            Err(_) => {
                // Already stopped: nothing to wait for.
            }
        }
        metrics::counter!("handoff_passivations_total").increment(1);
    }
}

fn unsent(e: MessagingErr<CustomerMsg>) -> Option<CustomerMsg> {
    match e {
        MessagingErr::SendErr(m) => Some(m),
        _ => None,
    }
}

/// Answers a message that cannot be delivered.
pub(crate) fn fail(msg: Option<CustomerMsg>, why: &str) {
    let err = || NodeError::Unavailable(format!("{why}; retry"));
    match msg {
        Some(CustomerMsg::Ingest { reply, .. }) => {
            let _ = reply.send(Err(err()));
        }
        Some(CustomerMsg::Authorize { reply, .. })
        | Some(CustomerMsg::CheckMessage { reply, .. })
        | Some(CustomerMsg::Acknowledge { reply, .. }) => {
            let _ = reply.send(Err(err()));
        }
        Some(CustomerMsg::Get { reply, .. }) => {
            let _ = reply.send(Err(err()));
        }
        Some(CustomerMsg::Migrate { reply, .. }) => {
            let _ = reply.send(Err(err()));
        }
        Some(CustomerMsg::Timer(_)) | Some(CustomerMsg::Passivate) | None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("acme", 16), shard_of("acme", 16));
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            counts[shard_of(&format!("cust-{i}"), 16) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
        // Pinned: the shard is part of every durable key.
        assert_eq!(shard_of("acme", 16), 15);
    }
}
