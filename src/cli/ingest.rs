//! `handoff ingest`: send one event; the exit status says what became of
//! it.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;

use crate::api::{pb, timestamp};
use crate::cli::print::*;
use crate::cli::target::Target;
use crate::engine::Timestamp;

/// `handoff ingest`'s exit status when the node rejected the event.
pub const EXIT_REJECTED: u8 = 3;
/// `handoff ingest`'s exit status when the event was stale.
pub const EXIT_STALE: u8 = 4;

/// The exit statuses of `handoff ingest`, for its `--help`.
pub const INGEST_EXIT_STATUS: &str = "\
Exit status (so scripts can tell what became of the event):
  0  applied, duplicate (sent before: nothing changed) or ignored (nothing reacts to it)
  3  rejected: unknown to the model, or a transition was blocked (the reason says which)
  4  stale: a region had already entered its state later than the event occurred
  1  not sent or not taken: the node is unreachable or refused it as malformed
  2  a usage error (a flag is missing or wrong)";

/// `handoff ingest`: send one event.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// The source system (as in the model's `[sources]`).
    #[arg(long)]
    pub source: String,
    /// The event type, without the source (`payment_succeeded`).
    #[arg(long = "type")]
    pub event_type: String,
    #[arg(long)]
    pub customer: String,
    /// The idempotency key (default: a fresh one, so retries of this
    /// command are new events; set it to retry safely).
    #[arg(long)]
    pub id: Option<String>,
    /// The customer's market (required on its first event).
    #[arg(long, default_value = "")]
    pub market: String,
    /// When it happened, RFC 3339 (default: when it arrives).
    #[arg(long)]
    pub occurred_at: Option<String>,
    /// An attribute, `key=value` (repeatable).
    #[arg(long = "attr")]
    pub attributes: Vec<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

fn fresh_id() -> String {
    let now = jiff::Timestamp::now().as_nanosecond();
    format!("cli-{now:x}-{}", std::process::id())
}

/// The exit status for what became of an event ([`INGEST_EXIT_STATUS`]).
fn ingest_exit(outcome: i32) -> anyhow::Result<ExitCode> {
    match pb::Outcome::try_from(outcome) {
        Ok(pb::Outcome::Applied | pb::Outcome::Duplicate | pb::Outcome::Ignored) => {
            Ok(ExitCode::SUCCESS)
        }
        Ok(pb::Outcome::Rejected) => Ok(ExitCode::from(EXIT_REJECTED)),
        Ok(pb::Outcome::Stale) => Ok(ExitCode::from(EXIT_STALE)),
        Ok(pb::Outcome::Unspecified) | Err(_) => bail!(
            "the node answered with outcome {outcome}, which this command line does not know: \
             use the `handoff` of the node's version"
        ),
    }
}

/// Sends the event, prints the result; the exit status says what became
/// of it ([`INGEST_EXIT_STATUS`]).
pub async fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let mut attributes = HashMap::new();
    for a in &args.attributes {
        let Some((k, v)) = a.split_once('=') else {
            bail!("--attr {a}: write key=value");
        };
        attributes.insert(k.to_owned(), v.to_owned());
    }
    let occurred_at = match &args.occurred_at {
        Some(t) => Some(timestamp(
            Timestamp::parse_rfc3339(t).map_err(|e| anyhow::anyhow!("--occurred-at: {e}"))?,
        )),
        None => None,
    };
    let event = pb::Event {
        id: args.id.clone().unwrap_or_else(fresh_id),
        source: args.source.clone(),
        r#type: args.event_type.clone(),
        customer_id: args.customer.clone(),
        market: args.market.clone(),
        occurred_at,
        attributes,
    };
    let mut client = args.target.lifecycle().await?;
    let r = client
        .ingest(pb::IngestRequest {
            event: Some(event.clone()),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        say!(
            "{}",
            json!({
                "id": event.id,
                "customer": event.customer_id,
                "outcome": word(r.outcome),
                "reason": if r.reason.is_empty() { None } else { Some(&r.reason) },
                "states": r.states,
                "transitions": r.transitions.iter().map(|t| json!({"region": t.region, "from": t.from, "to": t.to})).collect::<Vec<_>>(),
            })
        );
        return ingest_exit(r.outcome);
    }
    say!(
        "{} {}.{} for {} (id {})",
        word(r.outcome),
        args.source,
        args.event_type,
        args.customer,
        event.id
    );
    if !r.reason.is_empty() {
        say!("  reason: {}", r.reason);
    }
    for t in &r.transitions {
        say!("  {}: {} -> {}", t.region, t.from, t.to);
    }
    for c in &r.sla_changes {
        let what = match pb::SlaChangeKind::try_from(c.kind) {
            Ok(pb::SlaChangeKind::Started) => format!("started, deadline {}", ts(&c.deadline)),
            Ok(pb::SlaChangeKind::Met) => "met".into(),
            Ok(pb::SlaChangeKind::Late) => "completed late".into(),
            _ => "cancelled".into(),
        };
        say!("  sla {} #{}: {what}", c.sla, c.instance);
    }
    let states: Vec<String> = sorted(&r.states)
        .iter()
        .map(|(r, s)| format!("{r}={s}"))
        .collect();
    if !states.is_empty() {
        say!("  now: {}", states.join(" "));
    }
    ingest_exit(r.outcome)
}
