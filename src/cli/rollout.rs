//! `handoff rollout set --market M --version V [--candidate C --percent P]`
//! and `handoff rollout show [--market M]`: which model version new
//! customers of each market start on (operators only). Rolling back is
//! setting the market's version again: customers already on the
//! candidate stay on it.

use crate::api::pb;
use crate::cli::print::*;
use crate::cli::publish::client;
use crate::cli::target::Target;

/// `handoff rollout set`.
#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// A market the model declares, or `default` (markets without an
    /// entry of their own).
    #[arg(long)]
    pub market: String,
    /// The stable version: new customers outside the cohort start on it.
    #[arg(long)]
    pub version: u32,
    /// A candidate version for a cohort of new customers (with --percent).
    #[arg(long)]
    pub candidate: Option<u32>,
    /// The cohort's share of new customers, 0-100 (with --candidate).
    #[arg(long)]
    pub percent: Option<f64>,
    #[command(flatten)]
    pub target: Target,
}

/// `handoff rollout show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// One market's entry (the default one if it has none of its own).
    #[arg(long)]
    pub market: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

pub async fn set(args: SetArgs) -> anyhow::Result<()> {
    let r = client(&args.target)
        .await?
        .set_rollout(pb::SetRolloutRequest {
            market: args.market,
            version: args.version,
            candidate: args.candidate,
            percent: args.percent,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    for m in &r.markets {
        say!("rollout set: {}", line(m));
    }
    Ok(())
}

pub async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let r = client(&args.target)
        .await?
        .get_rollout(pb::GetRolloutRequest {
            market: args.market.unwrap_or_default(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    for m in &r.markets {
        if args.json {
            let versions: Vec<serde_json::Value> = m
                .versions
                .iter()
                .map(|v| {
                    serde_json::json!({
                        "version": v.version,
                        "customers": v.customers,
                        "sla_met": v.sla_met,
                        "sla_missed": v.sla_missed,
                        "sla_cancelled": v.sla_cancelled,
                        "open_escalations": v.open_escalations,
                    })
                })
                .collect();
            say!(
                "{}",
                serde_json::json!({
                    "market": m.market,
                    "stable": m.stable,
                    "candidate": m.candidate,
                    "percent": m.percent,
                    "counted": r.counted,
                    "versions": versions,
                })
            );
        } else {
            say!("{}", line(m));
            for v in &m.versions {
                say!("  {}", stats_line(v, r.counted));
            }
        }
    }
    Ok(())
}

/// `v2: 40 customers, SLA met 30, missed 2 (94% met), 1 open escalation`.
fn stats_line(v: &pb::VersionStats, counted: bool) -> String {
    let open = format!(
        "{} open escalation{}",
        v.open_escalations,
        if v.open_escalations == 1 { "" } else { "s" }
    );
    if !counted {
        return format!(
            "v{}: {open} (this store keeps no counts of customers and SLA outcomes)",
            v.version
        );
    }
    let ended = v.sla_met + v.sla_missed;
    let rate = if ended == 0 {
        "no SLA ended yet".to_owned()
    } else {
        format!("{:.0}% met", v.sla_met as f64 * 100.0 / ended as f64)
    };
    format!(
        "v{}: {} customer{}, SLA met {}, missed {} ({rate}), {open}",
        v.version,
        v.customers,
        if v.customers == 1 { "" } else { "s" },
        v.sla_met,
        v.sla_missed,
    )
}

/// `BR: v3, candidate v4 for 10% of new customers`.
fn line(m: &pb::MarketRollout) -> String {
    match m.candidate {
        Some(c) => format!(
            "{}: v{}, candidate v{c} for {}% of new customers",
            m.market, m.stable, m.percent
        ),
        None => format!("{}: v{}", m.market, m.stable),
    }
}
