//! `handoff escalations tail`: follow the escalation stream, reconnecting
//! by itself from the last cursor.

use std::time::Duration;

use anyhow::bail;
use serde_json::json;
use tonic::transport::Endpoint;

use crate::api::pb;
use crate::api::pb::escalations_client::EscalationsClient;
use crate::cli::print::*;
use crate::cli::target::{Bearer, Target};

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
