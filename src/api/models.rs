//! `handoff.v1.Models`: publishing model versions and setting rollouts by
//! market (operators only); ExportHistory's work is in `history.rs`. The registry is the node's
//! ([`crate::versions`]); this file checks the caller, converts, and maps
//! [`VersionError`] to a status: malformed requests are INVALID_ARGUMENT
//! (counted), requests the registry's state refuses FAILED_PRECONDITION.
//!
//! In a cluster any node answers: the registry lives in the shared store,
//! and the other nodes pick up what one wrote (on a miss, and by polling).

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::{Code, Request, Response, Status};

use super::auth::{caller, enforce};
use super::history::{self, HistoryStream};
use super::invalid::invalid;
use super::pb;
use super::pb::models_server::Models;
use crate::node::version_stats::Stats;
use crate::node::{InvalidReason, Node, VersionError};
use crate::versions::{DEFAULT_MARKET, Rollout, Rollouts};

/// Largest model text accepted (a model file is a few KB).
const MAX_MODEL_BYTES: usize = 4 * 1024 * 1024;

pub struct ModelsService {
    pub node: Arc<Node>,
}

impl From<VersionError> for Status {
    fn from(e: VersionError) -> Status {
        let message = e.to_string();
        match e {
            VersionError::Model(_) => invalid(InvalidReason::ModelText, message),
            VersionError::Percent(_)
            | VersionError::CandidateWithoutPercent
            | VersionError::PercentWithoutCandidate => invalid(InvalidReason::Rollout, message),
            VersionError::UnknownMarket { .. } => invalid(InvalidReason::Undeclared, message),
            VersionError::Bind(_)
            | VersionError::BelowRollout { .. }
            | VersionError::Unpublished { .. }
            | VersionError::MarketNotInVersion { .. } => {
                Status::new(Code::FailedPrecondition, message)
            }
            VersionError::Store(_) => Status::new(Code::Unavailable, message),
        }
    }
}

fn market_rollout(market: &str, r: &Rollout) -> pb::MarketRollout {
    pb::MarketRollout {
        market: market.to_owned(),
        stable: r.stable,
        candidate: r.candidate.map(|c| c.version),
        percent: r.candidate.map_or(0.0, |c| c.percent()),
        versions: Vec::new(),
    }
}

/// The stats of the customers an entry covers, by version: a named
/// market's own, or (for the default entry) those of every market code
/// without an entry.
fn covered(table: &Rollouts, market: &str, stats: &Stats) -> Vec<pb::VersionStats> {
    let mut by_version: BTreeMap<u32, pb::VersionStats> = BTreeMap::new();
    let covers = |code: &str| {
        if market == DEFAULT_MARKET {
            !table.markets.contains_key(code)
        } else {
            code == market
        }
    };
    for r in stats.rows.iter().filter(|r| covers(&r.market)) {
        let v = by_version
            .entry(r.version)
            .or_insert_with(|| pb::VersionStats {
                version: r.version,
                ..pb::VersionStats::default()
            });
        v.customers += r.customers;
        v.sla_met += r.sla_met;
        v.sla_missed += r.sla_missed;
        v.sla_cancelled += r.sla_cancelled;
        v.open_escalations += r.open_escalations;
    }
    by_version.into_values().collect()
}

/// The table, or one market's entry (the default one when it has none),
/// each with how its customers do by version.
fn rollout(table: &Rollouts, market: &str, stats: &Stats) -> pb::Rollout {
    let entries: Vec<(&str, &Rollout)> = if market.is_empty() {
        table.entries().collect()
    } else {
        vec![(market, table.entry(market))]
    };
    let markets = entries
        .into_iter()
        .map(|(m, r)| {
            let key = if table.markets.contains_key(m) {
                m
            } else {
                DEFAULT_MARKET
            };
            pb::MarketRollout {
                versions: covered(table, key, stats),
                ..market_rollout(m, r)
            }
        })
        .collect();
    pb::Rollout {
        markets,
        counted: stats.counted,
    }
}

/// Runs a registry write off the async threads (it writes the store).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VersionError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("the registry task failed: {e}")))?
        .map_err(Status::from)
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

    type MigrateCustomersStream = super::migrate::MigrateStream;

    async fn migrate_customers(
        &self,
        request: Request<pb::MigrateCustomersRequest>,
    ) -> Result<Response<Self::MigrateCustomersStream>, Status> {
        super::migrate::migrate_customers(&self.node, request).await
    }

    async fn publish_model(
        &self,
        request: Request<pb::PublishModelRequest>,
    ) -> Result<Response<pb::PublishModelResult>, Status> {
        let caller = caller(&request)?;
        enforce(&caller, caller.may_manage_models("PublishModel"))?;
        let r = request.into_inner();
        if r.model_toml.trim().is_empty() {
            return Err(invalid(
                InvalidReason::Empty,
                "model_toml is empty: send the model file's text".to_owned(),
            ));
        }
        if r.model_toml.len() > MAX_MODEL_BYTES {
            return Err(invalid(
                InvalidReason::TooLong,
                format!("model_toml is longer than {MAX_MODEL_BYTES} bytes"),
            ));
        }
        let file = if r.file_name.is_empty() {
            "the published model".to_owned()
        } else {
            r.file_name
        };
        let versions = self.node.versions().clone();
        let p = blocking(move || versions.publish(&file, &r.model_toml)).await?;
        Ok(Response::new(pb::PublishModelResult {
            name: p.name,
            version: p.version,
            fingerprint: p.fingerprint,
            published: p.new,
        }))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResult>, Status> {
        let caller = caller(&request)?;
        enforce(&caller, caller.may_manage_models("ListModels"))?;
        let versions = self.node.versions().clone();
        blocking({
            let versions = versions.clone();
            move || versions.refresh()
        })
        .await?;
        Ok(Response::new(pb::ListModelsResult {
            name: versions.started().spec.name.clone(),
            versions: versions
                .list()
                .into_iter()
                .map(|v| pb::ModelVersion {
                    version: v.version,
                    fingerprint: v.fingerprint,
                    stored: v.stored,
                })
                .collect(),
        }))
    }

    async fn set_rollout(
        &self,
        request: Request<pb::SetRolloutRequest>,
    ) -> Result<Response<pb::Rollout>, Status> {
        let caller = caller(&request)?;
        enforce(&caller, caller.may_manage_models("SetRollout"))?;
        let r = request.into_inner();
        let market = if r.market.is_empty() {
            DEFAULT_MARKET.to_owned()
        } else {
            super::error::check_id("market", &r.market, 64)?;
            r.market
        };
        let versions = self.node.versions().clone();
        let m = market.clone();
        let set =
            blocking(move || versions.set_rollout(&m, r.version, r.candidate, r.percent)).await?;
        Ok(Response::new(pb::Rollout {
            markets: vec![market_rollout(&market, &set)],
            counted: false,
        }))
    }

    async fn get_rollout(
        &self,
        request: Request<pb::GetRolloutRequest>,
    ) -> Result<Response<pb::Rollout>, Status> {
        let caller = caller(&request)?;
        enforce(&caller, caller.may_manage_models("GetRollout"))?;
        let market = request.into_inner().market;
        let node = self.node.clone();
        let stats = tokio::task::spawn_blocking(move || {
            node.versions().refresh().map_err(Status::from)?;
            node.version_stats().map_err(Status::from)
        })
        .await
        .map_err(|e| Status::internal(format!("the registry task failed: {e}")))??;
        let table = self.node.versions().rollouts();
        Ok(Response::new(rollout(&table, &market, &stats)))
    }
}
