//! `handoff escalations ack ID`: acknowledge an escalation.

use crate::api::pb;
use crate::cli::print::*;
use crate::cli::target::Target;

/// `handoff escalations ack ID [--team T]`.
#[derive(Debug, clap::Args)]
pub struct AckArgs {
    pub escalation_id: String,
    /// The team acknowledging: the escalation's notified team or the SLA's
    /// owner. Required without a team's token (on a node without
    /// credentials, or as an operator); the error names the teams that may.
    #[arg(long, default_value = "")]
    pub team: String,
    #[arg(long, default_value = "")]
    pub note: String,
    #[command(flatten)]
    pub target: Target,
}

pub async fn ack(args: AckArgs) -> anyhow::Result<()> {
    let mut client = args.target.escalations().await?;
    let r = client
        .acknowledge(pb::AcknowledgeRequest {
            escalation_id: args.escalation_id.clone(),
            team: args.team.clone(),
            note: args.note.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.team.is_empty() {
        say!("acknowledged {}", args.escalation_id);
    } else {
        say!("acknowledged {} for {}", args.escalation_id, args.team);
    }
    if !r.reason.is_empty() {
        say!("  {}", r.reason);
    }
    Ok(())
}
