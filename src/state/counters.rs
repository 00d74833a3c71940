//! The counters the store keeps with the facts that change them
//! ([`WriteBatch::counters`](crate::store::WriteBatch::counters)): what
//! `handoff rollout show` and `handoff report` read, exact after any
//! restart or crash because a count moves in the very batch that moves
//! the customer.
//!
//! Two kinds:
//!
//! - **Events**, counted by the fact that records them ([`counted`]):
//!   customers created, SLA instances ended (by outcome, and by the UTC
//!   day they ended), their elapsed SLA time in log-scale buckets
//!   ([`elapsed_bucket`]), transitions between states.
//! - **Open escalations** by team, SLA and the 10-minute slot their tier
//!   came due in (transient counters: `~escalations ...`, removed at
//!   zero): +1 when a tier fires, -1 when it is resolved (the
//!   resolution keeps the firing's team, tier and due time), so they
//!   mirror the open-escalation index and a report reads their ages
//!   without reading the index.
//! - **Gauges**, how many customers are in a state now and how many SLA
//!   instances are running, paused, breached and open now ([`gauges`]):
//!   the difference between the customer's query index families before
//!   an entry and after it (`state::index`), so that every way a customer
//!   can move (an event, a firing, a pause, a migration to another
//!   version) moves its counts, with no rule of its own to get wrong.
//!
//! Names, not ids: a counter's name carries the model's names (a state's,
//! an SLA's), which stay the same across versions where ids are positions.
//! Netting: the store adds up the deltas of one batch per counter before
//! it writes, and a gauge that an entry leaves where it was emits nothing.

use std::borrow::Cow;

use crate::engine::model::{Model, RegionId, SlaId, StateId};
use crate::engine::{CustomerState, Escalation, EscalationKind, Fact, SlaEnd, Timestamp};

use super::index::{self, Family, SlaStatus};

/// Microseconds in a day: the width of a day bucket (UTC).
pub const DAY_US: i64 = 86_400_000_000;

/// The UTC day of an instant, in days since 1970-01-01.
pub fn day_of(t: Timestamp) -> i64 {
    t.0.div_euclid(DAY_US)
}

/// The width of an open escalation's slot (10 minutes): ages are read to
/// within it.
pub const SLOT_US: i64 = 600_000_000;

/// The open-escalation counter of an escalation of the customer `state`
/// (its kind read from its tier, which a resolution keeps).
fn open_escalation(model: &Model, state: &CustomerState, e: &Escalation) -> String {
    let sla = model.sla_spec(e.sla);
    Counted::OpenEscalations {
        market: &*state.market_code,
        sla: &*sla.name,
        team: model.team_name(e.team),
        breach: e.repeat == 0
            && sla
                .tiers
                .get(usize::from(e.tier))
                .is_some_and(|t| t.is_breach()),
        slot: e.due.0.div_euclid(SLOT_US),
    }
    .name()
}

/// Elapsed-time buckets per doubling: bucket `k >= 1` holds elapsed SLA
/// times in `[2^((k-1)/4), 2^(k/4))` seconds, bucket 0 those under a
/// second. A percentile read from the buckets is within a factor
/// `2^(1/4)` (19%) of the true value; the report gives each bucket's
/// geometric middle, within 9.5% either way.
pub const BUCKETS_PER_DOUBLING: u32 = 4;

/// The bucket of an elapsed SLA time in microseconds.
pub fn elapsed_bucket(us: i64) -> u32 {
    let s = us as f64 / 1e6;
    if s < 1.0 {
        0
    } else {
        (s.log2() * f64::from(BUCKETS_PER_DOUBLING)).floor() as u32 + 1
    }
}

/// The bounds of a bucket, in seconds: `[low, high)`.
pub fn bucket_bounds(bucket: u32) -> (f64, f64) {
    if bucket == 0 {
        return (0.0, 1.0);
    }
    let per = f64::from(BUCKETS_PER_DOUBLING);
    (
        2f64.powf(f64::from(bucket - 1) / per),
        2f64.powf(f64::from(bucket) / per),
    )
}

/// What a counter counts. Market is the customer's market code, version
/// its pinned model version at the time. The words are owned when read
/// back ([`Counted::parse`]) and borrowed from the model when written
/// (`Counted<&str>`: a name is built per fact, with one allocation).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counted<S = String> {
    /// Customers created (moved between versions by a migration).
    Customers { market: S, version: u32 },
    /// SLA instances ended, by outcome (`met`, `missed`, `cancelled`).
    SlaEnded { market: S, version: u32, outcome: S },
    /// Gauge: customers whose `region` is in `state` now.
    InState {
        market: S,
        version: u32,
        region: S,
        state: S,
    },
    /// Gauge: SLA instances open now with this status (`running`,
    /// `paused`, `breached`; see [`SlaStatus`]: a breached instance is
    /// also running or paused).
    SlaOpen {
        market: S,
        version: u32,
        sla: S,
        status: S,
    },
    /// SLA instances ended on a UTC day (days since 1970-01-01; the day
    /// of the instant that ended them), by outcome.
    SlaEndedOn {
        market: S,
        version: u32,
        sla: S,
        outcome: S,
        day: i64,
    },
    /// Met and missed instances that ended on a UTC day, by the bucket
    /// of their elapsed SLA time ([`elapsed_bucket`]).
    Elapsed {
        market: S,
        version: u32,
        sla: S,
        day: i64,
        bucket: u32,
    },
    /// Gauge: escalations open now (fired, not yet resolved) of `team`
    /// for an SLA, whether the firing is the breach (else a warning or a
    /// re-escalation), by the [`SLOT_US`] slot in which its tier came due
    /// (slots since 1970-01-01; ages are read from it). No version: a
    /// migration between a firing and its resolution must not split them.
    OpenEscalations {
        market: S,
        sla: S,
        team: S,
        breach: bool,
        slot: i64,
    },
    /// Transitions of `region` from one state to another (automatic ones
    /// too), by the version the customer was on.
    Moved {
        market: S,
        version: u32,
        region: S,
        from: S,
        to: S,
    },
}

impl<S: AsRef<str>> Counted<S> {
    /// The counter's name in the store: tab-separated words, the kind
    /// first.
    pub fn name(&self) -> String {
        match self {
            Counted::Customers { market, version } => {
                Name::of("customers").word(market).num(*version)
            }
            Counted::SlaEnded {
                market,
                version,
                outcome,
            } => Name::of("sla").word(market).num(*version).word(outcome),
            Counted::InState {
                market,
                version,
                region,
                state,
            } => Name::of("state")
                .word(market)
                .num(*version)
                .word(region)
                .word(state),
            Counted::SlaOpen {
                market,
                version,
                sla,
                status,
            } => Name::of("open")
                .word(market)
                .num(*version)
                .word(sla)
                .word(status),
            Counted::SlaEndedOn {
                market,
                version,
                sla,
                outcome,
                day,
            } => Name::of("ended")
                .word(market)
                .num(*version)
                .word(sla)
                .word(outcome)
                .num(*day),
            Counted::Elapsed {
                market,
                version,
                sla,
                day,
                bucket,
            } => Name::of("elapsed")
                .word(market)
                .num(*version)
                .word(sla)
                .num(*day)
                .num(*bucket),
            Counted::Moved {
                market,
                version,
                region,
                from,
                to,
            } => Name::of("moved")
                .word(market)
                .num(*version)
                .word(region)
                .word(from)
                .word(to),
            Counted::OpenEscalations {
                market,
                sla,
                team,
                breach,
                slot,
            } => Name::of("~escalations")
                .word(market)
                .word(sla)
                .word(team)
                .word(if *breach { "breach" } else { "tier" })
                .num(*slot),
        }
        .0
    }
}

impl Counted {
    /// A counter's name read back; `None` for a name of something else.
    pub fn parse(name: &str) -> Option<Counted> {
        let words: Vec<&str> = name.split('\t').collect();
        let s = |w: &&str| (*w).to_owned();
        Some(match words.as_slice() {
            ["customers", market, version] => Counted::Customers {
                market: s(market),
                version: version.parse().ok()?,
            },
            ["sla", market, version, outcome] => Counted::SlaEnded {
                market: s(market),
                version: version.parse().ok()?,
                outcome: s(outcome),
            },
            ["state", market, version, region, state] => Counted::InState {
                market: s(market),
                version: version.parse().ok()?,
                region: s(region),
                state: s(state),
            },
            ["open", market, version, sla, status] => Counted::SlaOpen {
                market: s(market),
                version: version.parse().ok()?,
                sla: s(sla),
                status: s(status),
            },
            ["ended", market, version, sla, outcome, day] => Counted::SlaEndedOn {
                market: s(market),
                version: version.parse().ok()?,
                sla: s(sla),
                outcome: s(outcome),
                day: day.parse().ok()?,
            },
            ["elapsed", market, version, sla, day, bucket] => Counted::Elapsed {
                market: s(market),
                version: version.parse().ok()?,
                sla: s(sla),
                day: day.parse().ok()?,
                bucket: bucket.parse().ok()?,
            },
            ["moved", market, version, region, from, to] => Counted::Moved {
                market: s(market),
                version: version.parse().ok()?,
                region: s(region),
                from: s(from),
                to: s(to),
            },
            ["~escalations", market, sla, team, kind, slot] => Counted::OpenEscalations {
                market: s(market),
                sla: s(sla),
                team: s(team),
                breach: match *kind {
                    "breach" => true,
                    "tier" => false,
                    _ => return None,
                },
                slot: slot.parse().ok()?,
            },
            _ => return None,
        })
    }
}

/// A counter's name being built: words after the kind, each after a
/// tab (built by hand: names are made for most entries, and `format!`
/// was a measurable part of ingest).
struct Name(String);

impl Name {
    fn of(kind: &str) -> Name {
        let mut s = String::with_capacity(64);
        s.push_str(kind);
        Name(s)
    }

    fn word(mut self, w: impl AsRef<str>) -> Name {
        self.0.push('\t');
        self.0.push_str(w.as_ref());
        self
    }

    /// A number in decimal, as `format!("{n}")` writes it.
    fn num(mut self, n: impl Into<i64>) -> Name {
        let n: i64 = n.into();
        self.0.push('\t');
        if n < 0 {
            self.0.push('-');
        }
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut m = n.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        self.0.extend(digits[i..].iter().map(|&d| char::from(d)));
        self
    }
}

fn state_name(model: &Model, r: RegionId, s: StateId) -> Cow<'_, str> {
    model.region(r).states.get(s.idx()).map_or_else(
        || Cow::Owned(format!("#{}", s.0)),
        |st| Cow::Borrowed(&*st.name),
    )
}

fn sla_name(model: &Model, sla: SlaId) -> &str {
    &model.sla_spec(sla).name
}

/// The event counters a fact changes, with their deltas (`state` is the
/// customer after the entry's facts, `model` the entry's model: its
/// market code does not change, its names name the fact's ids).
pub fn counted(model: &Model, state: &CustomerState, f: &Fact) -> Vec<(String, i64)> {
    let market = &*state.market_code;
    let version = state.model_version;
    match f {
        Fact::Created { model_version, .. } => vec![(
            Counted::Customers {
                market,
                version: *model_version,
            }
            .name(),
            1,
        )],
        Fact::SlaEnded {
            sla,
            end,
            at,
            elapsed,
            ..
        } => {
            let sla = sla_name(model, *sla);
            let day = day_of(*at);
            let outcome = end.as_str();
            let mut out = vec![
                (
                    Counted::SlaEnded {
                        market,
                        version,
                        outcome,
                    }
                    .name(),
                    1,
                ),
                (
                    Counted::SlaEndedOn {
                        market,
                        version,
                        sla,
                        outcome,
                        day,
                    }
                    .name(),
                    1,
                ),
            ];
            match end {
                SlaEnd::Met | SlaEnd::Missed => out.push((
                    Counted::Elapsed {
                        market,
                        version,
                        sla,
                        day,
                        bucket: elapsed_bucket(elapsed.0),
                    }
                    .name(),
                    1,
                )),
                SlaEnd::Cancelled => {}
            }
            out
        }
        Fact::RegionMoved {
            region, from, to, ..
        } => vec![(
            Counted::Moved {
                market,
                version,
                region: &*model.region(*region).name,
                from: &*state_name(model, *region, *from),
                to: &*state_name(model, *region, *to),
            }
            .name(),
            1,
        )],
        // A migrated customer moves from (market, from) to (market, to).
        Fact::Migrated { from, to, .. } => vec![
            (
                Counted::Customers {
                    market,
                    version: *from,
                }
                .name(),
                -1,
            ),
            (
                Counted::Customers {
                    market,
                    version: *to,
                }
                .name(),
                1,
            ),
        ],
        // Fired: open until resolved (the open-escalation index's rows).
        Fact::Escalated(e) => {
            let delta = match e.kind {
                EscalationKind::TierReached | EscalationKind::Breached => 1,
                EscalationKind::Resolved => -1,
            };
            vec![(open_escalation(model, state, e), delta)]
        }
        Fact::EventRecorded { .. }
        | Fact::ProofEstablished { .. }
        | Fact::ProofRevoked { .. }
        | Fact::RegionRenewed { .. }
        | Fact::SlaStarted { .. }
        | Fact::SlaPaused { .. }
        | Fact::SlaResumed { .. }
        | Fact::Breached { .. }
        | Fact::AuthorizationDenied { .. }
        | Fact::Acknowledged { .. } => Vec::new(),
    }
}

/// One gauge a customer adds 1 to: a state of a region, or an open SLA
/// instance's status, under the version the customer is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gauge {
    State(u32, RegionId, StateId),
    Sla(u32, SlaId, SlaStatus),
}

/// The gauges of a customer given its index families.
fn gauges_of(families: impl Iterator<Item = Family>) -> Vec<Gauge> {
    let families: Vec<Family> = families.collect();
    let Some(version) = families.iter().find_map(|f| match f {
        Family::Version(v) => Some(*v),
        _ => None,
    }) else {
        return Vec::new();
    };
    families
        .iter()
        .filter_map(|f| match f {
            Family::State(r, s) => Some(Gauge::State(version, *r, *s)),
            Family::Sla(sla, st) => Some(Gauge::Sla(version, *sla, *st)),
            Family::Created | Family::Market(_) | Family::Version(_) => None,
        })
        .collect()
}

/// The name of a gauge of a customer of `market`.
fn gauge_name(model: &Model, market: &str, g: Gauge) -> String {
    match g {
        Gauge::State(version, r, s) => Counted::InState {
            market,
            version,
            region: &*model.region(r).name,
            state: &*state_name(model, r, s),
        }
        .name(),
        Gauge::Sla(version, sla, status) => Counted::SlaOpen {
            market,
            version,
            sla: sla_name(model, sla),
            status: status.as_str(),
        }
        .name(),
    }
}

/// The gauge deltas of one entry: the customer's index keys before it
/// (`before`, as the actor computed them) against its index families
/// after it (`after`), for the customer `state` after it. Nothing for a
/// gauge that stayed.
pub fn gauges(
    model: &Model,
    state: &CustomerState,
    before: &[(Family, Timestamp)],
    after: &[(Family, Timestamp)],
) -> Vec<(String, i64)> {
    let old = gauges_of(before.iter().map(|(f, _)| f.clone()));
    let new = gauges_of(after.iter().map(|(f, _)| f.clone()));
    let market = &*state.market_code;
    let mut out = Vec::new();
    for g in old.iter().filter(|g| !new.contains(g)) {
        out.push((gauge_name(model, market, *g), -1));
    }
    for g in new.iter().filter(|g| !old.contains(g)) {
        out.push((gauge_name(model, market, *g), 1));
    }
    out
}

/// [`gauges`], worked out from only the index keys an entry set (`true`)
/// and cleared (`false`), for a customer that was on the same model
/// version before the entry as after it (its version key did not
/// change): a customer has at most one key per counted family (one
/// state per region, one instance per SLA with one key per status), so
/// a gauge moves by the keys of its family set less those cleared. A key
/// whose `since` alone changed moves nothing. `None` when the version key
/// changed (every gauge's name changed with it: use [`gauges`]).
pub fn gauge_changes(
    model: &Model,
    state: &CustomerState,
    changed: &[(Vec<u8>, bool)],
) -> Option<Vec<(String, i64)>> {
    let version = state.model_version;
    let mut net: Vec<(Gauge, i64)> = Vec::new();
    for (key, set) in changed.iter().filter(|(k, _)| index::counts(k)) {
        let gauge = match index::family(key) {
            Some(Family::State(r, s)) => Gauge::State(version, r, s),
            Some(Family::Sla(sla, st)) => Gauge::Sla(version, sla, st),
            Some(Family::Version(_)) => return None,
            _ => continue,
        };
        let delta = if *set { 1 } else { -1 };
        match net.iter_mut().find(|(g, _)| *g == gauge) {
            Some((_, d)) => *d += delta,
            None => net.push((gauge, delta)),
        }
    }
    let market = &*state.market_code;
    Some(
        net.into_iter()
            .filter(|(_, d)| *d != 0)
            .map(|(g, d)| (gauge_name(model, market, g), d))
            .collect(),
    )
}

/// Every gauge of a customer as it is (for a recount from the records):
/// what [`gauges`] would have added up over its whole life, and its open
/// escalations (what [`counted`] added and took away for them).
pub fn gauges_now(model: &Model, state: &CustomerState) -> Vec<(String, i64)> {
    let mut out = gauges(model, state, &[], &index::memberships(model, state));
    for sla in model.sla_ids() {
        if let Some(i) = state.core.running(sla) {
            out.extend(
                i.fired
                    .iter()
                    .map(|f| (open_escalation(model, state, &f.escalation), 1)),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let all = [
            Counted::<String>::Customers {
                market: "US".into(),
                version: 1,
            },
            Counted::<String>::SlaEnded {
                market: "US".into(),
                version: 1,
                outcome: "met".into(),
            },
            Counted::<String>::InState {
                market: "DE".into(),
                version: 2,
                region: "lifecycle".into(),
                state: "paid".into(),
            },
            Counted::<String>::SlaOpen {
                market: "BR".into(),
                version: 3,
                sla: "first_reply".into(),
                status: "paused".into(),
            },
            Counted::<String>::SlaEndedOn {
                market: "US".into(),
                version: 1,
                sla: "first_reply".into(),
                outcome: "missed".into(),
                day: -3,
            },
            Counted::<String>::Elapsed {
                market: "US".into(),
                version: 1,
                sla: "first_reply".into(),
                day: 20_000,
                bucket: 17,
            },
            Counted::<String>::Moved {
                market: "US".into(),
                version: 1,
                region: "lifecycle".into(),
                from: "lead".into(),
                to: "onboarding".into(),
            },
            Counted::<String>::OpenEscalations {
                market: "US".into(),
                sla: "first_reply".into(),
                team: "support".into(),
                breach: true,
                slot: 2_950_000,
            },
        ];
        for c in all {
            assert_eq!(Counted::parse(&c.name()), Some(c));
        }
        assert_eq!(Counted::parse("state\tUS\tx\tr\ts"), None);
    }

    #[test]
    fn names_are_the_words_the_store_already_holds() {
        // Names are store keys: exactly as builds that wrote them with
        // `format!` did.
        let ended = Counted::<String>::SlaEndedOn {
            market: "US".into(),
            version: 1,
            sla: "first_reply".into(),
            outcome: "missed".into(),
            day: -3,
        };
        assert_eq!(ended.name(), "ended\tUS\t1\tfirst_reply\tmissed\t-3");
        let open = Counted::<String>::OpenEscalations {
            market: "BR".into(),
            sla: "s".into(),
            team: "t".into(),
            breach: false,
            slot: 2_950_000,
        };
        assert_eq!(open.name(), "~escalations\tBR\ts\tt\ttier\t2950000");
        for n in [0, 7, -1, 10, 4_294_967_295, i64::MIN, i64::MAX] {
            assert_eq!(Name::of("k").num(n).0, format!("k\t{n}"));
        }
    }

    #[test]
    fn elapsed_buckets_are_quarter_doublings_of_seconds() {
        assert_eq!(elapsed_bucket(0), 0);
        assert_eq!(elapsed_bucket(999_999), 0);
        assert_eq!(elapsed_bucket(1_000_000), 1);
        assert_eq!(elapsed_bucket(2_000_000), 5);
        assert_eq!(elapsed_bucket(3_600_000_000), 48);
        for us in [
            1_000_000i64,
            1_500_000,
            59_000_000,
            3_600_000_000,
            86_400_000_000 * 30,
        ] {
            let (low, high) = bucket_bounds(elapsed_bucket(us));
            let s = us as f64 / 1e6;
            assert!(
                low <= s * 1.000_001 && s < high * 1.000_001,
                "{s} in [{low}, {high})"
            );
            assert!(high / low < 1.19 + 1e-3);
        }
    }

    #[test]
    fn days_are_utc_and_negative_instants_go_to_earlier_days() {
        assert_eq!(day_of(Timestamp(0)), 0);
        assert_eq!(day_of(Timestamp(DAY_US - 1)), 0);
        assert_eq!(day_of(Timestamp(DAY_US)), 1);
        assert_eq!(day_of(Timestamp(-1)), -1);
    }
}
