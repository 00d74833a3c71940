//! `[slas.*]`: hand-off deadlines, their start (events or a state), their
//! target and bounds, their escalation tiers, and their clock: the
//! calendar whose open time counts and the states that pause it.

use toml::de::DeValue;

use super::build::{Builder, SlaInfo, declare};
use super::document::{Located, Node, check_name, kind_of, string_items};
use super::scope::MAX_NAMES;
use crate::engine::model::{
    Duration, Percent, RegionId, Severity, Sla, SlaStart, StateId, TeamId, Tier, TierAt,
    parse_duration, parse_percent,
};

const SLA_KEYS: &[&str] = &[
    "owner",
    "handoff",
    "start",
    "in_state",
    "unless",
    "stop",
    "cancel",
    "within",
    "within_bounds",
    "tiers",
    "calendar",
    "pause_in",
];
const TIER_KEYS: &[&str] = &["at", "after_breach", "every", "notify", "severity"];

impl Builder {
    pub(super) fn slas(&mut self, root: &Node<'_, '_>) {
        let Some(slas) = root.child(&mut self.p, "slas", "[slas]") else {
            return;
        };
        for (name, value) in slas.entries() {
            if !check_name(&mut self.p, &name, "SLA") {
                continue;
            }
            let (p, names) = (&mut self.p, &mut self.scope.slas);
            if declare(p, names, &name, "SLA", "[slas]").is_none() {
                continue;
            }
            let mut sla = Sla::inert(name.value);
            let mut info = SlaInfo {
                has_bounds_key: false,
                starts_in_state: false,
            };
            if let Some(node) =
                Node::of_value(&mut self.p, value, format!("SLA \"{}\"", name.value))
            {
                info.has_bounds_key = node.has("within_bounds");
                info.starts_in_state = node.has("in_state") && !node.has("start");
                self.sla_body(&node, &mut sla);
            }
            self.spec.slas.push(sla);
            self.sla_info.push(info);
        }
    }

    fn sla_body(&mut self, node: &Node<'_, '_>, sla: &mut Sla) {
        node.check_keys(&mut self.p, SLA_KEYS);
        let p = &mut self.p;
        let subject = |key: &str| format!("`{key}` of {}", node.what);
        if let Some(owner) = node.required_string(p, "owner", "owner = \"TEAM\"") {
            sla.owner = self
                .scope
                .team(p, &subject("owner"), &owner)
                .unwrap_or(TeamId(0));
        }
        if let Some(handoff) = node.string(p, "handoff") {
            sla.handoff = handoff.value.to_owned();
        }
        let unless = node.strings(p, "unless").unwrap_or_default();
        sla.unless = self.scope.proofs(p, &subject("unless"), &unless);
        let stop = node.strings(p, "stop").unwrap_or_default();
        sla.stop = self.scope.events(p, &subject("stop"), &stop);
        let cancel = node.strings(p, "cancel").unwrap_or_default();
        sla.cancel = self.scope.events(p, &subject("cancel"), &cancel);
        if let Some(start) = self.sla_start(node) {
            sla.start = start;
        }
        if !node.has("within") {
            node.missing(&mut self.p, "within", "within = \"1h\" (the target)");
        }
        let within = self.positive_duration(node, "within");
        if let Some(within) = &within {
            sla.within = within.value;
        }
        sla.within_bounds = self.within_bounds(node, within.as_ref());
        if let Some(calendar) = node.string(&mut self.p, "calendar") {
            sla.calendar = self.calendar_ref(&subject("calendar"), &calendar);
        }
        sla.pause_in = self.pause_in(node, &sla.start);
        let tiers = node.tables(&mut self.p, "tiers", |i| {
            format!("tier {} of {}", i - 1, node.what)
        });
        if let Some(extra) = tiers.get(MAX_NAMES) {
            // Tiers are numbered by a `u16` in escalations and timers.
            self.p.report(
                &extra.span,
                format!(
                    "{} is one too many: an SLA has at most {MAX_NAMES} tiers; \
                     repeat one with `every` instead",
                    extra.what
                ),
            );
        }
        sla.tiers = tiers
            .iter()
            .take(MAX_NAMES)
            .filter_map(|t| self.tier(t, sla.owner))
            .collect();
    }

    /// Exactly one of `start` (events) and `in_state` (`region.state`).
    fn sla_start(&mut self, node: &Node<'_, '_>) -> Option<SlaStart> {
        let p = &mut self.p;
        match (node.has("start"), node.has("in_state")) {
            (true, true) | (false, false) => {
                let which = if node.has("start") { "both" } else { "neither" };
                p.report(
                    &node.span,
                    format!(
                        "{} has {which} `start` and `in_state`: an SLA has exactly one, either \
                         start = [\"source.type\"] (the events that start it) or \
                         in_state = \"region.state\" (it runs while a customer is in that state)",
                        node.what
                    ),
                );
                None
            }
            (true, false) => {
                let start = node.strings(p, "start")?;
                let subject = format!("`start` of {}", node.what);
                Some(SlaStart::Events(self.scope.events(p, &subject, &start)))
            }
            (false, true) => {
                let in_state = node.string(p, "in_state")?;
                let subject = format!("`in_state` of {}", node.what);
                let (region, state) = self.region_state(&subject, &in_state)?;
                Some(SlaStart::InState(region, state))
            }
        }
    }

    /// A reference to a declared calendar (an index into
    /// `ModelSpec::calendars`).
    pub(super) fn calendar_ref(&mut self, subject: &str, name: &Located<&str>) -> Option<usize> {
        self.scope
            .calendars
            .resolve(&mut self.p, subject, name)
            .map(usize::from)
    }

    /// `pause_in = ["region.state"]`: every state declared; an `in_state`
    /// SLA does not list its own state (other states of its region are
    /// fine); sorted, duplicates dropped, empty means no pause (FAQ 48).
    fn pause_in(&mut self, node: &Node<'_, '_>, start: &SlaStart) -> Vec<(RegionId, StateId)> {
        let Some(names) = node.strings(&mut self.p, "pause_in") else {
            return Vec::new();
        };
        let subject = format!("`pause_in` of {}", node.what);
        let mut out = Vec::with_capacity(names.len());
        for name in &names {
            let Some(state) = self.region_state(&subject, name) else {
                continue;
            };
            if let SlaStart::InState(r, s) = start
                && (*r, *s) == state
            {
                let region = name.value.split_once('.').map_or("", |(r, _)| r);
                self.p.report(
                    &name.span,
                    format!(
                        "{subject} lists \"{}\", the state the SLA runs in (its in_state): \
                         the SLA would be paused for its whole life and never escalate; \
                         remove it (other states of region \"{region}\" may be listed)",
                        name.value
                    ),
                );
                continue;
            }
            out.push(state);
        }
        out.sort();
        out.dedup();
        out
    }

    /// `"region.state"`, both declared (`in_state`, `pause_in`).
    fn region_state(&mut self, subject: &str, text: &Located<&str>) -> Option<(RegionId, StateId)> {
        let Some((region, state)) = text.value.split_once('.') else {
            self.p.report(
                &text.span,
                format!(
                    "{subject} is \"{}\", which is not a state: write \"region.state\", \
                     for example \"lifecycle.paid\"",
                    text.value
                ),
            );
            return None;
        };
        let region_name = Located {
            value: region,
            span: text.span.clone(),
        };
        let region_id = self.scope.region(&mut self.p, subject, &region_name)?;
        let state_name = Located {
            value: state,
            span: text.span.clone(),
        };
        let subject = format!("{subject} (region \"{region}\")");
        let state_id = self
            .scope
            .state(&mut self.p, region_id, &subject, &state_name)?;
        Some((region_id, state_id))
    }

    /// `within_bounds = [low, high]`: low <= high, and the core `within`
    /// inside them.
    fn within_bounds(
        &mut self,
        node: &Node<'_, '_>,
        within: Option<&Located<Duration>>,
    ) -> Option<(Duration, Duration)> {
        let value = node.get("within_bounds")?;
        let subject = format!("`within_bounds` of {}", node.what);
        let shape =
            || format!("{subject} must be [low, high], two durations such as [\"15m\", \"4h\"]");
        let DeValue::Array(items) = value.get_ref() else {
            let found = kind_of(value.get_ref());
            self.p
                .report(&value.span(), format!("{}, not {found}", shape()));
            return None;
        };
        if items.len() != 2 {
            let n = items.len();
            self.p
                .report(&value.span(), format!("{}; it has {n} values", shape()));
            return None;
        }
        let texts = string_items(&mut self.p, items, &subject);
        let mut bounds = Vec::with_capacity(2);
        for text in &texts {
            match parse_duration(text.value) {
                Ok(d) => bounds.push(d),
                Err(why) => self.p.report(&text.span, format!("{subject}: {why}")),
            }
        }
        let [low, high] = bounds[..] else {
            return None;
        };
        if low > high {
            self.p.report(
                &value.span(),
                format!("{subject} must be [low, high] with low <= high, but {low} > {high}"),
            );
            return None;
        }
        if let Some(within) = within
            && (within.value < low || within.value > high)
        {
            self.p.report(
                &within.span,
                format!(
                    "`within` of {} is {}, outside its within_bounds [{low}, {high}]: \
                     a core within lies inside its own bounds; change one of them",
                    node.what, within.value
                ),
            );
        }
        Some((low, high))
    }

    /// One escalation tier; `None` when broken (reported).
    fn tier(&mut self, node: &Node<'_, '_>, owner: TeamId) -> Option<Tier> {
        node.check_keys(&mut self.p, TIER_KEYS);
        let at = self.tier_at(node);
        let notify = match node.string(&mut self.p, "notify") {
            Some(team) => {
                let subject = format!("`notify` of {}", node.what);
                self.scope.team(&mut self.p, &subject, &team)
            }
            None => Some(owner),
        };
        let severity = self.severity(node);
        Some(Tier {
            at: at?,
            notify: notify?,
            severity: severity?,
        })
    }

    /// Exactly one of `at` (a percentage in (0%, 100%]) and `after_breach`;
    /// `every` only with `after_breach`.
    fn tier_at(&mut self, node: &Node<'_, '_>) -> Option<TierAt> {
        let (has_at, has_after) = (node.has("at"), node.has("after_breach"));
        if has_at == has_after {
            let which = if has_at { "both" } else { "neither" };
            self.p.report(
                &node.span,
                format!(
                    "{} has {which} `at` and `after_breach`: a tier fires either at a share of \
                     `within` (at = \"50%\") or after the breach (after_breach = \"2h\"); \
                     write exactly one",
                    node.what
                ),
            );
        }
        if node.has("every") && !has_after {
            let every = node
                .get("every")
                .map(|v| v.span())
                .unwrap_or(node.span.clone());
            self.p.report(
                &every,
                format!(
                    "`every` of {} repeats a re-escalation, so it goes only with `after_breach`: \
                     add after_breach = \"...\" or remove every",
                    node.what
                ),
            );
        }
        let every = self.positive_duration(node, "every");
        if has_at && !has_after {
            return self.percent(node).map(TierAt::Percent);
        }
        if has_after && !has_at {
            let after = self.duration(node, "after_breach")?;
            return Some(TierAt::AfterBreach {
                after: after.value,
                every: every.map(|e| e.value),
            });
        }
        None
    }

    fn percent(&mut self, node: &Node<'_, '_>) -> Option<Percent> {
        let text = node.string(&mut self.p, "at")?;
        let pct = match parse_percent(text.value) {
            Ok(pct) => pct,
            Err(why) => {
                self.p
                    .report(&text.span, format!("`at` of {}: {why}", node.what));
                return None;
            }
        };
        if !pct.in_range() {
            self.p.report(
                &text.span,
                format!(
                    "`at` of {} is {pct}, but tier percentages lie in (0%, 100%]: \
                     100% is the breach; for later tiers use after_breach",
                    node.what
                ),
            );
            return None;
        }
        Some(pct)
    }

    fn severity(&mut self, node: &Node<'_, '_>) -> Option<Severity> {
        let text = node.required_string(&mut self.p, "severity", "severity = \"high\"")?;
        let severity = Severity::parse(text.value);
        if severity.is_none() {
            self.p.report(
                &text.span,
                format!(
                    "`severity` of {} is \"{}\", but a severity is one of low, medium, high, critical",
                    node.what, text.value
                ),
            );
        }
        severity
    }
}
