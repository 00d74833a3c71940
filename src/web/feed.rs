//! `/escalations`: the open escalations (`ListOpen`) and the live feed,
//! which the page's script follows at `/escalations/stream`: server-sent
//! events read from the same log as gRPC `Subscribe`, by the same service
//! method. Each event's SSE id is its cursor, so the browser's
//! `EventSource` resumes after the last one it saw when the connection
//! drops (it sends `Last-Event-ID`, which wins over the `cursor`
//! parameter); the first event (`start`) carries the position the stream
//! starts at, so a reconnect before any escalation loses nothing either.
//! A team sees its own escalations only (the `Subscribe` and `ListOpen`
//! rules); an operator may pick a team.

use std::convert::Infallible;

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use maud::{Markup, html};
use tokio_stream::StreamExt;

use super::App;
use super::layout::{WebError, customer_link, list_link, page, severity, when};
use crate::api::pb::escalations_server::Escalations;
use crate::api::{EscalationsService, START_CURSOR_HEADER, pb};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct FeedQuery {
    /// Only this team's escalations (a team's own are the default and
    /// the only ones it may see).
    pub team: String,
    /// Resume after this cursor (`earliest`: from the oldest retained;
    /// empty: from now).
    pub cursor: String,
}

fn kind_word(kind: i32) -> &'static str {
    match pb::EscalationKind::try_from(kind).unwrap_or(pb::EscalationKind::Unspecified) {
        pb::EscalationKind::Unspecified => "",
        pb::EscalationKind::TierReached => "tier reached",
        pb::EscalationKind::Breached => "breached",
        pb::EscalationKind::Resolved => "resolved",
    }
}

pub async fn feed_page(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Result<Markup, WebError> {
    let dashboard = app.dashboard()?;
    let caller = dashboard.caller(&headers, &uri.to_string())?;
    let service = EscalationsService {
        node: dashboard.node.clone(),
        routing: dashboard.routing.clone(),
    };
    let open = service
        .list_open(caller.request(pb::ListOpenRequest {
            team: q.team.clone(),
        }))
        .await
        .map_err(WebError::from_status)?
        .into_inner()
        .escalations;
    let stream = format!(
        "/escalations/stream?team={}&cursor={}",
        super::layout::enc(&q.team),
        super::layout::enc(&q.cursor)
    );
    let team = caller.own_team().map(str::to_owned).unwrap_or(q.team);
    let body = html! {
        form.filters method="get" action="/escalations" {
            label { "team " input name="team" value=(team) size="12"; }
            button type="submit" { "Show" }
        }
        section {
            h2 { "Live" span.status id="feed-status" { "connecting" } }
            ol.feed id="feed" data-stream=(stream) {}
            p.hint { "New escalations appear here as they fire; after a lost connection the feed resumes from the last one shown." }
        }
        section {
            h2 { "Open now (" (open.len()) ")" }
            @if open.is_empty() {
                p.empty { "No open escalation." }
            } @else {
                table.escalations {
                    thead { tr { th { "fired" } th { "customer" } th { "market" } th { "SLA" } th { "tier" } th { "team" } th { "severity" } th { "acknowledged" } } }
                    tbody {
                        @for e in &open {
                            tr class={ "escalation " (severity(e.severity)) } {
                                td { (when(e.fired_at.as_ref())) }
                                td { a.customer href=(customer_link(&e.customer_id)) { (e.customer_id) } }
                                td { (e.market) }
                                td { a href=(list_link(&[("sla", &format!("{}=breached", e.sla))])) { (e.sla) } }
                                td.num { (e.tier) " " span class={ "kind " (kind_word(e.kind)) } { (kind_word(e.kind)) } }
                                td { (e.team) }
                                td { (severity(e.severity)) }
                                td { @if e.acknowledged { "yes" } @else { "no" } }
                            }
                        }
                    }
                }
            }
        }
        script src="/assets/feed.js" {}
    };
    Ok(page("Escalations", Some(&caller.principal), body))
}

/// One escalation of the feed, as the list item the script inserts.
pub fn item(e: &pb::EscalationEvent) -> Markup {
    let kind = kind_word(e.kind);
    html! {
        span.at { (when(e.fired_at.as_ref())) } " "
        span class={ "kind " (kind) } { (kind) } " "
        a.customer href=(customer_link(&e.customer_id)) { (e.customer_id) } " "
        span.sla { (e.sla) } " tier " (e.tier) " → " b { (e.team) }
        " (" (severity(e.severity)) ", " (e.market) ")"
        @if e.skipped > 0 { " " span.gap { (e.skipped) " older escalation(s) were pruned before this one" } }
    }
}

/// The server-sent events of the feed.
pub async fn stream(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let dashboard = app.dashboard()?;
    let caller = dashboard.caller(&headers, &uri.to_string())?;
    let cursor = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .map_err(|_| WebError::new(StatusCode::BAD_REQUEST, "Last-Event-ID is not ASCII"))?
            .trim()
            .to_owned(),
        None => q.cursor,
    };
    let service = EscalationsService {
        node: dashboard.node.clone(),
        routing: dashboard.routing.clone(),
    };
    let teams = if q.team.is_empty() {
        vec![]
    } else {
        vec![q.team]
    };
    let response = service
        .subscribe(caller.request(pb::SubscribeRequest {
            teams,
            cursor,
            ..Default::default()
        }))
        .await
        .map_err(WebError::from_status)?;
    let start = response
        .metadata()
        .get(START_CURSOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let first = Event::default().event("start").id(&start).data(start);
    let events = response.into_inner().map(|next| {
        Ok(match next {
            Ok(e) => Event::default()
                .event("escalation")
                .id(&e.cursor)
                .data(item(&e).into_string()),
            Err(status) => Event::default().event("failed").data(status.message()),
        })
    });
    Ok(Sse::new(tokio_stream::once(Ok(first)).chain(events)).keep_alive(KeepAlive::default()))
}
