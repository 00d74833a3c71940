//! `Models.MigrateCustomers`: checks the caller (operators only) and the
//! request, then streams each customer's outcome while the node migrates
//! ([`crate::node::migrate`]); the last message carries the totals.
//!
//! The migration runs in its own task: a client that goes away stops the
//! scan at the next customer (what was migrated stays migrated; a re-run
//! reports it as done and goes on).

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::auth::{caller, enforce};
use super::invalid::invalid;
use super::pb;
use crate::node::migrate::{MigrateScan, MigrateStep};
use crate::node::{InvalidReason, Node};
use crate::versions::migrate::{MigrateError, MigrateOutcome, Plan};

pub type MigrateStream = Pin<Box<dyn Stream<Item = Result<pb::MigrateProgress, Status>> + Send>>;

impl From<MigrateError> for Status {
    fn from(e: MigrateError) -> Status {
        match e {
            MigrateError::SameVersion(_) => invalid(InvalidReason::Rollout, e.to_string()),
            MigrateError::NoMarket => invalid(InvalidReason::Missing, e.to_string()),
            MigrateError::Version(v) => Status::from(v),
        }
    }
}

pub async fn migrate_customers(
    node: &Arc<Node>,
    request: Request<pb::MigrateCustomersRequest>,
) -> Result<Response<MigrateStream>, Status> {
    let caller = caller(&request)?;
    enforce(&caller, caller.may_manage_models("MigrateCustomers"))?;
    let r = request.into_inner();
    if !r.market.is_empty() {
        super::error::check_id("market", &r.market, 64)?;
    }
    let versions = node.versions().clone();
    let plan = tokio::task::spawn_blocking(move || {
        Plan::check(&versions, &r.market, r.from, r.to, r.percent, r.dry_run)
    })
    .await
    .map_err(|e| Status::internal(format!("the registry task failed: {e}")))??;
    let (tx, rx) = mpsc::channel::<Result<pb::MigrateProgress, Status>>(64);
    let node = node.clone();
    tokio::spawn(async move {
        let (steps_tx, mut steps) = mpsc::channel::<MigrateStep>(64);
        let run = {
            let node = node.clone();
            let plan = plan.clone();
            tokio::spawn(async move { node.migrate(&plan, steps_tx).await })
        };
        let mut totals = pb::MigrateTotals::default();
        while let Some(step) = steps.recv().await {
            let progress = progress(step, &mut totals);
            if tx.send(Ok(progress)).await.is_err() {
                // The client went away: dropping `steps` stops the scan.
                return;
            }
        }
        let last = match run.await {
            Ok(Ok(MigrateScan { scanned, elsewhere })) => {
                totals.scanned = scanned;
                totals.shards_elsewhere = elsewhere;
                tracing::info!(
                    market = %plan.market, from = plan.from, to = plan.to, dry_run = plan.dry_run,
                    migrated = totals.migrated, ineligible = totals.ineligible,
                    failed = totals.failed, "migration ran"
                );
                Ok(pb::MigrateProgress {
                    totals: Some(totals),
                    ..pb::MigrateProgress::default()
                })
            }
            Ok(Err(e)) => Err(Status::from(e)),
            Err(e) => Err(Status::internal(format!("the migration task failed: {e}"))),
        };
        let _ = tx.send(last).await;
    });
    Ok(Response::new(
        Box::pin(ReceiverStream::new(rx)) as MigrateStream
    ))
}

/// One step as the client reads it, counted in `totals`.
fn progress(step: MigrateStep, totals: &mut pb::MigrateTotals) -> pb::MigrateProgress {
    let (outcome, reasons) = match step.outcome {
        Ok(o) => {
            match &o {
                MigrateOutcome::Migrated => totals.migrated += 1,
                MigrateOutcome::WouldMigrate => totals.would_migrate += 1,
                MigrateOutcome::AlreadyDone => totals.already_done += 1,
                MigrateOutcome::Ineligible(_) => totals.ineligible += 1,
                MigrateOutcome::OtherVersion(_) => {}
            }
            let reasons = match &o {
                MigrateOutcome::Ineligible(why) => why.clone(),
                MigrateOutcome::OtherVersion(v) => {
                    vec![format!("it is on version {v} now")]
                }
                MigrateOutcome::Migrated
                | MigrateOutcome::WouldMigrate
                | MigrateOutcome::AlreadyDone => Vec::new(),
            };
            (o.as_str().to_owned(), reasons)
        }
        Err(e) => {
            totals.failed += 1;
            ("failed".to_owned(), vec![e])
        }
    };
    pb::MigrateProgress {
        customer_id: step.customer,
        outcome,
        reasons,
        totals: None,
    }
}
