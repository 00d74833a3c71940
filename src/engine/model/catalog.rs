//! The names behind stored ids, and what makes two model files the same
//! model.
//!
//! The engine works on small interned ids (`StateId`, `SlaId`, ...), and
//! durable records (customers, journal entries, timer keys, escalations)
//! keep those ids. An id is a position in the model's tables, and a
//! position moves when a model file is edited: a state declared before
//! `paid` would shift every later state. So a data directory keeps a
//! [`Catalog`]: for every kind of name a stored record refers to, the names
//! in the order their ids were first given. It is only ever appended to.
//! A model is served on a data directory only after [`Catalog::bind`] has
//! renumbered it so that every name keeps the id the catalog gave it (new
//! names get the next ids): moving declarations around, or adding a state
//! in a new version, never reinterprets a stored customer.
//!
//! A node serves several versions at once (`crate::versions`), all
//! renumbered to the same catalog, so an id means one name in every
//! version. A new version is bound with [`Catalog::bind`]: new names are
//! appended, and a catalog name the version does not declare (dropped, or
//! added by a later version) keeps its id as an inert hole ([`Retired`]).
//! Regions have no holes: a version may not drop one (a customer is in a
//! state of each), and only lacks those later versions appended, which
//! [`Catalog::rebind`] (a recorded version bound again) checks.
//!
//! A model's [`fingerprint`] is a hash of its canonical form: what the
//! model means, by name, with declaration order, formatting and comments
//! left out. Transitions and tiers keep their order, which is meaningful
//! (transitions are tried in file order; tiers are numbered by it). The
//! catalog remembers the fingerprint of every version served on it, so a
//! changed model under a version that was already served is refused.
//! Keys added to the format later (calendars, an SLA's `calendar` and
//! `pause_in`) are left out of the canonical form while unused, so a
//! model that does not use them keeps the fingerprint it was served with.
//!
//! Pure: no I/O. The node reads and writes the catalog in its store.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    EventType, EventTypeId, FromStates, Market, MarketId, ModelSpec, Overlay, Proof, ProofId,
    RegionId, Retired, Sla, SlaId, SlaStart, SourceId, State, StateId, TeamId, TierAt, Transition,
    Trigger, WEEKDAYS, format_interval,
};

// ------------------------------------------------------------ fingerprint

/// The SHA-256 (hex) of the model's canonical form. Equal for two files
/// that differ only in comments, formatting, the order of declarations
/// (teams, sources, events, proofs, regions, states, SLAs, markets) or the
/// order inside sets (`requires`, `from`, `start`, ...); different when
/// anything the engine decides with differs, including the model name
/// (the version number is not part of it).
pub fn fingerprint(spec: &ModelSpec) -> String {
    let canonical = serde_json::to_string(&Canonical::of(spec))
        .expect("invariant: the canonical form has only strings, numbers and maps");
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first 12 hex digits of a fingerprint: what people read in logs and
/// errors.
pub fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}

/// The model by name: maps sort their keys, sets are sorted, ordered lists
/// keep their order.
#[derive(Serialize)]
struct Canonical {
    name: String,
    teams: BTreeSet<String>,
    message_classes: BTreeSet<String>,
    sources: BTreeMap<String, BTreeSet<String>>,
    proofs: BTreeMap<String, CanonicalProof>,
    regions: BTreeMap<String, CanonicalRegion>,
    slas: BTreeMap<String, CanonicalSla>,
    markets: BTreeMap<String, CanonicalMarket>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    calendars: BTreeMap<String, CanonicalCalendar>,
}

/// A calendar as declared: what the engine counts time with.
#[derive(Serialize)]
struct CanonicalCalendar {
    time_zone: String,
    /// Day (`mon`..`sun`) -> its intervals in order (`"09:00-17:00"`,
    /// touching ones as one span, as the calendar counts them); closed
    /// days left out.
    open: BTreeMap<&'static str, Vec<String>>,
    closed: BTreeSet<String>,
}

#[derive(Serialize)]
struct CanonicalProof {
    from: BTreeSet<String>,
    revoked_by: BTreeSet<String>,
}

#[derive(Serialize)]
struct CanonicalRegion {
    initial: String,
    default_owner: Option<String>,
    states: BTreeMap<String, CanonicalState>,
    transitions: Vec<CanonicalTransition>,
}

#[derive(Serialize)]
struct CanonicalState {
    owner: String,
    requires: BTreeSet<String>,
    allow: BTreeMap<String, BTreeSet<String>>,
    messages: BTreeSet<String>,
    suppress: BTreeSet<String>,
}

#[derive(Serialize)]
struct CanonicalTransition {
    region: String,
    /// `None` for `"*"`.
    from: Option<BTreeSet<String>>,
    on: Option<String>,
    when: Option<BTreeSet<String>>,
    to: String,
}

#[derive(Serialize)]
struct CanonicalSla {
    owner: String,
    handoff: String,
    start: Option<BTreeSet<String>>,
    in_state: Option<String>,
    unless: BTreeSet<String>,
    stop: BTreeSet<String>,
    cancel: BTreeSet<String>,
    within_us: i64,
    within_bounds_us: Option<(i64, i64)>,
    tiers: Vec<CanonicalTier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    calendar: Option<String>,
    /// `region.state`.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pause_in: BTreeSet<String>,
}

#[derive(Serialize)]
struct CanonicalTier {
    /// `"50%"`, or `None` for a re-escalation tier.
    at: Option<String>,
    after_breach_us: Option<i64>,
    every_us: Option<i64>,
    notify: String,
    severity: &'static str,
}

#[derive(Serialize)]
struct CanonicalMarket {
    proof_sources: BTreeMap<String, BTreeSet<String>>,
    transitions: Vec<CanonicalTransition>,
    slas: BTreeMap<String, CanonicalSlaOverlay>,
}

#[derive(Serialize)]
struct CanonicalSlaOverlay {
    within_us: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    calendar: Option<String>,
    start: BTreeSet<String>,
    stop: BTreeSet<String>,
    cancel: BTreeSet<String>,
}

impl Canonical {
    fn of(spec: &ModelSpec) -> Canonical {
        let team = |t: TeamId| spec.teams[t.idx()].clone();
        let event = |e: &EventTypeId| spec.events[e.idx()].qualified.clone();
        let events = |list: &[EventTypeId]| list.iter().map(event).collect::<BTreeSet<_>>();
        let proof = |p: &ProofId| spec.proofs[p.idx()].name.clone();
        let proofs = |list: &[ProofId]| list.iter().map(proof).collect::<BTreeSet<_>>();
        let state = |r: RegionId, s: StateId| spec.regions[r.idx()].states[s.idx()].name.clone();
        let region_state =
            |r: RegionId, s: StateId| format!("{}.{}", spec.regions[r.idx()].name, state(r, s));
        let calendar = |c: usize| spec.calendars[c].name.clone();
        let transition = |r: RegionId, t: &Transition| CanonicalTransition {
            region: spec.regions[r.idx()].name.clone(),
            from: match &t.from {
                FromStates::Any => None,
                FromStates::States(list) => Some(list.iter().map(|s| state(r, *s)).collect()),
            },
            on: match &t.trigger {
                Trigger::On(e) => Some(event(e)),
                Trigger::When(_) => None,
            },
            when: match &t.trigger {
                Trigger::On(_) => None,
                Trigger::When(list) => Some(proofs(list)),
            },
            to: state(r, t.to),
        };
        let mut sources: BTreeMap<String, BTreeSet<String>> = spec
            .sources
            .iter()
            .map(|s| (s.clone(), BTreeSet::new()))
            .collect();
        for e in &spec.events {
            if let Some(set) = sources.get_mut(&spec.sources[e.source.idx()]) {
                set.insert(e.name.clone());
            }
        }
        Canonical {
            name: spec.name.clone(),
            teams: spec.teams.iter().cloned().collect(),
            message_classes: spec.message_classes.iter().cloned().collect(),
            sources,
            proofs: spec
                .proofs
                .iter()
                .map(|p| {
                    let body = CanonicalProof {
                        from: events(&p.from),
                        revoked_by: events(&p.revoked_by),
                    };
                    (p.name.clone(), body)
                })
                .collect(),
            regions: spec
                .regions
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let id = RegionId(i as u16);
                    let states = r
                        .states
                        .iter()
                        .map(|s| {
                            let body = CanonicalState {
                                owner: team(s.owner),
                                requires: proofs(&s.requires),
                                allow: s
                                    .allow
                                    .iter()
                                    .map(|(t, actions)| {
                                        (team(*t), actions.iter().cloned().collect())
                                    })
                                    .collect(),
                                messages: s
                                    .messages
                                    .iter()
                                    .map(|c| spec.message_classes[c.idx()].clone())
                                    .collect(),
                                suppress: s
                                    .suppress
                                    .iter()
                                    .map(|c| spec.message_classes[c.idx()].clone())
                                    .collect(),
                            };
                            (s.name.clone(), body)
                        })
                        .collect();
                    let body = CanonicalRegion {
                        initial: state(id, r.initial),
                        default_owner: r.default_owner.map(team),
                        states,
                        transitions: r.transitions.iter().map(|t| transition(id, t)).collect(),
                    };
                    (r.name.clone(), body)
                })
                .collect(),
            slas: spec
                .slas
                .iter()
                .map(|s| {
                    let body = CanonicalSla {
                        owner: team(s.owner),
                        handoff: s.handoff.clone(),
                        start: match &s.start {
                            SlaStart::Events(list) => Some(events(list)),
                            SlaStart::InState(..) => None,
                        },
                        in_state: match &s.start {
                            SlaStart::Events(_) => None,
                            SlaStart::InState(r, st) => Some(region_state(*r, *st)),
                        },
                        unless: proofs(&s.unless),
                        stop: events(&s.stop),
                        cancel: events(&s.cancel),
                        within_us: s.within.micros(),
                        within_bounds_us: s
                            .within_bounds
                            .map(|(lo, hi)| (lo.micros(), hi.micros())),
                        tiers: s
                            .tiers
                            .iter()
                            .map(|t| CanonicalTier {
                                at: match t.at {
                                    TierAt::Percent(p) => Some(p.to_string()),
                                    TierAt::AfterBreach { .. } => None,
                                },
                                after_breach_us: match t.at {
                                    TierAt::Percent(_) => None,
                                    TierAt::AfterBreach { after, .. } => Some(after.micros()),
                                },
                                every_us: match t.at {
                                    TierAt::Percent(_) => None,
                                    TierAt::AfterBreach { every, .. } => every.map(|d| d.micros()),
                                },
                                notify: team(t.notify),
                                severity: t.severity.as_str(),
                            })
                            .collect(),
                        calendar: s.calendar.map(calendar),
                        pause_in: s
                            .pause_in
                            .iter()
                            .map(|(r, st)| region_state(*r, *st))
                            .collect(),
                    };
                    (s.name.clone(), body)
                })
                .collect(),
            markets: spec
                .markets
                .iter()
                .map(|m| {
                    let o = &m.overlay;
                    let body = CanonicalMarket {
                        proof_sources: o
                            .proof_sources
                            .iter()
                            .map(|(p, list)| (proof(p), events(list)))
                            .collect(),
                        transitions: o
                            .transitions
                            .iter()
                            .map(|(r, t)| transition(*r, t))
                            .collect(),
                        slas: o
                            .slas
                            .iter()
                            .map(|(s, ov)| {
                                let body = CanonicalSlaOverlay {
                                    within_us: ov.within.map(|d| d.micros()),
                                    calendar: ov.calendar.map(calendar),
                                    start: events(&ov.start),
                                    stop: events(&ov.stop),
                                    cancel: events(&ov.cancel),
                                };
                                (spec.slas[s.idx()].name.clone(), body)
                            })
                            .collect(),
                    };
                    (m.name.clone(), body)
                })
                .collect(),
            calendars: spec
                .calendars
                .iter()
                .map(|c| {
                    let open = WEEKDAYS
                        .iter()
                        .zip(c.week())
                        .filter(|(_, intervals)| !intervals.is_empty())
                        .map(|(day, intervals)| {
                            let text = intervals
                                .iter()
                                .map(|&(start, end)| format_interval(start, end))
                                .collect();
                            (*day, text)
                        })
                        .collect();
                    let body = CanonicalCalendar {
                        time_zone: c.zone_name.clone(),
                        open,
                        closed: c.closed().iter().map(|d| d.to_string()).collect(),
                    };
                    (c.name.clone(), body)
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------- catalog

/// The names behind the ids of every stored record of one data directory,
/// each list in id order, and the versions served on it. Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// `[model] name`: one data directory holds one model's customers.
    pub model: String,
    pub teams: Vec<String>,
    pub sources: Vec<String>,
    /// Qualified, `source.type`.
    pub events: Vec<String>,
    pub proofs: Vec<String>,
    pub regions: Vec<CatalogRegion>,
    pub slas: Vec<CatalogSla>,
    /// Empty while the model declares no market (every market code then
    /// runs the core as market 0).
    pub markets: Vec<String>,
    /// Every version served here, in the order first served.
    pub versions: Vec<ServedVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRegion {
    pub name: String,
    pub states: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogSla {
    pub name: String,
    /// Tiers are stored by number: an instance's tiers are read by
    /// position, so the count must not change.
    pub tiers: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedVersion {
    pub version: u32,
    pub fingerprint: String,
}

/// Why a model cannot be served on a data directory. Each message says
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// The data directory holds another model's customers.
    OtherModel { stored: String, model: String },
    /// The version was served before with a different model.
    Changed {
        version: u32,
        stored: String,
        now: String,
        next_version: u32,
    },
    /// The model lacks names (or changes tier counts) that stored records
    /// refer to.
    Incompatible {
        version: u32,
        served: Vec<u32>,
        problems: Vec<String>,
    },
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::OtherModel { stored, model } => write!(
                f,
                "this data directory holds the customers of model `{stored}`, and the model \
                 given is `{model}`: serve `{stored}` here, or give `{model}` a data directory \
                 of its own (--data)"
            ),
            BindError::Changed {
                version,
                stored,
                now,
                next_version,
            } => write!(
                f,
                "model version {version} was served on this data directory with different content \
                 (fingerprint {}; this file's is {}), and its customers were written with that \
                 model: a changed model needs a new version. Set `version = {next_version}` under \
                 [model] (customers keep their states by name), or serve the model version \
                 {version} was served with",
                short(stored),
                short(now)
            ),
            BindError::Incompatible {
                version,
                served,
                problems,
            } => {
                let served: Vec<String> = served.iter().map(u32::to_string).collect();
                write!(
                    f,
                    "model version {version} cannot serve the customers stored here (written by \
                     version {}): ",
                    served.join(", ")
                )?;
                write!(f, "{}", problems.join("; "))?;
                write!(
                    f,
                    ". A version may add or drop states, proofs, events, SLAs, teams and \
                     markets, but its regions and each SLA's number of tiers are what stored \
                     customers are read by: keep those, or give the model a data directory of \
                     its own"
                )
            }
        }
    }
}

impl std::error::Error for BindError {}

impl Catalog {
    /// The names alone (every kind, in id order), without the versions:
    /// what changes when a version adds names.
    pub fn names(&self) -> Catalog {
        Catalog {
            versions: Vec::new(),
            ..self.clone()
        }
    }

    /// The catalog of a new data directory: the model's own order.
    pub fn new(spec: &ModelSpec) -> Catalog {
        let mut catalog = Catalog::of_spec(spec, None);
        catalog.versions = vec![ServedVersion {
            version: spec.version,
            fingerprint: fingerprint(spec),
        }];
        catalog
    }

    /// The names of a spec's tables in id order, holes included (no
    /// versions). A retired SLA keeps the tier count `stored` records for
    /// it (its hole has no tiers).
    fn of_spec(spec: &ModelSpec, stored: Option<&Catalog>) -> Catalog {
        Catalog {
            model: spec.name.clone(),
            teams: spec.teams.clone(),
            sources: spec.sources.clone(),
            events: spec.events.iter().map(|e| e.qualified.clone()).collect(),
            proofs: spec.proofs.iter().map(|p| p.name.clone()).collect(),
            regions: spec
                .regions
                .iter()
                .map(|r| CatalogRegion {
                    name: r.name.clone(),
                    states: r.states.iter().map(|s| s.name.clone()).collect(),
                })
                .collect(),
            slas: spec
                .slas
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let retired = spec.retired.slas.contains(&SlaId(i as u16));
                    let stored_tiers = stored
                        .and_then(|c| c.slas.iter().find(|c| c.name == s.name))
                        .map(|c| c.tiers);
                    CatalogSla {
                        name: s.name.clone(),
                        tiers: match stored_tiers {
                            Some(n) if retired => n,
                            _ => s.tiers.len(),
                        },
                    }
                })
                .collect(),
            markets: spec.markets.iter().map(|m| m.name.clone()).collect(),
            versions: Vec::new(),
        }
    }

    /// Checks that `spec` may serve the customers this catalog describes,
    /// and renumbers it so that every name keeps its stored id. Returns the
    /// renumbered spec and the catalog extended with its new names (and its
    /// version, if new), to be stored before anything is written with it.
    pub fn bind(&self, spec: ModelSpec) -> Result<(ModelSpec, Catalog), BindError> {
        if spec.name != self.model {
            return Err(BindError::OtherModel {
                stored: self.model.clone(),
                model: spec.name,
            });
        }
        let fp = fingerprint(&spec);
        if let Some(v) = self.versions.iter().find(|v| v.version == spec.version)
            && v.fingerprint != fp
        {
            let highest = self.versions.iter().map(|v| v.version).max().unwrap_or(0);
            return Err(BindError::Changed {
                version: spec.version,
                stored: v.fingerprint.clone(),
                now: fp,
                next_version: highest.max(spec.version) + 1,
            });
        }
        let problems = self.missing_from(&spec);
        if !problems.is_empty() {
            return Err(BindError::Incompatible {
                version: spec.version,
                served: self.versions.iter().map(|v| v.version).collect(),
                problems,
            });
        }
        let order = Order::new(self, &spec);
        let spec = order.renumber(spec);
        let mut extended = Catalog::of_spec(&spec, Some(self));
        extended.versions = self.versions.clone();
        if !extended.versions.iter().any(|v| v.version == spec.version) {
            extended.versions.push(ServedVersion {
                version: spec.version,
                fingerprint: fp,
            });
        }
        Ok((spec, extended))
    }

    /// Renumbers a version this catalog already records (same version
    /// number, same fingerprint): a published version loaded again, at
    /// start or from another node's publish. Names that later versions
    /// added may be absent from it: they were appended after its own, so
    /// its ids are the ones it was published with. A version the catalog
    /// does not record is bound as new ([`Catalog::bind`]'s checks).
    pub fn rebind(&self, spec: ModelSpec) -> Result<ModelSpec, BindError> {
        if spec.name != self.model {
            return Err(BindError::OtherModel {
                stored: self.model.clone(),
                model: spec.name,
            });
        }
        if !self.versions.iter().any(|v| v.version == spec.version) {
            return self.bind(spec).map(|(spec, _)| spec);
        }
        let version = spec.version;
        let (spec, _) = self.bind_lenient(spec)?;
        let own = Catalog::of_spec(&spec, Some(self));
        let problems = self.not_prefix(&own);
        if !problems.is_empty() {
            return Err(BindError::Incompatible {
                version,
                served: self.versions.iter().map(|v| v.version).collect(),
                problems,
            });
        }
        Ok(spec)
    }

    /// The fingerprint check of [`Catalog::bind`] and its renumbering,
    /// without requiring every stored name.
    fn bind_lenient(&self, spec: ModelSpec) -> Result<(ModelSpec, String), BindError> {
        let fp = fingerprint(&spec);
        if let Some(v) = self.versions.iter().find(|v| v.version == spec.version)
            && v.fingerprint != fp
        {
            let highest = self.versions.iter().map(|v| v.version).max().unwrap_or(0);
            return Err(BindError::Changed {
                version: spec.version,
                stored: v.fingerprint.clone(),
                now: fp,
                next_version: highest.max(spec.version) + 1,
            });
        }
        let order = Order::new(self, &spec);
        Ok((order.renumber(spec), fp))
    }

    /// Where `own` (a renumbered version's names) is not, kind by kind, a
    /// prefix of this catalog: its ids would not be the catalog's.
    fn not_prefix(&self, own: &Catalog) -> Vec<String> {
        fn prefix(kind: &str, all: &[String], own: &[String]) -> Option<String> {
            (all.get(..own.len()) != Some(own)).then(|| {
                format!(
                    "its {kind} names ({}) are not the first ones the data directory numbered \
                     ({})",
                    own.join(", "),
                    all.join(", ")
                )
            })
        }
        let mut problems = Vec::new();
        problems.extend(prefix("team", &self.teams, &own.teams));
        problems.extend(prefix("source", &self.sources, &own.sources));
        problems.extend(prefix("event", &self.events, &own.events));
        problems.extend(prefix("proof", &self.proofs, &own.proofs));
        let regions = |c: &Catalog| c.regions.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        problems.extend(prefix("region", &regions(self), &regions(own)));
        for (all, mine) in self.regions.iter().zip(&own.regions) {
            problems.extend(prefix(
                &format!("{} state", all.name),
                &all.states,
                &mine.states,
            ));
        }
        let slas = |c: &Catalog| c.slas.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        problems.extend(prefix("SLA", &slas(self), &slas(own)));
        for (all, mine) in self.slas.iter().zip(&own.slas) {
            if all.name == mine.name && all.tiers != mine.tiers {
                problems.push(format!(
                    "SLA `{}` has {} tiers where stored instances have {}",
                    all.name, mine.tiers, all.tiers
                ));
            }
        }
        problems.extend(prefix("market", &self.markets, &own.markets));
        problems
    }

    /// What stored records need that `spec` cannot give, in words. A
    /// version may drop teams, sources, events, proofs, states, SLAs and
    /// markets (their ids stay, as holes: [`Retired`]); it may not drop a
    /// region (every customer is in a state of each), change the number of
    /// an SLA's tiers (tiers are stored by number), or go from declaring
    /// markets to declaring none (which means "every code runs the core").
    fn missing_from(&self, spec: &ModelSpec) -> Vec<String> {
        let mut problems = Vec::new();
        let dropped: Vec<&str> = self
            .regions
            .iter()
            .map(|r| r.name.as_str())
            .filter(|n| !spec.regions.iter().any(|r| r.name == *n))
            .collect();
        if !dropped.is_empty() {
            problems.push(format!(
                "it no longer declares region `{}` (a region cannot be removed: every customer \
                 is in one state of each region; keep it, with the states customers are in)",
                dropped.join("`, `")
            ));
        }
        for stored in &self.slas {
            if let Some(s) = spec.slas.iter().find(|s| s.name == stored.name)
                && s.tiers.len() != stored.tiers
            {
                problems.push(format!(
                    "SLA `{}` has {} tiers where stored instances have {} (tiers are stored by \
                     number)",
                    s.name,
                    s.tiers.len(),
                    stored.tiers
                ));
            }
        }
        if self.markets.is_empty() && !spec.markets.is_empty() {
            problems.push(
                "it declares markets where the stored customers' model declared none (they run \
                 the core under any market code)"
                    .to_owned(),
            );
        }
        if !self.markets.is_empty() && spec.markets.is_empty() {
            problems.push(format!(
                "it declares no market, where the stored customers' markets are `{}` (a model \
                 without markets runs the core under any code): keep at least one market",
                self.markets.join("`, `")
            ));
        }
        problems
    }
}

// ------------------------------------------------------------ renumbering

/// One place in a kind's new order.
#[derive(Debug, Clone)]
enum Slot {
    /// The version's own entry at this (old) position of its file.
    Own(usize),
    /// A name the catalog holds that the version does not declare: an
    /// inert entry keeps its id ([`Retired`]).
    Hole(String),
}

/// One kind's new order: what sits at each new id, and `new_of[old]`.
#[derive(Debug, Clone, Default)]
struct Perm {
    slots: Vec<Slot>,
    new_of: Vec<u16>,
}

impl Perm {
    /// The catalog's names first, each at its stored id (a hole where
    /// `names` lacks it), then `names` the catalog lacks, in their order.
    fn new(stored: &[String], names: &[&str]) -> Perm {
        let mut slots: Vec<Slot> = stored
            .iter()
            .map(|n| match names.iter().position(|m| m == n) {
                Some(i) => Slot::Own(i),
                None => Slot::Hole(n.clone()),
            })
            .collect();
        for (i, n) in names.iter().enumerate() {
            if !stored.iter().any(|s| s == n) {
                slots.push(Slot::Own(i));
            }
        }
        Perm::of(slots, names.len())
    }

    /// As [`Perm::new`] without holes: the catalog's names the version
    /// declares, in the catalog's order, then its new ones. For regions,
    /// which have no holes (a customer is in a state of every region of
    /// its version); a version may lack only regions appended after its
    /// own, which [`Catalog::rebind`] checks.
    fn dense(stored: &[String], names: &[&str]) -> Perm {
        let mut perm = Perm::new(stored, names);
        perm.slots.retain(|s| matches!(s, Slot::Own(_)));
        Perm::of(perm.slots, names.len())
    }

    fn of(slots: Vec<Slot>, own: usize) -> Perm {
        let mut new_of = vec![0u16; own];
        for (new, slot) in slots.iter().enumerate() {
            if let Slot::Own(old) = slot {
                new_of[*old] = new as u16;
            }
        }
        Perm { slots, new_of }
    }

    fn id(&self, old: u16) -> u16 {
        self.new_of[old as usize]
    }

    /// The items in the new order, `hole(name)` at each hole.
    fn permute<T: Clone>(&self, items: &[T], hole: impl Fn(&str) -> T) -> Vec<T> {
        self.slots
            .iter()
            .map(|slot| match slot {
                Slot::Own(old) => items[*old].clone(),
                Slot::Hole(name) => hole(name),
            })
            .collect()
    }

    /// The new ids that are holes.
    fn holes(&self) -> impl Iterator<Item = u16> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Slot::Hole(_)))
            .map(|(i, _)| i as u16)
    }
}

/// The new order of every kind a stored record refers to.
struct Order {
    teams: Perm,
    sources: Perm,
    events: Perm,
    proofs: Perm,
    regions: Perm,
    /// Indexed by the *old* region id.
    states: Vec<Perm>,
    slas: Perm,
    markets: Perm,
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<&str> {
    items.iter().map(name).collect()
}

impl Order {
    fn new(catalog: &Catalog, spec: &ModelSpec) -> Order {
        let regions: Vec<String> = catalog.regions.iter().map(|r| r.name.clone()).collect();
        let slas: Vec<String> = catalog.slas.iter().map(|s| s.name.clone()).collect();
        Order {
            teams: Perm::new(&catalog.teams, &names(&spec.teams, String::as_str)),
            sources: Perm::new(&catalog.sources, &names(&spec.sources, String::as_str)),
            events: Perm::new(&catalog.events, &names(&spec.events, |e| &e.qualified)),
            proofs: Perm::new(&catalog.proofs, &names(&spec.proofs, |p| &p.name)),
            regions: Perm::dense(&regions, &names(&spec.regions, |r| &r.name)),
            states: spec
                .regions
                .iter()
                .map(|r| {
                    let stored = catalog
                        .regions
                        .iter()
                        .find(|c| c.name == r.name)
                        .map(|c| c.states.clone())
                        .unwrap_or_default();
                    Perm::new(&stored, &names(&r.states, |s| &s.name))
                })
                .collect(),
            slas: Perm::new(&slas, &names(&spec.slas, |s| &s.name)),
            markets: Perm::new(&catalog.markets, &names(&spec.markets, |m| &m.name)),
        }
    }

    fn team(&self, t: TeamId) -> TeamId {
        TeamId(self.teams.id(t.0))
    }

    fn event(&self, e: EventTypeId) -> EventTypeId {
        EventTypeId(self.events.id(e.0))
    }

    fn events(&self, list: &[EventTypeId]) -> Vec<EventTypeId> {
        list.iter().map(|e| self.event(*e)).collect()
    }

    fn proofs(&self, list: &[ProofId]) -> Vec<ProofId> {
        list.iter().map(|p| ProofId(self.proofs.id(p.0))).collect()
    }

    /// A state of the region whose *old* id is `r`.
    fn state(&self, r: RegionId, s: StateId) -> StateId {
        StateId(self.states[r.idx()].id(s.0))
    }

    /// A transition of the region whose *old* id is `r`.
    fn transition(&self, r: RegionId, t: &Transition) -> Transition {
        Transition {
            from: match &t.from {
                FromStates::Any => FromStates::Any,
                FromStates::States(list) => {
                    FromStates::States(list.iter().map(|s| self.state(r, *s)).collect())
                }
            },
            trigger: match &t.trigger {
                Trigger::On(e) => Trigger::On(self.event(*e)),
                Trigger::When(list) => Trigger::When(self.proofs(list)),
            },
            to: self.state(r, t.to),
        }
    }

    /// The same model with every id in the new order, and a hole (an inert
    /// entry, listed in [`ModelSpec::retired`]) for each catalog name it
    /// does not declare.
    fn renumber(&self, spec: ModelSpec) -> ModelSpec {
        let mut out = spec.clone();
        // A hole must name a team; nothing reads a hole's owner (no
        // customer of this version can be in a retired state or run a
        // retired SLA: migration checks it).
        let any_team = TeamId(0);
        out.teams = self.teams.permute(&spec.teams, str::to_owned);
        out.sources = self.sources.permute(&spec.sources, str::to_owned);
        let source_of = |qualified: &str| {
            let source = qualified.split_once('.').map_or(qualified, |(s, _)| s);
            let id = out.sources.iter().position(|s| s == source).unwrap_or(0);
            SourceId(id as u16)
        };
        let events = self.events.permute(&spec.events, |qualified| EventType {
            source: source_of(qualified),
            name: qualified
                .split_once('.')
                .map_or(qualified, |(_, t)| t)
                .to_owned(),
            qualified: qualified.to_owned(),
        });
        out.events = events;
        for (e, own) in out.events.iter_mut().zip(&self.events.slots) {
            if matches!(own, Slot::Own(_)) {
                e.source = SourceId(self.sources.id(e.source.0));
            }
        }
        out.proofs = self.proofs.permute(&spec.proofs, |name| Proof {
            name: name.to_owned(),
            from: Vec::new(),
            revoked_by: Vec::new(),
        });
        for (p, own) in out.proofs.iter_mut().zip(&self.proofs.slots) {
            if matches!(own, Slot::Own(_)) {
                p.from = self.events(&p.from);
                p.revoked_by = self.events(&p.revoked_by);
            }
        }
        let mut retired_states = Vec::new();
        out.regions = self
            .regions
            .slots
            .iter()
            .enumerate()
            .map(|(new, slot)| {
                let Slot::Own(old) = *slot else {
                    unreachable!("regions are renumbered without holes")
                };
                let id = RegionId(old as u16);
                let mut r = spec.regions[old].clone();
                r.initial = self.state(id, r.initial);
                r.default_owner = r.default_owner.map(|t| self.team(t));
                let own = &self.states[old];
                r.states = own.permute(&spec.regions[old].states, |name| State {
                    name: name.to_owned(),
                    owner: any_team,
                    requires: Vec::new(),
                    allow: Vec::new(),
                    messages: Vec::new(),
                    suppress: Vec::new(),
                });
                for (s, slot) in r.states.iter_mut().zip(&own.slots) {
                    if matches!(slot, Slot::Own(_)) {
                        s.owner = self.team(s.owner);
                        s.requires = self.proofs(&s.requires);
                        for (t, _) in &mut s.allow {
                            *t = self.team(*t);
                        }
                    }
                }
                retired_states.extend(own.holes().map(|s| (RegionId(new as u16), StateId(s))));
                r.transitions = r
                    .transitions
                    .iter()
                    .map(|t| self.transition(id, t))
                    .collect();
                r
            })
            .collect();
        out.slas = self.slas.permute(&spec.slas, Sla::inert);
        for (s, slot) in out.slas.iter_mut().zip(&self.slas.slots) {
            if !matches!(slot, Slot::Own(_)) {
                continue;
            }
            s.owner = self.team(s.owner);
            s.start = match &s.start {
                SlaStart::Events(list) => SlaStart::Events(self.events(list)),
                SlaStart::InState(r, st) => {
                    SlaStart::InState(RegionId(self.regions.id(r.0)), self.state(*r, *st))
                }
            };
            s.unless = self.proofs(&s.unless);
            s.stop = self.events(&s.stop);
            s.cancel = self.events(&s.cancel);
            s.pause_in = s
                .pause_in
                .iter()
                .map(|&(r, st)| (RegionId(self.regions.id(r.0)), self.state(r, st)))
                .collect();
            s.pause_in.sort();
            for t in &mut s.tiers {
                t.notify = self.team(t.notify);
            }
        }
        out.markets = self.markets.permute(&spec.markets, |name| Market {
            name: name.to_owned(),
            overlay: Overlay::default(),
        });
        for (m, slot) in out.markets.iter_mut().zip(&self.markets.slots) {
            if !matches!(slot, Slot::Own(_)) {
                continue;
            }
            let o = &mut m.overlay;
            for (p, list) in &mut o.proof_sources {
                *p = ProofId(self.proofs.id(p.0));
                *list = self.events(list);
            }
            for (r, t) in &mut o.transitions {
                *t = self.transition(*r, t);
                *r = RegionId(self.regions.id(r.0));
            }
            for (s, ov) in &mut o.slas {
                *s = SlaId(self.slas.id(s.0));
                ov.start = self.events(&ov.start);
                ov.stop = self.events(&ov.stop);
                ov.cancel = self.events(&ov.cancel);
            }
        }
        out.retired = Retired {
            teams: self.teams.holes().map(TeamId).collect(),
            sources: self.sources.holes().map(SourceId).collect(),
            events: self.events.holes().map(EventTypeId).collect(),
            proofs: self.proofs.holes().map(ProofId).collect(),
            states: retired_states,
            slas: self.slas.holes().map(SlaId).collect(),
            markets: self.markets.holes().map(MarketId).collect(),
        };
        out
    }
}

#[cfg(test)]
mod tests;
