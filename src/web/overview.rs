//! `/`: the overview. Customers per state of each region as a funnel,
//! SLA compliance per hand-off and market over the last 30 days, and the
//! escalations open by team and age; every number links to the list of
//! the customers (or escalations) behind it.
//!
//! Open escalations come from `ListOpen` (the open-escalation index, as
//! the caller's rule allows: a team sees its own). Until the node keeps
//! per-state report counters, the funnel counts the customers created per
//! market and version (`version_stats`' exact counters, no scan of
//! customers), and each state links to its customers without a count.

use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use maud::{Markup, html};

use super::App;
use super::charts::{Bar, bars};
use super::layout::{WebError, list_link, micros, page};
use crate::api::pb::escalations_server::Escalations;
use crate::api::{EscalationsService, pb};

/// Age buckets of open escalations: upper bound in seconds, label.
const AGES: &[(i64, &str)] = &[
    (3_600, "< 1h"),
    (4 * 3_600, "1–4h"),
    (24 * 3_600, "4–24h"),
    (i64::MAX, "> 1 day"),
];

/// Open escalations per team, and per team and age bucket.
pub fn by_team_and_age(
    open: &[pb::OpenEscalation],
    teams: &[String],
    now_us: i64,
) -> Vec<(String, Vec<u64>)> {
    let mut rows: Vec<(String, Vec<u64>)> = teams
        .iter()
        .map(|t| (t.clone(), vec![0; AGES.len()]))
        .collect();
    for e in open {
        let age_s = e
            .fired_at
            .as_ref()
            .map_or(0, |t| (now_us - micros(t)).max(0) / 1_000_000);
        let bucket = AGES
            .iter()
            .position(|(upper, _)| age_s < *upper)
            .unwrap_or(AGES.len() - 1);
        match rows.iter_mut().find(|(t, _)| *t == e.team) {
            Some((_, counts)) => counts[bucket] += 1,
            None => {
                let mut counts = vec![0; AGES.len()];
                counts[bucket] = 1;
                rows.push((e.team.clone(), counts));
            }
        }
    }
    rows.retain(|(_, c)| c.iter().any(|n| *n > 0));
    rows
}

pub async fn page_handler(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Markup, WebError> {
    let dashboard = app.dashboard()?;
    let caller = dashboard.caller(&headers, &uri.to_string())?;
    let model = dashboard.node.model();
    let escalations = EscalationsService {
        node: dashboard.node.clone(),
        routing: dashboard.routing.clone(),
    };
    let open = escalations
        .list_open(caller.request(pb::ListOpenRequest::default()))
        .await
        .map_err(WebError::from_status)?
        .into_inner()
        .escalations;
    let node = dashboard.node.clone();
    let stats = tokio::task::spawn_blocking(move || node.version_stats())
        .await
        .map_err(|_| {
            WebError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the counters could not be read; reload",
            )
        })?
        .map_err(|e| WebError::from_status(e.into()))?;
    let created: Vec<Bar> = stats
        .rows
        .iter()
        .filter(|r| r.customers > 0)
        .map(|r| Bar {
            label: format!("{} v{}", r.market, r.version),
            value: r.customers,
            href: list_link(&[("market", &r.market), ("version", &r.version.to_string())]),
        })
        .collect();
    let now = dashboard.node.now().0;
    let by_team = by_team_and_age(&open, &model.spec.teams, now);
    let team_bars: Vec<Bar> = by_team
        .iter()
        .map(|(team, counts)| Bar {
            label: team.clone(),
            value: counts.iter().sum(),
            href: format!("/escalations?team={}", super::layout::enc(team)),
        })
        .collect();
    let body = html! {
        div.grid {
            section id="funnel" {
                h2 { "Customers" }
                @if !stats.counted {
                    p.empty { "This store keeps no counters." }
                }
                (bars("funnel", &created))
                @for region in &model.spec.regions {
                    h3 { (region.name) }
                    p {
                        @for s in &region.states {
                            a.state href=(list_link(&[("state", &format!("{}={}", region.name, s.name))])) { (s.name) } " "
                        }
                    }
                }
            }
            section id="open-escalations" {
                h2 { "Escalations open by team and age (" (open.len()) ")" }
                @if open.is_empty() {
                    p.empty { "No open escalation." }
                } @else {
                    (bars("bad", &team_bars))
                    table {
                        thead { tr { th { "team" } @for (_, label) in AGES { th.num { (label) } } } }
                        tbody {
                            @for (team, counts) in &by_team {
                                tr {
                                    td { a href=(format!("/escalations?team={}", super::layout::enc(team))) { (team) } }
                                    @for n in counts { td.num { (n) } }
                                }
                            }
                        }
                    }
                }
            }
            section id="breached" {
                h2 { "Breached SLAs" }
                table {
                    thead { tr { th { "SLA" } th { "hand-off" } th { "customers" } } }
                    tbody {
                        @for sla in &model.spec.slas {
                            tr {
                                td { (sla.name) }
                                td { (sla.handoff) }
                                td { a.breached-link data-sla=(sla.name) href=(list_link(&[("sla", &format!("{}=breached", sla.name))])) { "breached" } }
                            }
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

    fn open(team: &str, fired_s: i64) -> pb::OpenEscalation {
        pb::OpenEscalation {
            team: team.into(),
            fired_at: Some(prost_types::Timestamp {
                seconds: fired_s,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn escalations_are_counted_by_team_and_age() {
        let now = 100_000 * 1_000_000;
        let rows = by_team_and_age(
            &[
                open("billing", 100_000 - 60),
                open("billing", 100_000 - 2 * 3600),
                open("support", 100_000 - 2 * 86_400),
                open("unknown", 100_000),
            ],
            &["billing".into(), "sales".into(), "support".into()],
            now,
        );
        assert_eq!(
            rows,
            vec![
                ("billing".to_owned(), vec![1, 1, 0, 0]),
                ("support".to_owned(), vec![0, 0, 0, 1]),
                ("unknown".to_owned(), vec![1, 0, 0, 0]),
            ]
        );
    }
}
