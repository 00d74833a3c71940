//! `[markets.*]`: per-market overlays. A market may change how a state is
//! reached and how fast (extra proof sources, extra transitions, SLA
//! targets inside their bounds, another calendar, extra SLA events), never
//! what it means.

use toml::Spanned;
use toml::de::DeValue;

use super::build::{Builder, SlaInfo};
use super::document::{Node, check_name, kind_of, string_items};
use super::graph_checks::Edge;
use super::scope::MAX_NAMES;
use crate::engine::model::{
    Duration, EventTypeId, Market, Overlay, ProofId, RegionId, SlaId, SlaOverlay, Transition,
};

const MARKET_KEYS: &[&str] = &["proof_sources", "slas", "transitions"];
const TRANSITION_KEYS: &[&str] = &["region", "from", "on", "when", "to"];
const SLA_OVERLAY_KEYS: &[&str] = &["within", "calendar", "start", "stop", "cancel"];

impl Builder {
    pub(super) fn markets(&mut self, root: &Node<'_, '_>) {
        let Some(markets) = root.child(&mut self.p, "markets", "[markets]") else {
            return;
        };
        for (code, value) in markets.entries() {
            if !check_name(&mut self.p, &code, "market") {
                continue;
            }
            if self.spec.markets.len() >= MAX_NAMES {
                self.p.report(
                    &code.span,
                    format!(
                        "market \"{}\" is one too many: a model may declare at most \
                         {MAX_NAMES} markets; merge some",
                        code.value
                    ),
                );
                continue;
            }
            let what = format!("market \"{}\"", code.value);
            let mut edges = Vec::new();
            let overlay = match Node::of_value(&mut self.p, value, what) {
                Some(node) => self.overlay(&node, &mut edges),
                None => Overlay::default(),
            };
            self.spec.markets.push(Market {
                name: code.value.to_owned(),
                overlay,
            });
            self.market_edges.push((code.value.to_owned(), edges));
        }
    }

    fn overlay(&mut self, node: &Node<'_, '_>, edges: &mut Vec<(RegionId, Edge)>) -> Overlay {
        node.check_keys(&mut self.p, MARKET_KEYS);
        Overlay {
            proof_sources: self.proof_sources(node),
            transitions: self.market_transitions(node, edges),
            slas: self.sla_overlays(node),
        }
    }

    /// `proof_sources = { proof = ["source.type"] }`.
    fn proof_sources(&mut self, node: &Node<'_, '_>) -> Vec<(ProofId, Vec<EventTypeId>)> {
        let what = format!("`proof_sources` of {}", node.what);
        let Some(table) = node.child(&mut self.p, "proof_sources", what.clone()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (proof, events) in table.entries() {
            let proof_id = self.scope.proof(&mut self.p, &what, &proof);
            let subject = format!("{what} for proof \"{}\"", proof.value);
            let Some(list) = events_list(self, &subject, events) else {
                continue;
            };
            if let Some(p) = proof_id {
                out.push((p, list));
            }
        }
        out
    }

    /// `transitions = [ { region, from, on | when, to } ]`.
    fn market_transitions(
        &mut self,
        node: &Node<'_, '_>,
        edges: &mut Vec<(RegionId, Edge)>,
    ) -> Vec<(RegionId, Transition)> {
        let tables = node.tables(&mut self.p, "transitions", |i| {
            format!("transition {i} of {}", node.what)
        });
        let mut out = Vec::new();
        for t in &tables {
            t.check_keys(&mut self.p, TRANSITION_KEYS);
            let region = t.required_string(&mut self.p, "region", "region = \"REGION\"");
            let subject = format!("`region` of {}", t.what);
            let Some(region) = region.and_then(|r| self.scope.region(&mut self.p, &subject, &r))
            else {
                continue;
            };
            let read = self.transition(region, t);
            edges.push((region, read.edge));
            if let Some(transition) = read.transition {
                out.push((region, transition));
            }
        }
        out
    }

    /// `slas = { sla = { within, calendar, start, stop, cancel } }`.
    fn sla_overlays(&mut self, node: &Node<'_, '_>) -> Vec<(SlaId, SlaOverlay)> {
        let what = format!("`slas` of {}", node.what);
        let Some(table) = node.child(&mut self.p, "slas", what.clone()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (sla, value) in table.entries() {
            let sla_id = self.scope.sla(&mut self.p, &what, &sla);
            let sla_what = format!("SLA \"{}\" in {}", sla.value, node.what);
            let Some(sla_node) = Node::of_value(&mut self.p, value, sla_what) else {
                continue;
            };
            self.sla_overlay_keys(&sla_node, sla.value);
            let Some(sla_id) = sla_id else {
                continue;
            };
            let overlay = self.sla_overlay(sla_id, &sla_node);
            out.push((sla_id, overlay));
        }
        out
    }

    /// Unknown keys of an SLA overlay; `pause_in` gets its own reason
    /// (FAQ 35).
    fn sla_overlay_keys(&mut self, node: &Node<'_, '_>, sla: &str) {
        let mut allowed = SLA_OVERLAY_KEYS.to_vec();
        allowed.push("pause_in");
        node.check_keys(&mut self.p, &allowed);
        if let Some(pause_in) = node.get("pause_in") {
            self.p.report(
                &pause_in.span(),
                format!(
                    "{} sets `pause_in`, which is not a market overlay key: where an SLA's \
                     clock stops is part of what the hand-off means, the same in every market; \
                     set pause_in under [slas.{sla}] in the core (a market may set {})",
                    node.what,
                    SLA_OVERLAY_KEYS.join(", ")
                ),
            );
        }
    }

    fn sla_overlay(&mut self, sla: SlaId, node: &Node<'_, '_>) -> SlaOverlay {
        let mut overlay = SlaOverlay {
            within: self.market_within(sla, node),
            ..SlaOverlay::default()
        };
        if let Some(calendar) = node.string(&mut self.p, "calendar") {
            // Calendars are declared in the core only (FAQ 35).
            let subject = format!("`calendar` of {}", node.what);
            overlay.calendar = self.calendar_ref(&subject, &calendar);
        }
        let SlaInfo {
            starts_in_state, ..
        } = self.sla_info[sla.idx()];
        if starts_in_state && node.has("start") {
            let span = node
                .get("start")
                .map(|v| v.span())
                .unwrap_or(node.span.clone());
            self.p.report(
                &span,
                format!(
                    "{} adds `start` events, but the SLA starts by in_state (on entering a \
                     state); a market may not add start events to it: remove start",
                    node.what
                ),
            );
        }
        let p = &mut self.p;
        for (key, list) in [
            ("start", &mut overlay.start),
            ("stop", &mut overlay.stop),
            ("cancel", &mut overlay.cancel),
        ] {
            let names = node.strings(p, key).unwrap_or_default();
            *list = self
                .scope
                .events(p, &format!("`{key}` of {}", node.what), &names);
        }
        overlay
    }

    /// A market's `within`: positive, only on an SLA with bounds, inside them.
    fn market_within(&mut self, sla: SlaId, node: &Node<'_, '_>) -> Option<Duration> {
        let within = self.positive_duration(node, "within")?;
        let core = &self.spec.slas[sla.idx()];
        let Some((low, high)) = core.within_bounds else {
            if !self.sla_info[sla.idx()].has_bounds_key {
                self.p.report(
                    &within.span,
                    format!(
                        "{} sets `within`, but that SLA has no within_bounds, so no market may \
                         change its target: add within_bounds = [low, high] to [slas.{}] or \
                         remove this within",
                        node.what, core.name
                    ),
                );
            }
            return None;
        };
        if within.value < low || within.value > high {
            self.p.report(
                &within.span,
                format!(
                    "`within` of {} is {}, outside the SLA's within_bounds [{low}, {high}]: \
                     a market sets within only inside them",
                    node.what, within.value
                ),
            );
            return None;
        }
        Some(within.value)
    }
}

/// A list of events (`["source.type"]`), every one resolved.
fn events_list(
    b: &mut Builder,
    subject: &str,
    value: &Spanned<DeValue<'_>>,
) -> Option<Vec<EventTypeId>> {
    let DeValue::Array(items) = value.get_ref() else {
        b.p.report(
            &value.span(),
            format!(
                "{subject} must be a list of events, not {}",
                kind_of(value.get_ref())
            ),
        );
        return None;
    };
    let names = string_items(&mut b.p, items, subject);
    Some(b.scope.events(&mut b.p, subject, &names))
}
