//! Thin clients of a running node: `handoff ingest`, `handoff customer get`,
//! `handoff escalations tail|list|ack`. They print what a person reads, or
//! JSON with `--json`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use tonic::transport::{Channel, Endpoint};

use crate::api::pb::escalations_client::EscalationsClient;
use crate::api::pb::lifecycle_client::LifecycleClient;
use crate::api::{from_timestamp, pb, timestamp};
use crate::engine::Timestamp;

/// Where the node is (every client command takes it).
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The node's gRPC address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub target: String,
}

impl Target {
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let uri = if self.target.contains("://") {
            self.target.clone()
        } else {
            format!("http://{}", self.target)
        };
        Endpoint::from_shared(uri.clone())
            .with_context(|| format!("--target {} is not an address", self.target))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| {
                format!(
                    "cannot reach a node at {}: is `handoff serve` running?",
                    self.target
                )
            })
    }
}

/// `handoff ingest`: send one event.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// The source system (as in the model's [sources]).
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

fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", code_word(s.code()), s.message())
}

fn code_word(c: tonic::Code) -> &'static str {
    match c {
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::NotFound => "not found",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::ResourceExhausted => "resource exhausted",
        _ => "error",
    }
}

fn word(outcome: i32) -> &'static str {
    match pb::Outcome::try_from(outcome) {
        Ok(pb::Outcome::Applied) => "applied",
        Ok(pb::Outcome::Duplicate) => "duplicate",
        Ok(pb::Outcome::Ignored) => "ignored",
        Ok(pb::Outcome::Rejected) => "rejected",
        Ok(pb::Outcome::Stale) => "stale",
        _ => "unspecified",
    }
}

fn kind_word(k: i32) -> &'static str {
    match pb::EscalationKind::try_from(k) {
        Ok(pb::EscalationKind::TierReached) => "tier_reached",
        Ok(pb::EscalationKind::Breached) => "breached",
        Ok(pb::EscalationKind::Resolved) => "resolved",
        _ => "unspecified",
    }
}

fn severity_word(s: i32) -> &'static str {
    match pb::Severity::try_from(s) {
        Ok(pb::Severity::Low) => "low",
        Ok(pb::Severity::Medium) => "medium",
        Ok(pb::Severity::High) => "high",
        Ok(pb::Severity::Critical) => "critical",
        _ => "",
    }
}

fn ts(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| from_timestamp(t).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn sorted(states: &HashMap<String, String>) -> Vec<(&String, &String)> {
    let mut v: Vec<_> = states.iter().collect();
    v.sort();
    v
}

fn fresh_id() -> String {
    let now = jiff::Timestamp::now().as_nanosecond();
    format!("cli-{now:x}-{}", std::process::id())
}

pub async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
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
    let mut client = LifecycleClient::new(args.target.channel().await?);
    let r = client
        .ingest(pb::IngestRequest {
            event: Some(event.clone()),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        println!(
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
        return Ok(());
    }
    println!(
        "{} {}.{} for {} (id {})",
        word(r.outcome),
        args.source,
        args.event_type,
        args.customer,
        event.id
    );
    if !r.reason.is_empty() {
        println!("  reason: {}", r.reason);
    }
    for t in &r.transitions {
        println!("  {}: {} -> {}", t.region, t.from, t.to);
    }
    for c in &r.sla_changes {
        let what = match pb::SlaChangeKind::try_from(c.kind) {
            Ok(pb::SlaChangeKind::Started) => format!("started, deadline {}", ts(&c.deadline)),
            Ok(pb::SlaChangeKind::Met) => "met".into(),
            Ok(pb::SlaChangeKind::Late) => "completed late".into(),
            _ => "cancelled".into(),
        };
        println!("  sla {} #{}: {what}", c.sla, c.instance);
    }
    let states: Vec<String> = sorted(&r.states)
        .iter()
        .map(|(r, s)| format!("{r}={s}"))
        .collect();
    if !states.is_empty() {
        println!("  now: {}", states.join(" "));
    }
    Ok(())
}

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
    let mut client = LifecycleClient::new(args.target.channel().await?);
    let v = client
        .get_customer(pb::GetCustomerRequest {
            customer_id: args.customer.clone(),
            timeline_limit: args.timeline,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        println!("{}", view_json(&v));
        return Ok(());
    }
    println!(
        "customer {} (market {}, model v{}), owned by {}",
        v.customer_id, v.market, v.model_version, v.owner
    );
    for r in &v.regions {
        let since = ts(&r.since);
        println!(
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
        println!("proofs:");
        for p in &v.proofs {
            match &p.established_by {
                Some(e) if p.holds => println!(
                    "  {:<12} holds, by {}.{} `{}` at {}",
                    p.proof,
                    e.source,
                    e.r#type,
                    e.id,
                    ts(&e.occurred_at)
                ),
                _ => println!("  {:<12} revoked", p.proof),
            }
        }
    }
    if !v.slas.is_empty() {
        println!("open SLAs:");
        for s in &v.slas {
            let next = s
                .next_tier
                .as_ref()
                .map(|n| format!(", next tier {} at {} -> {}", n.tier, ts(&n.at), n.team))
                .unwrap_or_default();
            println!(
                "  {} #{} ({}) owner {}, deadline {}{}{}",
                s.sla,
                s.instance,
                s.handoff,
                s.owner,
                ts(&s.deadline),
                if s.breached { ", BREACHED" } else { "" },
                next
            );
        }
    }
    if !v.escalations.is_empty() {
        println!("open escalations:");
        for e in &v.escalations {
            println!(
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
        println!("timeline (newest first):");
        for t in &v.timeline {
            let reason = if t.reason.is_empty() {
                String::new()
            } else {
                format!(" [{}]", t.reason)
            };
            println!("  {}  {}{}", ts(&t.at), t.summary, reason);
        }
    }
    Ok(())
}

fn view_json(v: &pb::CustomerView) -> serde_json::Value {
    json!({
        "customer": v.customer_id,
        "market": v.market,
        "model_version": v.model_version,
        "owner": v.owner,
        "regions": v.regions.iter().map(|r| json!({"region": r.region, "state": r.state, "owner": r.owner, "since": ts(&r.since)})).collect::<Vec<_>>(),
        "proofs": v.proofs.iter().map(|p| json!({"proof": p.proof, "holds": p.holds, "established_by": p.established_by.as_ref().map(|e| json!({"id": e.id, "source": e.source, "type": e.r#type, "occurred_at": ts(&e.occurred_at)}))})).collect::<Vec<_>>(),
        "slas": v.slas.iter().map(|s| json!({"sla": s.sla, "instance": s.instance, "owner": s.owner, "deadline": ts(&s.deadline), "breached": s.breached})).collect::<Vec<_>>(),
        "escalations": v.escalations.iter().map(|e| json!({"escalation_id": e.escalation_id, "kind": kind_word(e.kind), "team": e.team, "severity": severity_word(e.severity), "acknowledged": e.acknowledged})).collect::<Vec<_>>(),
        "timeline": v.timeline.iter().map(|t| json!({"at": ts(&t.at), "summary": t.summary, "reason": t.reason})).collect::<Vec<_>>(),
    })
}

/// `handoff escalations tail`: follow the stream, resuming after a cursor.
#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// Only escalations routed to this team (repeatable).
    #[arg(long)]
    pub team: Vec<String>,
    /// Only customers of this market (repeatable).
    #[arg(long)]
    pub market: Vec<String>,
    /// Only at or above this severity: low, medium, high, critical.
    #[arg(long)]
    pub min_severity: Option<String>,
    /// Resume after this cursor; `earliest` for everything retained
    /// (default: from now).
    #[arg(long, default_value = "")]
    pub cursor: String,
    /// Stop after this many events (default: follow until interrupted).
    #[arg(long)]
    pub count: Option<usize>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

pub async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let min_severity = match args.min_severity.as_deref() {
        None => pb::Severity::Unspecified,
        Some("low") => pb::Severity::Low,
        Some("medium") => pb::Severity::Medium,
        Some("high") => pb::Severity::High,
        Some("critical") => pb::Severity::Critical,
        Some(other) => bail!("--min-severity {other}: use low, medium, high or critical"),
    };
    let mut client = EscalationsClient::new(args.target.channel().await?);
    let mut stream = client
        .subscribe(pb::SubscribeRequest {
            teams: args.team.clone(),
            markets: args.market.clone(),
            min_severity: min_severity as i32,
            cursor: args.cursor.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if !args.json {
        eprintln!("following escalations (Ctrl-C to stop; resume with --cursor <last cursor>)");
    }
    let mut seen = 0usize;
    while let Some(e) = stream.message().await.map_err(status_error)? {
        if args.json {
            println!(
                "{}",
                json!({
                    "cursor": e.cursor,
                    "escalation_id": e.escalation_id,
                    "kind": kind_word(e.kind),
                    "customer": e.customer_id,
                    "market": e.market,
                    "sla": e.sla,
                    "tier": e.tier,
                    "team": e.team,
                    "severity": severity_word(e.severity),
                    "deadline": ts(&e.deadline),
                    "fired_at": ts(&e.fired_at),
                    "due": ts(&e.due),
                    "late_attach": e.late_attach,
                    "handoff": e.handoff,
                })
            );
        } else {
            println!(
                "{}  {:<12} {} {} tier {} -> {} ({}){}  [cursor {}]",
                ts(&e.fired_at),
                kind_word(e.kind),
                e.customer_id,
                e.sla,
                e.tier,
                e.team,
                severity_word(e.severity),
                if e.late_attach { " late attach" } else { "" },
                e.cursor
            );
        }
        seen += 1;
        if args.count.is_some_and(|c| seen >= c) {
            break;
        }
    }
    Ok(())
}

/// `handoff escalations list`: open escalations.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this team's (default: every team's).
    #[arg(long, default_value = "")]
    pub team: String,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

pub async fn list(args: ListArgs) -> anyhow::Result<()> {
    let mut client = EscalationsClient::new(args.target.channel().await?);
    let r = client
        .list_open(pb::ListOpenRequest {
            team: args.team.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    for e in &r.escalations {
        if args.json {
            println!(
                "{}",
                json!({"escalation_id": e.escalation_id, "kind": kind_word(e.kind), "customer": e.customer_id, "sla": e.sla, "tier": e.tier, "team": e.team, "severity": severity_word(e.severity), "fired_at": ts(&e.fired_at), "acknowledged": e.acknowledged})
            );
        } else {
            println!(
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

/// `handoff escalations ack ID --team T`.
#[derive(Debug, clap::Args)]
pub struct AckArgs {
    pub escalation_id: String,
    #[arg(long)]
    pub team: String,
    #[arg(long, default_value = "")]
    pub note: String,
    #[command(flatten)]
    pub target: Target,
}

pub async fn ack(args: AckArgs) -> anyhow::Result<()> {
    let mut client = EscalationsClient::new(args.target.channel().await?);
    let r = client
        .acknowledge(pb::AcknowledgeRequest {
            escalation_id: args.escalation_id.clone(),
            team: args.team.clone(),
            note: args.note.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    println!("acknowledged {} for {}", args.escalation_id, args.team);
    if !r.reason.is_empty() {
        println!("  {}", r.reason);
    }
    Ok(())
}
