//! `handoff escalations list`: the open escalations, by team.

use serde_json::json;

use crate::api::pb;
use crate::cli::print::*;
use crate::cli::target::Target;

/// `handoff escalations list`: open escalations.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this team's (default: every team's; with a team's token, its own).
    #[arg(long, default_value = "")]
    pub team: String,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

pub async fn list(args: ListArgs) -> anyhow::Result<()> {
    let mut client = args.target.escalations().await?;
    let r = client
        .list_open(pb::ListOpenRequest {
            team: args.team.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    for e in &r.escalations {
        if args.json {
            say!(
                "{}",
                json!({"escalation_id": e.escalation_id, "kind": kind_word(e.kind), "customer": e.customer_id, "sla": e.sla, "tier": e.tier, "team": e.team, "severity": severity_word(e.severity), "fired_at": ts(&e.fired_at), "acknowledged": e.acknowledged})
            );
        } else {
            say!(
                "{}  {} -> {} ({}), fired {}{}",
                e.escalation_id,
                kind_word(e.kind),
                e.team,
                severity_word(e.severity),
                ts(&e.fired_at),
                if e.acknowledged { ", acknowledged" } else { "" }
            );
        }
    }
    if !args.json {
        eprintln!("{} open", r.escalations.len());
    }
    Ok(())
}
