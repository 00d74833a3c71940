//! `handoff customer get ID`: the unified view of one customer.

use serde_json::json;

use crate::api::pb;
use crate::cli::print::*;
use crate::cli::target::Target;
use crate::engine::model::{Duration, in_words};

/// `handoff customer get ID`.
#[derive(Debug, clap::Args)]
pub struct CustomerGetArgs {
    pub customer: String,
    /// Timeline entries to show, newest first (0: all retained).
    #[arg(long, default_value_t = 20)]
    pub timeline: u32,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

pub async fn customer_get(args: CustomerGetArgs) -> anyhow::Result<()> {
    let mut client = args.target.lifecycle().await?;
    let v = client
        .get_customer(pb::GetCustomerRequest {
            customer_id: args.customer.clone(),
            timeline_limit: args.timeline,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        say!("{}", view_json(&v));
        return Ok(());
    }
    say!(
        "customer {} (market {}, model v{}), owned by {}",
        v.customer_id,
        v.market,
        v.model_version,
        v.owner
    );
    for r in &v.regions {
        let since = ts(&r.since);
        say!(
            "  {:<12} {:<14} owner {:<14}{}",
            r.region,
            r.state,
            r.owner,
            if since.is_empty() {
                String::new()
            } else {
                format!(" since {since}")
            }
        );
    }
    if !v.proofs.is_empty() {
        say!("proofs:");
        for p in &v.proofs {
            match &p.established_by {
                Some(e) if p.holds => say!(
                    "  {:<12} holds, by {}.{} `{}` at {}",
                    p.proof,
                    e.source,
                    e.r#type,
                    e.id,
                    ts(&e.occurred_at)
                ),
                _ => say!("  {:<12} revoked", p.proof),
            }
        }
    }
    if !v.slas.is_empty() {
        say!("open SLAs:");
        for s in &v.slas {
            let next = s
                .next_tier
                .as_ref()
                .map(|n| match &n.at {
                    Some(_) => format!(", next tier {} at {} -> {}", n.tier, ts(&n.at), n.team),
                    None => format!(
                        ", next tier {} -> {} when the clock runs again",
                        n.tier, n.team
                    ),
                })
                .unwrap_or_default();
            say!(
                "  {} #{} ({}) owner {}{}{}",
                s.sla,
                s.instance,
                s.handoff,
                s.owner,
                if s.breached { ", BREACHED" } else { "" },
                next
            );
            say!("    {}", clock_words(s));
        }
    }
    if !v.escalations.is_empty() {
        say!("open escalations:");
        for e in &v.escalations {
            say!(
                "  {} {} -> {} ({}){}",
                e.escalation_id,
                kind_word(e.kind),
                e.team,
                severity_word(e.severity),
                if e.acknowledged { ", acknowledged" } else { "" }
            );
        }
    }
    if !v.timeline.is_empty() {
        say!("timeline (newest first):");
        for t in &v.timeline {
            let reason = if t.reason.is_empty() {
                String::new()
            } else {
                format!(" [{}]", t.reason)
            };
            say!("  {}  {}{}", ts(&t.at), t.summary, reason);
        }
    }
    if v.timeline_withheld {
        say!("timeline: withheld (only operators read a customer's timeline)");
    }
    Ok(())
}

/// An SLA's clock in words: "2h 10m of 4h used (office_de), 1h 50m left,
/// due 2026-03-02T15:00:00Z" or "..., paused since ...".
fn clock_words(s: &pb::SlaView) -> String {
    let micros = |d: &Option<prost_types::Duration>| {
        d.map_or(0, |d| d.seconds * 1_000_000 + i64::from(d.nanos) / 1_000)
    };
    let (elapsed, remaining) = (micros(&s.elapsed), micros(&s.remaining));
    let within = Duration(elapsed + remaining);
    let calendar = if s.calendar.is_empty() {
        String::new()
    } else {
        format!(" (calendar {})", s.calendar)
    };
    let rest = if remaining >= 0 {
        format!("{} left", in_words(Duration(remaining)))
    } else {
        format!("{} over", in_words(Duration(-remaining)))
    };
    let when = match (&s.paused_since, &s.deadline) {
        (Some(_), _) if s.paused => format!("paused since {}", ts(&s.paused_since)),
        (_, Some(_)) => format!("due {}", ts(&s.deadline)),
        _ => "paused".to_owned(),
    };
    format!(
        "{} of {} used{calendar}, {rest}, {when}",
        in_words(Duration(elapsed)),
        in_words(within)
    )
}

fn view_json(v: &pb::CustomerView) -> serde_json::Value {
    json!({
        "customer": v.customer_id,
        "market": v.market,
        "model_version": v.model_version,
        "owner": v.owner,
        "regions": v.regions.iter().map(|r| json!({"region": r.region, "state": r.state, "owner": r.owner, "since": ts(&r.since)})).collect::<Vec<_>>(),
        "proofs": v.proofs.iter().map(|p| json!({"proof": p.proof, "holds": p.holds, "established_by": p.established_by.as_ref().map(|e| json!({"id": e.id, "source": e.source, "type": e.r#type, "occurred_at": ts(&e.occurred_at)}))})).collect::<Vec<_>>(),
        "slas": v.slas.iter().map(|s| json!({"sla": s.sla, "instance": s.instance, "owner": s.owner, "deadline": ts(&s.deadline), "breached": s.breached, "paused": s.paused, "elapsed": s.elapsed.map(|d| d.seconds as f64 + f64::from(d.nanos) / 1e9), "remaining": s.remaining.map(|d| d.seconds as f64 + f64::from(d.nanos) / 1e9), "original_deadline": ts(&s.original_deadline), "calendar": (!s.calendar.is_empty()).then_some(&s.calendar), "paused_since": ts(&s.paused_since)})).collect::<Vec<_>>(),
        "escalations": v.escalations.iter().map(|e| json!({"escalation_id": e.escalation_id, "kind": kind_word(e.kind), "team": e.team, "severity": severity_word(e.severity), "acknowledged": e.acknowledged})).collect::<Vec<_>>(),
        "timeline": v.timeline.iter().map(|t| json!({"at": ts(&t.at), "summary": t.summary, "reason": t.reason})).collect::<Vec<_>>(),
        "timeline_withheld": v.timeline_withheld,
    })
}
