//! Thin clients of a running node: `handoff ingest`, `handoff customer get`,
//! `handoff escalations tail|list|ack`. They print what a person reads, or
//! JSON with `--json`. Each connects as [`Target`] says: TLS with `--ca`,
//! a bearer token with `--token` (or `HANDOFF_TOKEN`), a client
//! certificate with `--cert`/`--key`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::api::pb::escalations_client::EscalationsClient;
use crate::api::pb::lifecycle_client::LifecycleClient;
use crate::api::{from_timestamp, pb, timestamp};
use crate::engine::Timestamp;

/// `println!` for output that may go to a pipe closed early (`| head`):
/// a closed pipe ends the command quietly instead of a panic.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// Where the node is and how to prove who we are (every client command
/// takes it).
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The node's gRPC address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub target: String,
    /// Bearer token for a node that requires credentials (`handoff token new`).
    #[arg(long, env = "HANDOFF_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// CA certificate (PEM) that signed the node's certificate: connect with TLS.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; its subject CN names who we are.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
}

/// A token: never shown by `Debug`, so it cannot reach a log by accident.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// Adds `authorization: Bearer <token>` to every call (or nothing).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

/// A client of a running node, with the token on every call.
pub type Authed = InterceptedService<Channel, Bearer>;

fn read(flag: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag} {}: cannot read it", path.display()))
}

impl Target {
    fn tls(&self) -> anyhow::Result<ClientTlsConfig> {
        let Some(ca) = &self.ca else {
            bail!(
                "--target {} uses https: pass --ca FILE, the CA certificate (PEM) that signed the node's certificate",
                self.target
            );
        };
        let mut tls =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--ca", ca)?));
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls = tls.identity(Identity::from_pem(
                read("--cert", cert)?,
                read("--key", key)?,
            ));
        }
        Ok(tls)
    }

    /// The token as call metadata (marked sensitive: never indexed by
    /// HTTP/2 header compression, never printed).
    pub fn bearer(&self) -> anyhow::Result<Bearer> {
        let Some(Secret(token)) = &self.token else {
            return Ok(Bearer(None));
        };
        let mut value =
            MetadataValue::try_from(format!("Bearer {}", token.trim())).map_err(|_| {
                anyhow::anyhow!(
                    "--token (or HANDOFF_TOKEN) has characters no token has: copy it again"
                )
            })?;
        value.set_sensitive(true);
        Ok(Bearer(Some(value)))
    }

    pub async fn lifecycle(&self) -> anyhow::Result<LifecycleClient<Authed>> {
        Ok(LifecycleClient::with_interceptor(
            self.channel().await?,
            self.bearer()?,
        ))
    }

    pub async fn escalations(&self) -> anyhow::Result<EscalationsClient<Authed>> {
        Ok(EscalationsClient::with_interceptor(
            self.channel().await?,
            self.bearer()?,
        ))
    }

    /// A connection (TLS with `--ca` or an https target); the token is
    /// added by [`Target::lifecycle`] and [`Target::escalations`].
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let tls = self.ca.is_some() || self.target.starts_with("https://");
        let uri = if self.target.contains("://") {
            self.target.clone()
        } else if tls {
            format!("https://{}", self.target)
        } else {
            format!("http://{}", self.target)
        };
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .with_context(|| format!("--target {} is not an address", self.target))?;
        if tls {
            endpoint = endpoint
                .tls_config(self.tls()?)
                .context("the TLS settings (--ca, --cert, --key) cannot be used")?;
        }
        endpoint
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
        return Ok(());
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
                .map(|n| format!(", next tier {} at {} -> {}", n.tier, ts(&n.at), n.team))
                .unwrap_or_default();
            say!(
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
        "timeline_withheld": v.timeline_withheld,
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
    let mut client = args.target.escalations().await?;
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
            say!(
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
            say!(
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

/// `handoff escalations ack ID [--team T]`.
#[derive(Debug, clap::Args)]
pub struct AckArgs {
    pub escalation_id: String,
    /// The team acknowledging (default: the team the token stands for).
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
