//! Thin clients of a running node: `handoff ingest`, `handoff customer get`,
//! `handoff escalations tail|list|ack`. They print what a person reads, or
//! JSON with `--json`. Each connects as [`Target`] says: TLS with `--ca`,
//! a bearer token with `--token` (or `HANDOFF_TOKEN`), a client
//! certificate with `--cert`/`--key`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
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
        self.endpoint()?.connect().await.with_context(|| {
            format!(
                "cannot reach a node at {}: is `handoff serve` running?",
                self.target
            )
        })
    }

    /// Where and how to connect, without connecting: what is wrong here
    /// (an address or TLS file) stays wrong, unlike an unreachable node.
    pub fn endpoint(&self) -> anyhow::Result<Endpoint> {
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
        Ok(endpoint.connect_timeout(Duration::from_secs(5)))
    }
}

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
    /// Do not reconnect: when the stream ends or the connection is lost,
    /// exit 1 and say the cursor to resume from (for scripts that
    /// resume by themselves).
    #[arg(long, alias = "once")]
    pub no_reconnect: bool,
    /// One JSON object per escalation, with every field of the
    /// EscalationEvent.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

/// How `handoff escalations tail` follows through restarts, for its `--help`.
pub const TAIL_RECONNECT: &str = "\
When the node stops or the connection is lost, tail reconnects by itself
(waiting 100 ms, doubling to 5 s, back to 100 ms once connected) and resumes
after the last cursor it saw, so it misses nothing and repeats nothing across
restarts of the node; it says so on stderr. Errors that retrying cannot fix
(a bad cursor, team or market, missing or refused credentials) end it with
exit status 1. Each line shows the escalation id, which
`handoff escalations ack` takes.";

/// The waits between reconnection attempts: 100 ms, doubling up to 5 s,
/// and 100 ms again once a subscription was accepted.
struct Backoff {
    next: Duration,
    /// Whether the cap was announced: a node down all night then costs a
    /// few lines on stderr, not one every 5 s.
    capped: bool,
}

/// What to say about a wait before the next attempt.
enum Say {
    /// "reconnecting ... in 400ms".
    Each,
    /// The first wait at the cap: say that it goes on quietly.
    Capped,
    /// Already said.
    Nothing,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const CAP: Duration = Duration::from_secs(5);

    fn new() -> Backoff {
        Backoff {
            next: Self::FIRST,
            capped: false,
        }
    }

    fn reset(&mut self) {
        *self = Backoff::new();
    }

    fn next(&mut self) -> (Duration, Say) {
        let wait = self.next;
        self.next = (wait * 2).min(Self::CAP);
        let say = match (wait < Self::CAP, self.capped) {
            (true, _) => Say::Each,
            (false, false) => Say::Capped,
            (false, true) => Say::Nothing,
        };
        self.capped |= wait >= Self::CAP;
        (wait, say)
    }
}

/// How a subscription ended, when it did not fail for good.
enum Break {
    /// `--count` events were printed.
    Done,
    /// The node ended the stream: it does so when it stops.
    Ended,
    /// The node could not be reached, was unavailable or the connection
    /// broke: what happened.
    Lost(String),
}

/// Whether retrying may help: the node is unavailable (starting or
/// stopping), or the connection broke (a status made here from a transport
/// error, which has a source, rather than one the node sent). A status
/// the node sent, such as a bad cursor, a denied team or missing
/// credentials, is the same on every retry.
fn retryable(s: &tonic::Status) -> bool {
    match s.code() {
        tonic::Code::Unavailable => true,
        tonic::Code::InvalidArgument
        | tonic::Code::Unauthenticated
        | tonic::Code::PermissionDenied => false,
        _ => std::error::Error::source(s).is_some(),
    }
}

/// One `handoff escalations tail`: the request and where to resume.
struct Follower<'a> {
    args: &'a TailArgs,
    min_severity: pb::Severity,
    /// Resume after this: the last event's cursor, or where the last
    /// stream started (empty: from now, before the first connection).
    cursor: String,
    /// Events printed so far, for `--count`.
    printed: usize,
}

impl Follower<'_> {
    /// "cursor h1-..." or "now", for messages.
    fn position(&self) -> String {
        match self.cursor.as_str() {
            "" => "now".to_owned(),
            c => format!("cursor {c}"),
        }
    }

    /// Connects, subscribes after the cursor and prints events until the
    /// stream breaks; `Err` only for what retrying cannot fix.
    async fn follow(
        &mut self,
        endpoint: &Endpoint,
        bearer: &Bearer,
        backoff: &mut Backoff,
    ) -> anyhow::Result<Break> {
        let target = &self.args.target.target;
        let channel = match endpoint.connect().await {
            Ok(c) => c,
            Err(e) => {
                return Ok(Break::Lost(format!(
                    "cannot reach a node at {target} ({}): is `handoff serve` running?",
                    root_cause(&e)
                )));
            }
        };
        let mut client = EscalationsClient::with_interceptor(channel, bearer.clone());
        let request = pb::SubscribeRequest {
            teams: self.args.team.clone(),
            markets: self.args.market.clone(),
            min_severity: self.min_severity as i32,
            cursor: self.cursor.clone(),
        };
        let response = match client.subscribe(request).await {
            Ok(r) => r,
            Err(s) if retryable(&s) => return Ok(Break::Lost(lost(&s))),
            Err(s) => return Err(status_error(s)),
        };
        if let Some(start) = response
            .metadata()
            .get(crate::api::START_CURSOR_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            self.cursor = start.to_owned();
        }
        backoff.reset();
        eprintln!(
            "connected to {target}; following from {} (Ctrl-C to stop)",
            self.position()
        );
        let mut stream = response.into_inner();
        loop {
            match stream.message().await {
                Ok(Some(e)) => {
                    print_escalation(&e, self.args.json);
                    self.cursor = e.cursor;
                    self.printed += 1;
                    if self.args.count.is_some_and(|c| self.printed >= c) {
                        return Ok(Break::Done);
                    }
                }
                Ok(None) => return Ok(Break::Ended),
                Err(s) if retryable(&s) => return Ok(Break::Lost(lost(&s))),
                Err(s) => return Err(status_error(s)),
            }
        }
    }
}

/// What a broken connection or an unavailable node looks like in a message.
fn lost(s: &tonic::Status) -> String {
    match s.code() {
        tonic::Code::Unavailable => format!("node unavailable ({})", s.message()),
        _ => format!("connection lost ({})", s.message()),
    }
}

/// The innermost cause of an error ("Connection refused (os error 111)"),
/// which says more than the layers of transport errors around it.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn print_escalation(e: &pb::EscalationEvent, as_json: bool) {
    if as_json {
        let states: std::collections::BTreeMap<&String, &String> = e.states.iter().collect();
        say!(
            "{}",
            json!({
                "cursor": e.cursor,
                "escalation_id": e.escalation_id,
                "kind": kind_word(e.kind),
                "customer_id": e.customer_id,
                "customer": e.customer_id,
                "market": e.market,
                "sla": e.sla,
                "tier": e.tier,
                "repeat": e.repeat,
                "team": e.team,
                "severity": severity_word(e.severity),
                "deadline": ts(&e.deadline),
                "fired_at": ts(&e.fired_at),
                "due": ts(&e.due),
                "late_attach": e.late_attach,
                "handoff": e.handoff,
                "states": states,
                "gap": e.gap,
                "skipped": e.skipped,
            })
        );
    } else {
        if e.gap {
            say!(
                "-- gap: {} older escalations were pruned by the node's escalation_retention before this one",
                e.skipped
            );
        }
        say!(
            "{}  {:<12} {} {} tier {} -> {} ({}){}, repeat {}  id {}  [cursor {}]",
            ts(&e.fired_at),
            kind_word(e.kind),
            e.customer_id,
            e.sla,
            e.tier,
            e.team,
            severity_word(e.severity),
            if e.late_attach { " late attach" } else { "" },
            e.repeat,
            e.escalation_id,
            e.cursor
        );
    }
}

/// Follows the stream, reconnecting after the last cursor whenever it
/// breaks (unless `--no-reconnect`), until `--count` events or Ctrl-C.
pub async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let min_severity = match args.min_severity.as_deref() {
        None => pb::Severity::Unspecified,
        Some("low") => pb::Severity::Low,
        Some("medium") => pb::Severity::Medium,
        Some("high") => pb::Severity::High,
        Some("critical") => pb::Severity::Critical,
        Some(other) => bail!("--min-severity {other}: use low, medium, high or critical"),
    };
    if args.count == Some(0) {
        return Ok(());
    }
    let endpoint = args.target.endpoint()?;
    let bearer = args.target.bearer()?;
    let mut follower = Follower {
        args: &args,
        min_severity,
        cursor: args.cursor.clone(),
        printed: 0,
    };
    let mut backoff = Backoff::new();
    loop {
        let why = match follower.follow(&endpoint, &bearer, &mut backoff).await? {
            Break::Done => return Ok(()),
            Break::Ended => "stream ended (node stopping)".to_owned(),
            Break::Lost(why) => why,
        };
        if args.no_reconnect {
            if follower.cursor.is_empty() {
                bail!("{why}");
            }
            bail!("{why}: resume with --cursor {}", follower.cursor);
        }
        let (wait, say) = backoff.next();
        let target = &args.target.target;
        match say {
            Say::Each => eprintln!(
                "{why}; reconnecting to {target} from {} in {wait:?}",
                follower.position()
            ),
            Say::Capped => eprintln!(
                "{why}; reconnecting to {target} from {}, every {wait:?} until it answers",
                follower.position()
            ),
            Say::Nothing => {}
        }
        tokio::time::sleep(wait).await;
    }
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
