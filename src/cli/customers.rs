//! `handoff customers list`: customers matching filters, a page at a time
//! (`ListCustomers`), newest first unless `--oldest-first`.

use serde_json::json;

use crate::api::pb;
use crate::cli::print::*;
use crate::cli::target::Target;
use crate::engine::model::parse_duration;

/// `handoff customers list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only customers of this market.
    #[arg(long)]
    pub market: Option<String>,
    /// Only customers pinned to this model version.
    #[arg(long)]
    pub version: Option<u32>,
    /// Only customers in this state of a region: REGION=STATE.
    #[arg(long, value_name = "REGION=STATE")]
    pub state: Option<String>,
    /// Only customers with an open SLA in this status: SLA=STATUS, where
    /// STATUS is running, paused or breached.
    #[arg(long, value_name = "SLA=STATUS")]
    pub sla: Option<String>,
    /// In that SLA status (else that state, else owned by that team, else
    /// since created) for at least this long: e.g. 30m, 2h, 1d.
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Only customers one of whose states this team owns.
    #[arg(long)]
    pub owner: Option<String>,
    /// Rows per page (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Oldest first (default: newest first).
    #[arg(long)]
    pub oldest_first: bool,
    /// Continue from a previous page's token.
    #[arg(long, value_name = "TOKEN")]
    pub page: Option<String>,
    /// Follow the pages to the end.
    #[arg(long)]
    pub all: bool,
    /// One JSON object per line (the next page's token goes to stderr).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

fn pair(flag: &str, text: &str, want: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_owned(), b.to_owned())),
        _ => anyhow::bail!("--{flag} takes {want}, got `{text}`"),
    }
}

/// The request of the first page.
pub fn request(args: &ListArgs) -> anyhow::Result<pb::ListCustomersRequest> {
    let (region, state) = match &args.state {
        Some(s) => pair("state", s, "REGION=STATE")?,
        None => Default::default(),
    };
    let (sla, sla_status) = match &args.sla {
        Some(s) => pair("sla", s, "SLA=STATUS (running, paused or breached)")?,
        None => Default::default(),
    };
    let older_than = match &args.older_than {
        Some(d) => {
            let d = parse_duration(d)
                .map_err(|e| anyhow::anyhow!("--older-than `{d}`: {e}"))?
                .0;
            Some(prost_types::Duration {
                seconds: d.div_euclid(1_000_000),
                nanos: (d.rem_euclid(1_000_000) * 1000) as i32,
            })
        }
        None => None,
    };
    Ok(pb::ListCustomersRequest {
        market: args.market.clone().unwrap_or_default(),
        model_version: args.version.unwrap_or(0),
        region,
        state,
        sla,
        sla_status,
        older_than,
        owner: args.owner.clone().unwrap_or_default(),
        limit: args.limit,
        oldest_first: args.oldest_first,
        page_token: args.page.clone().unwrap_or_default(),
    })
}

/// One customer as a JSON line.
pub fn summary_json(c: &pb::CustomerSummary) -> serde_json::Value {
    let states: serde_json::Map<String, serde_json::Value> = sorted(&c.states)
        .into_iter()
        .map(|(r, s)| (r.clone(), json!(s)))
        .collect();
    json!({
        "customer_id": c.customer_id,
        "market": c.market,
        "model_version": c.model_version,
        "states": states,
        "owners": c.owners,
        "open_slas": c.open_slas.iter().map(|s| json!({
            "sla": s.sla,
            "deadline": (s.deadline.is_some()).then(|| ts(&s.deadline)),
            "paused": s.paused,
            "breached": s.breached,
        })).collect::<Vec<_>>(),
        "open_escalations": c.open_escalations,
        "since": ts(&c.since),
    })
}

pub async fn list(args: ListArgs) -> anyhow::Result<()> {
    let mut req = request(&args)?;
    let mut client = args.target.lifecycle().await?;
    loop {
        let page = client
            .list_customers(req.clone())
            .await
            .map_err(status_error)?
            .into_inner();
        for c in &page.customers {
            if args.json {
                say!("{}", summary_json(c));
            } else {
                let states: Vec<String> = sorted(&c.states)
                    .into_iter()
                    .map(|(r, s)| format!("{r}={s}"))
                    .collect();
                let slas: Vec<String> = c
                    .open_slas
                    .iter()
                    .map(|s| {
                        let status = if s.breached {
                            "BREACHED"
                        } else if s.paused {
                            "paused"
                        } else {
                            "running"
                        };
                        match &s.deadline {
                            Some(_) => format!("{} {status} due {}", s.sla, ts(&s.deadline)),
                            None => format!("{} {status}", s.sla),
                        }
                    })
                    .collect();
                say!(
                    "{}  {}  v{}  {}  owners {}  since {}{}{}",
                    c.customer_id,
                    c.market,
                    c.model_version,
                    states.join(" "),
                    c.owners.join(","),
                    ts(&c.since),
                    if slas.is_empty() {
                        String::new()
                    } else {
                        format!("  slas: {}", slas.join("; "))
                    },
                    if c.open_escalations > 0 {
                        format!("  open escalations: {}", c.open_escalations)
                    } else {
                        String::new()
                    }
                );
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        if !args.all {
            eprintln!("next page: --page {}", page.next_page_token);
            return Ok(());
        }
        req.page_token = page.next_page_token;
    }
}
