//! `handoff.v1.Models` (operators only): the model versions a node
//! serves and what they are judged against. Each call's work lives in its
//! own file (`history.rs`: ExportHistory); this is the service's table.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::history::{self, HistoryStream};
use super::pb;
use super::pb::models_server::Models;
use crate::node::Node;

pub struct ModelsService {
    pub node: Arc<Node>,
}

#[tonic::async_trait]
impl Models for ModelsService {
    type ExportHistoryStream = HistoryStream;

    async fn export_history(
        &self,
        request: Request<pb::ExportHistoryRequest>,
    ) -> Result<Response<HistoryStream>, Status> {
        history::export_history(&self.node, request).await
    }
}
