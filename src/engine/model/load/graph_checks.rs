//! The checks on a region's transition graph: every state reachable from
//! the initial one by core transitions, and no cycle of automatic
//! transitions, in the core or in the core with any one market.
//!
//! They run on [`RegionGraph`]s, which keep every transition even when part
//! of it did not resolve (that part is `None`). Reachability is skipped in
//! a region with such a transition: a misspelt target would otherwise make
//! its intended state "unreachable", an echo of a problem already reported.

use super::build::Builder;
use crate::engine::model::{FromStates, RegionId, StateId};

/// A transition as the graph checks see it.
#[derive(Debug, Clone)]
pub(super) struct Edge {
    pub line: usize,
    pub from: Option<FromStates>,
    pub to: Option<StateId>,
    /// Written with `when` (and not also `on`).
    pub automatic: bool,
}

impl Edge {
    /// Whether this edge leaves `state`; `false` when unresolved.
    fn leaves(&self, state: StateId) -> bool {
        match (&self.from, self.to) {
            (Some(from), Some(to)) => from.matches(state, to),
            _ => false,
        }
    }
}

/// One region's core graph.
#[derive(Debug, Clone)]
pub(super) struct RegionGraph {
    /// The line of the region's name.
    pub line: usize,
    pub initial: Option<StateId>,
    /// Per state (by `StateId`): the line of its table.
    pub state_lines: Vec<usize>,
    /// Core transitions, in file order.
    pub edges: Vec<Edge>,
}

impl RegionGraph {
    pub fn new(line: usize) -> RegionGraph {
        RegionGraph {
            line,
            initial: None,
            state_lines: Vec::new(),
            edges: Vec::new(),
        }
    }

    /// Whether every transition resolved, so reachability is meaningful.
    fn is_complete(&self) -> bool {
        self.edges
            .iter()
            .all(|e| e.from.is_some() && e.to.is_some())
    }
}

/// States reachable from `initial` by `edges` (`*` is every state but the
/// target; `requires` is ignored).
fn reachable(n_states: usize, initial: StateId, edges: &[Edge]) -> Vec<bool> {
    let mut reached = vec![false; n_states];
    reached[initial.idx()] = true;
    let mut changed = true;
    while changed {
        changed = false;
        for edge in edges {
            let Some(to) = edge.to else { continue };
            if reached[to.idx()] {
                continue;
            }
            let from_reached = (0..n_states).any(|s| reached[s] && edge.leaves(StateId(s as u16)));
            if from_reached {
                reached[to.idx()] = true;
                changed = true;
            }
        }
    }
    reached
}

/// A cycle among the automatic edges: the states in order and, for each,
/// the edge (index into `edges`) taken out of it.
fn automatic_cycle(n_states: usize, edges: &[&Edge]) -> Option<Vec<(StateId, usize)>> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut color = vec![NEW; n_states];
    for root in 0..n_states {
        if color[root] != NEW {
            continue;
        }
        // Depth-first, iteratively: (state, next edge to try), and the edge
        // taken from each path state to the next.
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        let mut taken: Vec<usize> = Vec::new();
        color[root] = ON_PATH;
        while let Some(&(state, next)) = path.last() {
            let s = StateId(state as u16);
            let found = (next..edges.len()).find(|&i| edges[i].automatic && edges[i].leaves(s));
            let Some(i) = found else {
                color[state] = DONE;
                path.pop();
                taken.pop();
                continue;
            };
            if let Some(top) = path.last_mut() {
                top.1 = i + 1;
            }
            let to = edges[i]
                .to
                .expect("invariant: an edge that leaves a state has a target");
            match color[to.idx()] {
                NEW => {
                    color[to.idx()] = ON_PATH;
                    path.push((to.idx(), 0));
                    taken.push(i);
                }
                ON_PATH => {
                    let start = path
                        .iter()
                        .position(|(st, _)| *st == to.idx())
                        .expect("invariant: a state on the path is in the path");
                    taken.push(i);
                    let cycle = path[start..]
                        .iter()
                        .zip(&taken[start..])
                        .map(|((st, _), e)| (StateId(*st as u16), *e))
                        .collect();
                    return Some(cycle);
                }
                _ => {}
            }
        }
    }
    None
}

impl Builder {
    pub(super) fn check_graphs(&mut self) {
        for r in 0..self.graphs.len() {
            let region = RegionId(r as u16);
            self.check_reachable(region);
            let core_cycles = self.check_core_cycle(region);
            if !core_cycles {
                for m in 0..self.market_edges.len() {
                    self.check_market_cycle(region, m);
                }
            }
        }
    }

    fn check_reachable(&mut self, region: RegionId) {
        let graph = &self.graphs[region.idx()];
        let Some(initial) = graph.initial else { return };
        if !graph.is_complete() {
            return;
        }
        let spec_region = &self.spec.regions[region.idx()];
        let reached = reachable(spec_region.states.len(), initial, &graph.edges);
        let initial_name = &spec_region.states[initial.idx()].name;
        for (s, state) in spec_region.states.iter().enumerate() {
            if reached[s] {
                continue;
            }
            self.p.report_line(
                graph.state_lines[s],
                format!(
                    "state \"{}\" in region \"{}\" cannot be reached from the initial state \
                     \"{initial_name}\" by core transitions (market transitions do not count): \
                     add a transition to it, or remove it",
                    state.name, spec_region.name
                ),
            );
        }
    }

    /// Reports a cycle of automatic transitions in the core; returns
    /// whether there is one.
    fn check_core_cycle(&mut self, region: RegionId) -> bool {
        let graph = &self.graphs[region.idx()];
        let edges: Vec<&Edge> = graph.edges.iter().collect();
        let n_states = self.spec.regions[region.idx()].states.len();
        let Some(cycle) = automatic_cycle(n_states, &edges) else {
            return false;
        };
        let line = cycle
            .iter()
            .map(|(_, e)| edges[*e].line)
            .min()
            .unwrap_or(graph.line);
        let message = self.cycle_message(region, &cycle, &edges, None);
        self.p.report_line(line, message);
        true
    }

    /// Reports a cycle of automatic transitions that market `m` adds to a
    /// region whose core has none.
    fn check_market_cycle(&mut self, region: RegionId, m: usize) {
        let (market, market_edges) = &self.market_edges[m];
        let market_edges: Vec<&Edge> = market_edges
            .iter()
            .filter(|(r, _)| *r == region)
            .map(|(_, e)| e)
            .collect();
        if !market_edges.iter().any(|e| e.automatic) {
            return;
        }
        let core = &self.graphs[region.idx()].edges;
        let n_core = core.len();
        let edges: Vec<&Edge> = core.iter().chain(market_edges).collect();
        let n_states = self.spec.regions[region.idx()].states.len();
        let Some(cycle) = automatic_cycle(n_states, &edges) else {
            return;
        };
        let line = cycle
            .iter()
            .filter(|(_, e)| *e >= n_core)
            .map(|(_, e)| edges[*e].line)
            .min()
            .expect("invariant: a cycle absent from the core uses a market transition");
        let market = market.clone();
        let message = self.cycle_message(region, &cycle, &edges, Some(&market));
        self.p.report_line(line, message);
    }

    fn cycle_message(
        &self,
        region: RegionId,
        cycle: &[(StateId, usize)],
        edges: &[&Edge],
        market: Option<&str>,
    ) -> String {
        let spec_region = &self.spec.regions[region.idx()];
        let mut path: Vec<&str> = cycle
            .iter()
            .map(|(s, _)| spec_region.states[s.idx()].name.as_str())
            .collect();
        path.push(path[0]);
        let mut lines: Vec<usize> = cycle.iter().map(|(_, e)| edges[*e].line).collect();
        lines.sort_unstable();
        lines.dedup();
        let lines = match lines.as_slice() {
            [one] => format!("the transition on line {one}"),
            many => {
                let many: Vec<String> = many.iter().map(usize::to_string).collect();
                format!("transitions on lines {}", many.join(", "))
            }
        };
        let scope = match market {
            Some(m) => format!("with market \"{m}\", the "),
            None => "the ".to_owned(),
        };
        format!(
            "{scope}automatic (`when`) transitions of region \"{}\" form a cycle: {} \
             ({lines}); a customer could loop forever: make one of them an `on` transition \
             or remove it",
            spec_region.name,
            path.join(" -> "),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: &[u16], to: u16, automatic: bool) -> Edge {
        Edge {
            line: 1,
            from: Some(FromStates::States(
                from.iter().map(|s| StateId(*s)).collect(),
            )),
            to: Some(StateId(to)),
            automatic,
        }
    }

    #[test]
    fn star_reaches_its_target_from_anywhere() {
        let edges = vec![
            Edge {
                line: 1,
                from: Some(FromStates::Any),
                to: Some(StateId(2)),
                automatic: false,
            },
            edge(&[1], 3, false),
        ];
        assert_eq!(
            reachable(4, StateId(0), &edges),
            vec![true, false, true, false]
        );
    }

    #[test]
    fn cycles_follow_automatic_edges_only() {
        let a = edge(&[0], 1, true);
        let b = edge(&[1], 0, false);
        assert!(automatic_cycle(2, &[&a, &b]).is_none());
        let c = edge(&[1], 2, true);
        let d = edge(&[2], 0, true);
        let cycle = automatic_cycle(3, &[&a, &b, &c, &d]).expect("cycle");
        let states: Vec<u16> = cycle.iter().map(|(s, _)| s.0).collect();
        assert_eq!(states, vec![0, 1, 2]);
        let self_loop = edge(&[1], 1, true);
        assert!(automatic_cycle(2, &[&self_loop]).is_some());
    }
}
