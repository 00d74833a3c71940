//! Any node answers any call (DESIGN.md, "Clustering"): a call about a
//! customer whose shard another node serves goes on to that node over the
//! public `handoff.v1` services, so clients need one address or a load
//! balancer in front of them all.
//!
//! Per call, and per customer of an IngestBatch:
//! - the shard is served here: answered here;
//! - else its owner is known, is not this node, and the call was not
//!   forwarded already: forwarded to the owner, with the caller's
//!   `authorization` metadata (the owner admits the caller and applies its
//!   rules itself) and [`FORWARDED_BY_HEADER`] naming this node;
//! - else (the shard is moving, or a forwarded call reached a node that
//!   does not serve it): the call waits, polling, up to [`MOVE_WAIT`] for
//!   one of the above, then answers UNAVAILABLE ending in "retry: same
//!   event id".
//!
//! A call forwarded once is never forwarded again: one hop, no loops,
//! whatever two nodes believe about each other. A local call that finds
//! its shard gone ([`NodeError::NotHere`], the shard moved during the
//! call; nothing was sent to an actor) is routed once more. The owner's
//! answer, success or status, is passed back as it is; a hop that fails on
//! the way (no connection, reset) is UNAVAILABLE, "retry: same event id":
//! events are idempotent by id, so a retry is safe whether or not the
//! owner applied them.
//!
//! Where shards are served is the lease manager's knowledge, behind
//! [`Locate`]; this module only asks it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Response, Status};

use super::convert;
use super::invalid::passed_on;
use super::pb;
use super::pb::escalations_client::EscalationsClient;
use super::pb::lifecycle_client::LifecycleClient;
use crate::engine::Event;
use crate::node::{IngestReply, Node, NodeError};

/// How long a call waits for a moving shard to be served again, here or
/// by a known owner, before it answers UNAVAILABLE.
pub const MOVE_WAIT: Duration = Duration::from_secs(3);

/// How often a waiting call looks again.
const POLL: Duration = Duration::from_millis(25);

/// How long the hop may take to connect to an owner.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// While calls are forwarded on a connection, it is pinged this often and
/// given this long to answer: an owner that stopped (paused, partitioned)
/// fails its forwarded calls with UNAVAILABLE within seconds, instead of
/// holding them until the callers give up. A slow owner that answers pings
/// is waited for, as a single node would be.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// The request header of a forwarded call: the id of the node that
/// forwarded it. A call that carries it is never forwarded again.
pub const FORWARDED_BY_HEADER: &str = "handoff-forwarded-by";

/// Where shards are served: the lease manager's view of the cluster.
///
/// # Contract
/// - [`owner`](Locate::owner) is called on every routed call and while a
///   call waits for a moving shard (every few tens of milliseconds): it
///   answers from memory, without I/O or blocking.
/// - Its answer may be stale: a call forwarded to a node that no longer
///   serves the shard waits there, then answers UNAVAILABLE; it is never
///   forwarded a second time.
/// - An owner that is this node (its own advertised address) is never
///   forwarded to: the call waits until the node serves the shard.
pub trait Locate: Send + Sync + 'static {
    /// The advertised gRPC address (`host:port`) of the node that owns
    /// `shard`, or `None` while no owner is known (the shard is moving).
    fn owner(&self, shard: u32) -> Option<String>;
    /// This node's id, named in [`FORWARDED_BY_HEADER`].
    fn node_id(&self) -> &str;
    /// Whether this node is in the cluster now (it reaches the database
    /// and holds its leases): the health service says NOT_SERVING while
    /// it is not, so a load balancer sends its calls elsewhere.
    fn ready(&self) -> bool {
        true
    }
}

/// Routing at the gRPC edge of a node in a cluster (see the module).
pub struct Routing {
    locate: Arc<dyn Locate>,
    /// This node's advertised address: an owner named so is this node.
    advertise: String,
    /// [`FORWARDED_BY_HEADER`]'s value: this node's id.
    forwarded_by: MetadataValue<Ascii>,
    /// One channel per owner address, connected on first use and shared
    /// by every call forwarded there (HTTP/2 multiplexes them); a channel
    /// reconnects by itself after its connection fails.
    channels: Mutex<HashMap<String, Channel>>,
    /// TLS for the hop, when the nodes serve TLS (`peer_ca`).
    tls: Option<ClientTlsConfig>,
}

/// Where one shard's calls go now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Here,
    /// The owner's advertised address.
    Owner(String),
}

impl Routing {
    /// Routing through `locate`, for the node advertised at `advertise`.
    pub fn new(locate: Arc<dyn Locate>, advertise: impl Into<String>) -> Routing {
        // A header value is visible ASCII; a node id that is not (it comes
        // from the config) is named with its other characters replaced.
        let id: String = locate
            .node_id()
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect();
        let forwarded_by = MetadataValue::try_from(id)
            .expect("invariant: visible ASCII is a valid metadata value");
        Routing {
            locate,
            advertise: advertise.into(),
            forwarded_by,
            channels: Mutex::new(HashMap::new()),
            tls: None,
        }
    }

    /// See [`Locate::ready`].
    pub fn ready(&self) -> bool {
        self.locate.ready()
    }

    /// Forwarded calls connect with TLS, verifying the owner's certificate
    /// against `tls` (the nodes' listeners serve TLS).
    pub fn with_tls(mut self, tls: ClientTlsConfig) -> Routing {
        self.tls = Some(tls);
        self
    }

    /// Where `shard`'s calls go now, if anywhere.
    fn target_now(&self, node: &Node, shard: u32, origin: &Origin) -> Option<Target> {
        if node.serves(shard) {
            return Some(Target::Here);
        }
        if origin.forwarded_by.is_some() {
            return None;
        }
        self.locate
            .owner(shard)
            .filter(|owner| *owner != self.advertise)
            .map(Target::Owner)
    }

    /// Where each of `shards`' calls go, waiting up to [`MOVE_WAIT`] for
    /// those that are moving; UNAVAILABLE if one is still moving then.
    async fn targets(
        &self,
        node: &Node,
        mut shards: BTreeSet<u32>,
        origin: &Origin,
    ) -> Result<BTreeMap<u32, Target>, Status> {
        let deadline = tokio::time::Instant::now() + MOVE_WAIT;
        let mut found = BTreeMap::new();
        loop {
            shards.retain(|&shard| match self.target_now(node, shard, origin) {
                Some(target) => {
                    found.insert(shard, target);
                    false
                }
                None => true,
            });
            let Some(&moving) = shards.first() else {
                return Ok(found);
            };
            if tokio::time::Instant::now() >= deadline {
                metrics::counter!("handoff_moving_unavailable_total").increment(1);
                return Err(origin.moving(moving));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Where one shard's calls go (see [`targets`](Routing::targets)).
    async fn target(&self, node: &Node, shard: u32, origin: &Origin) -> Result<Target, Status> {
        let mut found = self.targets(node, BTreeSet::from([shard]), origin).await?;
        Ok(found
            .remove(&shard)
            .expect("invariant: targets answers every shard it is asked"))
    }

    /// The channel to `addr`, made on first use.
    fn channel(&self, addr: &str) -> Result<Channel, Status> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{addr}")).map_err(|e| {
            Status::unavailable(format!(
                "the customer's shard is served by the node advertised as `{addr}`, which is not \
                 a host:port ({e}): fix that node's advertised address; retry: same event id"
            ))
        })?;
        let endpoint = match &self.tls {
            Some(tls) => endpoint.tls_config(tls.clone()).map_err(|e| {
                Status::unavailable(format!(
                    "cannot set up TLS to the node at {addr}: {e}; check peer_ca; retry: same \
                     event id"
                ))
            })?,
            None => endpoint,
        };
        let channel = endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_timeout(KEEPALIVE)
            .connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Makes `call` on the node at `addr`: its answer as it is, or
    /// UNAVAILABLE if the hop failed on the way.
    async fn forward<T, C, F>(&self, addr: &str, origin: &Origin, call: C) -> Result<T, Status>
    where
        C: FnOnce(Onward) -> F,
        F: Future<Output = Result<Response<T>, Status>>,
    {
        self.hop(addr, origin, call).await.0
    }

    /// Waits (up to [`MOVE_WAIT`]) until `shard` has an owner other than
    /// `addr`, a node that did not answer: it died, and its leases are
    /// about to move. The caller's retry then finds the new owner instead
    /// of the dead one.
    async fn await_new_owner(&self, shard: u32, addr: &str) {
        let deadline = tokio::time::Instant::now() + MOVE_WAIT;
        while tokio::time::Instant::now() < deadline {
            if self.locate.owner(shard).is_some_and(|o| o != addr) {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// [`forward`](Routing::forward), and whether the hop itself failed.
    async fn hop<T, C, F>(&self, addr: &str, origin: &Origin, call: C) -> (Result<T, Status>, bool)
    where
        C: FnOnce(Onward) -> F,
        F: Future<Output = Result<Response<T>, Status>>,
    {
        let channel = match self.channel(addr) {
            Ok(c) => c,
            Err(status) => return (Err(status), false),
        };
        let onward = Onward {
            channel,
            metadata: origin.onward(&self.forwarded_by),
        };
        let answer = call(onward).await;
        // A status the owner sent is read from its answer; one with a
        // source was made here, by the client, from a transport error.
        let failed = matches!(&answer, Err(s) if std::error::Error::source(s).is_some());
        let result = if failed { "unreachable" } else { "answered" };
        metrics::counter!("handoff_forwarded_total", "result" => result).increment(1);
        let answer = match answer {
            Ok(response) => Ok(response.into_inner()),
            Err(status) if failed => Err(Status::unavailable(format!(
                "the call was forwarded to {addr}, the node that serves the customer's shard, \
                 and failed on the way ({}); retry: same event id",
                status.message()
            ))),
            Err(status) => Err(passed_on(status)),
        };
        (answer, failed)
    }

    /// Forwards one owner's part of an IngestBatch as one IngestBatch.
    async fn forward_batch(
        &self,
        addr: &str,
        part: Vec<Slotted>,
        origin: &Origin,
    ) -> Result<Vec<(usize, Answered)>, Status> {
        let slots: Vec<usize> = part.iter().map(|e| e.slot).collect();
        let events: Vec<pb::Event> = part
            .into_iter()
            .map(|e| convert::wire_event(e.event, e.set))
            .collect();
        let sent = events.len();
        let answer = self
            .forward(addr, origin, |to| async move {
                to.lifecycle()
                    .ingest_batch(to.request(pb::IngestBatchRequest { events }))
                    .await
            })
            .await?;
        if answer.results.len() != sent {
            return Err(Status::internal(format!(
                "the node at {addr} answered {} results to a forwarded batch of {sent} events \
                 (one each is the contract): do the nodes run the same version?",
                answer.results.len()
            )));
        }
        Ok(slots
            .into_iter()
            .zip(answer.results.into_iter().map(Answered::There))
            .collect())
    }
}

/// How a call arrived: the caller's credentials, to go on with it, and
/// the node that forwarded it, if one did.
pub(super) struct Origin {
    authorization: Option<MetadataValue<Ascii>>,
    forwarded_by: Option<String>,
}

impl Origin {
    pub(super) fn of<T>(request: &Request<T>) -> Origin {
        let metadata = request.metadata();
        Origin {
            authorization: metadata.get("authorization").cloned(),
            forwarded_by: metadata
                .get(FORWARDED_BY_HEADER)
                .map(|v| v.to_str().unwrap_or("(not ASCII)").to_owned()),
        }
    }

    /// The metadata of the call going on from this node.
    fn onward(&self, forwarded_by: &MetadataValue<Ascii>) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        if let Some(token) = &self.authorization {
            metadata.insert("authorization", token.clone());
        }
        metadata.insert(FORWARDED_BY_HEADER, forwarded_by.clone());
        metadata
    }

    /// The answer to a call whose shard is still moving after [`MOVE_WAIT`].
    fn moving(&self, shard: u32) -> Status {
        let waited = MOVE_WAIT.as_secs();
        Status::unavailable(match &self.forwarded_by {
            None => format!(
                "shard {shard} is moving between nodes: no node served it within {waited} s; \
                 retry: same event id"
            ),
            Some(by) => format!(
                "shard {shard} is moving between nodes: node `{by}` forwarded this call here as \
                 its owner, but this node has not served it within {waited} s; retry: same event id"
            ),
        })
    }
}

/// A call on its way to a shard's owner: a channel to it, and the
/// metadata the hop carries.
pub(super) struct Onward {
    channel: Channel,
    metadata: MetadataMap,
}

impl Onward {
    pub(super) fn lifecycle(&self) -> LifecycleClient<Channel> {
        LifecycleClient::new(self.channel.clone())
            .max_decoding_message_size(super::MAX_MESSAGE)
            .max_encoding_message_size(super::MAX_MESSAGE)
    }

    pub(super) fn escalations(&self) -> EscalationsClient<Channel> {
        EscalationsClient::new(self.channel.clone())
            .max_decoding_message_size(super::MAX_MESSAGE)
            .max_encoding_message_size(super::MAX_MESSAGE)
    }

    /// `message` as a request of the hop.
    pub(super) fn request<M>(&self, message: M) -> Request<M> {
        Request::from_parts(self.metadata.clone(), Default::default(), message)
    }
}

/// Answers a call about `customer`: `here` on this node (up to twice, if
/// the shard moves away during the first try), or `onward` at the shard's
/// owner (see the module). Without `routing` (a single node, which serves
/// every shard) it is `here`, once. `refused` maps this node's errors.
pub(super) async fn answer<T, H, HF, O, OF>(
    routing: Option<&Routing>,
    node: &Node,
    origin: &Origin,
    customer: &str,
    mut here: H,
    onward: O,
    refused: impl Fn(NodeError) -> Status,
) -> Result<T, Status>
where
    H: FnMut() -> HF,
    HF: Future<Output = Result<T, NodeError>>,
    O: FnOnce(Onward) -> OF,
    OF: Future<Output = Result<Response<T>, Status>>,
{
    let Some(routing) = routing else {
        return here().await.map_err(refused);
    };
    let shard = node.shard_of(customer);
    let mut moved = false;
    loop {
        match routing.target(node, shard, origin).await? {
            Target::Here => match here().await {
                Err(NodeError::NotHere(_)) if !moved => moved = true,
                answered => return answered.map_err(refused),
            },
            Target::Owner(addr) => {
                let (answer, failed) = routing.hop(&addr, origin, onward).await;
                if failed {
                    routing.await_new_owner(shard, &addr).await;
                }
                return answer;
            }
        }
    }
}

/// A valid event of an IngestBatch, with its slot in the batch.
#[derive(Clone)]
pub(super) struct Slotted {
    pub slot: usize,
    pub event: Event,
    /// Whether `occurred_at` was set.
    pub set: bool,
}

/// The answer for one slot of an IngestBatch.
pub(super) enum Answered {
    /// This node's reply.
    Here(Result<IngestReply, NodeError>),
    /// The owner's result, as it sent it.
    There(pb::IngestResult),
}

/// Ingests a batch's valid events: the local part through the node, each
/// owner's part as one forwarded IngestBatch, all at once; answers each
/// event's slot. Every shard is placed before anything is ingested, so a
/// shard that stays moving fails the call before any work. An error of
/// the node or of a hop fails the whole call, as it does on one node
/// (retrying it is safe: the events applied come back DUPLICATE).
pub(super) async fn ingest_batch(
    routing: Option<&Routing>,
    node: &Node,
    origin: &Origin,
    events: Vec<Slotted>,
) -> Result<Vec<(usize, Answered)>, Status> {
    let Some(routing) = routing else {
        let slots: Vec<usize> = events.iter().map(|e| e.slot).collect();
        let replies = node
            .ingest_batch(events.into_iter().map(|e| (e.event, e.set)).collect())
            .await?;
        return Ok(slots
            .into_iter()
            .zip(replies.into_iter().map(Answered::Here))
            .collect());
    };
    let mut answered = Vec::with_capacity(events.len());
    let mut pending = events;
    let mut moved = false;
    while !pending.is_empty() {
        let shards: Vec<u32> = pending
            .iter()
            .map(|e| node.shard_of(&e.event.customer))
            .collect();
        let targets = routing
            .targets(node, shards.iter().copied().collect(), origin)
            .await?;
        let mut here = Vec::new();
        let mut owners: BTreeMap<&str, Vec<Slotted>> = BTreeMap::new();
        for (e, shard) in pending.into_iter().zip(&shards) {
            match &targets[shard] {
                Target::Here => here.push(e),
                Target::Owner(addr) => owners.entry(addr.as_str()).or_default().push(e),
            }
        }
        // Kept for the one more try of events whose shard moves away
        // during the call (they never reached an actor).
        let again: Option<Vec<Slotted>> = (!moved).then(|| here.clone());
        let slots: Vec<usize> = here.iter().map(|e| e.slot).collect();
        let local = async {
            if here.is_empty() {
                return Ok(Vec::new());
            }
            node.ingest_batch(here.into_iter().map(|e| (e.event, e.set)).collect())
                .await
        };
        let remote = futures_util::future::join_all(
            owners
                .into_iter()
                .map(|(addr, part)| routing.forward_batch(addr, part, origin)),
        );
        let (local, remote) = tokio::join!(local, remote);
        pending = Vec::new();
        for (i, reply) in local?.into_iter().enumerate() {
            match (reply, &again) {
                (Err(NodeError::NotHere(_)), Some(again)) => pending.push(again[i].clone()),
                (reply, _) => answered.push((slots[i], Answered::Here(reply))),
            }
        }
        for part in remote {
            answered.extend(part?);
        }
        moved = true;
    }
    Ok(answered)
}
