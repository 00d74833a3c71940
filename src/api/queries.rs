//! `ListCustomers` at the edge: the request's fields to the node's
//! [`ListRequest`], a page of summaries back to protobuf. Any caller that
//! may read a customer's view (GetCustomer: every principal) may list;
//! the summaries carry no timeline.

use std::sync::Arc;

use tonic::{Response, Status};

use super::convert::timestamp;
use super::invalid::invalid;
use super::pb;
use crate::node::queries::{CustomerPage, CustomerSummary, ListRequest};
use crate::node::{InvalidReason, Node};

/// The node's request; a malformed `older_than` is INVALID_ARGUMENT.
pub fn request(r: pb::ListCustomersRequest) -> Result<ListRequest, Status> {
    let older_than_us = match r.older_than {
        None => None,
        Some(d) => {
            if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
                return Err(invalid(
                    InvalidReason::OccurredAtOutOfRange,
                    "older_than must be a non-negative duration (nanos in 0..1e9)",
                ));
            }
            Some(
                d.seconds
                    .saturating_mul(1_000_000)
                    .saturating_add(i64::from(d.nanos) / 1000),
            )
        }
    };
    Ok(ListRequest {
        market: r.market,
        model_version: r.model_version,
        region: r.region,
        state: r.state,
        sla: r.sla,
        sla_status: r.sla_status,
        older_than_us,
        owner: r.owner,
        limit: r.limit,
        oldest_first: r.oldest_first,
        page_token: r.page_token,
    })
}

fn summary(s: CustomerSummary) -> pb::CustomerSummary {
    pb::CustomerSummary {
        customer_id: s.customer,
        market: s.market,
        model_version: s.model_version,
        states: s.states.into_iter().collect(),
        owners: s.owners,
        open_slas: s
            .open_slas
            .into_iter()
            .map(|o| pb::OpenSlaSummary {
                sla: o.sla,
                deadline: o.deadline.map(timestamp),
                paused: o.paused,
                breached: o.breached,
            })
            .collect(),
        open_escalations: s.open_escalations,
        since: Some(timestamp(s.since)),
    }
}

pub fn page(p: CustomerPage) -> pb::ListCustomersResult {
    pb::ListCustomersResult {
        customers: p.customers.into_iter().map(summary).collect(),
        next_page_token: p.next_page_token.unwrap_or_default(),
    }
}

/// Answers from this node's store (shared in a cluster: no forwarding),
/// off the async threads (a page reads up to its limit of records).
pub async fn list_customers(
    node: Arc<Node>,
    r: pb::ListCustomersRequest,
) -> Result<Response<pb::ListCustomersResult>, Status> {
    let r = request(r)?;
    let p = tokio::task::spawn_blocking(move || node.list_customers(&r))
        .await
        .map_err(|_| Status::internal("the query task failed"))??;
    Ok(Response::new(page(p)))
}
