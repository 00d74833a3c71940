//! The catalog keeps every stored id's meaning across edits of the model
//! file; the fingerprint tells a changed model from a reformatted one.

use super::*;
use crate::engine::model::{Model, load};

const SAAS: &str = include_str!("../../../../examples/saas.toml");
const REORDERED: &str = include_str!("../../../../tests/models/saas_reordered.toml");
const TRIAL: &str = include_str!("../../../../tests/models/saas_trial.toml");
/// A model with no SLA clock keys at all.
const FAST: &str = include_str!("../../../../tests/models/fast.toml");

fn spec(text: &str) -> ModelSpec {
    load("test.toml", text).expect("the test model loads").spec
}

/// Every (kind, name) -> id of a model, for comparing two numberings.
fn ids(m: &Model) -> Vec<(String, u16)> {
    let s = &m.spec;
    let mut out = Vec::new();
    out.extend(
        s.teams
            .iter()
            .map(|t| (format!("team {t}"), m.team(t).expect("declared").0)),
    );
    out.extend(
        s.events
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("event {}", e.qualified), i as u16)),
    );
    out.extend(
        s.proofs
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("proof {}", p.name), i as u16)),
    );
    for (r, region) in s.regions.iter().enumerate() {
        out.push((format!("region {}", region.name), r as u16));
        out.extend(
            region
                .states
                .iter()
                .enumerate()
                .map(|(i, st)| (format!("state {}.{}", region.name, st.name), i as u16)),
        );
    }
    out.extend(s.slas.iter().map(|x| {
        (
            format!("sla {}", x.name),
            m.sla(&x.name).expect("declared").0,
        )
    }));
    out.extend(s.markets.iter().map(|x| {
        (
            format!("market {}", x.name),
            m.market(&x.name).expect("declared").0,
        )
    }));
    out.sort();
    out
}

#[test]
fn reordering_declarations_and_dropping_comments_keeps_the_fingerprint() {
    assert_eq!(fingerprint(&spec(SAAS)), fingerprint(&spec(REORDERED)));
    assert_eq!(fingerprint(&spec(SAAS)).len(), 64);
}

#[test]
fn a_new_state_or_a_moved_transition_changes_the_fingerprint() {
    assert_ne!(fingerprint(&spec(SAAS)), fingerprint(&spec(TRIAL)));
    // Transitions are tried in file order: swapping two changes the model.
    let first = "[[regions.billing.transitions]]";
    let at = SAAS.find(first).expect("saas has billing transitions");
    let second = SAAS[at + 1..].find(first).expect("two of them") + at + 1;
    let third = SAAS[second + 1..].find(first).expect("three of them") + second + 1;
    let swapped = format!(
        "{}{}{}{}",
        &SAAS[..at],
        &SAAS[second..third],
        &SAAS[at..second],
        &SAAS[third..]
    );
    assert_ne!(fingerprint(&spec(SAAS)), fingerprint(&spec(&swapped)));
    // The version is not part of it.
    let v2 = SAAS.replace("version = 1", "version = 2");
    assert_eq!(fingerprint(&spec(SAAS)), fingerprint(&spec(&v2)));
}

#[test]
fn binding_a_reordered_file_gives_every_name_its_stored_id() {
    let catalog = Catalog::new(&spec(SAAS));
    let reordered = Model::new(spec(REORDERED));
    assert_ne!(
        ids(&reordered),
        ids(&Model::new(spec(SAAS))),
        "the file order differs"
    );
    let (bound, after) = catalog.bind(spec(REORDERED)).expect("the same model binds");
    assert_eq!(ids(&Model::new(bound)), ids(&Model::new(spec(SAAS))));
    assert_eq!(after, catalog, "nothing new to remember");
}

#[test]
fn a_new_version_with_a_new_state_keeps_the_old_ids_and_appends() {
    let catalog = Catalog::new(&spec(SAAS));
    let v2 = TRIAL.replace("version = 1", "version = 2");
    let (bound, after) = catalog.bind(spec(&v2)).expect("a new version binds");
    let bound = Model::new(bound);
    let old = Model::new(spec(SAAS));
    let kept: Vec<_> = ids(&bound)
        .into_iter()
        .filter(|(n, _)| n != "state lifecycle.trial")
        .collect();
    assert_eq!(kept, ids(&old), "every old name keeps its id");
    let lifecycle = &after.regions[0];
    assert_eq!(lifecycle.states.last().map(String::as_str), Some("trial"));
    assert_eq!(
        after.versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    // And the renumbered model still decides by name: `paid` requires
    // contract and payment, `trial` only the contract.
    let r = RegionId(0);
    let paid = bound.spec.regions[0]
        .states
        .iter()
        .position(|s| s.name == "paid");
    let paid = StateId(paid.expect("paid is declared") as u16);
    let requires: Vec<&str> = bound
        .state(r, paid)
        .requires
        .iter()
        .map(|p| bound.proof_name(*p))
        .collect();
    assert_eq!(requires, ["contract", "payment"]);
}

#[test]
fn a_changed_model_under_a_served_version_is_refused_naming_the_next_version() {
    let catalog = Catalog::new(&spec(SAAS));
    let err = catalog
        .bind(spec(TRIAL))
        .expect_err("same version, other content");
    assert!(
        matches!(
            err,
            BindError::Changed {
                version: 1,
                next_version: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("model version 1 was served"), "{text}");
    assert!(text.contains("`version = 2`"), "{text}");
}

#[test]
fn a_version_that_drops_a_state_keeps_a_hole_in_its_place() {
    let catalog = Catalog::new(&spec(TRIAL));
    let (bound, after) = catalog
        .bind(spec(&SAAS.replace("version = 1", "version = 2")))
        .expect("a version may drop a state");
    let trial = catalog.regions[0]
        .states
        .iter()
        .position(|s| s == "trial")
        .expect("the catalog numbered trial");
    let hole = (RegionId(0), StateId(trial as u16));
    assert_eq!(bound.retired.states, [hole]);
    assert_eq!(bound.regions[0].states[trial].name, "trial");
    let model = Model::new(bound);
    assert!(!model.declares_state(hole.0, hole.1));
    assert_eq!(
        ids(&model),
        ids(&Model::new(catalog.bind(spec(TRIAL)).expect("binds").0)),
        "every name keeps its id, the hole included"
    );
    assert_eq!(
        after.regions, catalog.regions,
        "the catalog forgets nothing"
    );
    assert!(
        Canonical::of(&spec(TRIAL)).regions["lifecycle"]
            .states
            .contains_key("trial")
    );
}

#[test]
fn a_version_that_drops_a_region_changes_tiers_or_drops_every_market_is_refused() {
    let mut catalog = Catalog::new(&spec(SAAS));
    catalog.regions.push(CatalogRegion {
        name: "loyalty".to_owned(),
        states: vec!["member".to_owned()],
    });
    let err = catalog
        .bind(spec(&SAAS.replace("version = 1", "version = 2")))
        .expect_err("a region is gone");
    assert!(
        err.to_string()
            .contains("it no longer declares region `loyalty` (a region cannot be removed"),
        "{err}"
    );

    let catalog = Catalog::new(&spec(SAAS));
    let fewer_tiers = SAAS.replace("version = 1", "version = 3");
    let at = fewer_tiers
        .find("[[slas.access_after_payment.tiers]]")
        .expect("tiers");
    let end = fewer_tiers[at + 1..].find("[[").expect("a next table") + at + 1;
    let fewer_tiers = format!("{}{}", &fewer_tiers[..at], &fewer_tiers[end..]);
    let err = catalog
        .bind(spec(&fewer_tiers))
        .expect_err("a tier is gone");
    assert!(
        err.to_string()
            .contains("SLA `access_after_payment` has 2 tiers where stored instances have 3"),
        "{err}"
    );

    let fast = spec(FAST);
    let catalog = Catalog::new(&fast);
    let at = FAST.find("[markets.US]").expect("markets");
    let no_markets = FAST[..at].replace("version = 1", "version = 2");
    let err = catalog.bind(spec(&no_markets)).expect_err("no market left");
    assert!(
        err.to_string()
            .contains("it declares no market, where the stored customers' markets are"),
        "{err}"
    );
}

#[test]
fn another_model_is_refused() {
    let catalog = Catalog::new(&spec(SAAS));
    let other = SAAS.replace("name = \"saas\"", "name = \"edtech\"");
    let err = catalog.bind(spec(&other)).expect_err("another model");
    assert!(
        err.to_string()
            .contains("holds the customers of model `saas`"),
        "{err}"
    );
}

#[test]
fn the_catalog_round_trips_through_json() {
    let catalog = Catalog::new(&spec(SAAS));
    let text = serde_json::to_string(&catalog).expect("serializes");
    let back: Catalog = serde_json::from_str(&text).expect("parses");
    assert_eq!(back, catalog);
}

// ------------------------------------------------------------ SLA clocks

/// A small model with two calendars, a paused SLA and a market's calendar.
const CLOCKS: &str = r#"teams = ["support"]

[model]
name = "clocks"
version = 1

[sources]
desk = ["opened", "replied", "asked", "answered"]

[regions.ticket]
initial = "idle"
default_owner = "support"

[regions.ticket.states.idle]
[regions.ticket.states.open]
[regions.ticket.states.waiting]

[[regions.ticket.transitions]]
from = "idle"
on = "desk.opened"
to = "open"

[[regions.ticket.transitions]]
from = "open"
on = "desk.asked"
to = "waiting"

[[regions.ticket.transitions]]
from = "waiting"
on = "desk.answered"
to = "open"

[slas.first_reply]
owner = "support"
start = ["desk.opened"]
stop = ["desk.replied"]
within = "4h"
calendar = "de_office"
pause_in = ["ticket.waiting", "ticket.idle"]

[calendars.de_office]
time_zone = "Europe/Berlin"
closed = ["2026-12-24", "2026-12-25"]

[calendars.de_office.open]
mon = ["09:00-17:00"]
fri = ["09:00-13:00", "14:00-17:00"]

[calendars.br_office]
time_zone = "America/Sao_Paulo"
open = { tue = ["08:00-18:00"] }

[markets.BR]
slas = { first_reply = { calendar = "br_office" } }

[markets.DE]
"#;

/// `CLOCKS` with `from` replaced once by `to`.
fn clocks(from: &str, to: &str) -> String {
    assert!(CLOCKS.contains(from), "CLOCKS has no {from:?}");
    CLOCKS.replacen(from, to, 1)
}

#[test]
fn the_fingerprint_sees_every_calendar_and_pause_edit() {
    let base = fingerprint(&spec(CLOCKS));
    let edits = [
        ("mon = [\"09:00-17:00\"]", "mon = [\"09:00-18:00\"]"),
        ("mon = [\"09:00-17:00\"]", "tue = [\"09:00-17:00\"]"),
        ("\"2026-12-25\"]", "\"2026-12-26\"]"),
        ("Europe/Berlin", "Europe/Paris"),
        ("calendar = \"de_office\"", "calendar = \"br_office\""),
        ("calendar = \"de_office\"\n", ""),
        (
            "{ calendar = \"br_office\" }",
            "{ calendar = \"de_office\" }",
        ),
        (
            "[\"ticket.waiting\", \"ticket.idle\"]",
            "[\"ticket.waiting\"]",
        ),
        ("[\"ticket.waiting\", \"ticket.idle\"]", "[]"),
    ];
    for (from, to) in edits {
        let edited = fingerprint(&spec(&clocks(from, to)));
        assert_ne!(edited, base, "{from:?} -> {to:?} is an edit");
    }
    // Order inside sets, date spelling, duplicates and declaration order
    // are not.
    let same = [
        (
            "[\"ticket.waiting\", \"ticket.idle\"]",
            "[\"ticket.idle\", \"ticket.waiting\", \"ticket.idle\"]",
        ),
        (
            "closed = [\"2026-12-24\", \"2026-12-25\"]",
            "closed = [2026-12-25, \"2026-12-24\", 2026-12-24]",
        ),
        (
            "mon = [\"09:00-17:00\"]\nfri = [\"09:00-13:00\", \"14:00-17:00\"]",
            "fri = [\"09:00-13:00\", \"14:00-17:00\"]\nmon = [\"09:00-17:00\"]",
        ),
    ];
    for (from, to) in same {
        let edited = fingerprint(&spec(&clocks(from, to)));
        assert_eq!(edited, base, "{from:?} -> {to:?} is not an edit");
    }
    let at = CLOCKS.find("[calendars.br_office]").expect("br_office");
    let end = CLOCKS.find("[markets.BR]").expect("markets");
    let block = &CLOCKS[at..end];
    let without = format!("{}{}", &CLOCKS[..at], &CLOCKS[end..]);
    let moved = without.replacen(
        "[calendars.de_office]",
        &format!("{block}[calendars.de_office]"),
        1,
    );
    assert_eq!(fingerprint(&spec(&moved)), base, "calendars moved");
}

#[test]
fn a_model_that_uses_no_clock_keys_keeps_its_fingerprint() {
    // Unused keys are left out of the canonical form, so models served
    // before calendars existed keep the fingerprint they were served with.
    let json = serde_json::to_string(&Canonical::of(&spec(FAST))).expect("serializes");
    for key in ["calendars", "calendar", "pause_in"] {
        assert!(!json.contains(&format!("\"{key}\"")), "{key} in {json}");
    }
}

#[test]
fn binding_renumbers_the_pause_states() {
    // Stored: idle, open, waiting. The new file declares waiting first.
    let catalog = Catalog::new(&spec(CLOCKS));
    let reordered = clocks(
        "[regions.ticket.states.idle]\n[regions.ticket.states.open]\n[regions.ticket.states.waiting]",
        "[regions.ticket.states.waiting]\n[regions.ticket.states.idle]\n[regions.ticket.states.open]",
    );
    let unbound = spec(&reordered);
    assert_eq!(
        unbound.slas[0].pause_in,
        [(RegionId(0), StateId(0)), (RegionId(0), StateId(1))]
    );
    let (bound, _) = catalog.bind(unbound).expect("the same model binds");
    let names: Vec<&str> = bound.slas[0]
        .pause_in
        .iter()
        .map(|(r, s)| bound.regions[r.idx()].states[s.idx()].name.as_str())
        .collect();
    assert_eq!(names, ["idle", "waiting"]);
    assert_eq!(
        bound.slas[0].pause_in,
        [(RegionId(0), StateId(0)), (RegionId(0), StateId(2))]
    );
    assert_eq!(bound.slas[0].calendar, Some(0));
    assert_eq!(bound.markets[0].overlay.slas[0].1.calendar, Some(1));
}
