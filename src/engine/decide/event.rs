//! An event: docs/model.md's steps 2 to 6 on a working copy of the
//! customer.

use super::super::fact::{EventRef, Fact, Outcome};
use super::super::input::{Event, Limits};
use super::super::model::{EventTypeId, Model, SourceId};
use super::super::state::CustomerState;
use super::super::time::Timestamp;
use super::work::Work;
use super::*;

pub(super) fn decide_event(
    model: &Model,
    limits: &Limits,
    state: Option<&CustomerState>,
    ev: &Event,
    now: Timestamp,
) -> Decision {
    if let Err(malformed) = check_malformed(limits, ev, now) {
        return Decision::refused(Outcome::Rejected, malformed.message);
    }
    // A name only other versions declare (a hole in this version's
    // tables) is as unknown here as any other.
    let Some(source) = model
        .source(&ev.source)
        .filter(|s| model.declares_source(*s))
    else {
        let known: Vec<&str> = (0..model.spec.sources.len())
            .map(|s| SourceId(s as u16))
            .filter(|s| model.declares_source(*s))
            .map(|s| model.source_name(s))
            .collect();
        return Decision::refused(
            Outcome::Rejected,
            format!(
                "unknown source `{}`: the model's sources are {}",
                ev.source,
                known.join(", ")
            ),
        );
    };
    let Some(event_type) = model
        .event(source, &ev.event_type)
        .filter(|e| model.declares_event(*e))
    else {
        let known: Vec<&str> = model
            .spec
            .events
            .iter()
            .enumerate()
            .filter(|(i, e)| e.source == source && model.declares_event(EventTypeId(*i as u16)))
            .map(|(_, e)| e.name.as_str())
            .collect();
        return Decision::refused(
            Outcome::Rejected,
            format!(
                "source `{}` does not send `{}` in this model; its events are {}",
                ev.source,
                ev.event_type,
                known.join(", ")
            ),
        );
    };
    let market = match state {
        None => {
            if ev.market.is_empty() {
                return Decision::refused(
                    Outcome::Rejected,
                    format!(
                        "the first event of customer `{}` has no market: set `market` on it",
                        ev.customer
                    ),
                );
            }
            match model.declared_market(&ev.market) {
                Some(m) => m,
                None => {
                    let names = model.declared_market_names();
                    return Decision::refused(
                        Outcome::Rejected,
                        format!(
                            "market `{}` is not declared in the model; declared markets: {}",
                            ev.market,
                            names.join(", ")
                        ),
                    );
                }
            }
        }
        Some(s) => {
            if !ev.market.is_empty() && *ev.market != *s.market_code {
                return Decision::refused(
                    Outcome::Rejected,
                    format!(
                        "customer `{}` is in market {}, not {}: a customer's market does not change",
                        ev.customer, s.market_code, ev.market
                    ),
                );
            }
            s.market
        }
    };
    if let Some(s) = state
        && s.seen.contains(source, &ev.id)
    {
        return Decision::refused(
            Outcome::Duplicate,
            format!(
                "event `{}` from {} was already received for this customer",
                ev.id, ev.source
            ),
        );
    }

    let event = EventRef {
        source,
        event_type,
        id: ev.id.as_str().into(),
        occurred_at: ev.occurred_at,
    };
    let mut w = Work::new(model, market, state, now);
    if state.is_none() {
        w.emit(Fact::Created {
            market,
            market_code: ev.market.as_str().into(),
            model_version: model.spec.version,
            at: ev.occurred_at,
        });
        w.changed = true;
    }
    w.proofs(&event);
    let report = w.on_transitions(&event);
    w.automatic(event.occurred_at);
    w.slas(&event, state.is_none());

    let outcome = if w.changed {
        Outcome::Applied
    } else if !report.blocked.is_empty() {
        Outcome::Rejected
    } else if !report.stale.is_empty() {
        Outcome::Stale
    } else {
        Outcome::Ignored
    };
    let reason = report.reason(model, &w.core, outcome, &event);
    w.emit(Fact::EventRecorded {
        event,
        received_at: now,
        outcome,
        reason: reason.as_deref().map(Into::into),
    });
    let mut d = w.finish(state);
    d.outcome = Some(outcome);
    d.reason = reason;
    d
}
