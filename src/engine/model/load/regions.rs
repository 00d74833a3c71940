//! `[regions.*]`: states (owners, proofs required, what teams may do, which
//! messages may go out) and transitions. Market transitions are read here
//! too, since they are written the same way.

use toml::de::DeValue;

use super::build::{Builder, declare};
use super::document::{Located, Node, check_name, kind_of, string_items};
use super::graph_checks::{Edge, RegionGraph};
use super::scope::Names;
use crate::engine::model::{
    FromStates, Region, RegionId, State, StateId, TeamId, Transition, Trigger,
};

const REGION_KEYS: &[&str] = &["initial", "default_owner", "states", "transitions"];
const STATE_KEYS: &[&str] = &["owner", "requires", "allow", "messages", "suppress"];
const TRANSITION_KEYS: &[&str] = &["from", "on", "when", "to"];

/// Who owns a state that names no owner.
#[derive(Clone, Copy)]
enum DefaultOwner {
    /// The region has no `default_owner`.
    Absent,
    Team(TeamId),
    /// `default_owner` is written but broken (already reported).
    Broken,
}

/// A transition as read: the resolved [`Transition`] when every part of
/// it resolved, and always the edge the graph checks see.
pub(super) struct ReadTransition {
    pub edge: Edge,
    pub transition: Option<Transition>,
}

impl Builder {
    pub(super) fn regions(&mut self, root: &Node<'_, '_>) {
        let Some(regions) = root.child(&mut self.p, "regions", "[regions]") else {
            return;
        };
        for (name, value) in regions.entries() {
            if !check_name(&mut self.p, &name, "region") {
                continue;
            }
            let (p, names) = (&mut self.p, &mut self.scope.regions);
            let Some(id) = declare(p, names, &name, "region", "[regions]") else {
                continue;
            };
            let id = RegionId(id);
            self.scope.states.push(Names::new(
                "state",
                "states",
                "declare states as [regions.REGION.states.NAME] tables",
            ));
            let line = self.line(&name.span);
            let mut region = Region {
                name: name.value.to_owned(),
                initial: StateId(0),
                default_owner: None,
                states: Vec::new(),
                transitions: Vec::new(),
            };
            let mut graph = RegionGraph::new(line);
            let what = format!("region \"{}\"", name.value);
            if let Some(node) = Node::of_value(&mut self.p, value, what) {
                self.region_body(id, &node, &mut region, &mut graph);
            }
            self.spec.regions.push(region);
            self.graphs.push(graph);
        }
    }

    fn region_body(
        &mut self,
        id: RegionId,
        node: &Node<'_, '_>,
        region: &mut Region,
        graph: &mut RegionGraph,
    ) {
        node.check_keys(&mut self.p, REGION_KEYS);
        let default_owner = self.default_owner(node);
        if let DefaultOwner::Team(t) = default_owner {
            region.default_owner = Some(t);
        }
        self.states(id, node, default_owner, region, graph);
        let initial = node.required_string(&mut self.p, "initial", "initial = \"STATE\"");
        if let Some(initial) = initial {
            let subject = format!("`initial` of {}", node.what);
            graph.initial = self.scope.state(&mut self.p, id, &subject, &initial);
            region.initial = graph.initial.unwrap_or(StateId(0));
        }
        let transitions = node.tables(&mut self.p, "transitions", |i| {
            format!("transition {i} of {}", node.what)
        });
        for t in &transitions {
            t.check_keys(&mut self.p, TRANSITION_KEYS);
            let read = self.transition(id, t);
            graph.edges.push(read.edge);
            region.transitions.extend(read.transition);
        }
    }

    fn default_owner(&mut self, node: &Node<'_, '_>) -> DefaultOwner {
        if !node.has("default_owner") {
            return DefaultOwner::Absent;
        }
        let Some(owner) = node.string(&mut self.p, "default_owner") else {
            return DefaultOwner::Broken;
        };
        let subject = format!("`default_owner` of {}", node.what);
        match self.scope.team(&mut self.p, &subject, &owner) {
            Some(t) => DefaultOwner::Team(t),
            None => DefaultOwner::Broken,
        }
    }

    /// `[regions.R.states.*]`, interned in file order.
    fn states(
        &mut self,
        id: RegionId,
        node: &Node<'_, '_>,
        default_owner: DefaultOwner,
        region: &mut Region,
        graph: &mut RegionGraph,
    ) {
        if !node.has("states") {
            let example = format!("at least one [regions.{}.states.NAME] table", region.name);
            node.missing(&mut self.p, "states", &example);
        }
        let what = format!("the states of {}", node.what);
        let Some(states) = node.child(&mut self.p, "states", what) else {
            return;
        };
        for (name, value) in states.entries() {
            if !check_name(&mut self.p, &name, "state") {
                continue;
            }
            let names = &mut self.scope.states[id.idx()];
            let where_ = format!("region \"{}\"", region.name);
            if declare(&mut self.p, names, &name, "state", &where_).is_none() {
                continue;
            }
            graph.state_lines.push(self.line(&name.span));
            let what = format!("state \"{}\" in region \"{}\"", name.value, region.name);
            let state = match Node::of_value(&mut self.p, value, what) {
                Some(state_node) => self.state(name.value, &state_node, default_owner),
                None => placeholder_state(name.value),
            };
            region.states.push(state);
        }
    }

    fn state(&mut self, name: &str, node: &Node<'_, '_>, default_owner: DefaultOwner) -> State {
        node.check_keys(&mut self.p, STATE_KEYS);
        let owner = self.state_owner(node, default_owner);
        let p = &mut self.p;
        let subject = |key: &str| format!("`{key}` of {}", node.what);
        let requires = node.strings(p, "requires").unwrap_or_default();
        let messages = node.strings(p, "messages").unwrap_or_default();
        let suppress = node.strings(p, "suppress").unwrap_or_default();
        State {
            name: name.to_owned(),
            owner,
            requires: self.scope.proofs(p, &subject("requires"), &requires),
            allow: self.allow(node),
            messages: self
                .scope
                .classes(&mut self.p, &subject("messages"), &messages),
            suppress: self
                .scope
                .classes(&mut self.p, &subject("suppress"), &suppress),
        }
    }

    /// The state's `owner`, else the region's `default_owner`. A state with
    /// neither is a problem; a broken owner is reported once, as undeclared.
    fn state_owner(&mut self, node: &Node<'_, '_>, default_owner: DefaultOwner) -> TeamId {
        const BROKEN: TeamId = TeamId(0);
        if node.has("owner") {
            let Some(owner) = node.string(&mut self.p, "owner") else {
                return BROKEN;
            };
            let subject = format!("`owner` of {}", node.what);
            return self
                .scope
                .team(&mut self.p, &subject, &owner)
                .unwrap_or(BROKEN);
        }
        match default_owner {
            DefaultOwner::Team(t) => t,
            DefaultOwner::Broken => BROKEN,
            DefaultOwner::Absent => {
                self.p.report(
                    &node.span,
                    format!(
                        "{} has no owner: every state needs one; set owner = \"TEAM\" on it, \
                         or default_owner = \"TEAM\" on its region",
                        node.what
                    ),
                );
                BROKEN
            }
        }
    }

    /// `allow = { team = ["action", ...] }`, in file order.
    fn allow(&mut self, node: &Node<'_, '_>) -> Vec<(TeamId, Vec<String>)> {
        let what = format!("`allow` of {}", node.what);
        let Some(allow) = node.child(&mut self.p, "allow", what.clone()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (team, actions) in allow.entries() {
            let team_id = self.scope.team(&mut self.p, &what, &team);
            let DeValue::Array(items) = actions.get_ref() else {
                self.p.report(
                    &actions.span(),
                    format!(
                        "{what} must give team \"{}\" a list of actions, not {}",
                        team.value,
                        kind_of(actions.get_ref())
                    ),
                );
                continue;
            };
            let subject = format!("{what} for team \"{}\"", team.value);
            let actions = string_items(&mut self.p, items, &subject);
            if let Some(t) = team_id {
                out.push((t, actions.iter().map(|a| a.value.to_owned()).collect()));
            }
        }
        out
    }

    /// One transition of `region` (keys already checked by the caller).
    pub(super) fn transition(&mut self, region: RegionId, node: &Node<'_, '_>) -> ReadTransition {
        let line = self.line(&node.span);
        let from = self.transition_from(region, node);
        let to = node
            .required_string(&mut self.p, "to", "to = \"STATE\"")
            .and_then(|to| {
                let subject = format!("`to` of {}", node.what);
                self.scope.state(&mut self.p, region, &subject, &to)
            });
        let (trigger, automatic) = self.trigger(node);
        let transition = match (&from, &trigger, to) {
            (Some(from), Some(trigger), Some(to)) => Some(Transition {
                from: from.clone(),
                trigger: trigger.clone(),
                to,
            }),
            _ => None,
        };
        ReadTransition {
            edge: Edge {
                line,
                from,
                to,
                automatic,
            },
            transition,
        }
    }

    /// `from`: a state, a list of states, or `"*"`. `None` when any part
    /// does not resolve.
    fn transition_from(&mut self, region: RegionId, node: &Node<'_, '_>) -> Option<FromStates> {
        let subject = format!("`from` of {}", node.what);
        let Some(value) = node.get("from") else {
            node.missing(
                &mut self.p,
                "from",
                "from = \"STATE\" (or a list of states, or \"*\")",
            );
            return None;
        };
        match value.get_ref() {
            DeValue::String(s) if s == "*" => Some(FromStates::Any),
            DeValue::String(s) => {
                let name = Located {
                    value: s.as_ref(),
                    span: value.span(),
                };
                let state = self.scope.state(&mut self.p, region, &subject, &name)?;
                Some(FromStates::States(vec![state]))
            }
            DeValue::Array(items) => {
                let names = string_items(&mut self.p, items, &subject);
                let mut complete = names.len() == items.len();
                let mut states = Vec::with_capacity(names.len());
                for name in &names {
                    if name.value == "*" {
                        self.p.report(
                            &name.span,
                            format!("{subject} lists \"*\", which already means every state: write from = \"*\" alone"),
                        );
                        complete = false;
                        continue;
                    }
                    match self.scope.state(&mut self.p, region, &subject, name) {
                        Some(s) => states.push(s),
                        None => complete = false,
                    }
                }
                complete.then_some(FromStates::States(states))
            }
            other => {
                self.p.report(
                    &value.span(),
                    format!(
                        "{subject} must be a state, a list of states or \"*\", not {}",
                        kind_of(other)
                    ),
                );
                None
            }
        }
    }

    /// Exactly one of `on` (an event) and `when` (proofs). Returns the
    /// trigger if it resolved, and whether the transition is automatic.
    fn trigger(&mut self, node: &Node<'_, '_>) -> (Option<Trigger>, bool) {
        let p = &mut self.p;
        match (node.has("on"), node.has("when")) {
            (true, true) => {
                p.report(
                    &node.span,
                    format!(
                        "{} has both `on` and `when`: a transition is either taken on an event \
                         (on = \"source.type\") or automatically once proofs hold \
                         (when = [\"proof\"]); keep one",
                        node.what
                    ),
                );
                (None, false)
            }
            (false, false) => {
                p.report(
                    &node.span,
                    format!(
                        "{} has neither `on` nor `when`: add on = \"source.type\" (the event \
                         that triggers it) or when = [\"proof\"] (automatic)",
                        node.what
                    ),
                );
                (None, false)
            }
            (true, false) => {
                let subject = format!("`on` of {}", node.what);
                let on = node.string(p, "on");
                let event = on.and_then(|on| self.scope.event(p, &subject, &on));
                (event.map(Trigger::On), false)
            }
            (false, true) => {
                let subject = format!("`when` of {}", node.what);
                let Some(when) = node.strings(p, "when") else {
                    return (None, true);
                };
                let proofs = self.scope.proofs(p, &subject, &when);
                let complete = proofs.len() == when.len();
                (complete.then_some(Trigger::When(proofs)), true)
            }
        }
    }
}

/// The stand-in for a state whose body is broken (already reported).
fn placeholder_state(name: &str) -> State {
    State {
        name: name.to_owned(),
        owner: TeamId(0),
        requires: Vec::new(),
        allow: Vec::new(),
        messages: Vec::new(),
        suppress: Vec::new(),
    }
}
