//! The lifecycle model, validated and interned.
//!
//! A model file (TOML, see `docs/model.md`) is parsed
//! and checked by [`load`]; the result is a [`Model`] in which every name the
//! hot path compares (teams, states, events, proofs, SLAs, markets) is a small
//! integer id. Strings stay here, at the edges, for output and diagnostics.
//!
//! A [`Model`] also carries, per market, the *effective* rules (the core plus
//! that market's overlay) in dense lookup tables ([`MarketRules`]), built
//! once by [`Model::new`], so that deciding an event is a handful of indexed
//! reads.

mod calendar_text;
pub mod catalog;
mod durations;
mod graph;
mod load;
mod rules;
mod scale;

pub use calendar_text::{WEEKDAYS, format_interval, open_hours_text, open_per_week};
pub use durations::{Duration, Percent, format_duration, in_words, parse_duration, parse_percent};
pub use graph::{GraphFormat, render_graph};
pub use load::{ModelError, ModelErrors, load, load_file};
pub use rules::{MarketRules, SlaRules};
pub use scale::{scale_duration, scale_model_text};

use rustc_hash::FxHashMap as HashMap;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u16);

        impl $name {
            /// The id as an index into the model's table of this kind.
            #[inline]
            pub fn idx(self) -> usize {
                self.0 as usize
            }
        }
    };
}

id_type!(
    /// A team declared in `teams`.
    TeamId
);
id_type!(
    /// A message class declared in `message_classes`.
    ClassId
);
id_type!(
    /// A source system named in `[sources]`.
    SourceId
);
id_type!(
    /// An event type `source.type` declared in `[sources]`.
    EventTypeId
);
id_type!(
    /// A proof declared in `[proofs.*]`.
    ProofId
);
id_type!(
    /// A region declared in `[regions.*]`.
    RegionId
);
id_type!(
    /// A state, numbered within its region.
    StateId
);
id_type!(
    /// An SLA declared in `[slas.*]`.
    SlaId
);
id_type!(
    /// A market declared in `[markets.*]`.
    MarketId
);

/// How urgent an escalation is; ordered, so `min_severity` filters compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// The lower-case word used in the model file and in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses the model-file word; `None` for anything else.
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl serde::Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An event type a source may send.
#[derive(Debug, Clone)]
pub struct EventType {
    pub source: SourceId,
    /// The type alone (`payment_succeeded`).
    pub name: String,
    /// `source.type`, as the model writes it (`billing.payment_succeeded`).
    pub qualified: String,
}

/// A named fact that events establish and revoke.
#[derive(Debug, Clone)]
pub struct Proof {
    pub name: String,
    pub from: Vec<EventTypeId>,
    pub revoked_by: Vec<EventTypeId>,
}

/// A region: a customer is in exactly one of its states at every moment.
#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    pub initial: StateId,
    pub default_owner: Option<TeamId>,
    /// In file order; `StateId` indexes this.
    pub states: Vec<State>,
    /// Core transitions, in file order.
    pub transitions: Vec<Transition>,
}

/// One state of a region and what holds while a customer is in it.
#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    /// The state's own `owner`, else the region's `default_owner`.
    pub owner: TeamId,
    /// Proofs that must hold to enter.
    pub requires: Vec<ProofId>,
    /// Team -> actions it may take here.
    pub allow: Vec<(TeamId, Vec<String>)>,
    /// Message classes allowed here (union over regions).
    pub messages: Vec<ClassId>,
    /// Message classes forbidden while here (a veto over every region).
    pub suppress: Vec<ClassId>,
}

/// Which states a transition leaves from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromStates {
    /// `"*"`: every state but the target.
    Any,
    States(Vec<StateId>),
}

impl FromStates {
    /// Whether a transition to `to` may leave `state`.
    #[inline]
    pub fn matches(&self, state: StateId, to: StateId) -> bool {
        match self {
            FromStates::Any => state != to,
            FromStates::States(list) => list.contains(&state),
        }
    }
}

/// What triggers a transition: exactly one of `on` and `when`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// `on = "source.type"`: tried when that event arrives.
    On(EventTypeId),
    /// `when = [proofs]`: taken automatically as soon as these hold.
    When(Vec<ProofId>),
}

#[derive(Debug, Clone)]
pub struct Transition {
    pub from: FromStates,
    pub trigger: Trigger,
    pub to: StateId,
}

/// What starts an SLA instance: exactly one of `start` and `in_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlaStart {
    /// `start = [events]`.
    Events(Vec<EventTypeId>),
    /// `in_state = "region.state"`: starts on entry, ends on exit.
    InState(RegionId, StateId),
}

#[derive(Debug, Clone)]
pub struct Sla {
    pub name: String,
    pub owner: TeamId,
    /// Reporting dimension (free text), `""` when absent.
    pub handoff: String,
    pub start: SlaStart,
    pub unless: Vec<ProofId>,
    pub stop: Vec<EventTypeId>,
    pub cancel: Vec<EventTypeId>,
    pub within: Duration,
    /// What a market overlay may set `within` to (inclusive).
    pub within_bounds: Option<(Duration, Duration)>,
    /// In file order; the index is the tier number.
    pub tiers: Vec<Tier>,
    /// The calendar whose open time counts (an index into
    /// [`ModelSpec::calendars`]); `None`: every instant counts.
    pub calendar: Option<usize>,
    /// While the customer is in any of these states, the clock stops
    /// (sorted, deduplicated).
    pub pause_in: Vec<(RegionId, StateId)>,
}

impl Sla {
    /// An SLA named `name` that nothing starts: no tiers, no duration,
    /// owned by the first team. What the loader fills in key by key, and
    /// the hole a version keeps for an SLA it does not declare
    /// ([`Retired`]).
    pub fn inert(name: &str) -> Sla {
        Sla {
            name: name.to_owned(),
            owner: TeamId(0),
            handoff: String::new(),
            start: SlaStart::Events(Vec::new()),
            unless: Vec::new(),
            stop: Vec::new(),
            cancel: Vec::new(),
            within: Duration(0),
            within_bounds: None,
            tiers: Vec::new(),
            calendar: None,
            pause_in: Vec::new(),
        }
    }
}

/// When a tier fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierAt {
    /// A share of the effective `within`, from the start.
    Percent(Percent),
    /// `after_breach` past the deadline, then every `every` (if set).
    AfterBreach {
        after: Duration,
        every: Option<Duration>,
    },
}

#[derive(Debug, Clone)]
pub struct Tier {
    pub at: TierAt,
    /// The tier's `notify`, else the SLA's owner.
    pub notify: TeamId,
    pub severity: Severity,
}

impl Tier {
    /// Whether this tier's firing is the breach (`at = "100%"`).
    pub fn is_breach(&self) -> bool {
        matches!(self.at, TierAt::Percent(p) if p.is_whole())
    }
}

/// A market's overlay: how a state is reached and how fast, never what it means.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// Extra events that establish a proof.
    pub proof_sources: Vec<(ProofId, Vec<EventTypeId>)>,
    /// Extra transitions, tried after the core's of the same region.
    pub transitions: Vec<(RegionId, Transition)>,
    pub slas: Vec<(SlaId, SlaOverlay)>,
}

#[derive(Debug, Clone, Default)]
pub struct SlaOverlay {
    pub within: Option<Duration>,
    /// Another calendar for the market (an index into
    /// [`ModelSpec::calendars`]); it replaces the core's (FAQ 35).
    pub calendar: Option<usize>,
    pub start: Vec<EventTypeId>,
    pub stop: Vec<EventTypeId>,
    pub cancel: Vec<EventTypeId>,
}

#[derive(Debug, Clone)]
pub struct Market {
    pub name: String,
    pub overlay: Overlay,
}

/// The declarative content of a model file, as the loader checked it.
#[derive(Debug, Clone, Default)]
pub struct ModelSpec {
    pub name: String,
    pub version: u32,
    pub teams: Vec<String>,
    pub message_classes: Vec<String>,
    pub sources: Vec<String>,
    pub events: Vec<EventType>,
    pub proofs: Vec<Proof>,
    pub regions: Vec<Region>,
    pub slas: Vec<Sla>,
    pub markets: Vec<Market>,
    /// `[calendars.NAME]`, in file order.
    pub calendars: Vec<std::sync::Arc<super::calendar::Calendar>>,
    /// The text the model was loaded from (`None` for a spec built in
    /// code): what a node stores when it publishes the version, so every
    /// node and every restart loads the same model. Not part of the
    /// fingerprint (comments and formatting are not the model).
    pub source: Option<std::sync::Arc<str>>,
    /// The holes in the tables: names other versions of the model declare
    /// that this one does not (empty for a model as loaded from its file).
    /// Filled by [`catalog::Catalog::bind`].
    pub retired: Retired,
}

/// Names a bound version keeps a place for without declaring them.
///
/// An id is a position in the model's tables, shared by every version
/// served on a data directory ([`catalog`]). A version that drops a name
/// an earlier version declared (or lacks one a later version added) keeps
/// an inert entry at its position: a team that is allowed nothing, an
/// event type nothing listens to, a proof no event establishes, a state no
/// transition enters, an SLA nothing starts, a market with the core's rules.
/// So stored ids keep their meaning, and the version's own ids do not
/// shift. Lookups by name find a retired name (its id is real: other
/// versions' customers use it); what *this version declares* is asked with
/// [`Model::declares_event`] and its siblings, which the engine checks
/// where a customer on this version would start using the name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retired {
    pub teams: Vec<TeamId>,
    pub sources: Vec<SourceId>,
    pub events: Vec<EventTypeId>,
    pub proofs: Vec<ProofId>,
    pub states: Vec<(RegionId, StateId)>,
    pub slas: Vec<SlaId>,
    pub markets: Vec<MarketId>,
}

impl Retired {
    /// Whether the version declares every name in its tables.
    pub fn is_empty(&self) -> bool {
        self == &Retired::default()
    }
}

/// A loaded model: the checked spec, name lookups and per-market rules.
#[derive(Debug, Clone)]
pub struct Model {
    pub spec: ModelSpec,
    teams: HashMap<String, TeamId>,
    classes: HashMap<String, ClassId>,
    sources: HashMap<String, SourceId>,
    /// Per source (indexed by `SourceId`): type -> event type.
    events: Vec<HashMap<String, EventTypeId>>,
    markets: HashMap<String, MarketId>,
    slas: HashMap<String, SlaId>,
    /// Index by `MarketId`; when the model declares no market, one entry
    /// holding the core rules serves every market code.
    rules: Vec<MarketRules>,
}

impl Model {
    /// Builds the lookups and per-market rule tables of a checked spec.
    pub fn new(spec: ModelSpec) -> Model {
        fn index<T: Copy>(names: &[String], id: impl Fn(u16) -> T) -> HashMap<String, T> {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), id(i as u16)))
                .collect()
        }
        let teams = index(&spec.teams, TeamId);
        let classes = index(&spec.message_classes, ClassId);
        let sources = index(&spec.sources, SourceId);
        let mut events = vec![HashMap::default(); spec.sources.len()];
        for (i, e) in spec.events.iter().enumerate() {
            events[e.source.idx()].insert(e.name.clone(), EventTypeId(i as u16));
        }
        let market_names: Vec<String> = spec.markets.iter().map(|m| m.name.clone()).collect();
        let markets = index(&market_names, MarketId);
        let sla_names: Vec<String> = spec.slas.iter().map(|s| s.name.clone()).collect();
        let slas = index(&sla_names, SlaId);
        let rules = if spec.markets.is_empty() {
            vec![MarketRules::build(&spec, &Overlay::default())]
        } else {
            spec.markets
                .iter()
                .map(|m| MarketRules::build(&spec, &m.overlay))
                .collect()
        };
        Model {
            spec,
            teams,
            classes,
            sources,
            events,
            markets,
            slas,
            rules,
        }
    }

    pub fn team(&self, name: &str) -> Option<TeamId> {
        self.teams.get(name).copied()
    }

    pub fn class(&self, name: &str) -> Option<ClassId> {
        self.classes.get(name).copied()
    }

    pub fn source(&self, name: &str) -> Option<SourceId> {
        self.sources.get(name).copied()
    }

    pub fn event(&self, source: SourceId, name: &str) -> Option<EventTypeId> {
        self.events.get(source.idx())?.get(name).copied()
    }

    pub fn sla(&self, name: &str) -> Option<SlaId> {
        self.slas.get(name).copied()
    }

    /// The market of a customer by its code. When the model declares no
    /// market at all, every code is accepted and runs the core as it is.
    pub fn market(&self, code: &str) -> Option<MarketId> {
        if self.spec.markets.is_empty() {
            Some(MarketId(0))
        } else {
            self.markets.get(code).copied()
        }
    }

    /// Whether markets are declared (else any code runs the core).
    pub fn declares_markets(&self) -> bool {
        !self.spec.markets.is_empty()
    }

    /// The effective rules (core plus overlay) of a market.
    #[inline]
    pub fn rules(&self, market: MarketId) -> &MarketRules {
        &self.rules[market.idx()]
    }

    pub fn team_name(&self, t: TeamId) -> &str {
        &self.spec.teams[t.idx()]
    }

    pub fn class_name(&self, c: ClassId) -> &str {
        &self.spec.message_classes[c.idx()]
    }

    pub fn source_name(&self, s: SourceId) -> &str {
        &self.spec.sources[s.idx()]
    }

    pub fn event_type(&self, e: EventTypeId) -> &EventType {
        &self.spec.events[e.idx()]
    }

    pub fn proof_name(&self, p: ProofId) -> &str {
        &self.spec.proofs[p.idx()].name
    }

    pub fn region(&self, r: RegionId) -> &Region {
        &self.spec.regions[r.idx()]
    }

    pub fn state(&self, r: RegionId, s: StateId) -> &State {
        &self.spec.regions[r.idx()].states[s.idx()]
    }

    pub fn sla_spec(&self, s: SlaId) -> &Sla {
        &self.spec.slas[s.idx()]
    }

    pub fn market_name(&self, m: MarketId) -> &str {
        self.spec
            .markets
            .get(m.idx())
            .map(|m| m.name.as_str())
            .unwrap_or("")
    }

    pub fn region_ids(&self) -> impl Iterator<Item = RegionId> + '_ {
        (0..self.spec.regions.len()).map(|i| RegionId(i as u16))
    }

    pub fn sla_ids(&self) -> impl Iterator<Item = SlaId> + '_ {
        (0..self.spec.slas.len()).map(|i| SlaId(i as u16))
    }

    /// Whether this version declares the team (else its place is a hole
    /// kept for other versions: [`Retired`]).
    pub fn declares_team(&self, t: TeamId) -> bool {
        t.idx() < self.spec.teams.len() && !self.spec.retired.teams.contains(&t)
    }

    /// Whether this version declares the event type.
    #[inline]
    pub fn declares_event(&self, e: EventTypeId) -> bool {
        e.idx() < self.spec.events.len() && !self.spec.retired.events.contains(&e)
    }

    /// Whether this version declares the source.
    pub fn declares_source(&self, s: SourceId) -> bool {
        s.idx() < self.spec.sources.len() && !self.spec.retired.sources.contains(&s)
    }

    /// Whether this version declares the proof.
    pub fn declares_proof(&self, p: ProofId) -> bool {
        p.idx() < self.spec.proofs.len() && !self.spec.retired.proofs.contains(&p)
    }

    /// Whether this version declares the region's state.
    pub fn declares_state(&self, r: RegionId, s: StateId) -> bool {
        self.spec
            .regions
            .get(r.idx())
            .is_some_and(|region| s.idx() < region.states.len())
            && !self.spec.retired.states.contains(&(r, s))
    }

    /// Whether this version declares the SLA.
    pub fn declares_sla(&self, s: SlaId) -> bool {
        s.idx() < self.spec.slas.len() && !self.spec.retired.slas.contains(&s)
    }

    /// The market of a customer by its code, if this version declares it
    /// (where [`Model::market`] also finds a market kept only for other
    /// versions). When the model declares no market, every code is
    /// accepted.
    pub fn declared_market(&self, code: &str) -> Option<MarketId> {
        self.market(code)
            .filter(|m| !self.spec.retired.markets.contains(m))
    }

    /// The names of this version's own markets (retired ones left out).
    pub fn declared_market_names(&self) -> Vec<&str> {
        self.spec
            .markets
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.spec.retired.markets.contains(&MarketId(*i as u16)))
            .map(|(_, m)| m.name.as_str())
            .collect()
    }
}
