//! `handoff.v1.Lifecycle`: events in, questions answered. Validates at the
//! edge, applies the caller's rules (`crate::auth`), calls the node (or,
//! in a cluster, the customer's shard's owner: `forward.rs`), converts; no
//! logic of its own.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::{caller, enforce};
use super::convert;
use super::error::check_id;
use super::forward::{self, Answered, Origin, Routing, Slotted};
use super::invalid::{count as count_invalid, invalid};
use super::pb;
use super::pb::lifecycle_server::Lifecycle;
use crate::node::{IngestReply, InvalidReason, Node, NodeError};

/// Most events in one IngestBatch.
pub const MAX_BATCH: usize = 10_000;

pub struct LifecycleService {
    pub node: Arc<Node>,
    /// In a cluster, where calls for shards served elsewhere go; `None`
    /// on a single node, which serves every shard.
    pub routing: Option<Arc<Routing>>,
}

impl LifecycleService {
    fn max_len(&self) -> usize {
        self.node.config().max_len
    }
}

/// The slot of a malformed event in an IngestBatch: a counted REJECTED
/// result. Any other error fails the whole call, as before.
fn rejected_slot(err: NodeError) -> Result<pb::IngestResult, Status> {
    match err {
        NodeError::Invalid(reason, message) => {
            count_invalid("IngestBatch", reason.as_str());
            Ok(convert::ingest_result(IngestReply::rejected(message)))
        }
        other => Err(other.into()),
    }
}

#[tonic::async_trait]
impl Lifecycle for LifecycleService {
    async fn ingest(
        &self,
        request: Request<pb::IngestRequest>,
    ) -> Result<Response<pb::IngestResult>, Status> {
        let caller = caller(&request)?;
        let origin = Origin::of(&request);
        let Some(event) = request.into_inner().event else {
            return Err(invalid(
                InvalidReason::Missing,
                "the request has no event: set IngestRequest.event",
            ));
        };
        enforce(&caller, caller.may_ingest(&event.source, &event.r#type))?;
        let (event, set) = convert::event(event)?;
        let (node, event) = (&self.node, &event);
        let answer = forward::answer(
            self.routing.as_deref(),
            node,
            &origin,
            &event.customer,
            move || {
                let event = event.clone();
                async move { node.ingest(event, set).await.map(convert::ingest_result) }
            },
            move |to| async move {
                let event = Some(convert::wire_event(event.clone(), set));
                to.lifecycle()
                    .ingest(to.request(pb::IngestRequest { event }))
                    .await
            },
            Status::from,
        )
        .await?;
        Ok(Response::new(answer))
    }

    async fn ingest_batch(
        &self,
        request: Request<pb::IngestBatchRequest>,
    ) -> Result<Response<pb::IngestBatchResult>, Status> {
        let caller = caller(&request)?;
        let origin = Origin::of(&request);
        let events = request.into_inner().events;
        if events.len() > MAX_BATCH {
            return Err(invalid(
                InvalidReason::BatchTooLarge,
                format!(
                    "the batch has {} events; send at most {MAX_BATCH} per IngestBatch",
                    events.len()
                ),
            ));
        }
        // One event the caller may not send denies the whole batch, before
        // any is ingested: a batch is never half someone else's.
        for (i, e) in events.iter().enumerate() {
            enforce(
                &caller,
                caller.may_ingest(&e.source, &e.r#type).map_err(|mut d| {
                    d.reason = format!("event {i} of the batch (id `{}`): {}", e.id, d.reason);
                    d
                }),
            )?;
        }
        // A malformed event (MODEL.md step 1) takes a REJECTED result in
        // its slot, whether the edge or the node found it, and is counted
        // as a refusal of IngestBatch.
        let mut slots: Vec<Option<pb::IngestResult>> = Vec::with_capacity(events.len());
        let mut valid = Vec::with_capacity(events.len());
        for (slot, e) in events.into_iter().enumerate() {
            match convert::event(e) {
                Ok((event, set)) => {
                    slots.push(None);
                    valid.push(Slotted { slot, event, set });
                }
                Err(err) => slots.push(Some(rejected_slot(err)?)),
            }
        }
        // Each valid event is answered here or by its shard's owner.
        let answers =
            forward::ingest_batch(self.routing.as_deref(), &self.node, &origin, valid).await?;
        for (slot, answer) in answers {
            slots[slot] = Some(match answer {
                Answered::Here(Ok(reply)) => convert::ingest_result(reply),
                Answered::Here(Err(err)) => rejected_slot(err)?,
                Answered::There(result) => result,
            });
        }
        let results = slots
            .into_iter()
            .map(|r| r.expect("invariant: every slot is malformed or has its event's answer"))
            .collect();
        Ok(Response::new(pb::IngestBatchResult { results }))
    }

    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let caller = caller(&request)?;
        let origin = Origin::of(&request);
        let r = request.into_inner();
        let team = enforce(&caller, caller.team_scope(&r.team, "Authorize"))?;
        check_id("customer_id", &r.customer_id, self.max_len())?;
        check_id("team", &team, self.max_len())?;
        check_id("action", &r.action, self.max_len())?;
        let (node, r) = (&self.node, &r);
        let team = team.as_str();
        let d = forward::answer(
            self.routing.as_deref(),
            node,
            &origin,
            &r.customer_id,
            move || async move {
                let d = node.authorize(&r.customer_id, team, &r.action).await?;
                Ok(convert::decision(d))
            },
            // The owner scopes the team itself, from the same credentials.
            |to| async move { to.lifecycle().authorize(to.request(r.clone())).await },
            Status::from,
        )
        .await?;
        Ok(Response::new(d))
    }

    async fn check_message(
        &self,
        request: Request<pb::CheckMessageRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let caller = caller(&request)?;
        let origin = Origin::of(&request);
        enforce(&caller, caller.may_check_messages())?;
        let r = request.into_inner();
        check_id("customer_id", &r.customer_id, self.max_len())?;
        check_id("message_class", &r.message_class, self.max_len())?;
        let (node, r) = (&self.node, &r);
        let d = forward::answer(
            self.routing.as_deref(),
            node,
            &origin,
            &r.customer_id,
            move || async move {
                let d = node.check_message(&r.customer_id, &r.message_class).await?;
                Ok(convert::decision(d))
            },
            |to| async move { to.lifecycle().check_message(to.request(r.clone())).await },
            Status::from,
        )
        .await?;
        Ok(Response::new(d))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::CustomerView>, Status> {
        let caller = caller(&request)?;
        let origin = Origin::of(&request);
        let r = request.into_inner();
        check_id("customer_id", &r.customer_id, self.max_len())?;
        let (node, r) = (&self.node, &r);
        let withheld = !caller.may_read_timeline();
        let view = forward::answer(
            self.routing.as_deref(),
            node,
            &origin,
            &r.customer_id,
            move || async move {
                let mut v = node
                    .customer(&r.customer_id, r.timeline_limit as usize)
                    .await?;
                if withheld {
                    v.timeline.clear();
                }
                let mut view = convert::customer_view(v);
                view.timeline_withheld = withheld;
                Ok(view)
            },
            // The owner withholds the timeline itself, by the same rule.
            |to| async move { to.lifecycle().get_customer(to.request(r.clone())).await },
            Status::from,
        )
        .await?;
        Ok(Response::new(view))
    }

    async fn list_customers(
        &self,
        request: Request<pb::ListCustomersRequest>,
    ) -> Result<Response<pb::ListCustomersResult>, Status> {
        // Every principal may read views (GetCustomer); the store is
        // shared in a cluster, so this node answers for every shard.
        let _caller = caller(&request)?;
        super::queries::list_customers(self.node.clone(), request.into_inner()).await
    }
}
