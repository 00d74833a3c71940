//! `/model`: the model as a picture, drawn here as SVG (no layout engine
//! to install): one band per region, its states left to right in file
//! order with their owners, the initial state outlined; each core
//! transition an arrow over the band when it goes right and under it
//! when it goes back, labelled with its trigger; a transition from any
//! state (`from = "*"`) starts at the band's `*` marker. Below, the SLAs:
//! hand-off, owner, time allowed, tiers. `handoff model graph` draws the
//! same model with markets and SLA notes, in Mermaid or dot.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use maud::{Markup, html};

use super::App;
use super::layout::{WebError, list_link, page};
use crate::engine::model::{FromStates, Model, Trigger};

const BOX_W: f64 = 130.0;
const BOX_H: f64 = 44.0;
const GAP: f64 = 46.0;
const LEFT: f64 = 150.0;
/// Room above and below a band's boxes for the arcs.
const ARCS: f64 = 70.0;

fn trigger(model: &Model, t: &Trigger) -> String {
    match t {
        Trigger::On(e) => model.event_type(*e).qualified.clone(),
        Trigger::When(proofs) => {
            let names: Vec<&str> = proofs.iter().map(|p| model.proof_name(*p)).collect();
            format!("when {}", names.join(" + "))
        }
    }
}

/// The picture of `model`.
pub fn picture(model: &Model) -> Markup {
    let widest = model
        .spec
        .regions
        .iter()
        .map(|r| r.states.len())
        .max()
        .unwrap_or(1) as f64;
    let band = ARCS + BOX_H + ARCS;
    let width = LEFT + widest * (BOX_W + GAP) + 20.0;
    let height = band * model.spec.regions.len() as f64 + 10.0;
    let x = |i: usize| LEFT + i as f64 * (BOX_W + GAP);
    html! {
        svg.model xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox=(format!("0 0 {width:.0} {height:.0}")) width=(format!("{width:.0}")) height=(format!("{height:.0}")) {
            defs {
                marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M0,0 L8,4 L0,8 z" fill="#8b93a7" {}
                }
            }
            @for (r, region) in model.spec.regions.iter().enumerate() {
                @let top = band * r as f64 + 5.0;
                @let boxes = top + ARCS;
                g.region {
                    rect x="2" y=(top) width=(format!("{:.0}", width - 4.0)) height=(band - 4.0) rx="6" {}
                    text x="12" y=(boxes + 18.0) font-weight="700" { (region.name) }
                    text.owner x="12" y=(boxes + 34.0) { "region" }
                    @if region.transitions.iter().any(|t| matches!(t.from, FromStates::Any)) {
                        text x=(LEFT - 26.0) y=(boxes + BOX_H / 2.0 + 5.0) font-weight="700" { "*" }
                    }
                }
                @for (s, state) in region.states.iter().enumerate() {
                    a href=(list_link(&[("state", &format!("{}={}", region.name, state.name))])) {
                        g class=(if s == region.initial.idx() { "state initial" } else { "state" }) {
                            rect x=(x(s)) y=(boxes) width=(BOX_W) height=(BOX_H) rx="8" {}
                            text x=(x(s) + BOX_W / 2.0) y=(boxes + 19.0) text-anchor="middle" font-weight="600" { (state.name) }
                            text.owner x=(x(s) + BOX_W / 2.0) y=(boxes + 35.0) text-anchor="middle" { (model.team_name(state.owner)) }
                        }
                    }
                }
                @let mut labelled = std::collections::HashSet::new();
                @for t in &region.transitions {
                    @let to = t.to.idx();
                    // One label per trigger and target: the arrows of
                    // `subscription_canceled` from every state share it.
                    @let label = trigger(model, &t.trigger);
                    @let label = if labelled.insert((label.clone(), to)) { label } else { String::new() };
                    @match &t.from {
                        FromStates::Any => {
                            @let (x1, y1) = (LEFT - 14.0, boxes + BOX_H / 2.0);
                            @let (x2, y2) = (x(to) + BOX_W / 2.0, boxes + BOX_H);
                            @let depth = ARCS - 8.0;
                            path.edge d=(format!("M{x1:.1},{y1:.1} C{x1:.1},{:.1} {x2:.1},{:.1} {x2:.1},{y2:.1}", y2 + depth, y2 + depth)) marker-end="url(#arrow)" {}
                            text.trigger x=(x2) y=(y2 + depth - 2.0) text-anchor="middle" { "* " (label) }
                        }
                        FromStates::States(froms) => {
                            @for from in froms {
                                @let from = from.idx();
                                @let span = from.abs_diff(to) as f64;
                                @let forward = to > from;
                                @let lift = (16.0 + 12.0 * span).min(ARCS - 14.0);
                                @let (y_edge, y_ctrl) = if forward { (boxes, boxes - lift * 1.6) } else { (boxes + BOX_H, boxes + BOX_H + lift * 1.6) };
                                @let x1 = x(from) + BOX_W / 2.0 + if forward { 14.0 } else { -14.0 };
                                @let x2 = x(to) + BOX_W / 2.0 + if forward { -14.0 } else { 14.0 };
                                @let mid = (x1 + x2) / 2.0;
                                @let y_label = if forward { boxes - lift * 0.8 - 3.0 } else { boxes + BOX_H + lift * 0.8 + 11.0 };
                                path.edge d=(format!("M{x1:.1},{y_edge:.1} Q{mid:.1},{y_ctrl:.1} {x2:.1},{y_edge:.1}")) marker-end="url(#arrow)" {}
                                text.trigger x=(format!("{mid:.1}")) y=(format!("{y_label:.1}")) text-anchor="middle" { (label) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn model_page(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Markup, WebError> {
    let dashboard = app.dashboard()?;
    let caller = dashboard.caller(&headers, &uri.to_string())?;
    let model = dashboard.node.model();
    let body = html! {
        p.summary {
            "Model " b { (model.spec.name) } " version " b { (model.spec.version) }
            " · click a state for its customers · " a href="/model.svg" { "SVG" }
        }
        section { (picture(&model)) }
        section {
            h2 { "SLAs" }
            table {
                thead { tr { th { "SLA" } th { "hand-off" } th { "owner" } th { "within" } th { "tiers (notified team, severity)" } th { "breached now" } } }
                tbody {
                    @for sla in &model.spec.slas {
                        tr {
                            td { (sla.name) }
                            td { (sla.handoff) }
                            td { (model.team_name(sla.owner)) }
                            td { (sla.within.to_string()) }
                            td { @for t in &sla.tiers { span.state { (model.team_name(t.notify)) ", " (t.severity.as_str()) } " " } }
                            td { a href=(list_link(&[("sla", &format!("{}=breached", sla.name))])) { "customers" } }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Model", Some(&caller.principal), body))
}

pub async fn svg(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<impl IntoResponse, WebError> {
    let dashboard = app.dashboard()?;
    dashboard.caller(&headers, &uri.to_string())?;
    let model = dashboard.node.model();
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml")],
        picture(&model).into_string(),
    ))
}
