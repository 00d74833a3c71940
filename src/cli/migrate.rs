//! `handoff customers migrate --market M --from V --to W [--percent P]
//! [--dry-run] [--json]`: re-pins a market's customers on version `from`
//! (a cohort of them with `--percent`, by the rollout's hash) to version
//! `to` (operators only). Prints a line per customer as the node goes
//! (migrated, would migrate, already done, cannot move and why), then the
//! totals. Exit 1 if the request is refused or a customer failed (re-run:
//! nobody is migrated twice).

use crate::api::pb;
use crate::cli::print::*;
use crate::cli::publish::client;
use crate::cli::target::Target;

/// `handoff customers migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The market whose customers move.
    #[arg(long)]
    pub market: String,
    /// The version they are on.
    #[arg(long)]
    pub from: u32,
    /// The version they move to.
    #[arg(long)]
    pub to: u32,
    /// Only a cohort, 0-100, by the stable hash rollouts use (raising it
    /// only adds customers).
    #[arg(long)]
    pub percent: Option<f64>,
    /// List what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object per line (customers, then the totals).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let mut stream = client(&args.target)
        .await?
        .migrate_customers(pb::MigrateCustomersRequest {
            market: args.market.clone(),
            from: args.from,
            to: args.to,
            percent: args.percent,
            dry_run: args.dry_run,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut failed = 0;
    while let Some(p) = stream.message().await.map_err(status_error)? {
        match &p.totals {
            Some(t) => {
                failed = t.failed;
                if args.json {
                    say!(
                        "{}",
                        serde_json::json!({
                            "totals": {
                                "scanned": t.scanned,
                                "migrated": t.migrated,
                                "would_migrate": t.would_migrate,
                                "already_done": t.already_done,
                                "ineligible": t.ineligible,
                                "failed": t.failed,
                                "shards_elsewhere": t.shards_elsewhere,
                            }
                        })
                    );
                } else {
                    let dry = if args.dry_run {
                        " (dry run: nothing changed)"
                    } else {
                        ""
                    };
                    say!(
                        "market {} from version {} to {}{dry}: {} migrated, {} would migrate, {} \
                         already done, {} cannot move, {} failed ({} customer records read)",
                        args.market,
                        args.from,
                        args.to,
                        t.migrated,
                        t.would_migrate,
                        t.already_done,
                        t.ineligible,
                        t.failed,
                        t.scanned
                    );
                    if !t.shards_elsewhere.is_empty() {
                        say!(
                            "shards served by other nodes were not scanned: {:?}",
                            t.shards_elsewhere
                        );
                    }
                }
            }
            None if args.json => say!(
                "{}",
                serde_json::json!({
                    "customer_id": p.customer_id,
                    "outcome": p.outcome,
                    "reasons": p.reasons,
                })
            ),
            None if p.reasons.is_empty() => say!("{} {}", p.customer_id, p.outcome),
            None => say!("{} {}: {}", p.customer_id, p.outcome, p.reasons.join("; ")),
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} customers were not migrated this time: run the command again");
    }
    Ok(())
}
