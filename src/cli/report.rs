//! `handoff report`: exact counts from a running node (`GetReport`), as
//! aligned tables, one JSON document (`--json`) or one CSV file with a
//! `section` column (`--csv`; columns in docs/reports.md).

use serde_json::json;

use crate::api::pb;
use crate::api::pb::reports_client::ReportsClient;
use crate::cli::print::*;
use crate::cli::target::Target;

/// `handoff report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Only this market.
    #[arg(long)]
    pub market: Option<String>,
    /// Only customers pinned to this model version.
    #[arg(long)]
    pub version: Option<u32>,
    /// States and transitions of this region only.
    #[arg(long)]
    pub region: Option<String>,
    /// SLA rows and escalations of this SLA only.
    #[arg(long)]
    pub sla: Option<String>,
    /// UTC days in the window of ended SLA instances (1 to 366).
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// The window's last day, YYYY-MM-DD (UTC; default: today).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// One JSON document.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// One CSV file: every table, told apart by the `section` column.
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    pub target: Target,
}

/// The request the flags make.
pub fn request(args: &ReportArgs) -> anyhow::Result<pb::GetReportRequest> {
    let until = match &args.until {
        None => None,
        Some(d) => {
            let date: jiff::civil::Date = d
                .parse()
                .map_err(|e| anyhow::anyhow!("--until `{d}` is not a date YYYY-MM-DD: {e}"))?;
            // The day's first instant: the window ends with that day.
            let t = date
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map_err(|e| anyhow::anyhow!("--until `{d}`: {e}"))?
                .timestamp();
            Some(prost_types::Timestamp {
                seconds: t.as_second(),
                nanos: 0,
            })
        }
    };
    Ok(pb::GetReportRequest {
        market: args.market.clone().unwrap_or_default(),
        model_version: args.version.unwrap_or(0),
        region: args.region.clone().unwrap_or_default(),
        sla: args.sla.clone().unwrap_or_default(),
        days: args.days,
        until,
    })
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

fn secs(s: f64) -> String {
    if s == 0.0 {
        "-".into()
    } else if s < 120.0 {
        format!("{s:.1}s")
    } else if s < 7200.0 {
        format!("{:.1}m", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

/// The tables: (title, header, rows).
type Section = (&'static str, Vec<&'static str>, Vec<Vec<String>>);

fn tables(r: &pb::Report) -> Vec<Section> {
    vec![
        (
            "Customers by state (now)",
            vec!["market", "version", "region", "state", "customers"],
            r.states
                .iter()
                .map(|s| {
                    vec![
                        s.market.clone(),
                        s.model_version.to_string(),
                        s.region.clone(),
                        s.state.clone(),
                        s.customers.to_string(),
                    ]
                })
                .collect(),
        ),
        (
            "SLAs (open now; ended in the window)",
            vec![
                "market",
                "version",
                "sla",
                "handoff",
                "running",
                "paused",
                "breached",
                "met",
                "missed",
                "cancelled",
                "compliance",
                "p50",
                "p90",
                "p99",
            ],
            r.slas
                .iter()
                .map(|s| {
                    vec![
                        s.market.clone(),
                        s.model_version.to_string(),
                        s.sla.clone(),
                        s.handoff.clone(),
                        s.running.to_string(),
                        s.paused.to_string(),
                        s.breached_open.to_string(),
                        s.met.to_string(),
                        s.missed.to_string(),
                        s.cancelled.to_string(),
                        rate(s.compliance),
                        secs(s.elapsed_p50_s),
                        secs(s.elapsed_p90_s),
                        secs(s.elapsed_p99_s),
                    ]
                })
                .collect(),
        ),
        (
            "SLA outcomes by day (UTC)",
            vec![
                "market",
                "version",
                "sla",
                "day",
                "met",
                "missed",
                "cancelled",
                "compliance",
            ],
            r.sla_days
                .iter()
                .map(|d| {
                    vec![
                        d.market.clone(),
                        d.model_version.to_string(),
                        d.sla.clone(),
                        d.day.clone(),
                        d.met.to_string(),
                        d.missed.to_string(),
                        d.cancelled.to_string(),
                        rate(d.compliance),
                    ]
                })
                .collect(),
        ),
        (
            "Transitions",
            vec!["market", "version", "region", "from", "to", "count"],
            r.transitions
                .iter()
                .map(|t| {
                    vec![
                        t.market.clone(),
                        t.model_version.to_string(),
                        t.region.clone(),
                        t.from.clone(),
                        t.to.clone(),
                        t.count.to_string(),
                    ]
                })
                .collect(),
        ),
        (
            "Escalations open by team (age since due, to 10 minutes)",
            vec![
                "team", "open", "breaches", "<1h", "1h-4h", "4h-24h", ">24h", "oldest",
            ],
            r.escalations
                .iter()
                .map(|t| {
                    vec![
                        t.team.clone(),
                        t.open.to_string(),
                        t.breaches.to_string(),
                        t.under_1h.to_string(),
                        t.from_1h_to_4h.to_string(),
                        t.from_4h_to_24h.to_string(),
                        t.over_24h.to_string(),
                        secs(t.oldest_age_s as f64),
                    ]
                })
                .collect(),
        ),
    ]
}

/// The report as one JSON document.
pub fn to_json(r: &pb::Report) -> serde_json::Value {
    json!({
        "generated_at": ts(&r.generated_at),
        "window": {"first_day": r.first_day, "last_day": r.last_day, "days": r.days},
        "counted": r.counted,
        "states": r.states.iter().map(|s| json!({
            "market": s.market, "model_version": s.model_version, "region": s.region,
            "state": s.state, "customers": s.customers,
        })).collect::<Vec<_>>(),
        "slas": r.slas.iter().map(|s| json!({
            "market": s.market, "model_version": s.model_version, "sla": s.sla,
            "handoff": s.handoff, "running": s.running, "paused": s.paused,
            "breached_open": s.breached_open, "met": s.met, "missed": s.missed,
            "cancelled": s.cancelled, "compliance": s.compliance,
            "elapsed": {"count": s.elapsed_count, "p50_s": s.elapsed_p50_s,
                "p90_s": s.elapsed_p90_s, "p99_s": s.elapsed_p99_s, "max_s": s.elapsed_max_s},
        })).collect::<Vec<_>>(),
        "sla_days": r.sla_days.iter().map(|d| json!({
            "market": d.market, "model_version": d.model_version, "sla": d.sla,
            "handoff": d.handoff, "day": d.day, "met": d.met, "missed": d.missed,
            "cancelled": d.cancelled, "compliance": d.compliance,
        })).collect::<Vec<_>>(),
        "transitions": r.transitions.iter().map(|t| json!({
            "market": t.market, "model_version": t.model_version, "region": t.region,
            "from": t.from, "to": t.to, "count": t.count,
        })).collect::<Vec<_>>(),
        "escalations": r.escalations.iter().map(|t| json!({
            "team": t.team, "open": t.open,
            "breaches": t.breaches, "under_1h": t.under_1h, "from_1h_to_4h": t.from_1h_to_4h,
            "from_4h_to_24h": t.from_4h_to_24h, "over_24h": t.over_24h,
            "oldest_age_s": t.oldest_age_s,
        })).collect::<Vec<_>>(),
    })
}

/// The CSV file's columns: every table's, once; a row fills its own.
pub const CSV_COLUMNS: [&str; 30] = [
    "section",
    "market",
    "model_version",
    "region",
    "state",
    "from",
    "to",
    "sla",
    "handoff",
    "day",
    "team",
    "count",
    "running",
    "paused",
    "breached_open",
    "met",
    "missed",
    "cancelled",
    "compliance",
    "elapsed_count",
    "elapsed_p50_s",
    "elapsed_p90_s",
    "elapsed_p99_s",
    "open",
    "breaches",
    "under_1h",
    "from_1h_to_4h",
    "from_4h_to_24h",
    "over_24h",
    "oldest_age_s",
];

/// A CSV field, quoted when it must be (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_row(cells: &[(&str, String)]) -> String {
    CSV_COLUMNS
        .iter()
        .map(|c| {
            cells
                .iter()
                .find(|(k, _)| k == c)
                .map_or(String::new(), |(_, v)| field(v))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The report as CSV lines, the header first. Sections: `state`, `sla`,
/// `sla_day`, `transition`, `escalations`.
pub fn to_csv(r: &pb::Report) -> Vec<String> {
    let opt = |r: Option<f64>| r.map_or(String::new(), |r| format!("{r:.6}"));
    let mut out = vec![CSV_COLUMNS.join(",")];
    for s in &r.states {
        out.push(csv_row(&[
            ("section", "state".into()),
            ("market", s.market.clone()),
            ("model_version", s.model_version.to_string()),
            ("region", s.region.clone()),
            ("state", s.state.clone()),
            ("count", s.customers.to_string()),
        ]));
    }
    for s in &r.slas {
        out.push(csv_row(&[
            ("section", "sla".into()),
            ("market", s.market.clone()),
            ("model_version", s.model_version.to_string()),
            ("sla", s.sla.clone()),
            ("handoff", s.handoff.clone()),
            ("running", s.running.to_string()),
            ("paused", s.paused.to_string()),
            ("breached_open", s.breached_open.to_string()),
            ("met", s.met.to_string()),
            ("missed", s.missed.to_string()),
            ("cancelled", s.cancelled.to_string()),
            ("compliance", opt(s.compliance)),
            ("elapsed_count", s.elapsed_count.to_string()),
            ("elapsed_p50_s", s.elapsed_p50_s.to_string()),
            ("elapsed_p90_s", s.elapsed_p90_s.to_string()),
            ("elapsed_p99_s", s.elapsed_p99_s.to_string()),
        ]));
    }
    for d in &r.sla_days {
        out.push(csv_row(&[
            ("section", "sla_day".into()),
            ("market", d.market.clone()),
            ("model_version", d.model_version.to_string()),
            ("sla", d.sla.clone()),
            ("handoff", d.handoff.clone()),
            ("day", d.day.clone()),
            ("met", d.met.to_string()),
            ("missed", d.missed.to_string()),
            ("cancelled", d.cancelled.to_string()),
            ("compliance", opt(d.compliance)),
        ]));
    }
    for t in &r.transitions {
        out.push(csv_row(&[
            ("section", "transition".into()),
            ("market", t.market.clone()),
            ("model_version", t.model_version.to_string()),
            ("region", t.region.clone()),
            ("from", t.from.clone()),
            ("to", t.to.clone()),
            ("count", t.count.to_string()),
        ]));
    }
    for t in &r.escalations {
        out.push(csv_row(&[
            ("section", "escalations".into()),
            ("team", t.team.clone()),
            ("open", t.open.to_string()),
            ("breaches", t.breaches.to_string()),
            ("under_1h", t.under_1h.to_string()),
            ("from_1h_to_4h", t.from_1h_to_4h.to_string()),
            ("from_4h_to_24h", t.from_4h_to_24h.to_string()),
            ("over_24h", t.over_24h.to_string()),
            ("oldest_age_s", t.oldest_age_s.to_string()),
        ]));
    }
    out
}

pub async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let req = request(&args)?;
    let mut client =
        ReportsClient::with_interceptor(args.target.channel().await?, args.target.bearer()?);
    let r = client
        .get_report(req)
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        say!("{}", to_json(&r));
        return Ok(());
    }
    if args.csv {
        for line in to_csv(&r) {
            say!("{line}");
        }
        return Ok(());
    }
    say!(
        "Report at {}; SLA window {} to {} ({} days, UTC)",
        ts(&r.generated_at),
        r.first_day,
        r.last_day,
        r.days
    );
    if !r.counted {
        say!("(this node's store keeps no counters: only open escalations are known)");
    }
    for (title, header, rows) in tables(&r) {
        say!("");
        say!("{title}");
        if rows.is_empty() {
            say!("  (none)");
            continue;
        }
        for line in table(&header, &rows) {
            say!("  {line}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_fill_their_own_columns_and_quote_what_they_must() {
        let r = pb::Report {
            slas: vec![pb::SlaReport {
                market: "US".into(),
                sla: "first_reply".into(),
                handoff: "a, \"b\"".into(),
                met: 3,
                compliance: Some(0.75),
                ..Default::default()
            }],
            ..Default::default()
        };
        let lines = to_csv(&r);
        assert_eq!(lines[0].split(',').count(), CSV_COLUMNS.len());
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("sla,US,0,,,,,first_reply,\"a, \"\"b\"\"\",,,"));
        assert!(lines[1].contains(",0.750000,"), "{}", lines[1]);
    }

    #[test]
    fn tables_align_numbers_right() {
        let t = table(
            &["name", "n"],
            &[
                vec!["a".into(), "1".into()],
                vec!["bbb".into(), "100".into()],
            ],
        );
        assert_eq!(t, ["name    n", "a       1", "bbb   100"]);
    }
}
