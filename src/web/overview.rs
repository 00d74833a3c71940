//! `/`: the overview, from one exact report (`GetReport`, the same call
//! as `handoff report`; every principal may read it): customers per state
//! of each region as a funnel, SLA compliance per hand-off and market with
//! a line per market over the window (30 UTC days), and the escalations
//! open by team and age. Every number links to the list behind it: a
//! state's bar to its customers, "breached" to the customers whose SLA is
//! breached now, a team to its open escalations. `?market=` narrows it
//! all to one market.

use std::collections::BTreeMap;

use axum::extract::{OriginalUri, Query, State};
use axum::http::HeaderMap;
use maud::{Markup, html};

use super::App;
use super::charts::{Bar, Series, bars, percent_lines};
use super::layout::{WebError, enc, list_link, page, span};
use crate::api::pb::reports_server::Reports;
use crate::api::{ReportsService, pb};
use crate::engine::model::Model;

/// Days of SLA history on the overview.
const DAYS: u32 = 30;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct OverviewQuery {
    pub market: String,
}

/// Customers in each state of `region`, in the model's order, summed over
/// the report's markets and versions.
pub fn funnel(report: &pb::Report, model: &Model, region: &str) -> Vec<(String, u64)> {
    let Some(r) = model.spec.regions.iter().find(|r| r.name == region) else {
        return Vec::new();
    };
    r.states
        .iter()
        .map(|s| {
            let n = report
                .states
                .iter()
                .filter(|c| c.region == region && c.state == s.name)
                .map(|c| c.customers)
                .sum();
            (s.name.clone(), n)
        })
        .collect()
}

/// One line of the SLA table: an SLA in one market (`market` empty: all
/// of them), summed over versions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlaRow {
    pub sla: String,
    pub handoff: String,
    pub market: String,
    pub running: u64,
    pub paused: u64,
    pub breached: u64,
    pub met: u64,
    pub missed: u64,
}

impl SlaRow {
    /// Met over met and missed, in percent; `None` when none ended so.
    pub fn compliance(&self) -> Option<f64> {
        let judged = self.met + self.missed;
        (judged > 0).then(|| self.met as f64 * 100.0 / judged as f64)
    }
}

/// Per SLA (in the model's order): the row of all markets, then one per
/// market that has any.
pub fn sla_rows(report: &pb::Report, model: &Model) -> Vec<SlaRow> {
    let mut rows = Vec::new();
    for sla in &model.spec.slas {
        let mut total = SlaRow {
            sla: sla.name.clone(),
            handoff: sla.handoff.clone(),
            ..SlaRow::default()
        };
        let mut by_market: BTreeMap<&str, SlaRow> = BTreeMap::new();
        for r in report.slas.iter().filter(|r| r.sla == sla.name) {
            let m = by_market.entry(&r.market).or_insert_with(|| SlaRow {
                sla: sla.name.clone(),
                handoff: sla.handoff.clone(),
                market: r.market.clone(),
                ..SlaRow::default()
            });
            for row in [&mut total, m] {
                row.running += r.running;
                row.paused += r.paused;
                row.breached += r.breached_open;
                row.met += r.met;
                row.missed += r.missed;
            }
        }
        rows.push(total);
        rows.extend(by_market.into_values());
    }
    rows
}

/// The window's days, `YYYY-MM-DD`, from the report's first day.
fn days(report: &pb::Report) -> Vec<String> {
    let Ok(first) = report.first_day.parse::<jiff::civil::Date>() else {
        return Vec::new();
    };
    (0..i64::from(report.days))
        .filter_map(|i| first.checked_add(jiff::Span::new().days(i)).ok())
        .map(|d| d.to_string())
        .collect()
}

/// Daily compliance of `sla`: a series for all markets, then one per
/// market with instances that ended in the window.
pub fn daily(report: &pb::Report, sla: &str, dates: &[String]) -> Vec<Series> {
    let mut counts: BTreeMap<(String, &str), (u64, u64)> = BTreeMap::new();
    for d in report.sla_days.iter().filter(|d| d.sla == sla) {
        for market in ["", d.market.as_str()] {
            let c = counts
                .entry((market.to_owned(), d.day.as_str()))
                .or_default();
            c.0 += d.met;
            c.1 += d.missed;
        }
    }
    let mut markets: Vec<String> = counts.keys().map(|(m, _)| m.clone()).collect();
    markets.dedup();
    markets
        .into_iter()
        .map(|market| Series {
            points: dates
                .iter()
                .map(|day| {
                    counts
                        .get(&(market.clone(), day.as_str()))
                        .filter(|(met, missed)| met + missed > 0)
                        .map(|(met, missed)| *met as f64 * 100.0 / (met + missed) as f64)
                })
                .collect(),
            name: if market.is_empty() {
                "all markets".to_owned()
            } else {
                market
            },
        })
        .collect()
}

fn percent(p: Option<f64>) -> String {
    p.map_or_else(|| "—".to_owned(), |p| format!("{p:.1}%"))
}

pub async fn page_handler(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Query(q): Query<OverviewQuery>,
) -> Result<Markup, WebError> {
    let dashboard = app.dashboard()?;
    let caller = dashboard.caller(&headers, &uri.to_string())?;
    let model = dashboard.node.model();
    let reports = ReportsService {
        node: dashboard.node.clone(),
    };
    let report = reports
        .get_report(caller.request(pb::GetReportRequest {
            market: q.market.clone(),
            days: DAYS,
            ..Default::default()
        }))
        .await
        .map_err(WebError::from_status)?
        .into_inner();
    let market = q.market.as_str();
    let dates = days(&report);
    let slas = sla_rows(&report, &model);
    let team_bars: Vec<Bar> = report
        .escalations
        .iter()
        .filter(|t| t.open > 0)
        .map(|t| Bar {
            label: t.team.clone(),
            value: t.open,
            href: format!("/escalations?team={}", enc(&t.team)),
        })
        .collect();
    let open: u64 = report.escalations.iter().map(|t| t.open).sum();
    let body = html! {
        form.filters method="get" action="/" {
            label { "market "
                select name="market" {
                    option value="" selected[market.is_empty()] { "all" }
                    @for m in &model.spec.markets {
                        option value=(m.name) selected[market == m.name] { (m.name) }
                    }
                }
            }
            button type="submit" { "Show" }
            span.hint { "SLA compliance over " (report.first_day) " to " (report.last_day) " (UTC)" }
        }
        @if !report.counted {
            p.error { "This store keeps no report counters: only the open escalations are known." }
        }
        div.grid {
            section id="funnel" {
                h2 { "Customers per state" }
                @for region in &model.spec.regions {
                    @let steps = funnel(&report, &model, &region.name);
                    @let total: u64 = steps.iter().map(|(_, n)| n).sum();
                    h3 { (region.name) " " span.hint { (total) " customers" } }
                    (bars("funnel", &steps.iter().map(|(state, n)| Bar {
                        label: state.clone(),
                        value: *n,
                        href: list_link(&[("state", &format!("{}={}", region.name, state)), ("market", market)]),
                    }).collect::<Vec<_>>()))
                }
            }
            section id="open-escalations" {
                h2 { "Escalations open by team and age (" (open) ")" }
                @if open == 0 {
                    p.empty { "No open escalation." }
                } @else {
                    (bars("bad", &team_bars))
                    table {
                        thead { tr { th { "team" } th.num { "open" } th.num title="breaches" { "breach" }
                            th.num { "<1h" } th.num { "1–4h" } th.num { "4–24h" } th.num { ">1d" } th.num title="the oldest one's age, rounded up to 10 minutes" { "oldest" } } }
                        tbody {
                            @for t in report.escalations.iter().filter(|t| t.open > 0) {
                                tr {
                                    td { a href=(format!("/escalations?team={}", enc(&t.team))) { (t.team) } }
                                    td.num { (t.open) }
                                    td.num { (t.breaches) }
                                    td.num { (t.under_1h) }
                                    td.num { (t.from_1h_to_4h) }
                                    td.num { (t.from_4h_to_24h) }
                                    td.num { (t.over_24h) }
                                    td.num { (span(t.oldest_age_s.saturating_mul(1_000_000))) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section id="slas" {
            h2 { "SLA compliance per hand-off and market" }
            table.slas {
                thead { tr { th { "hand-off" } th { "SLA" } th { "market" } th.num { "running" } th.num { "paused" }
                    th.num { "breached now" } th.num { "met" } th.num { "missed" } th.num { "compliance (" (DAYS) " days)" } } }
                tbody {
                    @for r in &slas {
                        @let m = if r.market.is_empty() { market } else { r.market.as_str() };
                        tr class=(if r.market.is_empty() { "total" } else { "" }) {
                            td { @if r.market.is_empty() { b { (r.handoff) } } }
                            td { @if r.market.is_empty() { (r.sla) } }
                            td { @if r.market.is_empty() { "all" } @else { (r.market) } }
                            td.num { a href=(list_link(&[("sla", &format!("{}=running", r.sla)), ("market", m)])) { (r.running) } }
                            td.num { a href=(list_link(&[("sla", &format!("{}=paused", r.sla)), ("market", m)])) { (r.paused) } }
                            td.num {
                                a.breached-link data-sla=(r.sla) data-market=(r.market) title="breached"
                                    href=(list_link(&[("sla", &format!("{}=breached", r.sla)), ("market", m)])) {
                                    (r.breached) " breached"
                                }
                            }
                            td.num { (r.met) }
                            td.num { (r.missed) }
                            td.num { (percent(r.compliance())) }
                        }
                    }
                }
            }
            div.grid {
                @for sla in &model.spec.slas {
                    @let series = daily(&report, &sla.name, &dates);
                    div {
                        h3 { (sla.handoff) " " span.hint { (sla.name) ", met of met and missed, per day" } }
                        @if series.is_empty() {
                            p.empty { "No instance was met or missed in the window." }
                        } @else {
                            (percent_lines(&dates, &series))
                        }
                    }
                }
            }
        }
    };
    Ok(page("Overview", Some(&caller.principal), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        crate::engine::model::load("fast.toml", include_str!("../../tests/models/fast.toml"))
            .expect("loads")
    }

    fn sla(market: &str, version: u32, breached: u64, met: u64, missed: u64) -> pb::SlaReport {
        pb::SlaReport {
            market: market.into(),
            model_version: version,
            sla: "access_after_payment".into(),
            handoff: "billing->provisioning".into(),
            breached_open: breached,
            met,
            missed,
            ..Default::default()
        }
    }

    #[test]
    fn the_funnel_follows_the_models_states() {
        let report = pb::Report {
            states: vec![
                pb::StateCount {
                    market: "US".into(),
                    model_version: 1,
                    region: "lifecycle".into(),
                    state: "paid".into(),
                    customers: 3,
                },
                pb::StateCount {
                    market: "DE".into(),
                    model_version: 1,
                    region: "lifecycle".into(),
                    state: "paid".into(),
                    customers: 2,
                },
            ],
            ..Default::default()
        };
        let f = funnel(&report, &model(), "lifecycle");
        assert_eq!(f[0], ("lead".to_owned(), 0));
        assert!(f.contains(&("paid".to_owned(), 5)), "{f:?}");
        assert!(funnel(&report, &model(), "nowhere").is_empty());
    }

    #[test]
    fn sla_rows_sum_versions_per_market_under_a_total() {
        let report = pb::Report {
            slas: vec![
                sla("US", 1, 2, 3, 1),
                sla("US", 2, 1, 1, 0),
                sla("DE", 1, 0, 0, 0),
            ],
            ..Default::default()
        };
        let rows: Vec<SlaRow> = sla_rows(&report, &model())
            .into_iter()
            .filter(|r| r.sla == "access_after_payment")
            .collect();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(
            (
                rows[0].market.as_str(),
                rows[0].breached,
                rows[0].met,
                rows[0].missed
            ),
            ("", 3, 4, 1)
        );
        assert_eq!(rows[0].compliance(), Some(80.0));
        assert_eq!(
            (rows[1].market.as_str(), rows[1].compliance()),
            ("DE", None)
        );
        assert_eq!((rows[2].market.as_str(), rows[2].breached), ("US", 3));
    }

    #[test]
    fn daily_compliance_has_a_line_per_market_and_gaps_without_data() {
        let day = |market: &str, date: &str, met: u64, missed: u64| pb::SlaDay {
            market: market.into(),
            sla: "access_after_payment".into(),
            day: date.into(),
            met,
            missed,
            ..Default::default()
        };
        let report = pb::Report {
            first_day: "2026-11-01".into(),
            days: 3,
            sla_days: vec![
                day("US", "2026-11-01", 1, 1),
                day("DE", "2026-11-01", 1, 0),
                day("US", "2026-11-03", 0, 2),
            ],
            ..Default::default()
        };
        let dates = days(&report);
        assert_eq!(dates, ["2026-11-01", "2026-11-02", "2026-11-03"]);
        let series = daily(&report, "access_after_payment", &dates);
        let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["all markets", "DE", "US"]);
        assert_eq!(series[0].points[0].map(|p| p.round()), Some(67.0));
        assert_eq!(series[0].points[1], None);
        assert_eq!(series[2].points, vec![Some(50.0), None, Some(0.0)]);
        assert!(daily(&report, "first_reply", &dates).is_empty());
    }
}
