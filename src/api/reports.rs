//! `handoff.v1.Reports`: `GetReport`, the node's [`Report`] as protobuf.
//! Every principal may read reports, as every principal may list
//! customers: they are counts (no customer's data, no timeline), and the
//! escalations open by team are what each team works from. The store is
//! shared in a cluster, so any node answers for every shard.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::caller;
use super::convert::{from_timestamp, timestamp};
use super::invalid::invalid;
use super::pb;
use super::pb::reports_server::Reports;
use crate::node::reports::{Report, ReportQuery, date};
use crate::node::{InvalidReason, Node};

pub struct ReportsService {
    pub node: Arc<Node>,
}

/// The node's query; a malformed `until` is INVALID_ARGUMENT.
pub fn query(r: pb::GetReportRequest) -> Result<ReportQuery, Status> {
    let until = match r.until {
        None => None,
        Some(t) => Some(from_timestamp(&t).map_err(|_| {
            invalid(
                InvalidReason::Window,
                format!(
                    "until is not a valid Timestamp (seconds = {}, nanos = {}; nanos must be in \
                     0..1e9): leave it unset for a window that ends now",
                    t.seconds, t.nanos
                ),
            )
        })?),
    };
    let some = |s: String| (!s.is_empty()).then_some(s);
    Ok(ReportQuery {
        market: some(r.market),
        version: (r.model_version != 0).then_some(r.model_version),
        region: some(r.region),
        sla: some(r.sla),
        days: r.days,
        until,
    })
}

pub fn report(r: Report) -> pb::Report {
    pb::Report {
        generated_at: Some(timestamp(r.generated_at)),
        first_day: date(r.window.first_day),
        last_day: date(r.window.last_day),
        days: r.window.days,
        counted: r.counted,
        states: r
            .states
            .into_iter()
            .map(|s| pb::StateCount {
                market: s.market,
                model_version: s.version,
                region: s.region,
                state: s.state,
                customers: s.customers,
            })
            .collect(),
        slas: r
            .slas
            .into_iter()
            .map(|s| pb::SlaReport {
                market: s.market,
                model_version: s.version,
                sla: s.sla,
                handoff: s.handoff,
                running: s.running,
                paused: s.paused,
                breached_open: s.breached_open,
                met: s.met,
                missed: s.missed,
                cancelled: s.cancelled,
                compliance: s.compliance,
                elapsed_count: s.elapsed.count,
                elapsed_p50_s: s.elapsed.p50_s,
                elapsed_p90_s: s.elapsed.p90_s,
                elapsed_p99_s: s.elapsed.p99_s,
                elapsed_max_s: s.elapsed.max_s,
            })
            .collect(),
        sla_days: r
            .sla_days
            .into_iter()
            .map(|d| pb::SlaDay {
                market: d.market,
                model_version: d.version,
                sla: d.sla,
                handoff: d.handoff,
                day: d.date,
                met: d.met,
                missed: d.missed,
                cancelled: d.cancelled,
                compliance: d.compliance,
            })
            .collect(),
        transitions: r
            .transitions
            .into_iter()
            .map(|t| pb::TransitionCount {
                market: t.market,
                model_version: t.version,
                region: t.region,
                from: t.from,
                to: t.to,
                count: t.count,
            })
            .collect(),
        escalations: r
            .escalations
            .into_iter()
            .map(|t| pb::TeamEscalations {
                team: t.team,
                open: t.open,
                breaches: t.breaches,
                under_1h: t.under_1h,
                from_1h_to_4h: t.from_1h_to_4h,
                from_4h_to_24h: t.from_4h_to_24h,
                over_24h: t.over_24h,
                oldest_age_s: t.oldest_age_s,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl Reports for ReportsService {
    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::Report>, Status> {
        let _caller = caller(&request)?;
        let q = query(request.into_inner())?;
        Ok(Response::new(report(self.node.report(q).await?)))
    }
}
