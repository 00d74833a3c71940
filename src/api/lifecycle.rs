//! `handoff.v1.Lifecycle`: events in, questions answered. Validates at the
//! edge, applies the caller's rules (`crate::auth`), calls the node,
//! converts; no logic of its own.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::{caller, enforce};
use super::convert;
use super::error::check_id;
use super::invalid::{count as count_invalid, invalid};
use super::pb;
use super::pb::lifecycle_server::Lifecycle;
use crate::node::{IngestReply, InvalidReason, Node, NodeError};

/// Most events in one IngestBatch.
pub const MAX_BATCH: usize = 10_000;

pub struct LifecycleService {
    pub node: Arc<Node>,
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
        let Some(event) = request.into_inner().event else {
            return Err(invalid(
                InvalidReason::Missing,
                "the request has no event: set IngestRequest.event",
            ));
        };
        enforce(&caller, caller.may_ingest(&event.source, &event.r#type))?;
        let (event, set) = convert::event(event)?;
        let reply = self.node.ingest(event, set).await?;
        Ok(Response::new(convert::ingest_result(reply)))
    }

    async fn ingest_batch(
        &self,
        request: Request<pb::IngestBatchRequest>,
    ) -> Result<Response<pb::IngestBatchResult>, Status> {
        let caller = caller(&request)?;
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
        for e in events {
            match convert::event(e) {
                Ok(ev) => {
                    slots.push(None);
                    valid.push(ev);
                }
                Err(err) => slots.push(Some(rejected_slot(err)?)),
            }
        }
        let mut replies = self.node.ingest_batch(valid).await?.into_iter();
        let mut results = Vec::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Some(r) => results.push(r),
                None => match replies.next().expect("one reply per valid event") {
                    Ok(reply) => results.push(convert::ingest_result(reply)),
                    Err(err) => results.push(rejected_slot(err)?),
                },
            }
        }
        Ok(Response::new(pb::IngestBatchResult { results }))
    }

    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let team = enforce(&caller, caller.team_scope(&r.team, "Authorize"))?;
        check_id("customer_id", &r.customer_id, self.max_len())?;
        check_id("team", &team, self.max_len())?;
        check_id("action", &r.action, self.max_len())?;
        let d = self
            .node
            .authorize(&r.customer_id, &team, &r.action)
            .await?;
        Ok(Response::new(convert::decision(d)))
    }

    async fn check_message(
        &self,
        request: Request<pb::CheckMessageRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let caller = caller(&request)?;
        enforce(&caller, caller.may_check_messages())?;
        let r = request.into_inner();
        check_id("customer_id", &r.customer_id, self.max_len())?;
        check_id("message_class", &r.message_class, self.max_len())?;
        let d = self
            .node
            .check_message(&r.customer_id, &r.message_class)
            .await?;
        Ok(Response::new(convert::decision(d)))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::CustomerView>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        check_id("customer_id", &r.customer_id, self.max_len())?;
        let mut v = self
            .node
            .customer(&r.customer_id, r.timeline_limit as usize)
            .await?;
        let withheld = !caller.may_read_timeline();
        if withheld {
            v.timeline.clear();
        }
        let mut view = convert::customer_view(v);
        view.timeline_withheld = withheld;
        Ok(Response::new(view))
    }
}
