//! Building a [`ModelSpec`] from the document, section by section.
//!
//! Sections are read in dependency order (teams, message classes, sources,
//! `[model]`, proofs, regions, calendars, SLAs, markets), whatever their order in the
//! file, so every reference meets its declaration. Each declared name is
//! interned even when its body is broken, so one mistake is reported once
//! and does not turn every reference to it into a second problem. What the
//! graph checks need is kept aside ([`RegionGraph`]), with unresolved parts
//! as `None`, so they can tell a real problem from the echo of another.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::document::{Located, Node, Problems, Span, check_name, kind_of, string_items};
use super::graph_checks::{Edge, RegionGraph};
use super::scope::{DeclareError, MAX_NAMES, Names, Scope, next_id};
use crate::engine::model::{
    Duration, EventType, ModelSpec, Proof, RegionId, SourceId, parse_duration,
};

/// Keys allowed at the top level of a model.
const TOP_KEYS: &[&str] = &[
    "teams",
    "message_classes",
    "model",
    "sources",
    "proofs",
    "regions",
    "slas",
    "markets",
    "calendars",
];
const MODEL_KEYS: &[&str] = &["name", "version"];
const PROOF_KEYS: &[&str] = &["from", "revoked_by"];

/// What the loader knows about one SLA beyond its [`crate::engine::model::Sla`].
pub(super) struct SlaInfo {
    /// Whether `within_bounds` is written (even if broken): a market's
    /// `within` is then not also reported as "no bounds".
    pub has_bounds_key: bool,
    /// Whether it is written as an `in_state` SLA (even if `in_state` is
    /// broken): a market may not add `start` events to it.
    pub starts_in_state: bool,
}

/// The state of one load: problems, names, the spec so far.
pub(super) struct Builder {
    pub p: Problems,
    pub scope: Scope,
    pub spec: ModelSpec,
    /// Per region (by `RegionId`): its core graph, for the graph checks.
    pub graphs: Vec<RegionGraph>,
    /// Per SLA (by `SlaId`).
    pub sla_info: Vec<SlaInfo>,
    /// Per market, in file order: its name, and its transitions as edges.
    pub market_edges: Vec<(String, Vec<(RegionId, Edge)>)>,
}

/// Builds the spec of a parsed document, or returns every problem as
/// `(line, message)`, sorted by line.
pub(super) fn build(
    text: &str,
    root: &Spanned<DeTable<'_>>,
) -> Result<ModelSpec, Vec<(usize, String)>> {
    let mut b = Builder {
        p: Problems::new(text),
        scope: Scope::new(),
        spec: ModelSpec::default(),
        graphs: Vec::new(),
        sla_info: Vec::new(),
        market_edges: Vec::new(),
    };
    let root = Node::new(root.get_ref(), 0..0, "the top level of the model");
    root.check_keys(&mut b.p, TOP_KEYS);
    b.teams(&root);
    b.message_classes(&root);
    b.header(&root);
    b.sources(&root);
    b.proofs(&root);
    b.regions(&root);
    b.calendars(&root);
    b.slas(&root);
    b.markets(&root);
    b.check_graphs();
    b.check_table_size();
    if !b.p.is_empty() {
        return Err(b.p.into_sorted());
    }
    let Builder {
        scope, mut spec, ..
    } = b;
    spec.teams = scope.teams.into_names();
    spec.message_classes = scope.classes.into_names();
    spec.sources = scope.sources.into_names();
    Ok(spec)
}

/// The most entries the per-market transition tables of a model may have
/// in all (2 bytes each: 128 MiB): a model within every name limit could
/// otherwise ask for gigabytes when it loads, and abort the process.
const MAX_TABLE_ENTRIES: usize = 1 << 26;

/// Declares a name, reporting a duplicate (`where_` says where it is
/// declared) or too many names. Returns the new id.
pub(super) fn declare(
    p: &mut Problems,
    names: &mut Names,
    name: &Located<&str>,
    kind: &str,
    where_: &str,
) -> Option<u16> {
    match names.declare(name.value) {
        Ok(id) => Some(id),
        Err(DeclareError::Duplicate) => {
            p.report(
                &name.span,
                format!(
                    "{kind} \"{}\" is declared twice in {where_}: remove one",
                    name.value
                ),
            );
            None
        }
        Err(DeclareError::TooMany) => {
            p.report(
                &name.span,
                format!(
                    "{kind} \"{}\" is one too many: a model may declare at most {MAX_NAMES} \
                     {kind} names; merge some",
                    name.value
                ),
            );
            None
        }
    }
}

impl Builder {
    /// The 1-based line of a span.
    pub fn line(&self, span: &Span) -> usize {
        self.p.line(span)
    }

    fn teams(&mut self, root: &Node<'_, '_>) {
        for name in root.strings(&mut self.p, "teams").unwrap_or_default() {
            if check_name(&mut self.p, &name, "team") {
                declare(&mut self.p, &mut self.scope.teams, &name, "team", "`teams`");
            }
        }
    }

    fn message_classes(&mut self, root: &Node<'_, '_>) {
        let classes = root.strings(&mut self.p, "message_classes");
        for name in classes.unwrap_or_default() {
            if check_name(&mut self.p, &name, "message class") {
                let (p, names) = (&mut self.p, &mut self.scope.classes);
                declare(p, names, &name, "message class", "`message_classes`");
            }
        }
    }

    /// `[model]`: required, with a free-text `name` and an integer `version`.
    fn header(&mut self, root: &Node<'_, '_>) {
        let p = &mut self.p;
        if !root.has("model") {
            p.report_line(
                1,
                "the model has no [model] table, which is required: add [model] with \
                 name = \"...\" and version = 1",
            );
            return;
        }
        let Some(model) = root.child(p, "model", "[model]") else {
            return;
        };
        model.check_keys(p, MODEL_KEYS);
        if let Some(name) = model.string(p, "name") {
            self.spec.name = name.value.to_owned();
        }
        if !model.has("version") {
            model.missing(p, "version", "version = 1 (an integer)");
        }
        if let Some(version) = model.integer(p, "version") {
            match u32::try_from(version.value) {
                Ok(v) => self.spec.version = v,
                Err(_) => p.report(
                    &version.span,
                    format!(
                        "`version` of [model] is {}, but a version is a whole number from 0 to {}",
                        version.value,
                        u32::MAX
                    ),
                ),
            }
        }
    }

    /// `[sources]`: source -> its event types. Event ids follow file order,
    /// source by source.
    fn sources(&mut self, root: &Node<'_, '_>) {
        let Some(sources) = root.child(&mut self.p, "sources", "[sources]") else {
            return;
        };
        for (source, value) in sources.entries() {
            let valid = check_name(&mut self.p, &source, "source");
            let DeValue::Array(items) = value.get_ref() else {
                self.p.report(
                    &value.span(),
                    format!(
                        "source \"{0}\" under [sources] must list its event types, not be {1}: \
                         write {0} = [\"type\", ...]",
                        source.value,
                        kind_of(value.get_ref())
                    ),
                );
                continue;
            };
            if !valid {
                continue;
            }
            let (p, names) = (&mut self.p, &mut self.scope.sources);
            let Some(id) = declare(p, names, &source, "source", "[sources]") else {
                continue;
            };
            let what = format!("source \"{}\"", source.value);
            let types = string_items(&mut self.p, items, &what);
            let declared = self.event_types(SourceId(id), source.value, &types);
            self.scope.event_types.push(declared);
        }
    }

    /// The event types of one source, appended to the spec's events.
    fn event_types(
        &mut self,
        source: SourceId,
        source_name: &str,
        types: &[Located<&str>],
    ) -> Names {
        let mut declared = Names::new("event type", "event types", "list them under [sources]");
        for ty in types {
            if !check_name(&mut self.p, ty, "event type") {
                continue;
            }
            let Some(id) = next_id(self.spec.events.len()) else {
                self.p.report(
                    &ty.span,
                    format!(
                        "event type \"{}\" is one too many: a model may declare at most \
                         {MAX_NAMES} event types, over all sources; merge some",
                        ty.value
                    ),
                );
                continue;
            };
            match declared.declare_as(ty.value, id) {
                Ok(_) => self.spec.events.push(EventType {
                    source,
                    name: ty.value.to_owned(),
                    qualified: format!("{source_name}.{}", ty.value),
                }),
                Err(_) => self.p.report(
                    &ty.span,
                    format!(
                        "event type \"{}\" is declared twice in source \"{source_name}\": remove one",
                        ty.value
                    ),
                ),
            }
        }
        declared
    }

    /// `[proofs.NAME]`: `from` (required) and `revoked_by` events.
    fn proofs(&mut self, root: &Node<'_, '_>) {
        let Some(proofs) = root.child(&mut self.p, "proofs", "[proofs]") else {
            return;
        };
        for (name, value) in proofs.entries() {
            if !check_name(&mut self.p, &name, "proof") {
                continue;
            }
            let (p, names) = (&mut self.p, &mut self.scope.proofs);
            if declare(p, names, &name, "proof", "[proofs]").is_none() {
                continue;
            }
            let mut proof = Proof {
                name: name.value.to_owned(),
                from: Vec::new(),
                revoked_by: Vec::new(),
            };
            if let Some(node) =
                Node::of_value(&mut self.p, value, format!("proof \"{}\"", name.value))
            {
                self.proof_body(&node, &mut proof);
            }
            self.spec.proofs.push(proof);
        }
    }

    fn proof_body(&mut self, node: &Node<'_, '_>, proof: &mut Proof) {
        let p = &mut self.p;
        node.check_keys(p, PROOF_KEYS);
        if !node.has("from") {
            node.missing(
                p,
                "from",
                "from = [\"source.type\"] (the events that establish it)",
            );
        }
        if let Some(from) = node.strings(p, "from") {
            proof.from = self
                .scope
                .events(p, &format!("`from` of {}", node.what), &from);
        }
        if let Some(revoked) = node.strings(p, "revoked_by") {
            let subject = format!("`revoked_by` of {}", node.what);
            proof.revoked_by = self.scope.events(p, &subject, &revoked);
        }
    }

    /// Reports a model whose rule tables ([`crate::engine::model::MarketRules`]:
    /// per market and region, a slot per state and event type) would exceed
    /// [`MAX_TABLE_ENTRIES`], on the line of the region with the most states.
    fn check_table_size(&mut self) {
        let markets = self.spec.markets.len().max(1);
        let events = self.spec.events.len();
        let states: usize = self.spec.regions.iter().map(|r| r.states.len()).sum();
        let entries = markets.saturating_mul(states).saturating_mul(events);
        if entries <= MAX_TABLE_ENTRIES {
            return;
        }
        let largest = (0..self.spec.regions.len())
            .max_by_key(|&r| self.spec.regions[r].states.len())
            .map_or(1, |r| self.graphs[r].line);
        self.p.report_line(
            largest,
            format!(
                "the model is too large to run: {markets} market(s) x {states} states (all \
                 regions) x {events} event types need {entries} transition-table entries, \
                 more than {MAX_TABLE_ENTRIES}; declare fewer markets, states or event types"
            ),
        );
    }

    /// A duration-valued key, parsed; a bad one is reported.
    pub fn duration(&mut self, node: &Node<'_, '_>, key: &str) -> Option<Located<Duration>> {
        let text = node.string(&mut self.p, key)?;
        match parse_duration(text.value) {
            Ok(d) => Some(Located {
                value: d,
                span: text.span,
            }),
            Err(why) => {
                self.p
                    .report(&text.span, format!("`{key}` of {}: {why}", node.what));
                None
            }
        }
    }

    /// A duration that must be positive (`within`, `every`).
    pub fn positive_duration(
        &mut self,
        node: &Node<'_, '_>,
        key: &str,
    ) -> Option<Located<Duration>> {
        let d = self.duration(node, key)?;
        if d.value.micros() <= 0 {
            self.p.report(
                &d.span,
                format!(
                    "`{key}` of {} must be positive, not {}: write at least \"1s\"",
                    node.what, d.value
                ),
            );
            return None;
        }
        Some(d)
    }
}
