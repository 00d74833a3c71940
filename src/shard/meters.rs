//! The metrics a customer's actor records per event (events by outcome,
//! time in the actor, a firing's lateness) and after each commit
//! (transitions, SLA outcomes, escalations), by handle.
//!
//! `metrics::counter!` with labels builds its key on every call (each
//! label's value an owned string: a region's or SLA's name, the market,
//! the model version) and looks it up in the recorder's registry: about
//! 2% of the node's CPU at 1,000,000 customers, most of it allocating and
//! hashing those strings. Here each label set's handle is registered once
//! per runtime thread, then found by ids (model version, region or SLA,
//! market) with no allocation. A hit is checked against the names the
//! handle was registered with, so two models that share a version number
//! (tests load several) never count under each other's names.
//!
//! The handles belong to the recorder installed when they were first
//! asked for: the node installs its recorder before any actor starts
//! (`cli::serve`), and nothing installs another one.

use std::cell::RefCell;

use metrics::{Counter, Histogram};
use rustc_hash::FxHashMap;

use crate::engine::model::{Model, RegionId, SlaId};
use crate::engine::{Escalation, EscalationKind, SlaEnd};

/// The handles of one label set, with the names they were registered
/// under (checked on every hit).
struct Handle<T> {
    names: Box<[Box<str>]>,
    handle: T,
}

/// Handles by ids, then by market.
type ByMarket<K, T> = FxHashMap<K, FxHashMap<Box<str>, Handle<T>>>;

#[derive(Default)]
struct Meters {
    /// `(model version, region)`.
    transitions: ByMarket<(u32, u16), Counter>,
    /// `(model version, SLA, outcome)`: the count by market, and the
    /// elapsed time (no market label) under the market `""`.
    outcomes: ByMarket<(u32, u16, u8), (Counter, Histogram)>,
    /// `(model version, SLA, team, severity, kind)` (no market label).
    escalations: FxHashMap<(u32, u16, u16, u8, u8), Handle<Counter>>,
    /// `(model version, SLA)`: breaches by hand-off and market.
    breaches: ByMarket<(u32, u16), Counter>,
}

thread_local! {
    static METERS: RefCell<Meters> = RefCell::default();
}

/// The handle of `key` and `market`, registered by `register` when it is
/// not cached or was registered under other `names`.
fn cached<K: std::hash::Hash + Eq, T: Clone>(
    map: &mut ByMarket<K, T>,
    key: K,
    market: &str,
    names: &[&str],
    register: impl FnOnce() -> T,
) -> T {
    let by_market = map.entry(key).or_default();
    match by_market.get_mut(market) {
        Some(h) => h.get(names, register),
        None => {
            let h = Handle::new(names, register());
            let handle = h.handle.clone();
            by_market.insert(market.into(), h);
            handle
        }
    }
}

impl<T: Clone> Handle<T> {
    fn new(names: &[&str], handle: T) -> Handle<T> {
        Handle {
            names: names.iter().map(|n| Box::<str>::from(*n)).collect(),
            handle,
        }
    }

    /// The handle, registered again (by `register`) if it was registered
    /// under other `names`.
    fn get(&mut self, names: &[&str], register: impl FnOnce() -> T) -> T {
        let same = self.names.len() == names.len()
            && self.names.iter().zip(names).all(|(a, b)| **a == **b);
        if !same {
            *self = Handle::new(names, register());
        }
        self.handle.clone()
    }
}

/// A region's state change, by region, market and model version.
pub fn transition(model: &Model, market: &str, region: RegionId) {
    let name = model.region(region).name.as_str();
    let version = model.spec.version;
    METERS
        .with_borrow_mut(|m| {
            cached(
                &mut m.transitions,
                (version, region.0),
                market,
                &[name],
                || {
                    metrics::counter!(
                        "handoff_transitions_total",
                        "region" => name.to_owned(),
                        "market" => market.to_owned(),
                        "model_version" => version.to_string(),
                    )
                },
            )
        })
        .increment(1);
}

/// An SLA instance's outcome, by SLA, market and model version (no
/// customer label), and its elapsed SLA time at the end, by SLA and
/// outcome.
pub fn outcome(model: &Model, market: &str, sla: SlaId, end: SlaEnd, elapsed_seconds: f64) {
    let name = model.sla_spec(sla).name.as_str();
    let version = model.spec.version;
    let (count, elapsed) = METERS.with_borrow_mut(|m| {
        cached(
            &mut m.outcomes,
            (version, sla.0, end as u8),
            market,
            &[name],
            || {
                (
                    metrics::counter!(
                        "handoff_sla_outcomes_total",
                        "sla" => name.to_owned(),
                        "market" => market.to_owned(),
                        "outcome" => end.as_str(),
                        "model_version" => version.to_string(),
                    ),
                    metrics::histogram!(
                        "handoff_sla_elapsed_seconds",
                        "sla" => name.to_owned(),
                        "outcome" => end.as_str(),
                    ),
                )
            },
        )
    });
    count.increment(1);
    elapsed.record(elapsed_seconds);
}

/// An escalation by SLA, team, severity, kind and model version; a
/// breach also by hand-off, market and model version.
pub fn escalation(model: &Model, market: &str, e: &Escalation) {
    let sla = model.sla_spec(e.sla);
    let team = model.team_name(e.team);
    let version = model.spec.version;
    let key = (version, e.sla.0, e.team.0, e.severity as u8, e.kind as u8);
    METERS.with_borrow_mut(|m| {
        let names = [sla.name.as_str(), team];
        let register = || {
            metrics::counter!(
                "handoff_escalations_total",
                "sla" => sla.name.clone(),
                "team" => team.to_owned(),
                "severity" => e.severity.as_str(),
                "kind" => e.kind.as_str(),
                "model_version" => version.to_string(),
            )
        };
        match m.escalations.get_mut(&key) {
            Some(h) => h.get(&names, register),
            None => {
                let h = Handle::new(&names, register());
                let handle = h.handle.clone();
                m.escalations.insert(key, h);
                handle
            }
        }
        .increment(1);
        if e.kind == EscalationKind::Breached {
            let key = (version, e.sla.0);
            cached(&mut m.breaches, key, market, &[&sla.handoff], || {
                metrics::counter!(
                    "handoff_breaches_total",
                    "handoff" => sla.handoff.clone(),
                    "market" => market.to_owned(),
                    "model_version" => version.to_string(),
                )
            })
            .increment(1);
        }
    });
}

/// Handles of the metrics every event or firing records.
#[derive(Default)]
struct PerEvent {
    /// `handoff_events_total`, by outcome.
    events: FxHashMap<&'static str, Counter>,
    ingest_seconds: Option<Histogram>,
    timer_lateness: Option<Histogram>,
}

thread_local! {
    static PER_EVENT: RefCell<PerEvent> = RefCell::default();
}

/// An event decided, by outcome.
pub fn event(outcome: &'static str) {
    PER_EVENT.with_borrow_mut(|m| {
        m.events
            .entry(outcome)
            .or_insert_with(|| metrics::counter!("handoff_events_total", "outcome" => outcome))
            .increment(1)
    });
}

/// How long an event took in its actor, in seconds.
pub fn ingest_seconds(seconds: f64) {
    PER_EVENT.with_borrow_mut(|m| {
        m.ingest_seconds
            .get_or_insert_with(|| metrics::histogram!("handoff_ingest_seconds"))
            .record(seconds)
    });
}

/// How late a timer fired, in seconds.
pub fn timer_lateness(seconds: f64) {
    PER_EVENT.with_borrow_mut(|m| {
        m.timer_lateness
            .get_or_insert_with(|| metrics::histogram!("handoff_timer_lateness_seconds"))
            .record(seconds)
    });
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;
    use crate::engine::model::load;

    fn saas() -> Model {
        load("saas.toml", include_str!("../../examples/saas.toml")).expect("the reference model")
    }

    /// Counts on a thread of its own (the handles are cached per thread)
    /// into a recorder of the test's, and the text it renders.
    fn rendered(count: impl FnOnce() + Send) -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        std::thread::scope(|s| {
            s.spawn(|| metrics::with_local_recorder(&recorder, count));
        });
        handle.render()
    }

    #[test]
    fn a_cached_handle_counts_under_its_own_labels() {
        let model = saas();
        let region = model.region(RegionId(0)).name.clone();
        let text = rendered(|| {
            for market in ["US", "DE", "US"] {
                transition(&model, market, RegionId(0));
            }
            event("applied");
            event("applied");
            event("duplicate");
        });
        let line = |market: &str| {
            format!(
                "handoff_transitions_total{{region=\"{region}\",market=\"{market}\",model_version=\"1\"}}"
            )
        };
        assert!(text.contains(&format!("{} 2", line("US"))), "{text}");
        assert!(text.contains(&format!("{} 1", line("DE"))), "{text}");
        assert!(
            text.contains("handoff_events_total{outcome=\"applied\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("handoff_events_total{outcome=\"duplicate\"} 1"),
            "{text}"
        );
    }

    /// Two models of one version number (tests load several; a node
    /// could be handed an edited model under the same number) each count
    /// under their own names, on the same thread.
    #[test]
    fn models_that_share_a_version_count_under_their_own_names() {
        let first = saas();
        let mut second = saas();
        second.spec.regions[0].name = "renamed".into();
        let region = first.region(RegionId(0)).name.clone();
        let text = rendered(|| {
            transition(&first, "US", RegionId(0));
            transition(&second, "US", RegionId(0));
            transition(&second, "US", RegionId(0));
            transition(&first, "US", RegionId(0));
        });
        let line = |name: &str, n: u32| {
            format!(
                "handoff_transitions_total{{region=\"{name}\",market=\"US\",model_version=\"1\"}} {n}"
            )
        };
        assert!(text.contains(&line(&region, 2)), "{text}");
        assert!(text.contains(&line("renamed", 2)), "{text}");
    }
}
