//! `handoff.v1.Escalations`: the live, resumable stream of escalations,
//! open escalations by team, and acknowledgements.
//!
//! In a cluster, Subscribe and ListOpen are answered by any node (they
//! read the shared escalation log); Acknowledge goes to the owner of the
//! escalation's customer's shard (`forward.rs`).

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use super::auth::{caller, enforce, node_denial};
use super::convert;
use super::error::check_id;
use super::forward::{self, Origin, Routing};
use super::invalid::invalid;
use super::pb;
use super::pb::escalations_server::Escalations;
use crate::engine::parse_escalation_id;
use crate::node::{InvalidReason, Node};

/// The response header of Subscribe that carries the cursor the stream
/// starts after (the position of "now" for a subscription from now).
pub const START_CURSOR_HEADER: &str = "handoff-start-cursor";

pub struct EscalationsService {
    pub node: Arc<Node>,
    /// In a cluster, where acknowledgements for shards served elsewhere
    /// go; `None` on a single node, which serves every shard.
    pub routing: Option<Arc<Routing>>,
}

impl EscalationsService {
    /// An undeclared team in a request is malformed input, as in ListOpen.
    fn check_team(&self, team: &str) -> Result<(), Status> {
        if self.node.model().team(team).is_none() {
            return Err(invalid(
                InvalidReason::Undeclared,
                format!(
                    "team `{team}` is not declared in the model; declared teams: {}",
                    self.node.model().spec.teams.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::EscalationEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Escalations for EscalationsService {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = caller(&request)?;
        let mut r = request.into_inner();
        r.teams = enforce(&caller, caller.watched_teams(r.teams))?;
        let filter = convert::filter(&r)?;
        for team in &filter.teams {
            self.check_team(team)?;
        }
        // A misspelt market would otherwise match nothing, silently.
        let model = self.node.model();
        for market in &filter.markets {
            if model.market(market).is_none() {
                let names: Vec<&str> = model.spec.markets.iter().map(|m| m.name.as_str()).collect();
                return Err(invalid(
                    InvalidReason::Undeclared,
                    format!(
                        "market `{market}` is not declared in the model; declared markets: {}",
                        names.join(", ")
                    ),
                ));
            }
        }
        let (start, rx) = self.node.subscribe(filter, &r.cursor)?;
        let stream =
            ReceiverStream::new(rx).map(|item| item.map(convert::streamed).map_err(Status::from));
        let mut response = Response::new(Box::pin(stream) as EventStream);
        // Where the stream starts, before any event carries a cursor: a
        // client that subscribed "from now" and lost the connection before
        // the first event resumes from here and misses nothing.
        let start = MetadataValue::try_from(start.encode())
            .expect("invariant: a cursor is `h1-` and digits, valid ASCII metadata");
        response.metadata_mut().insert(START_CURSOR_HEADER, start);
        Ok(response)
    }

    async fn list_open(
        &self,
        request: Request<pb::ListOpenRequest>,
    ) -> Result<Response<pb::ListOpenResult>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let team = enforce(&caller, caller.team_scope(&r.team, "ListOpen"))?;
        let open = self.node.list_open(&team)?;
        Ok(Response::new(pb::ListOpenResult {
            escalations: open.into_iter().map(convert::open).collect(),
        }))
    }

    async fn acknowledge(
        &self,
        request: Request<pb::AcknowledgeRequest>,
    ) -> Result<Response<pb::AcknowledgeResult>, Status> {
        let caller = caller(&request)?;
        let origin = Origin::of(&request);
        let r = request.into_inner();
        let team = enforce(&caller, caller.team_scope(&r.team, "Acknowledge"))?;
        check_id("escalation_id", &r.escalation_id, 1024)?;
        // An empty team goes on to the node: only the customer's actor
        // knows which teams may acknowledge, and its answer names them.
        if !team.is_empty() {
            check_id("team", &team, self.node.config().max_len)?;
            self.check_team(&team)?;
        }
        if r.note.len() > 4096 {
            return Err(invalid(
                InvalidReason::TooLong,
                "note is longer than 4096 bytes: shorten it",
            ));
        }
        // The customer is part of the id. An id that does not parse is
        // refused by this node, which says what one looks like.
        let customer = parse_escalation_id(&r.escalation_id).map(|e| e.customer);
        let routing = customer.and(self.routing.as_deref());
        let (node, r, team) = (&self.node, &r, team.as_str());
        let acknowledged = forward::answer(
            routing,
            node,
            &origin,
            customer.unwrap_or_default(),
            move || async move {
                let d = node.acknowledge(&r.escalation_id, team, &r.note).await?;
                Ok(pb::AcknowledgeResult {
                    acknowledged: d.allowed,
                    reason: d.reason.unwrap_or_default(),
                })
            },
            // The owner scopes the team itself, from the same credentials.
            |to| async move { to.escalations().acknowledge(to.request(r.clone())).await },
            |e| node_denial(&caller, e),
        )
        .await?;
        Ok(Response::new(acknowledged))
    }
}
