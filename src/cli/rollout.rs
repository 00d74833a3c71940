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
            say!(
                "{}",
                serde_json::json!({
                    "market": m.market,
                    "stable": m.stable,
                    "candidate": m.candidate,
                    "percent": m.percent,
                })
            );
        } else {
            say!("{}", line(m));
        }
    }
    Ok(())
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
