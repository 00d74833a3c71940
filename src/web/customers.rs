//! `/customers?...`: customers matching filters, a page at a time
//! (`ListCustomers`, its opaque page token in `page`); every number of the
//! overview links here with its filter. `/customers/{id}`: the support
//! view of one customer (`GetCustomer`, and `Authorize` for what each
//! team may do now), as the caller's rules allow: a team sees no timeline
//! (the API's rule) and only its own escalations.

use std::collections::BTreeSet;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use maud::{Markup, html};

use super::App;
use super::charts;
use super::layout::{
    WebError, customer_link, duration_us, list_link, micros, page, severity, span, when,
};
use crate::api::LifecycleService;
use crate::api::pb;
use crate::api::pb::lifecycle_server::Lifecycle;
use crate::engine::model::parse_duration;

/// The filters of a list, as the overview's links and the form spell
/// them; empty means no filter.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct ListQuery {
    pub market: String,
    pub version: String,
    /// `REGION=STATE`.
    pub state: String,
    /// `SLA=STATUS` (running, paused or breached).
    pub sla: String,
    /// A duration: `30m`, `2h`, `1d`.
    pub older_than: String,
    pub owner: String,
    /// The page token of the previous page's "next" link.
    pub page: String,
    /// `1`: oldest first.
    pub oldest: String,
}

impl ListQuery {
    /// The `ListCustomers` request, or 400 naming the malformed filter.
    fn request(&self) -> Result<pb::ListCustomersRequest, WebError> {
        let bad = |m: String| WebError::new(StatusCode::BAD_REQUEST, m);
        let pair = |name: &str, text: &str, want: &str| -> Result<(String, String), WebError> {
            if text.is_empty() {
                return Ok(Default::default());
            }
            match text.split_once('=') {
                Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_owned(), b.to_owned())),
                _ => Err(bad(format!("{name} takes {want}, not `{text}`"))),
            }
        };
        let (region, state) = pair("state", &self.state, "REGION=STATE")?;
        let (sla, sla_status) = pair("sla", &self.sla, "SLA=STATUS (running, paused or breached)")?;
        let model_version = match self.version.trim() {
            "" => 0,
            v => v
                .parse()
                .map_err(|_| bad(format!("version `{v}` is not a version number")))?,
        };
        let older_than = match self.older_than.trim() {
            "" => None,
            d => {
                let us = parse_duration(d)
                    .map_err(|e| bad(format!("older_than: {e}")))?
                    .0;
                Some(prost_types::Duration {
                    seconds: us.div_euclid(1_000_000),
                    nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
                })
            }
        };
        Ok(pb::ListCustomersRequest {
            market: self.market.trim().to_owned(),
            model_version,
            region,
            state,
            sla,
            sla_status,
            older_than,
            owner: self.owner.trim().to_owned(),
            limit: PAGE,
            oldest_first: self.oldest == "1",
            page_token: self.page.clone(),
        })
    }

    fn pairs(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("market", &self.market),
            ("version", &self.version),
            ("state", &self.state),
            ("sla", &self.sla),
            ("older_than", &self.older_than),
            ("owner", &self.owner),
            ("oldest", &self.oldest),
        ]
    }

    /// What the list shows, in words.
    fn title(&self) -> String {
        let filters: Vec<String> = self
            .pairs()
            .into_iter()
            .filter(|(k, v)| !v.is_empty() && *k != "oldest")
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if filters.is_empty() {
            "Customers".to_owned()
        } else {
            format!("Customers: {}", filters.join(", "))
        }
    }
}

/// Rows per page.
const PAGE: u32 = 50;

pub async fn list(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Markup, WebError> {
    let dashboard = app.dashboard()?;
    let caller = dashboard.caller(&headers, &uri.to_string())?;
    let request = q.request()?;
    let service = LifecycleService {
        node: dashboard.node.clone(),
        routing: dashboard.routing.clone(),
    };
    let result = service
        .list_customers(caller.request(request))
        .await
        .map_err(WebError::from_status)?
        .into_inner();
    let mut next = q.clone();
    next.page = result.next_page_token.clone();
    let next_pairs = next.pairs();
    let mut pairs = next_pairs.clone();
    pairs.push(("page", &next.page));
    let next_link = list_link(&pairs);
    let first_link = list_link(&next_pairs);
    let body = html! {
        form.filters method="get" action="/customers" {
            label { "market " input name="market" value=(q.market) size="6"; }
            label { "version " input name="version" value=(q.version) size="3"; }
            label { "state " input name="state" value=(q.state) placeholder="REGION=STATE"; }
            label { "SLA " input name="sla" value=(q.sla) placeholder="SLA=breached"; }
            label { "older than " input name="older_than" value=(q.older_than) size="5" placeholder="2h"; }
            label { "owner " input name="owner" value=(q.owner) size="10"; }
            label { input type="checkbox" name="oldest" value="1" checked[q.oldest == "1"]; " oldest first" }
            button type="submit" { "Filter" }
        }
        p.count {
            (result.customers.len()) " customer(s) on this page"
            @if !q.page.is_empty() { " · " a href=(first_link) { "first page" } }
            @if !result.next_page_token.is_empty() { " · " a.next href=(next_link) { "next page" } }
        }
        @if result.customers.is_empty() {
            p.empty { "No customer matches." }
        } @else {
            table.list {
                thead { tr { th { "customer" } th { "market" } th { "version" } th { "states" } th { "owners" } th { "open SLAs" } th { "open escalations" } th { "since" } } }
                tbody {
                    @for c in &result.customers {
                        tr {
                            td { a.customer href=(customer_link(&c.customer_id)) { (c.customer_id) } }
                            td { (c.market) }
                            td { (c.model_version) }
                            td { @for (region, state) in sorted(&c.states) { span.state { (region) "=" (state) } " " } }
                            td { (c.owners.join(", ")) }
                            td {
                                @for s in &c.open_slas {
                                    @let status = if s.breached { "breached" } else if s.paused { "paused" } else { "running" };
                                    span class={ "sla " (status) } { (s.sla) " " (status) } " "
                                }
                            }
                            td.num { (c.open_escalations) }
                            td { (when(c.since.as_ref())) }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&q.title(), Some(&caller.principal), body))
}

fn sorted(states: &std::collections::HashMap<String, String>) -> Vec<(&String, &String)> {
    let mut v: Vec<_> = states.iter().collect();
    v.sort();
    v
}

/// Most timeline entries on a customer's page.
const TIMELINE: u32 = 100;

pub async fn one(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let dashboard = app.dashboard()?;
    let caller = dashboard.caller(&headers, &uri.to_string())?;
    let service = LifecycleService {
        node: dashboard.node.clone(),
        routing: dashboard.routing.clone(),
    };
    let view = service
        .get_customer(caller.request(pb::GetCustomerRequest {
            customer_id: id.clone(),
            timeline_limit: TIMELINE,
        }))
        .await
        .map_err(WebError::from_status)?
        .into_inner();
    let now = dashboard.node.now().0;
    // What each team may do now: every (team, action) that a current
    // state allows somewhere, asked of Authorize (which also applies the
    // other regions' vetoes and the caller's rule: a team asks as itself).
    let model = dashboard.node.versions().model(view.model_version);
    let mut candidates = BTreeSet::new();
    for r in &view.regions {
        let Some(region) = model.spec.regions.iter().find(|x| x.name == r.region) else {
            continue;
        };
        let Some(state) = region.states.iter().find(|s| s.name == r.state) else {
            continue;
        };
        for (team, actions) in &state.allow {
            let team = model.team_name(*team).to_owned();
            if caller.own_team().is_some_and(|own| own != team) {
                continue;
            }
            for a in actions {
                candidates.insert((team.clone(), a.clone()));
            }
        }
    }
    let mut decisions = Vec::with_capacity(candidates.len());
    let asks_decisions = !matches!(caller.principal, crate::auth::Principal::Source(_));
    if asks_decisions {
        for (team, action) in candidates {
            let d = service
                .authorize(caller.request(pb::AuthorizeRequest {
                    customer_id: id.clone(),
                    team: team.clone(),
                    action: action.clone(),
                }))
                .await
                .map_err(WebError::from_status)?
                .into_inner();
            decisions.push((team, action, d));
        }
    }
    let escalations: Vec<&pb::OpenEscalation> = view
        .escalations
        .iter()
        .filter(|e| caller.own_team().is_none_or(|own| own == e.team))
        .collect();
    let body = html! {
        p.summary {
            "market " b { (view.market) } " · model version " b { (view.model_version) }
            " · owner " b { (view.owner) }
        }
        section {
            h2 { "States and owners" }
            table {
                thead { tr { th { "region" } th { "state" } th { "owner" } th { "since" } } }
                tbody {
                    @for r in &view.regions {
                        tr {
                            td { (r.region) }
                            td { a href=(list_link(&[("state", &format!("{}={}", r.region, r.state))])) { (r.state) } }
                            td { (r.owner) }
                            td { (when(r.since.as_ref())) }
                        }
                    }
                }
            }
        }
        section id="escalations" {
            h2 { "Open escalations" }
            @if escalations.is_empty() {
                p.empty { "None open" @if let Some(t) = caller.own_team() { " for team " (t) } "." }
            } @else {
                table.escalations {
                    thead { tr { th { "escalation" } th { "SLA" } th { "tier" } th { "team" } th { "severity" } th { "fired" } th { "acknowledged" } } }
                    tbody {
                        @for e in &escalations {
                            @let kind = if e.kind == pb::EscalationKind::Breached as i32 { "breached" } else { "tier reached" };
                            tr class={ "escalation " (severity(e.severity)) } {
                                td { code { (e.escalation_id) } " " span class={ "kind " (kind) } { (kind) } }
                                td { (e.sla) }
                                td.num { (e.tier) @if e.repeat > 0 { " (repeat " (e.repeat) ")" } }
                                td { (e.team) }
                                td { (severity(e.severity)) }
                                td { (when(e.fired_at.as_ref())) }
                                td { @if e.acknowledged { "yes" } @else { "no" } }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Open SLAs" }
            @if view.slas.is_empty() {
                p.empty { "No SLA is running." }
            } @else {
                table.slas {
                    thead { tr { th { "SLA" } th { "hand-off" } th { "owner" } th { "started" } th { "time used" } th { "time left" } th { "deadline" } th { "next tier" } } }
                    tbody {
                        @for s in &view.slas {
                            @let used = duration_us(s.elapsed.as_ref());
                            @let left = duration_us(s.remaining.as_ref());
                            tr class=(if s.breached { "breached" } else { "" }) {
                                td { (s.sla)
                                    @if s.breached { " " span.sla.breached { "breached" } }
                                    @if s.paused { " " span.sla.paused { "paused" } } }
                                td { (s.handoff) }
                                td { (s.owner) }
                                td { (when(s.started_at.as_ref())) }
                                td { (charts::used_bar(used, left)) " " (span(used)) }
                                td.num { @if left < 0 { "over by " (span(-left)) } @else { (span(left)) } }
                                td { (when(s.deadline.as_ref())) }
                                td {
                                    @if let Some(t) = &s.next_tier {
                                        "tier " (t.tier) " → " (t.team) " (" (severity(t.severity)) ")"
                                        @if let Some(at) = &t.at {
                                            @let due = micros(at) - now;
                                            @if due > 0 { " in " (span(due)) } @else { ", due now" }
                                        }
                                    } @else { "—" }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "What each team may do now" }
            @if !asks_decisions {
                p.empty { "Decisions are for teams and operators." }
            } @else if decisions.is_empty() {
                p.empty { "No action is allowed in the customer's current states." }
            } @else {
                table.decisions {
                    thead { tr { th { "team" } th { "action" } th { "now" } } }
                    tbody {
                        @for (team, action, d) in &decisions {
                            tr class=(if d.allowed { "allowed" } else { "denied" }) {
                                td { (team) }
                                td { (action) }
                                td { @if d.allowed { "allowed" } @else { "not now: " (d.reason) } }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Proofs" }
            table.proofs {
                thead { tr { th { "proof" } th { "holds" } th { "established by" } } }
                tbody {
                    @for p in &view.proofs {
                        tr {
                            td { (p.proof) }
                            td { @if p.holds { "yes" } @else { "no" } }
                            td {
                                @if let Some(e) = &p.established_by {
                                    code { (e.source) "." (e.r#type) } " event " code { (e.id) } " at " (when(e.occurred_at.as_ref()))
                                } @else { "—" }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Timeline" }
            @if view.timeline_withheld {
                p.empty { "The timeline is for operators; " (caller.principal.to_string()) " sees the view without it." }
            } @else {
                ol.timeline {
                    @for t in &view.timeline {
                        li {
                            span.at { (when(t.at.as_ref())) } " "
                            span.what { (t.summary) }
                            @if !t.reason.is_empty() { " — " span.reason { (t.reason) } }
                            @if !t.sla_outcome.is_empty() { " (" (t.sla_outcome) ", " (span(duration_us(t.elapsed.as_ref()))) ")" }
                        }
                    }
                }
            }
        }
    };
    Ok(page(
        &format!("Customer {}", view.customer_id),
        Some(&caller.principal),
        body,
    ))
}
