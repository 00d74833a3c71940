//! The secondary indexes of customer queries (`ListCustomers`): which keys
//! a customer has, how they are laid out, and how a query turns into a
//! range of them.
//!
//! Every key is one customer's membership of one *family* (a filter a
//! query can scan), with the instant it joined it:
//!
//! ```text
//! family (1 byte) | fields | since (i64, big-endian, sign bit flipped) | shard (u32 BE) | customer id
//! ```
//!
//! | family  | fields                       | since                                   |
//! | ------- | ---------------------------- | --------------------------------------- |
//! | created | -                            | created at                              |
//! | market  | market code (escaped)        | created at                              |
//! | version | model version (u32)          | created at                              |
//! | state   | region id, state id (u16s)   | entered the state (created at if never moved) |
//! | sla     | SLA id (u16), status (u8)    | entered the status (see [`SlaStatus`])  |
//!
//! An owner team has no family of its own: the team owns a customer
//! through the states it owns, so an owner query scans the state families
//! of every state the team owns, merged in `since` order, and lists each
//! customer once, at the earliest `since` of the regions the team owns
//! ([`owners`]). Every state change moves an owner, so a family of owners
//! would double the keys an event writes (layout 1 had one; its keys are
//! removed once, at start: [`RETIRED`]).
//!
//! Ids are the model's interned ids, never names; the market is its code
//! (a model without markets accepts any code). Byte order is therefore
//! `since` order within one family and its fields, so a range scan yields
//! the oldest first (or, reversed, the newest first), and "in that state
//! for longer than D" is the range below `now - D`. The keys are global
//! (the shard is only there to find the record), so one scan answers for
//! every shard.
//!
//! The state layer is the only place that knows this layout: the actor
//! hands the [`memberships`] of the customer before an entry to the
//! journal ([`super::Entry::index_before`]); [`super::apply_committed`]
//! clears the keys of what the entry removed and sets those of what it
//! added, in the same batch as the facts. Memberships compare without
//! laying out a key, so an entry pays for the keys it changes, not for
//! every key the customer has. Values are empty.

use crate::engine::model::{Model, RegionId, SlaId, StateId, TeamId};
use crate::engine::{CustomerState, EscalationKind, Instance, Timestamp};

const CREATED: u8 = 1;
const MARKET: u8 = 2;
const VERSION: u8 = 3;
const STATE: u8 = 4;
/// Layout 1's owner family (team id, earliest `since` of its regions):
/// no longer written or read.
const OWNER: u8 = 5;
const SLA: u8 = 6;

/// The ranges of keys of families no longer written (layout 1's owner
/// family), to remove from a store written by an older build.
pub const RETIRED: [(&[u8], &[u8]); 1] = [(&[OWNER], &[OWNER + 1])];

/// Where an open SLA instance stands, as a query filters it. `Running`
/// and `Paused` exclude each other; `Breached` holds besides one of them
/// (a breached instance runs on, or is paused, until it ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlaStatus {
    /// The clock runs; since the start or the end of the last pause.
    Running,
    /// The clock is stopped; since the pause began.
    Paused,
    /// Past its deadline and still open; since the breach was due.
    Breached,
}

impl SlaStatus {
    pub const ALL: [SlaStatus; 3] = [SlaStatus::Running, SlaStatus::Paused, SlaStatus::Breached];

    pub fn as_str(self) -> &'static str {
        match self {
            SlaStatus::Running => "running",
            SlaStatus::Paused => "paused",
            SlaStatus::Breached => "breached",
        }
    }

    pub fn parse(s: &str) -> Option<SlaStatus> {
        SlaStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    fn byte(self) -> u8 {
        match self {
            SlaStatus::Running => 1,
            SlaStatus::Paused => 2,
            SlaStatus::Breached => 3,
        }
    }
}

/// One index a query can scan: a filter with its fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Family {
    /// Every customer, by creation.
    Created,
    Market(String),
    Version(u32),
    State(RegionId, StateId),
    Sla(SlaId, SlaStatus),
}

impl Family {
    /// Every key of the family starts with this (and nothing else does:
    /// the fields have a fixed width, or are escaped and terminated).
    pub fn prefix(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(16);
        self.push_prefix(&mut k);
        k
    }

    fn push_prefix(&self, k: &mut Vec<u8>) {
        match self {
            Family::Created => k.push(CREATED),
            Family::Market(code) => {
                k.push(MARKET);
                push_str(k, code);
            }
            Family::Version(v) => {
                k.push(VERSION);
                k.extend_from_slice(&v.to_be_bytes());
            }
            Family::State(r, s) => {
                k.push(STATE);
                k.extend_from_slice(&r.0.to_be_bytes());
                k.extend_from_slice(&s.0.to_be_bytes());
            }
            Family::Sla(sla, status) => {
                k.push(SLA);
                k.extend_from_slice(&sla.0.to_be_bytes());
                k.push(status.byte());
            }
        }
    }
}

/// A string, escaped and terminated (`0x00` as `0x00 0xFF`, the end as
/// `0x00 0x00`): no code is a prefix of another's encoding.
fn push_str(k: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        k.push(b);
        if b == 0 {
            k.push(0xFF);
        }
    }
    k.extend_from_slice(&[0, 0]);
}

/// The family of a key made by [`key`] (its fields, not its `since`);
/// `None` for bytes that are not such a key. The state layer reads the
/// families of a customer's keys before an entry back with it, to count
/// what the entry changed ([`super::Counted`]'s gauges).
/// Whether a key's family is one that customers are counted by (a state,
/// an SLA status, or the version they are counted under): when an entry
/// sets or clears none of these, none of its customer's gauges
/// ([`super::counters::gauges`]) moved.
pub fn counts(key: &[u8]) -> bool {
    matches!(key.first(), Some(&(STATE | SLA | VERSION)))
}

pub fn family(key: &[u8]) -> Option<Family> {
    let (&tag, rest) = key.split_first()?;
    let u16_at = |i: usize| -> Option<u16> {
        Some(u16::from_be_bytes(*rest.get(i..i + 2)?.first_chunk::<2>()?))
    };
    Some(match tag {
        CREATED => Family::Created,
        MARKET => {
            let mut code = Vec::new();
            let mut i = 0;
            loop {
                match (rest.get(i)?, rest.get(i + 1)) {
                    (0, Some(0)) => break,
                    (0, Some(0xFF)) => {
                        code.push(0);
                        i += 2;
                    }
                    (0, _) => return None,
                    (b, _) => {
                        code.push(*b);
                        i += 1;
                    }
                }
            }
            Family::Market(String::from_utf8(code).ok()?)
        }
        VERSION => Family::Version(u32::from_be_bytes(*rest.first_chunk::<4>()?)),
        STATE => Family::State(RegionId(u16_at(0)?), StateId(u16_at(2)?)),
        SLA => {
            let status = match rest.get(2)? {
                1 => SlaStatus::Running,
                2 => SlaStatus::Paused,
                3 => SlaStatus::Breached,
                _ => return None,
            };
            Family::Sla(SlaId(u16_at(0)?), status)
        }
        _ => return None,
    })
}

/// An instant that sorts as a signed number under byte order.
fn since_bytes(t: Timestamp) -> [u8; 8] {
    ((t.0 as u64) ^ (1 << 63)).to_be_bytes()
}

/// The key of one membership.
pub fn key(family: &Family, since: Timestamp, shard: u32, customer: &str) -> Vec<u8> {
    // Sized once: the widest fields are a market code's, escaped.
    let fields = match family {
        Family::Market(code) => code.len() * 2 + 2,
        _ => 5,
    };
    let mut k = Vec::with_capacity(1 + fields + 8 + 4 + customer.len());
    family.push_prefix(&mut k);
    k.extend_from_slice(&since_bytes(since));
    k.extend_from_slice(&shard.to_be_bytes());
    k.extend_from_slice(customer.as_bytes());
    k
}

/// What a key of a family with prefix length `prefix_len` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParts {
    pub since: Timestamp,
    pub shard: u32,
    pub customer: String,
}

/// Reads a key back; `None` if it is not a key of that shape.
pub fn parse(key: &[u8], prefix_len: usize) -> Option<KeyParts> {
    let rest = key.get(prefix_len..)?;
    let (since, rest) = rest.split_first_chunk::<8>()?;
    let (shard, customer) = rest.split_first_chunk::<4>()?;
    Some(KeyParts {
        since: Timestamp((u64::from_be_bytes(*since) ^ (1 << 63)) as i64),
        shard: u32::from_be_bytes(*shard),
        customer: String::from_utf8(customer.to_vec()).ok()?,
    })
}

/// A customer's memberships: every family it belongs to, with its
/// `since` (its index keys, before they are laid out as bytes).
pub type Memberships = Vec<(Family, Timestamp)>;

/// Every family the customer belongs to, with its `since`.
pub fn memberships(model: &Model, s: &CustomerState) -> Memberships {
    if !s.exists {
        return Vec::new();
    }
    let created = s.created_at;
    let mut out = vec![
        (Family::Created, created),
        (Family::Market(s.market_code.to_string()), created),
        (Family::Version(s.model_version), created),
    ];
    for r in model.region_ids() {
        let slot = s.core.region(r);
        out.push((Family::State(r, slot.state), slot.since.unwrap_or(created)));
    }
    for sla in model.sla_ids() {
        if let Some(i) = s.core.running(sla) {
            out.extend(
                sla_statuses(i)
                    .into_iter()
                    .map(|(st, since)| (Family::Sla(sla, st), since)),
            );
        }
    }
    out
}

/// The teams that own the customer's states, each once with the earliest
/// `since` of the regions it owns (as the state families have them).
pub fn owners(model: &Model, s: &CustomerState) -> Vec<(TeamId, Timestamp)> {
    let mut owners: Vec<(TeamId, Timestamp)> = Vec::new();
    if !s.exists {
        return owners;
    }
    for r in model.region_ids() {
        let slot = s.core.region(r);
        let since = slot.since.unwrap_or(s.created_at);
        let Some(state) = model.spec.regions[r.idx()].states.get(slot.state.idx()) else {
            continue;
        };
        match owners.iter_mut().find(|(t, _)| *t == state.owner) {
            Some((_, t)) => *t = (*t).min(since),
            None => owners.push((state.owner, since)),
        }
    }
    owners
}

/// The statuses of an open instance, each with since when.
pub fn sla_statuses(i: &Instance) -> Vec<(SlaStatus, Timestamp)> {
    let mut out = Vec::with_capacity(2);
    match i.pauses.last() {
        Some((from, None)) => out.push((SlaStatus::Paused, *from)),
        Some((_, Some(to))) => out.push((SlaStatus::Running, (*to).max(i.started_at))),
        None => out.push((SlaStatus::Running, i.started_at)),
    }
    if i.breached {
        let due = i
            .fired
            .iter()
            .find(|f| f.escalation.kind == EscalationKind::Breached)
            .map(|f| f.escalation.due)
            .unwrap_or(i.deadline);
        out.push((SlaStatus::Breached, due));
    }
    out
}

/// Every index key of the customer `s` of `shard` (none before it exists).
pub fn keys(model: &Model, shard: u32, s: &CustomerState) -> Vec<Vec<u8>> {
    memberships(model, s)
        .iter()
        .map(|(f, since)| key(f, *since, shard, &s.customer))
        .collect()
}

/// The filters of one query, as ids (the API resolves names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub market: Option<String>,
    pub version: Option<u32>,
    pub state: Option<(RegionId, StateId)>,
    pub sla: Option<(SlaId, SlaStatus)>,
    pub owner: Option<TeamId>,
    /// Only members of the primary family that joined it at or before
    /// this instant (`now - older_than`).
    pub since_at_most: Option<Timestamp>,
    pub oldest_first: bool,
}

impl Query {
    /// The families the query scans, merged in `since` order, which also
    /// orders its rows and which `--older-than` measures: the first of SLA
    /// status, state, owner, market, model version that is filtered on
    /// (about the most selective first), else every customer by
    /// creation. An owner is the state families of every state it owns
    /// in `model` (none: no customer).
    pub fn scans(&self, model: &Model) -> Vec<Family> {
        if let Some((sla, st)) = self.sla {
            vec![Family::Sla(sla, st)]
        } else if let Some((r, s)) = self.state {
            vec![Family::State(r, s)]
        } else if let Some(t) = self.owner {
            model
                .region_ids()
                .flat_map(|r| {
                    let states = &model.spec.regions[r.idx()].states;
                    (0..states.len())
                        .filter(move |i| states[*i].owner == t)
                        .map(move |i| Family::State(r, StateId(i as u16)))
                })
                .collect()
        } else if let Some(m) = &self.market {
            vec![Family::Market(m.clone())]
        } else if let Some(v) = self.version {
            vec![Family::Version(v)]
        } else {
            vec![Family::Created]
        }
    }

    /// Whether an owner is what the query scans (no SLA or state filter).
    fn by_owner(&self) -> bool {
        self.sla.is_none() && self.state.is_none() && self.owner.is_some()
    }

    /// The whole range `[low, high)` of keys of the family `f` the query
    /// scans.
    pub fn range(&self, f: &Family) -> (Vec<u8>, Vec<u8>) {
        let low = f.prefix();
        let high = match self.since_at_most {
            Some(t) => {
                let mut h = low.clone();
                match t.0.checked_add(1) {
                    Some(next) => h.extend_from_slice(&since_bytes(Timestamp(next))),
                    None => return (low.clone(), successor(&low)),
                }
                h
            }
            None => successor(&low),
        };
        (low, high)
    }

    /// Every scanned family with the range of it still to scan after the
    /// key `last` (the last one a page read, of any of them): past
    /// `last`'s `since`, shard and customer in each. `None` if `last` is
    /// not a key of the query's ranges.
    pub fn resume(&self, model: &Model, last: &[u8]) -> Option<Vec<Scan>> {
        let mut scans = self.start(model);
        let from = scans
            .iter()
            .find(|s| last >= s.low.as_slice() && last < s.high.as_slice())?;
        let prefix_len = from.family.prefix().len();
        parse(last, prefix_len)?;
        let rest = last[prefix_len..].to_vec();
        self.advance(&mut scans, &rest);
        Some(scans)
    }

    /// Every scanned family with its whole range.
    pub fn start(&self, model: &Model) -> Vec<Scan> {
        self.scans(model)
            .into_iter()
            .map(|family| {
                let (low, high) = self.range(&family);
                Scan { family, low, high }
            })
            .collect()
    }

    /// Moves every scan past `rest` (a key's `since | shard | customer`)
    /// in the query's order.
    pub fn advance(&self, scans: &mut [Scan], rest: &[u8]) {
        for s in scans {
            let mut at = s.family.prefix();
            at.extend_from_slice(rest);
            if self.oldest_first {
                at.push(0);
                s.low = at;
            } else {
                s.high = at;
            }
        }
    }

    /// Whether the customer `s` answers the query through the key it was
    /// found by (`since` in the scanned family `found`): the key is still
    /// its membership (not a key left over from an earlier state), every
    /// other filter holds, and for an owner scan the key is the one the
    /// customer is listed at (the earliest of the regions the team owns;
    /// of keys at the same instant, the caller keeps the first).
    pub fn matches(
        &self,
        model: &Model,
        s: &CustomerState,
        found: &Family,
        since: Timestamp,
    ) -> bool {
        let memberships = memberships(model, s);
        let has = |f: &Family| memberships.iter().any(|(g, _)| g == f);
        memberships.iter().any(|(f, t)| f == found && *t == since)
            && self.sla.is_none_or(|(s, st)| has(&Family::Sla(s, st)))
            && self.state.is_none_or(|(r, s)| has(&Family::State(r, s)))
            && self.owner.is_none_or(|t| {
                owners(model, s)
                    .iter()
                    .any(|(o, at)| *o == t && (!self.by_owner() || *at == since))
            })
            && self
                .market
                .as_ref()
                .is_none_or(|m| has(&Family::Market(m.clone())))
            && self.version.is_none_or(|v| has(&Family::Version(v)))
    }
}

/// One family a query scans, and the range of it still to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub family: Family,
    pub low: Vec<u8>,
    pub high: Vec<u8>,
}

/// The smallest byte string greater than every string starting with `p`
/// (`p` starts with a family byte below 0xFF, so there is one).
fn successor(p: &[u8]) -> Vec<u8> {
    let mut s = p.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return s;
        }
    }
    vec![0xFF; 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_since_with_negative_instants_first() {
        let f = Family::State(RegionId(1), StateId(2));
        let times = [i64::MIN, -5_000_000, -1, 0, 1, 7_000_000, i64::MAX];
        let keys: Vec<Vec<u8>> = times
            .iter()
            .map(|t| key(&f, Timestamp(*t), 3, "c"))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for (k, t) in keys.iter().zip(times) {
            let p = parse(k, f.prefix().len()).expect("parses");
            assert_eq!(
                p,
                KeyParts {
                    since: Timestamp(t),
                    shard: 3,
                    customer: "c".into()
                }
            );
        }
    }

    #[test]
    fn ties_go_by_shard_then_customer_and_families_do_not_mix() {
        let f = Family::Sla(SlaId(0), SlaStatus::Breached);
        let a = key(&f, Timestamp(10), 0, "zz");
        let b = key(&f, Timestamp(10), 1, "aa");
        let c = key(&f, Timestamp(10), 1, "ab");
        assert!(a < b && b < c);
        let other = Family::Sla(SlaId(0), SlaStatus::Running);
        let (low, high) = Query {
            sla: Some((SlaId(0), SlaStatus::Breached)),
            ..Query::default()
        }
        .range(&f);
        for k in [&a, &b, &c] {
            assert!(k.as_slice() >= low.as_slice() && k.as_slice() < high.as_slice());
        }
        let o = key(&other, Timestamp(10), 0, "a");
        assert!(!(o.as_slice() >= low.as_slice() && o.as_slice() < high.as_slice()));
    }

    #[test]
    fn a_key_gives_its_family_back() {
        let families = [
            Family::Created,
            Family::Market("U\0S".into()),
            Family::Market(String::new()),
            Family::Version(7),
            Family::State(RegionId(2), StateId(300)),
            Family::Sla(SlaId(1), SlaStatus::Running),
            Family::Sla(SlaId(1), SlaStatus::Paused),
            Family::Sla(SlaId(9), SlaStatus::Breached),
        ];
        for f in families {
            assert_eq!(family(&key(&f, Timestamp(-3), 4, "c\0x")), Some(f));
        }
        assert_eq!(family(b""), None);
        assert_eq!(family(&[SLA, 0, 1, 9]), None);
        assert_eq!(family(&[MARKET, b'U']), None);
        // Layout 1's owner keys are no family: only removed.
        let (low, high) = RETIRED[0];
        let owner = [OWNER, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, b'c'];
        assert_eq!(family(&owner), None);
        assert!(owner.as_slice() >= low && owner.as_slice() < high);
    }

    #[test]
    fn market_codes_do_not_prefix_each_other() {
        let us = key(&Family::Market("US".into()), Timestamp(i64::MAX), 9, "x");
        let (low, high) = Query {
            market: Some("U".into()),
            ..Query::default()
        }
        .range(&Family::Market("U".into()));
        assert!(!(us >= low && us < high));
    }

    #[test]
    fn older_than_bounds_the_range_inclusively() {
        let f = Family::State(RegionId(1), StateId(4));
        let q = Query {
            state: Some((RegionId(1), StateId(4))),
            since_at_most: Some(Timestamp(-100)),
            ..Query::default()
        };
        let (low, high) = q.range(&f);
        let inside = key(&f, Timestamp(-100), u32::MAX, "zzz");
        let outside = key(&f, Timestamp(-99), 0, "");
        assert!(inside >= low && inside < high);
        assert!(outside >= high);
    }

    #[test]
    fn an_owner_scans_the_states_it_owns() {
        let model = crate::state::testing::saas();
        let team = model.team("success").expect("declared");
        let q = Query {
            owner: Some(team),
            ..Query::default()
        };
        let names: Vec<String> = q
            .scans(&model)
            .iter()
            .map(|f| match f {
                Family::State(r, s) => model.state(*r, *s).name.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["active", "at_risk"]);
        // A state filter is scanned instead, the owner checked on the record.
        let q = Query {
            state: Some((RegionId(0), StateId(1))),
            ..q
        };
        assert_eq!(q.scans(&model), [Family::State(RegionId(0), StateId(1))]);
    }

    #[test]
    fn resume_moves_every_scan_past_the_last_key_in_either_direction() {
        let model = crate::state::testing::saas();
        let mut q = Query {
            owner: model.team("success"),
            ..Query::default()
        };
        let scans = q.start(&model);
        let (a, b) = (&scans[0].family, &scans[1].family);
        let k = key(b, Timestamp(5), 0, "c");
        let resumed = q.resume(&model, &k).expect("in range");
        assert_eq!(
            resumed[1].high, k,
            "newest first continues below the last key"
        );
        assert_eq!(
            resumed[0].high,
            key(a, Timestamp(5), 0, "c"),
            "in every family"
        );
        assert_eq!(resumed[0].low, a.prefix());
        q.oldest_first = true;
        let resumed = q.resume(&model, &k).expect("in range");
        for (s, f) in resumed.iter().zip([a, b]) {
            let at = key(f, Timestamp(5), 0, "c");
            assert!(s.low > at && key(f, Timestamp(5), 0, "c\0") >= s.low);
        }
        let elsewhere = Family::State(RegionId(0), StateId(0));
        assert!(
            q.resume(&model, &key(&elsewhere, Timestamp(5), 0, "c"))
                .is_none()
        );
        assert!(q.resume(&model, b"garbage").is_none());
    }
}

#[cfg(test)]
mod committed_tests {
    //! The keys a customer's committed entries leave in a store are the
    //! keys of its last state, whether committed one entry per batch or
    //! all in one group.

    use super::*;
    use crate::state::testing::{Customer, MIN, T0, saas};
    use crate::state::{Committed, Entry, apply_committed};
    use crate::store::{MemoryStore, Store};

    fn journey(model: &Model) -> (Vec<Entry>, CustomerState) {
        let mut c = Customer::new("ghost");
        let mut entries = vec![
            c.event(model, "crm", "deal_won", T0),
            c.event(model, "billing", "payment_succeeded", T0 + MIN),
        ];
        // Warning, then the breach of access_after_payment.
        entries.push(c.fire(model));
        entries.push(c.fire(model));
        (entries, c.state.expect("created"))
    }

    fn all_keys(s: &dyn Store) -> Vec<Vec<u8>> {
        s.index_keys(&[0], &[0xFF], false, 10_000).expect("scans")
    }

    #[test]
    fn committed_entries_leave_the_keys_of_the_last_state() {
        let model = saas();
        let (entries, last) = journey(&model);
        let mut want = keys(&model, 3, &last);
        want.sort();
        let breached = Family::Sla(
            model.sla("access_after_payment").expect("declared"),
            SlaStatus::Breached,
        );
        assert!(
            memberships(&model, &last)
                .iter()
                .any(|(f, _)| *f == breached),
            "the journey breaches"
        );

        let one_by_one = MemoryStore::new();
        for e in &entries {
            let seqs: Vec<u64> = (0..e.escalations() as u64).collect();
            let (batch, _) = apply_committed(&[Committed {
                entry: e,
                escalation_seqs: &seqs,
            }]);
            one_by_one.commit(batch).expect("commits");
        }
        assert_eq!(all_keys(&one_by_one), want);

        let grouped = MemoryStore::new();
        let seqs: Vec<Vec<u64>> = entries
            .iter()
            .map(|e| (0..e.escalations() as u64).collect())
            .collect();
        let committed: Vec<Committed<'_>> = entries
            .iter()
            .zip(&seqs)
            .map(|(entry, s)| Committed {
                entry,
                escalation_seqs: s,
            })
            .collect();
        let (batch, _) = apply_committed(&committed);
        assert!(
            batch
                .index_set
                .iter()
                .all(|k| !batch.index_cleared.contains(k)),
            "netted"
        );
        grouped.commit(batch).expect("commits");
        assert_eq!(all_keys(&grouped), want);
    }
}
