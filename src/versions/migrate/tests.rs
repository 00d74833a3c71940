//! The eligibility rule, the checks of a request, and what applying a
//! `Migrated` fact does to a customer mid-SLA (with the target's model:
//! fired tiers stay fired, pending ones are re-armed by the target's
//! durations, late-attach for those already past).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::engine::model::{StateId, load};
use crate::engine::{Decision, Event, Fact, Input, Limits, Timer, Timestamp, decide};
use crate::store::MemoryStore;

const FAST: &str = include_str!("../../../tests/models/fast.toml");
const SEC: i64 = 1_000_000;
const T0: i64 = 1_800_000_000 * SEC;

/// The fast model as `version`, Brazil's ghost SLA lasting `br` seconds;
/// with `waiting`, support has a third state, `waiting` (open -> waiting
/// on `support.agent_replied`), that older versions lack.
fn text(version: u32, br: i64, waiting: bool) -> String {
    let mut t = FAST
        .replace("version = 1", &format!("version = {version}"))
        .replace(
            "slas = { access_after_payment = { within = \"2s\" } }",
            &format!("slas = {{ access_after_payment = {{ within = \"{br}s\" }} }}"),
        );
    if waiting {
        t = t.replace(
            "[[regions.support.transitions]]\nfrom = \"idle\"",
            "[regions.support.states.waiting]\nowner = \"support\"\n\n\
             [[regions.support.transitions]]\nfrom = \"open\"\non = \"support.agent_replied\"\n\
             to = \"waiting\"\n\n[[regions.support.transitions]]\nfrom = \"idle\"",
        );
        assert!(
            t.contains("states.waiting"),
            "the support region is where it was"
        );
    }
    t
}

/// v1 (BR ghost SLA 12s) and v2 (3s, with `support.waiting`), bound to
/// one catalog as a node binds them.
fn versions() -> Versions {
    let store = Arc::new(MemoryStore::new());
    let v1 = load("v1.toml", &text(1, 12, false)).expect("v1 loads");
    let v = Versions::open(store, &v1).expect("opens");
    v.publish("v2.toml", &text(2, 3, true))
        .expect("v2 publishes");
    v
}

fn event(customer: &str, id: &str, source: &str, ty: &str, market: &str, at: i64) -> Input {
    Input::Event(Event {
        id: id.to_owned(),
        source: source.to_owned(),
        event_type: ty.to_owned(),
        customer: customer.to_owned(),
        market: market.to_owned(),
        occurred_at: Timestamp(at),
        attributes: BTreeMap::new(),
    })
}

/// Decides `input` at `now` and applies its facts.
fn step(model: &Model, s: Option<CustomerState>, input: &Input, now: i64) -> CustomerState {
    let d: Decision = decide(model, &Limits::default(), s.as_ref(), input, Timestamp(now));
    let mut s = s.unwrap_or_else(|| CustomerState::empty(model, "c"));
    for f in &d.facts {
        s.apply(model, f);
    }
    s
}

/// A BR customer on v1 that paid at T0: its ghost SLA (12s) runs.
fn ghost(v1: &Model) -> CustomerState {
    let s = step(v1, None, &event("c", "w", "crm", "deal_won", "BR", T0), T0);
    step(
        v1,
        Some(s),
        &event("c", "p", "billing", "payment_succeeded", "", T0),
        T0,
    )
}

fn ghost_sla(m: &Model) -> SlaId {
    m.sla("access_after_payment").expect("declared")
}

fn migrated(s: &CustomerState, to: &Model, at: i64) -> CustomerState {
    let mut s = s.clone();
    s.apply(
        to,
        &Fact::Migrated {
            from: 1,
            to: 2,
            at: Timestamp(at),
        },
    );
    s
}

#[test]
fn pending_tiers_are_re_armed_by_the_target_and_the_start_is_kept() {
    let v = versions();
    let (v1, v2) = (v.model(1), v.model(2));
    let sla = ghost_sla(&v1);
    let s = ghost(&v1);
    let inst = s.core.running(sla).expect("runs").clone();
    assert_eq!(inst.deadline, Timestamp(T0 + 12 * SEC));
    assert_eq!(inst.tiers[0].next, Some(Timestamp(T0 + 6 * SEC)));

    let m = migrated(&s, &v2, T0 + SEC);
    assert_eq!(m.model_version, 2);
    let after = m.core.running(sla).expect("still runs");
    assert_eq!(after.started_at, inst.started_at, "the start is kept");
    assert_eq!(after.number, inst.number);
    assert_eq!(after.deadline, Timestamp(T0 + 3 * SEC));
    assert_eq!(after.original_deadline, Timestamp(T0 + 3 * SEC));
    assert_eq!(after.tiers[0].next, Some(Timestamp(T0 + 3 * SEC / 2)));
    assert_eq!(after.tiers[1].next, Some(Timestamp(T0 + 3 * SEC)));
    let next: Vec<Timer> = m.timers().collect();
    assert_eq!(next[0].due, Timestamp(T0 + 3 * SEC / 2), "{next:?}");
    assert!(matches!(
        m.timeline.back(),
        Some(crate::engine::TimelineEntry::Migrated { from: 1, to: 2, .. })
    ));
}

#[test]
fn fired_tiers_stay_fired_and_a_past_breach_fires_at_once() {
    let v = versions();
    let (v1, v2) = (v.model(1), v.model(2));
    let sla = ghost_sla(&v1);
    let s = ghost(&v1);
    // The 50% tier fires at 6s on v1.
    let timer = s.timers().next().expect("a timer");
    assert_eq!((timer.tier, timer.due), (0, Timestamp(T0 + 6 * SEC)));
    let s = step(&v1, Some(s), &Input::Timer(timer), T0 + 6 * SEC);
    assert_eq!(s.core.running(sla).expect("runs").fired.len(), 1);

    // Migrated at 7s to a 3s SLA: the breach (3s) is past and keeps its
    // time, so it fires at once; the re-escalation (every 2s after 5s)
    // moves to its first occurrence not past (7s, repeat 1).
    let m = migrated(&s, &v2, T0 + 7 * SEC);
    let inst = m.core.running(sla).expect("runs");
    assert_eq!(inst.tiers[0].next, None, "fired on v1: not again");
    assert!(!inst.tiers[0].held);
    assert_eq!(inst.tiers[1].next, Some(Timestamp(T0 + 3 * SEC)));
    assert_eq!(
        (inst.tiers[2].next, inst.tiers[2].repeat),
        (Some(Timestamp(T0 + 7 * SEC)), 1)
    );
    assert_eq!(inst.fired.len(), 1, "fired escalations are kept");
    let breach = m.timers().next().expect("the breach");
    assert_eq!((breach.tier, breach.due), (1, Timestamp(T0 + 3 * SEC)));
    let m = step(&v2, Some(m), &Input::Timer(breach), T0 + 7 * SEC);
    let inst = m.core.running(sla).expect("runs");
    assert!(inst.breached);
    assert_eq!(inst.fired.len(), 2);
    // The old 50% timer, if it fires late, does nothing.
    let stale = decide(
        &v2,
        &Limits::default(),
        Some(&m),
        &Input::Timer(timer),
        Timestamp(T0 + 8 * SEC),
    );
    assert!(stale.facts.is_empty());
}

#[test]
fn a_customer_may_move_only_where_its_states_and_running_slas_exist() {
    let v = versions();
    let (v1, v2) = (v.model(1), v.model(2));
    let s = ghost(&v1);
    assert!(ineligible(&s, &v1, &v2).is_empty(), "v2 has every v1 name");

    // On v2, a ticket answered: support is `waiting`, v1 lacks it.
    let s = migrated(&s, &v2, T0 + SEC);
    let opened = step(
        &v2,
        Some(s),
        &event("c", "t", "support", "ticket_opened", "", T0 + SEC),
        T0 + SEC,
    );
    assert!(
        ineligible(&opened, &v2, &v1).is_empty(),
        "support.open and first_reply exist in v1: {:?}",
        ineligible(&opened, &v2, &v1)
    );
    let waiting = step(
        &v2,
        Some(opened),
        &event("c", "r", "support", "agent_replied", "", T0 + 2 * SEC),
        T0 + 2 * SEC,
    );
    let why = ineligible(&waiting, &v2, &v1);
    assert_eq!(
        why,
        ["it is in state `support.waiting`, which version 1 does not declare"]
    );
}

#[test]
fn bad_requests_are_refused() {
    let v = versions();
    let refused = |market: &str, from, to, percent| {
        Plan::check(&v, market, from, to, percent, false)
            .expect_err("refused")
            .to_string()
    };
    assert!(refused("BR", 3, 2, None).contains("version 3 is not published"));
    assert!(refused("BR", 1, 9, None).contains("version 9 is not published"));
    assert!(refused("BR", 2, 2, None).contains("both version 2"));
    assert!(refused("BR", 1, 2, Some(100.5)).contains("outside 0-100"));
    assert!(refused("BR", 1, 2, Some(-1.0)).contains("outside 0-100"));
    assert!(refused("XX", 1, 2, None).contains("market `XX` is not declared"));
    assert!(refused("", 1, 2, None).contains("a market is needed"));
    let plan = Plan::check(&v, "BR", 1, 2, Some(10.0), true).expect("valid");
    assert_eq!(plan.buckets, 1_000);
    assert!(plan.dry_run);
}

#[test]
fn the_cohort_is_the_rollout_hash() {
    let plan = Plan {
        market: "BR".to_owned(),
        from: 1,
        to: 2,
        buckets: 1_000,
        dry_run: false,
    };
    for i in 0..200 {
        let c = format!("c-{i}");
        assert_eq!(plan.covers(&c, "BR"), bucket(&c) < 1_000, "{c}");
        assert!(!plan.covers(&c, "DE"));
    }
    assert!(in_cohort("anyone", BUCKETS));
}

/// `FAST` as `version` without: the state `lifecycle.at_risk` (in the
/// middle of its region), its proof and the two events behind it, the SLA
/// `first_reply` (in the middle of the SLAs), the market `US` and the team
/// `cx_director`.
fn dropped(version: u32) -> String {
    let cut = |t: String, from: &str, to: &str| {
        let a = t
            .find(from)
            .unwrap_or_else(|| panic!("{from} is in the model"));
        let b = t[a..]
            .find(to)
            .unwrap_or_else(|| panic!("{to} follows {from}"))
            + a;
        format!("{}{}", &t[..a], &t[b..])
    };
    let t = FAST.replace("version = 1", &format!("version = {version}"));
    let t = cut(
        t,
        "[regions.lifecycle.states.at_risk]",
        "[regions.lifecycle.states.churned]",
    );
    let t = cut(t, "[proofs.at_risk]", "# -------");
    let t = cut(
        t,
        "[[regions.lifecycle.transitions]]\nfrom = \"active\"\nwhen",
        "[[regions.lifecycle.transitions]]\nfrom = [",
    );
    let t = cut(t, "[slas.first_reply]", "[slas.dispute_evidence]");
    t.replace(
        "product = [\"onboarding_completed\", \"health_dropped\", \"health_recovered\"]",
        "product = [\"onboarding_completed\"]",
    )
    .replace(
        "from = [\"onboarding\", \"paid\", \"active\", \"at_risk\"]",
        "from = [\"onboarding\", \"paid\", \"active\"]",
    )
    .replace("slas = { first_reply = { within = \"2h\" } }\n", "")
    .replace("[markets.US]\n", "")
    .replace(", \"cx_director\"]", "]")
    .replace("notify = \"cx_director\"", "notify = \"success\"")
}

/// Every (region, state) name with its id in `m`'s tables, holes included.
fn state_ids(m: &Model) -> Vec<(String, u16)> {
    m.spec
        .regions
        .iter()
        .flat_map(|r| {
            r.states
                .iter()
                .enumerate()
                .map(move |(i, s)| (format!("{}.{}", r.name, s.name), i as u16))
        })
        .collect()
}

#[test]
fn a_version_may_drop_names_every_other_id_stays_and_a_hole_keeps_its_place() {
    let store = Arc::new(MemoryStore::new());
    let v1 = load("v1.toml", FAST).expect("v1 loads");
    let v = Versions::open(store.clone(), &v1).expect("opens");
    v.publish("v3.toml", &dropped(3))
        .expect("a version that drops names publishes");
    let (v1, v3) = (v.model(1), v.model(3));
    assert_eq!(state_ids(&v1), state_ids(&v3), "every state keeps its id");
    let at_risk = StateId(4);
    assert_eq!(v3.state(RegionId(0), at_risk).name, "at_risk");
    assert!(!v3.declares_state(RegionId(0), at_risk));
    assert!(v1.declares_state(RegionId(0), at_risk));
    let first_reply = v1.sla("first_reply").expect("declared");
    assert_eq!(v3.sla("first_reply"), Some(first_reply), "the id is kept");
    assert!(!v3.declares_sla(first_reply));
    assert_eq!(
        v3.sla("dispute_evidence"),
        v1.sla("dispute_evidence"),
        "an SLA after the hole keeps its id"
    );
    assert_eq!(v3.declared_market("US"), None);
    assert_eq!(v3.declared_market("BR"), v1.market("BR"));
    let cx = v1.team("cx_director").expect("declared");
    assert!(!v3.declares_team(cx));

    // On v3, what it dropped is unknown to new input.
    let rejected = |input: &Input| {
        let d = decide(&v3, &Limits::default(), None, input, Timestamp(T0));
        assert!(d.facts.is_empty(), "{d:?}");
        d.reason.unwrap_or_default()
    };
    let us = rejected(&event("u", "w", "crm", "deal_won", "US", T0));
    assert!(us.contains("market `US` is not declared"), "{us}");
    assert!(us.contains("DE, BR"), "{us}");
    let s = step(&v3, None, &event("c", "w", "crm", "deal_won", "BR", T0), T0);
    let d = decide(
        &v3,
        &Limits::default(),
        Some(&s),
        &event("c", "h", "product", "health_dropped", "", T0),
        Timestamp(T0),
    );
    let why = d.reason.unwrap_or_default();
    assert!(
        why.contains("does not send `health_dropped`") && why.contains("onboarding_completed"),
        "{why}"
    );
    // What it keeps works by the same ids: a BR customer pays and its
    // ghost SLA runs.
    let paid = step(
        &v3,
        Some(s),
        &event("c", "p", "billing", "payment_succeeded", "", T0),
        T0,
    );
    assert!(paid.core.running(ghost_sla(&v3)).is_some());

    // A restart binds both again, holes in the same places.
    let again = Versions::open(store, &load("v1.toml", FAST).expect("loads")).expect("reopens");
    assert_eq!(again.model(3).spec.retired, v3.spec.retired);
    assert_eq!(state_ids(&again.model(3)), state_ids(&v3));

    // A later version that declares the state again gets its id back.
    v.publish("v4.toml", &FAST.replace("version = 1", "version = 4"))
        .expect("v4 publishes");
    let v4 = v.model(4);
    assert!(v4.declares_state(RegionId(0), at_risk));
    assert!(v4.spec.retired.is_empty(), "{:?}", v4.spec.retired);
}

#[test]
fn customers_in_what_a_version_dropped_are_listed_not_moved() {
    let store = Arc::new(MemoryStore::new());
    let v = Versions::open(store, &load("v1.toml", FAST).expect("loads")).expect("opens");
    v.publish("v3.toml", &dropped(3)).expect("publishes");
    let (v1, v3) = (v.model(1), v.model(3));
    let at = |i: i64| T0 + i * SEC;

    // At risk: the state and the proof v3 dropped.
    let mut s = ghost(&v1);
    for (i, (src, ty)) in [("access", "access_granted"), ("product", "health_dropped")]
        .into_iter()
        .enumerate()
    {
        s = step(
            &v1,
            Some(s),
            &event("c", ty, src, ty, "", at(i as i64)),
            at(i as i64),
        );
    }
    assert_eq!(
        ineligible(&s, &v1, &v3),
        [
            "it is in state `lifecycle.at_risk`, which version 3 does not declare",
            "it holds proof `at_risk`, which version 3 does not declare",
        ]
    );
    // A running first_reply.
    let ticket = step(
        &v1,
        Some(ghost(&v1)),
        &event("c", "t", "support", "ticket_opened", "", T0),
        T0,
    );
    assert_eq!(
        ineligible(&ticket, &v1, &v3),
        ["SLA `first_reply` is running (instance 1), and version 3 does not declare it"]
    );
    // A US customer.
    let us = step(&v1, None, &event("u", "w", "crm", "deal_won", "US", T0), T0);
    assert_eq!(
        ineligible(&us, &v1, &v3),
        ["its market `US` is not declared in version 3"]
    );
    // A ghost customer moves, its SLA running on by v3's rules.
    let ghosted = ghost(&v1);
    assert!(ineligible(&ghosted, &v1, &v3).is_empty());
    let moved = migrated(&ghosted, &v3, at(1));
    assert!(moved.core.running(ghost_sla(&v3)).is_some());
}

#[test]
fn a_customer_written_before_later_versions_added_names_reads_them_as_new() {
    // A record written by v1 when its tables had no place for what v2
    // adds (an event and an SLA); v1, bound again after v2, has holes
    // there. Deciding and applying with it must read the short record.
    let v1_alone = load("v1.toml", FAST).expect("loads");
    let written = ghost(&Model::new(v1_alone.spec.clone()));
    let store = Arc::new(MemoryStore::new());
    let v = Versions::open(store.clone(), &v1_alone).expect("opens");
    let v2 = FAST
        .replace("version = 1", "version = 2")
        .replace(
            "support = [\"ticket_opened\", \"agent_replied\", \"ticket_solved\"]",
            "support = [\"ticket_opened\", \"agent_replied\", \"ticket_solved\", \"nps_sent\"]",
        )
        .replace(
            "# ---------------------------------------------------------------- markets",
            "[slas.nps_follow_up]\nowner = \"success\"\nstart = [\"support.nps_sent\"]\n\
             within = \"1d\"\n\n[[slas.nps_follow_up.tiers]]\nat = \"100%\"\n\
             severity = \"low\"\n\n# ---------------------------------------------------------------- markets",
        );
    v.publish("v2.toml", &v2).expect("v2 publishes");
    // Publishing binds v1 again to the catalog v2 extended, as a restart
    // does.
    let reopened = Versions::open(store, &v1_alone).expect("reopens");
    assert_eq!(
        v.model(1).spec.retired,
        reopened.model(1).spec.retired,
        "the same holes"
    );
    let v1 = v.model(1);
    assert_eq!(v1.spec.slas.len(), written.core.slas.len() + 1);
    assert!(!v1.declares_sla(v1.sla("nps_follow_up").expect("a hole")));
    let granted = step(
        &v1,
        Some(written),
        &event("c", "g", "access", "access_granted", "", T0 + SEC),
        T0 + SEC,
    );
    assert_eq!(granted.core.slas.len(), v1.spec.slas.len());
    assert!(granted.core.running(ghost_sla(&v1)).is_none(), "met");
}
