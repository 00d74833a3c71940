//! `handoff model graph`: a picture of a model (states, transitions, owners,
//! SLA hand-offs) in Mermaid or Graphviz dot.
//!
//! A model is read by people who did not write it (a team lead checking
//! who owns a customer where, an auditor checking a hand-off deadline), so
//! the picture shows, per region: every state with its owner, the initial
//! state, each transition with what triggers it, the transitions a market
//! adds (marked with the market), and each SLA next to the states or
//! events it runs between, with the calendar it counts on (and a market's,
//! when one sets another) and an arrow to each state that pauses it. The
//! calendars themselves (zone, open hours) get a group of their own. Node
//! ids are generated (`r0_s2`), never taken from the model, and every
//! label is escaped for its language.
//!
//! The graph is first laid out in a format-neutral [`Picture`], then
//! written by one small writer per format.

use std::fmt::Write as _;

use super::{
    EventTypeId, FromStates, Model, RegionId, SlaId, SlaStart, StateId, Transition, Trigger,
    open_hours_text, open_per_week,
};

/// Output language of [`render_graph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

/// Renders the model's regions, states (with owners), transitions (event or
/// proofs, market-only ones marked) and SLA hand-offs.
pub fn render_graph(model: &Model, format: GraphFormat) -> String {
    let picture = Picture::of(model);
    match format {
        GraphFormat::Mermaid => mermaid(&picture),
        GraphFormat::Dot => dot(&picture),
    }
}

/// What a node is, which decides its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    State,
    /// The entry marker pointing at a region's initial state.
    Initial,
    /// Stands for `from = "*"`: every state but the target.
    AnyState,
    /// An SLA's note.
    Note,
    /// A business calendar: zone and open hours.
    Calendar,
}

#[derive(Debug, Clone)]
struct Node {
    id: String,
    kind: NodeKind,
    /// Label lines, unescaped.
    lines: Vec<String>,
}

/// What an edge is, which decides its line style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EdgeKind {
    /// A core transition (or the initial marker's arrow).
    Core,
    /// A transition only a market adds: dashed.
    Market,
    /// Ties an SLA note to its state: dotted, no arrow.
    Attach,
    /// From an SLA note to a state where its clock stops: dotted, a
    /// circle at the state.
    Pause,
}

#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    label: String,
    kind: EdgeKind,
}

/// A cluster of nodes and the edges among them.
#[derive(Debug, Clone)]
struct Group {
    id: String,
    title: String,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

/// The model laid out, ready for either writer.
#[derive(Debug, Clone)]
struct Picture {
    title: String,
    groups: Vec<Group>,
    /// Edges between groups (an SLA to its pause states), written after
    /// every group so each node is first declared in its own.
    edges: Vec<Edge>,
}

fn state_id(r: RegionId, s: StateId) -> String {
    format!("r{}_s{}", r.0, s.0)
}

impl Picture {
    fn of(model: &Model) -> Picture {
        let mut groups: Vec<Group> = model.region_ids().map(|r| region_group(model, r)).collect();
        let mut event_slas = Group {
            id: "slas".to_owned(),
            title: "SLAs started by events".to_owned(),
            nodes: Vec::new(),
            edges: Vec::new(),
        };
        let mut edges = Vec::new();
        // Holes kept for other versions' names are not this version's.
        for sla_id in model.sla_ids().filter(|s| model.declares_sla(*s)) {
            let sla = model.sla_spec(sla_id);
            let note_id = format!("sla{}", sla_id.0);
            let mut lines = sla_lines(model, sla_id);
            for &(r, s) in &sla.pause_in {
                edges.push(Edge {
                    from: note_id.clone(),
                    to: state_id(r, s),
                    label: "paused here".to_owned(),
                    kind: EdgeKind::Pause,
                });
            }
            match sla.start {
                SlaStart::InState(r, s) => {
                    let group = &mut groups[r.idx()];
                    group.nodes.push(Node {
                        id: note_id.clone(),
                        kind: NodeKind::Note,
                        lines,
                    });
                    group.edges.push(Edge {
                        from: note_id,
                        to: state_id(r, s),
                        label: String::new(),
                        kind: EdgeKind::Attach,
                    });
                }
                SlaStart::Events(_) => {
                    lines.extend(event_sla_lines(model, sla_id));
                    event_slas.nodes.push(Node {
                        id: note_id,
                        kind: NodeKind::Note,
                        lines,
                    });
                }
            }
        }
        if !event_slas.nodes.is_empty() {
            groups.push(event_slas);
        }
        if !model.spec.calendars.is_empty() {
            groups.push(calendar_group(model));
        }
        Picture {
            title: format!("{} v{}", model.spec.name, model.spec.version),
            groups,
            edges,
        }
    }
}

/// One region: its states, its initial marker, core then market transitions.
fn region_group(model: &Model, r: RegionId) -> Group {
    let region = model.region(r);
    let mut group = Group {
        id: format!("r{}", r.0),
        title: format!("region {}", region.name),
        nodes: Vec::new(),
        edges: Vec::new(),
    };
    let initial_id = format!("r{}_initial", r.0);
    group.nodes.push(Node {
        id: initial_id.clone(),
        kind: NodeKind::Initial,
        lines: vec!["initial".to_owned()],
    });
    group.edges.push(Edge {
        from: initial_id,
        to: state_id(r, region.initial),
        label: String::new(),
        kind: EdgeKind::Core,
    });
    for (s, state) in region.states.iter().enumerate() {
        if !model.declares_state(r, StateId(s as u16)) {
            continue;
        }
        group.nodes.push(Node {
            id: state_id(r, StateId(s as u16)),
            kind: NodeKind::State,
            lines: vec![
                state.name.clone(),
                format!("owner: {}", model.team_name(state.owner)),
            ],
        });
    }
    for t in &region.transitions {
        add_transition(model, &mut group, r, t, None);
    }
    for market in &model.spec.markets {
        for (tr, t) in &market.overlay.transitions {
            if *tr == r {
                add_transition(model, &mut group, r, t, Some(&market.name));
            }
        }
    }
    group
}

/// The edges of one transition: one per `from` state, or one from the
/// region's "any other state" node for `"*"`.
fn add_transition(
    model: &Model,
    group: &mut Group,
    r: RegionId,
    t: &Transition,
    market: Option<&str>,
) {
    let trigger = match &t.trigger {
        Trigger::On(e) => model.event_type(*e).qualified.clone(),
        Trigger::When(proofs) => {
            let names: Vec<&str> = proofs.iter().map(|p| model.proof_name(*p)).collect();
            format!("when: {}", names.join(", "))
        }
    };
    let (label, kind) = match market {
        Some(m) => (format!("{m}: {trigger}"), EdgeKind::Market),
        None => (trigger, EdgeKind::Core),
    };
    let to = state_id(r, t.to);
    let sources: Vec<String> = match &t.from {
        FromStates::Any => {
            let any_id = format!("r{}_any", r.0);
            if !group.nodes.iter().any(|n| n.id == any_id) {
                group.nodes.push(Node {
                    id: any_id.clone(),
                    kind: NodeKind::AnyState,
                    lines: vec!["any other state".to_owned()],
                });
            }
            vec![any_id]
        }
        FromStates::States(states) => states.iter().map(|s| state_id(r, *s)).collect(),
    };
    for from in sources {
        group.edges.push(Edge {
            from,
            to: to.clone(),
            label: label.clone(),
            kind,
        });
    }
}

/// The model's calendars, one node each: name, zone, open hours, closed
/// dates.
fn calendar_group(model: &Model) -> Group {
    let nodes = model
        .spec
        .calendars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut lines = vec![
                format!("calendar {}", c.name),
                format!("time zone: {}", c.zone_name),
                format!("open {} a week: {}", open_per_week(c), open_hours_text(c)),
            ];
            if !c.closed().is_empty() {
                lines.push(format!("closed on {} dates", c.closed().len()));
            }
            Node {
                id: format!("cal{i}"),
                kind: NodeKind::Calendar,
                lines,
            }
        })
        .collect();
    Group {
        id: "calendars".to_owned(),
        title: "business calendars".to_owned(),
        nodes,
        edges: Vec::new(),
    }
}

/// `calendar: de_office (BR: br_office)`: the calendar an SLA counts on,
/// and each market that picks another; `None` when none is involved.
fn calendar_line(model: &Model, sla_id: SlaId) -> Option<String> {
    let name = |c: usize| model.spec.calendars[c].name.as_str();
    let core = model.sla_spec(sla_id).calendar;
    let markets: Vec<String> = model
        .spec
        .markets
        .iter()
        .filter_map(|m| {
            let (_, o) = m.overlay.slas.iter().find(|(s, _)| *s == sla_id)?;
            Some(format!("{}: {}", m.name, name(o.calendar?)))
        })
        .collect();
    if core.is_none() && markets.is_empty() {
        return None;
    }
    let mut line = format!("calendar: {}", core.map_or("none (wall time)", name));
    if !markets.is_empty() {
        line = format!("{line} ({})", markets.join(", "));
    }
    Some(line)
}

/// `SLA name: within 1h (BR: 30m) → owner`, the hand-off, escalations,
/// the calendar, the pause states.
fn sla_lines(model: &Model, sla_id: SlaId) -> Vec<String> {
    let sla = model.sla_spec(sla_id);
    let overrides: Vec<String> = model
        .spec
        .markets
        .iter()
        .filter_map(|m| {
            let (_, o) = m.overlay.slas.iter().find(|(s, _)| *s == sla_id)?;
            Some(format!("{}: {}", m.name, o.within?))
        })
        .collect();
    let mut within = sla.within.to_string();
    if !overrides.is_empty() {
        within = format!("{within} ({})", overrides.join(", "));
    }
    let mut lines = vec![format!(
        "SLA {} {within} → {}",
        sla.name,
        model.team_name(sla.owner)
    )];
    if !sla.handoff.is_empty() {
        lines.push(format!("hand-off: {}", sla.handoff));
    }
    let mut escalate: Vec<&str> = Vec::new();
    for tier in &sla.tiers {
        let team = model.team_name(tier.notify);
        if !escalate.contains(&team) {
            escalate.push(team);
        }
    }
    if !escalate.is_empty() {
        lines.push(format!("escalates to: {}", escalate.join(", ")));
    }
    if !sla.tiers.iter().any(|t| t.is_breach()) {
        lines.push("no breach tier".to_owned());
    }
    lines.extend(calendar_line(model, sla_id));
    if !sla.pause_in.is_empty() {
        let states: Vec<String> = sla
            .pause_in
            .iter()
            .map(|&(r, s)| format!("{}.{}", model.region(r).name, model.state(r, s).name))
            .collect();
        lines.push(format!("paused in: {}", states.join(", ")));
    }
    lines
}

/// `start: a, b → stop: c` (and cancel) for an SLA started by events,
/// market additions included.
fn event_sla_lines(model: &Model, sla_id: SlaId) -> Vec<String> {
    let sla = model.sla_spec(sla_id);
    let names = |events: &[EventTypeId]| -> String {
        let names: Vec<&str> = events
            .iter()
            .map(|e| model.event_type(*e).qualified.as_str())
            .collect();
        if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        }
    };
    let start = match &sla.start {
        SlaStart::Events(events) => names(events),
        SlaStart::InState(..) => String::new(),
    };
    let mut lines = vec![format!("start: {start} → stop: {}", names(&sla.stop))];
    if !sla.cancel.is_empty() {
        lines.push(format!("cancel: {}", names(&sla.cancel)));
    }
    for market in &model.spec.markets {
        let Some((_, o)) = market.overlay.slas.iter().find(|(s, _)| *s == sla_id) else {
            continue;
        };
        for (what, events) in [
            ("start", &o.start),
            ("stop", &o.stop),
            ("cancel", &o.cancel),
        ] {
            if !events.is_empty() {
                lines.push(format!("{}: also {what} on {}", market.name, names(events)));
            }
        }
    }
    lines
}

/// Escapes a label line for a quoted Mermaid string (entity codes).
fn mermaid_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn mermaid_label(lines: &[String]) -> String {
    let escaped: Vec<String> = lines.iter().map(|l| mermaid_escape(l)).collect();
    escaped.join("<br/>")
}

fn mermaid_edge(out: &mut String, indent: &str, edge: &Edge) {
    let arrow = match edge.kind {
        EdgeKind::Core => "-->",
        EdgeKind::Market => "-.->",
        EdgeKind::Attach => "-.-",
        EdgeKind::Pause => "-.-o",
    };
    if edge.label.is_empty() {
        let _ = writeln!(out, "{indent}{} {arrow} {}", edge.from, edge.to);
    } else {
        let label = mermaid_escape(&edge.label);
        let _ = writeln!(
            out,
            "{indent}{} {arrow}|\"{label}\"| {}",
            edge.from, edge.to
        );
    }
}

fn mermaid(picture: &Picture) -> String {
    let mut out = String::new();
    // YAML front matter; a single-quoted scalar has no escapes but `''`.
    let title = picture.title.replace(['\n', '\r'], " ").replace('\'', "''");
    let _ = writeln!(out, "---\ntitle: '{title}'\n---");
    out.push_str("flowchart TD\n");
    for group in &picture.groups {
        let _ = writeln!(
            out,
            "  subgraph {}[\"{}\"]",
            group.id,
            mermaid_escape(&group.title)
        );
        for node in &group.nodes {
            let label = mermaid_label(&node.lines);
            let shape = match node.kind {
                NodeKind::State => format!("(\"{label}\")"),
                NodeKind::Initial => format!("((\"{label}\"))"),
                NodeKind::AnyState => format!("[/\"{label}\"/]"),
                NodeKind::Note => format!("[\"{label}\"]"),
                NodeKind::Calendar => format!("[[\"{label}\"]]"),
            };
            let _ = writeln!(out, "    {}{shape}", node.id);
        }
        for edge in &group.edges {
            mermaid_edge(&mut out, "    ", edge);
        }
        out.push_str("  end\n");
    }
    for edge in &picture.edges {
        mermaid_edge(&mut out, "  ", edge);
    }
    let notes: Vec<&str> = picture
        .groups
        .iter()
        .flat_map(|g| &g.nodes)
        .filter(|n| n.kind == NodeKind::Note)
        .map(|n| n.id.as_str())
        .collect();
    if !notes.is_empty() {
        out.push_str("  classDef sla fill:#fff8dc,stroke:#b8860b\n");
        let _ = writeln!(out, "  class {} sla", notes.join(","));
    }
    let calendars: Vec<&str> = picture
        .groups
        .iter()
        .flat_map(|g| &g.nodes)
        .filter(|n| n.kind == NodeKind::Calendar)
        .map(|n| n.id.as_str())
        .collect();
    if !calendars.is_empty() {
        out.push_str("  classDef calendar fill:#eef6ff,stroke:#4a78b0\n");
        let _ = writeln!(out, "  class {} calendar", calendars.join(","));
    }
    out
}

/// Escapes text for a double-quoted dot string.
fn dot_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn dot_label(lines: &[String]) -> String {
    let escaped: Vec<String> = lines.iter().map(|l| dot_escape(l)).collect();
    escaped.join("\\n")
}

fn dot(picture: &Picture) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", dot_escape(&picture.title));
    out.push_str("  rankdir=LR;\n  fontname=\"Helvetica\";\n");
    out.push_str("  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for group in &picture.groups {
        let _ = writeln!(out, "  subgraph \"cluster_{}\" {{", group.id);
        let _ = writeln!(out, "    label=\"{}\";", dot_escape(&group.title));
        for node in &group.nodes {
            let label = dot_label(&node.lines);
            let attrs = match node.kind {
                NodeKind::State => format!("label=\"{label}\""),
                NodeKind::Initial => "shape=point, width=0.15, label=\"\"".to_owned(),
                NodeKind::AnyState => format!("shape=plaintext, label=\"{label}\""),
                NodeKind::Note => {
                    format!("shape=note, style=filled, fillcolor=\"#fff8dc\", label=\"{label}\"")
                }
                NodeKind::Calendar => {
                    format!("shape=tab, style=filled, fillcolor=\"#eef6ff\", label=\"{label}\"")
                }
            };
            let _ = writeln!(out, "    \"{}\" [{attrs}];", node.id);
        }
        for edge in &group.edges {
            dot_edge(&mut out, "    ", edge);
        }
        out.push_str("  }\n");
    }
    for edge in &picture.edges {
        dot_edge(&mut out, "  ", edge);
    }
    out.push_str("}\n");
    out
}

fn dot_edge(out: &mut String, indent: &str, edge: &Edge) {
    let mut attrs = Vec::new();
    if !edge.label.is_empty() {
        attrs.push(format!("label=\"{}\"", dot_escape(&edge.label)));
    }
    match edge.kind {
        EdgeKind::Core => {}
        EdgeKind::Market => attrs.push("style=dashed".to_owned()),
        EdgeKind::Attach => {
            attrs.push("style=dotted".to_owned());
            attrs.push("arrowhead=none".to_owned());
        }
        EdgeKind::Pause => {
            attrs.push("style=dotted".to_owned());
            attrs.push("arrowhead=odot".to_owned());
        }
    }
    let attrs = if attrs.is_empty() {
        String::new()
    } else {
        format!(" [{}]", attrs.join(", "))
    };
    let _ = writeln!(out, "{indent}\"{}\" -> \"{}\"{attrs};", edge.from, edge.to);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::load;

    fn saas() -> Model {
        load("saas.toml", include_str!("../../../examples/saas.toml")).expect("saas loads")
    }

    #[test]
    fn mermaid_draws_regions_states_owners_and_the_initial_state() {
        let out = render_graph(&saas(), GraphFormat::Mermaid);
        assert!(
            out.starts_with("---\ntitle: 'saas v1'\n---\nflowchart TD\n"),
            "{out}"
        );
        for region in ["lifecycle", "billing", "support"] {
            assert!(out.contains(&format!("[\"region {region}\"]")), "{region}");
        }
        assert!(out.contains("r0_s2(\"paid<br/>owner: provisioning\")"));
        assert!(out.contains("r1_s1(\"past_due<br/>owner: billing\")"));
        assert!(out.contains("r0_initial --> r0_s0\n"));
        let subgraphs = out.matches("  subgraph ").count();
        assert_eq!(subgraphs, out.matches("\n  end\n").count());
    }

    #[test]
    fn mermaid_labels_transitions_markets_and_slas() {
        let out = render_graph(&saas(), GraphFormat::Mermaid);
        assert!(out.contains("r0_s0 -->|\"crm.deal_won\"| r0_s1"));
        assert!(out.contains("r0_s2 -->|\"when: access\"| r0_s3"));
        assert!(out.contains("r0_s1 -.->|\"BR: billing.boleto_settled\"| r0_s2"));
        assert!(out.contains("r1_any -->|\"billing.dispute_opened\"| r1_s2"));
        assert!(out.contains("SLA access_after_payment 1h (BR: 30m) → provisioning"));
        assert!(out.contains("sla0 -.- r0_s2"));
        assert!(
            out.contains("billing-#gt;provisioning"),
            "hand-offs are escaped"
        );
        assert!(out.contains(
            "start: support.ticket_opened → stop: support.agent_replied, support.ticket_solved"
        ));
        assert!(out.contains("SLA first_reply 4h (DE: 2h) → support"));
    }

    #[test]
    fn dot_draws_clusters_and_dashes_market_transitions() {
        let out = render_graph(&saas(), GraphFormat::Dot);
        assert!(out.starts_with("digraph \"saas v1\" {\n"));
        assert!(out.ends_with("}\n"));
        assert_eq!(out.matches('{').count(), out.matches('}').count());
        for r in 0..3 {
            assert!(out.contains(&format!("subgraph \"cluster_r{r}\" {{")));
        }
        assert!(out.contains("\"r0_s2\" [label=\"paid\\nowner: provisioning\"];"));
        assert!(out.contains("\"r0_initial\" [shape=point"));
        assert!(out.contains(
            "\"r0_s1\" -> \"r0_s2\" [label=\"BR: billing.boleto_settled\", style=dashed];"
        ));
        assert!(out.contains("\"sla0\" -> \"r0_s2\" [style=dotted, arrowhead=none];"));
        assert!(out.contains("shape=note"));
    }

    #[test]
    fn labels_are_escaped_for_each_language() {
        assert_eq!(dot_escape("a\"b\\c\nd"), "a\\\"b\\\\c d");
        assert_eq!(mermaid_escape("a\"b<c>#d`e"), "a#quot;b#lt;c#gt;#35;d#96;e");
        let text = "[model]\nname = 'x\"y'\nversion = 1\n[regions.r]\ninitial = \"s\"\n\
                    [regions.r.states.s]\nowner = \"t\"\n";
        let model = load("m.toml", &format!("teams = [\"t\"]\n{text}")).expect("loads");
        assert!(render_graph(&model, GraphFormat::Dot).starts_with("digraph \"x\\\"y v1\" {"));
        assert!(render_graph(&model, GraphFormat::Mermaid).starts_with("---\ntitle: 'x\"y v1'\n"));
    }
}
