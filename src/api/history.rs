//! `Models.ExportHistory`: every customer's recorded inputs as `handoff
//! simulate` input lines (`crate::replay::export`), streamed to an
//! operator. The export reads the store on a blocking thread (a snapshot
//! per page of facts), then streams the sorted lines; the last message
//! carries the totals.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::auth::{caller, enforce};
use super::pb;
use crate::node::Node;
use crate::replay::{ExportError, export};
use crate::store::StoreError;

/// The stream ExportHistory answers with.
pub type HistoryStream = Pin<Box<dyn Stream<Item = Result<pb::HistoryLine, Status>> + Send>>;

/// Serves ExportHistory: operators only.
pub async fn export_history(
    node: &Arc<Node>,
    request: Request<pb::ExportHistoryRequest>,
) -> Result<Response<HistoryStream>, Status> {
    let caller = caller(&request)?;
    enforce(&caller, caller.may_manage_models("ExportHistory"))?;
    let market = request.into_inner().market;
    let store = node.store().clone();
    let history = tokio::task::spawn_blocking(move || {
        export(&*store, (!market.is_empty()).then_some(market.as_str()))
    })
    .await
    .map_err(|e| Status::internal(format!("the export stopped: {e}")))?
    .map_err(status)?;
    let totals = pb::HistoryLine {
        line: String::new(),
        customers: history.customers as u64,
        pruned: history.pruned as u64,
    };
    let lines = history
        .lines
        .into_iter()
        .map(|line| {
            Ok(pb::HistoryLine {
                line,
                customers: 0,
                pruned: 0,
            })
        })
        .chain(std::iter::once(Ok(totals)));
    Ok(Response::new(Box::pin(tokio_stream::iter(lines))))
}

fn status(e: ExportError) -> Status {
    match e {
        ExportError::UnknownMarket { .. } => Status::invalid_argument(e.to_string()),
        ExportError::NoCatalog | ExportError::Store(StoreError::Schema(_)) => {
            Status::failed_precondition(e.to_string())
        }
        ExportError::Store(_) => Status::unavailable(e.to_string()),
    }
}
